//! The two-sample Kolmogorov–Smirnov test of DESIGN.md §6a: statistic, p-value and the
//! method that gave it, equal to `scipy.stats.ks_2samp(ref, cur)` (SciPy 1.17.1,
//! two-sided, `method="auto"`), checked against `vectors/drift.json`.
//!
//! Hand-written, ported (not copied) from SciPy's algorithms: statrs has no Kolmogorov
//! distribution, and no maintained crate reproduces SciPy's choices (when to count lattice
//! paths exactly, when that count is rejected, which series serves which corner of
//! `kstwo`), which is what "the same p-value as SciPy" needs. The sources, all SciPy
//! 1.17.1: `scipy/stats/_stats_py.py` (`ks_2samp`, `_attempt_exact_2kssamp`,
//! `_compute_prob_outside_square`), `scipy/stats/_stats_pythran.py`
//! (`_compute_outer_prob_inside_method`), `scipy/stats/_ksstats.py` (`kolmogn`, behind
//! `kstwo.sf`) and xsf's `cephes/kolmogorov.h` (`smirnov`).
//!
//! Nothing panics and nothing is NaN: empty or non-finite input gives `None`.

use serde::Serialize;

use super::drift::ks_statistic;

/// `method="auto"` counts paths exactly while both samples have at most this many values.
const MAX_EXACT_N: usize = 10_000;

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// The exact null distribution, by counting lattice paths.
    Exact,
    /// Kolmogorov's distribution `kstwo` at the samples' effective size: for large samples,
    /// and where SciPy rejects its exact result (a sum a hair above 1).
    Asymptotic,
}

/// Two-sided two-sample KS test result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsTest {
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsMethod,
}

