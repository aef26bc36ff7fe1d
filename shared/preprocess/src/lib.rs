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
//!
//! An upload is [`screen`]ed before any pixel is decoded (issue 19, finding 5: small
//! files that decode huge): its header's size must be at most [`MAX_SIDE`] a side and
//! [`MAX_PIXELS`] in all, and above [`DENSITY_FREE_PIXELS`] it may claim at most
//! [`MAX_PIXELS_PER_BYTE`] pixels per byte of file. Only then is it decoded, straight to
//! 8-bit grey where the decoder can ([`decode_gray`]: JPEG), else to its own colour type
//! and converted at once, so the colour buffer is gone before preprocessing starts.

#[cfg(feature = "decode")]
use image::{DynamicImage, GrayAlphaImage, GrayImage, ImageFormat, ImageReader, Limits};
#[cfg(feature = "decode")]
use std::io::Cursor;
#[cfg(feature = "decode")]
use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};

/// Side of the model input.
pub const SIDE: usize = 28;
/// Number of model inputs (28×28).
pub const INPUT_LEN: usize = SIDE * SIDE;
/// Side of the box the ink is scaled into, as MNIST did.
pub const BOX: usize = 20;
/// Names this exact algorithm in every manifest: a model is only valid with
/// the preprocessing it was trained with, so a change here needs a new id.
pub const PREPROCESSING_ID: &str = "inferloop-mnist-box20-com28-v1";
/// Largest accepted width or height (issue 3: larger is 413). Kept beside
/// [`MAX_PIXELS`] so that a long strip (4096×1024) is still read; no side reaches the
/// sizes at which the decoders' own arithmetic was ever in question.
pub const MAX_SIDE: u32 = 4096;
/// Largest accepted pixel count: 2048×2048 (issue 19, finding 5; it was 4096×4096, 16.7 M).
/// A digit ends as 20×20 pixels of model input and nothing above about 512×512 changes
/// the answer, so this cap only bounds what one upload may cost: the worst accepted
/// input takes ~41 ms and ~37 MiB to decode (a 2048² 16-bit RGBA PNG); the finding's
/// WebP, GIF and JPEG bombs took 122–180 ms and 112–144 MiB (docs/benchmarks.md,
/// "Image limits"). It keeps a 2048×2048
/// drawing canvas and a phone screenshot at its usual 1080×2340 to 1320×2868 (2.5–3.8 M
/// pixels); a full-size phone photo (12 M pixels, 4032×3024) is refused with a 413 that
/// says to resize it, which every client can do before sending: a long side of 1024 px
/// keeps everything the model can use.
pub const MAX_PIXELS: u64 = 2048 * 2048;
/// Most pixels one byte of upload may claim once an image is above
/// [`DENSITY_FREE_PIXELS`]: the bound on "far more pixels than the bytes can carry".
/// Measured (docs/benchmarks.md, "Image limits"): the project's user-like photos carry
/// at most 17.3 pixels per byte (JPEG; PNG 1.6); canvas drawings as real encoders write
/// them (Pillow: zlib 9, libwebp, LZW, libjpeg; 512–2048 px, a thin or thick ring) at
/// most 462 (a 2048² 1-bit PNG; 8-bit PNG 106, lossless WebP 212, GIF 106, JPEG 48).
/// Blank 2048² pages reach 1,763 (1-bit PNG) and 19,065 (lossless WebP, refused: a blank
/// page has no digit to lose). The bombs: 262,144 (RLE BMP) and 419,430 (lossless WebP,
/// 40 bytes for 4096²). 2,048 leaves the densest drawing 4.4× headroom and refuses those
/// bombs, and a JPEG of headers only (~150 bytes, which the lenient decoder returns
/// whole), at any size above 512×512. A complete GIF, PNG or JPEG cannot be far denser
/// than an honest one (LZW, deflate and Huffman codes have floors: at most ~1,450,
/// ~1,030 × 8 and ~500 pixels per byte), so the finding's GIF, 16-bit PNG and
/// progressive JPEG (1,200, 120 and 85 pixels per byte) are for [`MAX_PIXELS`] to refuse.
pub const MAX_PIXELS_PER_BYTE: u64 = 2048;
/// Up to this many pixels (512×512) the density is not checked: decoding them costs
/// what an ordinary digit costs, and a small blank or flat image stays what it was
/// (422 `no_digit`), not a 413.
pub const DENSITY_FREE_PIXELS: u64 = 512 * 512;
/// Decoder allocation cap: the largest accepted image in the widest colour type
/// (2048² RGBA, 16 bits: 32 MiB) twice over, for the decoders' own buffers (a GIF's
/// frame beside its screen). It was 160 MiB, for 4096² RGBA8.
pub const MAX_DECODE_ALLOC: u64 = 64 * 1024 * 1024;
/// Ink weaker than this share of the strongest ink is paper texture or
/// compression noise: it neither widens the crop nor reaches the model.
const INK_THRESHOLD: f32 = 0.1;
/// Least contrast (grey levels out of 255) between ink and paper for an image
/// to hold a digit at all; JPEG noise on blank paper stays well below it.
const MIN_CONTRAST: u8 = 32;
/// A pixel counts towards the input's ink ratio from this intensity on.
const INK_RATIO_LEVEL: f32 = 0.5;

/// Which size limit an image broke: tests and the benchmark tell a refusal from the
/// header (nothing decoded) from one by the decoder's allocation cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// A side above [`MAX_SIDE`].
    Side,
    /// More than [`MAX_PIXELS`] pixels.
    Pixels,
    /// More than [`MAX_PIXELS_PER_BYTE`] pixels per byte of a file of `bytes` bytes.
    Density { bytes: usize },
    /// The decoder needed more than [`MAX_DECODE_ALLOC`] bytes: found while decoding.
    Allocation,
}

/// Why an input cannot become a model input. Never a panic: every byte string
/// ends in one of these or in a [`Preprocessed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    #[error("the data is not a PNG, JPEG, BMP, GIF or WebP image")]
    UnknownFormat,
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    /// The client is told the limit and what to do (resize): the 413's message.
    #[error("{}", too_large_message(*width, *height, *limit))]
    TooLarge {
        width: u32,
        height: u32,
        limit: SizeLimit,
    },
    #[error("the image has no pixels")]
    Empty,
    #[error("the pixel buffer holds {got} values for a {width}×{height} image")]
    BadBuffer { width: u32, height: u32, got: usize },
    #[error("the image holds no visible ink")]
    NoInk,
}

