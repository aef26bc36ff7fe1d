//! The DriftRuns table (DESIGN.md §5): every drift check, its tests and its verdict.
//!
//! Partition `scope`: `<model>#<line>` for the scheduled check of a line, `adhoc` for
//! checks an admin posts. Sort `run_key`: `<checked_at>#<run_id>`, so a scope's runs sort
//! by time. The `by_day` index (day, run_key) serves history across scopes, newest first.
//! A scheduled run's id comes from its event's time, and it is written only if absent:
//! a retried schedule finds the run it already made.

use super::{Item, StoreError, get_s, n, s, sdk_error};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

pub const BY_DAY_INDEX: &str = "by_day";
pub const ADHOC: &str = "adhoc";

/// One stored run; `report` is the whole answer, as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRun {
    pub scope: String,
    pub run_id: String,
    /// RFC 3339, fixed width.
    pub checked_at: String,
    /// `scheduled`, `data`, `production`, `model`, `test`.
    pub kind: String,
    pub model_name: Option<String>,
    pub line: Option<String>,
    pub version: Option<String>,
    pub verdict: String,
    pub drift_detected: bool,
    pub drift_score: f64,
    pub severity: Option<String>,
    pub report: serde_json::Value,
    pub expires_at: u64,
}

impl DriftRun {
    pub fn run_key(&self) -> String {
        format!("{}#{}", self.checked_at, self.run_id)
    }

    /// The scheduled check's scope for a line.
    pub fn scope_of(model_name: &str, line: &str) -> String {
        format!("{model_name}#{line}")
    }

    /// The run as listings show it (the report without its per-feature detail is
    /// `summary`; `report` has everything).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "run_id": self.run_id,
            "scope": self.scope,
            "timestamp": self.checked_at,
            "kind": self.kind,
            "model_name": self.model_name,
            "line": self.line,
            "version": self.version,
            "verdict": self.verdict,
            "drift_detected": self.drift_detected,
            "drift_score": self.drift_score,
            "severity": self.severity,
            "report": self.report,
        })
    }
}

pub struct RunStore {
    client: Client,
    table: String,
}

fn to_item(run: &DriftRun) -> Item {
    let mut item = Item::from([
        ("scope".to_owned(), s(&run.scope)),
        ("run_key".to_owned(), s(run.run_key())),
        ("run_id".to_owned(), s(&run.run_id)),
        ("day".to_owned(), s(crate::time::day_of(&run.checked_at))),
        ("checked_at".to_owned(), s(&run.checked_at)),
        ("kind".to_owned(), s(&run.kind)),
        ("verdict".to_owned(), s(&run.verdict)),
        (
            "drift_detected".to_owned(),
            AttributeValue::Bool(run.drift_detected),
        ),
        (
            "drift_score".to_owned(),
            AttributeValue::N(format!("{}", run.drift_score)),
        ),
        ("report".to_owned(), s(run.report.to_string())),
        ("expires_at".to_owned(), n(run.expires_at)),
    ]);
    for (name, value) in [
        ("model_name", &run.model_name),
        ("line", &run.line),
        ("version", &run.version),
        ("severity", &run.severity),
    ] {
        if let Some(value) = value {
            item.insert(name.to_owned(), s(value));
        }
    }
    item
}

fn from_item(item: &Item) -> Result<DriftRun, StoreError> {
    let optional = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let report = serde_json::from_str(get_s(item, "report")?)
        .map_err(|e| StoreError::Corrupt(format!("report: {e}")))?;
    Ok(DriftRun {
        scope: get_s(item, "scope")?.to_owned(),
        run_id: get_s(item, "run_id")?.to_owned(),
        checked_at: get_s(item, "checked_at")?.to_owned(),
        kind: get_s(item, "kind")?.to_owned(),
        model_name: optional("model_name"),
        line: optional("line"),
        version: optional("version"),
        verdict: get_s(item, "verdict")?.to_owned(),
        drift_detected: item
            .get("drift_detected")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        drift_score: item
            .get("drift_score")
            .and_then(|v| v.as_n().ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0),
        severity: optional("severity"),
        report,
        expires_at: super::get_n_opt(item, "expires_at")?.unwrap_or(0),
    })
}

