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
//!
//! [`FeedbackCounts::counters`] writes these names; [`Counters::tally`] reads the ones
//! a trend counts back into numbers.

use super::{Item, StoreError, get_s, s, sdk_error};
use crate::domain::CLASSES;
use crate::retry::Backoff;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Update};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The routes predictions come from (predict's routes).
pub const ROUTES: [&str; 4] = ["v1", "v2", "ab", "production"];
/// BatchGetItem takes at most 100 keys.
const BATCH: usize = 100;
/// Unprocessed keys mean throttling: back off before asking again.
const UNPROCESSED_RETRIES: Backoff = Backoff {
    base: Duration::from_millis(25),
    cap: Duration::from_millis(400),
    max_attempts: 20,
    budget: Duration::from_secs(5),
};
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

    /// The item's counts, read from the names [`FeedbackCounts::counters`] writes:
    /// `total`, `correct`, `pred_<d>` and `cm_<t>_<p>`; with `ab_only`, from their `ab_`
    /// forms, the item's A/B traffic only. Other names (`labelled`, `route_*`, a digit
    /// outside 0–9) count for nothing here.
    pub fn tally(&self, ab_only: bool) -> CounterTally {
        let mut tally = CounterTally::default();
        for (name, &value) in &self.values {
            let name = if ab_only {
                match name.strip_prefix("ab_") {
                    Some(rest) => rest,
                    None => continue,
                }
            } else {
                name.as_str()
            };
            if name == "total" {
                tally.total = value;
            } else if name == "correct" {
                tally.correct = value;
            } else if let Some(d) = name.strip_prefix("pred_").and_then(digit) {
                tally.predicted[d] = value;
            } else if let Some((t, p)) = name.strip_prefix("cm_").and_then(|r| r.split_once('_'))
                && let (Some(t), Some(p)) = (digit(t), digit(p))
            {
                tally.confusion[t][p] = value;
            }
        }
        tally
    }
}

/// One item's counters by what they count (see [`Counters::tally`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterTally {
    pub total: u64,
    pub correct: u64,
    /// Feedback per predicted digit.
    pub predicted: [u64; CLASSES],
    /// Labelled feedback, `[true][predicted]`.
    pub confusion: [[u64; CLASSES]; CLASSES],
}

/// A digit of a counter name (`7` of `pred_7`); `None` for anything else.
fn digit(text: &str) -> Option<usize> {
    text.parse::<usize>().ok().filter(|&d| d < CLASSES)
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
            let mut schedule = UNPROCESSED_RETRIES.schedule();
            let mut asked = false;
            while !pending.is_empty() {
                if std::mem::replace(&mut asked, true) && schedule.wait(None).await.is_err() {
                    // Unprocessed keys mean throttling: the backoff gave it its budget.
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

    fn counters(pairs: &[(&str, u64)]) -> Counters {
        Counters {
            values: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Counters::default()
        }
    }

    #[test]
    fn tallies_read_plain_or_ab_counters() {
        let c = counters(&[
            ("total", 5),
            ("correct", 3),
            ("labelled", 4),
            ("pred_7", 4),
            ("pred_1", 1),
            ("cm_7_7", 3),
            ("cm_2_7", 1),
            ("route_ab_total", 2),
            ("ab_total", 2),
            ("ab_correct", 1),
            ("ab_pred_7", 2),
            ("ab_cm_7_7", 1),
            // Not counters of ours: ignored, never a panic.
            ("pred_10", 9),
            ("cm_7", 9),
            ("cm_x_1", 9),
        ]);
        let all = c.tally(false);
        assert_eq!((all.total, all.correct), (5, 3));
        assert_eq!(all.predicted[7], 4);
        assert_eq!(all.predicted[1], 1);
        assert_eq!(all.confusion[7][7], 3);
        assert_eq!(all.confusion[2][7], 1);
        assert_eq!(all.confusion.iter().flatten().sum::<u64>(), 4);
        let ab = c.tally(true);
        assert_eq!((ab.total, ab.correct), (2, 1));
        assert_eq!(ab.predicted, {
            let mut p = [0; CLASSES];
            p[7] = 2;
            p
        });
        assert_eq!(ab.confusion[7][7], 1);
        assert_eq!(ab.confusion.iter().flatten().sum::<u64>(), 1);
        assert_eq!(Counters::default().tally(false), CounterTally::default());
    }

    /// What the `ADD`s of `feedback` leave on one item.
    fn written(feedback: &[FeedbackCounts]) -> Counters {
        let mut values = BTreeMap::new();
        for f in feedback {
            for name in f.counters() {
                *values.entry(name).or_insert(0) += 1;
            }
        }
        Counters {
            values,
            ..Counters::default()
        }
    }

    /// The same feedback counted directly.
    fn expected(feedback: &[FeedbackCounts]) -> CounterTally {
        let mut tally = CounterTally::default();
        for f in feedback {
            tally.total += 1;
            tally.correct += u64::from(f.correct);
            tally.predicted[usize::from(f.predicted)] += 1;
            if let Some(t) = f.true_label {
                tally.confusion[usize::from(t)][usize::from(f.predicted)] += 1;
            }
        }
        tally
    }

    #[test]
    fn the_names_written_are_the_names_read() {
        // Every route (and one that is none of them), correct, wrong with a label, and
        // wrong without one, on a different digit each time.
        let mut feedback = Vec::new();
        for (i, route) in ROUTES.into_iter().chain(["unknown"]).enumerate() {
            let d = i as u8;
            for (predicted, correct, true_label) in [
                (d, true, Some(d)),
                (d + 1, false, Some(9 - d)),
                (d + 2, false, None),
            ] {
                feedback.push(FeedbackCounts {
                    predicted,
                    true_label,
                    ..counts(route, correct, None)
                });
            }
        }
        let item = written(&feedback);
        assert_eq!(item.tally(false), expected(&feedback));
        let ab: Vec<FeedbackCounts> = feedback
            .iter()
            .filter(|f| f.route == "ab")
            .cloned()
            .collect();
        assert_eq!(ab.len(), 3);
        assert_eq!(item.tally(true), expected(&ab));
        assert_eq!(written(&[]).tally(true), CounterTally::default());
    }
}
