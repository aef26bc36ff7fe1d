//! Sections 3 and 4 of `cargo xtask bench predict`: the predict function as Lambda runs
//! it (cold start, warm latency, peak RSS) and the size of its deployment zip.

pub mod lambda_process;
pub mod runtime_api;

use base64::Engine;
use inferloop::domain::Role;
use inferloop::model::dataset::{Dataset, Split};
use inferloop::model::nn::Rng;
use inferloop::model::train;
use lambda_process::{ColdStart, cold_start, start, status_of, target_dir};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const COLD_STARTS: usize = 10;
const LOAD_REQUESTS: usize = 1000;
const ROUTES: [&str; 4] = [
    "/api/v1/predict",
    "/api/v2/predict",
    "/api/ab/predict",
    "/predict",
];

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A token for a user of this run's own, signed with the stack's key (the bench runs
/// with the functions' env). Its own user, because the rate limit (1,000 an hour per user
/// and line) lives in Redis, which outlives the run: a second run within the hour as the
/// same user was answered 429 for half its requests.
/// The account is made in the stack's Users table: the function checks that a token's
/// account exists.
fn token() -> String {
    let user = format!("bench-{}", ulid::Ulid::new().to_string().to_lowercase());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(integration_tests::token_for(&user, Role::User))
}

/// An API Gateway v2 event for `path` with `image` as a raw body.
fn event(template: &serde_json::Value, path: &str, token: &str, image: &[u8]) -> String {
    let mut event = template.clone();
    let route = format!("POST {path}");
    event["routeKey"] = route.clone().into();
    event["rawPath"] = path.into();
    event["requestContext"]["routeKey"] = route.into();
    event["requestContext"]["http"]["path"] = path.into();
    event["headers"]["authorization"] = format!("Bearer {token}").into();
    event["headers"]["content-type"] = "application/octet-stream".into();
    event["headers"]["content-length"] = image.len().to_string().into();
    event["body"] = base64::engine::general_purpose::STANDARD
        .encode(image)
        .into();
    event["isBase64Encoded"] = true.into();
    event.to_string()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// Section 3: cold start and memory of the release binary against the bench's stack.
pub fn lambda_function(root: &Path, data: &Dataset) {
    println!("\n## 3. The predict function as Lambda runs it (release binary, local stack)\n");
    let started = Instant::now();
    let status = Command::new(cargo())
        .args(["build", "--release", "--quiet", "-p", "predict"])
        .current_dir(root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "cargo build --release -p predict failed");
    println!(
        "(built target/release/predict in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let binary = target_dir(root).join("release/predict");
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    // As deployed: template.yaml's LogLevel default.
    env.insert("RUST_LOG".into(), "info".into());
    let template: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("events/predict-v1.json")).expect("events/"),
    )
    .expect("event JSON");
    let token = token();
    // Every request a new image: a cache hit would flatter both figures.
    let test = data.indices(Split::Test);
    let images: Vec<Vec<u8>> = (0..COLD_STARTS + LOAD_REQUESTS)
        .map(|n| {
            let mut rng = Rng::derive(31, 7, n as u64);
            train::user_like_image(data, test[n % test.len()], &mut rng).0
        })
        .collect();

    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        let logs = root.join(".inferloop/bench/cold-start");
        std::fs::create_dir_all(&logs).expect("the cold-start log folder");
        let mut colds = Vec::new();
        for (n, image) in images[..COLD_STARTS].iter().enumerate() {
            let cold = cold_start(
                &binary,
                &env,
                event(&template, "/api/v2/predict", &token, image),
                &logs.join(format!("{n}.log")),
            )
            .await;
            assert_eq!(cold.status, 200, "cold start {n} answered {}", cold.status);
            colds.push(cold);
        }
        let mut totals: Vec<f64> = colds.iter().map(|c| c.total).collect();
        totals.sort_by(f64::total_cmp);
        println!(
            "cold start, process start → first /api/v2/predict answer (SDK set-up; the pointer, v2's registry item, its S3 fetch, sha256 and tract optimisation; then Redis connect + rate limit, decode, infer, cache, PutItem ×2), {COLD_STARTS} runs: **p50 {:.1} ms**, min {:.1}, max {:.1} (target ≤ 50 ms)",
            percentile(&totals, 0.5),
            totals[0],
            totals[totals.len() - 1]
        );
        print_cold_start_phases(&colds, &logs);

        let mut process = start(&binary, &env, None).await;
        let mut latencies = Vec::with_capacity(LOAD_REQUESTS);
        let mut failures = 0;
        let load_started = Instant::now();
        for (n, image) in images[COLD_STARTS..].iter().enumerate() {
            let sent = Instant::now();
            process.invoke(
                &format!("load-{n}"),
                event(&template, ROUTES[n % ROUTES.len()], &token, image),
            );
            let answer = process.answer().await;
            assert_eq!(answer.request_id, format!("load-{n}"));
            latencies.push(answer.at.duration_since(sent).as_secs_f64() * 1000.0);
            failures += usize::from(status_of(&answer) != 200);
        }
        let seconds = load_started.elapsed().as_secs_f64();
        let (peak, now) = process.memory_kib();
        latencies.sort_by(f64::total_cmp);
        println!(
            "{LOAD_REQUESTS} sequential requests over the four predict routes, each a new image: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms per request (moto's PutItem ×2 included), {failures} not 200",
            LOAD_REQUESTS as f64 / seconds,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
        println!(
            "memory after {LOAD_REQUESTS} requests: **peak RSS {:.1} MB** (VmHWM), now {:.1} MB (target ≤ 40 MB)",
            peak as f64 / 1024.0,
            now as f64 / 1024.0
        );
    });
}

