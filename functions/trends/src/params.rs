//! The query parameters of the three routes, parsed once at the edge: a bad value is a
//! 422 `invalid_parameter` naming the parameter, never a panic and never ignored.

use inferloop::ApiError;
use inferloop::domain::{Line, VersionName};
use inferloop::time::format_day;
use time::{Date, Duration};

/// `days` of `/admin/trends` and `/admin/report`.
pub const MIN_DAYS: u32 = 1;
pub const MAX_DAYS: u32 = 365;
/// `/admin/trends` without `days`: a month, the seeds' analytics default (`30d`).
pub const DEFAULT_TREND_DAYS: u32 = 30;
/// `/admin/report` without `days`: the seed's weekly summary.
pub const DEFAULT_REPORT_DAYS: u32 = 7;

/// `days`, or `default` when absent.
pub fn parse_days(raw: Option<&str>, default: u32) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|d| (MIN_DAYS..=MAX_DAYS).contains(d))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "days must be a whole number from {MIN_DAYS} to {MAX_DAYS}, got {raw:?}"
            ))
        })
}

/// Which feedback a trend covers. All given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// One model version (`v2.0`).
    pub model_version: Option<VersionName>,
    /// The line of the version that answered, whatever the route.
    pub line: Option<Line>,
    /// A/B traffic on one arm only: predictions of `/api/ab/predict` answered by this line.
    pub variant: Option<Line>,
}

impl Filter {
    pub fn parse(
        model_version: Option<&str>,
        line: Option<&str>,
        variant: Option<&str>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            model_version: model_version
                .map(|raw| VersionName::parse_named("model_version", raw))
                .transpose()
                .map_err(ApiError::bad_parameter)?,
            line: line
                .map(|raw| Line::parse_named("line", raw))
                .transpose()
                .map_err(ApiError::bad_parameter)?,
            variant: variant
                .map(|raw| Line::parse_named("variant", raw))
                .transpose()
                .map_err(ApiError::bad_parameter)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.model_version.is_none() && self.line.is_none() && self.variant.is_none()
    }

    /// Only the A/B arm's counters (`ab_*`) count.
    pub fn ab_only(&self) -> bool {
        self.variant.is_some()
    }

    /// Whether a version's item (its `model_version` and `line` as stored) is covered.
    pub fn admits(&self, model_version: &str, line: &str) -> bool {
        self.model_version
            .as_ref()
            .is_none_or(|v| v.as_str() == model_version)
            && self.line.is_none_or(|l| l.as_str() == line)
            && self.variant.is_none_or(|arm| arm.as_str() == line)
    }
}

/// `period` of `/analytics/trends`.
pub fn parse_period(raw: Option<&str>) -> Result<(&'static str, u32), ApiError> {
    match raw.unwrap_or("30d") {
        "7d" => Ok(("7d", 7)),
        "30d" => Ok(("30d", 30)),
        "90d" => Ok(("90d", 90)),
        other => Err(ApiError::invalid_parameter(format!(
            "period must be one of 7d, 30d, 90d, got {other:?}"
        ))),
    }
}

/// One metric of `/analytics/trends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Correct feedback over all feedback.
    Accuracy,
    /// Macro averages over the confusion matrix of labelled feedback.
    F1Score,
    Precision,
    Recall,
}

impl Metric {
    pub const ALL: [Self; 4] = [Self::Accuracy, Self::F1Score, Self::Precision, Self::Recall];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1Score => "f1_score",
            Self::Precision => "precision",
            Self::Recall => "recall",
        }
    }

    /// `metric`: the one named, or all four when absent.
    pub fn parse_list(raw: Option<&str>) -> Result<Vec<Self>, ApiError> {
        let Some(raw) = raw else {
            return Ok(Self::ALL.to_vec());
        };
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .map(|m| vec![m])
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "metric must be one of accuracy, f1_score, precision, recall, got {raw:?}"
                ))
            })
    }
}

/// The current window (the `days` days ending `today`, inclusive) and the previous one
/// (the `days` days before it), in UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: u32,
    pub today: Date,
}

impl Window {
    pub fn new(days: u32, today: Date) -> Self {
        Self { days, today }
    }

    /// `today` minus `n` days; `None` only before the calendar's start (a pinned test date).
    fn back(&self, n: u32) -> Option<Date> {
        self.today.checked_sub(Duration::days(i64::from(n)))
    }

    /// The current window's days, oldest first.
    pub fn current_days(&self) -> Vec<Date> {
        (0..self.days).rev().filter_map(|n| self.back(n)).collect()
    }

    /// The previous window's days, oldest first.
    pub fn previous_days(&self) -> Vec<Date> {
        (self.days..self.days.saturating_mul(2))
            .rev()
            .filter_map(|n| self.back(n))
            .collect()
    }

    pub fn is_current(&self, day: Date) -> bool {
        day <= self.today && self.back(self.days).is_none_or(|before| day > before)
    }

