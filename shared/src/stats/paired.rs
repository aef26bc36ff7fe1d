//! Two models judged on the same labelled samples (the promotion gate, DESIGN.md §11):
//! the 2×2 table of which of them was right, McNemar's exact test on its discordant
//! cells, Newcombe's interval for the difference of the two accuracies, and the smallest
//! difference such a comparison can detect.
//!
//! Paired, not two independent proportions: both models answer the same inputs, so most
//! samples are right (or wrong) for both and only the discordant ones carry information.
//! The two-proportion z-test of [`super::significance`] ignores that correlation, and for
//! a retrained model that agrees with its parent on 99 % of inputs its interval is
//! several times too wide.
//!
//! Checked against SciPy (`binomtest`, its Wilson intervals, `norm.ppf`) through
//! `vectors/paired.json` (xtask/stats_vectors_paired.py).

use serde::Serialize;
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, Normal};

/// Who was right, sample by sample, counted: the baseline (production) and the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PairedCounts {
    pub both_right: u64,
    /// Right by the candidate only (McNemar's `b`).
    pub only_candidate_right: u64,
    /// Right by the baseline only (McNemar's `c`).
    pub only_baseline_right: u64,
    pub both_wrong: u64,
}

impl PairedCounts {
    pub fn add(&mut self, baseline_right: bool, candidate_right: bool) {
        let cell = match (baseline_right, candidate_right) {
            (true, true) => &mut self.both_right,
            (false, true) => &mut self.only_candidate_right,
            (true, false) => &mut self.only_baseline_right,
            (false, false) => &mut self.both_wrong,
        };
        *cell += 1;
    }

    /// Counts of `(baseline right, candidate right)` outcomes.
    pub fn from_outcomes(outcomes: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut counts = Self::default();
        for (baseline, candidate) in outcomes {
            counts.add(baseline, candidate);
        }
        counts
    }

    pub fn n(&self) -> u64 {
        self.both_right + self.only_candidate_right + self.only_baseline_right + self.both_wrong
    }

    pub fn discordant(&self) -> u64 {
        self.only_candidate_right + self.only_baseline_right
    }

    /// The baseline's accuracy; 0 for no samples.
    pub fn baseline_accuracy(&self) -> f64 {
        ratio(self.both_right + self.only_baseline_right, self.n())
    }

    /// The candidate's accuracy; 0 for no samples.
    pub fn candidate_accuracy(&self) -> f64 {
        ratio(self.both_right + self.only_candidate_right, self.n())
    }

