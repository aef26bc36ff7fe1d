//! The one timestamp format every table stores, and the clock.
//!
//! Stored timestamps are `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC: RFC 3339 with always six
//! fractional digits and always `Z`, so that they sort lexicographically in the order
//! of time. The indexes sort on them as strings.

use ::time::format_description::BorrowedFormatItem;
use ::time::macros::format_description;
use ::time::macros::time;
use ::time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use std::time::{SystemTime, UNIX_EPOCH};

const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const TIMESTAMP_WITHOUT_ZONE: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");
const DAY: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// `at` in the one stored format.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    // Formatting fails only for years beyond 9999.
    at.to_offset(UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_default()
}

/// The inverse of [`format_timestamp`]; `None` for anything else.
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let local = text.strip_suffix('Z')?;
    PrimitiveDateTime::parse(local, TIMESTAMP_WITHOUT_ZONE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The current time in the one stored format.
pub fn now_rfc3339() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD`, the day partitions of the indexes.
pub fn format_day(day: Date) -> String {
    day.format(DAY).unwrap_or_default()
}

/// The inverse of [`format_day`].
pub fn parse_day(text: &str) -> Option<Date> {
    Date::parse(text, DAY).ok()
}

/// The day partition (`YYYY-MM-DD`) of a stored timestamp.
pub fn day_of(timestamp: &str) -> &str {
    timestamp.get(..10).unwrap_or(timestamp)
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
    pub const MAX_SPAN: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

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
        let first = self.from.to_offset(UtcOffset::UTC).date();
        let mut day = self.to.to_offset(UtcOffset::UTC).date();
        let mut days = Vec::new();
        while day >= first {
            days.push(format_day(day));
            match day.previous_day() {
                Some(previous) => day = previous,
                None => break,
            }
        }
        days
    }

    /// Whether the stored timestamp `ts` lies in the range.
    pub fn contains_key(&self, ts: &str) -> bool {
        (self.from_key().as_str()..=self.to_key().as_str()).contains(&ts)
    }
}

/// A `from` or `to` parameter: RFC 3339 with any offset, or a date `YYYY-MM-DD`, which
/// means its first instant as `from` and its last as `to` (UTC).
pub fn parse_instant(
    name: &str,
    raw: &str,
    end_of_day: bool,
) -> Result<OffsetDateTime, crate::ApiError> {
    if let Ok(at) = OffsetDateTime::parse(raw, &::time::format_description::well_known::Rfc3339) {
        return Ok(at);
    }
    if let Some(date) = parse_day(raw) {
        let clock = if end_of_day {
            time!(23:59:59.999_999)
        } else {
            time!(00:00)
        };
        return Ok(date.with_time(clock).assume_utc());
    }
    Err(crate::ApiError::invalid_parameter(format!(
        "{name} must be an RFC 3339 time (2026-03-01T12:00:00Z) or a date (2026-03-01), got {raw:?}"
    )))
}

/// The window of `from`..=`to`; without `to`, up to `now`; without `from`, the
/// `default_window` before `to`. Bad values are 422 `invalid_parameter` naming them.
pub fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
    now: OffsetDateTime,
    default_window: std::time::Duration,
) -> Result<TimeRange, crate::ApiError> {
    let to = to
        .map(|raw| parse_instant("to", raw, true))
        .transpose()?
        .unwrap_or(now);
    let from = match from {
        Some(raw) => parse_instant("from", raw, false)?,
        None => to - default_window,
    };
    TimeRange::new(from, to).map_err(|e| crate::ApiError::invalid_parameter(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339).unwrap()
    }

    fn range(from: &str, to: &str) -> TimeRange {
        TimeRange::new(at(from), at(to)).unwrap()
    }

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_time() {
        let whole = format_timestamp(at("2026-03-01T10:00:00Z"));
        let fraction = format_timestamp(at("2026-03-01T10:00:00.5Z"));
        let offset = format_timestamp(at("2026-03-01T12:00:00.000001+02:00"));
        assert_eq!(whole, "2026-03-01T10:00:00.000000Z");
        assert_eq!(fraction, "2026-03-01T10:00:00.500000Z");
        assert_eq!(offset, "2026-03-01T10:00:00.000001Z");
        assert!(whole < offset && offset < fraction);
        assert_eq!(now_rfc3339().len(), whole.len());
        assert_eq!(
            parse_timestamp(&fraction),
            Some(at("2026-03-01T10:00:00.5Z"))
        );
        for bad in ["2026-03-01", "2026-03-01T10:00:00Z", "x", ""] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_round_trip() {
        let day = parse_day("2026-02-28").unwrap();
        assert_eq!(format_day(day.next_day().unwrap()), "2026-03-01");
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(day_of("2026-03-01T10:00:00.000000Z"), "2026-03-01");
        assert_eq!(day_of("short"), "short");
    }

    #[test]
    fn the_clock_is_after_the_epoch() {
        assert!(now_secs() > 1_700_000_000);
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
}
