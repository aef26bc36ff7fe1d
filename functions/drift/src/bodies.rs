//! The drift routes' request bodies, with the seed's field names (seed 004), parsed with
//! unknown fields refused so a misspelt key is a 422 that names it, not silently ignored.

use inferloop::ApiError;
use inferloop::domain::CLASSES;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// The most records one posted window may hold.
pub const MAX_RECORDS: usize = 50_000;
/// Posted windows are JSON; 6 MB is API Gateway's payload limit for a Lambda anyway.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// `POST /drift/data-drift`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDriftBody {
    pub current_data: Vec<Value>,
    #[serde(default)]
    pub reference_data: Option<Vec<Value>>,
    #[serde(default)]
    pub feature_columns: Option<Vec<String>>,
    #[serde(default)]
    pub categorical_columns: BTreeSet<String>,
    /// Without `reference_data`: the stored reference of this line's production version.
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
}

/// `POST /drift/model-drift`: predictions and labels of a current window, and either a
/// reference window's or the production version's registered test metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDriftBody {
    pub current_predictions: Vec<Value>,
    pub current_labels: Vec<Value>,
    #[serde(default)]
    pub reference_predictions: Option<Vec<Value>>,
    #[serde(default)]
    pub reference_labels: Option<Vec<Value>>,
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
}

/// `POST /drift/set-reference`: a production window of a line, or records.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetReferenceBody {
    pub line: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub data: Option<Vec<Value>>,
    /// The seed sends predictions beside the data; a reference here is the features.
    #[serde(default)]
    pub predictions: Option<Vec<Value>>,
    #[serde(default)]
    pub categorical_columns: BTreeSet<String>,
    #[serde(default)]
    pub model_name: Option<String>,
}

/// `POST /drift/comprehensive-metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsBody {
    pub y_true: Vec<Value>,
    pub y_pred: Vec<Value>,
    /// One row of 10 class probabilities per sample (for log loss).
    #[serde(default)]
    pub y_prob: Option<Vec<Value>>,
    #[serde(default)]
    pub model_name: Option<String>,
}

/// Refuses a window too large to judge in one request.
pub fn check_len(field: &str, values: &[Value]) -> Result<(), ApiError> {
    if values.len() > MAX_RECORDS {
        return Err(ApiError::unprocessable(
            "too_many_records",
            format!(
                "{field} holds {} records; at most {MAX_RECORDS}",
                values.len()
            ),
        ));
    }
    Ok(())
}

/// A digit label: 0–9 as a number or as its text ("7"), as the seed's string labels.
pub fn digit(field: &str, index: usize, value: &Value) -> Result<u8, ApiError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64().filter(|d| *d < CLASSES as u64),
        Value::String(s) => s.trim().parse::<u64>().ok().filter(|d| *d < CLASSES as u64),
        _ => None,
    };
    parsed.map(|d| d as u8).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_label",
            format!("{field}[{index}] must be a digit 0-9 (a number or its text), got {value}"),
        )
    })
}

/// The predicted digit of one posted prediction: a digit, or an object with
/// `prediction` (or the seed's `prediccion`, or `predicted_digit`).
pub fn predicted(field: &str, index: usize, value: &Value) -> Result<u8, ApiError> {
    match value {
        Value::Object(map) => {
            let inner = ["prediction", "prediccion", "predicted_digit"]
                .iter()
                .find_map(|k| map.get(*k));
            match inner {
                Some(inner) => digit(field, index, inner),
                None => Err(ApiError::unprocessable(
                    "invalid_label",
                    format!("{field}[{index}] has no prediction (or prediccion) field"),
                )),
            }
        }
        other => digit(field, index, other),
    }
}

/// Digits of a list, each checked.
pub fn digits(
    field: &str,
    values: &[Value],
    read: fn(&str, usize, &Value) -> Result<u8, ApiError>,
) -> Result<Vec<u8>, ApiError> {
    check_len(field, values)?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| read(field, i, v))
        .collect()
}

/// A row of 10 finite probabilities in [0, 1].
pub fn probabilities(index: usize, value: &Value) -> Result<[f64; CLASSES], ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_probabilities",
            format!("y_prob[{index}] must be {CLASSES} numbers from 0 to 1"),
        )
    };
    let row = value.as_array().ok_or_else(bad)?;
    if row.len() != CLASSES {
        return Err(bad());
    }
    let mut out = [0.0; CLASSES];
    for (slot, v) in out.iter_mut().zip(row) {
        let p = v
            .as_f64()
            .filter(|p| p.is_finite() && (0.0..=1.0).contains(p))
            .ok_or_else(bad)?;
        *slot = p;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_digits_as_numbers_or_text() {
        assert_eq!(digit("y", 0, &json!(7)).unwrap(), 7);
        assert_eq!(digit("y", 0, &json!("3")).unwrap(), 3);
        for bad in [json!(10), json!(-1), json!("cat"), json!(1.5), json!(null)] {
            let err = digit("y_true", 4, &bad).unwrap_err();
            assert_eq!(err.status_code().as_u16(), 422);
            assert!(err.to_string().contains("y_true[4]"));
        }
        assert_eq!(predicted("p", 0, &json!({"prediccion": 5})).unwrap(), 5);
        assert!(predicted("p", 0, &json!({"x": 5})).is_err());
    }

    #[test]
    fn probability_rows_are_checked() {
        let row = json!([0.1, 0.9, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(probabilities(0, &row).unwrap()[1], 0.9);
        assert!(probabilities(0, &json!([0.5, 0.5])).is_err());
        assert!(probabilities(0, &json!([2, 0, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_value::<DataDriftBody>(json!({"current_data": [], "extra": 1}))
                .is_err()
        );
        assert!(serde_json::from_value::<MetricsBody>(json!({"y_true": [], "y_pred": []})).is_ok());
    }
}
