//! `cargo xtask bench drift`: the figures of issue 13 (docs/benchmarks.md has them).
//!
//! Sections (`cargo xtask bench drift <section>…`, all by default):
//! - `false-alarms`: 1,000 in-distribution windows at n = 100, 200 and 500 against a
//!   production reference of 500 captured from a disjoint set of the same kind; how many
//!   say `drift` (goal: at most 1 %).
//! - `shifts`: each named shift at n = 200, the share of 200 windows flagged; and, with
//!   the shift starting mid-stream and a check every 50 predictions over the last 200,
//!   the median number of predictions from its start to the first `drift`.
//! - `label-free`: the label-free estimate against each window's true accuracy, in
//!   distribution and under each shift: mean absolute error and how often the truth lies
//!   in the 90 % interval (goal: error ≤ 2 points in distribution).
//! - `ks`: `ks_2samp` on 1,000,000 vs 1,000,000 values against SciPy's in the same run.
//! - `pca`: the multivariate check's cost: fitting the components on a reference of 500
//!   inputs, and a window of 200's errors.
//! - `scheduled`: the scheduled check's duration and peak memory for 5,000 stored
//!   predictions, against the bench's own stack.
//!
//! Traffic is user-like photos of test-split digits (tests/src/traffic.rs) read by the
//! shipped v2 model through the real preprocessing; the verdict is the function's own
//! (`inferloop::drift::data::compare` and the multivariate check on the inputs, with the
//! default settings), the same code the scheduled check runs after reading the window.

use inferloop::drift::DriftSettings;
use inferloop::drift::columns::{self, Column};
use inferloop::drift::data::{self, Verdict};
use inferloop::drift::multivariate::{FittedReference, Multivariate};
use inferloop::model::nn::Rng;
use integration_tests::traffic::{self, Photo, Shift};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const REFERENCE: usize = 500;
const WINDOWS: usize = 1000;
const SHIFT_WINDOWS: usize = 200;
const STREAMS: usize = 50;

fn columns_of(photos: &[&Photo]) -> Vec<Column> {
    let features: Vec<_> = photos.iter().map(|p| p.features).collect();
    columns::from_features(&features)
}

/// A production reference as the check uses it: its columns and the components fitted
/// on its inputs (once, as a check fits them once per run).
struct Reference {
    columns: Vec<Column>,
    fitted: Result<FittedReference, Box<Multivariate>>,
    n: usize,
}

impl Reference {
    fn of(photos: &[&Photo], settings: &DriftSettings) -> Self {
        let inputs: Vec<&[u8; 784]> = photos.iter().map(|p| &p.input).collect();
        Self {
            columns: columns_of(photos),
            fitted: FittedReference::fit(&inputs, settings),
            n: photos.len(),
        }
    }
}

fn verdict(reference: &Reference, window: &[&Photo], settings: &DriftSettings) -> data::DataDrift {
    let current = columns_of(window);
    let pairs = columns::pair(&reference.columns, &current).expect("the same columns");
    let report = data::compare(&pairs, |_| Ok(()), reference.n, window.len(), settings);
    let inputs: Vec<&[u8; 784]> = window.iter().map(|p| &p.input).collect();
    let multivariate = match &reference.fitted {
        Ok(fitted) => fitted.check(&inputs, settings),
        Err(result) => (**result).clone(),
    };
    data::with_multivariate(report, multivariate)
}

/// The names a report's drift came from: its drifted features, and `multivariate`.
fn flagged(report: &data::DataDrift) -> Vec<String> {
    let mut names = report.drifted_features.clone();
    if report.multivariate.is_drifted {
        names.push("multivariate".into());
    }
    names
}

fn draw<'a>(pool: &[&'a Photo], n: usize, rng: &mut Rng) -> Vec<&'a Photo> {
    (0..n).map(|_| pool[rng.below(pool.len())]).collect()
}

