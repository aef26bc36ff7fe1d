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
pub const CLASSES: usize = 10;

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
        let load = || -> TractResult<Plan> {
            let model = tract_nnef::nnef().model_for_read(&mut std::io::Cursor::new(nnef_tar))?;
            let input = model.input_fact(0)?;
            if input.datum_type != f32::datum_type()
                || input.shape.as_concrete() != Some(&INPUT_SHAPE[..])
            {
                return Err(TractError::msg(format!(
                    "the model's input is {input:?}, not f32 {INPUT_SHAPE:?}"
                )));
            }
            model.into_optimized()?.into_runnable()
        };
        load()
            .map(|plan| Self { plan })
            .map_err(|e| InferError::Load(format!("{e:#}")))
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
        use crate::model::nn::{Network, Rng};
        use crate::model::train::{Line, architecture};
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
