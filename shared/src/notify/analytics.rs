//! Seed 003's alert analytics (issue 15), computed from day counters, never from the
//! alerts themselves: the alerts function keeps one counter item per day in the same
//! transaction as each alert it first records and each interaction it accepts, and an
//! answer reads one item per day of its windows. Its cost depends on the days asked
//! for, not on how many alerts there were. Pure: the counters in, the figures out.
//!
//! Every figure is of the alerts first raised in the window, by their first firing's
//! day: a day's `resolved` counts the alerts raised that day that were resolved since,
//! whenever that happened. So a window's active alerts are its raised ones less those
//! resolved or dismissed, and each alert counts in one day only.

use super::{Kind, Severity};
use crate::stats::{Comparison, busiest_weekday, compare, forecast_daily_average};
use serde::Serialize;
use std::collections::BTreeMap;
use time::Date;

/// Upper bounds (seconds) of the response-time histogram's buckets: a minute, 5 and 15
/// minutes, half an hour, 1, 2, 4 and 8 hours, a day, two, a week, and beyond. The
/// percentiles are interpolated inside a bucket, so they are as fine as these bounds.
pub const RESPONSE_BUCKETS: [f64; 12] = [
    60.0,
    300.0,
    900.0,
    1_800.0,
    3_600.0,
    7_200.0,
    14_400.0,
    28_800.0,
    86_400.0,
    172_800.0,
    604_800.0,
    f64::INFINITY,
];
/// Days ahead `predictedDailyAverage` looks, as the trends function's forecast.
pub const FORECAST_DAYS: usize = 7;
/// Categories `topCategories` lists.
pub const TOP_CATEGORIES: usize = 3;
/// A change this small (in the figure's own unit) is `stable` in `period_comparison`.
pub const COMPARISON_DEAD_BAND: f64 = 0.0;

/// One day's counters, of the alerts first raised that day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DayCounters {
    /// Raised, by severity (in [`Severity::ALL`]'s order).
    pub raised: [u64; 3],
    pub raised_by_kind: BTreeMap<Kind, u64>,
    /// Alerts with a first interaction, and the sum and histogram of the seconds from
    /// their first firing to it (seed 003's response time).
    pub responded: u64,
    pub response_seconds: f64,
    pub response_histogram: [u64; RESPONSE_BUCKETS.len()],
    /// Resolved by people, and the sum of the seconds from first firing to it.
    pub resolved: u64,
    pub resolve_seconds: f64,
    /// Dismissed as false alarms, by kind.
    pub dismissed_by_kind: BTreeMap<Kind, u64>,
}

impl DayCounters {
    pub fn total(&self) -> u64 {
        self.raised.iter().sum()
    }

    pub fn dismissed(&self) -> u64 {
        self.dismissed_by_kind.values().sum()
    }

    /// The histogram bucket of a response time.
    pub fn bucket_of(seconds: f64) -> usize {
        RESPONSE_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(RESPONSE_BUCKETS.len() - 1)
    }

    fn add(&mut self, other: &DayCounters) {
        for (mine, theirs) in self.raised.iter_mut().zip(other.raised) {
            *mine += theirs;
        }
        for (kind, count) in &other.raised_by_kind {
            *self.raised_by_kind.entry(*kind).or_default() += count;
        }
        self.responded += other.responded;
        self.response_seconds += other.response_seconds;
        for (mine, theirs) in self
            .response_histogram
            .iter_mut()
            .zip(other.response_histogram)
        {
            *mine += theirs;
        }
        self.resolved += other.resolved;
        self.resolve_seconds += other.resolve_seconds;
        for (kind, count) in &other.dismissed_by_kind {
            *self.dismissed_by_kind.entry(*kind).or_default() += count;
        }
    }
}

/// One day of `trends`: the alerts raised, in all and by severity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendDay {
    pub date: String,
    pub count: u64,
    pub info: u64,
    pub warning: u64,
    pub critical: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    pub category: &'static str,
    pub count: u64,
    /// Of the window's alerts, in percent (one decimal).
    pub percentage: f64,
}

/// The window against the one before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodComparison {
    pub total_alerts: Comparison,
    pub resolution_rate: Comparison,
    pub average_response_time: Comparison,
}