struct Pools {
    reference: Vec<Photo>,
    healthy: Vec<Photo>,
    shifted: Vec<(&'static str, Vec<Photo>)>,
}

/// The test split's 2,004 digits: even positions make the reference's photos, odd ones
/// the traffic's (three renderings each), so the reference is a disjoint set.
fn pools(need_shifts: bool) -> Pools {
    let started = Instant::now();
    let model = traffic::shipped_model("v2");
    let even: Vec<usize> = (0..2004).step_by(2).collect();
    let odd: Vec<usize> = (1..2004)
        .step_by(2)
        .flat_map(|p| [p, p + 2004, p + 4008])
        .collect();
    let reference = traffic::shifted_photos(&model, &even, 1, Shift::None);
    let healthy = traffic::shifted_photos(&model, &odd, 2, Shift::None);
    let mut shifted = Vec::new();
    if need_shifts {
        let odd_once: Vec<usize> = (1..2004).step_by(2).collect();
        for (name, shift) in [
            ("rotation ±15°", Shift::Rotation(15.0)),
            ("thicker strokes", Shift::Thicker),
            ("gaussian noise sd 25", Shift::Noise(25.0)),
            ("darker paper", Shift::DarkerPaper),
            ("inverted polarity", Shift::Inverted),
        ] {
            shifted.push((name, traffic::shifted_photos(&model, &odd_once, 3, shift)));
        }
    }
    println!(
        "pools: reference {} photos, healthy {}, {} shifted sets; rendered and read in {:.1} s",
        reference.len(),
        healthy.len(),
        shifted.len(),
        started.elapsed().as_secs_f64()
    );
    Pools {
        reference,
        healthy,
        shifted,
    }
}

fn false_alarms(p: &Pools, settings: &DriftSettings) {
    let mut rng = Rng::new(13);
    let reference_pool: Vec<&Photo> = p.reference.iter().collect();
    let reference = Reference::of(&draw(&reference_pool, REFERENCE, &mut rng), settings);
    if let Ok(fitted) = &reference.fitted {
        println!("multivariate reference: {}", fitted.describe());
    }
    let healthy: Vec<&Photo> = p.healthy.iter().collect();
    println!(
        "\n## false alarms (α {}, {:?}), {WINDOWS} in-distribution windows each",
        settings.alpha, settings.correction
    );
    for n in [100, 200, 500] {
        let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut features: BTreeMap<String, usize> = BTreeMap::new();
        let started = Instant::now();
        for _ in 0..WINDOWS {
            let window = draw(&healthy, n, &mut rng);
            let report = verdict(&reference, &window, settings);
            *verdicts.entry(report.verdict.as_str()).or_default() += 1;
            for f in flagged(&report) {
                *features.entry(f).or_default() += 1;
            }
        }
        let drift = verdicts.get("drift").copied().unwrap_or(0);
        println!(
            "n = {n:>3}: {drift} of {WINDOWS} windows say drift ({:.1} %); verdicts {verdicts:?}; features flagged {features:?}; {:.2} ms a window",
            100.0 * drift as f64 / WINDOWS as f64,
            started.elapsed().as_secs_f64() * 1e3 / WINDOWS as f64
        );
    }
}

/// The named shifts' windows: each image shift's photos, and the digit-share shift drawn
/// from the healthy pool.
fn shift_windows<'a>(p: &'a Pools, name: &str, n: usize, rng: &mut Rng) -> Vec<&'a Photo> {
    if name == "digit 1 at 40 %" {
        let ones: Vec<&Photo> = p.healthy.iter().filter(|x| x.true_label == 1).collect();
        let rest: Vec<&Photo> = p.healthy.iter().filter(|x| x.true_label != 1).collect();
        let k = n * 2 / 5;
        let mut window = draw(&ones, k, rng);
        window.extend(draw(&rest, n - k, rng));
        return window;
    }
    let pool: Vec<&Photo> = p
        .shifted
        .iter()
        .find(|(s, _)| *s == name)
        .map(|(_, v)| v.iter().collect())
        .unwrap_or_default();
    draw(&pool, n, rng)
}

