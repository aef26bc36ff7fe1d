//! The promotion gate (DESIGN.md §11): is a retrained candidate good enough to replace
//! production? Both models are judged on the same labelled samples, so every comparison
//! is paired ([`crate::stats::paired`]); nothing here trains, reads a table or keeps
//! time, so the gate is tested on seeded synthetic predictions.
//!
//! Three rules, each with its figures in the report:
//! - **base non-inferiority**: on the base test split, the one-sided lower confidence
//!   bound (Newcombe) of candidate − production accuracy is above −`base_margin_points`.
//! - **class recall**: on the base test split, no digit's recall falls by more than
//!   `class_recall_drop_points` (point estimates: a digit has about 200 test samples, too
//!   few for an interval to say anything at a few points).
//! - **hold-out better**: on the feedback hold-out (the production traffic people
//!   corrected, which the candidate was retrained for) the candidate is right more often
//!   than production (McNemar's `b > c`), and when the hold-out has at least
//!   `holdout_significance_min` samples, significantly so by McNemar's one-sided exact
//!   test at `holdout_alpha`. A smaller hold-out only has to show the candidate better,
//!   and the report says "not significant". An empty hold-out (no feedback yet) leaves
//!   the rule passed and the report says the candidate was judged on the base split
//!   alone.
//!
//! What non-inferiority costs: an equally accurate candidate passes the base rule only
//! when the two models disagree on few samples, because the bound's width grows with the
//! square root of the discordant count. On the 2,004-sample test split at the defaults
//! (`cargo xtask bench gate`, 1,000 seeds of [`simulation`]): equal models disagreeing on
//! 4.6 samples pass in 98.7 % of draws, on 9.3 in 90.5 %, on 23 (1.2 %) in 64 %, on 58
//! (2.9 %) in 38 %. A fine-tuned candidate that disagrees with its parent on a few
//! percent of the split must therefore be better on it to be promoted; the report's
//! minimum detectable difference says at what resolution the split judged.

pub mod settings;
pub mod simulation;

use serde::Serialize;

pub use settings::GateSettings;

use crate::domain::CLASSES;
use crate::stats::Confusion;
use crate::stats::paired::{
    Interval, McNemar, PairedCounts, mcnemar_exact, minimum_detectable_difference,
    newcombe_difference, normal_quantile,
};

/// What the two models answered for the same labelled samples, checked once: equal
/// lengths and every label and prediction a digit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairedPredictions {
    labels: Vec<u8>,
    production: Vec<u8>,
    candidate: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPredictions {
    #[error("{labels} labels, {production} production and {candidate} candidate predictions")]
    LengthMismatch {
        labels: usize,
        production: usize,
        candidate: usize,
    },
    #[error("sample {index}: {value} is not a digit")]
    NotADigit { index: usize, value: u8 },
}