/// Seed 003's `AnalyticsResponse` (its camelCase names), and ours beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analytics {
    pub trends: Vec<TrendDay>,
    /// Mean seconds from first firing to the first interaction, rounded.
    pub average_response_time: u64,
    pub top_categories: Vec<Category>,
    pub total_alerts: u64,
    pub resolved_alerts: u64,
    /// Raised and neither resolved nor dismissed (acknowledged and snoozed included).
    pub active_alerts: u64,
    /// Resolved of raised, in percent, rounded.
    pub resolution_rate: u64,
    /// The least-squares line over the daily counts, averaged over the next
    /// [`FORECAST_DAYS`] days, rounded (the mean when no line fits).
    pub predicted_daily_average: u64,
    /// The weekday with the most alerts, or "" when there were none.
    pub busiest_day: String,
    #[serde(rename = "response_time_p50_seconds")]
    pub response_time_p50_seconds: Option<f64>,
    #[serde(rename = "response_time_p90_seconds")]
    pub response_time_p90_seconds: Option<f64>,
    #[serde(rename = "mean_time_to_resolve_seconds")]
    pub mean_time_to_resolve_seconds: Option<f64>,
    /// Per kind: the share of its alerts people dismissed as false alarms.
    #[serde(rename = "false_alarm_share_by_kind")]
    pub false_alarm_share_by_kind: BTreeMap<&'static str, f64>,
    #[serde(rename = "dismissed_alerts")]
    pub dismissed_alerts: u64,
    #[serde(rename = "period_comparison")]
    pub period_comparison: PeriodComparison,
}

/// The headline figures of one window, for the comparison.
struct Headline {
    total: f64,
    resolution_rate: f64,
    average_response: f64,
}

fn headline(sum: &DayCounters) -> Headline {
    let total = sum.total();
    Headline {
        total: total as f64,
        resolution_rate: percent(sum.resolved, total),
        average_response: if sum.responded == 0 {
            0.0
        } else {
            sum.response_seconds / sum.responded as f64
        },
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The `q` quantile (0–1) of the histogram, interpolated linearly inside its bucket
/// (the last, unbounded one answers with its lower bound); `None` with no responses.
pub fn histogram_quantile(histogram: &[u64; RESPONSE_BUCKETS.len()], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &count) in histogram.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if (below + count) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { RESPONSE_BUCKETS[i - 1] };
            let upper = RESPONSE_BUCKETS[i];
            if upper.is_infinite() {
                return Some(lower);
            }
            let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            return Some(lower + within * (upper - lower));
        }
        below += count;
    }
    None
}

/// The analytics of `window` (every day of it, oldest first, a day with no alerts as
/// empty counters) against `previous` (the window of the same length before it).
pub fn analytics(window: &[(Date, DayCounters)], previous: &[(Date, DayCounters)]) -> Analytics {
    let mut sum = DayCounters::default();
    for (_, day) in window {
        sum.add(day);
    }
    let mut before = DayCounters::default();
    for (_, day) in previous {
        before.add(day);
    }
    let total = sum.total();
    let dismissed = sum.dismissed();
    let trends = window
        .iter()
        .map(|(date, day)| TrendDay {
            date: date.to_string(),
            count: day.total(),
            info: day.raised[0],
            warning: day.raised[1],
            critical: day.raised[2],
        })
        .collect();
    let mut categories: Vec<(Kind, u64)> = sum
        .raised_by_kind
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (*k, *n))
        .collect();
    // Most first; ties by the kind's name, so the answer is deterministic.
    categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
    let top_categories = categories
        .into_iter()
        .take(TOP_CATEGORIES)
        .map(|(kind, count)| Category {
            category: kind.as_str(),
            count,
            percentage: (percent(count, total) * 10.0).round() / 10.0,
        })
        .collect();
    let volumes: Vec<f64> = window.iter().map(|(_, d)| d.total() as f64).collect();
    let mean_volume = if volumes.is_empty() {
        0.0
    } else {
        total as f64 / volumes.len() as f64
    };
    let predicted = forecast_daily_average(&volumes, FORECAST_DAYS).unwrap_or(mean_volume);
    let busiest = busiest_weekday(
        &window
            .iter()
            .map(|(date, day)| (*date, day.total()))
            .collect::<Vec<_>>(),
    );
    let false_alarm_share_by_kind = sum
        .raised_by_kind
        .iter()
        .filter(|(_, raised)| **raised > 0)
        .map(|(kind, raised)| {
            let dismissed = sum.dismissed_by_kind.get(kind).copied().unwrap_or(0);
            (kind.as_str(), dismissed as f64 / *raised as f64)
        })
        .collect();
    let now = headline(&sum);
    let then = headline(&before);
    Analytics {
        trends,
        average_response_time: now.average_response.round() as u64,
        top_categories,
        total_alerts: total,
        resolved_alerts: sum.resolved,
        active_alerts: total.saturating_sub(sum.resolved + dismissed),
        resolution_rate: now.resolution_rate.round() as u64,
        predicted_daily_average: predicted.round() as u64,
        busiest_day: busiest.map(|d| d.to_string()).unwrap_or_default(),
        response_time_p50_seconds: histogram_quantile(&sum.response_histogram, 0.5),
        response_time_p90_seconds: histogram_quantile(&sum.response_histogram, 0.9),
        mean_time_to_resolve_seconds: (sum.resolved > 0)
            .then(|| sum.resolve_seconds / sum.resolved as f64),
        false_alarm_share_by_kind,
        dismissed_alerts: dismissed,
        period_comparison: PeriodComparison {
            total_alerts: lower_is_better(now.total, then.total),
            resolution_rate: compare(
                now.resolution_rate,
                then.resolution_rate,
                COMPARISON_DEAD_BAND,
            ),
            average_response_time: lower_is_better(now.average_response, then.average_response),
        },
    }
}

