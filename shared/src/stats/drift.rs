//! The per-feature drift statistics of DESIGN.md §6a, pure and checked against NumPy and
//! SciPy (`vectors/drift.json`, made by `cargo xtask stats-vectors`).
//!
//! Written by hand, each a few lines over sorted slices: no well-kept crate computes
//! NumPy's decile PSI, SciPy's Wasserstein or the 2×k homogeneity test. The chi-square
//! tail comes from statrs. Kolmogorov–Smirnov's statistic is here; its p-value (SciPy's
//! exact and asymptotic modes) is not yet (issue 13).
//!
//! Nothing panics: empty or non-finite input gives `None` (the handler's 422 is decided at
//! the edge, where the values are parsed).

use statrs::distribution::{ChiSquared, ContinuousCDF};
use std::collections::BTreeMap;

/// PSI's bins: the reference's 10 deciles.
const PSI_BINS: usize = 10;
/// A bin's share when it holds nothing, so the logarithm stays finite.
pub const PSI_EMPTY_SHARE: f64 = 0.0001;

fn sorted_finite(values: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted)
}

/// `numpy.quantile(sorted, q)` with its default (linear) interpolation.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

/// The inner edges of PSI's bins: the reference's deciles, repeated edges merged.
pub fn psi_edges(reference: &[f64]) -> Option<Vec<f64>> {
    let sorted = sorted_finite(reference)?;
    let mut edges: Vec<f64> = (1..PSI_BINS)
        .map(|i| quantile(&sorted, i as f64 / PSI_BINS as f64))
        .collect();
    edges.dedup();
    Some(edges)
}

/// Shares of `values` in the bins the edges make: bin i holds `edges[i-1] <= x <
/// edges[i]` (`numpy.digitize`), the outer bins open.
fn shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    for v in values {
        counts[edges.partition_point(|e| e <= v)] += 1;
    }
    counts
        .into_iter()
        .map(|c| match c as f64 / values.len() as f64 {
            0.0 => PSI_EMPTY_SHARE,
            share => share,
        })
        .collect()
}

/// Population stability index of `current` against `reference`: Σ (c − r)·ln(c / r).
pub fn psi(reference: &[f64], current: &[f64]) -> Option<f64> {
    let edges = psi_edges(reference)?;
    sorted_finite(current)?;
    let r = shares(reference, &edges);
    let c = shares(current, &edges);
    Some(r.iter().zip(&c).map(|(r, c)| (c - r) * (c / r).ln()).sum())
}

/// Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical
/// distribution functions (`scipy.stats.ks_2samp(...).statistic`).
pub fn ks_statistic(reference: &[f64], current: &[f64]) -> Option<f64> {
    let a = sorted_finite(reference)?;
    let b = sorted_finite(current)?;
    let (mut i, mut j, mut largest) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value in both samples at once: ties move
        // the two functions together.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        let gap = (i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs();
        largest = largest.max(gap);
    }
    Some(largest)
}

/// The first Wasserstein distance between the two samples' empirical distributions
/// (`scipy.stats.wasserstein_distance`): ∫ |F_r − F_c|.
pub fn wasserstein(reference: &[f64], current: &[f64]) -> Option<f64> {
    let a = sorted_finite(reference)?;
    let b = sorted_finite(current)?;
    let mut all: Vec<f64> = a.iter().chain(&b).copied().collect();
    all.sort_by(f64::total_cmp);
    let (mut i, mut j, mut total) = (0, 0, 0.0);
    for window in all.windows(2) {
        let x = window[0];
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let gap = (i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs();
        total += gap * (window[1] - x);
    }
    Some(total)
}

/// [`wasserstein`] in units of the reference's (population) standard deviation; `None`
/// for a constant reference, which has no scale.
pub fn wasserstein_normalised(reference: &[f64], current: &[f64]) -> Option<f64> {
    let distance = wasserstein(reference, current)?;
    let n = reference.len() as f64;
    let mean = reference.iter().sum::<f64>() / n;
    let sd = (reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    (sd > 0.0).then(|| distance / sd)
}

/// Chi-square test of homogeneity on the 2×k table of category counts, without
/// continuity correction (`scipy.stats.chi2_contingency(t, correction=False)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: usize,
}

/// Counts per category of both samples, over the categories either has.
fn category_table(reference: &[i64], current: &[i64]) -> BTreeMap<i64, (f64, f64)> {
    let mut table = BTreeMap::new();
    for &k in reference {
        table.entry(k).or_insert((0.0, 0.0)).0 += 1.0;
    }
    for &k in current {
        table.entry(k).or_insert((0.0, 0.0)).1 += 1.0;
    }
    table
}

pub fn chi_square_homogeneity(reference: &[i64], current: &[i64]) -> Option<ChiSquare> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let table = category_table(reference, current);
    if table.len() < 2 {
        // One category: nothing can differ (SciPy's answer for a 2×1 table).
        return Some(ChiSquare {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        });
    }
    let (n_r, n_c) = (reference.len() as f64, current.len() as f64);
    let n = n_r + n_c;
    let statistic: f64 = table
        .values()
        .map(|&(r, c)| {
            let column = r + c;
            let (er, ec) = (n_r * column / n, n_c * column / n);
            (r - er).powi(2) / er + (c - ec).powi(2) / ec
        })
        .sum();
    let dof = table.len() - 1;
    let p_value = ChiSquared::new(dof as f64).ok()?.sf(statistic);
    Some(ChiSquare {
        statistic,
        p_value,
        dof,
    })
}

