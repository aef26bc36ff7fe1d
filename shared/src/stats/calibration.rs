//! The label-free accuracy estimate of DESIGN.md §6a: the model's top probabilities,
//! calibrated on labelled data, turned into the window's expected accuracy with an
//! interval. Checked against scikit-learn (`vectors/calibration.json`, made by
//! `cargo xtask stats-vectors`).
//!
//! **Calibration.** [`Calibrator::fit`] is the isotonic regression of "was the prediction
//! right" (0/1) on the top probability, as scikit-learn's
//! `IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True)` fits it:
//! the inputs sorted, top probabilities within float64's resolution (1e-15) of the first
//! of a run merged into one point whose value is the run's share right and whose weight
//! is its size, the weighted pool-adjacent-violators algorithm over those points, and the
//! points inside a flat stretch dropped. [`Calibrator::calibrated`] is its `predict`:
//! clipped to the fitted range, linear between the fitted points (`numpy.interp`).
//! Pool-adjacent-violators is written here, a few lines: no well-kept Rust crate does
//! isotonic regression with scikit-learn's tie handling and interpolation, and the
//! bootstrap below needs a weighted fit it can run hundreds of times.
//!
//! **Estimate.** [`Calibrator::estimate`] is CBPE-style: the window's expected accuracy is
//! the mean calibrated probability `ĉ = Σ c_i / n`. Its interval is for the accuracy the
//! window actually realised, and it has two sources of error, whose variances add (they
//! are independent: one is the window's outcomes, the other the calibration set):
//! - which of the window's n predictions are right: given the calibrated probabilities,
//!   the count right is Poisson-binomial, so the share right has variance
//!   `Σ c_i (1 − c_i) / n²`;
//! - the calibrator's own error, from the finite calibration set: the variance of `ĉ` over
//!   [`BOOTSTRAP_RESAMPLES`] bootstrap resamples of the calibration set, each refitted.
//!   The resamples come from the shared SplitMix64 (crate::rng) with a fixed seed, so
//!   the estimate is the same on every run and machine.
//!
//! The interval is `ĉ ± z·√(v_outcomes + v_calibrator)`, z the normal quantile of the
//! confidence (statrs), clipped to [0, 1]. It is only as good as the calibration set's
//! likeness to production: a window from a shifted distribution is calibrated with a
//! curve learnt elsewhere, which is why §6a measures the estimate's error against the
//! realised accuracy instead of assuming it. A calibration set that was all right (or all
//! wrong) gives a zero-width interval at 1 (or 0): nothing in it shows otherwise.
//!
//! Measured (a calibrated process, top probabilities skewed towards 1, fresh calibration
//! set per window, 4,000 windows each): the 90 % interval covered the realised accuracy in
//! 89 % of windows with 300 calibration points and 100-prediction windows, and in 86 %
//! with 60 points and 600-prediction windows, where the calibrator's error dominates
//! (the Poisson-binomial term alone covered 33 % there). It runs a little short of its
//! nominal level because both variances come out slightly low: isotonic regression
//! overfits, so `c_i (1 − c_i)` and the resamples' spread understate the truth by 5–20 %.
//!
//! Cost: each resample is one pass over the calibration set (sorted once, at fit) and one
//! sweep over the window's distinct values (sorted once per estimate), so an estimate is
//! about `200 · (n_calibration + n_window_distinct)` steps plus the sorts: for 2,000
//! calibration points and a 500-prediction window, 4 ms optimised, 40 ms unoptimised.
//!
//! Nothing panics or returns NaN: empty, mismatched, non-finite or out-of-[0, 1] input
//! gives `None`.

use crate::rng::SplitMix64;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// How many bootstrap resamples of the calibration set measure the calibrator's error:
/// enough for a variance to within about 10 % (its relative standard error is
/// √(2 / 199)), few enough that an estimate stays cheap.
pub const BOOTSTRAP_RESAMPLES: usize = 200;

/// The bootstrap's seed: fixed, so an estimate is reproducible.
const BOOTSTRAP_SEED: u64 = 0x1f2e_3d4c_5b6a_7988;