/// [`compare`] for a figure where less is better (alerts, response times): its trend
/// is `improving` when the figure fell; the numbers stay as they are.
fn lower_is_better(current: f64, previous: f64) -> Comparison {
    Comparison {
        trend: compare(previous, current, COMPARISON_DEAD_BAND).trend,
        ..compare(current, previous, COMPARISON_DEAD_BAND)
    }
}

/// The severity's slot in [`DayCounters::raised`].
pub fn severity_slot(severity: Severity) -> usize {
    Severity::ALL
        .iter()
        .position(|s| *s == severity)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Trend;
    use time::macros::date;

    /// One alert of a test day: kind, severity, first response after s, resolved after
    /// s, dismissed.
    type TestAlert = (Kind, Severity, Option<f64>, Option<f64>, bool);

    /// A day's counters from its alerts, as the alerts function would have kept them.
    fn day(alerts: &[TestAlert]) -> DayCounters {
        let mut c = DayCounters::default();
        for &(kind, severity, response, resolve, dismissed) in alerts {
            c.raised[severity_slot(severity)] += 1;
            *c.raised_by_kind.entry(kind).or_default() += 1;
            if let Some(s) = response {
                c.responded += 1;
                c.response_seconds += s;
                c.response_histogram[DayCounters::bucket_of(s)] += 1;
            }
            if let Some(s) = resolve {
                c.resolved += 1;
                c.resolve_seconds += s;
            }
            if dismissed {
                *c.dismissed_by_kind.entry(kind).or_default() += 1;
            }
        }
        c
    }

    use Kind::{Drift, Manual, Retrain};
    use Severity::{Critical, Info, Warning};

    /// A hand-computed week: 2026-11-30 is a Monday.
    fn week() -> Vec<(Date, DayCounters)> {
        vec![
            (
                date!(2026 - 11 - 30),
                day(&[
                    (Drift, Warning, Some(120.0), Some(600.0), false),
                    (Drift, Critical, Some(60.0), None, false),
                ]),
            ),
            (date!(2026 - 12 - 01), DayCounters::default()),
            (
                date!(2026 - 12 - 02),
                day(&[
                    (Retrain, Info, Some(30.0), Some(30.0), false),
                    (Drift, Warning, Some(3_000.0), None, true),
                    (Manual, Info, None, None, false),
                    (Drift, Warning, None, None, false),
                ]),
            ),
        ]
    }

    #[test]
    fn a_small_week_gives_the_figures_worked_out_by_hand() {
        let a = analytics(&week(), &[]);
        assert_eq!(a.total_alerts, 6);
        assert_eq!(a.resolved_alerts, 2);
        assert_eq!(a.dismissed_alerts, 1);
        assert_eq!(a.active_alerts, 3, "6 raised − 2 resolved − 1 dismissed");
        assert_eq!(a.resolution_rate, 33, "2 of 6");
        // (120 + 60 + 30 + 3000) / 4 = 802.5
        assert_eq!(a.average_response_time, 803);
        assert_eq!(
            a.mean_time_to_resolve_seconds,
            Some(315.0),
            "(600 + 30) / 2"
        );
        assert_eq!(a.busiest_day, "Wednesday");
        assert_eq!(
            a.trends.iter().map(|t| t.count).collect::<Vec<_>>(),
            [2, 0, 4]
        );
        assert_eq!(
            (a.trends[2].info, a.trends[2].warning, a.trends[2].critical),
            (2, 2, 0)
        );
        assert_eq!(a.trends[0].date, "2026-11-30");
        // Counts 2, 0, 4: slope 1, intercept 1 (x = 0, 1, 2); the next 7 days are
        // x = 3..=9, whose mean is x = 6: 1 + 6 = 7.
        assert_eq!(a.predicted_daily_average, 7);
        assert_eq!(
            a.top_categories,
            [
                Category {
                    category: "drift",
                    count: 4,
                    percentage: 66.7
                },
                Category {
                    category: "manual",
                    count: 1,
                    percentage: 16.7
                },
                Category {
                    category: "retrain",
                    count: 1,
                    percentage: 16.7
                },
            ]
        );
        assert_eq!(a.false_alarm_share_by_kind["drift"], 0.25);
        assert_eq!(a.false_alarm_share_by_kind["retrain"], 0.0);
        // Responses 30, 60, 120, 3000 s: buckets ≤60 (two), ≤300, ≤3600. The median's
        // rank is 2: the top of the first bucket; p90's rank 3.6 falls in ≤3600 (from
        // 1800) at 0.6 of its width: 1800 + 0.6 × 1800 = 2880.
        assert_eq!(a.response_time_p50_seconds, Some(60.0));
        let p90 = a.response_time_p90_seconds.unwrap();
        assert!((p90 - 2_880.0).abs() < 1e-9, "{p90}");
    }

    #[test]
    fn a_window_with_nothing_answers_zeros_not_errors() {
        let empty = vec![(date!(2026 - 12 - 01), DayCounters::default())];
        let a = analytics(&empty, &empty);
        assert_eq!(
            (a.total_alerts, a.active_alerts, a.resolution_rate),
            (0, 0, 0)
        );
        assert_eq!(a.busiest_day, "");
        assert_eq!(a.response_time_p50_seconds, None);
        assert_eq!(a.mean_time_to_resolve_seconds, None);
        assert!(a.top_categories.is_empty() && a.false_alarm_share_by_kind.is_empty());
        assert_eq!(a.period_comparison.total_alerts.trend, Trend::Stable);
        let a = analytics(&[], &[]);
        assert_eq!(a.predicted_daily_average, 0);
    }

    #[test]
    fn the_period_comparison_says_which_way_each_figure_went() {
        let previous = vec![(
            date!(2026 - 11 - 23),
            day(&[
                (Drift, Warning, Some(60.0), Some(60.0), false),
                (Drift, Warning, Some(60.0), None, false),
            ]),
        )];
        let a = analytics(&week(), &previous);
        let c = &a.period_comparison;
        assert_eq!(
            (c.total_alerts.previous, c.total_alerts.current),
            (2.0, 6.0)
        );
        assert_eq!(
            c.total_alerts.trend,
            Trend::Declining,
            "more alerts is worse"
        );
        assert_eq!(c.resolution_rate.previous, 50.0);
        assert_eq!(c.resolution_rate.trend, Trend::Declining);
        // Slower responses (802.5 s against 60 s) are worse: declining.
        assert_eq!(c.average_response_time.current, 802.5);
        assert_eq!(c.average_response_time.change, 742.5);
        assert_eq!(c.average_response_time.trend, Trend::Declining);
    }

    #[test]
    fn buckets_and_quantiles_hold_at_their_edges() {
        assert_eq!(DayCounters::bucket_of(0.0), 0);
        assert_eq!(DayCounters::bucket_of(60.0), 0);
        assert_eq!(DayCounters::bucket_of(60.5), 1);
        assert_eq!(DayCounters::bucket_of(1e9), RESPONSE_BUCKETS.len() - 1);
        let mut h = [0u64; RESPONSE_BUCKETS.len()];
        assert_eq!(histogram_quantile(&h, 0.5), None);
        h[RESPONSE_BUCKETS.len() - 1] = 3;
        assert_eq!(
            histogram_quantile(&h, 0.9),
            Some(604_800.0),
            "beyond a week"
        );
        h = [0; RESPONSE_BUCKETS.len()];
        h[0] = 4;
        assert_eq!(histogram_quantile(&h, 0.5), Some(30.0), "half-way up ≤60");
        assert_eq!(histogram_quantile(&h, 0.0), Some(0.0));
    }

    #[test]
    fn the_seeds_names_are_kept_and_ours_are_snake_case() {
        let json = serde_json::to_value(analytics(&week(), &[])).unwrap();
        for name in [
            "trends",
            "averageResponseTime",
            "topCategories",
            "totalAlerts",
            "resolvedAlerts",
            "activeAlerts",
            "resolutionRate",
            "predictedDailyAverage",
            "busiestDay",
            "response_time_p50_seconds",
            "response_time_p90_seconds",
            "mean_time_to_resolve_seconds",
            "false_alarm_share_by_kind",
            "dismissed_alerts",
            "period_comparison",
        ] {
            assert!(json.get(name).is_some(), "{name} missing: {json}");
        }
    }
}
