//! Training a model line end to end: augment the train split, train with the
//! hand-written trainer ([`super::nn`]), write ONNX, and measure the written
//! file with tract on the test split (metrics for the manifest, §6a features
//! for the drift reference). Deterministic given the seed: every random draw
//! comes from a [`Rng`] derived from (seed, purpose, index), and the gradient
//! of a batch is summed over a fixed number of shards in a fixed order, so the
//! machine's core count does not change a single bit.

use super::dataset::{Dataset, Split};
use super::infer::{Model, Prediction, entropy};
use super::nn::{Adam, Layer, Network, Rng};
use super::onnx;
use super::preprocess::{INPUT_LEN, InputFeatures, PREPROCESSING_ID, SIDE, preprocess_gray};
use crate::domain::{CLASSES, Line};
use crate::stats::SplitMetrics;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Instant;

/// What training needs to know of each line.
impl Line {
    /// The accuracy on the test split a shipped model of this line must reach.
    pub fn target_accuracy(self) -> f64 {
        match self {
            Line::V1 => 0.95,
            Line::V2 => 0.98,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Line::V1 => "MLP 784-256-10, ReLU",
            Line::V2 => {
                "CNN conv5x5x16-relu-maxpool2, conv3x3x32-relu-maxpool2, dense 1568-128-relu-10"
            }
        }
    }

    pub fn default_params(self, seed: u64) -> TrainParams {
        match self {
            Line::V1 => TrainParams {
                seed,
                epochs: 30,
                batch_size: 32,
                learning_rate: 1e-3,
                weight_decay: 1e-4,
                augmentation: Augmentation::default(),
            },
            Line::V2 => TrainParams {
                seed,
                epochs: 20,
                batch_size: 32,
                learning_rate: 1.5e-3,
                weight_decay: 1e-4,
                augmentation: Augmentation::default(),
            },
        }
    }
}

/// The layers of each line.
pub fn architecture(line: Line) -> Vec<Layer> {
    match line {
        Line::V1 => vec![
            Layer::Dense {
                inputs: INPUT_LEN,
                outputs: 256,
            },
            Layer::Relu { len: 256 },
            Layer::Dense {
                inputs: 256,
                outputs: CLASSES,
            },
        ],
        Line::V2 => vec![
            Layer::Conv {
                channels_in: 1,
                channels_out: 16,
                kernel: 5,
                height: 28,
                width: 28,
            },
            Layer::Relu { len: 16 * 28 * 28 },
            Layer::MaxPool {
                channels: 16,
                height: 28,
                width: 28,
            },
            Layer::Conv {
                channels_in: 16,
                channels_out: 32,
                kernel: 3,
                height: 14,
                width: 14,
            },
            Layer::Relu { len: 32 * 14 * 14 },
            Layer::MaxPool {
                channels: 32,
                height: 14,
                width: 14,
            },
            Layer::Dense {
                inputs: 32 * 7 * 7,
                outputs: 128,
            },
            Layer::Relu { len: 128 },
            Layer::Dense {
                inputs: 128,
                outputs: CLASSES,
            },
        ],
    }
}

/// Random distortions of the train split, drawn afresh every epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Augmentation {
    /// Rotation, uniform in ±degrees.
    pub rotation_degrees: f32,
    /// Horizontal shear factor, uniform in ±.
    pub shear: f32,
    /// Probability of thickening, and of thinning, the strokes.
    pub stroke_probability: f32,
    /// Shift after preprocessing, uniform in ±pixels.
    pub shift_pixels: i32,
}

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            rotation_degrees: 12.0,
            shear: 0.15,
            stroke_probability: 0.25,
            shift_pixels: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainParams {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's peak rate, cosine-annealed to 0 over the run.
    pub learning_rate: f32,
    /// Decoupled (AdamW) decay on weights, not biases.
    pub weight_decay: f32,
    pub augmentation: Augmentation,
}

