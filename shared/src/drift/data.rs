//! The data-drift verdict of DESIGN.md §6a over paired columns: a test per feature, the
//! multiple-test correction, the practical effect, severities and the verdict.

use super::columns::{Column, Values};
use super::multivariate::Multivariate;
use super::settings::{Correction, DriftSettings};
use crate::stats::drift as st;
use crate::stats::ks::{KsMethod, ks_2samp};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Drift,
    NoDrift,
    InsufficientData,
    NoReference,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::NoDrift => "no_drift",
            Self::InsufficientData => "insufficient_data",
            Self::NoReference => "no_reference",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Minor,
    Moderate,
    Severe,
}

/// What was done with one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Tested,
    /// No reference column, an upload-level feature against the test split, or a
    /// constant reference column.
    NotComparable,
    InsufficientData,
}

/// One feature's tests, in the seed's fields and ours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureTest {
    pub feature: String,
    pub kind: &'static str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub is_drifted: bool,
    pub drift_severity: Option<Severity>,
    /// `ks` for numeric features, `chi_square` for categorical ones.
    pub method: &'static str,
    pub p_value: Option<f64>,
    /// The p-value the correction compares (Bonferroni: p·m, capped at 1; BH: adjusted).
    pub p_value_adjusted: Option<f64>,
    /// Max of PSI and the normalised Wasserstein distance (numeric); PSI (categorical).
    pub effect: Option<f64>,
    pub psi_value: Option<f64>,
    pub ks_statistic: Option<f64>,
    pub ks_pvalue: Option<f64>,
    pub ks_method: Option<KsMethod>,
    pub wasserstein_normalised: Option<f64>,
    pub chi2_statistic: Option<f64>,
    pub chi2_dof: Option<u64>,
    pub js_distance: Option<f64>,
    pub reference_mean: Option<f64>,
    pub current_mean: Option<f64>,
    pub n_reference: usize,
    pub n_current: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftSummary {
    pub total_drifted_features: usize,
    pub drift_percentage: f64,
    pub severe_drift_features: Vec<String>,
    pub moderate_drift_features: Vec<String>,
    pub minor_drift_features: Vec<String>,
    pub tested_features: usize,
}

/// The data verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataDrift {
    pub verdict: Verdict,
    pub drift_detected: bool,
    /// The share of tested features that drifted (the seed's score).
    pub overall_drift_score: f64,
    pub drifted_features: Vec<String>,
    pub drift_summary: DriftSummary,
    pub statistical_tests: BTreeMap<String, FeatureTest>,
    pub alpha: f64,
    pub correction: Correction,
    /// The level each p-value is compared with after correction (α/m for Bonferroni).
    pub alpha_corrected: f64,
    pub n_reference: usize,
    pub n_current: usize,
    /// The worst severity among drifted features (and the multivariate check's).
    pub severity: Option<Severity>,
    /// The PCA reconstruction error of the inputs (`with_multivariate`); not comparable
    /// until one is given.
    pub multivariate: Multivariate,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// PSI over categories (shares of each category, an empty share 0.0001 as for numeric
/// PSI): the categorical feature's effect.
pub fn categorical_psi(reference: &[i64], current: &[i64]) -> Option<f64> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let mut counts: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for r in reference {
        counts.entry(*r).or_default().0 += 1.0;
    }
    for c in current {
        counts.entry(*c).or_default().1 += 1.0;
    }
    let share = |count: f64, n: usize| match count / n as f64 {
        0.0 => st::PSI_EMPTY_SHARE,
        s => s,
    };
    Some(
        counts
            .values()
            .map(|(r, c)| {
                let (r, c) = (share(*r, reference.len()), share(*c, current.len()));
                (c - r) * (c / r).ln()
            })
            .sum(),
    )
}

