//! Classification metrics over a 10-class (digit) confusion matrix.
//!
//! Conventions follow scikit-learn's `precision_recall_fscore_support` with
//! `zero_division=0`, so numbers here can be checked against the seeds' Python
//! reports: a ratio whose denominator is 0 is 0, never NaN. Checked against scikit-learn
//! 1.9.1 in `vectors/drift.json` (`cargo xtask stats-vectors`).

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::domain::CLASSES;

/// Counts of (true label, predicted label) pairs, indexed `[true][predicted]`.
///
/// Serialises as the bare 10×10 array of rows (one row per true label), the shape the
/// drift reports return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Confusion(pub [[u64; CLASSES]; CLASSES]);

/// Precision, recall and F1 of one class, and how many samples truly belong to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

impl Confusion {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a matrix from `(true_label, predicted)` pairs, skipping pairs with a label
    /// outside 0–9 (see [`Confusion::add`]).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u8, u8)>) -> Self {
        let mut confusion = Self::new();
        for (true_label, predicted) in pairs {
            confusion.add(true_label, predicted);
        }
        confusion
    }

    /// Counts one sample. Returns `false`, and counts nothing, when either label is not
    /// a digit: stored data is validated upstream, so this is a bug signal for the caller
    /// to log, not a reason to panic a whole report.
    pub fn add(&mut self, true_label: u8, predicted: u8) -> bool {
        let (t, p) = (usize::from(true_label), usize::from(predicted));
        match self.0.get_mut(t).and_then(|row| row.get_mut(p)) {
            Some(cell) => {
                // Saturating: a report that stops counting at 1.8e19 beats a panic.
                *cell = cell.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// The count of samples with this true label and this prediction (0 out of range).
    pub fn count(&self, true_label: usize, predicted: usize) -> u64 {
        self.0
            .get(true_label)
            .and_then(|row| row.get(predicted))
            .copied()
            .unwrap_or(0)
    }

    /// All samples counted.
    pub fn total(&self) -> u64 {
        self.0
            .iter()
            .flatten()
            .fold(0, |acc: u64, &c| acc.saturating_add(c))
    }

    /// Samples predicted correctly (the diagonal).
    pub fn correct(&self) -> u64 {
        (0..CLASSES).fold(0, |acc: u64, k| acc.saturating_add(self.0[k][k]))
    }

    /// Samples whose true label is `class` (row sum).
    pub fn support(&self, class: usize) -> u64 {
        self.0.get(class).map_or(0, |row| {
            row.iter().fold(0, |acc: u64, &c| acc.saturating_add(c))
        })
    }

    /// Samples predicted as `class` (column sum).
    pub fn predicted(&self, class: usize) -> u64 {
        self.0.iter().fold(0, |acc: u64, row| {
            acc.saturating_add(row.get(class).copied().unwrap_or(0))
        })
    }

    /// Share of samples predicted correctly; 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Precision, recall, F1 and support of `class` (all 0 out of range).
    pub fn class_metrics(&self, class: usize) -> ClassMetrics {
        if class >= CLASSES {
            return ClassMetrics::default();
        }
        let tp = self.0[class][class];
        let support = self.support(class);
        let predicted = self.predicted(class);
        // F1 as 2·TP / (support + predicted) equals the harmonic mean of precision and
        // recall whenever TP > 0, and is 0 (not 0/0) when TP = 0, as in scikit-learn.
        let f1 = ratio_f64(2.0 * tp as f64, support as f64 + predicted as f64);
        ClassMetrics {
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1,
            support,
        }
    }

    /// [`Confusion::class_metrics`] for every digit, index = digit.
    pub fn per_class(&self) -> [ClassMetrics; CLASSES] {
        std::array::from_fn(|class| self.class_metrics(class))
    }

    /// Unweighted mean precision over the classes present (see [`Confusion::macro_f1`]).
    pub fn macro_precision(&self) -> f64 {
        self.macro_mean(|m| m.precision)
    }

    /// Unweighted mean recall over the classes present (see [`Confusion::macro_f1`]).
    pub fn macro_recall(&self) -> f64 {
        self.macro_mean(|m| m.recall)
    }

    /// Unweighted mean F1 over the classes present: those that occur as a true label or
    /// as a prediction. That is scikit-learn's default label set (the union of `y_true`
    /// and `y_pred`), so a day on which nobody drew a 7 is not punished with a 0 for 7.
    /// 0 for an empty matrix.
    pub fn macro_f1(&self) -> f64 {
        self.macro_mean(|m| m.f1)
    }

    /// Mean F1 weighted by support (classes with no true samples weigh nothing);
    /// 0 for an empty matrix.
    pub fn weighted_f1(&self) -> f64 {
        let per_class = self.per_class();
        let weighted: f64 = per_class.iter().map(|m| m.f1 * m.support as f64).sum();
        let support: f64 = per_class.iter().map(|m| m.support as f64).sum();
        ratio_f64(weighted, support)
    }

    fn macro_mean(&self, metric: impl Fn(&ClassMetrics) -> f64) -> f64 {
        let (sum, present) = (0..CLASSES)
            .filter(|&class| self.support(class) > 0 || self.predicted(class) > 0)
            .fold((0.0, 0u32), |(sum, n), class| {
                (sum + metric(&self.class_metrics(class)), n + 1)
            });
        ratio_f64(sum, f64::from(present))
    }
}

impl AddAssign<&Confusion> for Confusion {
    /// Merges another matrix (e.g. one day's into a period's), saturating per cell.
    fn add_assign(&mut self, other: &Confusion) {
        for (row, other_row) in self.0.iter_mut().zip(other.0.iter()) {
            for (cell, other_cell) in row.iter_mut().zip(other_row.iter()) {
                *cell = cell.saturating_add(*other_cell);
            }
        }
    }
}

impl AddAssign for Confusion {
    fn add_assign(&mut self, other: Confusion) {
        *self += &other;
    }
}

/// One labelled set's metrics as a model's manifest keeps them (`manifest.json`'s
/// `metrics`): what training reports and what a promotion gate reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    pub split: String,
    pub samples: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class_recall: Vec<f64>,
    pub per_class_precision: Vec<f64>,
    /// `confusion_matrix[true][predicted]`.
    pub confusion_matrix: Confusion,
}

impl SplitMetrics {
    /// The metrics of `confusion`, over `samples` samples: more than the matrix holds
    /// when some could not be classified at all, and those count against accuracy.
    pub fn new(split: &str, confusion: Confusion, samples: usize) -> Self {
        let per_class = confusion.per_class();
        Self {
            split: split.to_owned(),
            samples,
            accuracy: ratio(confusion.correct(), samples as u64),
            macro_f1: confusion.macro_f1(),
            per_class_recall: per_class.iter().map(|m| m.recall).collect(),
            per_class_precision: per_class.iter().map(|m| m.precision).collect(),
            confusion_matrix: confusion,
        }
    }

    /// The metrics of `(true_label, predicted)` pairs, each one sample.
    pub fn from_pairs(split: &str, pairs: impl IntoIterator<Item = (u8, u8)>) -> Self {
        let mut confusion = Confusion::new();
        let mut samples = 0;
        for (truth, predicted) in pairs {
            confusion.add(truth, predicted);
            samples += 1;
        }
        Self::new(split, confusion, samples)
    }
}

/// Mean cross-entropy of the true digits under the predicted probabilities, as
/// scikit-learn 1.9.1's `log_loss(y, p, labels=range(10))`: each probability clipped to
/// [ε, 1 − ε] (ε = `f64::EPSILON`, NumPy's `finfo(float64).eps`) and rows taken as given,
/// not renormalised (scikit-learn only warns when a row does not sum to 1).
///
/// `None` where scikit-learn raises, or the answer would not be a number: no samples,
/// lengths that differ, a label above 9, a probability outside [0, 1] or not finite.
pub fn log_loss(true_labels: &[u8], probabilities: &[[f64; CLASSES]]) -> Option<f64> {
    if true_labels.is_empty() || true_labels.len() != probabilities.len() {
        return None;
    }
    if probabilities
        .iter()
        .flatten()
        .any(|p| !(0.0..=1.0).contains(p))
    {
        return None;
    }
    let mut total = 0.0;
    for (&label, row) in true_labels.iter().zip(probabilities) {
        // Only the true class's term is non-zero (x·log y with x = 0 is 0).
        let p = row.get(usize::from(label))?;
        total -= p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
    }
    Some(total / true_labels.len() as f64)
}

/// `num / den` as f64, 0 when `den` is 0 (scikit-learn's `zero_division=0`).
fn ratio(num: u64, den: u64) -> f64 {
    ratio_f64(num as f64, den as f64)
}

fn ratio_f64(num: f64, den: f64) -> f64 {
    if den > 0.0 { num / den } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_metrics_of_a_known_confusion() {
        let pairs = [(0, 0), (0, 0), (0, 1), (1, 1), (2, 2), (2, 1)];
        let m = SplitMetrics::from_pairs("x", pairs);
        assert_eq!(m.samples, 6);
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((m.per_class_recall[0] - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.per_class_precision[1] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.confusion_matrix.count(2, 1), 1);
        // A sample that could not be classified (no digit) counts against accuracy.
        let missed = SplitMetrics::from_pairs("x", [(3, 3), (3, u8::MAX)]);
        assert_eq!((missed.samples, missed.accuracy), (2, 0.5));
        assert_eq!(missed.confusion_matrix.total(), 1);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    /// scikit-learn's `f1_score` docs example:
    /// y_true = [0, 1, 2, 0, 1, 2], y_pred = [0, 2, 1, 0, 0, 1].
    fn sklearn_example() -> Confusion {
        Confusion::from_pairs([(0, 0), (1, 2), (2, 1), (0, 0), (1, 0), (2, 1)])
    }

    #[test]
    fn sklearn_docs_example() {
        let c = sklearn_example();
        // By hand: class 0 has TP 2, 3 predicted, 2 true → P 2/3, R 1, F1 0.8;
        // classes 1 and 2 have no true positives → 0; classes 3–9 are absent.
        let zero = c.class_metrics(0);
        assert!(close(zero.precision, 2.0 / 3.0));
        assert!(close(zero.recall, 1.0));
        assert!(close(zero.f1, 0.8));
        assert_eq!(zero.support, 2);
        assert_eq!(c.class_metrics(1).f1, 0.0);
        assert_eq!(c.class_metrics(2).precision, 0.0);
        assert!(close(c.accuracy(), 1.0 / 3.0));
        assert!(close(c.macro_f1(), 0.2667)); // sklearn: 0.26666...
        assert!(close(c.macro_precision(), 0.2222)); // (2/3 + 0 + 0) / 3
        assert!(close(c.macro_recall(), 0.3333)); // (1 + 0 + 0) / 3
        assert!(close(c.weighted_f1(), 0.2667)); // equal supports of 2
    }

    #[test]
    fn hand_computed_unequal_supports() {
        // 4 true 3s (3 right, 1 called 5), 1 true 5 (right), 1 true 8 called 3.
        let c = Confusion::from_pairs([(3, 3), (3, 3), (3, 3), (3, 5), (5, 5), (8, 3)]);
        let three = c.class_metrics(3);
        assert!(close(three.precision, 0.75)); // 3 of 4 predicted 3s
        assert!(close(three.recall, 0.75)); // 3 of 4 true 3s
        assert!(close(three.f1, 0.75));
        let five = c.class_metrics(5);
        assert!(close(five.precision, 0.5));
        assert!(close(five.recall, 1.0));
        assert!(close(five.f1, 2.0 / 3.0));
        let eight = c.class_metrics(8);
        assert_eq!((eight.precision, eight.recall, eight.f1), (0.0, 0.0, 0.0));
        assert!(close(c.accuracy(), 4.0 / 6.0));
        assert!(close(c.macro_f1(), (0.75 + 2.0 / 3.0 + 0.0) / 3.0));
        assert!(close(c.weighted_f1(), (0.75 * 4.0 + 2.0 / 3.0) / 6.0));
    }

    #[test]
    fn perfect_predictions() {
        let c = Confusion::from_pairs((0..10).map(|d| (d, d)));
        assert_eq!(c.accuracy(), 1.0);
        assert_eq!(c.macro_f1(), 1.0);
        assert_eq!(c.weighted_f1(), 1.0);
        assert!(c.per_class().iter().all(|m| m.f1 == 1.0 && m.support == 1));
    }

    #[test]
    fn empty_matrix_is_all_zero_not_nan() {
        let c = Confusion::new();
        assert_eq!(c.total(), 0);
        assert_eq!(c.accuracy(), 0.0);
        assert_eq!(c.macro_precision(), 0.0);
        assert_eq!(c.macro_recall(), 0.0);
        assert_eq!(c.macro_f1(), 0.0);
        assert_eq!(c.weighted_f1(), 0.0);
        assert_eq!(c.per_class(), [ClassMetrics::default(); CLASSES]);
    }

    #[test]
    fn never_predicted_class_has_zero_precision() {
        let c = Confusion::from_pairs([(4, 9), (9, 9)]);
        let four = c.class_metrics(4);
        assert_eq!(four.precision, 0.0);
        assert_eq!(four.recall, 0.0);
        assert_eq!(four.support, 1);
    }

    #[test]
    fn out_of_range_labels_are_rejected_not_panicked() {
        let mut c = Confusion::new();
        assert!(!c.add(10, 0));
        assert!(!c.add(0, 255));
        assert!(c.add(9, 9));
        assert_eq!(c.total(), 1);
        assert_eq!(c.count(10, 0), 0);
        assert_eq!(c.class_metrics(10), ClassMetrics::default());
        assert_eq!(c.support(42), 0);
        assert_eq!(c.predicted(42), 0);
    }

    #[test]
    fn merge_adds_cellwise() {
        let mut a = Confusion::from_pairs([(1, 1), (2, 3)]);
        let b = Confusion::from_pairs([(1, 1), (7, 7)]);
        a += &b;
        a += Confusion::from_pairs([(2, 3)]);
        assert_eq!(a.count(1, 1), 2);
        assert_eq!(a.count(2, 3), 2);
        assert_eq!(a.count(7, 7), 1);
        assert_eq!(a.total(), 5);
    }

    #[test]
    fn huge_counts_saturate_and_stay_finite() {
        let mut c = Confusion([[u64::MAX; CLASSES]; CLASSES]);
        c += Confusion([[u64::MAX; CLASSES]; CLASSES]);
        assert!(c.add(0, 0));
        assert_eq!(c.count(0, 0), u64::MAX);
        assert_eq!(c.total(), u64::MAX);
        for value in [
            c.accuracy(),
            c.macro_f1(),
            c.weighted_f1(),
            c.macro_precision(),
        ] {
            assert!(value.is_finite() && (0.0..=1.0).contains(&value), "{value}");
        }
    }

    mod sklearn_vectors {
        use super::super::*;
        use crate::stats::testing::floats;
        use serde_json::Value;

        fn cases() -> Vec<Value> {
            let v: Value = serde_json::from_str(include_str!("vectors/drift.json"))
                .expect("the vectors parse");
            v["classification"].as_array().unwrap().clone()
        }

        fn labels(v: &Value) -> Vec<u8> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
                .collect()
        }

        fn close(name: &str, what: &str, ours: f64, theirs: &Value) {
            let theirs = theirs.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9,
                "{name}: {what} {ours} against scikit-learn's {theirs}"
            );
        }

        #[test]
        fn metrics_match_sklearn() {
            for case in cases() {
                let name = case["name"].as_str().unwrap();
                let (truth, predicted) = (labels(&case["true"]), labels(&case["predicted"]));
                let c = Confusion::from_pairs(truth.iter().copied().zip(predicted));
                for (t, row) in case["confusion_matrix"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                {
                    for (p, count) in row.as_array().unwrap().iter().enumerate() {
                        assert_eq!(c.count(t, p), count.as_u64().unwrap(), "{name}: [{t}][{p}]");
                    }
                }
                close(name, "accuracy", c.accuracy(), &case["accuracy"]);
                let per_class = &case["per_class"];
                let supports = per_class["support"].as_array().unwrap();
                for (k, m) in c.per_class().iter().enumerate() {
                    close(name, "precision", m.precision, &per_class["precision"][k]);
                    close(name, "recall", m.recall, &per_class["recall"][k]);
                    close(name, "f1", m.f1, &per_class["f1"][k]);
                    assert_eq!(m.support, supports[k].as_u64().unwrap(), "{name}: {k}");
                }
                close(
                    name,
                    "macro precision",
                    c.macro_precision(),
                    &case["macro"]["precision"],
                );
                close(
                    name,
                    "macro recall",
                    c.macro_recall(),
                    &case["macro"]["recall"],
                );
                close(name, "macro f1", c.macro_f1(), &case["macro"]["f1"]);
                close(
                    name,
                    "weighted f1",
                    c.weighted_f1(),
                    &case["weighted"]["f1"],
                );
                // Weighted precision and recall have no method of their own: the same
                // support weights over the per-class values.
                let total = c.total() as f64;
                let weighted = |metric: fn(&ClassMetrics) -> f64| {
                    c.per_class()
                        .iter()
                        .map(|m| metric(m) * m.support as f64)
                        .sum::<f64>()
                        / total
                };
                let precision = weighted(|m| m.precision);
                close(
                    name,
                    "weighted precision",
                    precision,
                    &case["weighted"]["precision"],
                );
                let recall = weighted(|m| m.recall);
                close(name, "weighted recall", recall, &case["weighted"]["recall"]);
            }
        }

        #[test]
        fn log_loss_matches_sklearn() {
            let mut checked = 0;
            for case in cases() {
                let Some(theirs) = case.get("log_loss") else {
                    continue;
                };
                let name = case["name"].as_str().unwrap();
                let rows: Vec<[f64; CLASSES]> = case["probabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| floats(row).try_into().unwrap())
                    .collect();
                close(
                    name,
                    "log loss",
                    log_loss(&labels(&case["true"]), &rows).unwrap(),
                    theirs,
                );
                checked += 1;
            }
            assert!(checked >= 3, "{checked} log-loss cases");
        }
    }

    #[test]
    fn log_loss_clips_and_rejects_odd_input() {
        let mut sure = [0.0; CLASSES];
        sure[4] = 1.0;
        // Clipped at ε: a certain right answer costs −ln(1 − ε), a certain wrong one −ln ε.
        assert_eq!(log_loss(&[4], &[sure]), Some(-(1.0 - f64::EPSILON).ln()));
        assert_eq!(log_loss(&[5], &[sure]), Some(-f64::EPSILON.ln()));
        assert_eq!(log_loss(&[], &[]), None);
        assert_eq!(log_loss(&[4, 4], &[sure]), None);
        assert_eq!(log_loss(&[10], &[sure]), None);
        let mut odd = sure;
        odd[0] = f64::NAN;
        assert_eq!(log_loss(&[4], &[odd]), None);
        odd[0] = f64::INFINITY;
        assert_eq!(log_loss(&[4], &[odd]), None);
        odd[0] = -0.1;
        assert_eq!(log_loss(&[4], &[odd]), None);
    }

    #[test]
    fn serialises_as_rows() {
        let c = Confusion::from_pairs([(0, 1)]);
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json[0][1], 1);
        assert_eq!(json.as_array().map(Vec::len), Some(CLASSES));
    }
}
