//! Reading the trail: newest-first listings served by the Audit table's two global
//! secondary indexes — `by_actor` (actor, ts) when a username is given, `by_day`
//! (day, ts) otherwise, one day partition after another — never a scan, and the opaque
//! cursor that resumes a listing where its last page ended.
//!
//! The `by_day` partition of the current day takes every audit write of the service; a
//! DynamoDB partition sustains about 1,000 writes a second, which is far above this
//! service's audit rate. Past it, the day key would be sharded (`day#0..day#n`) and the
//! shards queried in parallel and merged.

use super::{Action, BY_ACTOR_INDEX, BY_DAY_INDEX, Outcome, SYSTEM_ACTOR_PREFIX};
use crate::config::AuditSettings;
use crate::store::cursor::Resumable;
use crate::store::{Item, StoreError, n, s, sdk_error};
use crate::time::TimeRange;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Reads the Audit table (the audit-logs function's role is the only one allowed to).
#[derive(Clone)]
pub struct AuditReader {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) hmac_key: Arc<[u8]>,
    pub(super) retention: Duration,
}

impl AuditReader {
    pub fn new(client: Client, settings: &AuditSettings) -> Self {
        Self {
            client,
            table: settings.table.clone(),
            hmac_key: settings.hmac_key.clone().into(),
            retention: settings.retention,
        }
    }
}

/// What a listing keeps; everything set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub actor: Option<String>,
    pub action: Option<Action>,
    pub outcome: Option<Outcome>,
    /// Only what people did: user-initiated actions by actors that are not `system:`.
    pub user_initiated_only: bool,
}

/// Where a listing resumes: the `day` partition (for `by_day`) and the last entry
/// returned, exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EntryKey>,
}

impl Resumable for Position {
    fn day(&self) -> Option<&str> {
        self.day.as_deref()
    }
    fn last_timestamp(&self) -> Option<&str> {
        self.after.as_ref().map(|a| a.ts.as_str())
    }
}

/// A listing's cursor (see [`crate::store::cursor`]).
pub type Cursor = crate::store::cursor::Cursor<Position>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryKey {
    pub chain_id: String,
    pub seq: u64,
    pub ts: String,
}

impl EntryKey {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("audit key attribute {name}")))
        };
        Ok(Self {
            chain_id: text("chain_id")?,
            seq: item
                .get("seq")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("audit key attribute seq".into()))?,
            ts: text("ts")?,
        })
    }
}

/// An entry as an auditor reads it. The field names are DESIGN.md §5's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub timestamp: String,
    pub username: String,
    pub action: String,
    pub outcome: String,
    pub details: serde_json::Value,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub chain_id: String,
    pub sequence: u64,
}