/// Jensen–Shannon distance (base 2) between the two samples' category shares
/// (`scipy.spatial.distance.jensenshannon(p, q, base=2)`): 0 the same, 1 disjoint.
pub fn js_distance(reference: &[i64], current: &[i64]) -> Option<f64> {
    if reference.is_empty() || current.is_empty() {
        return None;
    }
    let (n_r, n_c) = (reference.len() as f64, current.len() as f64);
    let relative = |p: f64, m: f64| if p > 0.0 { p * (p / m).log2() } else { 0.0 };
    let divergence: f64 = category_table(reference, current)
        .values()
        .map(|&(r, c)| {
            let (p, q) = (r / n_r, c / n_c);
            let m = (p + q) / 2.0;
            relative(p, m) + relative(q, m)
        })
        .sum::<f64>()
        / 2.0;
    Some(divergence.max(0.0).sqrt())
}

/// Bonferroni-adjusted p-values: each times the number of tests, at most 1.
pub fn bonferroni(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len() as f64;
    p_values.iter().map(|p| (p * m).min(1.0)).collect()
}

/// Benjamini–Hochberg adjusted p-values (`scipy.stats.false_discovery_control(ps,
/// method="bh")`), in the order given.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p_values[i] * m as f64 / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::floats;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("vectors/drift.json")).expect("the vectors parse")
    }

    fn ints(v: &Value) -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    }

    fn close(name: &str, what: &str, ours: f64, theirs: f64) {
        assert!(
            (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
            "{name}: {what} {ours} against NumPy/SciPy's {theirs}"
        );
    }

    #[test]
    fn numeric_statistics_match_numpy_and_scipy() {
        for case in vectors()["numeric"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let (r, c) = (floats(&case["reference"]), floats(&case["current"]));
            let edges = psi_edges(&r).unwrap();
            let theirs = floats(&case["psi_edges"]);
            assert_eq!(edges.len(), theirs.len(), "{name}: edges {edges:?}");
            for (a, b) in edges.iter().zip(&theirs) {
                close(name, "edge", *a, *b);
            }
            close(
                name,
                "psi",
                psi(&r, &c).unwrap(),
                case["psi"].as_f64().unwrap(),
            );
            close(
                name,
                "ks",
                ks_statistic(&r, &c).unwrap(),
                case["ks_statistic"].as_f64().unwrap(),
            );
            close(
                name,
                "wasserstein",
                wasserstein(&r, &c).unwrap(),
                case["wasserstein"].as_f64().unwrap(),
            );
            match case["wasserstein_normalised"].as_f64() {
                Some(theirs) => close(
                    name,
                    "normalised",
                    wasserstein_normalised(&r, &c).unwrap(),
                    theirs,
                ),
                None => assert_eq!(wasserstein_normalised(&r, &c), None, "{name}"),
            }
        }
    }

    #[test]
    fn categorical_statistics_match_scipy() {
        for case in vectors()["categorical"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let (r, c) = (ints(&case["reference"]), ints(&case["current"]));
            let chi = chi_square_homogeneity(&r, &c).unwrap();
            close(
                name,
                "chi2",
                chi.statistic,
                case["chi2"]["statistic"].as_f64().unwrap(),
            );
            assert_eq!(
                chi.dof as u64,
                case["chi2"]["dof"].as_u64().unwrap(),
                "{name}"
            );
            let p = case["chi2"]["pvalue"].as_f64().unwrap();
            if p > 1e-12 {
                assert!(
                    (chi.p_value - p).abs() <= 1e-6 * p,
                    "{name}: p {} against {p}",
                    chi.p_value
                );
            }
            close(
                name,
                "js",
                js_distance(&r, &c).unwrap(),
                case["js_distance"].as_f64().unwrap(),
            );
        }
    }

    #[test]
    fn corrections_match_scipy() {
        let v = vectors();
        let p = floats(&v["corrections"]["pvalues"]);
        for (ours, theirs) in bonferroni(&p)
            .iter()
            .zip(floats(&v["corrections"]["bonferroni"]))
        {
            close("bonferroni", "p", *ours, theirs);
        }
        for (ours, theirs) in benjamini_hochberg(&p)
            .iter()
            .zip(floats(&v["corrections"]["benjamini_hochberg"]))
        {
            close("bh", "p", *ours, theirs);
        }
    }

    #[test]
    fn odd_input_gives_none_not_a_panic() {
        assert_eq!(psi(&[], &[1.0]), None);
        assert_eq!(psi(&[1.0, f64::NAN], &[1.0]), None);
        assert_eq!(ks_statistic(&[1.0], &[f64::INFINITY]), None);
        assert_eq!(wasserstein_normalised(&[3.0; 5], &[1.0, 2.0]), None);
        assert_eq!(chi_square_homogeneity(&[], &[1]), None);
        assert_eq!(js_distance(&[1], &[]), None);
        assert!(bonferroni(&[]).is_empty() && benjamini_hochberg(&[]).is_empty());
    }
}