    /// Candidate minus baseline accuracy, `(b − c) / n`; 0 for no samples.
    pub fn difference(&self) -> f64 {
        self.candidate_accuracy() - self.baseline_accuracy()
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// McNemar's exact test: under H0 (equal accuracy) the candidate's share of the
/// discordant samples is Binomial(b + c, ½).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    pub discordant: u64,
    /// H1: the accuracies differ (SciPy's `binomtest(b, b + c).pvalue`).
    pub p_two_sided: f64,
    /// H1: the candidate is more accurate (`alternative="greater"`).
    pub p_candidate_better: f64,
}

pub fn mcnemar_exact(counts: &PairedCounts) -> McNemar {
    let b = counts.only_candidate_right;
    let discordant = counts.discordant();
    let no_evidence = McNemar {
        discordant,
        p_two_sided: 1.0,
        p_candidate_better: 1.0,
    };
    let Ok(null) = Binomial::new(0.5, discordant) else {
        return no_evidence;
    };
    if discordant == 0 {
        return no_evidence;
    }
    // P(X ≥ b) = P(X > b − 1).
    let at_least_b = if b == 0 { 1.0 } else { null.sf(b - 1) };
    let at_most_b = null.cdf(b);
    McNemar {
        discordant,
        // The null is symmetric, so SciPy's "as likely or less" two-sided sum is twice
        // the smaller tail (1 when b is the middle).
        p_two_sided: (2.0 * at_least_b.min(at_most_b)).min(1.0),
        p_candidate_better: at_least_b.min(1.0),
    }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

/// The Wilson score interval of `successes / n` at `z` standard errors; `None` for
/// `n = 0` or more successes than trials.
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<Interval> {
    if n == 0 || successes > n || !z.is_finite() {
        return None;
    }
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(Interval {
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

/// Newcombe's (1998) method 10 for the difference of paired proportions, candidate minus
/// baseline accuracy, as Altman et al., *Statistics with Confidence* (2000, ch. 6) give
/// it: each model's Wilson interval, combined through the continuity-corrected phi
/// correlation of the 2×2 table (0 when a margin is empty). It keeps its coverage for
/// small discordant counts and at accuracies near 1, where the Wald interval
/// `(b − c)/n ± z·√(b + c)/n` collapses to a point. `None` for no samples.
pub fn newcombe_difference(counts: &PairedCounts, z: f64) -> Option<Interval> {
    let n = counts.n();
    let candidate = wilson(counts.both_right + counts.only_candidate_right, n, z)?;
    let baseline = wilson(counts.both_right + counts.only_baseline_right, n, z)?;
    let (p1, p2) = (counts.candidate_accuracy(), counts.baseline_accuracy());
    let (a, b, c, d) = (
        counts.both_right as f64,
        counts.only_candidate_right as f64,
        counts.only_baseline_right as f64,
        counts.both_wrong as f64,
    );
    let margins = (a + b) * (c + d) * (a + c) * (b + d);
    // The book's continuity-corrected phi: a positive association is reduced by n/2
    // (to no lower than 0), a negative one is kept.
    let association = a * d - b * c;
    let corrected = if association > n as f64 / 2.0 {
        association - n as f64 / 2.0
    } else if association < 0.0 {
        association
    } else {
        0.0
    };
    let phi = if margins > 0.0 {
        corrected / margins.sqrt()
    } else {
        0.0
    };
    let combine = |x: f64, y: f64| (x * x - 2.0 * phi * x * y + y * y).max(0.0).sqrt();
    let theta = p1 - p2;
    Some(Interval {
        lower: theta - combine(p1 - candidate.lower, baseline.upper - p2),
        upper: theta + combine(candidate.upper - p1, p2 - baseline.lower),
    })
}

/// The standard normal quantile: `z` such that Φ(z) = `p`.
pub fn normal_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

/// The smallest true accuracy difference that a one-sided McNemar test at level `alpha`
/// detects with probability `power`, at this many samples and this discordance:
/// `(z₁₋α + z_power) · √d / n` (Connor's 1987 normal approximation, with the `δ²` term
/// of the alternative's variance dropped, which makes it slightly conservative). At least
/// one discordant sample is assumed: identical answers tell nothing of the spread.
/// `None` for no samples or an `alpha`/`power` outside (0, 1).
pub fn minimum_detectable_difference(
    n: u64,
    discordant: u64,
    alpha: f64,
    power: f64,
) -> Option<f64> {
    if n == 0 || !(alpha > 0.0 && alpha < 1.0) || !(power > 0.0 && power < 1.0) {
        return None;
    }
    let z = normal_quantile(1.0 - alpha) + normal_quantile(power);
    Some(z * (discordant.max(1) as f64).sqrt() / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::floats;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("vectors/paired.json")).expect("paired.json parses")
    }

    fn counts(case: &Value) -> PairedCounts {
        let cell = |key: &str| case[key].as_u64().expect("a count");
        PairedCounts {
            both_right: cell("both_right"),
            only_candidate_right: cell("only_candidate_right"),
            only_baseline_right: cell("only_baseline_right"),
            both_wrong: cell("both_wrong"),
        }
    }

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        (actual - expected).abs() <= relative * expected.abs().max(1e-300) + 1e-15
    }

    #[test]
    fn mcnemar_equals_scipy_binomtest() {
        let vectors = vectors();
        for case in vectors["cases"].as_array().unwrap() {
            let test = mcnemar_exact(&counts(case));
            let name = &case["name"];
            let two = case["p_two_sided"].as_f64().unwrap();
            let greater = case["p_greater"].as_f64().unwrap();
            assert!(
                close(test.p_two_sided, two, 1e-9),
                "{name}: {} vs {two}",
                test.p_two_sided
            );
            assert!(
                close(test.p_candidate_better, greater, 1e-9),
                "{name}: {} vs {greater}",
                test.p_candidate_better
            );
        }
    }

    #[test]
    fn wilson_and_newcombe_equal_the_vectors() {
        let vectors = vectors();
        for case in vectors["cases"].as_array().unwrap() {
            let c = counts(case);
            let name = &case["name"];
            for level in case["levels"].as_array().unwrap() {
                let z = level["z"].as_f64().unwrap();
                let confidence = level["confidence"].as_f64().unwrap();
                assert!(
                    close(normal_quantile(0.5 + confidence / 2.0), z, 1e-12),
                    "{name}"
                );
                let wilson_candidate = floats(&level["wilson_candidate"]);
                let w = wilson(c.both_right + c.only_candidate_right, c.n(), z).unwrap();
                assert!(close(w.lower, wilson_candidate[0], 1e-10), "{name}: {w:?}");
                assert!(close(w.upper, wilson_candidate[1], 1e-10), "{name}: {w:?}");
                let expected = floats(&level["newcombe"]);
                let interval = newcombe_difference(&c, z).unwrap();
                assert!(
                    (interval.lower - expected[0]).abs() < 1e-12,
                    "{name}: {interval:?} vs {expected:?}"
                );
                assert!(
                    (interval.upper - expected[1]).abs() < 1e-12,
                    "{name}: {interval:?} vs {expected:?}"
                );
                assert!(interval.lower <= c.difference() && c.difference() <= interval.upper);
            }
            let mdd = minimum_detectable_difference(c.n(), c.discordant(), 0.05, 0.8).unwrap();
            assert!(
                close(mdd, case["mdd_005_080"].as_f64().unwrap(), 1e-12),
                "{name}"
            );
        }
    }

    #[test]
    fn degenerate_tables_answer_without_nan() {
        let empty = PairedCounts::default();
        assert_eq!(mcnemar_exact(&empty).p_two_sided, 1.0);
        assert_eq!(newcombe_difference(&empty, 1.96), None);
        assert_eq!(minimum_detectable_difference(0, 0, 0.05, 0.8), None);
        assert_eq!(empty.difference(), 0.0);
        // Identical answers: no discordance, p = 1, an interval around 0 that is not empty.
        let same = PairedCounts::from_outcomes((0..500).map(|i| (i % 10 != 0, i % 10 != 0)));
        assert_eq!(same.discordant(), 0);
        assert_eq!(mcnemar_exact(&same).p_candidate_better, 1.0);
        let interval = newcombe_difference(&same, 1.645).unwrap();
        assert!(interval.lower < 0.0 && interval.upper > 0.0, "{interval:?}");
        // Every sample right for both: a margin is empty, phi is 0, still finite.
        let perfect = PairedCounts::from_outcomes((0..100).map(|_| (true, true)));
        let interval = newcombe_difference(&perfect, 1.96).unwrap();
        assert!(interval.lower.is_finite() && interval.upper.is_finite());
        assert!(minimum_detectable_difference(100, 0, 0.05, 0.8).unwrap() > 0.0);
        assert_eq!(minimum_detectable_difference(100, 3, 0.0, 0.8), None);
        assert_eq!(wilson(3, 2, 1.96), None);
    }
}
