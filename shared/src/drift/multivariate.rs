//! The multivariate check of DESIGN.md §6a (NannyML's data-reconstruction drift): the
//! principal components of the reference's 28×28 inputs, kept to `pca_variance_share`
//! of their variance, and the window's mean reconstruction error against a band from
//! the reference's own errors. It sees what no single feature does: a stroke turned or
//! bent changes where the ink is, not how much.
//!
//! Two choices, and why:
//! - Pixels are scaled to 0..1, not standardised per pixel (NannyML standardises its
//!   tabular columns): the pixels share one unit, and a corner pixel that is ink once in
//!   a thousand inputs would, standardised, outweigh the whole stroke.
//! - The errors the band is made of are out of sample. The components are fitted on one
//!   half of the reference's inputs (split by their content) and the band comes from the
//!   errors of the other half; the window's errors are out of sample too, so both sides
//!   of the comparison are alike. (Errors of the inputs a PCA was fitted on are smaller
//!   than those of new inputs of the same kind.) For the same reason a window's inputs
//!   that the components were fitted on are left out of it.
//!
//! The band: §6a's "mean ± σ-multiple of the spread of reference chunks of the window's
//! size". A reference of 500 has two chunks of 200, too few for a spread, so the spread
//! is computed instead of sampled: a mean of m independent errors varies by s/√m (s the
//! errors' standard deviation). The band also carries the reference mean's own error,
//! s/√n_B: half a reference is not so large next to a window that it can be left out.
//! So the band is μ_B ± k·s·√(1/m + 1/n_B), k = `pca_threshold_sigma` (3).

use super::data::{Severity, Status};
use super::settings::DriftSettings;
use inferloop_pca::Pca;
use inferloop_preprocess::INPUT_LEN;
use serde::Serialize;
use statrs::statistics::Statistics;

pub const METHOD: &str = "pca_reconstruction_error";

/// The multivariate result every answer carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Multivariate {
    pub method: &'static str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub is_drifted: bool,
    /// `moderate` when drifted: a reconstruction error has no PSI to grade it by, and a
    /// severe alert is left to a severe feature.
    pub drift_severity: Option<Severity>,
    /// Principal components kept, and the share of the reference's variance they hold.
    pub components: Option<usize>,
    pub explained_variance: Option<f64>,
    /// The window's mean reconstruction error.
    pub reconstruction_error: Option<f64>,
    /// The reference's (its held-out half's) mean error, and the band around it.
    pub reference_error: Option<f64>,
    pub lower_threshold: Option<f64>,
    pub upper_threshold: Option<f64>,
    pub n_reference: usize,
    pub n_current: usize,
    /// The window's inputs that are ones the components were fitted on (the capture's
    /// own predictions, in the first windows after it): left out, their errors are in
    /// sample.
    pub n_left_out: usize,
}

impl Multivariate {
    /// Not run, for `reason` (no inputs in the reference, or none in the window).
    pub fn not_comparable(reason: &str, n_reference: usize, n_current: usize) -> Self {
        Self {
            method: METHOD,
            status: Status::NotComparable,
            reason: Some(reason.to_owned()),
            is_drifted: false,
            drift_severity: None,
            components: None,
            explained_variance: None,
            reconstruction_error: None,
            reference_error: None,
            lower_threshold: None,
            upper_threshold: None,
            n_reference,
            n_current,
            n_left_out: 0,
        }
    }
}

fn pixels(inputs: &[&[u8; INPUT_LEN]]) -> Vec<f64> {
    inputs
        .iter()
        .flat_map(|input| input.iter().map(|&p| f64::from(p) / 255.0))
        .collect()
}

/// The components fitted on a reference's inputs and the errors of its held-out half:
/// made once per reference, used for any number of windows.
#[derive(Clone)]
pub struct FittedReference {
    pca: Pca,
    n_reference: usize,
    n_held_out: usize,
    /// The held-out inputs' mean error and its standard deviation.
    error_mean: f64,
    error_sd: f64,
    /// The fitted inputs' hashes, sorted: a window's input among them is left out.
    fitted_hashes: Vec<u64>,
}

