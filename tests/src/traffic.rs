//! Production-like traffic for the drift tests and bench: user-like photos of test-split
//! digits (grey paper, 64–512 px canvases, off-centre, PNG or JPEG) through the real
//! preprocessing and a shipped model, stored as predict stores them.
//!
//! Rendering and decoding a photo costs milliseconds, so a pool is made once per test
//! binary (on both cores), kept in a file beside the binary for the binary's other
//! processes (nextest runs each test in a process of its own), and windows are drawn
//! from it.

use inferloop::model::dataset::Split;
use inferloop::model::infer::{Model, onnx_to_nnef};
use inferloop::model::nn::Rng;
use inferloop::model::{preprocess, train};
use inferloop::store::predictions::{DriftFeatures, PredictionRecord, PredictionStore};
use std::sync::OnceLock;

/// One photo's prediction: what predict stores, and the digit's true label.
#[derive(Debug, Clone)]
pub struct Photo {
    pub true_label: u8,
    pub features: DriftFeatures,
    pub probabilities: [f32; 10],
    pub input: [u8; 784],
}

/// The shipped model of `line`, loaded as predict serves it (NNEF).
pub fn shipped_model(line: &str) -> Model {
    let onnx = std::fs::read(crate::root().join("models").join(line).join("model.onnx"))
        .expect("the shipped model");
    Model::load(&onnx_to_nnef(&onnx).expect("ONNX to NNEF")).expect("the model loads")
}

/// Photos of the test-split digits at `positions` (indices into the split), rendered
/// with `stream`'s randomness by `train::user_like_image` and read by `model`; positions
/// whose photo does not preprocess (almost never) are skipped.
pub fn photos(model: &Model, positions: &[usize], stream: u64) -> Vec<Photo> {
    let data = crate::digits();
    let test = data.indices(Split::Test);
    read_all(model, positions, |position| {
        let index = test[position % test.len()];
        let mut rng = Rng::derive(stream, 11, position as u64);
        let (bytes, _) = train::user_like_image(data, index, &mut rng);
        (bytes, data.label(index))
    })
}

/// Each position's photo (its bytes and true label) through the real preprocessing and
/// `model`, on two threads (the machine's two cores), in order.
fn read_all(
    model: &Model,
    positions: &[usize],
    photo_of: impl Fn(usize) -> (Vec<u8>, u8) + Sync,
) -> Vec<Photo> {
    let one = |position: usize| -> Option<Photo> {
        let (bytes, true_label) = photo_of(position);
        let pre = preprocess::preprocess_bytes(&bytes).ok()?;
        let prediction = model.predict(&pre.input).ok()?;
        Some(Photo {
            true_label,
            features: DriftFeatures {
                input: pre.features,
                top_probability: prediction.probability,
                entropy: prediction.entropy(),
                predicted_digit: prediction.digit,
            },
            probabilities: prediction.probabilities,
            input: pre.input_bytes(),
        })
    };
    let (first, second) = positions.split_at(positions.len() / 2);
    std::thread::scope(|scope| {
        let a = scope.spawn(|| first.iter().filter_map(|&p| one(p)).collect::<Vec<_>>());
        let b: Vec<Photo> = second.iter().filter_map(|&p| one(p)).collect();
        let mut a = a.join().expect("the rendering thread");
        a.extend(b);
        a
    })
}

/// The v1 pool every drift test draws from: the first 1,000 test-split positions
/// (even ones for references, odd ones for windows), rendered once per build of the
/// test binary.
pub fn pool() -> &'static [Photo] {
    static POOL: OnceLock<Vec<Photo>> = OnceLock::new();
    POOL.get_or_init(|| {
        cached(|| {
            let model = shipped_model("v1");
            let positions: Vec<usize> = (0..1000).collect();
            photos(&model, &positions, 20_261_202)
        })
    })
}

/// A photo as the pool file keeps it (serde has no impls for arrays of 784).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPhoto {
    true_label: u8,
    features: DriftFeatures,
    probabilities: Vec<f32>,
    input: Vec<u8>,
}

/// The pool file's contents: the binary it was made by (its length and modification
/// time, so a rebuild, which may render differently, makes a new pool) and the photos.
#[derive(serde::Serialize, serde::Deserialize)]
struct PoolFile {
    made_by: String,
    photos: Vec<StoredPhoto>,
}