/// Whether this crate was compiled with optimisations. Unoptimised, training
/// takes ~30× longer, so `cargo xtask train` re-runs itself optimised.
pub const OPTIMISED: bool = !cfg!(debug_assertions);

/// Shards per batch: fixed (not the core count) so results are bit-identical anywhere.
const SHARDS: usize = 2;
/// Canvas the augmented digit is drawn on, so rotated corners are not cut off.
const AUG_SIDE: usize = 36;

/// A model's input for a train or test image, without augmentation.
pub fn input_of(dataset: &Dataset, index: usize) -> [f32; INPUT_LEN] {
    // An MNIST digit always has ink; a blank input is what a failure would mean anyway.
    preprocess_gray(SIDE as u32, SIDE as u32, dataset.image(index))
        .map(|p| p.input)
        .unwrap_or([0.0; INPUT_LEN])
}

/// One augmented input: affine distortion and stroke width on the raw digit,
/// then the same preprocessing as inference, then a small shift.
pub fn augmented_input(image: &[u8], aug: &Augmentation, rng: &mut Rng) -> [f32; INPUT_LEN] {
    let angle = rng
        .range(-aug.rotation_degrees, aug.rotation_degrees)
        .to_radians();
    let shear = rng.range(-aug.shear, aug.shear);
    let (sin, cos) = angle.sin_cos();
    // Inverse of rotation·shear, applied to output coordinates around the centre.
    let (a, b, c, d) = (cos, sin, -sin, cos);
    let (cx_out, cx_in) = ((AUG_SIDE as f32 - 1.0) / 2.0, (SIDE as f32 - 1.0) / 2.0);
    let mut canvas = vec![0u8; AUG_SIDE * AUG_SIDE];
    for y in 0..AUG_SIDE {
        for x in 0..AUG_SIDE {
            let (px, py) = (x as f32 - cx_out, y as f32 - cx_out);
            let (rx, ry) = (a * px + b * py, c * px + d * py);
            let (sx, sy) = (rx - shear * ry + cx_in, ry + cx_in);
            canvas[y * AUG_SIDE + x] = bilinear(image, sx, sy);
        }
    }
    let roll = rng.uniform();
    if roll < aug.stroke_probability {
        canvas = morph(&canvas, |v| v.iter().copied().max().unwrap_or(0), 1.0);
    } else if roll < 2.0 * aug.stroke_probability {
        canvas = morph(&canvas, |v| v.iter().copied().min().unwrap_or(0), 0.5);
    }
    let input = match preprocess_gray(AUG_SIDE as u32, AUG_SIDE as u32, &canvas) {
        Ok(p) => p.input,
        Err(_) => preprocess_gray(SIDE as u32, SIDE as u32, image)
            .map(|p| p.input)
            .unwrap_or([0.0; INPUT_LEN]),
    };
    let span = 2 * aug.shift_pixels + 1;
    let dx = rng.below(span as usize) as i32 - aug.shift_pixels;
    let dy = rng.below(span as usize) as i32 - aug.shift_pixels;
    shift(&input, dx, dy)
}

