//! Running a model with tract.
//!
//! Both lines take the same input, `float32 [1, 1, 28, 28]` in 0..=1 (the output
//! of [`crate::model::preprocess`]), and return `logits [1, 10]`; softmax is done
//! here so the probabilities are computed one way for every line.
//!
//! A model is made and shipped as ONNX; predict serves its NNEF form, which
//! [`onnx_to_nnef`] writes when the version is published: the ONNX graph read by
//! tract, the batch pinned to 1 (DESIGN.md §7 measured ~35 % faster than a symbolic
//! batch) and decluttered. Serving NNEF means predict links tract-core and the NNEF
//! reader but not tract's ONNX and inference-analysis layers: a smaller package
//! (docs/benchmarks.md).

use super::preprocess::{INPUT_LEN, SIDE};
use tract_nnef::prelude::*;

/// The input shape every line is loaded with.
pub const INPUT_SHAPE: [usize; 4] = [1, 1, SIDE, SIDE];
/// Number of classes (digits).
use crate::domain::CLASSES;

type Plan = Arc<TypedRunnableModel>;

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("the model could not be loaded: {0}")]
    Load(String),
    #[error("the model failed to run: {0}")]
    Run(String),
    #[error("the model returned {0} values instead of {CLASSES}")]
    BadOutput(usize),
}

/// One model's answer for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub digit: u8,
    pub probability: f32,
    pub probabilities: [f32; CLASSES],
}

impl Prediction {
    /// Entropy of the probabilities in nats (DESIGN.md §6a output feature).
    pub fn entropy(&self) -> f32 {
        entropy(&self.probabilities)
    }
}

/// A loaded, optimised model, ready to run; cheap to share behind an `Arc`.
pub struct Model {
    plan: Plan,
    timings: LoadTimings,
}

/// How long [`Model::load`] took, by phase: the registry logs it with every load, and
/// the cold-start benchmark reads it from that log line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadTimings {
    /// Parsing the NNEF tar into a typed model.
    pub read: std::time::Duration,
    /// tract's optimisation into the runnable plan.
    pub optimise: std::time::Duration,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").finish_non_exhaustive()
    }
}

impl Model {
    /// Loads a model's NNEF form (an uncompressed tar, as [`onnx_to_nnef`] writes it),
    /// whose input must be `float32 [1, 1, 28, 28]`, and optimises it.
    pub fn load(nnef_tar: &[u8]) -> Result<Self, InferError> {
        let load = || -> TractResult<(Plan, LoadTimings)> {
            let started = std::time::Instant::now();
            let model = nnef_reader().model_for_read(&mut std::io::Cursor::new(nnef_tar))?;
            let input = model.input_fact(0)?;
            if input.datum_type != f32::datum_type()
                || input.shape.as_concrete() != Some(&INPUT_SHAPE[..])
            {
                return Err(TractError::msg(format!(
                    "the model's input is {input:?}, not f32 {INPUT_SHAPE:?}"
                )));
            }
            let read = started.elapsed();
            let plan = model.into_optimized()?.into_runnable()?;
            let optimise = started.elapsed() - read;
            Ok((plan, LoadTimings { read, optimise }))
        };
        load()
            .map(|(plan, timings)| Self { plan, timings })
            .map_err(|e| InferError::Load(format!("{e:#}")))
    }

    /// How long loading this model took.
    pub fn load_timings(&self) -> LoadTimings {
        self.timings
    }

    /// The raw output (logits) for one input.
    pub fn logits(&self, input: &[f32; INPUT_LEN]) -> Result<[f32; CLASSES], InferError> {
        let tensor = Tensor::from_shape(&INPUT_SHAPE, input)
            .map_err(|e| InferError::Run(format!("{e:#}")))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| InferError::Run(format!("{e:#}")))?;
        let output = outputs.first().ok_or(InferError::BadOutput(0))?;
        let first = output
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>())
            .map_err(|e| InferError::Run(format!("{e:#}")))?;
        <[f32; CLASSES]>::try_from(first).map_err(|_| InferError::BadOutput(first.len()))
    }

    /// Probabilities and the most likely digit for one input.
    pub fn predict(&self, input: &[f32; INPUT_LEN]) -> Result<Prediction, InferError> {
        Ok(Prediction::from_logits(&self.logits(input)?))
    }
}

