//! The promotion gate's numbers (DESIGN.md §11), each ranged. Stored with the
//! auto-retrain settings; every report carries the values it was judged by.

use crate::settings::{InvalidSetting, count, within};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// A stored document from before a setting existed reads with that setting's default.
#[serde(default, deny_unknown_fields)]
pub struct GateSettings {
    /// The one-sided confidence of the lower bound on the base test split.
    pub confidence: f64,
    /// Non-inferiority on the base test split: the lower bound of (candidate −
    /// production) accuracy must be above minus this many percentage points.
    pub base_margin_points: f64,
    /// No digit's recall on the base test split may fall by more than this many points.
    pub class_recall_drop_points: f64,
    /// A feedback hold-out of at least this many samples must show the candidate
    /// significantly better; a smaller one only better (the report says "not
    /// significant").
    pub holdout_significance_min: usize,
    /// The level of the hold-out's one-sided McNemar test.
    pub holdout_alpha: f64,
    /// The power the reported minimum detectable differences are computed for.
    pub power: f64,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            confidence: 0.95,
            base_margin_points: 0.5,
            class_recall_drop_points: 3.0,
            holdout_significance_min: 200,
            holdout_alpha: 0.05,
            power: 0.8,
        }
    }
}

impl GateSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        // Above 0.5: a lower bound at or above the point estimate would be no bound.
        within("confidence", self.confidence, 0.5, 0.999)?;
        within("base_margin_points", self.base_margin_points, -1e-12, 20.0)?;
        within(
            "class_recall_drop_points",
            self.class_recall_drop_points,
            -1e-12,
            100.0,
        )?;
        count(
            "holdout_significance_min",
            self.holdout_significance_min,
            10,
            1_000_000,
        )?;
        within("holdout_alpha", self.holdout_alpha, 0.0, 0.5)?;
        within("power", self.power, 0.5, 0.99)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones_and_valid() {
        let defaults = GateSettings::default();
        defaults.validate().unwrap();
        assert_eq!(defaults.base_margin_points, 0.5);
        assert_eq!(defaults.class_recall_drop_points, 3.0);
        assert_eq!(defaults.holdout_significance_min, 200);
        let partial: GateSettings = serde_json::from_str(r#"{"base_margin_points": 1}"#).unwrap();
        assert_eq!(partial.base_margin_points, 1.0);
        assert_eq!(partial.confidence, 0.95);
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        for (body, key) in [
            (r#"{"confidence": 0.5}"#, "confidence"),
            (r#"{"confidence": 1}"#, "confidence"),
            (r#"{"base_margin_points": -1}"#, "base_margin_points"),
            (
                r#"{"class_recall_drop_points": 101}"#,
                "class_recall_drop_points",
            ),
            (
                r#"{"holdout_significance_min": 5}"#,
                "holdout_significance_min",
            ),
            (r#"{"holdout_alpha": 0}"#, "holdout_alpha"),
            (r#"{"power": 0.3}"#, "power"),
        ] {
            let settings: GateSettings = serde_json::from_str(body).unwrap();
            assert_eq!(settings.validate().unwrap_err().key, key, "{body}");
        }
        assert!(serde_json::from_str::<GateSettings>(r#"{"margin": 1}"#).is_err());
        // A zero margin (no loss at all tolerated) is allowed.
        let strict: GateSettings =
            serde_json::from_str(r#"{"base_margin_points": 0, "class_recall_drop_points": 0}"#)
                .unwrap();
        strict.validate().unwrap();
    }
}