impl FittedReference {
    /// The fit, or the result every window gets when there is none (too few inputs, or
    /// inputs with no variance).
    pub fn fit(
        reference: &[&[u8; INPUT_LEN]],
        settings: &DriftSettings,
    ) -> Result<Self, Box<Multivariate>> {
        let n_reference = reference.len();
        if n_reference < settings.min_samples.max(4) {
            let mut result = Multivariate::not_comparable("", n_reference, 0);
            result.status = Status::InsufficientData;
            result.reason = Some(format!(
                "fewer than min_samples ({}) reference inputs",
                settings.min_samples
            ));
            return Err(Box::new(result));
        }
        // Halves by the input's content, not its position: an input that is in the
        // reference twice (the same image sent again) is in one half, so no held-out
        // error is secretly in sample.
        let (fitted, held_out): (Vec<&[u8; INPUT_LEN]>, Vec<&[u8; INPUT_LEN]>) = reference
            .iter()
            // The hash's top bit: FNV-1a's lowest is only the parity of the bytes.
            .partition(|input| super::fnv1a(input.as_slice()) >> 63 == 0);
        if fitted.len() < 2 || held_out.len() < 2 {
            return Err(Box::new(Multivariate::not_comparable(
                "the reference's inputs are nearly all one image",
                n_reference,
                0,
            )));
        }
        let not_comparable =
            |reason: String| Box::new(Multivariate::not_comparable(&reason, n_reference, 0));
        let pca = Pca::fit(&pixels(&fitted), INPUT_LEN, settings.pca_variance_share)
            .map_err(|err| not_comparable(format!("the reference's inputs: {err}")))?;
        let errors = pca
            .reconstruction_errors(&pixels(&held_out))
            .map_err(|err| not_comparable(format!("the reference's inputs: {err}")))?;
        // std_dev: the sample standard deviation (n - 1).
        let (error_mean, error_sd) = (errors.iter().mean(), errors.iter().std_dev());
        let mut fitted_hashes: Vec<u64> = fitted
            .iter()
            .map(|input| super::fnv1a(input.as_slice()))
            .collect();
        fitted_hashes.sort_unstable();
        Ok(Self {
            pca,
            n_reference,
            n_held_out: held_out.len(),
            error_mean,
            error_sd,
            fitted_hashes,
        })
    }

    /// The components kept, the share of variance they hold, and the held-out inputs'
    /// mean error and its standard deviation.
    pub fn describe(&self) -> String {
        format!(
            "{} components ({:.3} of the variance) fitted on {} inputs; held-out error {:.4} ± {:.4} (sd, n = {})",
            self.pca.components(),
            self.pca.explained_variance(),
            self.n_reference - self.n_held_out,
            self.error_mean,
            self.error_sd,
            self.n_held_out
        )
    }

    /// The window's inputs against the band.
    pub fn check(&self, current: &[&[u8; INPUT_LEN]], settings: &DriftSettings) -> Multivariate {
        let n_current = current.len();
        // 64-bit hashes: two different inputs colliding is as good as impossible here.
        let compared: Vec<&[u8; INPUT_LEN]> = current
            .iter()
            .copied()
            .filter(|input| {
                self.fitted_hashes
                    .binary_search(&super::fnv1a(input.as_slice()))
                    .is_err()
            })
            .collect();
        let n_compared = compared.len();
        let mut result = Multivariate::not_comparable("", self.n_reference, n_current);
        result.n_left_out = n_current - n_compared;
        if n_compared < settings.min_samples.max(2) {
            result.status = Status::InsufficientData;
            result.reason = Some(format!(
                "fewer than min_samples ({}) inputs that are not the reference's own",
                settings.min_samples
            ));
            return result;
        }
        let Ok(errors) = self.pca.reconstruction_errors(&pixels(&compared)) else {
            result.reason = Some("the inputs do not match the components".into());
            return result;
        };
        let window_error = errors.iter().mean();
        let spread =
            self.error_sd * (1.0 / n_compared as f64 + 1.0 / self.n_held_out as f64).sqrt();
        let half_width = settings.pca_threshold_sigma * spread;
        let (lower, upper) = (self.error_mean - half_width, self.error_mean + half_width);
        let is_drifted = !(lower..=upper).contains(&window_error);
        Multivariate {
            method: METHOD,
            status: Status::Tested,
            reason: None,
            is_drifted,
            drift_severity: is_drifted.then_some(Severity::Moderate),
            components: Some(self.pca.components()),
            explained_variance: Some(self.pca.explained_variance()),
            reconstruction_error: Some(window_error),
            reference_error: Some(self.error_mean),
            lower_threshold: Some(lower),
            upper_threshold: Some(upper),
            n_reference: self.n_reference,
            n_current,
            n_left_out: n_current - n_compared,
        }
    }
}