/// `1234567` → `"1,234,567"`: limits read more easily in a message (here, and in the
/// alert messages of `inferloop::notify`, which link this crate anyway).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn too_large_message(width: u32, height: u32, limit: SizeLimit) -> String {
    let pixels = u64::from(width) * u64::from(height);
    let cap = format!(
        "at most {} pixels (2048×2048) and {MAX_SIDE} a side are accepted",
        thousands(MAX_PIXELS)
    );
    let advice =
        "resize it before sending: 1024 pixels on the long side is more than a digit needs";
    match limit {
        SizeLimit::Side | SizeLimit::Pixels => format!(
            "the image is {width}×{height} ({} pixels); {cap}: {advice}",
            thousands(pixels)
        ),
        SizeLimit::Density { bytes } => format!(
            "the image claims {width}×{height} ({} pixels) from only {} bytes, more than {} \
             pixels per byte: no photo or drawing compresses that far; {cap}: {advice}",
            thousands(pixels),
            thousands(bytes as u64),
            thousands(MAX_PIXELS_PER_BYTE)
        ),
        SizeLimit::Allocation => format!(
            "decoding the {width}×{height} image needs more than {} MiB; {cap}: {advice}",
            MAX_DECODE_ALLOC >> 20
        ),
    }
}

/// The header checks, on a claimed size and the file's length; zero sides are the
/// caller's matter ([`PreprocessError::Empty`] for an image, nothing for a GIF frame).
fn check_claim(width: u32, height: u32, file_bytes: usize) -> Result<(), PreprocessError> {
    let too_large = |limit| PreprocessError::TooLarge {
        width,
        height,
        limit,
    };
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(too_large(SizeLimit::Side));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(too_large(SizeLimit::Pixels));
    }
    // u64: 6 MB × 2048 and 2048² are far from overflowing.
    if pixels > DENSITY_FREE_PIXELS
        && pixels > MAX_PIXELS_PER_BYTE.saturating_mul(file_bytes as u64)
    {
        return Err(too_large(SizeLimit::Density { bytes: file_bytes }));
    }
    Ok(())
}

/// Every size check an upload of `file_bytes` bytes claiming `width`×`height` must pass
/// before it is decoded; the order (side, empty, pixels, density) is the order of the
/// messages a client would want.
pub fn check_size(width: u32, height: u32, file_bytes: usize) -> Result<(), PreprocessError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PreprocessError::TooLarge {
            width,
            height,
            limit: SizeLimit::Side,
        });
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty);
    }
    check_claim(width, height, file_bytes)
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
/// What an upload's header claims, read before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

#[cfg(feature = "decode")]
type ZuneJpeg<'a> = zune_jpeg::JpegDecoder<ZCursor<&'a [u8]>>;

#[cfg(feature = "decode")]
/// Reads the format and size from the header and applies every size check
/// ([`check_size`]; for a GIF to its first frame too, which may be larger than the
/// screen the header states). No pixel is decoded: a bomb costs the header's parsing.
pub fn screen(bytes: &[u8]) -> Result<Header, PreprocessError> {
    screen_jpeg_kept(bytes).map(|(header, _)| header)
}

#[cfg(feature = "decode")]
/// [`screen`], keeping a JPEG's decoder (its headers parsed) for [`decode_gray`].
fn screen_jpeg_kept(bytes: &[u8]) -> Result<(Header, Option<ZuneJpeg<'_>>), PreprocessError> {
    let format = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PreprocessError::Decode(e.to_string()))?
        .format()
        .ok_or(PreprocessError::UnknownFormat)?;
    let mut jpeg = None;
    let (width, height) = if format == ImageFormat::Jpeg {
        // zune-jpeg, as `image` uses it, but asked for the luma plane only.
        let mut decoder = ZuneJpeg::new_with_options(ZCursor::new(bytes), jpeg_options());
        decoder.decode_headers().map_err(jpeg_error)?;
        let (w, h) = decoder
            .dimensions()
            .ok_or_else(|| PreprocessError::Decode("JPEG: no frame header".into()))?;
        jpeg = Some(decoder);
        // A JPEG's sides are 16-bit: these never saturate.
        (
            u32::try_from(w).unwrap_or(u32::MAX),
            u32::try_from(h).unwrap_or(u32::MAX),
        )
    } else {
        ImageReader::with_format(Cursor::new(bytes), format)
            .into_dimensions()
            .map_err(|e| PreprocessError::Decode(e.to_string()))?
    };
    check_size(width, height, bytes.len())?;
    if format == ImageFormat::Gif {
        // The gif decoder lets a frame be larger than its screen (image then decodes the
        // whole frame to crop it): a 1×1 screen could carry a 4096×4096 frame.
        let (fw, fh) = gif_first_frame(bytes).ok_or_else(|| {
            PreprocessError::Decode("GIF: no image descriptor before the data ends".into())
        })?;
        check_claim(fw, fh, bytes.len())?;
    }
    Ok((
        Header {
            format,
            width,
            height,
        },
        jpeg,
    ))
}

#[cfg(feature = "decode")]
/// The width and height of a GIF's first frame (its image descriptor), walking the
/// blocks as the gif decoder does; `None` if the data ends or holds an unknown block
/// first, which the decoder refuses too.
fn gif_first_frame(bytes: &[u8]) -> Option<(u32, u32)> {
    let u16_at = |i: usize| -> Option<u32> {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(i)?,
            *bytes.get(i + 1)?,
        ])))
    };
    // 6 bytes of signature, 7 of logical screen descriptor, then the global colour table.
    let packed = *bytes.get(10)?;
    let mut pos = 13usize;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 7) + 1);
    }
    loop {
        match *bytes.get(pos)? {
            0x2C => return Some((u16_at(pos + 5)?, u16_at(pos + 7)?)),
            0x21 => {
                // Introducer and label, then sub-blocks up to an empty one.
                pos += 2;
                loop {
                    let len = usize::from(*bytes.get(pos)?);
                    pos += 1 + len;
                    if len == 0 {
                        break;
                    }
                }
            }
            _ => return None,
        }
    }
}

#[cfg(feature = "decode")]
/// `image`'s own zune-jpeg options (lenient, as before), with the luma plane as output.
fn jpeg_options() -> DecoderOptions {
    DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::Luma)
}

#[cfg(feature = "decode")]
fn jpeg_error(err: zune_jpeg::errors::DecodeErrors) -> PreprocessError {
    PreprocessError::Decode(format!("JPEG: {err}"))
}

#[cfg(feature = "decode")]
/// Decodes PNG, JPEG, BMP, GIF (first frame) or WebP bytes to the image's own colour
/// type, after [`screen`]: a decompression bomb is refused from its header.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, PreprocessError> {
    let (header, _) = screen_jpeg_kept(bytes)?;
    decode_colour(bytes, header)
}

#[cfg(feature = "decode")]
fn decode_colour(bytes: &[u8], header: Header) -> Result<DynamicImage, PreprocessError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.format);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => PreprocessError::TooLarge {
            width: header.width,
            height: header.height,
            limit: SizeLimit::Allocation,
        },
        other => PreprocessError::Decode(other.to_string()),
    })
}

