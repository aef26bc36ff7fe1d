//! `cargo xtask bench gate`: how often the promotion gate (inferloop::gate) accepts an
//! equally accurate candidate as the two models disagree on more of the base test
//! split, how often it rejects a candidate with one digit 5 points worse, and how often
//! 10 % label noise in the feedback hold-out changes a decision — over 1,000 seeds of
//! the synthetic predictions of `inferloop::gate::simulation`, at the default settings.
//!
//! No training and no table: the gate is pure. The figures are rates, not timings, so
//! the bench runs in the dev profile.

use inferloop::gate::simulation::{self, BASE_SAMPLES, DEFAULT_REDRAWN};
use inferloop::gate::{GateSettings, Rule, evaluate};

const SEEDS: u64 = 1_000;
const HOLDOUT: usize = 300;

fn main() {
    let settings = GateSettings::default();
    println!(
        "gate at its defaults (one-sided {:.0} % bound above -{} points, class recall -{} points, hold-out α {}), {SEEDS} seeds, base split {BASE_SAMPLES}, hold-out {HOLDOUT}",
        settings.confidence * 100.0,
        settings.base_margin_points,
        settings.class_recall_drop_points,
        settings.holdout_alpha
    );
    println!();
    println!(
        "| re-drawn share | mean discordant samples (share of split) | base rule passed | accepted |"
    );
    println!("| --- | --- | --- | --- |");
    for redrawn in [0.02, DEFAULT_REDRAWN, 0.08, 0.12, 0.2, 0.3, 0.5] {
        let (mut discordant, mut base_passed, mut accepted) = (0u64, 0u64, 0u64);
        for seed in 0..SEEDS {
            let scenario = simulation::scenario(100_000 + seed, redrawn, HOLDOUT, None);
            let report = evaluate(&scenario.base, &scenario.holdout, &settings);
            discordant += report.base.counts.discordant();
            base_passed += u64::from(
                report
                    .rules
                    .iter()
                    .any(|r| r.rule == Rule::BaseNonInferiority && r.passed),
            );
            accepted += u64::from(report.passed);
        }
        let mean = discordant as f64 / SEEDS as f64;
        println!(
            "| {redrawn} | {mean:.1} ({:.2} %) | {:.1} % | {:.1} % |",
            100.0 * mean / BASE_SAMPLES as f64,
            100.0 * base_passed as f64 / SEEDS as f64,
            100.0 * accepted as f64 / SEEDS as f64
        );
    }
    println!();
    let rejected = (0..SEEDS)
        .filter(|&seed| {
            let scenario = simulation::scenario(
                200_000 + seed,
                DEFAULT_REDRAWN,
                HOLDOUT,
                Some((seed % 10) as u8),
            );
            !evaluate(&scenario.base, &scenario.holdout, &settings).passed
        })
        .count();
    println!("one digit 5 points worse: rejected in {rejected} of {SEEDS} seeds");
    let changed = (0..SEEDS)
        .filter(|&seed| {
            let scenario = simulation::scenario(300_000 + seed, DEFAULT_REDRAWN, HOLDOUT, None);
            let clean = evaluate(&scenario.base, &scenario.holdout, &settings).passed;
            let noisy_holdout = simulation::flip_labels(400_000 + seed, &scenario.holdout, 0.10);
            evaluate(&scenario.base, &noisy_holdout, &settings).passed != clean
        })
        .count();
    println!(
        "10 % of the hold-out's labels flipped: the decision changed in {changed} of {SEEDS} seeds"
    );
}
