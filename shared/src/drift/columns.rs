//! Feature columns: what a drift comparison compares, from stored predictions or from
//! posted records, parsed once into values that cannot be invalid.
//!
//! The type rule for posted records (`POST /drift/data-drift`, `set-reference`): a
//! column whose present values are all JSON numbers is numeric; a column with any
//! string or boolean is categorical (numbers in it are read as their text);
//! `categorical_columns` makes a numeric column categorical, and `predicted_digit` is
//! always categorical. `null` and missing keys are skipped. An object or an array as a
//! value is refused (422), as is a column that is numeric in one window and categorical
//! in the other.

use crate::store::predictions::DriftFeatures;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The one categorical feature of a prediction.
pub const PREDICTED_DIGIT: &str = "predicted_digit";
/// Features of the upload itself: only a production reference can judge them (§6a).
pub const UPLOAD_LEVEL: [&str; 5] = [
    "raw_width",
    "raw_height",
    "mean_brightness",
    "ink_aspect_ratio",
    "ink_box_share",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numeric(Vec<f64>),
    Categorical(Vec<String>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Numeric(_) => "numeric",
            Self::Categorical(_) => "categorical",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Values,
}

/// The §6a features of stored predictions, one column each, in a fixed order.
pub fn from_features(features: &[DriftFeatures]) -> Vec<Column> {
    let mut columns: Vec<Column> = DriftFeatures::NUMERIC_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| Column {
            name: (*name).to_owned(),
            values: Values::Numeric(features.iter().map(|f| f.numeric()[i].1).collect()),
        })
        .collect();
    columns.push(Column {
        name: PREDICTED_DIGIT.to_owned(),
        values: Values::Categorical(
            features
                .iter()
                .map(|f| f.predicted_digit.to_string())
                .collect(),
        ),
    });
    columns
}

/// Why posted records cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    #[error("{field}[{row}] must be an object of feature values")]
    NotAnObject { field: &'static str, row: usize },
    #[error("{field}[{row}].{column} must be a number, a string, a boolean or null")]
    Nested {
        field: &'static str,
        row: usize,
        column: String,
    },
    #[error(
        "feature {column} is numeric in one window and categorical in the other; list it in categorical_columns"
    )]
    MixedKinds { column: String },
    #[error("feature_columns names {column}, which no record of the window has")]
    Unknown { column: String },
}

/// The columns of `records` (a posted `current_data`, say): `wanted` names them (all
/// keys of all records otherwise), `categorical` forces the kind.
pub fn from_records(
    field: &'static str,
    records: &[Value],
    wanted: Option<&[String]>,
    categorical: &BTreeSet<String>,
) -> Result<Vec<Column>, ColumnError> {
    let rows: Vec<&Map<String, Value>> = records
        .iter()
        .enumerate()
        .map(|(row, r)| r.as_object().ok_or(ColumnError::NotAnObject { field, row }))
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = match wanted {
        Some(names) => names.to_vec(),
        None => rows
            .iter()
            .flat_map(|r| r.keys().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let mut present = Vec::new();
        for (row, record) in rows.iter().enumerate() {
            match record.get(&name) {
                None | Some(Value::Null) => {}
                Some(Value::Array(_) | Value::Object(_)) => {
                    return Err(ColumnError::Nested {
                        field,
                        row,
                        column: name,
                    });
                }
                Some(value) => present.push(value),
            }
        }
        if present.is_empty() && wanted.is_some() {
            return Err(ColumnError::Unknown { column: name });
        }
        let all_numbers = present.iter().all(|v| v.is_number());
        let values = if all_numbers && !categorical.contains(&name) && name != PREDICTED_DIGIT {
            // serde_json reads only finite numbers, so every f64 here is finite.
            Values::Numeric(present.iter().filter_map(|v| v.as_f64()).collect())
        } else {
            Values::Categorical(
                present
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            )
        };
        columns.push(Column { name, values });
    }
    Ok(columns)
}

/// Pairs each current column with the reference column of the same name. A column
/// missing from the reference is `None` there; a column that is numeric on one side and
/// categorical on the other is refused.
pub fn pair<'a>(
    reference: &'a [Column],
    current: &'a [Column],
) -> Result<Vec<(&'a Column, Option<&'a Column>)>, ColumnError> {
    let by_name: BTreeMap<&str, &Column> = reference.iter().map(|c| (c.name.as_str(), c)).collect();
    current
        .iter()
        .map(|c| {
            let r = by_name.get(c.name.as_str()).copied();
            if let Some(r) = r
                && r.values.kind() != c.values.kind()
                && !(r.values.is_empty() || c.values.is_empty())
            {
                return Err(ColumnError::MixedKinds {
                    column: c.name.clone(),
                });
            }
            Ok((c, r))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_numeric_and_anything_else_categorical() {
        let records = vec![
            json!({"length": 12, "text": "a", "flag": true, "digit": 3}),
            json!({"length": 15.5, "text": "b", "flag": false, "digit": null}),
        ];
        let forced = BTreeSet::from(["digit".to_owned()]);
        let columns = from_records("current_data", &records, None, &forced).unwrap();
        let kinds: Vec<(&str, &str)> = columns
            .iter()
            .map(|c| (c.name.as_str(), c.values.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("digit", "categorical"),
                ("flag", "categorical"),
                ("length", "numeric"),
                ("text", "categorical")
            ]
        );
        assert_eq!(columns[0].values, Values::Categorical(vec!["3".into()]));
        assert_eq!(columns[2].values, Values::Numeric(vec![12.0, 15.5]));
    }

    #[test]
    fn bad_records_are_refused_with_their_place() {
        let forced = BTreeSet::new();
        let err = from_records("current_data", &[json!(1)], None, &forced).unwrap_err();
        assert_eq!(
            err.to_string(),
            "current_data[0] must be an object of feature values"
        );
        let err = from_records("current_data", &[json!({"a": [1]})], None, &forced).unwrap_err();
        assert!(err.to_string().contains("current_data[0].a"));
    }

    #[test]
    fn a_named_column_no_record_has_is_refused() {
        let forced = BTreeSet::new();
        let wanted = ["missing".to_owned()];
        let err =
            from_records("current_data", &[json!({"a": 1})], Some(&wanted), &forced).unwrap_err();
        assert!(matches!(err, ColumnError::Unknown { .. }), "{err}");
    }

    #[test]
    fn kinds_must_agree_between_windows() {
        let forced = BTreeSet::new();
        let r = from_records("reference_data", &[json!({"a": 1})], None, &forced).unwrap();
        let c = from_records("current_data", &[json!({"a": "x"})], None, &forced).unwrap();
        assert!(matches!(pair(&r, &c), Err(ColumnError::MixedKinds { .. })));
    }
}
