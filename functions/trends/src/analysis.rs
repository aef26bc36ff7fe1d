//! What the three routes compute from the aggregate items once they are read: pure
//! functions over counts, so every number here can be checked without a table.
//!
//! Scales: `accuracy_percentage` is the seeds' 0–100 percentage; every other accuracy,
//! precision, recall and F1 is a 0–1 ratio, the scale of [`ACCURACY_DEAD_BAND`].

use crate::params::{Filter, LINES, Metric, Window, WindowDates, day_key};
use inferloop::stats::{
    ACCURACY_DEAD_BAND, Comparison, Confusion, NUM_CLASSES, Trend, busiest_weekday, compare,
    forecast_daily_average, least_squares, two_proportion_z_test,
};
use inferloop::store::aggregates::Counters;
use serde::Serialize;
use std::collections::BTreeMap;
use time::Date;

/// The daily average is forecast for this many days after today.
pub const FORECAST_DAYS: usize = 7;
/// Significance level of the A/B test's `significant` flag.
pub const AB_ALPHA: f64 = 0.05;

/// Counts of one set of feedback: a day, a window, a version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub correct: u64,
    /// Feedback per predicted digit.
    pub predictions: [u64; NUM_CLASSES],
    /// Labelled feedback, `[true][predicted]`.
    pub confusion: Confusion,
}

impl Tally {
    /// One item's counters; with `ab_only`, only its A/B traffic (the `ab_*` counters).
    pub fn of(counters: &Counters, ab_only: bool) -> Self {
        let mut tally = Self::default();
        for (name, &value) in &counters.values {
            let name = if ab_only {
                match name.strip_prefix("ab_") {
                    Some(rest) => rest,
                    None => continue,
                }
            } else {
                name.as_str()
            };
            if name == "total" {
                tally.total = value;
            } else if name == "correct" {
                tally.correct = value;
            } else if let Some(digit) = name.strip_prefix("pred_").and_then(digit) {
                tally.predictions[digit] = value;
            } else if let Some((t, p)) = name.strip_prefix("cm_").and_then(|r| r.split_once('_'))
                && let (Some(t), Some(p)) = (digit(t), digit(p))
            {
                tally.confusion.0[t][p] = value;
            }
        }
        tally
    }

    pub fn add(&mut self, other: &Self) {
        self.total = self.total.saturating_add(other.total);
        self.correct = self.correct.saturating_add(other.correct);
        for (mine, theirs) in self.predictions.iter_mut().zip(other.predictions) {
            *mine = mine.saturating_add(theirs);
        }
        self.confusion += &other.confusion;
    }

    pub fn incorrect(&self) -> u64 {
        self.total.saturating_sub(self.correct)
    }

    /// Correct over all feedback (the seeds' definition); 0 without feedback.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.total)
    }

    pub fn labelled(&self) -> u64 {
        self.confusion.total()
    }

    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Accuracy => self.accuracy(),
            Metric::F1Score => self.confusion.macro_f1(),
            Metric::Precision => self.confusion.macro_precision(),
            Metric::Recall => self.confusion.macro_recall(),
        }
    }

    /// How many samples `metric` is computed from.
    fn basis(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Accuracy => self.total,
            _ => self.labelled(),
        }
    }
}

fn digit(text: &str) -> Option<usize> {
    text.parse::<usize>().ok().filter(|&d| d < NUM_CLASSES)
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// What was read for one request, already restricted to the filter.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every day of both windows, with its tally (zero when nothing was written).
    pub days: BTreeMap<Date, Tally>,
    /// Version items (current window) that match the filter, with their tally: the
    /// breakdowns and the A/B test. Empty when not asked for.
    pub versions: Vec<VersionDay>,
    /// DynamoDB read calls (BatchGetItem) made.
    pub reads: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionDay {
    pub model_version: String,
    pub line: String,
    pub day: Date,
    /// As the filter counts it (only A/B traffic with `variant`).
    pub tally: Tally,
    /// The version's A/B traffic, for the A/B comparison.
    pub ab: Tally,
}

impl Loaded {
    fn window_tally(&self, days: &[Date]) -> Tally {
        let mut sum = Tally::default();
        for day in days {
            if let Some(t) = self.days.get(day) {
                sum.add(t);
            }
        }
        sum
    }
}

/// `current` against `previous` for a ratio metric. A window without any samples has
/// no value to compare, so the trend is `stable` then (the ratio of nothing is 0, and
/// 0 → 0.93 is not an improvement).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricComparison {
    #[serde(flatten)]
    pub comparison: Comparison,
    /// Samples behind `current` and `previous`.
    pub current_samples: u64,
    pub previous_samples: u64,
}