/// Where the cold starts went, p50 of each phase over the runs: the stand-in Runtime
/// API's clock (init, first request) and the function's own log lines (SDK set-up,
/// model lookup, download, NNEF read, optimisation).
fn print_cold_start_phases(colds: &[ColdStart], logs: &Path) {
    let p50 = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        percentile(values, 0.5)
    };
    let mut phases: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for cold in colds {
        phases
            .entry("init (process start → first `next`)")
            .or_default()
            .push(cold.init);
        phases
            .entry("first request (`next` → answer)")
            .or_default()
            .push(cold.first_request);
        for (name, ms) in &cold.phases {
            phases.entry(name.as_str()).or_default().push(*ms);
        }
    }
    println!(
        "\nwhere the cold starts went (p50 of each phase on its own, ms; logs in {}):\n",
        logs.display()
    );
    println!("| phase | p50 ms |\n|---|---:|");
    for (name, mut values) in phases {
        println!("| {name} | {:.1} |", p50(&mut values));
    }
}

/// Section 4: the deployment package as `cargo lambda build --release` makes it.
pub fn zip_size(root: &Path) {
    println!("\n## 4. Deployment package\n");
    let venv_bin = root.join(".inferloop/venv/bin");
    let path = std::env::var("PATH").unwrap_or_default();
    let started = Instant::now();
    let status = Command::new(venv_bin.join("cargo-lambda"))
        .args([
            "lambda",
            "build",
            "--release",
            "--quiet",
            "-p",
            "predict",
            "--output-format",
            "zip",
        ])
        .env("PATH", format!("{}:{path}", venv_bin.display()))
        .current_dir(root)
        .status()
        .expect("cargo lambda (made by `cargo xtask bench`'s venv)");
    assert!(status.success(), "cargo lambda build failed");
    let zip = target_dir(root).join("lambda/predict/bootstrap.zip");
    let zipped = std::fs::metadata(&zip).expect("bootstrap.zip").len();
    println!(
        "`cargo lambda build --release -p predict --output-format zip` ({:.0} s): **{:.2} MB** zipped (target ≤ 8 MB)",
        started.elapsed().as_secs_f64(),
        zipped as f64 / 1_000_000.0
    );
}