/// Top probabilities closer than this to the first of a run are one point: scikit-learn's
/// `_make_unique` uses `np.finfo(float64).resolution`.
const TIE_RESOLUTION: f64 = 1e-15;

/// One of scikit-learn's merged points: a top probability and, for the points merged
/// into it, how many were right and how many there were.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: f64,
    right: f64,
    weight: f64,
}

/// The fitted curve (scikit-learn's `X_thresholds_`, `y_thresholds_`): x strictly
/// increasing, y non-decreasing in [0, 1], never empty.
#[derive(Debug, Clone, PartialEq)]
struct Curve {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Curve {
    /// Weighted isotonic regression of the points' shares right, then the flat stretches'
    /// inner points dropped. `points` is sorted by x, each x at least [`TIE_RESOLUTION`]
    /// above the one before, each weight positive; `None` when it is empty.
    fn fit(points: &[Point]) -> Option<Curve> {
        if points.is_empty() {
            return None;
        }
        // Pool adjacent violators: blocks of consecutive points as (right, weight, number
        // of points). A new point joins the block before it while that block's share is
        // not below its own (scipy pools on >=, so equal neighbours become one block).
        // Shares are compared by cross-multiplying counts, exact while the counts stay
        // below 2^26; the division happens once per block, below.
        let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(points.len());
        for p in points {
            let mut block = (p.right, p.weight, 1);
            while let Some(&(right, weight, len)) = blocks.last() {
                if right * block.1 < block.0 * weight {
                    break;
                }
                block = (block.0 + right, block.1 + weight, block.2 + len);
                blocks.pop();
            }
            blocks.push(block);
        }
        // Each block's share for each of its points. y_min = 0 and y_max = 1 clip
        // nothing: a share of right answers is already in [0, 1].
        let y: Vec<f64> = blocks
            .iter()
            .flat_map(|&(right, weight, len)| std::iter::repeat_n(right / weight, len))
            .collect();
        // scikit-learn's trim_duplicates: keep the ends and every point whose y differs
        // from a neighbour's; the interpolation is the same without the others.
        let keep = |i: usize| i == 0 || i + 1 == y.len() || y[i] != y[i - 1] || y[i] != y[i + 1];
        let (x, y) = (0..y.len())
            .filter(|&i| keep(i))
            .map(|i| (points[i].x, y[i]))
            .unzip();
        Some(Curve { x, y })
    }

    /// `predict`: clipped to the fitted range, then `numpy.interp`.
    fn at(&self, p: f64) -> f64 {
        // NaN has no place on the curve: read it as the least confident input seen.
        let t = if p.is_nan() { self.x[0] } else { self.clip(p) };
        // The last fitted point at or below t (there is one: t >= x[0]).
        self.between(self.x.partition_point(|&x| x <= t) - 1, t)
    }

    fn clip(&self, p: f64) -> f64 {
        p.clamp(self.x[0], self.x[self.x.len() - 1])
    }

    /// The curve at t, a clipped value with x[j] <= t < x[j + 1] (or j the last point).
    /// With one fitted point this is its value everywhere, as scikit-learn predicts when
    /// there is one distinct top probability.
    fn between(&self, j: usize, t: f64) -> f64 {
        if j + 1 == self.x.len() || self.x[j] == t {
            return self.y[j];
        }
        // x is strictly increasing by at least 1e-15, so the slope is finite.
        let slope = (self.y[j + 1] - self.y[j]) / (self.x[j + 1] - self.x[j]);
        slope * (t - self.x[j]) + self.y[j]
    }