/// Categories as codes shared by both windows (sorted text order).
fn codes(reference: &[String], current: &[String]) -> (Vec<i64>, Vec<i64>) {
    let mut names: Vec<&String> = reference.iter().chain(current).collect();
    names.sort();
    names.dedup();
    let code = |v: &String| names.binary_search(&v).map(|i| i as i64).unwrap_or(-1);
    (
        reference.iter().map(code).collect(),
        current.iter().map(code).collect(),
    )
}

fn untested(column: &Column, status: Status, reason: &str, n_reference: usize) -> FeatureTest {
    let method = match column.values {
        Values::Numeric(_) => "ks",
        Values::Categorical(_) => "chi_square",
    };
    FeatureTest {
        feature: column.name.clone(),
        kind: column.values.kind(),
        status,
        reason: Some(reason.to_owned()),
        is_drifted: false,
        drift_severity: None,
        method,
        p_value: None,
        p_value_adjusted: None,
        effect: None,
        psi_value: None,
        ks_statistic: None,
        ks_pvalue: None,
        ks_method: None,
        wasserstein_normalised: None,
        chi2_statistic: None,
        chi2_dof: None,
        js_distance: None,
        reference_mean: None,
        current_mean: match &column.values {
            Values::Numeric(v) => mean(v),
            Values::Categorical(_) => None,
        },
        n_reference,
        n_current: column.values.len(),
    }
}

fn test_feature(reference: &Column, current: &Column, settings: &DriftSettings) -> FeatureTest {
    let (n_r, n_c) = (reference.values.len(), current.values.len());
    if n_r < settings.min_samples || n_c < settings.min_samples {
        return untested(
            current,
            Status::InsufficientData,
            &format!("fewer than min_samples ({}) values", settings.min_samples),
            n_r,
        );
    }
    let mut test = untested(current, Status::Tested, "", n_r);
    test.reason = None;
    match (&reference.values, &current.values) {
        (Values::Numeric(r), Values::Numeric(c)) => {
            let constant = r.iter().all(|v| *v == r[0]);
            if constant {
                test.status = Status::NotComparable;
                test.reason = Some("the reference column is constant".into());
                test.reference_mean = mean(r);
                return test;
            }
            let ks = ks_2samp(r, c);
            test.ks_statistic = ks.map(|k| k.statistic);
            test.ks_pvalue = ks.map(|k| k.p_value);
            test.ks_method = ks.map(|k| k.method);
            test.p_value = test.ks_pvalue;
            test.psi_value = st::psi(r, c);
            test.wasserstein_normalised = st::wasserstein_normalised(r, c);
            test.effect = match (test.psi_value, test.wasserstein_normalised) {
                (Some(p), Some(w)) => Some(p.max(w)),
                (p, w) => p.or(w),
            };
            test.reference_mean = mean(r);
            test.current_mean = mean(c);
        }
        (Values::Categorical(r), Values::Categorical(c)) => {
            let (r, c) = codes(r, c);
            let chi = st::chi_square_homogeneity(&r, &c);
            test.chi2_statistic = chi.map(|x| x.statistic);
            test.chi2_dof = chi.map(|x| x.dof as u64);
            test.p_value = chi.map(|x| x.p_value);
            test.js_distance = st::js_distance(&r, &c);
            test.psi_value = categorical_psi(&r, &c);
            test.effect = test.psi_value;
        }
        _ => {
            test.status = Status::NotComparable;
            test.reason = Some("numeric in one window, categorical in the other".into());
        }
    }
    if test.p_value.is_none() {
        test.status = Status::NotComparable;
        test.reason = Some("the test is undefined on these values".into());
    }
    test
}

