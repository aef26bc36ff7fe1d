//! The two references of a version (DESIGN.md §6a): the test-split one written when the
//! version is registered (`reference.json` beside the model), and the production one,
//! captured from its first production predictions or set by an admin, stored in S3 at
//! `references/<model>/<version>/production.json`.

use super::columns::{Column, PREDICTED_DIGIT, Values};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use inferloop_preprocess::INPUT_LEN;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `reference.json` as the trainer writes it: the §6a features of every test image,
/// column by column (shared/src/model/train.rs `Reference`, read here without the model
/// feature).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TestSplitReference {
    pub model: String,
    pub version: String,
    pub samples: usize,
    pub raw_width: Vec<f64>,
    pub raw_height: Vec<f64>,
    pub mean_brightness: Vec<f64>,
    pub ink_aspect_ratio: Vec<f64>,
    pub ink_box_share: Vec<f64>,
    pub input_mean: Vec<f64>,
    pub input_ink_ratio: Vec<f64>,
    pub top_probability: Vec<f64>,
    pub entropy: Vec<f64>,
    pub predicted_digit: Vec<u8>,
    /// The test images' true labels, in the same order (what calibrates the label-free
    /// estimate); absent from references written before it was kept.
    #[serde(default)]
    pub true_label: Vec<u8>,
}

impl TestSplitReference {
    pub fn columns(&self) -> Vec<Column> {
        let numeric = |name: &str, values: &[f64]| Column {
            name: name.to_owned(),
            values: Values::Numeric(values.to_vec()),
        };
        vec![
            numeric("raw_width", &self.raw_width),
            numeric("raw_height", &self.raw_height),
            numeric("mean_brightness", &self.mean_brightness),
            numeric("ink_aspect_ratio", &self.ink_aspect_ratio),
            numeric("ink_box_share", &self.ink_box_share),
            numeric("input_mean", &self.input_mean),
            numeric("input_ink_ratio", &self.input_ink_ratio),
            numeric("top_probability", &self.top_probability),
            numeric("entropy", &self.entropy),
            Column {
                name: PREDICTED_DIGIT.to_owned(),
                values: Values::Categorical(
                    self.predicted_digit.iter().map(u8::to_string).collect(),
                ),
            },
        ]
    }
}

/// How a production reference came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The version's first `reference_size` production predictions.
    FirstPredictions,
    /// An admin's `POST /drift/set-reference` with a production window.
    Window,
    /// An admin's `POST /drift/set-reference` with records.
    Records,
}

/// A production reference, stored columnwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductionReference {
    pub model: String,
    pub version: String,
    pub line: String,
    pub source: Source,
    pub captured_at: String,
    pub n: usize,
    /// The first and last prediction times it covers (for a window or a capture).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    pub numeric: BTreeMap<String, Vec<f64>>,
    pub categorical: BTreeMap<String, Vec<String>>,
    /// The predictions' preprocessed inputs (784 bytes each), concatenated, in base64:
    /// what the multivariate check fits its components on. A JSON array of them would be
    /// three times the size. Empty for a reference set from records, which have none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub inputs: String,
}

impl ProductionReference {
    pub fn key(model: &str, version: &str) -> String {
        format!("references/{model}/{version}/production.json")
    }

    /// `inputs` as [`ProductionReference::inputs`] keeps them.
    pub fn encode_inputs(inputs: &[&[u8; INPUT_LEN]]) -> String {
        STANDARD.encode(
            inputs
                .iter()
                .flat_map(|input| input.iter().copied())
                .collect::<Vec<u8>>(),
        )
    }

    /// The stored inputs; none when there are none or they do not decode whole.
    pub fn inputs(&self) -> Vec<[u8; INPUT_LEN]> {
        let Ok(bytes) = STANDARD.decode(&self.inputs) else {
            return Vec::new();
        };
        if bytes.len() % INPUT_LEN != 0 {
            return Vec::new();
        }
        bytes
            .chunks_exact(INPUT_LEN)
            .filter_map(|chunk| chunk.try_into().ok())
            .collect()
    }

    pub fn columns(&self) -> Vec<Column> {
        let mut columns: Vec<Column> = self
            .numeric
            .iter()
            .map(|(name, v)| Column {
                name: name.clone(),
                values: Values::Numeric(v.clone()),
            })
            .collect();
        columns.extend(self.categorical.iter().map(|(name, v)| Column {
            name: name.clone(),
            values: Values::Categorical(v.clone()),
        }));
        columns
    }

    pub fn split_columns(
        columns: Vec<Column>,
    ) -> (BTreeMap<String, Vec<f64>>, BTreeMap<String, Vec<String>>) {
        let (mut numeric, mut categorical) = (BTreeMap::new(), BTreeMap::new());
        for column in columns {
            match column.values {
                Values::Numeric(v) => {
                    numeric.insert(column.name, v);
                }
                Values::Categorical(v) => {
                    categorical.insert(column.name, v);
                }
            }
        }
        (numeric, categorical)
    }
}

/// What an answer says about the reference it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceSummary {
    /// `production`, `test_split` or `posted`.
    pub kind: &'static str,
    pub model: Option<String>,
    pub version: Option<String>,
    pub n: usize,
    pub captured_at: Option<String>,
    pub source: Option<Source>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_test_split_references_read_as_columns() {
        for raw in [
            include_str!("../../../models/v1/reference.json"),
            include_str!("../../../models/v2/reference.json"),
        ] {
            let reference: TestSplitReference = serde_json::from_str(raw).unwrap();
            let columns = reference.columns();
            assert_eq!(columns.len(), 10);
            assert!(columns.iter().all(|c| c.values.len() == reference.samples));
        }
    }

    #[test]
    fn production_references_round_trip_columnwise() {
        let (numeric, categorical) = ProductionReference::split_columns(vec![
            Column {
                name: "a".into(),
                values: Values::Numeric(vec![1.0, 2.0]),
            },
            Column {
                name: "d".into(),
                values: Values::Categorical(vec!["1".into(), "2".into()]),
            },
        ]);
        let reference = ProductionReference {
            model: "mnist".into(),
            version: "v1.0".into(),
            line: "v1".into(),
            source: Source::Records,
            captured_at: "2026-12-02T00:00:00.000000Z".into(),
            n: 2,
            from: None,
            to: None,
            numeric,
            categorical,
            inputs: String::new(),
        };
        let back: ProductionReference =
            serde_json::from_str(&serde_json::to_string(&reference).unwrap()).unwrap();
        assert_eq!(back, reference);
        assert_eq!(back.columns().len(), 2);
        assert!(back.inputs().is_empty());
        let (mut a, mut b) = ([0u8; INPUT_LEN], [0u8; INPUT_LEN]);
        a[400] = 255;
        b[0] = 7;
        let with_inputs = ProductionReference {
            inputs: ProductionReference::encode_inputs(&[&a, &b]),
            ..reference
        };
        let back: ProductionReference =
            serde_json::from_str(&serde_json::to_string(&with_inputs).unwrap()).unwrap();
        assert_eq!(back.inputs(), vec![a, b]);
        let damaged = ProductionReference {
            inputs: "AAAA".into(),
            ..back
        };
        assert!(damaged.inputs().is_empty(), "3 bytes are not one input");
        assert_eq!(
            ProductionReference::key("mnist", "v1.0"),
            "references/mnist/v1.0/production.json"
        );
    }
}
