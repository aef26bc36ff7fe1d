//! The Aggregates table (DESIGN.md §5): feedback counters per model version and day,
//! updated in the same transaction as the feedback item, so trends read a few items
//! per day instead of every feedback row.
//!
//! Keys:
//! - `<model_version>#<day>`: one model version's counters for one UTC day, with its
//!   `model_version`, `line` and `day`;
//! - `*#<day>`: every version's counters for the day, and `versions`, the set of
//!   versions that had feedback that day (so a reader knows which keys exist).
//!
//! Counters (all `N`, created by the first `ADD`):
//! - `total`, `correct`, `labelled` (feedback whose true digit is known: correct ones,
//!   and incorrect ones that give `true_label`);
//! - `pred_<d>`: feedback on predictions of digit d;
//! - `cm_<t>_<p>`: labelled feedback with true digit t and predicted digit p;
//! - `route_<r>_total`, `route_<r>_correct` for r in v1, v2, ab, production;
//! - for A/B traffic also `ab_total`, `ab_correct`, `ab_pred_<d>`, `ab_cm_<t>_<p>`, so a
//!   trend can be restricted to one A/B arm (the arm is the version's line).

use super::{Item, StoreError, get_s, s, sdk_error};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Update};
use std::collections::{BTreeMap, HashMap};

pub const CLASSES: usize = 10;
/// The routes predictions come from (predict's routes).
pub const ROUTES: [&str; 4] = ["v1", "v2", "ab", "production"];
/// BatchGetItem takes at most 100 keys.
const BATCH: usize = 100;
/// The all-versions key prefix.
pub const ALL_VERSIONS: &str = "*";

pub fn key(model_version: &str, day: &str) -> String {
    format!("{model_version}#{day}")
}

/// What one feedback adds to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackCounts {
    pub model_version: String,
    pub line: String,
    pub route: String,
    pub day: String,
    pub predicted: u8,
    pub correct: bool,
    /// The true digit when known (correct feedback: the prediction itself).
    pub true_label: Option<u8>,
}

impl FeedbackCounts {
    /// The counter names this feedback adds one to.
    pub fn counters(&self) -> Vec<String> {
        let mut names = vec!["total".to_owned(), format!("pred_{}", self.predicted)];
        if self.correct {
            names.push("correct".into());
        }
        if let Some(t) = self.true_label {
            names.push("labelled".into());
            names.push(format!("cm_{t}_{}", self.predicted));
        }
        if ROUTES.contains(&self.route.as_str()) {
            names.push(format!("route_{}_total", self.route));
            if self.correct {
                names.push(format!("route_{}_correct", self.route));
            }
        }
        if self.route == "ab" {
            names.push("ab_total".into());
            names.push(format!("ab_pred_{}", self.predicted));
            if self.correct {
                names.push("ab_correct".into());
            }
            if let Some(t) = self.true_label {
                names.push(format!("ab_cm_{t}_{}", self.predicted));
            }
        }
        names
    }

    /// The two counter updates, for a TransactWriteItems next to the feedback put.
    pub fn updates(&self, table: &str) -> Result<[Update; 2], StoreError> {
        let counters = self.counters();
        let adds: Vec<String> = (0..counters.len()).map(|i| format!("#c{i} :one")).collect();
        let build = |key_value: String, extra_set: &str, extra_add: &str| {
            let mut update = Update::builder()
                .table_name(table)
                .key("key", s(key_value))
                .update_expression(format!("ADD {}{extra_add} {extra_set}", adds.join(", ")))
                .expression_attribute_values(":one", AttributeValue::N("1".into()));
            for (i, name) in counters.iter().enumerate() {
                update = update.expression_attribute_names(format!("#c{i}"), name);
            }
            update
        };
        let version = build(
            key(&self.model_version, &self.day),
            "SET model_version = :v, line = :l, #d = :d",
            "",
        )
        .expression_attribute_values(":v", s(&self.model_version))
        .expression_attribute_values(":l", s(&self.line))
        .expression_attribute_values(":d", s(&self.day))
        .expression_attribute_names("#d", "day")
        .build()
        .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let all = build(
            key(ALL_VERSIONS, &self.day),
            "SET #d = :d",
            ", versions :vs",
        )
        .expression_attribute_values(":vs", AttributeValue::Ss(vec![self.model_version.clone()]))
        .expression_attribute_values(":d", s(&self.day))
        .expression_attribute_names("#d", "day")
        .build()
        .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        Ok([version, all])
    }
}

