//! Model drift from labels (DESIGN.md §6a): the window's accuracy and macro-F1 from
//! feedback with true labels, against the version's registered test metrics.

use super::settings::DriftSettings;
use crate::stats::Confusion;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    Tested,
    /// Fewer labelled predictions than `min_labels`: reported, not judged.
    InsufficientLabels,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDrift {
    pub status: ModelStatus,
    pub drift_detected: bool,
    pub n_labels: usize,
    pub accuracy: Option<f64>,
    pub macro_f1: Option<f64>,
    pub baseline_accuracy: f64,
    pub baseline_macro_f1: f64,
    pub accuracy_drop: Option<f64>,
    pub f1_drop: Option<f64>,
    pub accuracy_drop_threshold: f64,
    pub f1_drop_threshold: f64,
}

/// `pairs` are (true label, predicted digit); the baseline is what the version
/// measured on its test split (or a posted reference's metrics).
pub fn from_labels(
    pairs: &[(u8, u8)],
    baseline_accuracy: f64,
    baseline_macro_f1: f64,
    settings: &DriftSettings,
) -> ModelDrift {
    let confusion = Confusion::from_pairs(pairs.iter().copied());
    let n = confusion.total() as usize;
    let enough = n >= settings.min_labels;
    let (accuracy, macro_f1) = if n > 0 {
        (Some(confusion.accuracy()), Some(confusion.macro_f1()))
    } else {
        (None, None)
    };
    let accuracy_drop = accuracy.map(|a| baseline_accuracy - a);
    let f1_drop = macro_f1.map(|f| baseline_macro_f1 - f);
    let drift_detected = enough
        && (accuracy_drop.is_some_and(|d| d >= settings.accuracy_drop_threshold)
            || f1_drop.is_some_and(|d| d >= settings.f1_drop_threshold));
    ModelDrift {
        status: if enough {
            ModelStatus::Tested
        } else {
            ModelStatus::InsufficientLabels
        },
        drift_detected,
        n_labels: n,
        accuracy,
        macro_f1,
        baseline_accuracy,
        baseline_macro_f1,
        accuracy_drop,
        f1_drop,
        accuracy_drop_threshold: settings.accuracy_drop_threshold,
        f1_drop_threshold: settings.f1_drop_threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_beyond_the_threshold_is_model_drift() {
        let settings = DriftSettings::default();
        let good: Vec<(u8, u8)> = (0..100).map(|i| (i % 10, i % 10)).collect();
        let report = from_labels(&good, 0.97, 0.97, &settings);
        assert_eq!(report.status, ModelStatus::Tested);
        assert!(!report.drift_detected);
        let mut bad = good.clone();
        for pair in bad.iter_mut().take(20) {
            pair.1 = (pair.0 + 1) % 10;
        }
        let report = from_labels(&bad, 0.97, 0.97, &settings);
        assert!(report.drift_detected);
        assert!((report.accuracy.unwrap() - 0.8).abs() < 1e-12);
    }

    #[test]
    fn few_labels_are_reported_not_judged() {
        let report = from_labels(&[(1, 2); 5], 0.97, 0.97, &DriftSettings::default());
        assert_eq!(report.status, ModelStatus::InsufficientLabels);
        assert!(!report.drift_detected);
        assert_eq!(report.accuracy, Some(0.0));
        let none = from_labels(&[], 0.97, 0.97, &DriftSettings::default());
        assert_eq!(none.accuracy, None);
    }
}