impl AuditRecord {
    /// Lenient: a damaged item is still listed with what it has; finding the damage is
    /// verify's job, and a listing that fails on it would hide the rest.
    fn from_item(item: &Item) -> Self {
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let details = text("details");
        Self {
            timestamp: text("ts"),
            username: text("actor"),
            action: text("action"),
            outcome: text("outcome"),
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
            ip: text("source_ip"),
            user_agent: text("user_agent"),
            request_id: text("request_id"),
            chain_id: text("chain_id"),
            sequence: item
                .get("seq")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    /// Where the next page starts, when there may be one.
    pub next: Option<Position>,
}

/// A page is assembled from at most this many queries, so a filter that matches little
/// over a long range cannot hold a request for long: the client gets a short page and a
/// cursor instead.
const MAX_QUERIES_PER_PAGE: usize = 25;
/// Items DynamoDB evaluates per query when a filter may discard most of them.
const FILTERED_QUERY_LIMIT: usize = 500;

impl AuditReader {
    /// One page of entries in `range`, newest first, from `start` (or the newest).
    pub async fn list(
        &self,
        filter: &ListFilter,
        range: &TimeRange,
        limit: u32,
        start: Option<Position>,
    ) -> Result<AuditPage, StoreError> {
        let limit = limit.max(1) as usize;
        let days = range.days_newest_first();
        if filter.user_initiated_only
            && (filter.action.is_some_and(|a| !a.is_user_initiated())
                || filter
                    .actor
                    .as_deref()
                    .is_some_and(|a| a.starts_with(SYSTEM_ACTOR_PREFIX)))
        {
            return Ok(AuditPage {
                entries: Vec::new(),
                next: None,
            });
        }
        let mut position = start.unwrap_or_else(|| Position {
            day: if filter.actor.is_none() {
                days.first().cloned()
            } else {
                None
            },
            after: None,
        });
        let filtered =
            filter.action.is_some() || filter.outcome.is_some() || filter.user_initiated_only;
        let mut entries = Vec::with_capacity(limit);
        for _ in 0..MAX_QUERIES_PER_PAGE {
            let remaining = limit - entries.len();
            let evaluate = if filtered {
                remaining.max(FILTERED_QUERY_LIMIT)
            } else {
                remaining
            };
            let out = self
                .list_query(filter, range, &position, evaluate)
                .await
                .map_err(sdk_error)?;
            let items = out.items();
            let more_in_partition = out.last_evaluated_key().is_some();
            for (i, item) in items.iter().enumerate() {
                entries.push(AuditRecord::from_item(item));
                if entries.len() == limit {
                    let next = if i + 1 == items.len() && !more_in_partition {
                        next_partition(&position, &days)
                    } else {
                        Some(Position {
                            day: position.day.clone(),
                            after: Some(EntryKey::from_item(item)?),
                        })
                    };
                    return Ok(AuditPage { entries, next });
                }
            }
            match out.last_evaluated_key() {
                Some(key) => position.after = Some(EntryKey::from_item(key)?),
                None => match next_partition(&position, &days) {
                    Some(next) => position = next,
                    None => {
                        return Ok(AuditPage {
                            entries,
                            next: None,
                        });
                    }
                },
            }
        }
        Ok(AuditPage {
            entries,
            next: Some(position),
        })
    }

    async fn list_query(
        &self,
        filter: &ListFilter,
        range: &TimeRange,
        position: &Position,
        limit: usize,
    ) -> Result<
        aws_sdk_dynamodb::operation::query::QueryOutput,
        aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::query::QueryError>,
    > {
        let (index, partition_name, partition_value) = match (&filter.actor, &position.day) {
            (Some(actor), _) => (BY_ACTOR_INDEX, "actor", actor.clone()),
            (None, day) => (BY_DAY_INDEX, "day", day.clone().unwrap_or_default()),
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk AND #ts BETWEEN :from AND :to")
            .expression_attribute_names("#pk", partition_name)
            .expression_attribute_names("#ts", "ts")
            .expression_attribute_values(":pk", s(&partition_value))
            .expression_attribute_values(":from", s(range.from_key()))
            .expression_attribute_values(":to", s(range.to_key()))
            .scan_index_forward(false)
            .limit(limit.min(i32::MAX as usize) as i32);
        let mut conditions = Vec::new();
        if let Some(action) = filter.action {
            conditions.push("#action = :action".to_owned());
            query = query
                .expression_attribute_names("#action", "action")
                .expression_attribute_values(":action", s(action.as_str()));
        }
        if let Some(outcome) = filter.outcome {
            conditions.push("#outcome = :outcome".to_owned());
            query = query
                .expression_attribute_names("#outcome", "outcome")
                .expression_attribute_values(":outcome", s(outcome.as_str()));
        }
        if filter.user_initiated_only {
            if filter.action.is_none() {
                let user_actions: Vec<Action> = Action::ALL
                    .into_iter()
                    .filter(|a| a.is_user_initiated())
                    .collect();
                let placeholders: Vec<String> =
                    (0..user_actions.len()).map(|i| format!(":ua{i}")).collect();
                conditions.push(format!("#action IN ({})", placeholders.join(", ")));
                query = query.expression_attribute_names("#action", "action");
                for (placeholder, action) in placeholders.iter().zip(user_actions) {
                    query = query.expression_attribute_values(placeholder, s(action.as_str()));
                }
            }
            // A filter may not name the index's own key, and on by_actor the actor is
            // already fixed (and checked) by the caller.
            if filter.actor.is_none() {
                conditions.push("NOT begins_with(#actor, :system)".to_owned());
                query = query
                    .expression_attribute_names("#actor", "actor")
                    .expression_attribute_values(":system", s(SYSTEM_ACTOR_PREFIX));
            }
        }
        if !conditions.is_empty() {
            query = query.filter_expression(conditions.join(" AND "));
        }
        if let Some(after) = &position.after {
            query = query
                .exclusive_start_key("chain_id", s(&after.chain_id))
                .exclusive_start_key("seq", n(after.seq))
                .exclusive_start_key("ts", s(&after.ts))
                .exclusive_start_key(partition_name, s(&partition_value));
        }
        query.send().await
    }
}

/// The start of the next older `day` partition; `None` after the last (and for
/// `by_actor`, which is one partition).
fn next_partition(position: &Position, days: &[String]) -> Option<Position> {
    let day = position.day.as_ref()?;
    let index = days.iter().position(|d| d == day)?;
    days.get(index + 1).map(|older| Position {
        day: Some(older.clone()),
        after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_walk_days_from_newest_to_oldest() {
        let days = vec!["2026-03-02".to_owned(), "2026-03-01".to_owned()];
        let first = Position {
            day: Some(days[0].clone()),
            after: None,
        };
        let second = next_partition(&first, &days).unwrap();
        assert_eq!(second.day.as_deref(), Some("2026-03-01"));
        assert_eq!(next_partition(&second, &days), None);
        let by_actor = Position {
            day: None,
            after: None,
        };
        assert_eq!(next_partition(&by_actor, &days), None);
    }
}