impl RunStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores a new run; `Conflict` when a run with its key exists (a retried schedule).
    pub async fn put(&self, run: &DriftRun) -> Result<(), StoreError> {
        super::put_new(&self.client, &self.table, to_item(run), "run_key").await
    }

    pub async fn get(&self, scope: &str, run_key: &str) -> Result<Option<DriftRun>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("scope", s(scope))
            .key("run_key", s(run_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(from_item).transpose()
    }

    /// The newest run of `scope` (a line's scheduled and production checks).
    pub async fn latest(&self, scope: &str) -> Result<Option<DriftRun>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#sc = :sc")
            .expression_attribute_names("#sc", "scope")
            .expression_attribute_values(":sc", s(scope))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(sdk_error)?;
        out.items().first().map(from_item).transpose()
    }

    /// Runs of `days` (newest first), each day's newest first, from the run key
    /// `from_key` on and strictly before the run key `before` (a page's cursor), at most
    /// `limit`; with `drift_only`, only runs that found drift. Also says whether more
    /// runs follow.
    pub async fn list(
        &self,
        days: &[String],
        from_key: &str,
        before: Option<&str>,
        limit: usize,
        drift_only: bool,
    ) -> Result<(Vec<DriftRun>, bool), StoreError> {
        let mut runs = Vec::new();
        // A cursor older than the window (a page asked for long after the first): nothing
        // is left, and DynamoDB would refuse a BETWEEN whose bounds are inverted.
        if before.is_some_and(|b| b <= from_key) {
            return Ok((runs, false));
        }
        for day in days {
            if before.is_some_and(|b| crate::time::day_of(b) < day.as_str()) {
                continue;
            }
            let mut start = None;
            loop {
                let upper = match before {
                    Some(b) if crate::time::day_of(b) == day.as_str() => b.to_owned(),
                    // Every run key of the day sorts below this.
                    _ => format!("{day}~"),
                };
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_DAY_INDEX)
                    .key_condition_expression("#d = :d AND run_key BETWEEN :low AND :high")
                    .expression_attribute_names("#d", "day")
                    .expression_attribute_values(":d", s(day))
                    .expression_attribute_values(":low", s(from_key))
                    .expression_attribute_values(":high", s(&upper))
                    .scan_index_forward(false)
                    .set_exclusive_start_key(start);
                if drift_only {
                    query = query
                        .filter_expression("drift_detected = :t")
                        .expression_attribute_values(":t", AttributeValue::Bool(true));
                }
                let out = query.send().await.map_err(sdk_error)?;
                for item in out.items() {
                    let run = from_item(item)?;
                    // BETWEEN is inclusive; the cursor's own run was on the last page.
                    if before.is_some_and(|b| run.run_key() == b) {
                        continue;
                    }
                    if runs.len() == limit {
                        return Ok((runs, true));
                    }
                    runs.push(run);
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        Ok((runs, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_through_items() {
        let run = DriftRun {
            scope: DriftRun::scope_of("mnist", "v2"),
            run_id: "01JRUN".into(),
            checked_at: "2026-12-02T03:00:00.000000Z".into(),
            kind: "scheduled".into(),
            model_name: Some("mnist".into()),
            line: Some("v2".into()),
            version: Some("v2.0".into()),
            verdict: "drift".into(),
            drift_detected: true,
            drift_score: 0.4,
            severity: Some("severe".into()),
            report: serde_json::json!({"verdict": "drift"}),
            expires_at: 1,
        };
        let item = to_item(&run);
        assert_eq!(item["day"].as_s().unwrap(), "2026-12-02");
        assert_eq!(
            item["run_key"].as_s().unwrap(),
            "2026-12-02T03:00:00.000000Z#01JRUN"
        );
        assert_eq!(from_item(&item).unwrap(), run);
    }
}