fn compare_metric(current: &Tally, previous: &Tally, metric: Metric) -> MetricComparison {
    let mut comparison = compare(
        current.metric(metric),
        previous.metric(metric),
        ACCURACY_DEAD_BAND,
    );
    let (current_samples, previous_samples) = (current.basis(metric), previous.basis(metric));
    if current_samples == 0 || previous_samples == 0 {
        comparison.trend = Trend::Stable;
    }
    MetricComparison {
        comparison,
        current_samples,
        previous_samples,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterEcho {
    pub model_version: Option<String>,
    pub line: Option<String>,
    pub variant: Option<String>,
}

impl From<&Filter> for FilterEcho {
    fn from(f: &Filter) -> Self {
        Self {
            model_version: f.model_version.clone(),
            line: f.line.clone(),
            variant: f.variant.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyPoint {
    pub date: String,
    pub total: u64,
    pub correct: u64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassRow {
    pub digit: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Averages {
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub weighted_f1: f64,
}

impl Averages {
    fn of(c: &Confusion) -> Self {
        Self {
            macro_precision: c.macro_precision(),
            macro_recall: c.macro_recall(),
            macro_f1: c.macro_f1(),
            weighted_f1: c.weighted_f1(),
        }
    }
}

/// One version's or one line's share of the current window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    pub line: String,
    pub total: u64,
    pub correct: u64,
    pub incorrect: u64,
    pub accuracy: f64,
    pub labelled: u64,
    pub macro_f1: f64,
}

impl Breakdown {
    fn of(model_version: Option<String>, line: String, t: &Tally) -> Self {
        Self {
            model_version,
            line,
            total: t.total,
            correct: t.correct,
            incorrect: t.incorrect(),
            accuracy: t.accuracy(),
            labelled: t.labelled(),
            macro_f1: t.confusion.macro_f1(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodComparison {
    /// What is compared: accuracy, correct over all feedback.
    pub metric: &'static str,
    #[serde(flatten)]
    pub values: MetricComparison,
    /// `|change| ≤ dead_band` is `stable`.
    pub dead_band: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub days_ahead: usize,
    /// Mean daily feedback volume over the next `days_ahead` days, from the least-squares
    /// line through the current window's daily volumes (days without feedback count as
    /// 0), never negative. With a one-day window: that day's volume.
    pub predicted_daily_average: f64,
    /// The line's slope: feedback per day, per day. `null` with a one-day window.
    pub slope_per_day: Option<f64>,
    pub method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    pub total: u64,
    pub correct: u64,
    pub accuracy: f64,
}

impl Arm {
    fn of(t: &Tally) -> Self {
        Self {
            total: t.total,
            correct: t.correct,
            accuracy: t.accuracy(),
        }
    }
}

/// `/api/ab/predict` traffic of the current window, arm v1 against arm v2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbTest {
    pub v1: Arm,
    pub v2: Arm,
    /// `v2.accuracy − v1.accuracy`.
    pub difference: f64,
    /// Pooled two-proportion z statistic (sign of `difference`); `null` when undefined
    /// (an empty arm, or all feedback correct or all incorrect in both).
    pub z: Option<f64>,
    /// Its two-sided p-value.
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// `p_value < alpha`.
    pub significant: bool,
    pub test: &'static str,
}

/// `/admin/trends`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendsReport {
    pub days: u32,
    pub window: WindowDates,
    pub filters: FilterEcho,
    // The seed's fields, over the current window.
    pub total_feedback: u64,
    pub correct_feedback: u64,
    pub incorrect_feedback: u64,
    pub accuracy_percentage: f64,
    /// Feedback per predicted digit, every digit present.
    pub prediction_distribution: BTreeMap<String, u64>,
    pub accuracy: f64,
    /// Feedback whose true digit is known: the confusion matrix's total.
    pub labelled_feedback: u64,
    /// The current window's days with feedback, oldest first (days without are left out).
    pub daily: Vec<DailyPoint>,
    /// `[true][predicted]` over labelled feedback.
    pub confusion_matrix: Confusion,
    pub per_class: Vec<ClassRow>,
    pub metrics: Averages,
    pub by_model_version: Vec<Breakdown>,
    pub by_line: Vec<Breakdown>,
    pub period_comparison: PeriodComparison,
    /// The weekday with the most feedback in the current window; `null` without feedback.
    pub busiest_day: Option<String>,
    pub forecast: Forecast,
    pub ab_test: AbTest,
    pub dead_band: f64,
    /// DynamoDB read calls this answer took.
    pub reads: u32,
}

pub fn trends(window: &Window, filter: &Filter, loaded: &Loaded) -> TrendsReport {
    let current_days = window.current_days();
    let current = loaded.window_tally(&current_days);
    let previous = loaded.window_tally(&window.previous_days());
    let daily_tallies: Vec<(Date, Tally)> = current_days
        .iter()
        .map(|d| (*d, loaded.days.get(d).copied().unwrap_or_default()))
        .collect();
    let daily = daily_tallies
        .iter()
        .filter(|(_, t)| t.total > 0)
        .map(|(d, t)| DailyPoint {
            date: day_key(*d),
            total: t.total,
            correct: t.correct,
            accuracy: t.accuracy(),
        })
        .collect();
    let volumes: Vec<f64> = daily_tallies.iter().map(|(_, t)| t.total as f64).collect();
    let mean_volume = if volumes.is_empty() {
        0.0
    } else {
        volumes.iter().sum::<f64>() / volumes.len() as f64
    };
    let busiest = busiest_weekday(
        &daily_tallies
            .iter()
            .map(|(d, t)| (*d, t.total))
            .collect::<Vec<_>>(),
    );

    let mut by_version: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut by_line: BTreeMap<String, Tally> = BTreeMap::new();
    let mut arms: [Tally; 2] = Default::default();
    for v in loaded.versions.iter().filter(|v| window.is_current(v.day)) {
        if let Some(arm) = LINES.iter().position(|l| *l == v.line) {
            arms[arm].add(&v.ab);
        }
        // A version without feedback under the filter (no A/B traffic, for an arm) is
        // not part of the breakdowns.
        if v.tally.total == 0 {
            continue;
        }
        by_version
            .entry((v.model_version.clone(), v.line.clone()))
            .or_default()
            .add(&v.tally);
        by_line.entry(v.line.clone()).or_default().add(&v.tally);
    }
    let [v1, v2] = arms;
    let z = two_proportion_z_test(v1.correct, v1.total, v2.correct, v2.total);

    TrendsReport {
        days: window.days,
        window: window.dates(),
        filters: filter.into(),
        total_feedback: current.total,
        correct_feedback: current.correct,
        incorrect_feedback: current.incorrect(),
        accuracy_percentage: current.accuracy() * 100.0,
        prediction_distribution: current
            .predictions
            .iter()
            .enumerate()
            .map(|(d, n)| (d.to_string(), *n))
            .collect(),
        accuracy: current.accuracy(),
        labelled_feedback: current.labelled(),
        daily,
        confusion_matrix: current.confusion,
        per_class: current
            .confusion
            .per_class()
            .iter()
            .enumerate()
            .map(|(digit, m)| ClassRow {
                digit,
                precision: m.precision,
                recall: m.recall,
                f1: m.f1,
                support: m.support,
            })
            .collect(),
        metrics: Averages::of(&current.confusion),
        by_model_version: by_version
            .into_iter()
            .map(|((version, line), t)| Breakdown::of(Some(version), line, &t))
            .collect(),
        by_line: by_line
            .into_iter()
            .map(|(line, t)| Breakdown::of(None, line, &t))
            .collect(),
        period_comparison: PeriodComparison {
            metric: Metric::Accuracy.as_str(),
            values: compare_metric(&current, &previous, Metric::Accuracy),
            dead_band: ACCURACY_DEAD_BAND,
        },
        busiest_day: busiest.map(|d| d.to_string()),
        forecast: Forecast {
            days_ahead: FORECAST_DAYS,
            predicted_daily_average: forecast_daily_average(&volumes, FORECAST_DAYS)
                .unwrap_or(mean_volume),
            slope_per_day: least_squares(&volumes).map(|l| l.slope),
            method: "least_squares",
        },
        ab_test: AbTest {
            difference: z.map_or(v2.accuracy() - v1.accuracy(), |z| z.difference),
            z: z.map(|z| z.z),
            p_value: z.map(|z| z.p_value),
            alpha: AB_ALPHA,
            significant: z.is_some_and(|z| z.p_value < AB_ALPHA),
            test: "two_proportion_z_test",
            v1: Arm::of(&v1),
            v2: Arm::of(&v2),
        },
        dead_band: ACCURACY_DEAD_BAND,
        reads: loaded.reads,
    }
}

/// `/admin/report`: the seed's summary over the current window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub days: u32,
    pub from: String,
    pub to: String,
    pub total_feedback: u64,
    pub correct_feedback: u64,
    pub incorrect_feedback: u64,
    pub accuracy_percentage: f64,
    pub reads: u32,
}

pub fn summary(window: &Window, loaded: &Loaded) -> Summary {
    let current = loaded.window_tally(&window.current_days());
    let dates = window.dates();
    Summary {
        days: window.days,
        from: dates.from,
        to: dates.to,
        total_feedback: current.total,
        correct_feedback: current.correct,
        incorrect_feedback: current.incorrect(),
        accuracy_percentage: current.accuracy() * 100.0,
        reads: loaded.reads,
    }
}

/// `/analytics/trends`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analytics {
    /// Metric name → this period against the previous one.
    pub trends: BTreeMap<&'static str, MetricComparison>,
    pub period: &'static str,
    pub days: u32,
    pub window: WindowDates,
    pub filters: FilterEcho,
    pub dead_band: f64,
    pub reads: u32,
}

pub fn analytics(
    window: &Window,
    period: &'static str,
    metrics: &[Metric],
    filter: &Filter,
    loaded: &Loaded,
) -> Analytics {
    let current = loaded.window_tally(&window.current_days());
    let previous = loaded.window_tally(&window.previous_days());
    Analytics {
        trends: metrics
            .iter()
            .map(|m| (m.as_str(), compare_metric(&current, &previous, *m)))
            .collect(),
        period,
        days: window.days,
        window: window.dates(),
        filters: filter.into(),
        dead_band: ACCURACY_DEAD_BAND,
        reads: loaded.reads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn counters(pairs: &[(&str, u64)]) -> Counters {
        Counters {
            values: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..Counters::default()
        }
    }

    #[test]
    fn tallies_read_plain_or_ab_counters() {
        let c = counters(&[
            ("total", 5),
            ("correct", 3),
            ("labelled", 4),
            ("pred_7", 4),
            ("pred_1", 1),
            ("cm_7_7", 3),
            ("cm_2_7", 1),
            ("route_ab_total", 2),
            ("ab_total", 2),
            ("ab_correct", 1),
            ("ab_pred_7", 2),
            ("ab_cm_7_7", 1),
            // Not counters of ours: ignored, never a panic.
            ("pred_10", 9),
            ("cm_7", 9),
            ("cm_x_1", 9),
        ]);
        let all = Tally::of(&c, false);
        assert_eq!((all.total, all.correct, all.incorrect()), (5, 3, 2));
        assert_eq!(all.predictions[7], 4);
        assert_eq!(all.predictions[1], 1);
        assert_eq!(all.confusion.count(7, 7), 3);
        assert_eq!(all.confusion.count(2, 7), 1);
        assert_eq!(all.labelled(), 4);
        let ab = Tally::of(&c, true);
        assert_eq!((ab.total, ab.correct), (2, 1));
        assert_eq!(ab.predictions[7], 2);
        assert_eq!(ab.confusion.count(7, 7), 1);
        assert_eq!(ab.labelled(), 1);
        assert_eq!(Tally::default().accuracy(), 0.0);
    }

    fn tally(total: u64, correct: u64, pairs: &[(u8, u8)]) -> Tally {
        let mut t = Tally {
            total,
            correct,
            confusion: Confusion::from_pairs(pairs.iter().copied()),
            ..Tally::default()
        };
        for (_, p) in pairs {
            t.predictions[usize::from(*p)] += 1;
        }
        t
    }

    fn version(mv: &str, line: &str, day: Date, tally: Tally, ab: Tally) -> VersionDay {
        VersionDay {
            model_version: mv.into(),
            line: line.into(),
            day,
            tally,
            ab,
        }
    }

    #[test]
    fn the_empty_state_is_zeros_not_nan() {
        let window = Window::new(30, date!(2026 - 03 - 01));
        let loaded = Loaded::default();
        let r = trends(&window, &Filter::default(), &loaded);
        assert_eq!((r.total_feedback, r.accuracy_percentage), (0, 0.0));
        assert!(r.daily.is_empty() && r.by_model_version.is_empty() && r.by_line.is_empty());
        assert_eq!(r.prediction_distribution.len(), 10);
        assert_eq!(r.busiest_day, None);
        assert_eq!(r.forecast.predicted_daily_average, 0.0);
        assert_eq!(r.period_comparison.values.comparison.trend, Trend::Stable);
        assert_eq!((r.ab_test.p_value, r.ab_test.significant), (None, false));
        // serde_json refuses NaN: serialising proves there is none.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["period_comparison"]["trend"], "stable");
        assert_eq!(json["ab_test"]["p_value"], serde_json::Value::Null);
        let a = analytics(&window, "30d", &Metric::ALL, &Filter::default(), &loaded);
        assert_eq!(a.trends.len(), 4);
        assert!(serde_json::to_string(&a).is_ok());
        let one_day = trends(
            &Window::new(1, date!(2026 - 03 - 01)),
            &Filter::default(),
            &loaded,
        );
        assert_eq!(one_day.forecast.slope_per_day, None);
        assert_eq!(one_day.forecast.predicted_daily_average, 0.0);
    }

    #[test]
    fn windows_series_breakdowns_forecast_and_ab() {
        // 2026-02-23 is a Monday. Window: 2026-02-23 ..= 2026-03-01 (7 days);
        // previous: 2026-02-16 ..= 2026-02-22.
        let window = Window::new(7, date!(2026 - 03 - 01));
        let monday = date!(2026 - 02 - 23);
        let tuesday = date!(2026 - 02 - 24);
        let earlier = date!(2026 - 02 - 20);
        // v1: 10 A/B feedback, 6 correct; v2: 10 A/B, 9 correct; plus non-A/B on v2.
        let v1 = tally(10, 6, &[(3, 3), (3, 5)]);
        let v2_ab = tally(10, 9, &[(8, 8)]);
        let mut v2 = v2_ab;
        v2.add(&tally(4, 4, &[(1, 1), (1, 1)]));
        let mut monday_all = v1;
        monday_all.add(&v2);
        let loaded = Loaded {
            days: BTreeMap::from([
                (monday, monday_all),
                (tuesday, tally(2, 1, &[])),
                (earlier, tally(20, 10, &[])),
            ]),
            versions: vec![
                version("v1.0", "v1", monday, v1, v1),
                version("v2.0", "v2", monday, v2, v2_ab),
                // A previous-window item is not in the breakdowns.
                version("v2.0", "v2", earlier, tally(20, 10, &[]), Tally::default()),
                // Nor one with nothing under the filter.
                version("v2.1", "v2", tuesday, Tally::default(), Tally::default()),
            ],
            reads: 3,
        };
        let r = trends(&window, &Filter::default(), &loaded);
        assert_eq!((r.total_feedback, r.correct_feedback), (26, 20));
        assert!(close(r.accuracy_percentage, 2000.0 / 26.0));
        assert_eq!(r.labelled_feedback, 5);
        assert_eq!(r.confusion_matrix.count(3, 5), 1);
        assert_eq!(r.per_class[1].support, 2);
        assert_eq!(r.prediction_distribution["1"], 2);
        assert_eq!(
            r.daily.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(),
            ["2026-02-23", "2026-02-24"]
        );
        assert!(close(r.daily[1].accuracy, 0.5));
        let cmp = r.period_comparison.values;
        assert!(close(cmp.comparison.current, 20.0 / 26.0));
        assert!(close(cmp.comparison.previous, 0.5));
        assert_eq!(cmp.comparison.trend, Trend::Improving);
        assert_eq!((cmp.current_samples, cmp.previous_samples), (26, 20));
        assert_eq!(r.busiest_day.as_deref(), Some("Monday"));
        // Volumes [24, 2, 0, 0, 0, 0, 0]: the least-squares line over x = 0..6 has slope
        // Sxy / Sxx = (−3 · 24 − 2 · 2) / 28 = −76 / 28, its mean over x = 7..13 is ȳ + slope · (10 − 3) < 0 → 0.
        let slope = r.forecast.slope_per_day.unwrap();
        assert!(close(slope, -76.0 / 28.0), "{slope}");
        assert_eq!(r.forecast.predicted_daily_average, 0.0);
        assert_eq!(r.by_model_version.len(), 2);
        assert_eq!(r.by_model_version[1].model_version.as_deref(), Some("v2.0"));
        assert_eq!(r.by_model_version[1].total, 14);
        assert_eq!(
            r.by_line
                .iter()
                .map(|b| (b.line.as_str(), b.total))
                .collect::<Vec<_>>(),
            [("v1", 10), ("v2", 14)]
        );
        // 6/10 against 9/10: pooled 0.75, se = sqrt(0.75 · 0.25 · 0.2) = 0.193649,
        // z = 0.3 / 0.193649 = 1.549193, p = 2 · (1 − Φ(1.549193)) = 0.121335.
        let ab = &r.ab_test;
        assert_eq!((ab.v1.total, ab.v1.correct, ab.v2.correct), (10, 6, 9));
        assert!(close(ab.difference, 0.3));
        assert!((ab.z.unwrap() - 1.549193).abs() < 1e-5);
        assert!((ab.p_value.unwrap() - 0.121335).abs() < 1e-5);
        assert!(!ab.significant);
        assert_eq!(r.reads, 3);

        let a = analytics(
            &window,
            "7d",
            &[Metric::F1Score],
            &Filter::default(),
            &loaded,
        );
        assert_eq!(a.trends.keys().copied().collect::<Vec<_>>(), ["f1_score"]);
        // No labelled feedback in the previous window: nothing to compare with.
        assert_eq!(a.trends["f1_score"].comparison.trend, Trend::Stable);
        assert_eq!(a.trends["f1_score"].previous_samples, 0);

        let s = summary(&window, &loaded);
        assert_eq!((s.total_feedback, s.incorrect_feedback), (26, 6));
        assert_eq!(
            (s.from.as_str(), s.to.as_str()),
            ("2026-02-23", "2026-03-01")
        );
    }

    #[test]
    fn changes_within_the_dead_band_are_stable() {
        let now = tally(1000, 935, &[]);
        let before = tally(1000, 930, &[]);
        let c = compare_metric(&now, &before, Metric::Accuracy);
        assert!(close(c.comparison.change, 0.005));
        assert_eq!(c.comparison.trend, Trend::Stable);
        let worse = compare_metric(&tally(1000, 900, &[]), &before, Metric::Accuracy);
        assert_eq!(worse.comparison.trend, Trend::Declining);
    }
}
