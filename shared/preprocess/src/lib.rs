//! Turns any decoded image into the model's input (DESIGN.md §6): grayscale,
//! the paper's own level removed, dark-on-light inverted, cropped to the ink,
//! scaled into 20×20 keeping the aspect, centred by mass in 28×28.
//!
//! Training runs every MNIST sample (and every augmented variant) through
//! [`preprocess_gray`] too, so the model only ever sees inputs this function can
//! produce: a user's photo and a training digit land in the same distribution.
//!
//! Output scale: `f32` in `0.0..=1.0`, 0 = paper, 1 = the darkest ink of the
//! image, row-major 28×28 (the ONNX input `[1, 1, 28, 28]`).

#[cfg(feature = "decode")]
use image::{DynamicImage, ImageReader, Limits};
#[cfg(feature = "decode")]
use std::io::Cursor;

/// Side of the model input.
pub const SIDE: usize = 28;
/// Number of model inputs (28×28).
pub const INPUT_LEN: usize = SIDE * SIDE;
/// Side of the box the ink is scaled into, as MNIST did.
pub const BOX: usize = 20;
/// Names this exact algorithm in every manifest: a model is only valid with
/// the preprocessing it was trained with, so a change here needs a new id.
pub const PREPROCESSING_ID: &str = "inferloop-mnist-box20-com28-v1";
/// Largest accepted width or height (issue 3: larger is 413).
pub const MAX_SIDE: u32 = 4096;
/// Decoder allocation cap: a 4096² RGBA8 image plus the decoder's own buffers.
#[cfg(feature = "decode")]
const MAX_DECODE_ALLOC: u64 = 160 * 1024 * 1024;
/// Ink weaker than this share of the strongest ink is paper texture or
/// compression noise: it neither widens the crop nor reaches the model.
const INK_THRESHOLD: f32 = 0.1;
/// Least contrast (grey levels out of 255) between ink and paper for an image
/// to hold a digit at all; JPEG noise on blank paper stays well below it.
const MIN_CONTRAST: u8 = 32;
/// A pixel counts towards the input's ink ratio from this intensity on.
const INK_RATIO_LEVEL: f32 = 0.5;

/// Why an input cannot become a model input. Never a panic: every byte string
/// ends in one of these or in a [`Preprocessed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    #[error("the data is not a PNG, JPEG, BMP, GIF or WebP image")]
    UnknownFormat,
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("the image is {width}×{height}; at most {MAX_SIDE}×{MAX_SIDE} is accepted")]
    TooLarge { width: u32, height: u32 },
    #[error("the image has no pixels")]
    Empty,
    #[error("the pixel buffer holds {got} values for a {width}×{height} image")]
    BadBuffer { width: u32, height: u32, got: usize },
    #[error("the image holds no visible ink")]
    NoInk,
}

/// The input half of the DESIGN.md §6a drift features.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputFeatures {
    /// Width of the decoded image, pixels.
    pub raw_width: u32,
    /// Height of the decoded image, pixels.
    pub raw_height: u32,
    /// Mean luminance of the decoded image (alpha composited over white), 0 = black, 1 = white.
    pub mean_brightness: f32,
    /// Width / height of the ink's bounding box in the decoded image.
    pub ink_aspect_ratio: f32,
    /// Area of the ink's bounding box / area of the image.
    pub ink_box_share: f32,
    /// Mean of the 784 model inputs.
    pub input_mean: f32,
    /// Share of the 784 model inputs at or above 0.5.
    pub input_ink_ratio: f32,
}

/// A model input and what was measured on the way.
#[derive(Debug, Clone)]
pub struct Preprocessed {
    pub input: [f32; INPUT_LEN],
    pub features: InputFeatures,
}

