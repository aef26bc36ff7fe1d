//! The auto-retrain settings (DESIGN.md §11): when the scheduled drift check may ask for
//! a retrain (thresholds, enough labels, cooldown, attempts a day, which lines), whether
//! a candidate the gate passes is promoted by itself, and the gate's own numbers. One
//! document per model in the Config table (`auto-retrain#<model>`), each value ranged;
//! a stored document from before a setting existed reads with that setting's default.

pub mod decision;
#[cfg(feature = "queue")]
pub mod requester;

use crate::domain::Line;
use crate::gate::GateSettings;
use crate::settings::{InvalidSetting, check, count, within};
use serde::{Deserialize, Serialize};

/// How far back a retrain reads feedback (and auto-retrain counts it): predictions, and
/// the inputs they keep, expire after 90 days.
pub const FEEDBACK_DAYS: i64 = 90;

/// Epochs of a retrain unless the request (or the auto-retrain settings) say otherwise.
pub const DEFAULT_EPOCHS: usize = 3;
/// The most epochs a request may ask for: a Lambda run has 15 minutes.
pub const MAX_EPOCHS: usize = 20;
/// The seed of a retrain unless the request (or the auto-retrain settings) say otherwise.
pub const DEFAULT_SEED: u64 = 1;

/// The Config table's name of `model`'s document.
pub fn doc_name(model: &str) -> String {
    format!("auto-retrain#{model}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoRetrainSettings {
    /// Whether the drift check requests retrains at all (manual requests always work).
    pub enabled: bool,
    /// A data-drift verdict with an overall drift score (the share of drifted features)
    /// at or above this asks for a retrain.
    pub drift_score_threshold: f64,
    /// So does an accuracy, measured from labelled feedback, this far (a share) below
    /// the version's registered test accuracy.
    pub accuracy_drop_threshold: f64,
    /// Labelled feedback inputs a line needs before a retrain is worth its cost: below
    /// this a request is refused (and recorded) as too little data.
    pub min_labelled_samples: usize,
    /// Hours after a line's last automatic request before the next may be made.
    pub cooldown_hours: f64,
    /// Automatic requests a line may have in a UTC day.
    pub max_attempts_per_day: usize,
    /// The lines the drift check may retrain.
    pub lines: Vec<String>,
    /// The epochs and seed of an automatic request's run.
    pub epochs: usize,
    pub seed: u64,
    /// A candidate the gate passes becomes production by itself; otherwise it waits in
    /// `staging` for `POST /models/{name}/versions/{v}/promote`.
    pub auto_promote: bool,
    pub gate: GateSettings,
}

impl Default for AutoRetrainSettings {
    fn default() -> Self {
        Self {
            // The loop closes by itself unless an admin turns it off: every candidate
            // still has to pass the gate, and cooldown and attempts bound the cost.
            enabled: true,
            drift_score_threshold: 0.5,
            accuracy_drop_threshold: 0.05,
            min_labelled_samples: 100,
            cooldown_hours: 24.0,
            max_attempts_per_day: 3,
            lines: vec!["v1".into(), "v2".into()],
            epochs: DEFAULT_EPOCHS,
            seed: DEFAULT_SEED,
            auto_promote: true,
            gate: GateSettings::default(),
        }
    }
}

impl AutoRetrainSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        within(
            "drift_score_threshold",
            self.drift_score_threshold,
            0.0,
            1.0,
        )?;
        within(
            "accuracy_drop_threshold",
            self.accuracy_drop_threshold,
            0.0,
            1.0,
        )?;
        count(
            "min_labelled_samples",
            self.min_labelled_samples,
            1,
            1_000_000,
        )?;
        within("cooldown_hours", self.cooldown_hours, -1e-12, 24.0 * 30.0)?;
        count("max_attempts_per_day", self.max_attempts_per_day, 1, 24)?;
        count("epochs", self.epochs, 1, MAX_EPOCHS)?;
        for line in &self.lines {
            check(
                "lines",
                Line::parse_named("lines", line).is_ok(),
                format!("{line} is not a line (v1 or v2)"),
            )?;
        }
        self.gate.validate()
    }

    /// Whether the drift check may retrain `line`.
    pub fn covers(&self, line: Line) -> bool {
        self.lines.iter().any(|l| l == line.as_str())
    }

    /// These settings with `change` (a partial document) applied and checked: a key
    /// that is not a setting, a value of the wrong type or out of its range is an error
    /// naming it.
    pub fn apply(&self, change: &serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(change) = change else {
            return Err("the settings must be a JSON object".into());
        };
        let current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let mut merged = current.clone();
        for (key, value) in change {
            if key == "gate" {
                // The gate's own keys merge one by one, as the top level's do.
                let serde_json::Value::Object(gate) = value else {
                    return Err("gate must be an object of the gate's settings".into());
                };
                for (gate_key, gate_value) in gate {
                    // serde's message names the type, not the key: each key alone
                    // onto the current settings finds the one at fault.
                    let mut alone = current.clone();
                    alone["gate"][gate_key] = gate_value.clone();
                    if let Err(err) = serde_json::from_value::<Self>(alone) {
                        return Err(format!("gate.{gate_key}: {err}"));
                    }
                    merged["gate"][gate_key] = gate_value.clone();
                }
            } else {
                let mut alone = current.clone();
                alone[key] = value.clone();
                if let Err(err) = serde_json::from_value::<Self>(alone) {
                    return Err(format!("{key}: {err}"));
                }
                merged[key] = value.clone();
            }
        }
        let next: Self = serde_json::from_value(merged).map_err(|e| e.to_string())?;
        next.validate().map_err(|e| e.to_string())?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_defaults_are_valid_and_close_the_loop() {
        let defaults = AutoRetrainSettings::default();
        defaults.validate().unwrap();
        assert!(defaults.enabled && defaults.auto_promote);
        assert!(defaults.covers(Line::V1) && defaults.covers(Line::V2));
        let old: AutoRetrainSettings = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
        assert_eq!(old.cooldown_hours, 24.0);
        assert_eq!(old.gate, GateSettings::default());
    }

    #[test]
    fn a_change_merges_and_each_bad_value_names_its_key() {
        let defaults = AutoRetrainSettings::default();
        let next = defaults
            .apply(
                &json!({"auto_promote": false, "lines": ["v2"], "gate": {"base_margin_points": 1}}),
            )
            .unwrap();
        assert!(!next.auto_promote && !next.covers(Line::V1));
        assert_eq!(next.gate.base_margin_points, 1.0);
        assert_eq!(next.gate.confidence, 0.95, "the gate's other keys are kept");
        for (change, key) in [
            (json!({"cooldown_hours": -1}), "cooldown_hours"),
            (json!({"max_attempts_per_day": 0}), "max_attempts_per_day"),
            (json!({"epochs": 21}), "epochs"),
            (json!({"lines": ["v3"]}), "lines"),
            (json!({"drift_score_threshold": 2}), "drift_score_threshold"),
            (json!({"gate": {"confidence": 1.5}}), "confidence"),
            (json!({"gate": {"nope": 1}}), "nope"),
            (json!({"enabled": "yes"}), "enabled"),
            (json!({"surprise": 1}), "surprise"),
        ] {
            let err = defaults.apply(&change).unwrap_err();
            assert!(err.contains(key), "{change}: {err}");
        }
        assert!(defaults.apply(&json!([1])).is_err());
    }
}