/// `make()`'s photos, or the ones a process of this same binary made before. The file
/// is written to a temporary name and renamed, so a reader never sees half of it; two
/// processes starting together may both render, and the last rename wins.
fn cached(make: impl FnOnce() -> Vec<Photo>) -> Vec<Photo> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let made_by = std::fs::metadata(&exe)
        .and_then(|m| Ok(format!("{} {:?}", m.len(), m.modified()?)))
        .expect("the test binary's metadata");
    let path = exe.with_extension("drift-pool.json");
    let stored = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<PoolFile>(&bytes).ok())
        .filter(|file| file.made_by == made_by);
    if let Some(file) = stored {
        let photos: Option<Vec<Photo>> = file
            .photos
            .into_iter()
            .map(|p| {
                Some(Photo {
                    true_label: p.true_label,
                    features: p.features,
                    probabilities: p.probabilities.try_into().ok()?,
                    input: p.input.try_into().ok()?,
                })
            })
            .collect();
        if let Some(photos) = photos {
            return photos;
        }
    }
    let photos = make();
    let file = PoolFile {
        made_by,
        photos: photos
            .iter()
            .map(|p| StoredPhoto {
                true_label: p.true_label,
                features: p.features,
                probabilities: p.probabilities.to_vec(),
                input: p.input.to_vec(),
            })
            .collect(),
    };
    let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = serde_json::to_vec(&file)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&temporary, bytes))
        .and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(err) = written {
        // Only the next process's time is lost.
        eprintln!("the drift pool was not kept in {}: {err}", path.display());
    }
    photos
}

/// The pool's photos at even positions (references) or odd ones (windows).
pub fn half(even: bool) -> Vec<&'static Photo> {
    pool()
        .iter()
        .enumerate()
        .filter(|(i, _)| (i % 2 == 0) == even)
        .map(|(_, p)| p)
        .collect()
}

/// `n` of `photos`, drawn with replacement by `seed`.
pub fn draw<'a>(photos: &[&'a Photo], n: usize, seed: u64) -> Vec<&'a Photo> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| photos[rng.below(photos.len())]).collect()
}

/// A window where the digit `digit` makes `share` of the traffic (the named
/// shift: one digit going from about 10 % to 40 %).
pub fn digit_shift<'a>(
    photos: &[&'a Photo],
    n: usize,
    digit: u8,
    share: f64,
    seed: u64,
) -> Vec<&'a Photo> {
    let (ones, rest): (Vec<&Photo>, Vec<&Photo>) =
        photos.iter().partition(|p| p.true_label == digit);
    let k = (n as f64 * share).round() as usize;
    let mut window = draw(&ones, k, seed);
    window.extend(draw(&rest, n - k, seed ^ 0x5eed));
    window
}

/// Stores `photos` as predictions of `model_name`'s `version` (line `line`), their times
/// spread evenly over the 50 minutes from `start`, in order. Returns their ids.
pub async fn store(
    predictions: &PredictionStore,
    model_name: &str,
    version: &str,
    line: &str,
    photos: &[&Photo],
    start: time::OffsetDateTime,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(photos.len());
    let step = time::Duration::seconds(3000) / photos.len().max(1) as f64;
    for (i, photo) in photos.iter().enumerate() {
        let id = ulid::Ulid::new().to_string();
        let created_at = inferloop::time::format_timestamp(start + step * i as f64);
        let record = PredictionRecord {
            prediction_id: id.clone(),
            username: "drift-traffic".into(),
            user_id: None,
            created_at,
            model_name: model_name.into(),
            model_version: version.into(),
            line: line.into(),
            route: line.into(),
            ab_arm: None,
            experiment: None,
            digit: photo.features.predicted_digit,
            probability: photo.features.top_probability,
            probabilities: photo.probabilities,
            input_sha256: "00".repeat(32),
            latency_ms: 1.0,
            cached: false,
            features: photo.features,
            input: photo.input,
            expires_at: inferloop::time::now_secs() + 86_400,
        };
        predictions
            .put(&record, None)
            .await
            .expect("store a prediction");
        ids.push(id);
    }
    ids
}

/// A named change of the photos users send (the shifts), applied while rendering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    None,
    /// The digit turned by this many degrees, clockwise or anticlockwise at random.
    Rotation(f32),
    /// Strokes a pixel thicker on each side (a 3×3 maximum over the 28×28 source).
    Thicker,
    /// Gaussian noise of this standard deviation (grey levels) on the whole photo.
    Noise(f32),
    /// Paper at grey 100–150 instead of 170–250.
    DarkerPaper,
    /// Light ink on dark paper.
    Inverted,
}

