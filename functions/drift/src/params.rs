//! The drift routes' query parameters, parsed once at the edge: a bad value is a 422
//! `invalid_parameter` naming the parameter.

use inferloop::ApiError;
use inferloop::domain::Line;
use inferloop::http::query_param;
use inferloop::time::TimeRange;
use lambda_http::Request;
use time::OffsetDateTime;

/// A whole number parameter in `range`, or `default` when absent.
pub fn whole(
    req: &Request,
    name: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ApiError> {
    let Some(raw) = query_param(req, name) else {
        return Ok(default);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "{name} must be a whole number from {} to {}, got {raw:?}",
                range.start(),
                range.end()
            ))
        })
}

/// `days` of history, summary and alerts.
pub fn days(req: &Request, default: u32) -> Result<u32, ApiError> {
    whole(req, "days", default, 1..=365)
}

/// `line` (`v1`, `v2`), if given.
pub fn line(req: &Request) -> Result<Option<Line>, ApiError> {
    query_param(req, "line")
        .map(|raw| Line::parse_named("line", &raw))
        .transpose()
        .map_err(ApiError::bad_parameter)
}

/// A production window: `from`/`to` (RFC 3339 or dates), or the last `hours` (default
/// `default_hours`) up to now; not both forms at once.
pub fn window(
    req: &Request,
    now: OffsetDateTime,
    default_hours: u32,
) -> Result<TimeRange, ApiError> {
    let (from, to) = (query_param(req, "from"), query_param(req, "to"));
    let hours = query_param(req, "hours");
    if hours.is_some() && (from.is_some() || to.is_some()) {
        return Err(ApiError::invalid_parameter(
            "give either hours or from/to, not both",
        ));
    }
    if from.is_some() || to.is_some() {
        let range = inferloop::time::resolve_range(
            from.as_deref(),
            to.as_deref(),
            now,
            std::time::Duration::from_secs(u64::from(default_hours) * 3600),
        )?;
        return bounded(range);
    }
    let hours = whole(req, "hours", default_hours, 1..=MAX_HOURS)?;
    TimeRange::new(now - time::Duration::hours(i64::from(hours)), now)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))
}

/// `range`, if it spans at most [`MAX_HOURS`].
pub fn bounded(range: TimeRange) -> Result<TimeRange, ApiError> {
    if range_hours(&range) > f64::from(MAX_HOURS) {
        return Err(ApiError::invalid_parameter(format!(
            "the window spans more than {MAX_HOURS} hours; ask for a shorter one"
        )));
    }
    Ok(range)
}

/// The longest production window (30 days of hour buckets).
pub const MAX_HOURS: u32 = 720;

fn range_hours(range: &TimeRange) -> f64 {
    let parse = |key: String| inferloop::time::parse_timestamp(&key);
    match (parse(range.from_key()), parse(range.to_key())) {
        (Some(from), Some(to)) => (to - from).as_seconds_f64() / 3600.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> Request {
        lambda_http::http::Request::builder()
            .uri(format!("/drift/history?{query}"))
            .body(lambda_http::Body::Empty)
            .unwrap()
    }

    #[test]
    fn numbers_are_ranged_and_named() {
        assert_eq!(days(&req(""), 30).unwrap(), 30);
        assert_eq!(days(&req("days=7"), 30).unwrap(), 7);
        for bad in ["days=0", "days=366", "days=x", "days=-1", "days=1.5"] {
            let err = days(&req(bad), 30).unwrap_err();
            assert_eq!(err.status_code().as_u16(), 422, "{bad}");
            assert!(err.to_string().contains("days"), "{bad}");
        }
    }

    #[test]
    fn windows_are_hours_or_a_range_not_both() {
        let now = OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap();
        let last = window(&req("hours=6"), now, 24).unwrap();
        assert_eq!(
            inferloop::time::parse_timestamp(&last.from_key()).unwrap(),
            now - time::Duration::hours(6)
        );
        assert!(window(&req("hours=6&from=2026-12-01"), now, 24).is_err());
        assert!(window(&req("hours=721"), now, 24).is_err());
        let range = window(
            &req("from=2026-12-01T00:00:00Z&to=2026-12-01T05:00:00Z"),
            now,
            24,
        )
        .unwrap();
        assert_eq!(range.from_key(), "2026-12-01T00:00:00.000000Z");
        assert!(window(&req("from=2026-10-01&to=2026-12-01"), now, 24).is_err());
        assert!(window(&req("from=yesterday"), now, 24).is_err());
        assert!(line(&req("line=v3")).is_err());
        assert_eq!(line(&req("line=v2")).unwrap().unwrap().as_str(), "v2");
    }
}
