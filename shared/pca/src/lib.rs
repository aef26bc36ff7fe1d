//! PCA reconstruction error: the multivariate drift method of NannyML ("data
//! reconstruction with PCA"). Principal components are fitted to reference rows, kept to
//! a share of their variance; a row's error is the Euclidean distance between it and its
//! reconstruction from those components. Rows like the reference reconstruct well;
//! drifted rows (a new stroke style, another camera) leave more outside the kept
//! subspace, so their mean error rises.
//!
//! The numbers follow scikit-learn's `PCA(n_components=share, svd_solver="full")` (and
//! the error its `x - inverse_transform(transform(x))`), tested against it with
//! `xtask/stats_vectors_pca.py`. Pure: no I/O, f64 throughout, faer for the SVD and the
//! matrix products.
//!
//! faer's generic code is compiled in this crate, at this crate's opt-level; the root
//! Cargo.toml gives it opt-level 2 in the dev profile, or a 784-column fit takes seconds.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul;
use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};
use faer::{Accum, Mat, MatRef, Par};

/// Principal components fitted to rows of `dims` values each, kept to a share of variance.
#[derive(Debug, Clone)]
pub struct Pca {
    /// The fit rows' mean, per column: rows are centred by it before projecting.
    mean: Vec<f64>,
    /// dims × k, orthonormal columns: the principal directions, largest variance first.
    components: Mat<f64>,
    /// Every component's share of the total variance (min(n, dims) of them), not only
    /// the kept ones.
    explained_variance_ratio: Vec<f64>,
    k: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcaError {
    #[error("PCA needs at least 2 rows to fit, got {rows}")]
    TooFewRows { rows: usize },
    /// The slice is not a whole number of rows: `got` values, rows of `expected` each.
    #[error("{got} values are not a whole number of rows of {expected}")]
    WrongLength { expected: usize, got: usize },
    #[error("the rows have a NaN or infinite value (or their variance overflows)")]
    NonFinite,
    #[error("the fit rows do not vary: every column is constant")]
    NoVariance,
    #[error("the share of variance to keep must be in (0, 1), got {0}")]
    InvalidShare(f64),
    /// faer's SVD did not converge (not seen with finite inputs; here so `fit` never panics).
    #[error("the SVD did not converge")]
    NoConvergence,
}

impl Pca {
    /// Fits to `rows`, a row-major flat slice of n rows of `dims` values
    /// (`rows.len() == n * dims`, n >= 2), keeping the fewest components whose
    /// cumulative share of the variance is strictly greater than `variance_share`
    /// (in (0, 1)), as scikit-learn does for a float `n_components`.
    pub fn fit(rows: &[f64], dims: usize, variance_share: f64) -> Result<Pca, PcaError> {
        // Written so NaN fails too.
        if !(variance_share > 0.0 && variance_share < 1.0) {
            return Err(PcaError::InvalidShare(variance_share));
        }
        let n = row_count(rows, dims)?;
        if n < 2 {
            return Err(PcaError::TooFewRows { rows: n });
        }
        if rows.iter().any(|x| !x.is_finite()) {
            return Err(PcaError::NonFinite);
        }
        // Decided on the inputs, not on the singular values: a constant column's mean
        // need not round back to its value (25 × 0.3 / 25), which leaves ~1e-17 residues
        // and a tiny non-zero total whose "ratios" would be noise.
        let first = &rows[..dims];
        if rows.chunks_exact(dims).all(|row| row == first) {
            return Err(PcaError::NoVariance);
        }

        // Summed row after row, as numpy's mean over axis 0 does, then divided.
        let mut mean = vec![0.0; dims];
        for row in rows.chunks_exact(dims) {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }

        // The centred matrix transposed (dims × n): faer is column-major, so a row of
        // the input is a contiguous column here. Its left singular vectors are the
        // principal directions (sklearn's right singular vectors of the n × dims matrix);
        // the right ones are not needed, so not computed.
        let xc = centred_transposed(rows, dims, n, &mean);
        let size = dims.min(n);
        let mut s = Diag::<f64>::zeros(size);
        let mut u = Mat::<f64>::zeros(dims, size);
        let par = Par::Seq;
        let mut buf = MemBuffer::new(svd_scratch::<f64>(
            dims,
            n,
            ComputeSvdVectors::Thin,
            ComputeSvdVectors::No,
            par,
            Default::default(),
        ));
        svd(
            xc.as_ref(),
            s.as_mut(),
            Some(u.as_mut()),
            None,
            par,
            MemStack::new(&mut buf),
            Default::default(),
        )
        .map_err(|_| PcaError::NoConvergence)?;

        // sklearn: explained_variance = s² / (n - 1), ratio = that over its sum; the
        // divisor cancels, but dividing the same way keeps the roundings the same.
        let singular: Vec<f64> = s.column_vector().iter().copied().collect();
        let variance: Vec<f64> = singular.iter().map(|s| s * s / (n - 1) as f64).collect();
        let total: f64 = variance.iter().sum();
        if !total.is_finite() {
            return Err(PcaError::NonFinite);
        }
        if total <= 0.0 {
            return Err(PcaError::NoVariance);
        }
        let explained_variance_ratio: Vec<f64> = variance.iter().map(|v| v / total).collect();

        // np.searchsorted(cumsum, share, side="right") + 1: one more than the number of
        // cumulative ratios <= share (the cumsum is nondecreasing), i.e. the first k whose
        // cumulative ratio is strictly above it. Capped: rounding can leave the last
        // cumulative ratio just below 1, and so below a share close to 1.
        let mut cumulative = 0.0;
        let mut at_most = 0;
        for r in &explained_variance_ratio {
            cumulative += r;
            if cumulative > variance_share {
                break;
            }
            at_most += 1;
        }
        let k = (at_most + 1).min(size);

        Ok(Pca {
            mean,
            components: u.subcols(0, k).to_owned(),
            explained_variance_ratio,
            k,
        })
    }