    /// The mean of the curve over a window given sorted, as (value, how many times), in
    /// one sweep: the bootstrap evaluates every resample's curve on the same window, and
    /// a search per value per resample was most of an estimate's time.
    fn mean_on_sorted(&self, window: &[(f64, f64)], n: f64) -> f64 {
        let mut j = 0;
        let mut sum = 0.0;
        for &(p, count) in window {
            let t = self.clip(p);
            while j + 1 < self.x.len() && self.x[j + 1] <= t {
                j += 1;
            }
            sum += count * self.between(j, t);
        }
        sum / n
    }
}

/// The window's expected accuracy with its interval; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccuracyEstimate {
    /// The mean calibrated top probability over the window.
    pub expected_accuracy: f64,
    /// The interval's ends, in [0, 1], `lower <= expected_accuracy <= upper`.
    pub lower: f64,
    pub upper: f64,
    /// The interval's confidence, as asked (e.g. 0.9).
    pub confidence: f64,
    /// Predictions in the window.
    pub n: usize,
}

/// Top probabilities calibrated against whether the predictions were right.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrator {
    curve: Curve,
    /// The calibration set, sorted, merged as scikit-learn merges ties, for the bootstrap.
    points: Vec<Point>,
    /// For each calibration input (in sorted order), the index of its point and whether it
    /// was right: what a bootstrap resample draws from.
    inputs: Vec<(usize, bool)>,
}