impl PairedPredictions {
    pub fn new(
        labels: Vec<u8>,
        production: Vec<u8>,
        candidate: Vec<u8>,
    ) -> Result<Self, InvalidPredictions> {
        if labels.len() != production.len() || labels.len() != candidate.len() {
            return Err(InvalidPredictions::LengthMismatch {
                labels: labels.len(),
                production: production.len(),
                candidate: candidate.len(),
            });
        }
        for column in [&labels, &production, &candidate] {
            if let Some((index, &value)) = column
                .iter()
                .enumerate()
                .find(|&(_, &value)| usize::from(value) >= CLASSES)
            {
                return Err(InvalidPredictions::NotADigit { index, value });
            }
        }
        Ok(Self {
            labels,
            production,
            candidate,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    fn counts(&self) -> PairedCounts {
        PairedCounts::from_outcomes(
            self.labels
                .iter()
                .zip(&self.production)
                .zip(&self.candidate)
                .map(|((label, production), candidate)| (production == label, candidate == label)),
        )
    }

    fn confusions(&self) -> (Confusion, Confusion) {
        let pairs = |predicted: &[u8]| {
            Confusion::from_pairs(self.labels.iter().copied().zip(predicted.iter().copied()))
        };
        (pairs(&self.production), pairs(&self.candidate))
    }
}

/// The two models on one labelled set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetComparison {
    pub samples: u64,
    pub counts: PairedCounts,
    pub production_accuracy: f64,
    pub candidate_accuracy: f64,
    /// Candidate − production accuracy.
    pub difference: f64,
    /// Newcombe's interval of the difference at the gate's one-sided confidence on each
    /// side (so a two-sided level of 2·confidence − 1); `None` for an empty set.
    pub difference_interval: Option<Interval>,
    pub mcnemar: McNemar,
    /// The smallest accuracy difference a one-sided McNemar test at `holdout_alpha`
    /// detects with the configured power at this size and discordance.
    pub minimum_detectable_difference: Option<f64>,
}

/// The two models on one labelled set, by `settings`' confidence, level and power (what
/// the gate judges by; `POST /drift/model-performance-drift` reports it for posted sets).
pub fn compare(set: &PairedPredictions, settings: &GateSettings) -> SetComparison {
    SetComparison::new(set, settings)
}

impl SetComparison {
    fn new(set: &PairedPredictions, settings: &GateSettings) -> Self {
        let counts = set.counts();
        let z = normal_quantile(settings.confidence);
        Self {
            samples: counts.n(),
            counts,
            production_accuracy: counts.baseline_accuracy(),
            candidate_accuracy: counts.candidate_accuracy(),
            difference: counts.difference(),
            difference_interval: newcombe_difference(&counts, z),
            mcnemar: mcnemar_exact(&counts),
            minimum_detectable_difference: minimum_detectable_difference(
                counts.n(),
                counts.discordant(),
                settings.holdout_alpha,
                settings.power,
            ),
        }
    }
}

/// One digit's recall on the base test split, before and after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassRecall {
    pub digit: u8,
    pub support: u64,
    pub production_recall: f64,
    pub candidate_recall: f64,
    /// (candidate − production) recall, in percentage points.
    pub change_points: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    BaseNonInferiority,
    ClassRecall,
    HoldoutBetter,
}

/// A rule, whether it was met, and the figure it was judged on against its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleOutcome {
    pub rule: Rule,
    pub passed: bool,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub detail: String,
}

/// Every figure the gate judged by, stored with the version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub passed: bool,
    /// The details of the rules that failed, in order.
    pub reasons: Vec<String>,
    pub rules: Vec<RuleOutcome>,
    pub base: SetComparison,
    /// `None` when there is no feedback hold-out yet.
    pub holdout: Option<SetComparison>,
    pub classes: Vec<ClassRecall>,
    pub settings: GateSettings,
}

impl GateReport {
    /// The report as it is stored with the version (JSON), and its sha256, which the
    /// production pointer's history records for a change the report allowed.
    pub fn stored(&self) -> (String, String) {
        use sha2::{Digest, Sha256};
        // Plain data of our own types: serialising it cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        let hash = hex::encode(Sha256::digest(json.as_bytes()));
        (json, hash)
    }
}

/// Judges the candidate against production on the base test split and the feedback
/// hold-out. `settings` must be valid ([`GateSettings::validate`]).
pub fn evaluate(
    base: &PairedPredictions,
    holdout: &PairedPredictions,
    settings: &GateSettings,
) -> GateReport {
    let base_comparison = SetComparison::new(base, settings);
    let classes = class_recalls(base);
    let holdout_comparison = (!holdout.is_empty()).then(|| SetComparison::new(holdout, settings));
    let rules = vec![
        base_rule(&base_comparison, settings),
        class_rule(&classes, settings),
        holdout_rule(holdout_comparison.as_ref(), settings),
    ];
    let reasons: Vec<String> = rules
        .iter()
        .filter(|outcome| !outcome.passed)
        .map(|outcome| outcome.detail.clone())
        .collect();
    GateReport {
        passed: reasons.is_empty(),
        reasons,
        rules,
        base: base_comparison,
        holdout: holdout_comparison,
        classes,
        settings: settings.clone(),
    }
}

fn points(share: f64) -> f64 {
    share * 100.0
}

