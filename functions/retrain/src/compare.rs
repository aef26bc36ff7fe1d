//! What a candidate and production are judged on, the same for both (DESIGN.md §11):
//! the base test split (the dataset in S3 `datasets/`) and the feedback hold-out (the
//! fifth of the labelled feedback chosen by a hash of the prediction id); and a
//! version's model, read from S3 and checked against its registered sha256. The worker
//! judges a run's candidate with these, the promote route a staging version.

use crate::App;
use inferloop::gate::PairedPredictions;
use inferloop::model::dataset::{self, Dataset, Split};
use inferloop::model::infer::{Model, onnx_to_nnef};
use inferloop::model::preprocess::INPUT_LEN;
use inferloop::model::registry::{self, ONNX_FILE};
use inferloop::model::retrain::in_holdout;
use inferloop::model::train::{self, LabelledInput};
use inferloop::store::models::ModelVersion;
use inferloop::time::format_timestamp;

/// Why a step could not be done.
#[derive(Debug)]
pub enum Stop {
    /// It cannot succeed as things are (no production version, a file that does not
    /// match its hash, a dataset that does not parse).
    Job(String),
    /// A dependency failed: trying again later may succeed.
    Dependency(String),
}

impl<E: std::fmt::Display> From<E> for Stop {
    fn from(err: E) -> Self {
        Self::Dependency(err.to_string())
    }
}

impl Stop {
    /// As a route answers it: a dependency's failure is a 503, the rest a 500 (logged,
    /// never shown).
    pub fn into_api(self) -> inferloop::ApiError {
        match self {
            Self::Job(detail) => inferloop::ApiError::Internal(detail),
            Self::Dependency(detail) => inferloop::ApiError::dependency(detail),
        }
    }
}

pub async fn get_object(app: &App, key: &str) -> Result<Vec<u8>, Stop> {
    let out = app
        .s3
        .get_object()
        .bucket(&app.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            Stop::Dependency(format!("s3 {key}: {}", inferloop::error::error_chain(&e)))
        })?;
    let bytes = out.body.collect().await?;
    Ok(bytes.into_bytes().to_vec())
}

/// `version`'s ONNX file, checked against the sha256 it was registered with.
pub async fn version_onnx(app: &App, version: &ModelVersion) -> Result<Vec<u8>, Stop> {
    let onnx = get_object(app, &format!("{}{ONNX_FILE}", version.artifact_prefix)).await?;
    let actual = registry::sha256_hex(&onnx);
    if actual != version.sha256 {
        return Err(Stop::Job(format!(
            "{}'s model.onnx has sha256 {actual}, registered as {}",
            version.version, version.sha256
        )));
    }
    Ok(onnx)
}

/// An ONNX file as predict serves it (its NNEF form, through tract).
pub fn load_model(onnx: &[u8]) -> Result<Model, Stop> {
    onnx_to_nnef(onnx)
        .and_then(|nnef| Model::load(&nnef))
        .map_err(|e| Stop::Job(e.to_string()))
}

pub async fn base_dataset(app: &App) -> Result<Dataset, Stop> {
    dataset::parse(&get_object(app, dataset::BUCKET_KEY).await?)
        .map_err(|e| Stop::Job(e.to_string()))
}

/// The labelled feedback, split by hash of the prediction id.
#[derive(Debug, Clone, Default)]
pub struct Feedback {
    pub train: Vec<LabelledInput>,
    pub holdout: Vec<LabelledInput>,
    /// Labelled feedback whose prediction (and its input) has expired.
    pub without_input: usize,
}

/// Every feedback of the last 90 days whose true digit is known, with its stored
/// input. All of it, whatever line or version it was given on: both lines read the
/// same preprocessed 28×28 input, so a labelled digit teaches either.
pub async fn labelled_feedback(app: &App) -> Result<Feedback, Stop> {
    let now = app.now();
    let labelled = app
        .feedback
        .labelled(
            &format_timestamp(now - time::Duration::days(inferloop::autoretrain::FEEDBACK_DAYS)),
            &format_timestamp(now),
        )
        .await?;
    let ids: Vec<String> = labelled.iter().map(|(id, _)| id.clone()).collect();
    let inputs = app.predictions.inputs(&ids).await?;
    let mut feedback = Feedback::default();
    for (id, label) in labelled {
        let Some(input) = inputs.get(&id) else {
            feedback.without_input += 1;
            continue;
        };
        let sample = LabelledInput {
            input: *input,
            label,
        };
        if in_holdout(&id) {
            feedback.holdout.push(sample);
        } else {
            feedback.train.push(sample);
        }
    }
    Ok(feedback)
}

fn dequantised(sample: &LabelledInput) -> [f32; INPUT_LEN] {
    std::array::from_fn(|i| f32::from(sample.input[i]) / 255.0)
}

fn digits(model: &Model, samples: &[LabelledInput]) -> Result<Vec<u8>, Stop> {
    samples
        .iter()
        .map(|sample| {
            model
                .predict(&dequantised(sample))
                .map(|p| p.digit)
                .map_err(|e| Stop::Job(format!("inference: {e}")))
        })
        .collect()
}

/// Production's and the candidate's answers on the base test split and on the
/// hold-out, paired, for the gate. CPU-bound: call it off the async threads.
pub fn paired(
    production: &Model,
    candidate: &Model,
    data: &Dataset,
    holdout: &[LabelledInput],
) -> Result<(PairedPredictions, PairedPredictions), Stop> {
    let test_digits = |model: &Model| {
        train::evaluate(model, data)
            .map(|(_, reference)| reference.predicted_digit)
            .map_err(|e| Stop::Job(e.to_string()))
    };
    let labels: Vec<u8> = data
        .indices(Split::Test)
        .into_iter()
        .map(|i| data.label(i))
        .collect();
    let base = PairedPredictions::new(labels, test_digits(production)?, test_digits(candidate)?)
        .map_err(|e| Stop::Job(format!("the test split's answers: {e}")))?;
    let holdout = PairedPredictions::new(
        holdout.iter().map(|s| s.label).collect(),
        digits(production, holdout)?,
        digits(candidate, holdout)?,
    )
    .map_err(|e| Stop::Job(format!("the hold-out's answers: {e}")))?;
    Ok((base, holdout))
}