fn shift_names(p: &Pools) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = p.shifted.iter().map(|(n, _)| *n).collect();
    names.push("digit 1 at 40 %");
    names
}

fn shifts(p: &Pools, settings: &DriftSettings) {
    let mut rng = Rng::new(17);
    let reference_pool: Vec<&Photo> = p.reference.iter().collect();
    let reference = Reference::of(&draw(&reference_pool, REFERENCE, &mut rng), settings);
    let healthy: Vec<&Photo> = p.healthy.iter().collect();
    println!(
        "\n## named shifts: windows of 200 flagged, and predictions until the first drift verdict"
    );
    for name in shift_names(p) {
        let mut windows_flagged = 0;
        let mut features: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..SHIFT_WINDOWS {
            let window = shift_windows(p, name, 200, &mut rng);
            let report = verdict(&reference, &window, settings);
            if report.verdict == Verdict::Drift {
                windows_flagged += 1;
            }
            for f in flagged(&report) {
                *features.entry(f).or_default() += 1;
            }
        }
        // Streams: 200 healthy predictions, then the shift; a check every 50 over the
        // last 200. Counted from the shift's first prediction to the check that says drift.
        let mut delays = Vec::new();
        let mut never = 0;
        for _ in 0..STREAMS {
            let mut stream = draw(&healthy, 200, &mut rng);
            stream.extend(shift_windows(p, name, 1000, &mut rng));
            let mut found = None;
            for end in (250..=stream.len()).step_by(50) {
                let report = verdict(&reference, &stream[end - 200..end], settings);
                if report.verdict == Verdict::Drift {
                    found = Some(end - 200);
                    break;
                }
            }
            match found {
                Some(d) => delays.push(d),
                None => never += 1,
            }
        }
        delays.sort_unstable();
        let median = delays
            .get(delays.len() / 2)
            .map_or("never".to_owned(), |d| d.to_string());
        println!(
            "{name:<22} {windows_flagged:>3}/{SHIFT_WINDOWS} windows flagged ({:.0} %); median predictions to first drift {median} ({never} of {STREAMS} streams never within 1,000); features {features:?}",
            100.0 * windows_flagged as f64 / SHIFT_WINDOWS as f64
        );
    }
}

