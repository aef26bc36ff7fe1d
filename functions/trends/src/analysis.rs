//! What the three routes compute from the aggregate items once they are read: the
//! [`Tally`] of each day and each version ([`Loaded`]), and the pure functions
//! [`trends`], [`summary`] and [`analytics`] that turn them into the bodies of
//! [`crate::report`]. Nothing here does I/O, so every number can be checked without a
//! table.

use crate::params::{Filter, Metric, Window};
use crate::report::{
    AbTest, Analytics, Arm, Averages, Breakdown, ClassRow, DailyPoint, Forecast, MetricComparison,
    PeriodComparison, Summary, TrendsReport,
};
use inferloop::domain::{CLASSES, Line};
use inferloop::stats::{
    ACCURACY_DEAD_BAND, Confusion, Trend, busiest_weekday, compare, forecast_daily_average,
    least_squares, two_proportion_z_test,
};
use inferloop::store::aggregates::CounterTally;
use inferloop::time::format_day;
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
    pub predictions: [u64; CLASSES],
    /// Labelled feedback, `[true][predicted]`.
    pub confusion: Confusion,
}

/// An aggregate item's counters, as `Counters::tally` reads them.
impl From<CounterTally> for Tally {
    fn from(c: CounterTally) -> Self {
        Self {
            total: c.total,
            correct: c.correct,
            predictions: c.predicted,
            confusion: Confusion(c.confusion),
        }
    }
}

impl Tally {
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

/// One version's item of one day.
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

/// `current` against `previous` for a ratio metric; `stable` when either window has no
/// samples (see [`MetricComparison`]).
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

fn averages(c: &Confusion) -> Averages {
    Averages {
        macro_precision: c.macro_precision(),
        macro_recall: c.macro_recall(),
        macro_f1: c.macro_f1(),
        weighted_f1: c.weighted_f1(),
    }
}

fn breakdown(model_version: Option<String>, line: String, t: &Tally) -> Breakdown {
    Breakdown {
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

fn arm(t: &Tally) -> Arm {
    Arm {
        total: t.total,
        correct: t.correct,
        accuracy: t.accuracy(),
    }
}

/// `/admin/trends`.
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
            date: format_day(*d),
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
    // The A/B arms, in `Line::ALL`'s order: v1, v2.
    let mut arms: [Tally; 2] = Default::default();
    for v in loaded.versions.iter().filter(|v| window.is_current(v.day)) {
        if let Some(i) = Line::ALL.iter().position(|l| l.as_str() == v.line) {
            arms[i].add(&v.ab);
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
        metrics: averages(&current.confusion),
        by_model_version: by_version
            .into_iter()
            .map(|((version, line), t)| breakdown(Some(version), line, &t))
            .collect(),
        by_line: by_line
            .into_iter()
            .map(|(line, t)| breakdown(None, line, &t))
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
            v1: arm(&v1),
            v2: arm(&v2),
        },
        dead_band: ACCURACY_DEAD_BAND,
        reads: loaded.reads,
    }
}

/// `/admin/report`: the seed's summary over the current window.
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

/// `/analytics/trends`: each metric, this period against the previous one.
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

    #[test]
    fn tallies_are_an_items_counters() {
        let mut counted = CounterTally {
            total: 5,
            correct: 3,
            ..CounterTally::default()
        };
        counted.predicted[7] = 4;
        counted.confusion[7][7] = 3;
        counted.confusion[2][7] = 1;
        let t = Tally::from(counted);
        assert_eq!((t.total, t.correct, t.incorrect()), (5, 3, 2));
        assert_eq!(t.predictions[7], 4);
        assert_eq!((t.confusion.count(7, 7), t.confusion.count(2, 7)), (3, 1));
        assert_eq!(t.labelled(), 4);
        assert!(close(t.accuracy(), 0.6));
        assert_eq!(Tally::from(CounterTally::default()), Tally::default());
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
