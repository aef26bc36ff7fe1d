//! Reading the trail: newest-first listings served by the Audit table's two global
//! secondary indexes — `by_actor` (actor, ts) when a username is given, `by_day`
//! (day, ts) otherwise, one day partition after another — never a scan, and the opaque
//! cursor that resumes a listing where its last page ended.
//!
//! The `by_day` partition of the current day takes every audit write of the service; a
//! DynamoDB partition sustains about 1,000 writes a second, which is far above this
//! service's audit rate. Past it, the day key would be sharded (`day#0..day#n`) and the
//! shards queried in parallel and merged.

use super::{
    Action, BY_ACTOR_INDEX, BY_DAY_INDEX, Outcome, SYSTEM_ACTOR_PREFIX, format_timestamp,
    parse_timestamp,
};
use crate::config::AuditSettings;
use crate::store::{Item, StoreError, n, s, sdk_error};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use time::Date;
use time::OffsetDateTime;
use time::macros::{format_description, time};

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

/// An inclusive time window, at most [`TimeRange::MAX_SPAN`] long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    from: OffsetDateTime,
    to: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("from ({from}) is after to ({to})")]
    Inverted { from: String, to: String },
    #[error("the range spans more than {max_days} days; ask for a shorter one")]
    TooLong { max_days: u64 },
}

impl TimeRange {
    /// One year and a day: a year-end report fits, and one request cannot walk the
    /// whole retention period day by day.
    pub const MAX_SPAN: Duration = Duration::from_secs(366 * 86_400);

    pub fn new(from: OffsetDateTime, to: OffsetDateTime) -> Result<Self, RangeError> {
        if from > to {
            return Err(RangeError::Inverted {
                from: format_timestamp(from),
                to: format_timestamp(to),
            });
        }
        if to - from > Self::MAX_SPAN {
            return Err(RangeError::TooLong {
                max_days: Self::MAX_SPAN.as_secs() / 86_400,
            });
        }
        Ok(Self { from, to })
    }

    /// The first stored timestamp the range includes.
    pub fn from_key(&self) -> String {
        format_timestamp(self.from)
    }

    /// The last stored timestamp the range includes.
    pub fn to_key(&self) -> String {
        format_timestamp(self.to)
    }

    /// The `day` partitions the range touches, newest first.
    pub fn days_newest_first(&self) -> Vec<String> {
        let format = format_description!("[year]-[month]-[day]");
        let first = self.from.to_offset(time::UtcOffset::UTC).date();
        let mut day = self.to.to_offset(time::UtcOffset::UTC).date();
        let mut days = Vec::new();
        while day >= first {
            days.push(day.format(format).unwrap_or_default());
            match day.previous_day() {
                Some(previous) => day = previous,
                None => break,
            }
        }
        days
    }

    fn contains_key(&self, ts: &str) -> bool {
        (self.from_key().as_str()..=self.to_key().as_str()).contains(&ts)
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

/// A listing's cursor: the query it belongs to, its resolved range (a default window
/// moves with the clock; the pages of one listing must not), and where to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// A fingerprint of the request's own parameters: a cursor is refused by any other query.
    pub query: String,
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub position: Position,
}

impl Cursor {
    pub fn new(query: &str, range: &TimeRange, position: Position) -> Self {
        Self {
            query: query.to_owned(),
            from: range.from_key(),
            to: range.to_key(),
            position,
        }
    }

    /// The opaque form clients see.
    pub fn encode(&self) -> String {
        // Serialising strings and numbers cannot fail.
        crate::http::encode_cursor(&serde_json::to_string(self).unwrap_or_default())
    }

