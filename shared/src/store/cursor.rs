//! The cursor of a newest-first listing over a time range (the audit trail's, the
//! feedback's): which query it belongs to, the range that query resolved to, and where
//! the next page starts. Decided here, once: a cursor that was not issued for exactly
//! this query, or whose position lies outside its own range, is `InvalidCursor` (400),
//! so a forged one can neither widen a listing nor make it walk days it does not cover.

use super::StoreError;
use crate::time::{TimeRange, parse_timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a listing resumes, as its store defines it.
pub trait Resumable: Serialize + DeserializeOwned {
    /// The day partition (`YYYY-MM-DD`) to resume in, for a listing that walks days.
    fn day(&self) -> Option<&str>;
    /// The stored timestamp of the last item returned, if the page ended mid-partition.
    fn last_timestamp(&self) -> Option<&str>;
}

/// A listing's cursor. The range is kept because a default window moves with the clock,
/// and the pages of one listing must not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "P: Resumable")]
pub struct Cursor<P> {
    /// [`fingerprint`] of the request's own parameters: a cursor is refused by any other query.
    pub query: String,
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub position: P,
}

/// What binds a cursor to its query: a hash of the parameters exactly as given.
pub fn fingerprint(parameters: &serde_json::Value) -> String {
    hex::encode(&Sha256::digest(parameters.to_string().as_bytes())[..12])
}

impl<P: Resumable> Cursor<P> {
    pub fn new(query: &str, range: &TimeRange, position: P) -> Self {
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
    /// consistent with itself. `by_day`: the listing walks day partitions (else it is
    /// served by one partition and a position names no day).
    pub fn resume(text: &str, query: &str, by_day: bool) -> Result<(TimeRange, P), StoreError> {
        Self::checked(text, query, by_day).ok_or(StoreError::InvalidCursor)
    }

    fn checked(text: &str, query: &str, by_day: bool) -> Option<(TimeRange, P)> {
        let cursor: Self = serde_json::from_str(text).ok()?;
        if cursor.query != query {
            return None;
        }
        let range =
            TimeRange::new(parse_timestamp(&cursor.from)?, parse_timestamp(&cursor.to)?).ok()?;
        let position = cursor.position;
        match (position.day(), by_day) {
            (None, false) => {}
            (Some(day), true) if range.days_newest_first().iter().any(|d| d == day) => {}
            _ => return None,
        }
        if let Some(ts) = position.last_timestamp() {
            let in_day = position.day().is_none_or(|d| ts.starts_with(d));
            if !in_day || !range.contains_key(ts) {
                return None;
            }
        }
        Some((range, position))
    }
}

/// The range and start of one page: the cursor's own when there is one, else the range
/// of the `from`/`to` parameters (422 naming a bad one).
pub fn page_range<P: Resumable>(
    cursor: Option<&str>,
    query: &str,
    by_day: bool,
    from: Option<&str>,
    to: Option<&str>,
    default_window: std::time::Duration,
) -> Result<(TimeRange, Option<P>), crate::ApiError> {
    match cursor {
        Some(text) => {
            let (range, position) = Cursor::<P>::resume(text, query, by_day)?;
            Ok((range, Some(position)))
        }
        None => Ok((
            crate::time::resolve_range(from, to, time::OffsetDateTime::now_utc(), default_window)?,
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct At {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<String>,
    }

    impl Resumable for At {
        fn day(&self) -> Option<&str> {
            self.day.as_deref()
        }
        fn last_timestamp(&self) -> Option<&str> {
            self.ts.as_deref()
        }
    }

    fn range(from: &str, to: &str) -> TimeRange {
        let at = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        TimeRange::new(at(from), at(to)).unwrap()
    }

    #[test]
    fn cursors_resume_only_the_query_they_were_issued_for() {
        let r = range("2026-03-01T00:00:00Z", "2026-03-02T12:00:00Z");
        let position = At {
            day: Some("2026-03-02".into()),
            ts: Some("2026-03-02T10:00:00.000000Z".into()),
        };
        let text = serde_json::to_string(&Cursor::new("q1", &r, position.clone())).unwrap();
        let resume =
            |text: &str, query: &str, by_day: bool| Cursor::<At>::resume(text, query, by_day).ok();
        assert_eq!(
            resume(&text, "q1", true),
            Some((r.clone(), position.clone()))
        );
        assert_eq!(resume(&text, "q2", true), None, "another query");
        assert_eq!(resume(&text, "q1", false), None, "another index");
        assert_eq!(resume("{", "q1", true), None);
        assert!(matches!(
            Cursor::<At>::resume("{", "q1", true),
            Err(StoreError::InvalidCursor)
        ));

        let edited = |edit: fn(&mut Cursor<At>)| {
            let mut c = Cursor::new("q1", &r, position.clone());
            edit(&mut c);
            resume(&serde_json::to_string(&c).unwrap(), "q1", true)
        };
        assert_eq!(
            edited(|c| c.position.day = Some("2026-03-03".into())),
            None,
            "a day outside the range"
        );
        assert_eq!(
            edited(|c| c.position.day = Some("1999-01-01".into())),
            None,
            "a forged day far away"
        );
        assert_eq!(
            edited(|c| c.position.ts = Some("2026-03-02T13:00:00.000000Z".into())),
            None
        );
        assert_eq!(
            edited(|c| c.position.ts = Some("2026-03-01T10:00:00.000000Z".into())),
            None,
            "a key outside its day"
        );
        assert_eq!(edited(|c| c.from = "yesterday".into()), None);
        assert_eq!(
            edited(|c| c.from = "2024-01-01T00:00:00.000000Z".into()),
            None,
            "a range longer than any listing may ask for"
        );
        assert!(edited(|c| c.position.ts = None).is_some());
    }

    #[test]
    fn fingerprints_tell_parameters_apart() {
        let a = fingerprint(&serde_json::json!(["audit", "bob", null]));
        assert_eq!(a, fingerprint(&serde_json::json!(["audit", "bob", null])));
        assert_ne!(a, fingerprint(&serde_json::json!(["audit", null, "bob"])));
        assert_eq!(a.len(), 24);
    }
}
