//! Trend lines and period-over-period comparisons for the trends function.

use serde::{Deserialize, Serialize};
use time::{Date, Weekday};

/// How far a day's accuracy (0–1 scale) must move before we call it a trend: one
/// percentage point.
///
/// A day's accuracy is a proportion over a few hundred labelled predictions at most,
/// and its sampling noise is about `sqrt(p (1 − p) / n)`: at p = 0.95 and n = 500 that is
/// ≈ 0.0097. Changes within one point are therefore indistinguishable from noise, and
/// calling them "improving" or "declining" would make the dashboard flicker daily.
/// Use [`super::two_proportion_z_test`] when a formal answer is wanted.
pub const ACCURACY_DEAD_BAND: f64 = 0.01;

/// `y = slope · x + intercept`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub slope: f64,
    pub intercept: f64,
}

impl Line {
    pub fn at(&self, x: f64) -> f64 {
        self.slope * x + self.intercept
    }
}

/// Ordinary least-squares line through `(i, ys[i])` for i = 0..n.
///
/// `None` for fewer than two points (no line is determined) and for input that makes
/// the fit non-finite (NaN or infinite values, or sums that overflow).
pub fn least_squares(ys: &[f64]) -> Option<Line> {
    let n = ys.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    // Centring x on its mean keeps the sums small and the fit numerically stable.
    let x_mean = (nf - 1.0) / 2.0;
    let y_mean = ys.iter().sum::<f64>() / nf;
    let (sxy, sxx) = ys
        .iter()
        .enumerate()
        .fold((0.0, 0.0), |(sxy, sxx), (i, &y)| {
            let dx = i as f64 - x_mean;
            (sxy + dx * (y - y_mean), sxx + dx * dx)
        });
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    (slope.is_finite() && intercept.is_finite()).then_some(Line { slope, intercept })
}

/// Mean of the fitted line over the next `days_ahead` days (x = n .. n + days_ahead − 1),
/// clamped at 0 because a daily count cannot be negative.
///
/// `None` when no line can be fitted ([`least_squares`]) or `days_ahead` is 0 (the mean
/// of nothing).
pub fn forecast_daily_average(series: &[f64], days_ahead: usize) -> Option<f64> {
    if days_ahead == 0 {
        return None;
    }
    let line = least_squares(series)?;
    // A line's mean over evenly spaced points is its value at their midpoint.
    let midpoint = series.len() as f64 + (days_ahead as f64 - 1.0) / 2.0;
    let value = line.at(midpoint);
    value.is_finite().then_some(value.max(0.0))
}

/// Direction of a metric where higher is better (accuracy, F1). For a metric where
/// lower is better (error rate, latency), swap `current` and `previous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Improving,
    Declining,
    Stable,
}

/// `Stable` when `|current − previous| ≤ dead_band`, else the direction of the change.
///
/// A negative or NaN `dead_band` counts as 0, and a NaN change is `Stable`: there is no
/// evidence of movement.
pub fn classify(current: f64, previous: f64, dead_band: f64) -> Trend {
    let dead_band = dead_band.max(0.0); // f64::max ignores a NaN operand.
    let change = current - previous;
    if change.is_nan() || change.abs() <= dead_band {
        Trend::Stable
    } else if change > 0.0 {
        Trend::Improving
    } else {
        Trend::Declining
    }
}

/// One metric, this period against the last: the shape of `/analytics/trends` entries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub current: f64,
    pub previous: f64,
    /// `current − previous`.
    pub change: f64,
    pub trend: Trend,
}

/// Builds a [`Comparison`], classifying it with [`classify`].
pub fn compare(current: f64, previous: f64, dead_band: f64) -> Comparison {
    Comparison {
        current,
        previous,
        change: current - previous,
        trend: classify(current, previous, dead_band),
    }
}