fn bilinear(image: &[u8], x: f32, y: f32) -> u8 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= SIDE as f32 || yi >= SIDE as f32 {
            0.0
        } else {
            f32::from(image[yi as usize * SIDE + xi as usize])
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

/// A 2×2 morphological filter blended with the original by `weight`.
fn morph(canvas: &[u8], op: impl Fn(&[u8; 4]) -> u8, weight: f32) -> Vec<u8> {
    let n = AUG_SIDE;
    let mut out = canvas.to_vec();
    for y in 0..n - 1 {
        for x in 0..n - 1 {
            let i = y * n + x;
            let v = f32::from(op(&[
                canvas[i],
                canvas[i + 1],
                canvas[i + n],
                canvas[i + n + 1],
            ]));
            out[i] = (weight * v + (1.0 - weight) * f32::from(canvas[i])).round() as u8;
        }
    }
    out
}

fn shift(input: &[f32; INPUT_LEN], dx: i32, dy: i32) -> [f32; INPUT_LEN] {
    let mut out = [0.0; INPUT_LEN];
    for y in 0..SIDE as i32 {
        for x in 0..SIDE as i32 {
            let (sx, sy) = (x - dx, y - dy);
            if (0..SIDE as i32).contains(&sx) && (0..SIDE as i32).contains(&sy) {
                out[(y * SIDE as i32 + x) as usize] = input[(sy * SIDE as i32 + sx) as usize];
            }
        }
    }
    out
}

/// Trains a network of `line` on the train split. `progress` gets one line per epoch.
pub fn train(
    line: Line,
    params: &TrainParams,
    dataset: &Dataset,
    progress: impl FnMut(&str),
) -> Network {
    let mut rng = Rng::derive(params.seed, 0, 0);
    let net = Network::new(architecture(line), &mut rng);
    let samples: Vec<Sample> = dataset
        .indices(Split::Train)
        .into_iter()
        .map(Sample::Train)
        .collect();
    run_epochs(net, params, dataset, &[], &samples, progress)
}

/// A labelled input a retrain learns from beyond the train split: the 28×28 input a
/// prediction stored (already preprocessed, 0..=255 ink) and its true label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledInput {
    pub input: [u8; INPUT_LEN],
    pub label: u8,
}

/// Continues training `parent` (the line's production weights) on the train split plus
/// `feedback`, each feedback input counted `feedback_weight` times an epoch (see each
/// time with its own small shift): corrected production traffic is what the parent got
/// wrong, and a few hundred of them among 8,000 train images would barely move it.
/// Deterministic given `params.seed`, the dataset and `feedback` in its order.
pub fn fine_tune(
    parent: Network,
    params: &TrainParams,
    dataset: &Dataset,
    feedback: &[LabelledInput],
    feedback_weight: usize,
    progress: impl FnMut(&str),
) -> Network {
    let train = dataset.indices(Split::Train);
    fine_tune_on(
        parent,
        params,
        dataset,
        &train,
        feedback,
        feedback_weight,
        progress,
    )
}

/// [`fine_tune`] on the train images `train` only (tests use a few hundred).
pub(crate) fn fine_tune_on(
    parent: Network,
    params: &TrainParams,
    dataset: &Dataset,
    train: &[usize],
    feedback: &[LabelledInput],
    feedback_weight: usize,
    progress: impl FnMut(&str),
) -> Network {
    let mut samples: Vec<Sample> = train.iter().copied().map(Sample::Train).collect();
    for index in 0..feedback.len() {
        samples.extend((0..feedback_weight).map(|copy| Sample::Feedback { index, copy }));
    }
    run_epochs(parent, params, dataset, feedback, &samples, progress)
}

/// One sample of an epoch: a train-split image, or one copy of a feedback input.
#[derive(Debug, Clone, Copy)]
enum Sample {
    Train(usize),
    Feedback { index: usize, copy: usize },
}

impl Sample {
    fn input_and_label(
        self,
        params: &TrainParams,
        epoch: usize,
        dataset: &Dataset,
        feedback: &[LabelledInput],
    ) -> ([f32; INPUT_LEN], usize) {
        match self {
            Self::Train(index) => {
                let mut r = Rng::derive(params.seed, 2 + epoch as u64, index as u64);
                let x = augmented_input(dataset.image(index), &params.augmentation, &mut r);
                (x, usize::from(dataset.label(index)))
            }
            Self::Feedback { index, copy } => {
                // Stored inputs are already preprocessed: only the shift applies. The
                // stream is apart from the train images' (which use indices < 2^32).
                let key = (1u64 << 40) + ((index as u64) << 8) + copy as u64;
                let mut r = Rng::derive(params.seed, 2 + epoch as u64, key);
                let sample = &feedback[index];
                let mut input = [0.0f32; INPUT_LEN];
                for (x, &byte) in input.iter_mut().zip(sample.input.iter()) {
                    *x = f32::from(byte) / 255.0;
                }
                let span = 2 * params.augmentation.shift_pixels + 1;
                let dx = r.below(span as usize) as i32 - params.augmentation.shift_pixels;
                let dy = r.below(span as usize) as i32 - params.augmentation.shift_pixels;
                (shift(&input, dx, dy), usize::from(sample.label))
            }
        }
    }
}