/// Compares each current column with the reference column of the same name. `judged`
/// says which features the reference may judge (false: `not_comparable`, the reason
/// given); `n_reference`/`n_current` are the windows' sizes.
pub fn compare(
    pairs: &[(&Column, Option<&Column>)],
    judged: impl Fn(&str) -> Result<(), String>,
    n_reference: usize,
    n_current: usize,
    settings: &DriftSettings,
) -> DataDrift {
    let mut tests: Vec<FeatureTest> = pairs
        .iter()
        .map(
            |(current, reference)| match (reference, judged(&current.name)) {
                (_, Err(reason)) => untested(current, Status::NotComparable, &reason, 0),
                (None, _) => untested(current, Status::NotComparable, "not in the reference", 0),
                (Some(reference), Ok(())) => test_feature(reference, current, settings),
            },
        )
        .collect();
    let tested: Vec<usize> = (0..tests.len())
        .filter(|&i| tests[i].status == Status::Tested)
        .collect();
    let p_values: Vec<f64> = tested.iter().filter_map(|&i| tests[i].p_value).collect();
    let adjusted = match settings.correction {
        Correction::Bonferroni => st::bonferroni(&p_values),
        Correction::BenjaminiHochberg => st::benjamini_hochberg(&p_values),
    };
    let m = tested.len().max(1) as f64;
    let alpha_corrected = match settings.correction {
        Correction::Bonferroni => settings.alpha / m,
        Correction::BenjaminiHochberg => settings.alpha,
    };
    for (&i, &adjusted) in tested.iter().zip(&adjusted) {
        let test = &mut tests[i];
        test.p_value_adjusted = Some(adjusted);
        let significant = adjusted < settings.alpha;
        let practical = test
            .psi_value
            .is_some_and(|p| p >= settings.psi_minor_threshold)
            || test
                .wasserstein_normalised
                .is_some_and(|w| w >= settings.wasserstein_threshold);
        test.is_drifted = significant && practical;
        if test.is_drifted {
            let psi = test.psi_value.unwrap_or(0.0);
            // A feature drifting by its Wasserstein distance alone (PSI under minor) is
            // still minor: it drifted, and severity only grades how much by PSI.
            test.drift_severity = Some(if psi >= settings.psi_severe_threshold {
                Severity::Severe
            } else if psi >= settings.psi_moderate_threshold {
                Severity::Moderate
            } else {
                Severity::Minor
            });
        }
    }
    let drifted: Vec<&FeatureTest> = tests.iter().filter(|t| t.is_drifted).collect();
    let named = |severity: Severity| -> Vec<String> {
        drifted
            .iter()
            .filter(|t| t.drift_severity == Some(severity))
            .map(|t| t.feature.clone())
            .collect()
    };
    let share = if tested.is_empty() {
        0.0
    } else {
        drifted.len() as f64 / tested.len() as f64
    };
    let severity = drifted.iter().filter_map(|t| t.drift_severity).max();
    let verdict = if n_reference < settings.min_samples
        || n_current < settings.min_samples
        || tested.is_empty()
    {
        Verdict::InsufficientData
    } else if share >= settings.drift_share || severity == Some(Severity::Severe) {
        Verdict::Drift
    } else {
        Verdict::NoDrift
    };
    DataDrift {
        verdict,
        drift_detected: verdict == Verdict::Drift,
        overall_drift_score: share,
        drifted_features: drifted.iter().map(|t| t.feature.clone()).collect(),
        drift_summary: DriftSummary {
            total_drifted_features: drifted.len(),
            drift_percentage: share * 100.0,
            severe_drift_features: named(Severity::Severe),
            moderate_drift_features: named(Severity::Moderate),
            minor_drift_features: named(Severity::Minor),
            tested_features: tested.len(),
        },
        alpha: settings.alpha,
        correction: settings.correction,
        alpha_corrected,
        n_reference,
        n_current,
        severity,
        statistical_tests: tests.into_iter().map(|t| (t.feature.clone(), t)).collect(),
        multivariate: Multivariate::not_comparable(
            "no inputs to compare: records carry features only",
            n_reference,
            n_current,
        ),
    }
}