fn source_pixel(image: &[u8], x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= 28.0 || yi >= 28.0 {
            0.0
        } else {
            f32::from(image[yi as usize * 28 + xi as usize])
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

fn dilate(image: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 784];
    for y in 0..28i32 {
        for x in 0..28i32 {
            let mut best = 0;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (xx, yy) = (x + dx, y + dy);
                    if (0..28).contains(&xx) && (0..28).contains(&yy) {
                        best = best.max(image[(yy * 28 + xx) as usize]);
                    }
                }
            }
            out[(y * 28 + x) as usize] = best;
        }
    }
    out
}

/// A user-like photo of a 28×28 digit (255 = ink), as `train::user_like_image` makes
/// them (64–512 px canvas, the digit 25–80 % of its short side, off-centre, grey paper,
/// PNG or JPEG), with `shift` applied. Written here, not reused, because the shifts
/// need to reach inside the rendering.
pub fn render(source: &[u8], shift: Shift, rng: &mut Rng) -> Vec<u8> {
    let thick;
    let source = if shift == Shift::Thicker {
        thick = dilate(source);
        &thick[..]
    } else {
        source
    };
    let width = 64 + rng.below(449);
    let height = 64 + rng.below(449);
    let short = width.min(height) as f32;
    let scale = (rng.range(0.25, 0.8) * short / 20.0).min(short / 28.0);
    let side = 28.0 * scale;
    let ox = rng.range(0.0, width as f32 - side);
    let oy = rng.range(0.0, height as f32 - side);
    let (paper, ink) = match shift {
        Shift::DarkerPaper => (rng.range(100.0, 150.0), rng.range(10.0, 60.0)),
        Shift::Inverted => (rng.range(10.0, 90.0), rng.range(170.0, 250.0)),
        _ => (rng.range(170.0, 250.0), rng.range(10.0, 90.0)),
    };
    let angle = match shift {
        Shift::Rotation(degrees) => {
            let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
            (sign * degrees).to_radians()
        }
        _ => 0.0,
    };
    let (sin, cos) = angle.sin_cos();
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            // Into source coordinates, turned about the source's centre.
            let sx = (x as f32 + 0.5 - ox) / scale - 14.0;
            let sy = (y as f32 + 0.5 - oy) / scale - 14.0;
            let (rx, ry) = (
                cos * sx + sin * sy + 14.0 - 0.5,
                -sin * sx + cos * sy + 14.0 - 0.5,
            );
            let v = source_pixel(source, rx, ry) / 255.0;
            let noise = match shift {
                Shift::Noise(sd) => {
                    // Box–Muller from two uniforms.
                    let (u1, u2) = (rng.uniform().max(1e-7), rng.uniform());
                    sd * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                }
                _ => rng.range(-6.0, 6.0),
            };
            pixels.push(
                (paper - v * (paper - ink) + noise)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    let Some(gray) = image::GrayImage::from_raw(width as u32, height as u32, pixels) else {
        return Vec::new();
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let written = if rng.uniform() < 0.5 {
        let quality = 70 + rng.below(21) as u8;
        gray.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, quality,
        ))
    } else {
        gray.write_to(&mut out, image::ImageFormat::Png)
    };
    written.map(|()| out.into_inner()).unwrap_or_default()
}

/// Photos of the test-split digits at `positions`, rendered by [`render`] with `shift`,
/// read by `model`.
pub fn shifted_photos(model: &Model, positions: &[usize], stream: u64, shift: Shift) -> Vec<Photo> {
    shifted_photos_of(Split::Test, model, positions, stream, shift)
}

/// [`shifted_photos`] of `split`'s digits: the retrain tests' feedback comes from the
/// train split, so that the base test split a candidate is judged on stays unseen.
pub fn shifted_photos_of(
    split: Split,
    model: &Model,
    positions: &[usize],
    stream: u64,
    shift: Shift,
) -> Vec<Photo> {
    let data = crate::digits();
    let images = data.indices(split);
    read_all(model, positions, |position| {
        let index = images[position % images.len()];
        let mut rng = Rng::derive(stream, 13, position as u64);
        (
            render(data.image(index), shift, &mut rng),
            data.label(index),
        )
    })
}