/// One aggregate item, read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub key: String,
    pub day: String,
    /// Empty on the all-versions item.
    pub model_version: String,
    pub line: String,
    /// On the all-versions item: the versions with feedback that day.
    pub versions: Vec<String>,
    pub values: BTreeMap<String, u64>,
}

impl Counters {
    pub fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }
}

fn counters_from_item(item: &Item) -> Result<Counters, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut values = BTreeMap::new();
    for (name, value) in item {
        if let AttributeValue::N(n) = value {
            let count = n
                .parse::<u64>()
                .map_err(|_| StoreError::Corrupt(format!("counter {name} is {n:?}")))?;
            values.insert(name.clone(), count);
        }
    }
    let mut versions = item
        .get("versions")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    versions.sort();
    Ok(Counters {
        key: get_s(item, "key")?.to_owned(),
        day: text("day"),
        model_version: text("model_version"),
        line: text("line"),
        versions,
        values,
    })
}

pub struct AggregateStore {
    client: Client,
    table: String,
}

impl AggregateStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The items with these keys (missing ones are simply absent), and the number of
    /// BatchGetItem calls it took. Unprocessed keys are retried.
    pub async fn get_many(&self, keys: &[String]) -> Result<(Vec<Counters>, u32), StoreError> {
        let mut out = Vec::new();
        let mut calls = 0u32;
        for chunk in keys.chunks(BATCH) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|k| HashMap::from([("key".to_owned(), s(k))]))
                .collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                if attempt > 0 {
                    // Unprocessed keys mean throttling: back off before asking again.
                    tokio::time::sleep(std::time::Duration::from_millis(
                        25 * u64::from(attempt.min(8)),
                    ))
                    .await;
                }
                attempt += 1;
                if attempt > 20 {
                    return Err(StoreError::Dynamo(
                        "BatchGetItem kept returning unprocessed keys".into(),
                    ));
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .build()
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?;
                let response = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                calls += 1;
                if let Some(items) = response.responses().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        out.push(counters_from_item(item)?);
                    }
                }
                if let Some(left) = response.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    pending = left.keys().to_vec();
                }
            }
        }
        Ok((out, calls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(route: &str, correct: bool, true_label: Option<u8>) -> FeedbackCounts {
        FeedbackCounts {
            model_version: "v2.0".into(),
            line: "v2".into(),
            route: route.into(),
            day: "2026-11-24".into(),
            predicted: 7,
            correct,
            true_label,
        }
    }

    #[test]
    fn each_feedback_touches_exactly_its_counters() {
        assert_eq!(
            counts("v2", true, Some(7)).counters(),
            [
                "total",
                "pred_7",
                "correct",
                "labelled",
                "cm_7_7",
                "route_v2_total",
                "route_v2_correct"
            ]
        );
        assert_eq!(
            counts("ab", false, None).counters(),
            ["total", "pred_7", "route_ab_total", "ab_total", "ab_pred_7"]
        );
        let ab = counts("ab", false, Some(1)).counters();
        assert!(ab.contains(&"cm_1_7".to_owned()) && ab.contains(&"ab_cm_1_7".to_owned()));
        assert!(!ab.contains(&"correct".to_owned()));
    }

    #[test]
    fn updates_name_both_items() {
        let [version, all] = counts("v1", true, Some(7)).updates("Aggregates").unwrap();
        assert_eq!(version.key()["key"].as_s().unwrap(), "v2.0#2026-11-24");
        assert_eq!(all.key()["key"].as_s().unwrap(), "*#2026-11-24");
        assert!(all.update_expression().contains("versions :vs"));
    }

    #[test]
    fn items_read_back_with_their_counters() {
        let item = Item::from([
            ("key".to_owned(), s("*#2026-11-24")),
            ("day".to_owned(), s("2026-11-24")),
            ("total".to_owned(), AttributeValue::N("3".into())),
            (
                "versions".to_owned(),
                AttributeValue::Ss(vec!["v2.0".into(), "v1.0".into()]),
            ),
        ]);
        let c = counters_from_item(&item).unwrap();
        assert_eq!(c.get("total"), 3);
        assert_eq!(c.get("correct"), 0);
        assert_eq!(c.versions, ["v1.0", "v2.0"]);
        let bad = Item::from([
            ("key".to_owned(), s("k")),
            ("total".to_owned(), AttributeValue::N("-1".into())),
        ]);
        assert!(counters_from_item(&bad).is_err());
    }
}
