//! Drift (DESIGN.md §6a), pure: the settings, the feature columns, the data verdict, the
//! multivariate check on the inputs and model drift from labels. The drift function
//! reads the windows and references and stores the runs; everything it decides is
//! decided here, without a table.

pub mod columns;
pub mod data;
pub mod model;
pub mod multivariate;
pub mod reference;
pub mod settings;

pub use settings::{Correction, DriftSettings, InvalidSetting, SettingsChange};

/// `k` of `n` indices, uniformly and without replacement, in increasing order; the same
/// seed gives the same sample (a window's run is repeatable). A partial Fisher–Yates
/// shuffle over SplitMix64, written here because the draw must not change with a rand
/// crate's version.
pub fn sample_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k {
        // Multiply-shift maps 64 random bits onto [0, n - i) without modulo bias worth
        // noticing at these sizes (n ≤ a few hundred thousand).
        let span = (n - i) as u128;
        let j = i + ((u128::from(next()) * span) >> 64) as usize;
        all.swap(i, j);
    }
    let mut chosen = all[..k].to_vec();
    chosen.sort_unstable();
    chosen
}

/// A stable 64-bit seed from text (FNV-1a): a run's sample depends on what it checks.
pub fn seed_of(text: &str) -> u64 {
    fnv1a(text.as_bytes())
}

/// FNV-1a, 64 bits: stable across versions and machines, unlike std's hasher.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_uniform_distinct_and_repeatable() {
        let a = sample_indices(1000, 100, 7);
        assert_eq!(a, sample_indices(1000, 100, 7));
        assert_ne!(a, sample_indices(1000, 100, 8));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_indices(5, 10, 1), vec![0, 1, 2, 3, 4]);
        // Every index about equally often over many seeds.
        let mut hits = [0u32; 10];
        for seed in 0..10_000 {
            for i in sample_indices(10, 3, seed) {
                hits[i] += 1;
            }
        }
        assert!(hits.iter().all(|&h| (2700..3300).contains(&h)), "{hits:?}");
    }

    #[test]
    fn seeds_come_from_text() {
        assert_eq!(seed_of("a"), seed_of("a"));
        assert_ne!(seed_of("a"), seed_of("b"));
    }
}