fn median_ms(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn pca(p: &Pools, settings: &DriftSettings) {
    let mut rng = Rng::new(29);
    let reference_pool: Vec<&Photo> = p.reference.iter().collect();
    let reference = draw(&reference_pool, REFERENCE, &mut rng);
    let inputs: Vec<&[u8; 784]> = reference.iter().map(|x| &x.input).collect();
    let healthy: Vec<&Photo> = p.healthy.iter().collect();
    let window: Vec<&[u8; 784]> = draw(&healthy, 200, &mut rng)
        .iter()
        .map(|x| &x.input)
        .collect();
    let (mut fits, mut checks) = (Vec::new(), Vec::new());
    let mut fitted = None;
    for _ in 0..5 {
        let started = Instant::now();
        fitted = Some(FittedReference::fit(&inputs, settings).expect("the reference fits"));
        fits.push(started.elapsed());
        let started = Instant::now();
        let result = fitted.as_ref().expect("fitted").check(&window, settings);
        checks.push(started.elapsed());
        assert_eq!(result.n_current, 200);
    }
    println!(
        "\n## the multivariate check's cost (median of 5)\nfit on {REFERENCE} inputs: {:.1} ms ({}); a window of 200: {:.2} ms",
        median_ms(fits),
        fitted.expect("fitted").describe(),
        median_ms(checks)
    );
}

fn label_free(p: &Pools) {
    let reference: inferloop::drift::reference::TestSplitReference = serde_json::from_str(
        &std::fs::read_to_string(integration_tests::root().join("models/v2/reference.json"))
            .expect("the v2 reference"),
    )
    .expect("the v2 reference parses");
    let calibrator = drift::estimate::calibrator_of(&reference).expect("the test split calibrates");
    let mut rng = Rng::new(19);
    let healthy: Vec<&Photo> = p.healthy.iter().collect();
    println!("\n## label-free estimate (calibrated on the v2 test split), windows of 200");
    let mut cases = vec!["in distribution"];
    cases.extend(shift_names(p));
    for name in cases {
        let (mut error, mut covered, mut truth_sum, mut estimate_sum) = (0.0, 0, 0.0, 0.0);
        let windows = 300;
        for _ in 0..windows {
            let window = if name == "in distribution" {
                draw(&healthy, 200, &mut rng)
            } else {
                shift_windows(p, name, 200, &mut rng)
            };
            let top: Vec<f64> = window
                .iter()
                .map(|x| f64::from(x.features.top_probability))
                .collect();
            let truth = window
                .iter()
                .filter(|x| x.true_label == x.features.predicted_digit)
                .count() as f64
                / window.len() as f64;
            let estimate = calibrator.estimate(&top, 0.9).expect("an estimate");
            error += (estimate.expected_accuracy - truth).abs();
            truth_sum += truth;
            estimate_sum += estimate.expected_accuracy;
            if (estimate.lower..=estimate.upper).contains(&truth) {
                covered += 1;
            }
        }
        println!(
            "{name:<22} true accuracy {:.3}, estimated {:.3}; mean absolute error {:.2} points; truth inside the 90 % interval in {:.0} % of {windows} windows",
            truth_sum / windows as f64,
            estimate_sum / windows as f64,
            100.0 * error / windows as f64,
            100.0 * covered as f64 / windows as f64
        );
    }
}

fn ks() {
    println!("\n## ks_2samp on 1,000,000 vs 1,000,000 values (normals; shifted by 0.002 sd)");
    let mut rng = Rng::new(23);
    let mut normal = |shift: f64| -> Vec<f64> {
        (0..1_000_000)
            .map(|_| {
                let (u1, u2) = (
                    f64::from(rng.uniform()).max(1e-12),
                    f64::from(rng.uniform()),
                );
                (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() + shift
            })
            .collect()
    };
    let a = normal(0.0);
    let b = normal(0.002);
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..5 {
        let started = Instant::now();
        result = inferloop::stats::ks_2samp(&a, &b);
        times.push(started.elapsed());
    }
    times.sort();
    let result = result.expect("a result");
    println!(
        "ours:  median of 5 {:.0} ms (statistic {:.6}, p {:.4}, {:?})",
        times[2].as_secs_f64() * 1e3,
        result.statistic,
        result.p_value,
        result.method
    );
    let Ok(python) = std::env::var("INFERLOOP_STATS_PYTHON") else {
        println!(
            "scipy: not measured (INFERLOOP_STATS_PYTHON unset; `cargo xtask bench drift` sets it)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("ks-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let write = |name: &str, v: &[f64]| {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dir.join(name), bytes).expect("write the sample");
    };
    write("a.bin", &a);
    write("b.bin", &b);
    let script = r#"
import sys, time, numpy as np, scipy
from scipy import stats
a = np.fromfile(sys.argv[1] + "/a.bin", dtype="<f8"); b = np.fromfile(sys.argv[1] + "/b.bin", dtype="<f8")
times = []
for _ in range(5):
    t = time.perf_counter(); r = stats.ks_2samp(a, b); times.append(time.perf_counter() - t)
times.sort()
print(f"scipy: median of 5 {times[2]*1e3:.0f} ms (statistic {r.statistic:.6f}, p {r.pvalue:.4f}), scipy {scipy.__version__}")
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("run scipy");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        println!("scipy failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn scheduled(p: &Pools) {
    use inferloop::store::models::ModelStore;
    use inferloop::store::predictions::PredictionStore;
    println!("\n## the scheduled check over 5,000 stored predictions (local stack)");
    let sdk = inferloop::aws::sdk_config().await;
    let model = format!("bench-{}", ulid::Ulid::new().to_string().to_lowercase());
    let store = ModelStore::new(
        inferloop::aws::dynamodb(&sdk),
        integration_tests::stack_var("MODELS_TABLE"),
    );
    let now = time::OffsetDateTime::now_utc();
    let start = now - time::Duration::hours(30);
    let artifacts = inferloop::model::registry::Artifacts::read_dir(
        &integration_tests::root().join("models/v2"),
    )
    .expect("v2");
    let (version, _) = inferloop::model::registry::publish(
        &store,
        &inferloop::aws::s3(&sdk),
        &integration_tests::stack_var("MODELS_BUCKET"),
        &model,
        &artifacts,
        &inferloop::time::format_timestamp(start),
    )
    .await
    .expect("publish");
    store
        .promote(
            &model,
            &version,
            true,
            &inferloop::store::models::Promotion::published("test", inferloop::time::now_rfc3339()),
        )
        .await
        .expect("promote");
    let predictions = PredictionStore::new(
        inferloop::aws::dynamodb(&sdk),
        integration_tests::stack_var("PREDICTIONS_TABLE"),
    );
    let mut rng = Rng::new(29);
    let healthy: Vec<&Photo> = p.healthy.iter().collect();
    // The reference's 500 first, then 5,000 over the last 20 hours (250 an hour).
    let filled = Instant::now();
    traffic::store(
        &predictions,
        &model,
        &version.version,
        "v2",
        &draw(&healthy, 500, &mut rng),
        start,
    )
    .await;
    for hour in 0..20 {
        let at = now - time::Duration::hours(20 - hour);
        traffic::store(
            &predictions,
            &model,
            &version.version,
            "v2",
            &draw(&healthy, 250, &mut rng),
            at,
        )
        .await;
    }
    println!(
        "stored 5,500 predictions in {:.0} s",
        filled.elapsed().as_secs_f64()
    );
    let app = integration_tests::drift_app(&model).await;
    let mut times = Vec::new();
    let mut growth = Vec::new();
    for run in 0..3 {
        // Reset the peak-RSS mark (Linux: "5" to clear_refs), so it is this run's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = peak_rss_kib();
        let at = now - time::Duration::seconds(run);
        let started = Instant::now();
        let result = drift::scheduled(&app, at)
            .await
            .expect("the scheduled check");
        times.push(started.elapsed());
        growth.push(peak_rss_kib().saturating_sub(before));
        if run == 0 {
            println!("first run: {result}");
        }
    }
    let ms: Vec<String> = times
        .iter()
        .map(|t: &Duration| format!("{:.0}", t.as_secs_f64() * 1e3))
        .collect();
    println!(
        "duration per run {} ms (the first also captures the reference); peak RSS above the process's baseline {:?} KiB (process peak {} KiB)",
        ms.join(", "),
        growth,
        peak_rss_kib()
    );
}

#[tokio::main]
async fn main() {
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| sections.is_empty() || sections.iter().any(|s| s == name);
    let settings = DriftSettings::default();
    if wants("ks") {
        ks();
    }
    let needs_pools = ["false-alarms", "shifts", "label-free", "scheduled", "pca"]
        .iter()
        .any(|s| wants(s));
    if !needs_pools {
        return;
    }
    let p = pools(wants("shifts") || wants("label-free"));
    if wants("scheduled") {
        scheduled(&p).await;
    }
    if wants("pca") {
        pca(&p, &settings);
    }
    if wants("false-alarms") {
        false_alarms(&p, &settings);
        let mut five = settings.clone();
        five.alpha = 0.05;
        false_alarms(&p, &five);
    }
    if wants("shifts") {
        shifts(&p, &settings);
    }
    if wants("label-free") {
        label_free(&p);
    }
}