/// `report` with the multivariate check: a window whose inputs leave the band drifts
/// even when no feature does (§6a's "data drifts" has a third way). A verdict of too
/// little data, or of no reference, stays what it is.
pub fn with_multivariate(mut report: DataDrift, multivariate: Multivariate) -> DataDrift {
    if multivariate.is_drifted && matches!(report.verdict, Verdict::Drift | Verdict::NoDrift) {
        report.verdict = Verdict::Drift;
        report.drift_detected = true;
        report.severity = report.severity.max(multivariate.drift_severity);
    }
    report.multivariate = multivariate;
    report
}

/// `report` as a `no_reference` verdict: the comparisons stay (what the test split and
/// production share, for a person to read), but nothing is called drifted (§6a: never
/// "drift", never "no drift").
pub fn as_no_reference(mut report: DataDrift) -> DataDrift {
    report.verdict = Verdict::NoReference;
    report.drift_detected = false;
    report.overall_drift_score = 0.0;
    report.drifted_features.clear();
    report.severity = None;
    let tested = report.drift_summary.tested_features;
    report.drift_summary = DriftSummary {
        total_drifted_features: 0,
        drift_percentage: 0.0,
        severe_drift_features: Vec::new(),
        moderate_drift_features: Vec::new(),
        minor_drift_features: Vec::new(),
        tested_features: tested,
    };
    for test in report.statistical_tests.values_mut() {
        test.is_drifted = false;
        test.drift_severity = None;
    }
    report.multivariate.is_drifted = false;
    report.multivariate.drift_severity = None;
    report
}

