//! Seeded synthetic predictions for judging the gate without training: the gate's tests
//! and `cargo xtask bench gate` draw from here.
//!
//! A base test split of [`BASE_SAMPLES`] (the size of the real one) on which production
//! is right with probability 0.97, and a feedback hold-out of drifted traffic on which
//! production is right with probability 0.80. An *equally good* candidate answers as
//! production does except on a re-drawn share of base samples (4 % by default), where
//! it is right with the same probability: the same accuracy, disagreeing on about 0.2 %
//! of the split at 4 %. On the hold-out, the traffic it was retrained on, it is right
//! with probability 0.92 (of 300 samples, about 50 right by it alone and 3 by production
//! alone). A *degraded* candidate is the equally good one with one digit's recall on
//! the base split cut by 5 points: that share of the digit's samples it had right is
//! answered wrong.

use super::PairedPredictions;
use crate::rng::SplitMix64;

/// The size of the real base test split.
pub const BASE_SAMPLES: usize = 2_004;
/// The share of base samples an equally good candidate answers anew by default.
pub const DEFAULT_REDRAWN: f64 = 0.04;

fn digit(rng: &mut SplitMix64) -> u8 {
    rng.below(10) as u8
}

/// The label when `right`, else another digit.
fn answer(rng: &mut SplitMix64, label: u8, right: bool) -> u8 {
    if right {
        label
    } else {
        (label + 1 + rng.below(9) as u8) % 10
    }
}

fn chance(rng: &mut SplitMix64, probability: f64) -> bool {
    rng.unit() < probability
}

/// Labels and production's answers; production right with `accuracy`.
fn production_set(rng: &mut SplitMix64, n: usize, accuracy: f64) -> (Vec<u8>, Vec<u8>) {
    let labels: Vec<u8> = (0..n).map(|_| digit(rng)).collect();
    let production = labels
        .iter()
        .map(|&label| {
            let right = chance(rng, accuracy);
            answer(rng, label, right)
        })
        .collect();
    (labels, production)
}

/// An equally accurate candidate: production's answers, a `redrawn` share answered anew
/// with the same accuracy.
fn equal_candidate(
    rng: &mut SplitMix64,
    labels: &[u8],
    production: &[u8],
    accuracy: f64,
    redrawn: f64,
) -> Vec<u8> {
    labels
        .iter()
        .zip(production)
        .map(|(&label, &answered)| {
            if chance(rng, redrawn) {
                let right = chance(rng, accuracy);
                answer(rng, label, right)
            } else {
                answered
            }
        })
        .collect()
}

/// The hold-out: production right with 0.80; the candidate right with 0.99 where
/// production was and with 0.64 where it was not, so 0.92 in all.
fn holdout_set(rng: &mut SplitMix64, n: usize) -> PairedPredictions {
    let (labels, production) = production_set(rng, n, 0.80);
    let candidate = labels
        .iter()
        .zip(&production)
        .map(|(&label, &answered)| {
            let right = chance(rng, if answered == label { 0.99 } else { 0.64 });
            answer(rng, label, right)
        })
        .collect();
    PairedPredictions::new(labels, production, candidate).expect("digits of equal-length sets")
}

/// Cuts `digit`'s recall by `points`: that share of its samples, among those the
/// candidate had right, answered wrong instead.
fn degrade(rng: &mut SplitMix64, labels: &[u8], candidate: &mut [u8], digit: u8, points: f64) {
    let support = labels.iter().filter(|&&label| label == digit).count();
    let mut to_degrade = (support as f64 * points / 100.0).ceil() as usize;
    let mut right: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i] == digit && candidate[i] == digit)
        .collect();
    while to_degrade > 0 && !right.is_empty() {
        let i = right.swap_remove(rng.below(right.len()));
        candidate[i] = answer(rng, digit, false);
        to_degrade -= 1;
    }
}

/// A base split and a hold-out, both models' answers on each.
pub struct Scenario {
    pub base: PairedPredictions,
    pub holdout: PairedPredictions,
}

/// The scenario of `seed`: an equally good candidate re-drawing a `redrawn` share of
/// the base split, with `degraded_digit`'s recall cut by 5 points if given, and a
/// hold-out of `holdout_samples`.
pub fn scenario(
    seed: u64,
    redrawn: f64,
    holdout_samples: usize,
    degraded_digit: Option<u8>,
) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let (labels, production) = production_set(&mut rng, BASE_SAMPLES, 0.97);
    let mut candidate = equal_candidate(&mut rng, &labels, &production, 0.97, redrawn);
    if let Some(digit) = degraded_digit {
        degrade(&mut rng, &labels, &mut candidate, digit, 5.0);
    }
    Scenario {
        base: PairedPredictions::new(labels, production, candidate)
            .expect("digits of equal-length sets"),
        holdout: holdout_set(&mut rng, holdout_samples),
    }
}

/// `set` with a `share` of its labels replaced, at random, by another digit.
pub fn flip_labels(seed: u64, set: &PairedPredictions, share: f64) -> PairedPredictions {
    let mut rng = SplitMix64::new(seed);
    let labels = set
        .labels
        .iter()
        .map(|&label| {
            if chance(&mut rng, share) {
                answer(&mut rng, label, false)
            } else {
                label
            }
        })
        .collect();
    PairedPredictions::new(labels, set.production.clone(), set.candidate.clone())
        .expect("digits of equal-length sets")
}
