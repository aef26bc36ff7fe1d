//! Pure statistics over counts: what the trends and drift functions compute once the
//! store has handed them the numbers (DESIGN.md §2, §5).
//!
//! Nothing here does I/O, and nothing panics or returns NaN on odd input (empty
//! slices, zero counts, counts near `u64::MAX`): a ratio that is undefined is 0, as
//! scikit-learn's `zero_division=0`, and a test statistic that is undefined is `None`,
//! so a handler can serialise every result straight into a JSON body.
//!
//! - [`metrics`]: the 10-class confusion matrix, precision / recall / F1 / accuracy and the
//!   log loss, checked against scikit-learn.
//! - [`significance`]: the two-proportion z-test (is v2's accuracy really different?).
//! - [`trend`]: least-squares lines, forecasts, improving / declining / stable.
//! - [`drift`]: the per-feature drift statistics (PSI, KS, Wasserstein, chi-square,
//!   Jensen–Shannon) and the multiple-test corrections, checked against NumPy and SciPy.
//! - [`ks`]: the two-sample Kolmogorov–Smirnov test with SciPy's p-value (exact or
//!   asymptotic, as `scipy.stats.ks_2samp` chooses).
//! - [`calibration`]: the label-free accuracy estimate (isotonic calibration of the top
//!   probability, expected accuracy with an interval), checked against scikit-learn.
//! - [`paired`]: two models on the same samples (McNemar's exact test, Newcombe's
//!   interval for the accuracy difference, the minimum detectable difference), checked
//!   against SciPy: what the promotion gate judges with.

pub mod calibration;
pub mod drift;
pub mod ks;
pub mod metrics;
pub mod paired;
pub mod significance;
#[cfg(test)]
mod testing;
pub mod trend;

pub use ks::{KsMethod, KsTest, ks_2samp};
pub use metrics::{ClassMetrics, Confusion, SplitMetrics};
pub use significance::{ZTest, two_proportion_z_test};
pub use trend::{
    ACCURACY_DEAD_BAND, Comparison, Line, Trend, busiest_weekday, classify, compare,
    forecast_daily_average, least_squares,
};