fn is_probability(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

impl Calibrator {
    /// The isotonic calibration of `correct` on `top_probabilities` (pairs at the same
    /// index). `None` when they are empty, of different lengths, or a probability is not
    /// a finite number in [0, 1].
    pub fn fit(top_probabilities: &[f64], correct: &[bool]) -> Option<Calibrator> {
        if top_probabilities.is_empty()
            || top_probabilities.len() != correct.len()
            || !top_probabilities.iter().all(|&p| is_probability(p))
        {
            return None;
        }
        // scikit-learn's np.lexsort((y, X)): by probability, then wrong before right.
        let mut sorted: Vec<(f64, bool)> = top_probabilities
            .iter()
            .copied()
            .zip(correct.iter().copied())
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut points: Vec<Point> = Vec::new();
        let mut inputs = Vec::with_capacity(sorted.len());
        for (x, right) in sorted {
            // A run is measured from its first value, as in _make_unique, not from the
            // previous one: a slow creep of near-equal values is cut every 1e-15.
            match points.last_mut() {
                Some(point) if x - point.x < TIE_RESOLUTION => {
                    point.weight += 1.0;
                    point.right += f64::from(u8::from(right));
                }
                _ => points.push(Point {
                    x,
                    right: f64::from(u8::from(right)),
                    weight: 1.0,
                }),
            }
            inputs.push((points.len() - 1, right));
        }
        Some(Calibrator {
            curve: Curve::fit(&points)?,
            points,
            inputs,
        })
    }

    /// The calibrated probability of a prediction with top probability `p`: scikit-learn's
    /// `predict`, so outside the fitted range it is the nearest end's value. A NaN is read
    /// as the lowest top probability seen; the answer is always in [0, 1].
    pub fn calibrated(&self, p: f64) -> f64 {
        self.curve.at(p)
    }

    /// The expected accuracy of a window of predictions from their top probabilities,
    /// with an interval of the given confidence (in (0, 1), e.g. 0.9) for the accuracy the
    /// window realised. `None` for an empty window, a top probability that is not a
    /// finite number in [0, 1], or a confidence outside (0, 1).
    pub fn estimate(
        &self,
        window_top_probabilities: &[f64],
        confidence: f64,
    ) -> Option<AccuracyEstimate> {
        let window = window_top_probabilities;
        if window.is_empty()
            || !window.iter().all(|&p| is_probability(p))
            || !(confidence > 0.0 && confidence < 1.0)
        {
            return None;
        }
        let n = window.len() as f64;
        let calibrated: Vec<f64> = window.iter().map(|&p| self.curve.at(p)).collect();
        let expected_accuracy = calibrated.iter().sum::<f64>() / n;
        let outcomes_variance = calibrated.iter().map(|c| c * (1.0 - c)).sum::<f64>() / (n * n);
        let variance = outcomes_variance + self.calibrator_variance(window);
        let z = Normal::new(0.0, 1.0)
            .ok()?
            .inverse_cdf(0.5 + confidence / 2.0);
        let half_width = z * variance.sqrt();
        Some(AccuracyEstimate {
            expected_accuracy,
            lower: (expected_accuracy - half_width).max(0.0),
            upper: (expected_accuracy + half_width).min(1.0),
            confidence,
            n: window.len(),
        })
    }

    /// The variance of the window's mean calibrated probability over bootstrap resamples
    /// of the calibration set. A resample is drawn as counts per merged point (the set is
    /// sorted once, at fit), so each refit is one pass with no sort; a point no draw
    /// picked has weight 0 and, as in scikit-learn, is left out.
    fn calibrator_variance(&self, window: &[f64]) -> f64 {
        let mut sorted = window.to_vec();
        sorted.sort_by(f64::total_cmp);
        // Production windows repeat values (a saturated softmax gives 1.0 again and
        // again): each distinct value is evaluated once.
        let mut distinct: Vec<(f64, f64)> = Vec::new();
        for p in sorted {
            match distinct.last_mut() {
                Some((value, count)) if *value == p => *count += 1.0,
                _ => distinct.push((p, 1.0)),
            }
        }
        let n = window.len() as f64;
        let mut rng = SplitMix64::new(BOOTSTRAP_SEED);
        let mut drawn = vec![(0.0f64, 0.0f64); self.points.len()];
        let mut resample = Vec::with_capacity(self.points.len());
        let mut means = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
        for _ in 0..BOOTSTRAP_RESAMPLES {
            drawn.fill((0.0, 0.0));
            for _ in 0..self.inputs.len() {
                let (point, right) = self.inputs[rng.below(self.inputs.len())];
                drawn[point].0 += f64::from(u8::from(right));
                drawn[point].1 += 1.0;
            }
            resample.clear();
            resample.extend(
                self.points
                    .iter()
                    .zip(&drawn)
                    .filter(|(_, (_, weight))| *weight > 0.0)
                    .map(|(p, &(right, weight))| Point {
                        x: p.x,
                        right,
                        weight,
                    }),
            );
            // A resample always has a point (it draws at least one input).
            if let Some(curve) = Curve::fit(&resample) {
                means.push(curve.mean_on_sorted(&distinct, n));
            }
        }
        let b = means.len() as f64;
        if b < 2.0 {
            return 0.0;
        }
        let mean = means.iter().sum::<f64>() / b;
        means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (b - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::floats;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("vectors/calibration.json")).expect("the vectors parse")
    }

    fn bools(v: &Value) -> Vec<bool> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_bool().unwrap())
            .collect()
    }

    #[test]
    fn calibrated_values_match_scikit_learn() {
        let mut largest = 0.0f64;
        for case in vectors()["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let top = floats(&case["top_probabilities"]);
            let calibrator = Calibrator::fit(&top, &bools(&case["correct"])).unwrap();
            for (inputs, predicted) in [
                ("grid", "grid_predict"),
                ("top_probabilities", "inputs_predict"),
            ] {
                for (p, theirs) in floats(&case[inputs]).iter().zip(floats(&case[predicted])) {
                    let ours = calibrator.calibrated(*p);
                    largest = largest.max((ours - theirs).abs());
                    assert!(
                        (ours - theirs).abs() <= 1e-9,
                        "{name}: at {p} ours {ours}, scikit-learn's {theirs}"
                    );
                }
            }
        }
        println!("largest difference from scikit-learn: {largest:e}");
    }

    #[test]
    fn estimate_is_the_mean_of_scikit_learns_predictions() {
        for case in vectors()["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let top = floats(&case["top_probabilities"]);
            let calibrator = Calibrator::fit(&top, &bools(&case["correct"])).unwrap();
            let window = floats(&case["window"]);
            let estimate = calibrator.estimate(&window, 0.9).unwrap();
            let theirs = case["window_predict_mean"].as_f64().unwrap();
            assert!(
                (estimate.expected_accuracy - theirs).abs() <= 1e-9,
                "{name}: {estimate:?} against scikit-learn's mean {theirs}"
            );
            assert!(
                0.0 <= estimate.lower
                    && estimate.lower <= estimate.expected_accuracy
                    && estimate.expected_accuracy <= estimate.upper
                    && estimate.upper <= 1.0,
                "{name}: {estimate:?}"
            );
            assert_eq!((estimate.n, estimate.confidence), (window.len(), 0.9));
            // Deterministic: the bootstrap's seed is fixed.
            assert_eq!(calibrator.estimate(&window, 0.9), Some(estimate), "{name}");
        }
    }

    /// A process whose top probabilities are calibrated (right with probability p), p
    /// skewed towards 1 as a digit model's are, with ties from rounding.
    fn draw(rng: &mut SplitMix64, n: usize) -> (Vec<f64>, Vec<bool>) {
        let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (0..n)
            .map(|_| {
                let p = (1.0 - 0.7 * uniform().powi(3)) * 1000.0;
                let p = p.round() / 1000.0;
                (p, uniform() < p)
            })
            .unzip()
    }

    /// Share of windows whose realised accuracy the 90 % interval covers, each window
    /// estimated with a calibrator fitted on a fresh calibration set.
    fn coverage(seed: u64, windows: usize, calibration_size: usize, window_size: usize) -> f64 {
        let mut rng = SplitMix64::new(seed);
        let mut covered = 0;
        for _ in 0..windows {
            let (top, correct) = draw(&mut rng, calibration_size);
            let calibrator = Calibrator::fit(&top, &correct).unwrap();
            let (window, right) = draw(&mut rng, window_size);
            let realised = right.iter().filter(|&&r| r).count() as f64 / window_size as f64;
            let estimate = calibrator.estimate(&window, 0.9).unwrap();
            if estimate.lower <= realised && realised <= estimate.upper {
                covered += 1;
            }
        }
        covered as f64 / windows as f64
    }

    #[test]
    fn the_90_percent_interval_covers_the_realised_accuracy() {
        // 250 windows each: a share's standard error is then about 0.02, and the interval
        // measured 0.89 and 0.86 over 4,000 windows (module documentation).
        // Mostly the window's own luck: a larger calibration set, a small window.
        let outcomes = coverage(7, 250, 300, 100);
        // Mostly the calibrator's error: a small calibration set, a large window. Without
        // the bootstrap's share of the variance this one covers about a third.
        let calibrator = coverage(8, 250, 60, 600);
        println!("coverage: {outcomes} (window's luck), {calibrator} (calibrator's error)");
        for share in [outcomes, calibrator] {
            assert!((0.8..=0.98).contains(&share), "coverage {share}");
        }
    }

    #[test]
    fn odd_input_gives_none_not_a_panic() {
        assert_eq!(Calibrator::fit(&[], &[]), None);
        assert_eq!(Calibrator::fit(&[0.5, 0.6], &[true]), None);
        assert_eq!(Calibrator::fit(&[0.5, f64::NAN], &[true, false]), None);
        assert_eq!(Calibrator::fit(&[f64::INFINITY], &[true]), None);
        assert_eq!(Calibrator::fit(&[1.5], &[true]), None);
        assert_eq!(Calibrator::fit(&[-0.1], &[true]), None);

        let calibrator =
            Calibrator::fit(&[0.2, 0.5, 0.9, 1.0], &[false, true, true, true]).unwrap();
        assert_eq!(calibrator.estimate(&[], 0.9), None);
        assert_eq!(calibrator.estimate(&[0.5, f64::NAN], 0.9), None);
        assert_eq!(calibrator.estimate(&[1.01], 0.9), None);
        for confidence in [0.0, 1.0, -0.5, 2.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                calibrator.estimate(&[0.5], confidence),
                None,
                "{confidence}"
            );
        }
        for p in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -3.0,
            7.0,
            0.0,
            1.0,
        ] {
            let c = calibrator.calibrated(p);
            assert!((0.0..=1.0).contains(&c), "{p} gave {c}");
        }
        // One calibration point, one window point: a degenerate but finite interval.
        let one = Calibrator::fit(&[0.7], &[true]).unwrap();
        let estimate = one.estimate(&[0.3], 0.9).unwrap();
        assert_eq!((estimate.lower, estimate.upper), (1.0, 1.0));
    }
}