    /// The number of components kept (k).
    pub fn components(&self) -> usize {
        self.k
    }

    /// The number of values in a row.
    pub fn dims(&self) -> usize {
        self.mean.len()
    }

    /// The kept components' cumulative share of the fit rows' variance (above the share
    /// asked for).
    pub fn explained_variance(&self) -> f64 {
        // Summed in order, as np.cumsum does.
        self.explained_variance_ratio[..self.k].iter().sum()
    }

    /// The Euclidean norm of each row minus its reconstruction from the kept components
    /// (sklearn: `x - inverse_transform(transform(x))`), for `rows` a row-major flat
    /// slice of rows of `dims()` values (none gives none).
    pub fn reconstruction_errors(&self, rows: &[f64]) -> Result<Vec<f64>, PcaError> {
        let dims = self.dims();
        let m = row_count(rows, dims)?;
        if rows.iter().any(|x| !x.is_finite()) {
            return Err(PcaError::NonFinite);
        }
        if m == 0 {
            return Ok(Vec::new());
        }
        // Transposed as in `fit` (dims × m, a row per column). Centred rows X; with the
        // components V: Zᵀ = Vᵀ Xᵀ (the scores), then Xᵀ - V Zᵀ is each row's residual.
        // Sklearn adds the mean back and subtracts the row again; the residual is the
        // same up to rounding.
        let mut residual = centred_transposed(rows, dims, m, &self.mean);
        let v = self.components.as_ref();
        let mut scores = Mat::<f64>::zeros(self.k, m);
        matmul(
            scores.as_mut(),
            Accum::Replace,
            v.transpose(),
            residual.as_ref(),
            1.0,
            Par::Seq,
        );
        matmul(
            residual.as_mut(),
            Accum::Add,
            v,
            scores.as_ref(),
            -1.0,
            Par::Seq,
        );
        Ok((0..m).map(|j| residual.col(j).norm_l2()).collect())
    }
}

/// The number of rows of `dims` values in `rows`.
fn row_count(rows: &[f64], dims: usize) -> Result<usize, PcaError> {
    // No columns: no row length to divide by, and nothing that could vary.
    if dims == 0 {
        return if rows.is_empty() {
            Err(PcaError::NoVariance)
        } else {
            Err(PcaError::WrongLength {
                expected: 0,
                got: rows.len(),
            })
        };
    }
    if !rows.len().is_multiple_of(dims) {
        return Err(PcaError::WrongLength {
            expected: dims,
            got: rows.len(),
        });
    }
    Ok(rows.len() / dims)
}

/// `rows` (n rows of `dims`, row-major) minus `mean`, as a dims × n column-major matrix.
fn centred_transposed(rows: &[f64], dims: usize, n: usize, mean: &[f64]) -> Mat<f64> {
    // Read in place as dims × n column-major: the transpose of the row-major n × dims.
    let x = MatRef::from_column_major_slice(rows, dims, n);
    Mat::from_fn(dims, n, |i, j| x[(i, j)] - mean[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vectors {
        sklearn: String,
        cases: Vec<Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        name: String,
        dims: usize,
        share: f64,
        /// Rows stored as integers 0..255, to be divided by 255 (as the script does).
        pixels: bool,
        fit_rows: Vec<Vec<f64>>,
        test_rows: Vec<Vec<f64>>,
        k: usize,
        explained_variance: f64,
        test_errors: Vec<f64>,
        fit_errors: Vec<f64>,
    }

    impl Case {
        fn flat(&self, rows: &[Vec<f64>]) -> Vec<f64> {
            let scale = |x: f64| if self.pixels { x / 255.0 } else { x };
            rows.iter().flatten().map(|&x| scale(x)).collect()
        }
    }

    /// 1e-9 absolute, or relative for values above 1.
    fn close(got: f64, want: f64) -> f64 {
        (got - want).abs() / want.abs().max(1.0)
    }

    #[test]
    fn matches_sklearn() {
        let vectors: Vectors =
            serde_json::from_str(include_str!("../../src/stats/vectors/pca.json")).unwrap();
        assert!(!vectors.sklearn.is_empty());
        let mut worst = (0.0, String::new());
        for case in &vectors.cases {
            let pca = Pca::fit(&case.flat(&case.fit_rows), case.dims, case.share).unwrap();
            assert_eq!(pca.components(), case.k, "{}: k", case.name);
            assert_eq!(pca.dims(), case.dims);
            let mut check = |what: &str, got: f64, want: f64| {
                let d = close(got, want);
                assert!(d <= 1e-9, "{} {what}: {got} vs {want}", case.name);
                if d > worst.0 {
                    worst = (d, format!("{} {what}", case.name));
                }
            };
            check(
                "explained variance",
                pca.explained_variance(),
                case.explained_variance,
            );
            for (rows, want, what) in [
                (&case.test_rows, &case.test_errors, "test error"),
                (&case.fit_rows, &case.fit_errors, "fit error"),
            ] {
                let got = pca.reconstruction_errors(&case.flat(rows)).unwrap();
                assert_eq!(got.len(), want.len());
                for (&g, &w) in got.iter().zip(want) {
                    check(what, g, w);
                }
            }
        }
        eprintln!(
            "largest deviation from sklearn: {:e} ({})",
            worst.0, worst.1
        );
    }

    /// Three rows in 3-D that vary along (1, 1, 0) mostly and along z a little.
    fn small() -> Vec<f64> {
        vec![
            0.0, 0.0, 0.0, //
            1.0, 1.0, 0.1, //
            2.0, 2.0, -0.1, //
            3.0, 3.0, 0.0,
        ]
    }

    #[test]
    fn rejects_bad_inputs() {
        let rows = small();
        assert_eq!(
            Pca::fit(&rows[..11], 3, 0.5).unwrap_err(),
            PcaError::WrongLength {
                expected: 3,
                got: 11
            }
        );
        assert_eq!(
            Pca::fit(&rows[..3], 3, 0.5).unwrap_err(),
            PcaError::TooFewRows { rows: 1 }
        );
        assert_eq!(
            Pca::fit(&[], 3, 0.5).unwrap_err(),
            PcaError::TooFewRows { rows: 0 }
        );
        let mut nan = rows.clone();
        nan[4] = f64::NAN;
        assert_eq!(Pca::fit(&nan, 3, 0.5).unwrap_err(), PcaError::NonFinite);
        nan[4] = f64::INFINITY;
        assert_eq!(Pca::fit(&nan, 3, 0.5).unwrap_err(), PcaError::NonFinite);
        // Identical rows, including a value whose mean does not round back to it.
        let same = [0.3, 1.0, -2.0].repeat(25);
        assert_eq!(Pca::fit(&same, 3, 0.5).unwrap_err(), PcaError::NoVariance);
        assert_eq!(Pca::fit(&[], 0, 0.5).unwrap_err(), PcaError::NoVariance);
        for share in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            match Pca::fit(&rows, 3, share).unwrap_err() {
                PcaError::InvalidShare(s) => assert!(s.is_nan() || s == share),
                e => panic!("{share}: {e:?}"),
            }
        }

        let pca = Pca::fit(&rows, 3, 0.5).unwrap();
        assert_eq!(
            pca.reconstruction_errors(&[1.0, 2.0]).unwrap_err(),
            PcaError::WrongLength {
                expected: 3,
                got: 2
            }
        );
        assert_eq!(
            pca.reconstruction_errors(&[1.0, f64::NAN, 0.0])
                .unwrap_err(),
            PcaError::NonFinite
        );
        assert_eq!(pca.reconstruction_errors(&[]).unwrap(), Vec::<f64>::new());
    }

    #[test]
    fn zero_error_in_the_kept_span() {
        let pca = Pca::fit(&small(), 3, 0.5).unwrap();
        assert_eq!(pca.components(), 1);
        assert!(pca.explained_variance() > 0.99);
        // The mean (1.5, 1.5, 0) plus any multiple of the first direction, ≈ (1, 1, 0)/√2:
        // reconstructs exactly up to rounding. Off it, the error is the distance to the line.
        let v = pca.components.col(0);
        let on: Vec<f64> = (0..3).map(|i| pca.mean[i] + 2.5 * v[i]).collect();
        let errors = pca
            .reconstruction_errors(&[on, vec![1.5, 1.5, 2.0]].concat())
            .unwrap();
        assert!(errors[0] < 1e-12, "{errors:?}");
        assert!((errors[1] - 2.0).abs() < 1e-2, "{errors:?}");
    }
}