    pub fn dates(&self) -> WindowDates {
        let first = |days: Vec<Date>| days.first().map(|d| format_day(*d)).unwrap_or_default();
        let last = |days: Vec<Date>| days.last().map(|d| format_day(*d)).unwrap_or_default();
        WindowDates {
            from: first(self.current_days()),
            to: format_day(self.today),
            previous_from: first(self.previous_days()),
            previous_to: last(self.previous_days()),
        }
    }
}

/// The windows' bounds as `YYYY-MM-DD`, both inclusive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WindowDates {
    pub from: String,
    pub to: String,
    pub previous_from: String,
    pub previous_to: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn status(err: ApiError) -> u16 {
        err.status_code().as_u16()
    }

    #[test]
    fn days_are_1_to_365() {
        assert_eq!(parse_days(None, 30).unwrap(), 30);
        assert_eq!(parse_days(Some("1"), 30).unwrap(), 1);
        assert_eq!(parse_days(Some("365"), 30).unwrap(), 365);
        for bad in ["0", "366", "-1", "7.5", "seven", "99999999999", ""] {
            let err = parse_days(Some(bad), 30).unwrap_err();
            assert_eq!(status(err), 422, "{bad}");
        }
        assert!(
            parse_days(Some("0"), 7)
                .unwrap_err()
                .to_string()
                .contains("days")
        );
    }

    #[test]
    fn filters_are_checked_and_admit_matching_versions() {
        let f = Filter::parse(Some("v2.0"), Some("v2"), None).unwrap();
        assert_eq!(
            f.model_version.as_ref().map(VersionName::as_str),
            Some("v2.0")
        );
        assert_eq!((f.line, f.variant), (Some(Line::V2), None));
        assert!(f.admits("v2.0", "v2"));
        assert!(!f.admits("v2.1", "v2"));
        assert!(!f.admits("v2.0", "v1"));
        assert!(!f.ab_only());
        let arm = Filter::parse(None, None, Some("v1")).unwrap();
        assert_eq!(arm.variant, Some(Line::V1));
        assert!(arm.ab_only() && arm.admits("anything", "v1") && !arm.admits("x", "v2"));
        assert!(Filter::default().is_empty() && Filter::default().admits("x", ""));
        for (mv, line, variant, named) in [
            (Some("v2#0"), None, None, "model_version"),
            (Some("*"), None, None, "model_version"),
            (Some("2.0"), None, None, "model_version"),
            (None, Some("v3"), None, "line"),
            (None, None, Some("control"), "variant"),
        ] {
            let err = Filter::parse(mv, line, variant).unwrap_err();
            assert!(err.to_string().starts_with(named), "{err}");
            assert_eq!(status(err), 422);
        }
    }

    #[test]
    fn periods_and_metrics() {
        assert_eq!(parse_period(None).unwrap(), ("30d", 30));
        assert_eq!(parse_period(Some("90d")).unwrap(), ("90d", 90));
        assert_eq!(status(parse_period(Some("1y")).unwrap_err()), 422);
        assert_eq!(Metric::parse_list(None).unwrap(), Metric::ALL);
        assert_eq!(
            Metric::parse_list(Some("f1_score")).unwrap(),
            [Metric::F1Score]
        );
        assert_eq!(status(Metric::parse_list(Some("auc")).unwrap_err()), 422);
    }

    #[test]
    fn windows_are_adjacent_and_end_today() {
        let w = Window::new(3, date!(2026 - 03 - 01));
        assert_eq!(
            w.current_days(),
            [
                date!(2026 - 02 - 27),
                date!(2026 - 02 - 28),
                date!(2026 - 03 - 01)
            ]
        );
        assert_eq!(
            w.previous_days(),
            [
                date!(2026 - 02 - 24),
                date!(2026 - 02 - 25),
                date!(2026 - 02 - 26)
            ]
        );
        assert!(w.is_current(date!(2026 - 02 - 27)));
        assert!(!w.is_current(date!(2026 - 02 - 26)));
        assert!(!w.is_current(date!(2026 - 03 - 02)));
        let dates = w.dates();
        assert_eq!(
            (dates.from.as_str(), dates.to.as_str()),
            ("2026-02-27", "2026-03-01")
        );
        assert_eq!(
            (dates.previous_from.as_str(), dates.previous_to.as_str()),
            ("2026-02-24", "2026-02-26")
        );
        assert_eq!(
            Window::new(365, date!(2026 - 03 - 01))
                .previous_days()
                .len(),
            365
        );
        // Near the calendar's start the window is cut short instead of panicking.
        let early = Window::new(5, Date::MIN);
        assert_eq!(early.current_days(), [Date::MIN]);
        assert!(early.previous_days().is_empty());
        assert_eq!(
            inferloop::time::format_day(date!(0031 - 01 - 09)),
            "0031-01-09"
        );
    }
}