impl Preprocessed {
    /// The input as 784 bytes (0..=255), how a prediction stores it for retraining.
    pub fn input_bytes(&self) -> [u8; INPUT_LEN] {
        let mut out = [0u8; INPUT_LEN];
        for (o, v) in out.iter_mut().zip(self.input.iter()) {
            // Saturating float→int cast: NaN is impossible here, but would give 0.
            *o = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
        out
    }
}

#[cfg(feature = "decode")]
/// Decodes PNG, JPEG, BMP, GIF (first frame) or WebP bytes. The header's size is
/// checked before any pixel buffer exists, so a decompression bomb costs nothing.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, PreprocessError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(PreprocessError::UnknownFormat);
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PreprocessError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?;
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => PreprocessError::TooLarge { width, height },
        other => PreprocessError::Decode(other.to_string()),
    })
}

#[cfg(feature = "decode")]
/// Decode and preprocess in one step: what predict does with an upload.
pub fn preprocess_bytes(bytes: &[u8]) -> Result<Preprocessed, PreprocessError> {
    preprocess_image(&decode(bytes)?)
}

#[cfg(feature = "decode")]
/// Grayscale with transparency composited over white: drawing apps export dark
/// strokes on a transparent canvas, which would otherwise read as black on black.
pub fn preprocess_image(image: &DynamicImage) -> Result<Preprocessed, PreprocessError> {
    let (width, height) = (image.width(), image.height());
    let gray: Vec<u8> = if image.color().has_alpha() {
        image
            .to_luma_alpha8()
            .pixels()
            .map(|p| {
                let [l, a] = p.0;
                let (l, a) = (u32::from(l), u32::from(a));
                // Integer alpha blend over 255, rounded; at most 255.
                ((l * a + 255 * (255 - a) + 127) / 255) as u8
            })
            .collect()
    } else {
        image.to_luma8().into_raw()
    };
    preprocess_gray(width, height, &gray)
}

