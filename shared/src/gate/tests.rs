//! The gate on seeded synthetic predictions ([`super::simulation`]): what it must
//! reject, what it must accept, and that label noise in the feedback does not move its
//! decision.

use super::simulation::{BASE_SAMPLES, DEFAULT_REDRAWN, flip_labels};
use super::*;

const SEEDS: u64 = 200;

fn scenario(seed: u64, holdout_samples: usize, degraded_digit: Option<u8>) -> simulation::Scenario {
    simulation::scenario(seed, DEFAULT_REDRAWN, holdout_samples, degraded_digit)
}

fn rule(report: &GateReport, rule: Rule) -> &RuleOutcome {
    report
        .rules
        .iter()
        .find(|outcome| outcome.rule == rule)
        .unwrap()
}

#[test]
fn a_candidate_with_one_digit_five_points_worse_is_rejected_in_every_seed() {
    let settings = GateSettings::default();
    for seed in 0..SEEDS {
        let digit = (seed % 10) as u8;
        let scenario = scenario(seed, 300, Some(digit));
        let report = evaluate(&scenario.base, &scenario.holdout, &settings);
        assert!(!report.passed, "seed {seed}: {:#?}", report.rules);
        let class = rule(&report, Rule::ClassRecall);
        assert!(!class.passed, "seed {seed}: {}", class.detail);
        assert!(
            class.detail.contains(&format!("digit {digit} ")),
            "{}",
            class.detail
        );
        // Better on the feedback all the same: the class rule is what stops it.
        assert!(rule(&report, Rule::HoldoutBetter).passed);
        assert!(report.reasons.contains(&class.detail));
    }
}

#[test]
fn an_equally_good_candidate_is_accepted_in_at_least_95_percent_of_seeds() {
    let settings = GateSettings::default();
    for holdout_samples in [300, 80] {
        let accepted = (0..SEEDS)
            .filter(|&seed| {
                let scenario = scenario(1_000 + seed, holdout_samples, None);
                evaluate(&scenario.base, &scenario.holdout, &settings).passed
            })
            .count() as u64;
        assert!(
            accepted * 100 >= SEEDS * 95,
            "hold-out of {holdout_samples}: accepted in {accepted} of {SEEDS} seeds"
        );
    }
}

#[test]
fn ten_percent_of_the_holdout_labels_flipped_does_not_change_the_decision() {
    let settings = GateSettings::default();
    let mut rejected = 0;
    for seed in 0..SEEDS {
        let scenario = scenario(5_000 + seed, 300, None);
        let clean = evaluate(&scenario.base, &scenario.holdout, &settings);
        let noisy_holdout = flip_labels(9_000 + seed, &scenario.holdout, 0.10);
        let changed = noisy_holdout
            .labels
            .iter()
            .zip(&scenario.holdout.labels)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            (10..=60).contains(&changed),
            "seed {seed}: {changed} labels flipped"
        );
        let noisy = evaluate(&scenario.base, &noisy_holdout, &settings);
        assert_eq!(
            noisy.passed, clean.passed,
            "seed {seed}: {:#?}",
            noisy.rules
        );
        assert_ne!(
            noisy.holdout, clean.holdout,
            "seed {seed}: the noise changed nothing"
        );
        rejected += usize::from(!clean.passed);
    }
    // Every decision held, most of them acceptances.
    assert!(rejected * 100 <= SEEDS as usize * 5, "{rejected} rejected");
}

#[test]
fn a_small_holdout_is_judged_not_significant_and_only_has_to_be_better() {
    let settings = GateSettings::default();
    let scenario = scenario(7, 80, None);
    let report = evaluate(&scenario.base, &scenario.holdout, &settings);
    let outcome = rule(&report, Rule::HoldoutBetter);
    assert!(outcome.passed, "{}", outcome.detail);
    assert!(
        outcome.detail.contains("not significant"),
        "{}",
        outcome.detail
    );
    assert_eq!(outcome.threshold, None);
    // The same hold-out with production's and the candidate's answers swapped: worse.
    let swapped = PairedPredictions::new(
        scenario.holdout.labels.clone(),
        scenario.holdout.candidate.clone(),
        scenario.holdout.production.clone(),
    )
    .unwrap();
    let report = evaluate(&scenario.base, &swapped, &settings);
    assert!(!report.passed);
    let outcome = rule(&report, Rule::HoldoutBetter);
    assert!(
        !outcome.passed && outcome.detail.contains("not better"),
        "{}",
        outcome.detail
    );
}

