//! Is the difference between two success rates (two models' accuracy, two periods'
//! accuracy) more than chance? The pooled two-proportion z-test.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// The result of [`two_proportion_z_test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTest {
    /// Success rate of group A (`successes_a / n_a`).
    pub p_a: f64,
    /// Success rate of group B.
    pub p_b: f64,
    /// `p_b - p_a`: positive when B does better.
    pub difference: f64,
    /// `difference / standard error`; it has the sign of `difference`.
    pub z: f64,
    /// Two-sided p-value, `2 · (1 − Φ(|z|))`, in [0, 1].
    pub p_value: f64,
}

/// Pooled two-proportion z-test of H0: both groups share one success rate.
///
/// The standard error uses the pooled rate `p = (s_a + s_b) / (n_a + n_b)`,
/// `se = sqrt(p (1 − p) (1/n_a + 1/n_b))`, as is right under H0.
///
/// Returns `None` when the test is undefined, rather than a NaN or an infinite z:
/// - either `n` is 0 (no rate to compare);
/// - `successes > n` in either group (not a proportion);
/// - the pooled rate is 0 or 1 (every sample failed, or every one succeeded, in both
///   groups): the standard error is 0 and there is no variation to test against.
///
/// The normal approximation wants roughly ≥ 5 successes and ≥ 5 failures per group;
/// smaller samples still get an answer, which the caller should present as indicative.
pub fn two_proportion_z_test(
    successes_a: u64,
    n_a: u64,
    successes_b: u64,
    n_b: u64,
) -> Option<ZTest> {
    if n_a == 0 || n_b == 0 || successes_a > n_a || successes_b > n_b {
        return None;
    }
    // In f64 throughout: u64 sums could overflow, and huge counts only lose precision.
    let (sa, na, sb, nb) = (
        successes_a as f64,
        n_a as f64,
        successes_b as f64,
        n_b as f64,
    );
    let p_a = sa / na;
    let p_b = sb / nb;
    let pooled = (sa + sb) / (na + nb);
    if !(pooled > 0.0 && pooled < 1.0) {
        return None;
    }
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    let difference = p_b - p_a;
    let z = difference / se;
    if !(se > 0.0 && z.is_finite()) {
        return None;
    }
    // `sf` is 1 − Φ computed directly, so tiny p-values in the tail don't round to 0
    // early through 1 − 0.99999….
    let p_value = (2.0 * Normal::standard().sf(z.abs())).clamp(0.0, 1.0);
    Some(ZTest {
        p_a,
        p_b,
        difference,
        z,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() < tolerance
    }

    #[test]
    fn known_values_45_of_100_vs_60_of_100() {
        // By hand: pooled 105/200 = 0.525, se = sqrt(0.525 · 0.475 · 0.02) = 0.070622,
        // z = 0.15 / 0.070622 = 2.12398, p = 2 · (1 − Φ(2.12398)) = 0.033672.
        let t = two_proportion_z_test(45, 100, 60, 100).unwrap();
        assert!(close(t.p_a, 0.45, 1e-12));
        assert!(close(t.p_b, 0.60, 1e-12));
        assert!(close(t.difference, 0.15, 1e-12));
        assert!(close(t.z, 2.12398, 1e-4), "{}", t.z);
        assert!(close(t.p_value, 0.03367, 1e-4), "{}", t.p_value);
    }

    #[test]
    fn swapping_groups_flips_z_keeps_p() {
        let ab = two_proportion_z_test(45, 100, 60, 100).unwrap();
        let ba = two_proportion_z_test(60, 100, 45, 100).unwrap();
        assert!(close(ab.z, -ba.z, 1e-12));
        assert!(close(ab.p_value, ba.p_value, 1e-12));
    }

    #[test]
    fn unequal_sizes() {
        // 550/1000 vs 500/1000 as A vs B: pooled 0.525, se = sqrt(0.249375 · 0.002),
        // z = −0.05 / 0.022333 = −2.23887, p = 0.025164.
        let t = two_proportion_z_test(550, 1000, 500, 1000).unwrap();
        assert!(close(t.z, -2.23887, 1e-4), "{}", t.z);
        assert!(close(t.p_value, 0.025164, 1e-4), "{}", t.p_value);
        // Different n: 30/50 vs 300/400, checked against the formula directly.
        let t = two_proportion_z_test(30, 50, 300, 400).unwrap();
        let pooled: f64 = 330.0 / 450.0;
        let se = (pooled * (1.0 - pooled) * (1.0 / 50.0 + 1.0 / 400.0)).sqrt();
        assert!(close(t.z, (0.75 - 0.6) / se, 1e-12));
    }

    #[test]
    fn equal_rates_give_z_zero_p_one() {
        let t = two_proportion_z_test(30, 60, 50, 100).unwrap();
        assert_eq!(t.z, 0.0);
        assert!(close(t.p_value, 1.0, 1e-12));
    }

    #[test]
    fn undefined_cases_are_none() {
        assert_eq!(two_proportion_z_test(0, 0, 5, 10), None);
        assert_eq!(two_proportion_z_test(5, 10, 0, 0), None);
        assert_eq!(two_proportion_z_test(0, 10, 0, 20), None); // pooled 0
        assert_eq!(two_proportion_z_test(10, 10, 20, 20), None); // pooled 1
        assert_eq!(two_proportion_z_test(11, 10, 5, 10), None); // not a proportion
    }

    #[test]
    fn extreme_difference_has_tiny_but_valid_p() {
        let t = two_proportion_z_test(0, 100_000, 100_000, 100_000).unwrap();
        assert!(t.z.is_finite() && t.z > 0.0);
        assert!((0.0..1e-100).contains(&t.p_value), "{}", t.p_value);
    }

    #[test]
    fn huge_counts_stay_finite() {
        let t = two_proportion_z_test(u64::MAX / 2, u64::MAX, u64::MAX / 3, u64::MAX).unwrap();
        assert!(t.z.is_finite() && t.z < 0.0);
        assert!((0.0..=1.0).contains(&t.p_value));
        // One sample each, different outcomes: defined, and far from significant.
        let t = two_proportion_z_test(1, 1, 0, 1).unwrap();
        assert!(t.p_value.is_finite() && t.p_value > 0.1);
    }
}
