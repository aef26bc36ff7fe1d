//! The JSON bodies of the three routes: plain serialisable types, filled in by
//! [`crate::analysis`]. The window's bounds are [`WindowDates`], from [`crate::params`].
//!
//! Scales: `accuracy_percentage` is the seeds' 0–100 percentage; every other accuracy,
//! precision, recall and F1 is a 0–1 ratio, the scale of `dead_band`
//! ([`ACCURACY_DEAD_BAND`](inferloop::stats::ACCURACY_DEAD_BAND)).

use crate::params::{Filter, WindowDates};
use inferloop::domain::{Line, VersionName};
use inferloop::stats::{Comparison, Confusion};
use serde::Serialize;
use std::collections::BTreeMap;

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

/// The `model_version`, `line` and `variant` the answer is restricted to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterEcho {
    pub model_version: Option<VersionName>,
    pub line: Option<Line>,
    pub variant: Option<Line>,
}

impl From<&Filter> for FilterEcho {
    fn from(f: &Filter) -> Self {
        Self {
            model_version: f.model_version.clone(),
            line: f.line,
            variant: f.variant,
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

/// One arm of the A/B test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    pub total: u64,
    pub correct: u64,
    pub accuracy: f64,
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
