//! The retrain request's body, parsed once at the edge: a bad value is a 422 naming the
//! field.

use inferloop::ApiError;
use inferloop::domain::Line;
use inferloop::model::retrain::{DEFAULT_EPOCHS, DEFAULT_SEED, MAX_EPOCHS};
use serde::Deserialize;

/// The largest body a retrain request may have.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// The longest reason kept with a job.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetrain {
    line: Option<String>,
    reason: Option<String>,
    // Any JSON here, so that a wrong type (-1, 2.5, "3") is a 422 naming the field,
    // not serde's message about a u64.
    epochs: Option<serde_json::Value>,
    seed: Option<serde_json::Value>,
}

/// `{line, reason, epochs?, seed?}`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrainRequest {
    pub line: Line,
    pub reason: String,
    pub epochs: usize,
    pub seed: u64,
}

impl RetrainRequest {
    pub fn parse(body: serde_json::Value) -> Result<Self, ApiError> {
        let raw: RawRetrain = serde_json::from_value(body)
            .map_err(|e| ApiError::invalid_parameter(format!("the retrain request: {e}")))?;
        let line = Line::parse_named(
            "line",
            raw.line
                .as_deref()
                .ok_or_else(|| ApiError::invalid_parameter("line is required (v1 or v2)"))?,
        )
        .map_err(ApiError::bad_parameter)?;
        let reason = raw.reason.unwrap_or_default().trim().to_owned();
        if reason.is_empty() {
            return Err(ApiError::invalid_parameter(
                "reason is required: why the line is retrained",
            ));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ApiError::invalid_parameter(format!(
                "reason must be at most {MAX_REASON_CHARS} characters"
            )));
        }
        let epochs = match raw.epochs {
            None => DEFAULT_EPOCHS,
            Some(e) => match e.as_u64() {
                Some(n) if (1..=MAX_EPOCHS as u64).contains(&n) => n as usize,
                _ => {
                    return Err(ApiError::invalid_parameter(format!(
                        "epochs must be a whole number from 1 to {MAX_EPOCHS}, got {e}"
                    )));
                }
            },
        };
        let seed = match raw.seed {
            None => DEFAULT_SEED,
            Some(s) => s.as_u64().ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "seed must be a whole number from 0 to {}, got {s}",
                    u64::MAX
                ))
            })?,
        };
        Ok(Self {
            line,
            reason,
            epochs,
            seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(body: serde_json::Value) -> String {
        RetrainRequest::parse(body).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_bounds() {
        let request = RetrainRequest::parse(json!({"line": "v2", "reason": " drift "})).unwrap();
        assert_eq!(request.line, Line::V2);
        assert_eq!(request.reason, "drift");
        assert_eq!(
            (request.epochs, request.seed),
            (DEFAULT_EPOCHS, DEFAULT_SEED)
        );
        let request =
            RetrainRequest::parse(json!({"line": "v1", "reason": "r", "epochs": 1, "seed": 9}))
                .unwrap();
        assert_eq!((request.epochs, request.seed), (1, 9));
    }

    #[test]
    fn bad_values_name_their_field() {
        assert!(field_of(json!({"reason": "r"})).contains("line"));
        assert!(field_of(json!({"line": "v3", "reason": "r"})).contains("line"));
        assert!(field_of(json!({"line": "v2"})).contains("reason"));
        assert!(field_of(json!({"line": "v2", "reason": "   "})).contains("reason"));
        assert!(field_of(json!({"line": "v2", "reason": "x".repeat(501)})).contains("reason"));
        assert!(field_of(json!({"line": "v2", "reason": "r", "epochs": 0})).contains("epochs"));
        assert!(field_of(json!({"line": "v2", "reason": "r", "epochs": 21})).contains("epochs"));
        assert!(field_of(json!({"line": "v2", "reason": "r", "epochs": -1})).contains("epochs"));
        assert!(field_of(json!({"line": "v2", "reason": "r", "epochs": 2.5})).contains("epochs"));
        assert!(field_of(json!({"line": "v2", "reason": "r", "seed": "7"})).contains("seed"));
        assert!(field_of(json!({"line": "v2", "reason": "r", "lr": 1})).contains("lr"));
        assert!(field_of(json!(["v2"])).contains("retrain request"));
    }
}