    /// The range and position of a decoded cursor, if it was issued for `query` and is
    /// consistent; `None` for anything else, which callers answer with 400.
    pub fn resume(text: &str, query: &str, by_actor: bool) -> Option<(TimeRange, Position)> {
        let cursor: Self = serde_json::from_str(text).ok()?;
        if cursor.query != query {
            return None;
        }
        let range =
            TimeRange::new(parse_timestamp(&cursor.from)?, parse_timestamp(&cursor.to)?).ok()?;
        let position = cursor.position;
        match (&position.day, by_actor) {
            (None, true) => {}
            (Some(day), false) if range.days_newest_first().contains(day) => {}
            _ => return None,
        }
        if let Some(after) = &position.after {
            let in_day = position
                .day
                .as_deref()
                .is_none_or(|d| after.ts.starts_with(d));
            if !in_day || !range.contains_key(&after.ts) {
                return None;
            }
        }
        Some((range, position))
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

fn invalid_parameter(message: impl Into<String>) -> crate::ApiError {
    crate::ApiError::unprocessable("invalid_parameter", message)
}

/// A `from` or `to` parameter: RFC 3339 with any offset, or a date `YYYY-MM-DD`, which
/// means its first instant as `from` and its last as `to` (UTC).
pub fn parse_instant(
    name: &str,
    raw: &str,
    end_of_day: bool,
) -> Result<OffsetDateTime, crate::ApiError> {
    if let Ok(at) = OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        return Ok(at);
    }
    if let Ok(date) = Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        let clock = if end_of_day {
            time!(23:59:59.999_999)
        } else {
            time!(00:00)
        };
        return Ok(date.with_time(clock).assume_utc());
    }
    Err(invalid_parameter(format!(
        "{name} must be an RFC 3339 time (2026-03-01T12:00:00Z) or a date (2026-03-01), got {raw:?}"
    )))
}

/// The window of `from`..=`to`; without `to`, up to `now`; without `from`, the
/// `default_window` before `to`. Bad values are 422 `invalid_parameter` naming them.
pub fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
    now: OffsetDateTime,
    default_window: Duration,
) -> Result<TimeRange, crate::ApiError> {
    let to = to
        .map(|raw| parse_instant("to", raw, true))
        .transpose()?
        .unwrap_or(now);
    let from = match from {
        Some(raw) => parse_instant("from", raw, false)?,
        None => to - default_window,
    };
    TimeRange::new(from, to).map_err(|e| invalid_parameter(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn range(from: &str, to: &str) -> TimeRange {
        TimeRange::new(at(from), at(to)).unwrap()
    }

    #[test]
    fn ranges_are_ordered_bounded_and_split_into_days() {
        let r = range("2026-02-27T23:00:00Z", "2026-03-01T01:00:00Z");
        assert_eq!(
            r.days_newest_first(),
            ["2026-03-01", "2026-02-28", "2026-02-27"]
        );
        assert_eq!(r.from_key(), "2026-02-27T23:00:00.000000Z");
        assert!(matches!(
            TimeRange::new(at("2026-03-02T00:00:00Z"), at("2026-03-01T00:00:00Z")),
            Err(RangeError::Inverted { .. })
        ));
        assert!(TimeRange::new(at("2025-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z")).is_ok());
        assert!(matches!(
            TimeRange::new(at("2025-01-01T00:00:00Z"), at("2026-01-02T00:00:01Z")),
            Err(RangeError::TooLong { max_days: 366 })
        ));
        let one_instant = range("2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z");
        assert_eq!(one_instant.days_newest_first(), ["2026-03-01"]);
    }

    #[test]
    fn cursors_resume_only_the_query_they_were_issued_for() {
        let r = range("2026-03-01T00:00:00Z", "2026-03-02T12:00:00Z");
        let position = Position {
            day: Some("2026-03-02".into()),
            after: Some(EntryKey {
                chain_id: "01J".into(),
                seq: 4,
                ts: "2026-03-02T10:00:00.000000Z".into(),
            }),
        };
        let cursor = Cursor::new("q1", &r, position.clone());
        let text = serde_json::to_string(&cursor).unwrap();
        assert_eq!(
            Cursor::resume(&text, "q1", false),
            Some((r.clone(), position.clone()))
        );
        assert_eq!(Cursor::resume(&text, "q2", false), None, "another query");
        assert_eq!(Cursor::resume(&text, "q1", true), None, "another index");
        assert_eq!(Cursor::resume("{", "q1", false), None);

        let outside = |edit: fn(&mut Cursor)| {
            let mut c = Cursor::new("q1", &r, position.clone());
            edit(&mut c);
            Cursor::resume(&serde_json::to_string(&c).unwrap(), "q1", false)
        };
        assert_eq!(
            outside(|c| c.position.day = Some("2026-03-03".into())),
            None
        );
        assert_eq!(
            outside(
                |c| c.position.after.as_mut().unwrap().ts = "2026-03-02T13:00:00.000000Z".into()
            ),
            None
        );
        assert_eq!(
            outside(
                |c| c.position.after.as_mut().unwrap().ts = "2026-03-01T10:00:00.000000Z".into()
            ),
            None,
            "a key outside its day"
        );
        assert_eq!(outside(|c| c.from = "yesterday".into()), None);
        assert_eq!(
            outside(|c| c.from = "2024-01-01T00:00:00.000000Z".into()),
            None
        );
        assert!(outside(|c| c.position.after = None).is_some());
    }

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