#[cfg(feature = "decode")]
/// Decodes to 8-bit grey (0 black, 255 white; transparency composited over white),
/// after [`screen`]. A JPEG with a luma plane (grey or Y'CbCr, nearly all) is decoded
/// to that plane alone: a quarter of the RGB path's memory, no chroma upsampling or
/// colour conversion. Its grey is then the file's own Y' (BT.601 weights) rather than
/// `image`'s Rec. 709 luma of the decoded RGB: the same for grey pixels, a few levels
/// apart for saturated colour. zune-jpeg (0.5) has no reduced-scale (1/2, 1/4, 1/8)
/// decoding, so a large JPEG is decoded in full; [`MAX_PIXELS`] bounds that. Other
/// formats decode to their colour type, converted at once and the colour buffer dropped.
pub fn decode_gray(bytes: &[u8]) -> Result<GrayImage, PreprocessError> {
    let (header, jpeg) = screen_jpeg_kept(bytes)?;
    if let Some(decoder) = jpeg
        && let Some(gray) = jpeg_luma(decoder, header)?
    {
        return Ok(gray);
    }
    into_gray(decode_colour(bytes, header)?)
}

#[cfg(feature = "decode")]
/// The luma plane of a grey or Y'CbCr JPEG; `None` for the rest (CMYK, YCCK, RGB),
/// which `image` converts as it always did.
fn jpeg_luma(
    mut decoder: ZuneJpeg<'_>,
    header: Header,
) -> Result<Option<GrayImage>, PreprocessError> {
    if !matches!(
        decoder.input_colorspace(),
        Some(ColorSpace::YCbCr | ColorSpace::Luma)
    ) {
        return Ok(None);
    }
    // One byte per pixel, at most MAX_PIXELS: screened.
    let len = decoder
        .output_buffer_size()
        .ok_or_else(|| PreprocessError::Decode("JPEG: no frame header".into()))?;
    let mut pixels = vec![0u8; len];
    decoder.decode_into(&mut pixels).map_err(jpeg_error)?;
    GrayImage::from_raw(header.width, header.height, pixels)
        .map(Some)
        .ok_or(PreprocessError::BadBuffer {
            width: header.width,
            height: header.height,
            got: len,
        })
}

#[cfg(feature = "decode")]
/// Grey levels of a decoded image, taking its buffer where it is grey already.
fn into_gray(image: DynamicImage) -> Result<GrayImage, PreprocessError> {
    match image {
        DynamicImage::ImageLuma8(gray) => Ok(gray),
        DynamicImage::ImageLumaA8(gray_alpha) => over_white(&gray_alpha),
        other => gray_of(&other),
    }
}

#[cfg(feature = "decode")]
/// Grayscale with transparency composited over white: drawing apps export dark
/// strokes on a transparent canvas, which would otherwise read as black on black.
/// An image with alpha is converted a strip of rows at a time: the same pixels as
/// converting it whole, without a second full-size (grey + alpha) buffer.
fn gray_of(image: &DynamicImage) -> Result<GrayImage, PreprocessError> {
    if !image.color().has_alpha() {
        return Ok(image.to_luma8());
    }
    /// Rows per strip: 64 × 2048 RGBA16 pixels is 1 MiB.
    const STRIP_ROWS: u32 = 64;
    let (width, height) = (image.width(), image.height());
    let mut gray = Vec::with_capacity(width as usize * height as usize);
    let mut y = 0;
    while y < height {
        let rows = STRIP_ROWS.min(height - y);
        let strip = image.crop_imm(0, y, width, rows).to_luma_alpha8();
        gray.extend(strip.pixels().map(|p| blend_over_white(p.0)));
        y += rows;
    }
    let got = gray.len();
    GrayImage::from_raw(width, height, gray).ok_or(PreprocessError::BadBuffer {
        width,
        height,
        got,
    })
}

#[cfg(feature = "decode")]
/// Integer alpha blend over 255, rounded; at most 255.
fn blend_over_white([l, a]: [u8; 2]) -> u8 {
    let (l, a) = (u32::from(l), u32::from(a));
    ((l * a + 255 * (255 - a) + 127) / 255) as u8
}

#[cfg(feature = "decode")]
fn over_white(image: &GrayAlphaImage) -> Result<GrayImage, PreprocessError> {
    let (width, height) = image.dimensions();
    let gray: Vec<u8> = image.pixels().map(|p| blend_over_white(p.0)).collect();
    let got = gray.len();
    GrayImage::from_raw(width, height, gray).ok_or(PreprocessError::BadBuffer {
        width,
        height,
        got,
    })
}

#[cfg(feature = "decode")]
/// Decode and preprocess in one step: what predict does with an upload.
pub fn preprocess_bytes(bytes: &[u8]) -> Result<Preprocessed, PreprocessError> {
    let gray = decode_gray(bytes)?;
    preprocess_gray(gray.width(), gray.height(), gray.as_raw())
}

#[cfg(feature = "decode")]
/// Preprocesses an image already decoded (any colour type; transparency composited
/// over white, as [`decode_gray`] does).
pub fn preprocess_image(image: &DynamicImage) -> Result<Preprocessed, PreprocessError> {
    let gray = gray_of(image)?;
    preprocess_gray(gray.width(), gray.height(), gray.as_raw())
}

/// The one preprocessing function: 8-bit luminance (0 black, 255 white),
/// row-major, of any size and polarity.
///
/// Memory beyond `pixels`: a few KB and one 20-column strip of the ink's height; every
/// per-pixel value comes from a 256-entry table, so no float copy of the image exists.
pub fn preprocess_gray(
    width: u32,
    height: u32,
    pixels: &[u8],
) -> Result<Preprocessed, PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty);
    }
    let too_large = |limit| PreprocessError::TooLarge {
        width,
        height,
        limit,
    };
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(too_large(SizeLimit::Side));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(too_large(SizeLimit::Pixels));
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
    // The strongest ink is at the darkest (or, light on dark, the lightest) pixel: one
    // pass that vectorises, and all a blank page costs.
    let extreme = if dark_on_light {
        pixels.iter().copied().min()
    } else {
        pixels.iter().copied().max()
    };
    let peak = extreme.map_or(0, ink_of);
    if peak < MIN_CONTRAST {
        return Err(PreprocessError::NoInk);
    }
    let scale = 1.0 / f32::from(peak);
    let level = |p: u8| -> f32 {
        let v = f32::from(ink_of(p)) * scale;
        if v < INK_THRESHOLD { 0.0 } else { v }
    };
    // The same value for the same grey level, computed once per level rather than per
    // pixel: bit for bit what a per-pixel `level` gave.
    let mut levels = [0.0f32; 256];
    for (p, slot) in (0..=255u8).zip(levels.iter_mut()) {
        *slot = level(p);
    }
    // `level` grows with the ink, and the ink with darkness (or lightness), so the grey
    // levels that count as ink are those up to (or from) one threshold: a byte compare.
    let mut ink_levels = (0..=255u8).filter(|&p| levels[usize::from(p)] > 0.0);
    let threshold = if dark_on_light {
        ink_levels.next_back()
    } else {
        ink_levels.next()
    };
    let Some(threshold) = threshold else {
        return Err(PreprocessError::NoInk);
    };
    let is_ink = |p: &u8| {
        if dark_on_light {
            *p <= threshold
        } else {
            *p >= threshold
        }
    };

    // Bounding box of the ink (non-empty: the peak pixel is in it).
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0usize, 0usize);
    for (y, row) in pixels.chunks_exact(w).enumerate() {
        if let Some(first) = row.iter().position(is_ink) {
            let last = row.iter().rposition(is_ink).unwrap_or(first);
            x0 = x0.min(first);
            x1 = x1.max(last);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 || y0 > y1 {
        return Err(PreprocessError::NoInk);
    }
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let ink = Region {
        pixels,
        stride: w,
        x0,
        y0,
        width: bw,
        height: bh,
    };

    // Longest side to 20 px, the other in proportion (at least one pixel).
    let longest = bw.max(bh) as f32;
    let nw = ((bw as f32 * BOX as f32 / longest).round() as usize).clamp(1, BOX);
    let nh = ((bh as f32 * BOX as f32 / longest).round() as usize).clamp(1, BOX);
    let small = resize(&ink, &levels, nw, nh);

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

    let brightness: u64 = pixels.iter().map(|&p| u64::from(p)).sum();
    let mean_brightness = (brightness as f64 / (w * h) as f64 / 255.0) as f32;
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

/// The ink's bounding box, read in place in the image.
struct Region<'a> {
    pixels: &'a [u8],
    stride: usize,
    x0: usize,
    y0: usize,
    width: usize,
    height: usize,
}

impl Region<'_> {
    fn rows(&self) -> impl Iterator<Item = &[u8]> {
        self.pixels
            .chunks_exact(self.stride)
            .skip(self.y0)
            .take(self.height)
            .map(|row| &row[self.x0..self.x0 + self.width])
    }
}

