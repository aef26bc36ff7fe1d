//! The Alerts table (DESIGN.md §5): one item per alert, keyed by `alert_id`. A resolved
//! alert is the same item (the same id) in its next state: `state` changes, the time it
//! first fired stays. Listed by the `by_day` and `by_fingerprint` indexes (the alerts
//! function's, issue 15).

use super::Alert;
use crate::store::{Item, StoreError, get_n_opt, get_s, n, s, sdk_error};
use aws_sdk_dynamodb::Client;

pub const BY_DAY_INDEX: &str = "by_day";
pub const BY_FINGERPRINT_INDEX: &str = "by_fingerprint";

#[derive(Clone)]
pub struct AlertStore {
    client: Client,
    table: String,
}

impl AlertStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes the alert's current state; the first firing's time and day are kept.
    pub async fn put(&self, alert: &Alert) -> Result<(), StoreError> {
        let details = serde_json::to_string(&alert.details)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alert_id", s(&alert.alert_id))
            .expression_attribute_names("#k", "kind")
            .expression_attribute_names("#s", "state")
            .expression_attribute_names("#src", "source")
            .expression_attribute_values(":k", s(alert.kind.as_str()))
            .expression_attribute_values(":sev", s(alert.severity.as_str()))
            .expression_attribute_values(":s", s(alert.state.as_str()))
            .expression_attribute_values(":t", s(&alert.title))
            .expression_attribute_values(":d", s(details))
            .expression_attribute_values(":src", s(&alert.source))
            .expression_attribute_values(":f", s(&alert.fingerprint))
            .expression_attribute_values(":r", n(u64::from(alert.repeat)))
            .expression_attribute_values(":at", s(&alert.created_at))
            .expression_attribute_values(":day", s(crate::time::day_of(&alert.created_at)));
        let mut set = vec![
            "#k = :k",
            "severity = :sev",
            "#s = :s",
            "title = :t",
            "details = :d",
            "#src = :src",
            "fingerprint = :f",
            "repeats = :r",
            "updated_at = :at",
            "created_at = if_not_exists(created_at, :at)",
            "#day = if_not_exists(#day, :day)",
        ];
        update = update.expression_attribute_names("#day", "day");
        if let Some(run_id) = &alert.run_id {
            set.push("run_id = :run");
            update = update.expression_attribute_values(":run", s(run_id));
        }
        if let Some(request_id) = &alert.request_id {
            set.push("request_id = :req");
            update = update.expression_attribute_values(":req", s(request_id));
        }
        update
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// The alert as stored, if any.
    pub async fn get(&self, alert_id: &str) -> Result<Option<Alert>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("alert_id", s(alert_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.as_ref().map(alert_from_item).transpose()
    }
}

fn alert_from_item(item: &Item) -> Result<Alert, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("alert attribute {what}"));
    let parse = |name: &str| -> Result<serde_json::Value, StoreError> {
        Ok(serde_json::Value::String(get_s(item, name)?.to_owned()))
    };
    let optional = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Ok(Alert {
        alert_id: get_s(item, "alert_id")?.to_owned(),
        kind: serde_json::from_value(parse("kind")?).map_err(|_| corrupt("kind"))?,
        severity: serde_json::from_value(parse("severity")?).map_err(|_| corrupt("severity"))?,
        state: serde_json::from_value(parse("state")?).map_err(|_| corrupt("state"))?,
        title: get_s(item, "title")?.to_owned(),
        details: serde_json::from_str(get_s(item, "details")?).map_err(|_| corrupt("details"))?,
        source: get_s(item, "source")?.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        run_id: optional("run_id"),
        request_id: optional("request_id"),
        created_at: get_s(item, "created_at")?.to_owned(),
        repeat: get_n_opt(item, "repeats")?
            .unwrap_or(0)
            .min(u64::from(u32::MAX)) as u32,
    })
}
