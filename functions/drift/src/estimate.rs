//! The label-free accuracy estimate (DESIGN.md §6a): the version's top probabilities
//! calibrated on its labelled test split (isotonic, shared/src/stats/calibration.rs),
//! then the window's expected accuracy with a 90 % interval. The calibrator is fitted
//! once per version and container.

use crate::App;
use inferloop::stats::calibration::Calibrator;
use inferloop::store::models::ModelVersion;
use inferloop::store::predictions::DriftFeatures;
use serde_json::{Value, json};
use std::sync::Arc;

/// The interval's confidence.
pub const CONFIDENCE: f64 = 0.9;

/// A calibrator from a test split: its top probabilities and whether each was right.
pub fn calibrator_of(
    reference: &inferloop::drift::reference::TestSplitReference,
) -> Option<Calibrator> {
    if reference.true_label.len() != reference.predicted_digit.len()
        || reference.top_probability.len() != reference.predicted_digit.len()
    {
        return None;
    }
    let correct: Vec<bool> = reference
        .true_label
        .iter()
        .zip(&reference.predicted_digit)
        .map(|(t, p)| t == p)
        .collect();
    Calibrator::fit(&reference.top_probability, &correct)
}

async fn calibrator(app: &App, version: &ModelVersion) -> Result<Option<Arc<Calibrator>>, String> {
    if let Some(found) = app
        .calibrators
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&version.version)
    {
        return Ok(found.clone());
    }
    let reference = crate::check::test_split_reference(app, version)
        .await
        .map_err(|e| e.to_string())?;
    let fitted = reference.as_ref().and_then(calibrator_of).map(Arc::new);
    app.calibrators
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(version.version.clone(), fitted.clone());
    Ok(fitted)
}

/// The estimate for a window's predictions, as the answer carries it.
pub async fn label_free(app: &App, version: &ModelVersion, window: &[DriftFeatures]) -> Value {
    let calibrator = match calibrator(app, version).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return json!({"status": "no_calibration_data",
                          "reason": "the version's test-split reference has no true labels"});
        }
        Err(why) => {
            tracing::warn!(error = %why, "no calibrator for the label-free estimate");
            return json!({"status": "unavailable", "reason": "the test-split reference could not be read"});
        }
    };
    let top: Vec<f64> = window
        .iter()
        .map(|f| f64::from(f.top_probability))
        .collect();
    match calibrator.estimate(&top, CONFIDENCE) {
        Some(estimate) => {
            let mut doc = serde_json::to_value(estimate).unwrap_or_default();
            if let Some(map) = doc.as_object_mut() {
                map.insert("status".into(), "estimated".into());
                map.insert("calibrated_on".into(), "test_split".into());
            }
            doc
        }
        None => json!({"status": "insufficient_data", "n": top.len()}),
    }
}