/// Separable triangle (bilinear) resampling whose support widens with the
/// reduction factor, as Pillow's BILINEAR does: a 400 px stroke shrunk to 20 px
/// is averaged, not sampled, so thin strokes neither vanish nor alias. The source
/// values are `levels` of the region's grey levels.
fn resize(src: &Region<'_>, levels: &[f32; 256], dw: usize, dh: usize) -> Vec<f32> {
    let (sw, sh) = (src.width, src.height);
    let horizontal = taps(sw, dw);
    let mut tmp = vec![0.0f32; dw * sh];
    for (src_row, out_row) in src.rows().zip(tmp.chunks_exact_mut(dw)) {
        for (out, (start, weights)) in out_row.iter_mut().zip(&horizontal) {
            *out = weights
                .iter()
                .zip(&src_row[*start..])
                .map(|(w, &p)| w * levels[usize::from(p)])
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

#[cfg(feature = "decode")]
/// Decompression bombs built in code (no binary files in the repository), for the
/// limit tests (here and tests/tests/image_limits.rs) and the `bombs` benchmark
/// (tests/benches/predict.rs). Each is a valid file of its format whose pixels are all
/// one colour and cost next to nothing to store, whatever size it claims: what issue
/// 19's finding 5 sent (a 704-byte WebP, a 14 KB GIF, a progressive JPEG and a 16-bit
/// PNG decoding near 4096×4096). Built without any pixel buffer, so a 4000×4000 bomb
/// is cheap to make in a test.
pub mod bombs {
    /// Bits packed least significant first (deflate, LZW, WebP lossless).
    #[derive(Default)]
    struct LsbBits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }

    impl LsbBits {
        fn put(&mut self, value: u32, bits: u32) {
            self.acc |= u64::from(value) << self.len;
            self.len += bits;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }

        /// A Huffman code, which deflate stores most significant bit first.
        fn put_code(&mut self, code: u32, bits: u32) {
            let reversed = code.reverse_bits() >> (32 - bits);
            self.put(reversed, bits);
        }

        fn finish(mut self) -> Vec<u8> {
            if self.len > 0 {
                self.out.push(self.acc as u8);
            }
            self.out
        }
    }

    /// Bits packed most significant first with JPEG's byte stuffing (0xFF → 0xFF 0x00).
    #[derive(Default)]
    struct JpegBits {
        out: Vec<u8>,
        acc: u32,
        len: u32,
    }

    impl JpegBits {
        fn put(&mut self, value: u32, bits: u32) {
            for i in (0..bits).rev() {
                self.acc = (self.acc << 1) | ((value >> i) & 1);
                self.len += 1;
                if self.len == 8 {
                    self.out.push(self.acc as u8);
                    if self.acc == 0xFF {
                        self.out.push(0);
                    }
                    self.acc = 0;
                    self.len = 0;
                }
            }
        }

        /// Pads the last byte with one bits, as the standard says.
        fn finish(mut self) -> Vec<u8> {
            if self.len > 0 {
                let pad = 8 - self.len;
                self.put((1 << pad) - 1, pad);
            }
            self.out
        }
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// A zlib stream of `n` zero bytes: one fixed-Huffman deflate block, a literal and
    /// then matches of 258 at distance 1 (13 bits each: ~160 bytes per byte).
    fn zlib_zeros(n: u64) -> Vec<u8> {
        let mut bits = LsbBits::default();
        bits.put(1, 1); // the final block
        bits.put(1, 2); // fixed Huffman codes
        let mut left = n;
        if left > 0 {
            bits.put_code(0x30, 8); // literal 0
            left -= 1;
        }
        while left >= 258 {
            bits.put_code(0xC5, 8); // length 258 (symbol 285)
            bits.put_code(0, 5); // distance 1
            left -= 258;
        }
        for _ in 0..left {
            bits.put_code(0x30, 8);
        }
        bits.put_code(0, 7); // end of block
        let mut out = vec![0x78, 0x01];
        out.extend(bits.finish());
        // Adler-32 of zeros: a = 1, b = n × 1.
        let adler = (((n % 65_521) as u32) << 16) | 1;
        out.extend_from_slice(&adler.to_be_bytes());
        out
    }

    /// A PNG of `channels` (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) of 8 or 16 bits, every
    /// sample zero: black, or fully transparent where there is alpha.
    pub fn png(width: u32, height: u32, channels: u8, sixteen_bit: bool) -> Vec<u8> {
        let (colour_type, channels) = match channels {
            0 | 1 => (0u8, 1u8),
            2 => (4, 2),
            3 => (2, 3),
            _ => (6, 4),
        };
        let depth: u8 = if sixteen_bit { 16 } else { 8 };
        let row = 1 + u64::from(width) * u64::from(channels) * u64::from(depth / 8);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[depth, colour_type, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        png_chunk(&mut out, b"IDAT", &zlib_zeros(row * u64::from(height)));
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A mid-grey JPEG of 1 (grey) or 3 (Y'CbCr, 4:4:4) components, baseline or
    /// progressive (one DC scan, then per component one AC scan of end-of-band runs of
    /// up to 32,767 blocks): about 2 bits (baseline) or 1 bit (progressive) per 8×8 block
    /// and component.
    pub fn jpeg(width: u16, height: u16, components: u8, progressive: bool) -> Vec<u8> {
        jpeg_scans(width, height, components, if progressive { 1 } else { 0 })
    }

    /// [`jpeg`], progressive with the AC coefficients of each component split into
    /// `bands` spectral bands (1..=63), one scan each: `1 + bands × components` scans
    /// (zune-jpeg takes at most 99); 0 bands is baseline.
    pub fn jpeg_scans(width: u16, height: u16, components: u8, bands: u8) -> Vec<u8> {
        let progressive = bands > 0;
        let bands = bands.min(63);
        let components = if components >= 3 { 3 } else { 1 };
        let mut out = vec![0xFF, 0xD8];
        // Quantisation table 0, all ones.
        out.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
        out.extend_from_slice(&[1; 64]);
        // Frame header: SOF0 (baseline) or SOF2 (progressive), 8 bits, 1×1 sampling.
        out.extend_from_slice(&[0xFF, if progressive { 0xC2 } else { 0xC0 }]);
        out.extend_from_slice(&(8 + 3 * u16::from(components)).to_be_bytes());
        out.push(8);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&width.to_be_bytes());
        out.push(components);
        for id in 1..=components {
            out.extend_from_slice(&[id, 0x11, 0]);
        }
        // DC table 0: one code, "0", for difference category 0.
        out.extend_from_slice(&[0xFF, 0xC4, 0, 20, 0x00, 1]);
        out.extend_from_slice(&[0; 15]);
        out.push(0x00);
        // AC table 0: baseline, one code "0" for end of block; progressive, 4-bit
        // codes 0..=14 for end-of-band runs EOB0..EOB14 (symbols 0x00..0xE0).
        if progressive {
            out.extend_from_slice(&[0xFF, 0xC4, 0, 34, 0x10, 0, 0, 0, 15]);
            out.extend_from_slice(&[0; 12]);
            out.extend((0..15u8).map(|r| r << 4));
        } else {
            out.extend_from_slice(&[0xFF, 0xC4, 0, 20, 0x10, 1]);
            out.extend_from_slice(&[0; 15]);
            out.push(0x00);
        }
        let blocks = u64::from(width.div_ceil(8)) * u64::from(height.div_ceil(8));
        let scan = |out: &mut Vec<u8>, ids: &[u8], ss: u8, se: u8| {
            out.extend_from_slice(&[0xFF, 0xDA]);
            out.extend_from_slice(&(6 + 2 * ids.len() as u16).to_be_bytes());
            out.push(ids.len() as u8);
            for &id in ids {
                out.extend_from_slice(&[id, 0x00]);
            }
            out.extend_from_slice(&[ss, se, 0]);
        };
        let ids: Vec<u8> = (1..=components).collect();
        if progressive {
            scan(&mut out, &ids, 0, 0);
            let mut bits = JpegBits::default();
            for _ in 0..blocks * u64::from(components) {
                bits.put(0, 1);
            }
            out.extend(bits.finish());
            for &id in &ids {
                for band in 0..bands {
                    // Coefficients 1..=63 in `bands` contiguous ranges.
                    let (band, all) = (u32::from(band), u32::from(bands));
                    let ss = 1 + band * 63 / all;
                    let se = (band + 1) * 63 / all;
                    scan(&mut out, &[id], ss as u8, se as u8);
                    let mut bits = JpegBits::default();
                    let mut left = blocks;
                    while left > 0 {
                        let run = left.min(32_767);
                        let r = 63 - run.leading_zeros();
                        bits.put(r, 4);
                        bits.put((run - (1 << r)) as u32, r);
                        left -= run;
                    }
                    out.extend(bits.finish());
                }
            }
        } else {
            scan(&mut out, &ids, 0, 63);
            let mut bits = JpegBits::default();
            for _ in 0..blocks * u64::from(components) {
                bits.put(0, 2); // DC category 0, then end of block
            }
            out.extend(bits.finish());
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    /// [`jpeg`] cut right after its first scan's header: no coded data at all, about 150
    /// bytes. zune-jpeg, lenient as `image` runs it (and as this crate does, so that a
    /// camera's slightly short file still reads), returns the whole image from it
    /// (mid-grey, black where it gave up): the full buffer and preprocessing for nothing.
    pub fn jpeg_headers(width: u16, height: u16, components: u8, progressive: bool) -> Vec<u8> {
        let mut out = jpeg(width, height, components, progressive);
        let sos = out
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .unwrap_or(out.len());
        // The marker, then the header's length, which counts its own two bytes.
        let len = out
            .get(sos + 2..sos + 4)
            .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
        out.truncate((sos + 2 + len).min(out.len()));
        out
    }

    /// The LZW data of `pixels` copies of colour index 1 with 2-bit minimum codes: each
    /// code is one pixel longer than the last until the table is full (~1,300 pixels per
    /// byte, the most LZW gives).
    fn lzw_flat(pixels: u64) -> Vec<u8> {
        const MIN: u32 = 2;
        let clear = 1u32 << MIN;
        let end = clear + 1;
        let mut bits = LsbBits::default();
        let (mut width, mut next, mut len) = (MIN + 1, clear + 2, 1u64);
        bits.put(clear, width);
        let mut left = pixels;
        while left > 0 {
            let k = len.min(left);
            let code = if k == 1 {
                1
            } else {
                clear + 2 + (k - 2) as u32
            };
            bits.put(code, width);
            left -= k;
            len += 1;
            // The encoder's table runs one entry ahead of the decoder's: it widens its
            // codes one entry later than the decoder's 2^width.
            if next < 4096 {
                next += 1;
                if next > (1 << width) && width < 12 {
                    width += 1;
                }
            }
            if next == 4096 && left > 0 {
                bits.put(clear, width);
                (width, next, len) = (MIN + 1, clear + 2, 1);
            }
        }
        bits.put(end, width);
        bits.finish()
    }

    /// A GIF whose logical screen is `screen` and whose one frame, at 0,0, is `frame`
    /// of white (the screen beyond it transparent). A frame larger than the screen is
    /// legal to the gif decoder and is decoded whole.
    pub fn gif(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&screen.0.to_le_bytes());
        out.extend_from_slice(&screen.1.to_le_bytes());
        // A global colour table of 2 entries: black, white.
        out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
        out.push(0x2C);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&frame.0.to_le_bytes());
        out.extend_from_slice(&frame.1.to_le_bytes());
        out.push(0);
        out.push(2); // minimum code size
        let data = lzw_flat(u64::from(frame.0) * u64::from(frame.1));
        for block in data.chunks(255) {
            out.push(block.len() as u8);
            out.extend_from_slice(block);
        }
        out.push(0);
        out.push(0x3B);
        out
    }

    /// A white lossless WebP (VP8L) of at most 16384 a side: every prefix code holds
    /// one symbol, which takes zero bits, so the pixels take no bytes at all.
    pub fn webp(width: u32, height: u32) -> Vec<u8> {
        let mut bits = LsbBits::default();
        bits.put(0x2F, 8);
        bits.put(width.clamp(1, 16_384) - 1, 14);
        bits.put(height.clamp(1, 16_384) - 1, 14);
        bits.put(0, 1); // no alpha
        bits.put(0, 3); // version 0
        bits.put(0, 1); // no transform
        bits.put(0, 1); // no colour cache
        bits.put(0, 1); // no meta prefix codes
        // Green, red, blue, alpha: one 8-bit symbol, 255. Distance: one 1-bit symbol, 0.
        for _ in 0..4 {
            bits.put(1, 1); // simple code
            bits.put(0, 1); // one symbol
            bits.put(1, 1); // of 8 bits
            bits.put(255, 8);
        }
        bits.put(1, 1);
        bits.put(0, 1);
        bits.put(0, 1);
        bits.put(0, 1);
        let mut data = bits.finish();
        // The decoder reads ahead; the bytes after the last code are never used.
        data.extend_from_slice(&[0; 8]);
        // RIFF chunks are of even length.
        if !data.len().is_multiple_of(2) {
            data.push(0);
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(4 + 8 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WEBPVP8L");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend(data);
        out
    }

    /// An 8-bit run-length BMP whose data is only "end of bitmap": every pixel left at
    /// the first palette entry (black).
    pub fn bmp(width: u32, height: u32) -> Vec<u8> {
        let data = [0u8, 1];
        let offset = 14 + 40 + 8;
        let mut out = b"BM".to_vec();
        out.extend_from_slice(&((offset + data.len()) as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        out.extend_from_slice(&40u32.to_le_bytes());
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&height.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // BI_RLE8
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&2835u32.to_le_bytes());
        out.extend_from_slice(&2835u32.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0]);
        out.extend_from_slice(&data);
        out
    }

    /// `bytes` followed by zeros up to `len` bytes: the cheapest way to meet a density
    /// bound (every decoder here ignores what follows the image's end).
    pub fn padded(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
        if bytes.len() < len {
            bytes.resize(len, 0);
        }
        bytes
    }
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

    /// A small deterministic generator (xorshift).
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// How much of a ring ("0") of radius 0.3·side and stroke side/40 covers the pixel,
    /// anti-aliased as a drawing app draws it: 0 = paper, 1 = ink.
    fn ring(side: u32, x: u32, y: u32) -> f32 {
        let c = side as f32 / 2.0;
        let (dx, dy) = (x as f32 + 0.5 - c, y as f32 + 0.5 - c);
        let d = ((dx * dx + dy * dy).sqrt() - 0.3 * side as f32).abs();
        let half = (side as f32 / 80.0).max(1.0);
        (half + 0.5 - d).clamp(0.0, 1.0)
    }

    /// A canvas drawing: white, one dark anti-aliased stroke.
    fn canvas(side: u32) -> GrayImage {
        GrayImage::from_fn(side, side, |x, y| {
            Luma([(255.0 - 230.0 * ring(side, x, y)).round() as u8])
        })
    }

    /// The same stroke on a transparent canvas, as a browser exports it.
    fn transparent_canvas(side: u32) -> image::RgbaImage {
        image::RgbaImage::from_fn(side, side, |x, y| {
            image::Rgba([0, 0, 0, (255.0 * ring(side, x, y)).round() as u8])
        })
    }

    /// A photo-like digit: grey paper with sensor noise, the stroke darker.
    fn photo(w: u32, h: u32, seed: u64) -> GrayImage {
        let mut noise = Noise(seed | 1);
        let side = w.min(h);
        GrayImage::from_fn(w, h, |x, y| {
            let n = (noise.next() % 13) as f32 - 6.0;
            let ink = ring(side, x.min(side - 1), y.min(side - 1));
            Luma([(200.0 - 150.0 * ink + n).clamp(0.0, 255.0) as u8])
        })
    }

    fn jpeg(image: &DynamicImage, quality: u8) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        image.write_with_encoder(encoder).unwrap();
        out.into_inner()
    }

    fn density(bytes: &[u8]) -> f64 {
        let h = screen(bytes).unwrap();
        f64::from(h.width) * f64::from(h.height) / bytes.len() as f64
    }

    /// The refusal, checked to come from the header (the size check named, no decoder
    /// involved) both from `screen` and from the whole upload path.
    fn refused_by(bytes: &[u8], limit: SizeLimit) {
        let err = screen(bytes).unwrap_err();
        match &err {
            PreprocessError::TooLarge { limit: got, .. } => assert_eq!(*got, limit, "{err}"),
            other => panic!("expected {limit:?}, got {other:?}"),
        }
        assert_eq!(preprocess_bytes(bytes).unwrap_err(), err);
        assert_eq!(decode(bytes).unwrap_err(), err);
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
            Err(PreprocessError::TooLarge {
                limit: SizeLimit::Side,
                ..
            })
        ));
        // More than MAX_PIXELS (the buffer is not even looked at).
        assert!(matches!(
            preprocess_gray(4096, 1025, &[]),
            Err(PreprocessError::TooLarge {
                limit: SizeLimit::Pixels,
                ..
            })
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

    #[test]
    fn fuzzed_jpegs_gifs_webps_and_bombs_never_panic() {
        let mut noise = Noise(0x2545_F491_4F6C_DD1D);
        let digit = DynamicImage::ImageLuma8(bar(60, 50, 20, 5, 9, 40));
        let colour = DynamicImage::ImageRgb8(digit.to_rgb8());
        let seeds = [
            jpeg(&digit, 85),
            jpeg(&colour, 85),
            encode(&digit, ImageFormat::Gif),
            encode(&digit, ImageFormat::WebP),
            bombs::jpeg(64, 40, 3, true),
            bombs::jpeg(64, 40, 1, false),
            bombs::gif((30, 20), (40, 30)),
            bombs::webp(50, 40),
            bombs::bmp(50, 40),
            bombs::png(50, 40, 4, true),
        ];
        for seed in &seeds {
            for _ in 0..60 {
                let mut bytes = seed.clone();
                for _ in 0..1 + noise.next() % 4 {
                    let i = (noise.next() as usize) % bytes.len();
                    bytes[i] = noise.next() as u8;
                }
                if noise.next().is_multiple_of(4) {
                    let cut = (noise.next() as usize) % bytes.len();
                    bytes.truncate(cut);
                }
                let _ = preprocess_bytes(&bytes);
            }
        }
    }

    #[test]
    fn the_bombs_are_real_images() {
        // Small, each decodes to what its header claims, one flat colour: no ink.
        let cases: Vec<(&str, Vec<u8>, (u32, u32))> = vec![
            ("png 8", bombs::png(61, 37, 1, false), (61, 37)),
            ("png rgba 16", bombs::png(61, 37, 4, true), (61, 37)),
            ("png grey+alpha", bombs::png(61, 37, 2, false), (61, 37)),
            ("png 16", bombs::png(61, 37, 1, true), (61, 37)),
            ("jpeg grey", bombs::jpeg(61, 37, 1, false), (61, 37)),
            ("jpeg colour", bombs::jpeg(61, 37, 3, false), (61, 37)),
            ("progressive grey", bombs::jpeg(61, 37, 1, true), (61, 37)),
            ("progressive colour", bombs::jpeg(61, 37, 3, true), (61, 37)),
            ("97 scans", bombs::jpeg_scans(61, 37, 3, 32), (61, 37)),
            ("gif", bombs::gif((61, 37), (61, 37)), (61, 37)),
            (
                "gif frame > screen",
                bombs::gif((20, 10), (61, 37)),
                (20, 10),
            ),
            ("webp", bombs::webp(61, 37), (61, 37)),
            ("bmp", bombs::bmp(61, 37), (61, 37)),
        ];
        for (what, bytes, size) in cases {
            let colour = decode(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((colour.width(), colour.height()), size, "{what}");
            let gray = decode_gray(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(gray.dimensions(), size, "{what}");
            let first = gray.as_raw()[0];
            assert!(
                gray.as_raw().iter().all(|&p| p == first),
                "{what}: not flat"
            );
            assert_eq!(
                preprocess_bytes(&bytes).unwrap_err(),
                PreprocessError::NoInk,
                "{what}"
            );
        }
        // A GIF's LZW data over several table resets, and a JPEG's end-of-band runs
        // over several codes, still decode to the full image.
        // Headers only: the whole image all the same, for no data.
        for progressive in [false, true] {
            let bytes = bombs::jpeg_headers(61, 37, 3, progressive);
            assert_eq!(decode_gray(&bytes).unwrap().dimensions(), (61, 37));
        }
        let gif = bombs::gif((700, 500), (700, 500));
        assert_eq!(decode_gray(&gif).unwrap().dimensions(), (700, 500));
        let jpeg = bombs::jpeg(2000, 160, 1, true);
        assert_eq!(decode_gray(&jpeg).unwrap().dimensions(), (2000, 160));
    }

    /// Issue 19, finding 5: each bomb is refused from its header, before a pixel buffer
    /// exists; the old code decoded each to ~4096×4096 (~100–190 ms, ~115 MB).
    #[test]
    fn small_files_that_claim_huge_sizes_are_refused_from_the_header() {
        let webp = bombs::webp(4096, 4096);
        let gif = bombs::gif((4096, 4096), (4096, 4096));
        let progressive = bombs::jpeg(4096, 4096, 3, true);
        let png16 = bombs::png(4000, 4000, 1, true);
        let bmp = bombs::bmp(4096, 4096);
        // As small as the finding's, or smaller: 704 B, 14 KB, 197 KB, 138 KB.
        assert!(webp.len() < 704, "{}", webp.len());
        assert!(gif.len() < 14_000, "{}", gif.len());
        assert!(progressive.len() < 197_000, "{}", progressive.len());
        assert!(png16.len() < 250_000, "{}", png16.len());
        for (what, bytes) in [
            ("webp", &webp),
            ("gif", &gif),
            ("progressive jpeg", &progressive),
            ("16-bit png", &png16),
            ("bmp", &bmp),
            ("baseline jpeg", &bombs::jpeg(4000, 3000, 1, false)),
            (
                "jpeg headers only",
                &bombs::jpeg_headers(4096, 4096, 3, true),
            ),
            ("png", &bombs::png(4032, 3024, 3, false)),
        ] {
            eprintln!("{what}: {} bytes", bytes.len());
            refused_by(bytes, SizeLimit::Pixels);
        }
        // Within the pixel cap but far denser than any photo or drawing.
        let webp = bombs::webp(2048, 2048);
        refused_by(&webp, SizeLimit::Density { bytes: webp.len() });
        let bmp = bombs::bmp(2048, 2048);
        refused_by(&bmp, SizeLimit::Density { bytes: bmp.len() });
        let jpeg = bombs::jpeg_headers(2048, 2048, 3, false);
        assert!(jpeg.len() < 200, "{}", jpeg.len());
        refused_by(&jpeg, SizeLimit::Density { bytes: jpeg.len() });
        let sparse_gif = bombs::gif((2048, 2048), (1, 1));
        refused_by(
            &sparse_gif,
            SizeLimit::Density {
                bytes: sparse_gif.len(),
            },
        );
        // A 1×1 screen whose one frame is 4096×4096: the frame is checked too.
        refused_by(&bombs::gif((1, 1), (4096, 4096)), SizeLimit::Pixels);
        refused_by(&bombs::gif((1, 1), (5000, 10)), SizeLimit::Side);
    }

    #[test]
    fn the_limits_hold_at_their_edges() {
        let huge = usize::MAX / 4096;
        assert_eq!(check_size(2048, 2048, huge), Ok(()));
        assert_eq!(check_size(4096, 1024, huge), Ok(()));
        assert_eq!(check_size(1, 4096, 1), Ok(()));
        assert!(matches!(
            check_size(2049, 2048, huge),
            Err(PreprocessError::TooLarge {
                limit: SizeLimit::Pixels,
                ..
            })
        ));
        assert!(matches!(
            check_size(4097, 1, huge),
            Err(PreprocessError::TooLarge {
                limit: SizeLimit::Side,
                ..
            })
        ));
        assert_eq!(check_size(0, 10, 100), Err(PreprocessError::Empty));
        // Density: free up to 512×512 whatever the bytes, then MAX_PIXELS_PER_BYTE.
        assert_eq!(check_size(512, 512, 1), Ok(()));
        assert!(matches!(
            check_size(513, 512, 1),
            Err(PreprocessError::TooLarge {
                limit: SizeLimit::Density { bytes: 1 },
                ..
            })
        ));
        let at_limit = (MAX_PIXELS / MAX_PIXELS_PER_BYTE) as usize;
        assert_eq!(check_size(2048, 2048, at_limit), Ok(()));
        assert!(check_size(2048, 2048, at_limit - 1).is_err());
        // A real bomb padded to exactly the bound is accepted (and then decoded).
        let webp = bombs::padded(bombs::webp(2048, 2048), at_limit);
        assert!(screen(&webp).is_ok());
        let short = bombs::padded(bombs::webp(2048, 2048), at_limit - 1);
        assert!(screen(&short).is_err());
    }

    #[test]
    fn the_messages_say_the_limit_and_what_to_do() {
        let pixels = screen(&bombs::webp(4096, 4096)).unwrap_err().to_string();
        assert!(pixels.contains("4096×4096"), "{pixels}");
        assert!(pixels.contains("4,194,304 pixels (2048×2048)"), "{pixels}");
        assert!(pixels.contains("resize"), "{pixels}");
        let dense = screen(&bombs::webp(2048, 2048)).unwrap_err().to_string();
        assert!(dense.contains("pixels per byte"), "{dense}");
        assert!(dense.contains("resize"), "{dense}");
    }

    #[test]
    fn honest_inputs_are_accepted() {
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        for side in [512, 1024, 2048] {
            let drawing = DynamicImage::ImageLuma8(canvas(side));
            inputs.push((
                format!("canvas {side} png"),
                encode(&drawing, ImageFormat::Png),
            ));
            inputs.push((format!("canvas {side} jpeg"), jpeg(&drawing, 90)));
            let rgba = DynamicImage::ImageRgba8(transparent_canvas(side));
            inputs.push((
                format!("transparent canvas {side} png"),
                encode(&rgba, ImageFormat::Png),
            ));
        }
        let drawing = DynamicImage::ImageLuma8(canvas(512));
        let rgb = DynamicImage::ImageRgb8(drawing.to_rgb8());
        inputs.push(("canvas 512 rgb png".into(), encode(&rgb, ImageFormat::Png)));
        inputs.push(("canvas 512 rgb jpeg".into(), jpeg(&rgb, 90)));
        for format in [ImageFormat::Gif, ImageFormat::WebP, ImageFormat::Bmp] {
            inputs.push((format!("canvas 512 {format:?}"), encode(&drawing, format)));
        }
        for (n, (w, h)) in [(64, 64), (300, 200), (512, 512), (1024, 768), (2048, 1536)]
            .into_iter()
            .enumerate()
        {
            let photo = DynamicImage::ImageLuma8(photo(w, h, n as u64 + 7));
            inputs.push((
                format!("photo {w}×{h} png"),
                encode(&photo, ImageFormat::Png),
            ));
            inputs.push((format!("photo {w}×{h} jpeg"), jpeg(&photo, 75)));
        }
        let mut densest = 0.0f64;
        for (what, bytes) in &inputs {
            let d = density(bytes);
            eprintln!("{what}: {} bytes, {d:.1} pixels per byte", bytes.len());
            densest = densest.max(d);
            let out = preprocess_bytes(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(out.input.iter().any(|&v| v > 0.5), "{what}");
        }
        // Far below the bound: the margin the bound was chosen with.
        assert!(densest * 4.0 < MAX_PIXELS_PER_BYTE as f64, "{densest}");
        // Blank pages are still "no digit" (422), not "too large" (413).
        for side in [64, 512, 2048] {
            let blank = GrayImage::from_pixel(side, side, Luma([255]));
            let bytes = encode(&DynamicImage::ImageLuma8(blank), ImageFormat::Png);
            eprintln!("blank {side} png: {:.1} pixels per byte", density(&bytes));
            assert_eq!(
                preprocess_bytes(&bytes).unwrap_err(),
                PreprocessError::NoInk
            );
        }
        let blank = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            512,
            512,
            image::Rgba([255, 255, 255, 255]),
        ));
        for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            let bytes = encode(&blank, format);
            assert_eq!(
                preprocess_bytes(&bytes).unwrap_err(),
                PreprocessError::NoInk,
                "{format:?}"
            );
        }
    }

    #[test]
    fn the_largest_accepted_images_decode_under_the_allocation_cap() {
        // 2048² RGBA at 16 bits (32 MiB decoded, the widest buffer): a gradient with a
        // diagonal stroke, as a real (if odd) upload would be.
        let wide = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(2048, 2048, |x, y| {
            let v = if x.abs_diff(y) < 6 {
                4000
            } else {
                50_000 + (x as u16 & 0xFF)
            };
            image::Rgba([v, v, v, 65_535])
        });
        let bytes = encode(&DynamicImage::ImageRgba16(wide), ImageFormat::Png);
        let out = preprocess_bytes(&bytes).unwrap();
        assert!(out.features.ink_box_share > 0.9);
        // A frame larger than its screen: image decodes the frame apart, then crops.
        let gif = bombs::gif((1024, 1024), (2048, 2048));
        assert_eq!(decode_gray(&gif).unwrap().dimensions(), (1024, 1024));
    }

    /// The conversion to grey as it was: the whole image at once.
    fn gray_as_before(image: &DynamicImage) -> Preprocessed {
        let gray: Vec<u8> = if image.color().has_alpha() {
            image
                .to_luma_alpha8()
                .pixels()
                .map(|p| {
                    let [l, a] = p.0;
                    let (l, a) = (u32::from(l), u32::from(a));
                    ((l * a + 255 * (255 - a) + 127) / 255) as u8
                })
                .collect()
        } else {
            image.to_luma8().into_raw()
        };
        preprocess_gray(image.width(), image.height(), &gray).unwrap()
    }

    #[test]
    fn grey_results_are_what_they_were() {
        // The luma paths (JPEG's own plane, grey PNGs taken as they are, alpha composited
        // a strip at a time) against image's decode and whole-image conversion, which is
        // what ran before.
        let drawing = DynamicImage::ImageLuma8(photo(300, 240, 3));
        let rgba = DynamicImage::ImageRgba8(transparent_canvas(200));
        let gray_alpha = DynamicImage::ImageLumaA8(rgba.to_luma_alpha8());
        let tall = DynamicImage::ImageRgba16(image::ImageBuffer::from_fn(90, 300, |x, y| {
            let ink = ring(300, x * 3, y);
            image::Rgba([40_000, 30_000, 9_000, (65_535.0 * ink) as u16])
        }));
        for (what, bytes) in [
            ("grey png", encode(&drawing, ImageFormat::Png)),
            ("grey jpeg", jpeg(&drawing, 80)),
            ("rgba png", encode(&rgba, ImageFormat::Png)),
            ("grey+alpha png", encode(&gray_alpha, ImageFormat::Png)),
            (
                "rgba 16 png, several strips",
                encode(&tall, ImageFormat::Png),
            ),
            ("rgba webp", encode(&rgba, ImageFormat::WebP)),
            ("gif", encode(&drawing, ImageFormat::Gif)),
            ("bmp", encode(&drawing, ImageFormat::Bmp)),
        ] {
            let decoded = image::load_from_memory(&bytes).unwrap();
            let before = gray_as_before(&decoded);
            let now = preprocess_bytes(&bytes).unwrap();
            assert_eq!(before.input, now.input, "{what}");
            assert_eq!(before.features, now.features, "{what}");
            let image = preprocess_image(&decoded).unwrap();
            assert_eq!(before.input, image.input, "{what}");
        }
    }

    #[test]
    fn colour_jpegs_read_their_own_luma() {
        // A grey digit and a blue-ink one on cream paper, as colour JPEGs (4:2:0).
        // Odd sizes: the 4:2:0 chroma blocks overhang the image.
        let grey = photo(333, 227, 11);
        let grey_rgb = DynamicImage::ImageRgb8(DynamicImage::ImageLuma8(grey.clone()).to_rgb8());
        let blue = DynamicImage::ImageRgb8(RgbImage::from_fn(321, 239, |x, y| {
            let ink = ring(239, x.min(238), y);
            let mix = |paper: f32, ink_c: f32| (paper + (ink_c - paper) * ink).round() as u8;
            image::Rgb([mix(245.0, 20.0), mix(240.0, 40.0), mix(220.0, 160.0)])
        }));
        for (what, image, bound) in [("grey", &grey_rgb, 0.005), ("blue ink", &blue, 0.02)] {
            let bytes = jpeg(image, 85);
            let before = preprocess_image(&decode(&bytes).unwrap()).unwrap();
            let now = preprocess_bytes(&bytes).unwrap();
            let diff = before
                .input
                .iter()
                .zip(&now.input)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("{what}: largest input difference {diff:.4}");
            assert!(diff <= bound, "{what}: {diff}");
        }
    }
}
