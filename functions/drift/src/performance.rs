//! `POST /drift/model-performance-drift` (seed 004): an old and a new model's predictions
//! of the same samples, compared. Without `ground_truth`: how often the two agree and how
//! each spreads its predicted digits. With it: the paired comparison the promotion gate
//! makes (both accuracies, Newcombe's interval of the difference, McNemar's exact test,
//! the minimum detectable difference at this size, each digit's recall), by the gate's
//! numbers in the auto-retrain settings.

use crate::bodies;
use inferloop::ApiError;
use inferloop::domain::CLASSES;
use inferloop::gate::{self, GateSettings, PairedPredictions};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceDriftBody {
    pub old_model_predictions: Vec<Value>,
    pub new_model_predictions: Vec<Value>,
    #[serde(default)]
    pub ground_truth: Option<Vec<Value>>,
    #[serde(default)]
    pub model_name: Option<String>,
}

fn spread(predicted: &[u8]) -> Vec<f64> {
    let mut counts = [0u64; CLASSES];
    for &digit in predicted {
        counts[usize::from(digit)] += 1;
    }
    let n = predicted.len().max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

/// The comparison of `body`'s two sets of predictions; `gate` gives the confidence, the
/// test's level and the power.
pub fn report(
    body: &PerformanceDriftBody,
    gate_settings: &GateSettings,
) -> Result<Value, ApiError> {
    let old = bodies::digits(
        "old_model_predictions",
        &body.old_model_predictions,
        bodies::predicted,
    )?;
    let new = bodies::digits(
        "new_model_predictions",
        &body.new_model_predictions,
        bodies::predicted,
    )?;
    if old.len() != new.len() {
        return Err(ApiError::unprocessable(
            "length_mismatch",
            format!(
                "old_model_predictions has {} entries and new_model_predictions {}; they must pair up",
                old.len(),
                new.len()
            ),
        ));
    }
    if old.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_records",
            "old_model_predictions and new_model_predictions are empty: nothing to compare",
        ));
    }
    let agreement = old.iter().zip(&new).filter(|(a, b)| a == b).count() as f64 / old.len() as f64;
    let (old_spread, new_spread) = (spread(&old), spread(&new));
    let total_variation = 0.5
        * old_spread
            .iter()
            .zip(&new_spread)
            .map(|(p, q)| (p - q).abs())
            .sum::<f64>();
    let mut answer = json!({
        "samples": old.len(),
        "agreement": agreement,
        "old_prediction_distribution": old_spread,
        "new_prediction_distribution": new_spread,
        "prediction_total_variation": total_variation,
        "labelled": false,
    });
    let Some(truth) = &body.ground_truth else {
        answer["performance_drift_detected"] = Value::Null;
        answer["note"] =
            json!("without ground_truth only agreement and the predictions' spread are compared");
        return Ok(answer);
    };
    let labels = bodies::digits("ground_truth", truth, bodies::digit)?;
    if labels.len() != old.len() {
        return Err(ApiError::unprocessable(
            "length_mismatch",
            format!(
                "ground_truth has {} entries and the predictions {}; they must pair up",
                labels.len(),
                old.len()
            ),
        ));
    }
    let paired = PairedPredictions::new(labels, old, new)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    let comparison = gate::compare(&paired, gate_settings);
    let significant = comparison.mcnemar.p_two_sided < gate_settings.holdout_alpha;
    let direction = match (significant, comparison.difference > 0.0) {
        (false, _) => "no_significant_difference",
        (true, true) => "new_better",
        (true, false) => "new_worse",
    };
    answer["labelled"] = json!(true);
    answer["old_accuracy"] = json!(comparison.production_accuracy);
    answer["new_accuracy"] = json!(comparison.candidate_accuracy);
    answer["accuracy_difference"] = json!(comparison.difference);
    answer["difference_interval"] = json!(comparison.difference_interval);
    answer["interval_confidence"] = json!(2.0 * gate_settings.confidence - 1.0);
    answer["mcnemar"] = json!(comparison.mcnemar);
    answer["minimum_detectable_difference"] = json!(comparison.minimum_detectable_difference);
    answer["alpha"] = json!(gate_settings.holdout_alpha);
    answer["direction"] = json!(direction);
    answer["performance_drift_detected"] = json!(direction == "new_worse");
    answer["per_class"] = json!(
        gate::class_recalls(&paired)
            .iter()
            .map(|c| json!({
                "digit": c.digit, "support": c.support, "old_recall": c.production_recall,
                "new_recall": c.candidate_recall, "change_points": c.change_points,
            }))
            .collect::<Vec<_>>()
    );
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(old: &[u8], new: &[u8], truth: Option<&[u8]>) -> PerformanceDriftBody {
        PerformanceDriftBody {
            old_model_predictions: old.iter().map(|&d| json!({"prediction": d})).collect(),
            new_model_predictions: new.iter().map(|&d| json!(d)).collect(),
            ground_truth: truth.map(|t| t.iter().map(|d| json!(d.to_string())).collect()),
            model_name: None,
        }
    }

    #[test]
    fn without_labels_agreement_and_spread_only() {
        let answer = report(
            &body(&[1, 2, 3, 4], &[1, 2, 3, 5], None),
            &GateSettings::default(),
        )
        .unwrap();
        assert_eq!(answer["agreement"], 0.75);
        assert_eq!(answer["prediction_total_variation"], 0.25);
        assert_eq!(answer["performance_drift_detected"], Value::Null);
    }

    #[test]
    fn a_new_model_wrong_where_the_old_was_right_is_drift() {
        // 300 samples: the old model right on all, the new wrong on 30 of them.
        let truth: Vec<u8> = (0..300).map(|i| (i % 10) as u8).collect();
        let old = truth.clone();
        let new: Vec<u8> = truth
            .iter()
            .enumerate()
            .map(|(i, &d)| if i % 10 == 0 { (d + 1) % 10 } else { d })
            .collect();
        let answer = report(&body(&old, &new, Some(&truth)), &GateSettings::default()).unwrap();
        assert_eq!(answer["direction"], "new_worse", "{answer}");
        assert_eq!(answer["performance_drift_detected"], true);
        assert!((answer["accuracy_difference"].as_f64().unwrap() + 0.1).abs() < 1e-12);
        assert_eq!(answer["per_class"][0]["new_recall"], 0.0);
        // The same answers twice: no difference to detect.
        let same = report(&body(&old, &old, Some(&truth)), &GateSettings::default()).unwrap();
        assert_eq!(same["direction"], "no_significant_difference");
        assert_eq!(same["performance_drift_detected"], false);
    }

    #[test]
    fn unpaired_or_bad_entries_are_422s_naming_the_field() {
        let settings = GateSettings::default();
        let err = report(&body(&[], &[], None), &settings).unwrap_err();
        assert_eq!(err.status_code().as_u16(), 422);
        let err = report(&body(&[1, 2], &[1], None), &settings).unwrap_err();
        assert_eq!(err.status_code().as_u16(), 422);
        let err = report(&body(&[1, 2], &[1, 2], Some(&[1])), &settings).unwrap_err();
        assert!(err.to_string().contains("ground_truth"), "{err}");
        let mut bad = body(&[1], &[1], None);
        bad.new_model_predictions = vec![json!(12)];
        let err = report(&bad, &settings).unwrap_err();
        assert!(err.to_string().contains("new_model_predictions"), "{err}");
    }
}