/// AdamW over `samples` for `params.epochs`, shuffled per epoch, each batch's gradient
/// summed over [`SHARDS`] in a fixed order.
fn run_epochs(
    mut net: Network,
    params: &TrainParams,
    dataset: &Dataset,
    feedback: &[LabelledInput],
    samples: &[Sample],
    mut progress: impl FnMut(&str),
) -> Network {
    let mut adam = Adam::new(&net);
    let steps_per_epoch = samples.len().div_ceil(params.batch_size.max(1));
    let total_steps = (steps_per_epoch * params.epochs).max(1);
    let mut step = 0usize;
    for epoch in 0..params.epochs {
        let started = Instant::now();
        let mut order = samples.to_vec();
        Rng::derive(params.seed, 1, epoch as u64).shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for batch in order.chunks(params.batch_size.max(1)) {
            let shard_len = batch.len().div_ceil(SHARDS);
            let results: Vec<(Vec<f32>, f64, usize)> = std::thread::scope(|scope| {
                let handles: Vec<_> = batch
                    .chunks(shard_len)
                    .map(|shard| {
                        let net = &net;
                        scope.spawn(move || {
                            let mut grad = vec![0.0f32; net.params.len()];
                            let mut scratch = net.scratch();
                            let (mut loss, mut right) = (0.0f64, 0usize);
                            for &sample in shard {
                                let (x, label) =
                                    sample.input_and_label(params, epoch, dataset, feedback);
                                loss += f64::from(net.backward(&x, label, &mut scratch, &mut grad));
                                let logits = net.forward(&x, &mut scratch);
                                if argmax(logits) == label {
                                    right += 1;
                                }
                            }
                            (grad, loss, right)
                        })
                    })
                    .collect();
                // A panicking shard is a bug in the trainer itself; surface it.
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            let mut grad = vec![0.0f32; net.params.len()];
            for (g, l, r) in &results {
                for (a, b) in grad.iter_mut().zip(g) {
                    *a += b;
                }
                loss_sum += l;
                correct += r;
            }
            let scale = 1.0 / batch.len() as f32;
            grad.iter_mut().for_each(|g| *g *= scale);
            let t = step as f32 / total_steps as f32;
            let lr = params.learning_rate * 0.5 * (1.0 + (std::f32::consts::PI * t).cos());
            adam.update(&mut net.params, &grad, lr, params.weight_decay);
            step += 1;
        }
        progress(&format!(
            "epoch {:>2}/{}: loss {:.4}, train accuracy (augmented) {:.2} %, {:.1} s",
            epoch + 1,
            params.epochs,
            loss_sum / samples.len().max(1) as f64,
            100.0 * correct as f64 / samples.len().max(1) as f64,
            started.elapsed().as_secs_f64()
        ));
    }
    net
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// The DESIGN.md §6a features of every test image, column by column (the form
/// the drift tests consume), in the test split's order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reference {
    pub model: String,
    pub version: String,
    pub split: String,
    pub samples: usize,
    pub raw_width: Vec<u32>,
    pub raw_height: Vec<u32>,
    pub mean_brightness: Vec<f32>,
    pub ink_aspect_ratio: Vec<f32>,
    pub ink_box_share: Vec<f32>,
    pub input_mean: Vec<f32>,
    pub input_ink_ratio: Vec<f32>,
    pub top_probability: Vec<f32>,
    /// Entropy of the probabilities, nats.
    pub entropy: Vec<f32>,
    pub predicted_digit: Vec<u8>,
    /// The images' true labels, in the same order: what calibrates drift's label-free
    /// accuracy estimate (absent from references written before it was kept).
    #[serde(default)]
    pub true_label: Vec<u8>,
}

impl Reference {
    fn push(&mut self, f: &InputFeatures, p: &Prediction, true_label: u8) {
        self.raw_width.push(f.raw_width);
        self.raw_height.push(f.raw_height);
        self.mean_brightness.push(f.mean_brightness);
        self.ink_aspect_ratio.push(f.ink_aspect_ratio);
        self.ink_box_share.push(f.ink_box_share);
        self.input_mean.push(f.input_mean);
        self.input_ink_ratio.push(f.input_ink_ratio);
        self.top_probability.push(p.probability);
        self.entropy.push(entropy(&p.probabilities));
        self.predicted_digit.push(p.digit);
        self.true_label.push(true_label);
        self.samples += 1;
    }
}

/// Runs a loaded model over the test split: metrics and the drift reference.
pub fn evaluate(
    model: &Model,
    dataset: &Dataset,
) -> Result<(SplitMetrics, Reference), super::infer::InferError> {
    let mut pairs = Vec::new();
    let mut reference = Reference {
        split: "test".into(),
        ..Default::default()
    };
    for index in dataset.indices(Split::Test) {
        let Ok(pre) = preprocess_gray(SIDE as u32, SIDE as u32, dataset.image(index)) else {
            // Never for MNIST; counted as a miss rather than hidden.
            pairs.push((dataset.label(index), u8::MAX));
            continue;
        };
        let prediction = model.predict(&pre.input)?;
        reference.push(&pre.features, &prediction, dataset.label(index));
        pairs.push((dataset.label(index), prediction.digit));
    }
    // Misses (u8::MAX) are not in the matrix, but count against accuracy.
    Ok((SplitMetrics::from_pairs("test", pairs), reference))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub source: String,
    pub sha256: String,
    pub split: String,
    pub train_samples: usize,
    pub test_samples: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// `models/<line>/manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub line: Line,
    pub architecture: String,
    pub parameters: usize,
    pub input: TensorInfo,
    pub output: TensorInfo,
    /// The input is `preprocessing` of the image, values 0..=1, 1 = ink.
    pub preprocessing: String,
    /// sha256 of `model.onnx`.
    pub sha256: String,
    pub size_bytes: usize,
    pub training: TrainParams,
    pub trainer: String,
    pub dataset: DatasetInfo,
    pub metrics: SplitMetrics,
    /// The version this one was fine-tuned from (retrains only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// A retrain's job, data counts and gate report (retrains only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain: Option<serde_json::Value>,
}

pub struct Artifacts {
    pub onnx: Vec<u8>,
    pub manifest: Manifest,
    pub reference: Reference,
}

/// Trains, writes ONNX, and measures the written bytes with tract.
pub fn build(
    line: Line,
    params: &TrainParams,
    version: &str,
    dataset: &Dataset,
    progress: impl FnMut(&str),
) -> Result<Artifacts, super::infer::InferError> {
    let net = train(line, params, dataset, progress);
    package(&net, line, params, version, dataset)
}

/// A trained network as a version's files: the ONNX file, and, measured with tract on
/// the test split as predict serves it (NNEF), the manifest's metrics and the drift
/// reference. What `build` and a retrain both end with.
pub fn package(
    net: &Network,
    line: Line,
    params: &TrainParams,
    version: &str,
    dataset: &Dataset,
) -> Result<Artifacts, super::infer::InferError> {
    let doc = format!(
        "inferloop mnist {version} ({}), seed {}",
        line.description(),
        params.seed
    );
    let onnx = onnx::to_onnx(net, [1, SIDE, SIDE], &doc);
    // Measured as predict serves it.
    let model = Model::load(&super::infer::onnx_to_nnef(&onnx)?)?;
    let (metrics, mut reference) = evaluate(&model, dataset)?;
    reference.model = "mnist".into();
    reference.version = version.into();
    let manifest = Manifest {
        name: "mnist".into(),
        version: version.into(),
        line,
        architecture: line.description().into(),
        parameters: net.params.len(),
        input: TensorInfo {
            name: onnx::INPUT_NAME.into(),
            dtype: "float32".into(),
            shape: vec![1, 1, SIDE, SIDE],
        },
        output: TensorInfo {
            name: onnx::OUTPUT_NAME.into(),
            dtype: "float32".into(),
            shape: vec![1, CLASSES],
        },
        preprocessing: PREPROCESSING_ID.into(),
        sha256: hex::encode(Sha256::digest(&onnx)),
        size_bytes: onnx.len(),
        training: params.clone(),
        trainer:
            "inferloop::model::nn (hand-written, softmax cross-entropy, AdamW, cosine schedule)"
                .into(),
        dataset: DatasetInfo {
            source: format!("npm {}", super::dataset::PACKAGE),
            sha256: dataset.sha256.clone(),
            split: "per digit, the first floor(0.8 n) samples in file order train, the rest test"
                .into(),
            train_samples: dataset.indices(Split::Train).len(),
            test_samples: dataset.indices(Split::Test).len(),
        },
        metrics,
        parent: None,
        retrain: None,
    };
    Ok(Artifacts {
        onnx,
        manifest,
        reference,
    })
}

/// A photo-like rendering of a dataset digit, as users send them: dark ink on
/// lighter (often grey) paper, a canvas of 64–512 px per side, the digit at a
/// random size and off-centre, a little sensor noise, encoded as PNG or JPEG.
/// Used to test the whole decode → preprocess → infer path, and by benchmarks.
pub fn user_like_image(dataset: &Dataset, index: usize, rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let width = 64 + rng.below(449);
    let height = 64 + rng.below(449);
    let short = width.min(height) as f32;
    // MNIST's digits fill ~20 of 28 px: scale so the digit is 25–80 % of the short side.
    let scale = (rng.range(0.25, 0.8) * short / 20.0).min(short / SIDE as f32);
    let side = SIDE as f32 * scale;
    let ox = rng.range(0.0, width as f32 - side);
    let oy = rng.range(0.0, height as f32 - side);
    let paper = rng.range(170.0, 250.0);
    let ink = rng.range(10.0, 90.0);
    let image = dataset.image(index);
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let sx = (x as f32 + 0.5 - ox) / scale - 0.5;
            let sy = (y as f32 + 0.5 - oy) / scale - 0.5;
            let v = f32::from(bilinear(image, sx, sy)) / 255.0;
            let noise = rng.range(-6.0, 6.0);
            pixels.push(
                (paper - v * (paper - ink) + noise)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    let Some(gray) = image::GrayImage::from_raw(width as u32, height as u32, pixels) else {
        return (Vec::new(), "none");
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let format = if rng.uniform() < 0.5 {
        let quality = 70 + rng.below(21) as u8;
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        gray.write_with_encoder(encoder).map(|()| "jpeg")
    } else {
        gray.write_to(&mut out, image::ImageFormat::Png)
            .map(|()| "png")
    };
    match format {
        Ok(name) => (out.into_inner(), name),
        Err(_) => (Vec::new(), "none"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmentation_is_deterministic_and_keeps_the_digit() {
        let mut image = vec![0u8; 784];
        for y in 4..24 {
            for x in 12..16 {
                image[y * 28 + x] = 255;
            }
        }
        let aug = Augmentation::default();
        let a = augmented_input(&image, &aug, &mut Rng::derive(7, 2, 3));
        let b = augmented_input(&image, &aug, &mut Rng::derive(7, 2, 3));
        assert_eq!(a, b);
        let mass: f32 = a.iter().sum();
        assert!(mass > 20.0, "{mass}");
    }
}