fn base_rule(base: &SetComparison, settings: &GateSettings) -> RuleOutcome {
    let threshold = -settings.base_margin_points;
    let confidence = settings.confidence * 100.0;
    let Some(interval) = base.difference_interval else {
        return RuleOutcome {
            rule: Rule::BaseNonInferiority,
            passed: false,
            value: None,
            threshold: Some(threshold),
            detail: "the base test split has no samples".into(),
        };
    };
    let lower = points(interval.lower);
    let passed = lower > threshold;
    let verdict = if passed { "above" } else { "not above" };
    RuleOutcome {
        rule: Rule::BaseNonInferiority,
        passed,
        value: Some(lower),
        threshold: Some(threshold),
        detail: format!(
            "base test split: the {confidence:.1} % lower bound of candidate − production accuracy is {lower:+.2} points, {verdict} {threshold:+.2} (difference {:+.2} points over {} samples)",
            points(base.difference),
            base.samples
        ),
    }
}

/// Each digit's recall by both models on `set`.
pub fn class_recalls(base: &PairedPredictions) -> Vec<ClassRecall> {
    let (production, candidate) = base.confusions();
    (0..CLASSES)
        .filter(|&class| production.support(class) > 0)
        .map(|class| {
            let (before, after) = (
                production.class_metrics(class).recall,
                candidate.class_metrics(class).recall,
            );
            ClassRecall {
                digit: class as u8,
                support: production.support(class),
                production_recall: before,
                candidate_recall: after,
                change_points: points(after - before),
            }
        })
        .collect()
}

fn class_rule(classes: &[ClassRecall], settings: &GateSettings) -> RuleOutcome {
    let threshold = -settings.class_recall_drop_points;
    // A float of points such as 0.1 − 0.13 can land a hair past an exact threshold.
    let tolerance = 1e-9;
    let worst = classes
        .iter()
        .min_by(|a, b| a.change_points.total_cmp(&b.change_points));
    let failed: Vec<String> = classes
        .iter()
        .filter(|class| class.change_points < threshold - tolerance)
        .map(|class| format!("digit {} {:+.2}", class.digit, class.change_points))
        .collect();
    let detail = match (worst, failed.is_empty()) {
        (None, _) => "base test split: no digit has samples".to_string(),
        (Some(worst), true) => format!(
            "base test split: no digit's recall fell more than {:.2} points (worst: digit {} {:+.2})",
            settings.class_recall_drop_points, worst.digit, worst.change_points
        ),
        (Some(_), false) => format!(
            "base test split: recall fell more than {:.2} points for {}",
            settings.class_recall_drop_points,
            failed.join(", ")
        ),
    };
    RuleOutcome {
        rule: Rule::ClassRecall,
        passed: worst.is_some() && failed.is_empty(),
        value: worst.map(|worst| worst.change_points),
        threshold: Some(threshold),
        detail,
    }
}

fn holdout_rule(holdout: Option<&SetComparison>, settings: &GateSettings) -> RuleOutcome {
    let Some(holdout) = holdout else {
        return RuleOutcome {
            rule: Rule::HoldoutBetter,
            passed: true,
            value: None,
            threshold: None,
            detail: "no feedback hold-out yet: judged on the base test split alone".into(),
        };
    };
    let (b, c) = (
        holdout.counts.only_candidate_right,
        holdout.counts.only_baseline_right,
    );
    let better = b > c;
    let p = holdout.mcnemar.p_candidate_better;
    let summary = format!(
        "feedback hold-out of {} samples: candidate {:.2} % vs production {:.2} % (right only by the candidate {b}, only by production {c}; one-sided McNemar p = {p:.3e})",
        holdout.samples,
        points(holdout.candidate_accuracy),
        points(holdout.production_accuracy),
    );
    if holdout.samples >= settings.holdout_significance_min as u64 {
        let passed = better && p < settings.holdout_alpha;
        let verdict = if passed {
            "significantly better"
        } else {
            "not significantly better"
        };
        RuleOutcome {
            rule: Rule::HoldoutBetter,
            passed,
            value: Some(p),
            threshold: Some(settings.holdout_alpha),
            detail: format!("{summary}: {verdict} at α = {}", settings.holdout_alpha),
        }
    } else {
        let verdict = if better { "better" } else { "not better" };
        RuleOutcome {
            rule: Rule::HoldoutBetter,
            passed: better,
            value: Some(p),
            threshold: None,
            detail: format!(
                "{summary}: {verdict}, not significant (fewer than {} samples, so the candidate has only to be better)",
                settings.holdout_significance_min
            ),
        }
    }
}

#[cfg(test)]
mod tests;