/// tract's NNEF reader, built once per process. Building it (tract's operation
/// registries, NNEF's standard library parsed) was most of what reading a model cost at
/// cold start (docs/benchmarks.md); built once, and early by [`prepare_reader`], it
/// costs a load nothing.
fn nnef_reader() -> &'static tract_nnef::internal::Nnef {
    static READER: std::sync::OnceLock<tract_nnef::internal::Nnef> = std::sync::OnceLock::new();
    READER.get_or_init(|| {
        use tract_nnef::internal::*;
        // `tract_nnef::nnef()` (tract-nnef 0.23's `Nnef::default`) but for its `stdlib`
        // list, which only writing reads (`ops/nnef/ser.rs`): the operation registry
        // parses and keeps its own copy for reading, so parsing it a second time here
        // would only cost start-up time. The shipped-model tests read through this.
        Nnef {
            stdlib: Vec::new(),
            registries: vec![tract_nnef::ops::tract_nnef(), tract_nnef::ops::tract_core()],
            resource_loaders: vec![
                GraphNnefLoader.into_boxed(),
                DatLoader.into_boxed(),
                GraphQuantLoader.into_boxed(),
                TypedModelLoader::new(false).into_boxed(),
            ],
            allow_extended_identifier_syntax: false,
            extern_all_constants: false,
        }
    })
}

/// Builds the NNEF reader now, unless it is built already, and says how long that took.
/// CPU work: call it off the async workers, e.g. while a model downloads; a load that
/// starts meanwhile waits for it rather than building a second one.
pub fn prepare_reader() -> std::time::Duration {
    let started = std::time::Instant::now();
    nnef_reader();
    started.elapsed()
}

/// The NNEF form predict serves, from ONNX bytes: the input pinned to
/// `[1, 1, 28, 28]`, the graph typed and decluttered, written as a tar with fixed
/// timestamps so the same ONNX file always gives the same bytes (and sha256).
#[cfg(feature = "train")]
pub fn onnx_to_nnef(onnx_bytes: &[u8]) -> Result<Vec<u8>, InferError> {
    use tract_onnx::prelude::{Framework, InferenceModelExt};
    let convert = || -> TractResult<Vec<u8>> {
        let model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx_bytes))?
            .with_input_fact(0, f32::fact(INPUT_SHAPE).into())?
            .into_typed()?
            .into_decluttered()?;
        tract_nnef::nnef().write_to_tar_with_config(&model, Vec::new(), false, true)
    };
    convert().map_err(|e| InferError::Load(format!("{e:#}")))
}

impl Prediction {
    pub fn from_logits(logits: &[f32; CLASSES]) -> Self {
        Self::from_probabilities(&softmax(logits))
    }

    /// The answer for probabilities already computed (a cached prediction).
    pub fn from_probabilities(probabilities: &[f32; CLASSES]) -> Self {
        let probabilities = *probabilities;
        let (digit, probability) = probabilities.iter().copied().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |best, (i, p)| {
                if p > best.1 { (i, p) } else { best }
            },
        );
        Self {
            digit: digit as u8,
            probability,
            probabilities,
        }
    }
}

/// Numerically stable softmax (the largest logit is subtracted first).
pub fn softmax(logits: &[f32; CLASSES]) -> [f32; CLASSES] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out = [0.0f32; CLASSES];
    let mut total = 0.0f32;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l - max).exp();
        total += *o;
    }
    if total.is_finite() && total > 0.0 {
        out.iter_mut().for_each(|o| *o /= total);
    } else {
        // Non-finite logits: say "no idea" rather than NaN.
        out = [1.0 / CLASSES as f32; CLASSES];
    }
    out
}

/// Shannon entropy in nats; 0 for a certain answer, ln 10 ≈ 2.303 for a uniform one.
pub fn entropy(probabilities: &[f32]) -> f32 {
    probabilities
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| -p * p.ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 0.0, -1000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > 0.999);
        let nan = softmax(&[f32::NAN; CLASSES]);
        assert!(nan.iter().all(|v| (v - 0.1).abs() < 1e-6));
        assert!((entropy(&[0.1; 10]) - 10f32.ln()).abs() < 1e-5);
        assert_eq!(entropy(&[1.0, 0.0]), 0.0);
    }

    #[test]
    fn garbage_is_a_load_error() {
        assert!(matches!(
            Model::load(b"not a model"),
            Err(InferError::Load(_))
        ));
        assert!(matches!(Model::load(&[]), Err(InferError::Load(_))));
    }

    #[cfg(feature = "train")]
    #[test]
    fn onnx_garbage_is_refused_and_conversion_is_deterministic() {
        use crate::domain::Line;
        use crate::model::nn::{Network, Rng};
        use crate::model::train::architecture;
        assert!(matches!(
            onnx_to_nnef(b"not onnx"),
            Err(InferError::Load(_))
        ));
        let net = Network::new(architecture(Line::V2), &mut Rng::new(7));
        let onnx = crate::model::onnx::to_onnx(&net, [1, SIDE, SIDE], "test");
        let nnef = onnx_to_nnef(&onnx).unwrap();
        assert_eq!(nnef, onnx_to_nnef(&onnx).unwrap(), "same ONNX, other bytes");
        Model::load(&nnef).unwrap();
    }
}