/// The window's inputs (`current`) against the reference's.
pub fn check(
    reference: &[&[u8; INPUT_LEN]],
    current: &[&[u8; INPUT_LEN]],
    settings: &DriftSettings,
) -> Multivariate {
    match FittedReference::fit(reference, settings) {
        Ok(fitted) => fitted.check(current, settings),
        Err(result) => Multivariate {
            n_current: current.len(),
            ..*result
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A digit-like input: a bar of ink from (row, col) of the given length, along a
    /// row when `across`, down a column otherwise, with one pixel of jitter by `seed`
    /// and an edge of grey `edge` (windows use another edge than references, so that
    /// none of their inputs is one of the reference's).
    fn bar(
        row: usize,
        col: usize,
        length: usize,
        across: bool,
        seed: u64,
        edge: u8,
    ) -> [u8; INPUT_LEN] {
        let mut input = [0u8; INPUT_LEN];
        let jitter = (seed % 3) as usize;
        for k in 0..length {
            let (r, c) = if across {
                (row + jitter, col + k)
            } else {
                (row + k, col + jitter)
            };
            input[r * 28 + c] = 200 + (seed % 50) as u8;
            input[r * 28 + c + 1] = edge;
        }
        input
    }

    fn inputs(n: usize, across: bool, offset: u64) -> Vec<[u8; INPUT_LEN]> {
        (0..n as u64)
            .map(|i| {
                bar(
                    4 + (i % 5) as usize,
                    10,
                    12,
                    across,
                    i * 7 + offset,
                    120 + (offset % 7) as u8,
                )
            })
            .collect()
    }

    fn refs(inputs: &[[u8; INPUT_LEN]]) -> Vec<&[u8; INPUT_LEN]> {
        inputs.iter().collect()
    }

    #[test]
    fn inputs_of_the_reference_kind_stay_in_the_band() {
        let reference = inputs(200, false, 0);
        let window = inputs(120, false, 1_000);
        let result = check(&refs(&reference), &refs(&window), &DriftSettings::default());
        assert_eq!(result.status, Status::Tested, "{result:?}");
        assert!(!result.is_drifted, "{result:?}");
        assert!(result.components.unwrap() >= 1);
        let (low, high) = (
            result.lower_threshold.unwrap(),
            result.upper_threshold.unwrap(),
        );
        assert!(low < result.reference_error.unwrap() && result.reference_error.unwrap() < high);
    }

    #[test]
    fn strokes_turned_a_quarter_drift_though_as_much_ink_is_there() {
        let reference = inputs(200, false, 0);
        let window = inputs(120, true, 1_000);
        let result = check(&refs(&reference), &refs(&window), &DriftSettings::default());
        assert!(result.is_drifted, "{result:?}");
        assert_eq!(result.drift_severity, Some(Severity::Moderate));
        assert!(result.reconstruction_error.unwrap() > result.upper_threshold.unwrap());
    }

    #[test]
    fn the_references_own_inputs_are_left_out_of_a_window() {
        let reference = inputs(400, false, 0);
        let settings = DriftSettings::default();
        let fitted = FittedReference::fit(&refs(&reference), &settings).unwrap();
        // The reference itself as the window: the fitted half is left out, and what is
        // compared is the held-out half, which is the band's own centre.
        let result = fitted.check(&refs(&reference), &settings);
        assert!(
            result.n_left_out > 0 && result.n_left_out < 400,
            "{result:?}"
        );
        assert_eq!(result.n_current, 400);
        assert!(!result.is_drifted, "{result:?}");
    }

    #[test]
    fn small_windows_are_insufficient_and_blank_references_not_comparable() {
        let reference = inputs(200, false, 0);
        let window = inputs(20, false, 1_000);
        let small = check(&refs(&reference), &refs(&window), &DriftSettings::default());
        assert_eq!(small.status, Status::InsufficientData);
        assert!(!small.is_drifted);
        let blank = vec![[0u8; INPUT_LEN]; 200];
        let window = inputs(120, false, 1_000);
        let result = check(&refs(&blank), &refs(&window), &DriftSettings::default());
        assert_eq!(result.status, Status::NotComparable);
        assert!(result.reason.unwrap().contains("reference"));
        assert!(!result.is_drifted);
    }
}