/// The report of a window that has no production reference yet: every feature
/// `not_comparable`, the verdict `no_reference` (never "drift", never "no drift").
pub fn without_reference(
    current: &[Column],
    n_current: usize,
    settings: &DriftSettings,
) -> DataDrift {
    let pairs: Vec<(&Column, Option<&Column>)> = current.iter().map(|c| (c, None)).collect();
    as_no_reference(compare(
        &pairs,
        |_| Err("the version has no production reference yet".into()),
        0,
        n_current,
        settings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(name: &str, values: Vec<f64>) -> Column {
        Column {
            name: name.into(),
            values: Values::Numeric(values),
        }
    }

    fn categorical(name: &str, values: Vec<&str>) -> Column {
        Column {
            name: name.into(),
            values: Values::Categorical(values.into_iter().map(String::from).collect()),
        }
    }

    /// Evenly spread values: deterministic "samples" of a uniform on [start, start+1).
    fn spread(n: usize, start: f64) -> Vec<f64> {
        (0..n)
            .map(|i| start + (i as f64 + 0.5) / n as f64)
            .collect()
    }

    fn run(reference: &[Column], current: &[Column]) -> DataDrift {
        let pairs = super::super::columns::pair(reference, current).unwrap();
        let n_r = reference[0].values.len();
        let n_c = current[0].values.len();
        compare(&pairs, |_| Ok(()), n_r, n_c, &DriftSettings::default())
    }

    #[test]
    fn the_same_distribution_does_not_drift() {
        let r = [
            numeric("a", spread(500, 0.0)),
            numeric("b", spread(500, 3.0)),
        ];
        let c = [
            numeric("a", spread(200, 0.0)),
            numeric("b", spread(200, 3.0)),
        ];
        let report = run(&r, &c);
        assert_eq!(report.verdict, Verdict::NoDrift);
        assert!(report.drifted_features.is_empty());
        assert_eq!(report.drift_summary.tested_features, 2);
        assert_eq!(report.alpha_corrected, 0.01 / 2.0);
    }

    #[test]
    fn inputs_leaving_their_band_make_drift_unless_the_verdict_cannot_be_one() {
        let r = [numeric("a", spread(500, 0.0))];
        let c = [numeric("a", spread(200, 0.0))];
        let report = run(&r, &c);
        assert_eq!(report.multivariate.status, Status::NotComparable);
        let mut band_left = Multivariate::not_comparable("", 500, 200);
        band_left.status = Status::Tested;
        band_left.is_drifted = true;
        band_left.drift_severity = Some(Severity::Moderate);
        let drifted = with_multivariate(report.clone(), band_left.clone());
        assert_eq!(drifted.verdict, Verdict::Drift);
        assert!(drifted.drift_detected);
        assert_eq!(drifted.severity, Some(Severity::Moderate));
        assert!(drifted.drifted_features.is_empty());
        let without = as_no_reference(with_multivariate(report.clone(), band_left.clone()));
        assert_eq!(without.verdict, Verdict::NoReference);
        assert!(!without.multivariate.is_drifted);
        let mut small = report;
        small.verdict = Verdict::InsufficientData;
        assert_eq!(
            with_multivariate(small, band_left).verdict,
            Verdict::InsufficientData
        );
    }

    #[test]
    fn a_large_shift_is_severe_drift() {
        let r = [
            numeric("a", spread(500, 0.0)),
            numeric("b", spread(500, 3.0)),
        ];
        let c = [
            numeric("a", spread(200, 0.6)),
            numeric("b", spread(200, 3.0)),
        ];
        let report = run(&r, &c);
        assert_eq!(report.verdict, Verdict::Drift);
        assert_eq!(report.drifted_features, ["a"]);
        let a = &report.statistical_tests["a"];
        assert_eq!(a.drift_severity, Some(Severity::Severe));
        assert!(a.p_value_adjusted.unwrap() < 0.01);
        assert_eq!(report.severity, Some(Severity::Severe));
    }

    #[test]
    fn a_significant_trifle_is_not_drift() {
        // 20,000 values a hundredth of the range apart: significant, not practical.
        let r = [numeric("a", spread(20_000, 0.0))];
        let c = [numeric("a", spread(20_000, 0.02))];
        let report = run(&r, &c);
        let a = &report.statistical_tests["a"];
        assert!(a.p_value.unwrap() < 0.01, "{a:?}");
        assert!(!a.is_drifted);
        assert_eq!(report.verdict, Verdict::NoDrift);
    }

    #[test]
    fn small_windows_are_insufficient_never_no_drift() {
        let r = [numeric("a", spread(500, 0.0))];
        let c = [numeric("a", spread(8, 0.0))];
        let report = run(&r, &c);
        assert_eq!(report.verdict, Verdict::InsufficientData);
        assert_eq!(
            report.statistical_tests["a"].status,
            Status::InsufficientData
        );
    }

    #[test]
    fn constant_references_and_categories() {
        let r = [
            numeric("w", vec![28.0; 300]),
            categorical("d", [vec!["1"; 150], vec!["2"; 150]].concat()),
        ];
        let c = [
            numeric("w", spread(300, 64.0)),
            categorical(
                "d",
                [vec!["1"; 100], vec!["2"; 100], vec!["7"; 100]].concat(),
            ),
        ];
        let report = run(&r, &c);
        assert_eq!(report.statistical_tests["w"].status, Status::NotComparable);
        let d = &report.statistical_tests["d"];
        assert_eq!(d.method, "chi_square");
        assert!(d.is_drifted);
        assert_eq!(d.chi2_dof, Some(2));
        assert_eq!(report.verdict, Verdict::Drift);
    }

    #[test]
    fn no_reference_is_its_own_verdict() {
        let c = [numeric("a", spread(300, 0.0))];
        let report = without_reference(&c, 300, &DriftSettings::default());
        assert_eq!(report.verdict, Verdict::NoReference);
        assert!(!report.drift_detected);
        assert_eq!(report.statistical_tests["a"].status, Status::NotComparable);
    }

    #[test]
    fn categorical_psi_counts_new_categories() {
        assert_eq!(categorical_psi(&[1, 2], &[1, 2]), Some(0.0));
        let psi = categorical_psi(&[1; 10], &[2; 10]).unwrap();
        assert!(psi > 10.0);
        assert_eq!(categorical_psi(&[], &[1]), None);
    }
}