#[test]
fn a_large_holdout_must_be_significantly_better() {
    let settings = GateSettings::default();
    // 300 samples on which the candidate is right on 3 more than production (12
    // against 9 of the discordant): better, but p = P(X ≥ 12 | 21, ½) ≈ 0.33.
    let labels = vec![0u8; 300];
    let mut production = vec![0u8; 300];
    let mut candidate = vec![0u8; 300];
    production[..12].fill(1);
    candidate[12..21].fill(1);
    let holdout = PairedPredictions::new(labels, production, candidate).unwrap();
    let scenario = scenario(11, 0, None);
    let report = evaluate(&scenario.base, &holdout, &settings);
    let outcome = rule(&report, Rule::HoldoutBetter);
    let comparison = report.holdout.as_ref().unwrap();
    assert_eq!(
        (
            comparison.counts.only_candidate_right,
            comparison.counts.only_baseline_right
        ),
        (12, 9)
    );
    assert!(!outcome.passed, "{}", outcome.detail);
    assert!(
        outcome.detail.contains("not significantly better"),
        "{}",
        outcome.detail
    );
    assert_eq!(outcome.threshold, Some(0.05));
    assert!(outcome.value.unwrap() > 0.05);
    assert!(comparison.minimum_detectable_difference.unwrap() > comparison.difference);
}

#[test]
fn no_holdout_means_judged_on_the_base_split_alone() {
    let settings = GateSettings::default();
    let scenario = scenario(3, 0, None);
    let report = evaluate(&scenario.base, &PairedPredictions::default(), &settings);
    assert_eq!(report.holdout, None);
    let outcome = rule(&report, Rule::HoldoutBetter);
    assert!(outcome.passed && outcome.detail.contains("base test split alone"));
    // No base split at all fails the base rule rather than passing on nothing.
    let report = evaluate(&PairedPredictions::default(), &scenario.holdout, &settings);
    assert!(!report.passed);
    assert!(!rule(&report, Rule::BaseNonInferiority).passed);
    assert!(!rule(&report, Rule::ClassRecall).passed);
}

#[test]
fn the_report_carries_every_figure_and_its_settings() {
    let settings = GateSettings {
        class_recall_drop_points: 1.0,
        ..GateSettings::default()
    };
    let scenario = scenario(21, 300, Some(4));
    let report = evaluate(&scenario.base, &scenario.holdout, &settings);
    assert_eq!(report.settings, settings);
    assert_eq!(report.classes.len(), 10);
    let four = report
        .classes
        .iter()
        .find(|class| class.digit == 4)
        .unwrap();
    assert!(four.change_points < -3.0, "{four:?}");
    assert_eq!(report.base.samples, BASE_SAMPLES as u64);
    let interval = report.base.difference_interval.unwrap();
    assert!(interval.lower < report.base.difference && report.base.difference < interval.upper);
    assert_eq!(
        rule(&report, Rule::BaseNonInferiority).value,
        Some(interval.lower * 100.0)
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rules"][0]["rule"], "base_non_inferiority");
    assert_eq!(json["rules"][1]["rule"], "class_recall");
    assert_eq!(json["rules"][2]["rule"], "holdout_better");
    assert!(
        json["base"]["minimum_detectable_difference"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        json["holdout"]["mcnemar"]["p_candidate_better"]
            .as_f64()
            .unwrap()
            < 1e-4
    );
    assert_eq!(json["settings"]["class_recall_drop_points"], 1.0);
    // The same inputs, the same report.
    assert_eq!(
        evaluate(&scenario.base, &scenario.holdout, &settings),
        report
    );
}

#[test]
fn predictions_are_checked_once() {
    assert_eq!(
        PairedPredictions::new(vec![1, 2], vec![1], vec![1, 2]),
        Err(InvalidPredictions::LengthMismatch {
            labels: 2,
            production: 1,
            candidate: 2
        })
    );
    assert_eq!(
        PairedPredictions::new(vec![1, 2], vec![1, 2], vec![1, 10]),
        Err(InvalidPredictions::NotADigit {
            index: 1,
            value: 10
        })
    );
    let set = PairedPredictions::new(vec![1, 2], vec![1, 3], vec![1, 2]).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(
        set.counts(),
        PairedCounts {
            both_right: 1,
            only_candidate_right: 1,
            only_baseline_right: 0,
            both_wrong: 0
        }
    );
}