/// `scipy.stats.ks_2samp(reference, current)`; `None` when either sample is empty or holds
/// a non-finite value.
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Option<KsTest> {
    let d = ks_statistic(reference, current)?;
    let (n1, n2) = (reference.len(), current.len());
    let (statistic, exact) = if n1.max(n2) <= MAX_EXACT_N {
        exact_p_value(n1 as u64, n2 as u64, d)
    } else {
        (d, None)
    };
    let (p_value, method) = match exact {
        Some(p) => (p, KsMethod::Exact),
        None => {
            // SciPy: en = m·n/(m + n) with m the larger size, rounded half to even.
            let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
            let en = (m * n / (m + n)).round_ties_even();
            (kstwo_sf(statistic, en as u64), KsMethod::Asymptotic)
        }
    };
    let p_value = p_value.clamp(0.0, 1.0);
    p_value.is_finite().then_some(KsTest {
        statistic,
        p_value,
        method,
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `_attempt_exact_2kssamp`: the statistic snapped to the lattice of multiples of
/// 1/lcm(n1, n2) (SciPy reports that value, and uses it even when it falls back), and the
/// exact p-value, `None` when the result is not a probability (SciPy then falls back).
fn exact_p_value(n1: u64, n2: u64, d: f64) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (d, Some(1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside(n1, n2, g, h)
    };
    // `contains` is false for NaN too.
    (d, (0.0..=1.0).contains(&p).then_some(p))
}

/// `_compute_prob_outside_square`: P(D ≥ h/n) for two samples of n, the alternating sum
/// 2·Σ (−1)^(k+1) C(2n, n − kh) / C(2n, n) nested Horner-like so no term is large. Kept in
/// SciPy's operation order: its rounding decides when the sum lands above 1 (fallback).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n_f, h_f) = (n as f64, h as f64);
    let mut p = 0.0;
    for k in (0..=n / h).rev() {
        let kh = k as f64 * h_f;
        let mut term = 1.0;
        for j in 0..h {
            let j = j as f64;
            term = (n_f - kh - j) * term / (n_f + kh + j + 1.0);
        }
        p = term * (1.0 - p);
    }
    2.0 * p
}

/// `_compute_outer_prob_inside_method`: for unequal sizes, the share of lattice paths from
/// (0, 0) to (m, n) that leave the band |x/m − y/n| < h/lcm, by Viehmann's recursion for
/// 1 − p (each cell a weighted mean of its neighbours, so it stays within [0, 1]). Only a
/// sliding window of one column is kept.
fn outer_prob_inside(n1: u64, n2: u64, g: u64, h: u64) -> f64 {
    let (m, n) = (n1.max(n2) as i64, n1.min(n2) as i64);
    let (mg, ng, h) = ((m as u64 / g) as i64, (n as u64 / g) as i64, h as i64);
    // SciPy divides as floats before floor / ceil; the integers are far below 2^53, so
    // this is exact and the same.
    let div = |a: i64, b: i64| a as f64 / b as f64;
    let mut minj: i64 = 0;
    let mut maxj = (div(h, mg).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len = (2 * maxj + 2).min(n + 1).max(0) as usize;
    let mut a = vec![1.0f64; len];
    fill(&mut a, minj, maxj, 0.0);
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((div(ng * i - h, mg).floor() as i64) + 1).max(0).min(n);
        maxj = (div(ng * i + h, mg).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..maxj - minj {
            let j = jj + minj;
            let previous = a
                .get((jj + minj - lastminj) as usize)
                .copied()
                .unwrap_or(1.0);
            val = (previous * i as f64 + val * j as f64) / (i + j) as f64;
            if let Some(cell) = a.get_mut(jj as usize) {
                *cell = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // Cells the window no longer covers are outside the band: reset to 1.
            fill(&mut a, curlen, curlen + (lastlen - curlen), 1.0);
        }
    }
    a.get((maxj - minj - 1) as usize).copied().unwrap_or(1.0)
}

/// `a[from..to] = value`, clipped to the slice as NumPy clips a slice assignment.
fn fill(a: &mut [f64], from: i64, to: i64, value: f64) {
    let clip = |i: i64| i.clamp(0, a.len() as i64) as usize;
    let (from, to) = (clip(from), clip(to));
    if from < to {
        a[from..to].fill(value);
    }
}

/// `scipy.stats.kstwo.sf(d, n)`: P(D_n ≥ d) for the one-sample two-sided statistic D_n,
/// the distribution `ks_2samp` reads at the effective size. The support is (1/(2n), 1).
fn kstwo_sf(d: f64, n: u64) -> f64 {
    if n == 0 || d.is_nan() {
        return f64::NAN;
    }
    if d >= 1.0 {
        0.0
    } else if d <= 0.5 / n as f64 {
        1.0
    } else {
        kolmogn_sf(n, d)
    }
}

const E128: i32 = 128;
/// 2^128 and 2^-128: the scales SciPy's matrix and recursion rescale by.
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;

fn clip_probability(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `x · 2^e` without the overflow or underflow a single `powi(2, e)` would meet on the way.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e != 0 && x != 0.0 && x.is_finite() {
        let step = e.clamp(-1000, 1000);
        x *= 2f64.powi(step as i32);
        e -= step;
    }
    x
}

/// `_kolmogn(n, x, cdf=False)`: Simard and L'Ecuyer's choice of algorithm by n and n·x²,
/// as SciPy makes it (the thresholds are theirs).
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: P(D_n ≤ x) = n!/n^n · (2t − 1)^n for 1/(2n) ≤ x ≤ 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n)
                .map(|i| i as f64 * (1.0 / nf) * (2.0 * t - 1.0))
                .product()
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip_probability(1.0 - cdf);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino at the other end: P(D_n ≥ x) = 2(1 − x)^n.
        return clip_probability(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        // The two one-sided tails cannot both be crossed: exactly twice Smirnov's.
        return clip_probability(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return clip_probability(1.0 - durbin_matrix_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip_probability(1.0 - pomeranz_cdf(n, x));
        }
        return clip_probability(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip_probability(2.0 * smirnov_sf(n, x));
    }
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_matrix_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    clip_probability(1.0 - cdf)
}

/// log(n!/n^n) by Stirling's series with n·log(n) taken out first (no cancellation).
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // B_2j / (2j(2j − 1)) for j = 8, …, 1: the Stirling coefficients, highest first.
    const STIRLING: [f64; 8] = [
        -2.955_065_359_477_124e-2,
        6.410_256_410_256_41e-3,
        -1.917_526_917_526_917_6e-3,
        8.417_508_417_508_418e-4,
        -5.952_380_952_380_952e-4,
        7.936_507_936_507_937e-4,
        -2.777_777_777_777_778e-3,
        8.333_333_333_333_333e-2,
    ];
    let rn = 1.0 / n;
    let series = STIRLING.iter().fold(0.0, |acc, c| acc * (rn / n) + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * series
}

/// `_kolmogn_DMTW`: P(D_n ≤ d) by Durbin's matrix, as Marsaglia, Tsang and Wang compute
/// it: the (k, k) entry of H^n · n!/n^n, H of order 2k − 1 with k = ⌈n·d⌉, squaring with
/// rescaling by 2^128 (its exponent kept apart). For small n·d.
fn durbin_matrix_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    // v: the first column (and, reversed, the last row); w[j] = 1/j!.
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powi(j as i32)).collect();
    let mut w = vec![0.0; m];
    let mut factorial = 1.0;
    for j in 1..=m {
        w[j - 1] = factorial;
        factorial /= j as f64;
        v[j - 1] *= factorial;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * factorial;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in i - 1..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let matmul = |a: &[f64], b: &[f64]| {
        let mut out = vec![0.0; m * m];
        for r in 0..m {
            for (l, &ar) in a[r * m..(r + 1) * m].iter().enumerate() {
                if ar != 0.0 {
                    for c in 0..m {
                        out[r * m + c] += ar * b[l * m + c];
                    }
                }
            }
        }
        out
    };
    let mut power: Vec<f64> = (0..m * m)
        .map(|i| if i / m == i % m { 1.0 } else { 0.0 })
        .collect();
    let (mut nn, mut exponent, mut h_exponent) = (n, 0i64, 0i64);
    while nn > 0 {
        if nn % 2 == 1 {
            power = matmul(&power, &hm);
            exponent += h_exponent;
        }
        hm = matmul(&hm, &hm);
        h_exponent *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > EP128 {
            hm.iter_mut().for_each(|x| *x /= EP128);
            h_exponent += i64::from(E128);
        }
        nn /= 2;
    }
    let mut p = power[(k - 1) * m + (k - 1)];
    // Times n!/n^n, one factor at a time, rescaling so it does not underflow.
    for i in 1..=n {
        p = i as f64 * p / n as f64;
        if p.abs() < EM128 {
            p *= EP128;
            exponent -= i64::from(E128);
        }
    }
    clip_probability(ldexp(p, exponent))
}

/// `_pomeranz_compute_j1j2`: the non-zero range of row i of Pomeranz's recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (half, odd) = ((i + 1) / 2, (i + 1) % 2);
        if odd == 0 {
            if half == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `_kolmogn_Pomeranz`: P(D_n ≤ x) by Pomeranz's recursion, each row the previous one
/// convolved with (almost) Poisson probabilities; two rows kept, rescaled by 2^128 against
/// underflow. For n ≤ 140 and moderate n·x².
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    // (c/n)^m / m! for c = g, 2g, 1 − 2g.
    let powers = |c: f64| {
        let mut out = vec![1.0; npwrs];
        for m in 1..npwrs {
            out[m] = out[m - 1] * c / m as f64;
        }
        out
    };
    let (gpower, twogpower, onem2gpower) = (
        powers(g / nf),
        powers(2.0 * g / nf),
        powers((1.0 - 2.0 * g) / nf),
    );
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut exponent = 0i64;
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..2 * n + 2 {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let j2;
        (j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            // The full convolution of V0[k1 − V0s ..][..ln2] with pwrs[..ln2] (each clipped
            // to its row, as NumPy slices are), of which entries j1 − k1 ..= j2 − k1 are kept.
            let from = (k1 - v0s).max(0) as usize;
            let row = &v0[from.min(npwrs)..(from + ln2 as usize).min(npwrs)];
            let kernel = &pwrs[..(ln2 as usize).min(npwrs)];
            let (start, len) = (j1 - k1, j2 - j1 + 1);
            for out in 0..len.max(0) {
                let at = start + out;
                let mut sum = 0.0;
                for (r, &value) in row.iter().enumerate() {
                    let q = at - r as i64;
                    if q >= 0 && (q as usize) < kernel.len() {
                        sum += value * kernel[q as usize];
                    }
                }
                if let Some(cell) = v1.get_mut(out as usize) {
                    *cell = sum;
                }
            }
            let largest = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < largest && largest < EM128 {
                v1.iter_mut().for_each(|v| *v *= EP128);
                exponent -= i64::from(E128);
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1.get((n - v1s).max(0) as usize).copied().unwrap_or(0.0);
    // Times n!, rescaling so it does not overflow.
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            exponent += i64::from(E128);
        }
        ans *= m as f64;
    }
    clip_probability(ldexp(ans, exponent))
}

/// `_kolmogn_PelzGood`: Pelz and Good's small-d transform of the Li-Chien / Korolyuk
/// expansion, P(D_n ≤ x) ≈ K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5 with z = x√n. For
/// large n and moderate n·x². Unclipped, as SciPy leaves it (the caller clips 1 − cdf).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z.powi(2), z.powi(3), z.powi(4), z.powi(6));
    let qlog = -PI * PI / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let (pi2, pi4, pi6) = (PI.powi(2), PI.powi(4), PI.powi(6));
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    // Horner over odd m = 2k − 1 of c_i · q^(m²).
    let mut terms = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf(8.0 * k as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (term, c) in terms.iter_mut().zip(coeffs) {
            *term = *term * qpower + c;
        }
    }
    let sqrt_2pi = (2.0 * PI).sqrt();
    let divisors = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (term, divisor) in terms.iter_mut().zip(divisors) {
        *term = *term * q * sqrt_2pi / divisor;
    }
    // The remaining sums over all k of K2's and K3's extra terms.
    let q = (-PI * PI / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for k in (1..=maxk).rev() {
        let k = k as f64;
        let k2 = k * k;
        let qk = q.powf(k2);
        k2extra += k2 * qk;
        k3extra += (sqrt3z + PI * k) * (sqrt3z - PI * k) * k2 * qk;
    }
    terms[2] += k2extra * pi2 * sqrt_2pi / (-36.0 * z3);
    terms[3] += k3extra * pi2 * sqrt_2pi / (216.0 * z6);
    terms
        .iter()
        .enumerate()
        .map(|(i, term)| term / nf.powf(i as f64 / 2.0))
        .sum()
}

/// xsf's `smirnov(n, x)`: P(D_n⁺ ≥ x) for the one-sided statistic, by the Birnbaum–Tingey
/// sum x·Σ_{v < n(1−x)} C(n, v)·(1 − x − v/n)^(n−v)·(x + v/n)^(v−1), with xsf's special cases
/// and its approximation above n = 10^6.
///
/// xsf carries the terms in double-double; here each term is computed in logarithms, with
/// n·x split exactly into integer and fraction so 1 − x − v/n loses nothing. The terms are
/// positive, so the relative error is a few 1e-10 at n = 10^6, far inside the tests' 1e-6.
/// xsf switches to the upper sum only where x ≤ 0.5/√n, a region `kolmogn_sf` never sends
/// here (it asks only for n·x² ≥ 2.2 or x ≥ 0.5), so that branch is not ported.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    /// exp() of anything below this is 0 (xsf's MINLOG).
    const MIN_LOG: f64 = -7.451_332_191_019_412e2;
    /// Above this n, xsf approximates rather than summing.
    const MAX_COMPUTE_N: u64 = 1_000_000;
    if n == 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    // n·x exactly: its floor and fractional part (FMA gives the product's rounding error).
    let product = nf * x;
    let error = nf.mul_add(x, -product);
    let mut floor = product.floor();
    let mut alpha = (product - floor) + error;
    if alpha < 0.0 {
        floor -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        floor += 1.0;
        alpha = 0.0;
    }
    let nxfl = floor as i64;
    let n = n as i64;
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        // x ≤ 1/n: P(D⁺ < x) = x(1 + x)^(n−1).
        let cdf = x * ((nf - 1.0) * x.ln_1p()).exp();
        return clip_probability(1.0 - cdf);
    }
    if -2.0 * nf * x * x < MIN_LOG {
        return 0.0;
    }
    if nxfl >= n - 1 {
        return clip_probability((nf * (-x).ln_1p()).exp());
    }
    if n as u64 > MAX_COMPUTE_N {
        // xsf: p ≈ exp(−(6nx + 1)² / 18n).
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        let sf = if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 - (-logp.exp_m1())
        };
        return clip_probability(sf);
    }
    let ln_n = nf.ln();
    let ln_x = x.ln();
    // The terms v = 0, 1, … below n(1 − x) strictly: n − ⌊nx⌋ of them whether or not α is 0.
    let n_terms = n - nxfl;
    let mut ln_binomial = 0.0f64;
    let mut sum = 0.0f64;
    for v in 0..n_terms {
        // x·A_v with 1 − x − v/n = ((n − ⌊nx⌋ − v) − α)/n and x + v/n = ((⌊nx⌋ + v) + α)/n.
        let below = ((n - nxfl - v) as f64 - alpha).ln() - ln_n;
        let above = ((nxfl + v) as f64 + alpha).ln() - ln_n;
        let term = (ln_binomial + (n - v) as f64 * below + (v - 1) as f64 * above + ln_x).exp();
        if term.is_finite() && term != 0.0 {
            sum += term;
        }
        // xsf's early stop: the rest cannot move the sum (not tried on the last term).
        if term != 0.0 {
            if 4.0 * (n_terms - v) as f64 * term < f64::EPSILON * sum && v != n_terms - 1 {
                break;
            }
        } else if v > n / 2 {
            break;
        }
        ln_binomial += ((n - v) as f64 / (v + 1) as f64).ln();
    }
    clip_probability(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testing::floats;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!("vectors/drift.json")).expect("the vectors parse")
    }

    /// SciPy's p-value to 1e-6 relative when it is above 1e-12, else ours below 1e-12 too;
    /// returns the relative error.
    fn p_close(name: &str, ours: f64, theirs: f64) -> f64 {
        assert!(
            ours.is_finite() && (0.0..=1.0).contains(&ours),
            "{name}: p {ours}"
        );
        if theirs > 1e-12 {
            let relative = (ours - theirs).abs() / theirs;
            assert!(
                relative <= 1e-6,
                "{name}: p {ours} against SciPy's {theirs}"
            );
            relative
        } else {
            assert!(ours <= 1e-12, "{name}: p {ours} against SciPy's {theirs}");
            0.0
        }
    }

    fn method(v: &Value) -> KsMethod {
        match v.as_str().unwrap() {
            "exact" => KsMethod::Exact,
            "asymptotic" => KsMethod::Asymptotic,
            other => panic!("unknown method {other}"),
        }
    }

    fn check(name: &str, r: &[f64], c: &[f64], statistic: f64, p: f64, m: KsMethod) -> f64 {
        let ks = ks_2samp(r, c).unwrap_or_else(|| panic!("{name}: no result"));
        assert!(
            (ks.statistic - statistic).abs() <= 1e-9,
            "{name}: D {} against SciPy's {statistic}",
            ks.statistic
        );
        assert_eq!(ks.method, m, "{name}");
        p_close(name, ks.p_value, p)
    }

    #[test]
    fn ks_2samp_matches_scipy() {
        let v = vectors();
        let shared = floats(&v["ks_shared_reference"]);
        let mut worst = 0.0f64;
        let cases = v["ks"].as_array().unwrap();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let r = match case["reference_shared"].as_u64() {
                Some(count) => shared[..count as usize].to_vec(),
                None => floats(&case["reference"]),
            };
            let c = floats(&case["current"]);
            worst = worst.max(check(
                name,
                &r,
                &c,
                case["statistic"].as_f64().unwrap(),
                case["pvalue"].as_f64().unwrap(),
                method(&case["method"]),
            ));
        }
        // The drift features' own cases carry SciPy's KS too.
        let numeric = v["numeric"].as_array().unwrap();
        for case in numeric {
            worst = worst.max(check(
                case["name"].as_str().unwrap(),
                &floats(&case["reference"]),
                &floats(&case["current"]),
                case["ks_statistic"].as_f64().unwrap(),
                case["ks_pvalue"].as_f64().unwrap(),
                method(&case["ks_method"]),
            ));
        }
        eprintln!(
            "ks_2samp: {} cases, largest relative p error {worst:e}",
            cases.len() + numeric.len()
        );
    }

    #[test]
    fn kstwo_sf_matches_scipy() {
        let v = vectors();
        let cases = v["kstwo_sf"].as_array().unwrap();
        let mut worst = 0.0f64;
        for case in cases {
            let (n, d) = (case["n"].as_u64().unwrap(), case["d"].as_f64().unwrap());
            let name = format!("kstwo.sf({d}, {n})");
            worst = worst.max(p_close(&name, kstwo_sf(d, n), case["sf"].as_f64().unwrap()));
        }
        eprintln!(
            "kstwo.sf: {} cases, largest relative error {worst:e}",
            cases.len()
        );
    }

    #[test]
    fn odd_input_gives_none_not_a_panic() {
        assert_eq!(ks_2samp(&[], &[1.0]), None);
        assert_eq!(ks_2samp(&[1.0], &[]), None);
        assert_eq!(ks_2samp(&[1.0, f64::NAN], &[1.0]), None);
        assert_eq!(ks_2samp(&[1.0], &[f64::INFINITY]), None);
        assert_eq!(ks_2samp(&[f64::NEG_INFINITY], &[1.0]), None);
        // Edges of the distributions: finite probabilities, never NaN.
        for (d, n) in [(0.0, 1), (1.0, 1), (0.5, 2), (1e-300, 10), (0.999, 1 << 40)] {
            let p = kstwo_sf(d, n);
            assert!((0.0..=1.0).contains(&p), "kstwo.sf({d}, {n}) = {p}");
        }
        let same = ks_2samp(&[2.0; 20_000], &[2.0; 15_000]).unwrap();
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
        assert_eq!(same.method, KsMethod::Asymptotic);
    }

    #[test]
    fn method_serialises_in_snake_case() {
        let json = serde_json::to_value(KsMethod::Asymptotic).unwrap();
        assert_eq!(json, "asymptotic");
    }
}