const WEEK: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// The weekday with the largest total count over `daily` (dates may repeat).
///
/// Ties go to the earliest weekday, Monday first, so the answer is deterministic.
/// `None` when there is no traffic at all (empty input or all counts 0): no day is
/// the busiest.
pub fn busiest_weekday(daily: &[(Date, u64)]) -> Option<Weekday> {
    let mut totals = [0u64; 7];
    for (date, count) in daily {
        let day = usize::from(date.weekday().number_days_from_monday());
        if let Some(total) = totals.get_mut(day) {
            *total = total.saturating_add(*count);
        }
    }
    // `max_by_key` keeps the last maximum; iterating in reverse makes that Monday-first.
    let (&day, best) = WEEK
        .iter()
        .zip(totals)
        .rev()
        .max_by_key(|&(_, total)| total)?;
    (best > 0).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn least_squares_needs_two_points() {
        assert_eq!(least_squares(&[]), None);
        assert_eq!(least_squares(&[3.0]), None);
    }

    #[test]
    fn least_squares_recovers_exact_line() {
        let ys: Vec<f64> = (0..10).map(|x| 2.5 * f64::from(x) - 4.0).collect();
        let line = least_squares(&ys).unwrap();
        assert!(close(line.slope, 2.5));
        assert!(close(line.intercept, -4.0));
        let two = least_squares(&[1.0, 3.0]).unwrap();
        assert_eq!(
            two,
            Line {
                slope: 2.0,
                intercept: 1.0
            }
        );
    }

    #[test]
    fn least_squares_flat_and_noisy() {
        let flat = least_squares(&[7.0; 5]).unwrap();
        assert_eq!(
            flat,
            Line {
                slope: 0.0,
                intercept: 7.0
            }
        );
        // By hand for ys = [1, 2, 2, 5]: x̄ = 1.5, ȳ = 2.5, Sxy = 6, Sxx = 5,
        // slope 1.2, intercept 2.5 − 1.2 · 1.5 = 0.7.
        let line = least_squares(&[1.0, 2.0, 2.0, 5.0]).unwrap();
        assert!(close(line.slope, 1.2));
        assert!(close(line.intercept, 0.7));
    }

    #[test]
    fn least_squares_rejects_non_finite() {
        assert_eq!(least_squares(&[1.0, f64::NAN, 3.0]), None);
        assert_eq!(least_squares(&[1.0, f64::INFINITY]), None);
        assert_eq!(least_squares(&[f64::MAX, f64::MAX, -f64::MAX]), None);
    }

    #[test]
    fn forecast_follows_the_line() {
        // y = 10 + 2x over x = 0..5; next 3 days x = 5, 6, 7 → 20, 22, 24 → mean 22.
        let series = [10.0, 12.0, 14.0, 16.0, 18.0];
        assert!(close(forecast_daily_average(&series, 3).unwrap(), 22.0));
        assert!(close(forecast_daily_average(&series, 1).unwrap(), 20.0));
        assert!(close(forecast_daily_average(&[4.0; 7], 30).unwrap(), 4.0));
    }

    #[test]
    fn forecast_clamps_at_zero_and_handles_degenerate_input() {
        // y = 8 − 4x: the next days are negative, so 0 visits are forecast.
        assert_eq!(forecast_daily_average(&[8.0, 4.0, 0.0], 7), Some(0.0));
        assert_eq!(forecast_daily_average(&[], 7), None);
        assert_eq!(forecast_daily_average(&[5.0], 7), None);
        assert_eq!(forecast_daily_average(&[1.0, 2.0], 0), None);
        assert!(
            forecast_daily_average(&[1.0, 2.0], usize::MAX)
                .unwrap()
                .is_finite()
        );
    }

    #[test]
    fn classify_respects_dead_band() {
        assert_eq!(classify(0.95, 0.93, ACCURACY_DEAD_BAND), Trend::Improving);
        assert_eq!(classify(0.91, 0.93, ACCURACY_DEAD_BAND), Trend::Declining);
        assert_eq!(classify(0.935, 0.93, ACCURACY_DEAD_BAND), Trend::Stable);
        assert_eq!(classify(0.5, 0.5, 0.0), Trend::Stable);
        assert_eq!(classify(0.5, 0.25, 0.25), Trend::Stable); // exactly on the band
        assert_eq!(classify(0.6, 0.5, -1.0), Trend::Improving);
        assert_eq!(classify(0.5, 0.5, -1.0), Trend::Stable);
        assert_eq!(classify(f64::NAN, 0.5, 0.01), Trend::Stable);
        assert_eq!(classify(0.6, 0.5, f64::NAN), Trend::Improving);
    }

    #[test]
    fn compare_serialises_lowercase_trend() {
        let c = compare(0.90, 0.95, ACCURACY_DEAD_BAND);
        assert!(close(c.change, -0.05));
        assert_eq!(c.trend, Trend::Declining);
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["trend"], "declining");
        assert_eq!(json["current"], 0.90);
        assert_eq!(serde_json::to_value(Trend::Improving).unwrap(), "improving");
        assert_eq!(serde_json::to_value(Trend::Stable).unwrap(), "stable");
    }

    #[test]
    fn busiest_weekday_sums_per_weekday() {
        // 2024-01-01 is a Monday.
        let daily = [
            (date!(2024 - 01 - 01), 5), // Monday
            (date!(2024 - 01 - 03), 4), // Wednesday
            (date!(2024 - 01 - 08), 2), // Monday
            (date!(2024 - 01 - 10), 4), // Wednesday: 8 in total beats Monday's 7
        ];
        assert_eq!(busiest_weekday(&daily), Some(Weekday::Wednesday));
    }

    #[test]
    fn busiest_weekday_ties_and_empty() {
        assert_eq!(busiest_weekday(&[]), None);
        assert_eq!(busiest_weekday(&[(date!(2024 - 01 - 02), 0)]), None);
        // Sunday and Tuesday tie: Tuesday comes first in a Monday-first week.
        let tie = [(date!(2024 - 01 - 07), 3), (date!(2024 - 01 - 02), 3)];
        assert_eq!(busiest_weekday(&tie), Some(Weekday::Tuesday));
        let huge = [
            (date!(2024 - 01 - 07), u64::MAX),
            (date!(2024 - 01 - 14), 1),
        ];
        assert_eq!(busiest_weekday(&huge), Some(Weekday::Sunday));
    }
}