/// The one preprocessing function: 8-bit luminance (0 black, 255 white),
/// row-major, of any size and polarity.
pub fn preprocess_gray(
    width: u32,
    height: u32,
    pixels: &[u8],
) -> Result<Preprocessed, PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty);
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PreprocessError::TooLarge { width, height });
    }
    let (w, h) = (width as usize, height as usize);
    if pixels.len() != w * h {
        return Err(PreprocessError::BadBuffer {
            width,
            height,
            got: pixels.len(),
        });
    }

    // The border is paper in any sensible framing of a digit, even where a
    // stroke touches it: its median is the paper's level and tells the polarity.
    let paper = border_median(w, h, pixels);
    let dark_on_light = paper >= 128;
    let ink_of = |p: u8| -> u8 {
        if dark_on_light {
            paper.saturating_sub(p)
        } else {
            p.saturating_sub(paper)
        }
    };
    let peak = pixels.iter().map(|&p| ink_of(p)).max().unwrap_or(0);
    if peak < MIN_CONTRAST {
        return Err(PreprocessError::NoInk);
    }
    let scale = 1.0 / f32::from(peak);
    let level = |p: u8| -> f32 {
        let v = f32::from(ink_of(p)) * scale;
        if v < INK_THRESHOLD { 0.0 } else { v }
    };

    // Bounding box of the ink (non-empty: the peak pixel is in it).
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0usize, 0usize);
    for (y, row) in pixels.chunks_exact(w).enumerate() {
        for (x, &p) in row.iter().enumerate() {
            if level(p) > 0.0 {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    if x0 > x1 || y0 > y1 {
        return Err(PreprocessError::NoInk);
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut crop = Vec::with_capacity(bw * bh);
    for row in pixels.chunks_exact(w).skip(y0).take(bh) {
        crop.extend(row[x0..=x1].iter().map(|&p| level(p)));
    }

    // Longest side to 20 px, the other in proportion (at least one pixel).
    let longest = bw.max(bh) as f32;
    let nw = ((bw as f32 * BOX as f32 / longest).round() as usize).clamp(1, BOX);
    let nh = ((bh as f32 * BOX as f32 / longest).round() as usize).clamp(1, BOX);
    let small = resize(&crop, bw, bh, nw, nh);

    // Centre of mass to the middle of the 28×28 field, kept inside it.
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * (i % nw) as f64;
        my += v * (i / nw) as f64;
    }
    if mass <= 0.0 {
        return Err(PreprocessError::NoInk);
    }
    let centre = (SIDE as f64 - 1.0) / 2.0;
    let place = |com: f64, n: usize| -> usize {
        let offset = (centre - com / mass).round();
        // Clamped so the whole box stays inside the field.
        offset.clamp(0.0, (SIDE - n) as f64) as usize
    };
    let (ox, oy) = (place(mx, nw), place(my, nh));
    let mut input = [0.0f32; INPUT_LEN];
    for (y, row) in small.chunks_exact(nw).enumerate() {
        let start = (oy + y) * SIDE + ox;
        input[start..start + nw].copy_from_slice(row);
    }

    let mean_brightness =
        (pixels.iter().map(|&p| u64::from(p)).sum::<u64>() as f64 / (w * h) as f64 / 255.0) as f32;
    let features = InputFeatures {
        raw_width: width,
        raw_height: height,
        mean_brightness,
        ink_aspect_ratio: bw as f32 / bh as f32,
        ink_box_share: ((bw * bh) as f64 / (w * h) as f64) as f32,
        input_mean: input.iter().sum::<f32>() / INPUT_LEN as f32,
        input_ink_ratio: input.iter().filter(|&&v| v >= INK_RATIO_LEVEL).count() as f32
            / INPUT_LEN as f32,
    };
    Ok(Preprocessed { input, features })
}

fn border_median(w: usize, h: usize, pixels: &[u8]) -> u8 {
    let mut histogram = [0u32; 256];
    let mut count = 0u32;
    for (y, row) in pixels.chunks_exact(w).enumerate() {
        if y == 0 || y + 1 == h {
            for &p in row {
                histogram[usize::from(p)] += 1;
            }
            count += row.len() as u32;
        } else {
            histogram[usize::from(row[0])] += 1;
            histogram[usize::from(row[w - 1])] += 1;
            count += 2;
        }
    }
    let mut seen = 0;
    for (level, &n) in histogram.iter().enumerate() {
        seen += n;
        if 2 * seen >= count {
            return level as u8;
        }
    }
    255
}

/// Separable triangle (bilinear) resampling whose support widens with the
/// reduction factor, as Pillow's BILINEAR does: a 400 px stroke shrunk to 20 px
/// is averaged, not sampled, so thin strokes neither vanish nor alias.
fn resize(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let horizontal = taps(sw, dw);
    let mut tmp = vec![0.0f32; dw * sh];
    for (src_row, out_row) in src.chunks_exact(sw).zip(tmp.chunks_exact_mut(dw)) {
        for (out, (start, weights)) in out_row.iter_mut().zip(&horizontal) {
            *out = weights
                .iter()
                .zip(&src_row[*start..])
                .map(|(w, v)| w * v)
                .sum();
        }
    }
    let vertical = taps(sh, dh);
    let mut out = vec![0.0f32; dw * dh];
    for (out_row, (start, weights)) in out.chunks_exact_mut(dw).zip(&vertical) {
        for (k, weight) in weights.iter().enumerate() {
            let src_row = &tmp[(start + k) * dw..(start + k + 1) * dw];
            for (o, v) in out_row.iter_mut().zip(src_row) {
                *o += weight * v;
            }
        }
    }
    out
}

/// For each output index, the first source index and the normalised weights.
fn taps(src_len: usize, dst_len: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src_len as f64 / dst_len as f64;
    let support = ratio.max(1.0);
    (0..dst_len)
        .map(|i| {
            let centre = (i as f64 + 0.5) * ratio;
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(src_len);
            let mut weights: Vec<f32> = (lo..hi)
                .map(|j| {
                    let d = ((j as f64 + 0.5 - centre) / support).abs();
                    (1.0 - d).max(0.0) as f32
                })
                .collect();
            let total: f32 = weights.iter().sum();
            if total > 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
                (lo, weights)
            } else {
                // Cannot happen for lo < hi, but a nearest sample is a safe answer.
                (centre.floor().min((src_len - 1) as f64) as usize, vec![1.0])
            }
        })
        .collect()
}

#[cfg(all(test, feature = "decode"))]
mod tests {
    use super::*;
    use image::{GrayImage, ImageFormat, Luma, LumaA, RgbImage};

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        // The GIF and WebP encoders take colour only.
        let image = match format {
            ImageFormat::Gif | ImageFormat::WebP => &DynamicImage::ImageRgba8(image.to_rgba8()),
            _ => image,
        };
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A dark "1"-like bar on light paper, somewhere on a canvas.
    fn bar(w: u32, h: u32, x: u32, y: u32, bw: u32, bh: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |px, py| {
            let inside = px >= x && px < x + bw && py >= y && py < y + bh;
            Luma([if inside { 30 } else { 220 }])
        })
    }

    fn com(input: &[f32; INPUT_LEN]) -> (f32, f32) {
        let (mut m, mut x, mut y) = (0.0, 0.0, 0.0);
        for (i, v) in input.iter().enumerate() {
            m += v;
            x += v * (i % SIDE) as f32;
            y += v * (i / SIDE) as f32;
        }
        (x / m, y / m)
    }

    #[test]
    fn dark_on_light_is_inverted_cropped_scaled_and_centred() {
        let img = bar(300, 200, 20, 10, 30, 120);
        let out = preprocess_gray(300, 200, img.as_raw()).unwrap();
        let max = out.input.iter().cloned().fold(0.0, f32::max);
        assert!((max - 1.0).abs() < 1e-6);
        // 30×120 → 5×20: the box is 20 high.
        let rows = (0..SIDE)
            .filter(|r| out.input[r * SIDE..(r + 1) * SIDE].iter().any(|&v| v > 0.0))
            .count();
        assert_eq!(rows, 20);
        let (cx, cy) = com(&out.input);
        assert!(
            (cx - 13.5).abs() <= 0.75 && (cy - 13.5).abs() <= 0.75,
            "{cx} {cy}"
        );
        let f = out.features;
        assert_eq!((f.raw_width, f.raw_height), (300, 200));
        assert!((f.ink_aspect_ratio - 0.25).abs() < 1e-6);
        assert!((f.ink_box_share - 3600.0 / 60000.0).abs() < 1e-6);
        assert!(f.mean_brightness > 0.8);
        assert!(f.input_ink_ratio > 0.0 && f.input_mean > 0.0);
    }

    #[test]
    fn polarity_does_not_change_the_input() {
        let dark = bar(64, 64, 10, 12, 8, 30);
        let mut light = dark.clone();
        light.pixels_mut().for_each(|p| p.0[0] = 255 - p.0[0]);
        let a = preprocess_gray(64, 64, dark.as_raw()).unwrap();
        let b = preprocess_gray(64, 64, light.as_raw()).unwrap();
        assert_eq!(a.input, b.input);
    }

    #[test]
    fn grey_paper_level_is_removed() {
        // Grey paper (150) with darker ink (60): the paper must read as 0.
        let img = GrayImage::from_fn(80, 80, |x, y| {
            Luma([if (30..40).contains(&x) && (10..70).contains(&y) {
                60
            } else {
                150
            }])
        });
        let out = preprocess_gray(80, 80, img.as_raw()).unwrap();
        assert_eq!(out.input[0], 0.0);
        assert!(out.input.iter().any(|&v| v > 0.99));
    }

    #[test]
    fn transparent_canvas_with_dark_strokes() {
        let img = image::GrayAlphaImage::from_fn(50, 50, |x, y| {
            if (20..25).contains(&x) && (5..45).contains(&y) {
                LumaA([0, 255])
            } else {
                LumaA([0, 0])
            }
        });
        let bytes = encode(&DynamicImage::ImageLumaA8(img), ImageFormat::Png);
        let out = preprocess_bytes(&bytes).unwrap();
        assert!(out.input.iter().any(|&v| v > 0.99));
        assert!(out.features.mean_brightness > 0.8);
    }

    #[test]
    fn every_format_decodes() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(40, 40, |x, _| {
            if (15..25).contains(&x) {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        }));
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Bmp,
            ImageFormat::Gif,
            ImageFormat::WebP,
        ] {
            let bytes = encode(&img, format);
            let out = preprocess_bytes(&bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert!(out.input.iter().any(|&v| v > 0.5), "{format:?}");
        }
    }

    #[test]
    fn blank_tiny_and_degenerate_inputs_are_errors_not_panics() {
        assert_eq!(
            preprocess_gray(0, 0, &[]).unwrap_err(),
            PreprocessError::Empty
        );
        assert_eq!(
            preprocess_gray(0, 5, &[]).unwrap_err(),
            PreprocessError::Empty
        );
        assert!(matches!(
            preprocess_gray(3, 3, &[0; 8]),
            Err(PreprocessError::BadBuffer { .. })
        ));
        assert_eq!(
            preprocess_gray(1, 1, &[0]).unwrap_err(),
            PreprocessError::NoInk
        );
        assert_eq!(
            preprocess_gray(1, 1, &[255]).unwrap_err(),
            PreprocessError::NoInk
        );
        assert_eq!(
            preprocess_gray(64, 64, &[200; 4096]).unwrap_err(),
            PreprocessError::NoInk
        );
        assert!(matches!(
            preprocess_gray(5000, 1, &[0; 5000]),
            Err(PreprocessError::TooLarge { .. })
        ));
        // A single dark pixel, a 1×N line, an N×1 line: extreme aspect ratios.
        let mut one = vec![255u8; 9];
        one[4] = 0;
        assert!(preprocess_gray(3, 3, &one).is_ok());
        let mut line = vec![0u8; 4096];
        line[0] = 255;
        line[4095] = 255;
        assert!(preprocess_gray(4096, 1, &line).is_ok());
        assert!(preprocess_gray(1, 4096, &line).is_ok());
        assert!(preprocess_gray(2, 2, &[0, 255, 255, 0]).is_ok());
        assert_eq!(
            preprocess_bytes(b"").unwrap_err(),
            PreprocessError::UnknownFormat
        );
        assert_eq!(
            preprocess_bytes(b"hello, world").unwrap_err(),
            PreprocessError::UnknownFormat
        );
    }

    #[test]
    fn truncated_and_oversized_files_are_errors() {
        let img = DynamicImage::ImageLuma8(bar(100, 100, 40, 10, 10, 80));
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::WebP,
            ImageFormat::Bmp,
        ] {
            let bytes = encode(&img, format);
            for cut in [8, bytes.len() / 3, bytes.len() - 1] {
                // Any answer but a panic; most decoders report the truncation.
                let _ = preprocess_bytes(&bytes[..cut]);
            }
        }
        // A PNG header that claims 100000×100000: refused before any allocation.
        let mut png = encode(
            &DynamicImage::ImageLuma8(GrayImage::new(1, 1)),
            ImageFormat::Png,
        );
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(
            decode(&png),
            Err(PreprocessError::TooLarge { .. } | PreprocessError::Decode(_))
        ));
    }

    #[test]
    fn fuzzed_buffers_never_panic() {
        // A small deterministic generator: random sizes, contents and corruptions.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let w = (next() % 70) as u32 + 1;
            let h = (next() % 70) as u32 + 1;
            let pixels: Vec<u8> = (0..w * h)
                .map(|_| match next() % 4 {
                    0 => 0,
                    1 => 255,
                    _ => next() as u8,
                })
                .collect();
            if let Ok(out) = preprocess_gray(w, h, &pixels) {
                assert!(
                    out.input
                        .iter()
                        .all(|v| v.is_finite() && (0.0..=1.0001).contains(v))
                );
                let f = out.features;
                assert!(f.ink_aspect_ratio.is_finite() && f.ink_box_share <= 1.0);
            }
            let img = DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).unwrap());
            let mut bytes = encode(&img, ImageFormat::Png);
            let flips = next() % 4;
            for _ in 0..flips {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            let _ = preprocess_bytes(&bytes);
        }
    }
}
