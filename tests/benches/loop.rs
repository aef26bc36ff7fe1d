//! `cargo xtask bench loop`: issue 14's loop end to end on the bench's own stack, and
//! one retrain of each line (docs/benchmarks.md has the figures).
//!
//! Sections (`cargo xtask bench loop <section>…`, all by default):
//! - `loop`: a model of the bench's own with v1 serving. An hour of in-distribution
//!   photos, from which the scheduled check captures the production reference; then
//!   photos with heavy noise (which v1 mostly misreads) arriving in batches of 25, users
//!   correcting 3 in 5 of them by feedback, and the scheduled check invoked as
//!   EventBridge invokes it after each batch, until it asks for a retrain. The bench
//!   then does what Lambda's event source mapping does: takes the message off the
//!   retrain queue and invokes the retrain function — its binary started as Lambda
//!   starts it — with the SQS event. The run trains, the gate judges, the candidate is
//!   promoted by itself, and a predict container started before all this (the
//!   pointer's TTL at its default minute) is asked every second until it serves the
//!   new version. Reports the predictions until drift and until the request, the time
//!   from the request to the new version serving, and accuracy before and after on
//!   noisy test-split photos no feedback came from, on clean ones, and on the base test
//!   split.
//! - `retrain`: one retrain of each line at the defaults (3 epochs) after 250 corrected
//!   noisy predictions, through the same binary: duration and peak RSS on both cores
//!   and on one (`taskset`: what a 1,769 MB Lambda's one vCPU gives), the job's steps,
//!   and the cost at the template's memory setting.
//!
//! The binaries and this bench are built in the `measure` profile (release without fat
//! LTO, Cargo.toml says why): the figures are of the trainer's optimised code, which fat
//! LTO barely changes, at a fraction of the build.

// The two modules of common/ this bench uses (the rest are predict's); what it leaves
// of lambda_process (the cold-start figures) is predict's too.
#[allow(dead_code)]
#[path = "common/lambda_process.rs"]
mod lambda_process;
#[path = "common/runtime_api.rs"]
mod runtime_api;

use inferloop::domain::Role;
use inferloop::model::dataset::Split;
use inferloop::time::format_timestamp;
use integration_tests::retraining::{
    call_retrain, hour_start, model_registered_at, registered_model, scheduled_report, share_right,
};
use integration_tests::traffic::{self, Photo, Shift};
use integration_tests::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the loop's users send once the shift starts.
const SHIFT: Shift = Shift::Noise(25.0);
const BATCH: usize = 25;
/// At most this many shifted predictions before the bench gives up on a request.
const MAX_SHIFTED: usize = 2_000;
/// A run may take this long before the bench says it never finished (Lambda's limit).
const RUN_LIMIT: Duration = Duration::from_secs(15 * 60);
/// How long predict may take to serve a promoted version (its pointer TTL is a minute).
const SERVE_LIMIT: Duration = Duration::from_secs(180);
/// Lambda's price per GB-second, x86, us-east-1 (aws.amazon.com/lambda/pricing,
/// first 6 billion GB-s a month), and the one vCPU's memory setting.
const PRICE_PER_GB_SECOND: f64 = 0.000_016_666_7;
const ONE_VCPU_MB: f64 = 1_769.0;

/// Builds the retrain binary in the bench's profile; its path.
fn retrain_binary(root: &Path) -> PathBuf {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(["build", "--profile", "measure", "--quiet", "-p", "retrain"])
        .current_dir(root)
        .status()
        .expect("cargo build");
    assert!(
        status.success(),
        "cargo build --profile measure -p retrain failed"
    );
    println!(
        "(built target/measure/retrain in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    lambda_process::target_dir(root).join("measure/retrain")
}

/// The template's memory setting of the retrain function, MB.
fn template_memory_mb(root: &Path) -> f64 {
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("template.yaml");
    let section = template
        .split("  RetrainFunction:")
        .nth(1)
        .expect("RetrainFunction in template.yaml");
    section
        .lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("RetrainFunction's MemorySize")
}

/// One retrain as Lambda runs it: the binary started fresh (cold), fed the SQS event of
/// the one message on the retrain queue, which is deleted after the answer as the event
/// source mapping deletes a record not reported failed.
struct Run {
    /// Process start → the answer.
    total: Duration,
    /// The invocation alone (the event handed over → the answer).
    invocation: Duration,
    peak_kib: u64,
}

struct Mapping {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
}

impl Mapping {
    async fn new() -> Self {
        let sdk = inferloop::aws::sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let url = stack_var("RETRAIN_QUEUE_URL");
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes");
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("the queue's ARN")
            .clone();
        Self { sqs, url, arn }
    }

    /// The next message, waited for (short polls, as xtask's local mapping does).
    async fn receive(&self) -> aws_sdk_sqs::types::Message {
        let started = Instant::now();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("ReceiveMessage");
            if let Some(message) = received.messages().first() {
                return message.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no message reached the retrain queue"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn event(&self, message: &aws_sdk_sqs::types::Message) -> String {
        let attributes: serde_json::Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
            .collect();
        json!({"Records": [{
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": message.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.arn.split(':').nth(3).unwrap_or_default(),
        }]})
        .to_string()
    }

    /// Runs the queued job in a fresh `binary` (on `cores` CPUs when given).
    async fn run(
        &self,
        binary: &Path,
        env: &BTreeMap<String, String>,
        cores: Option<&str>,
        log: &Path,
    ) -> Run {
        let message = self.receive().await;
        let mut process = lambda_process::start_on(binary, env, Some(log), cores).await;
        let handed = Instant::now();
        process.invoke("retrain-1", self.event(&message));
        let answer = process.answer_within(RUN_LIMIT).await;
        let (peak_kib, _) = process.memory_kib();
        let total = answer.at.duration_since(process.spawned_at);
        let invocation = answer.at.duration_since(handed);
        assert!(answer.ok, "the invocation failed: {}", answer.body);
        let answer: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let failed = answer["batchItemFailures"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        assert!(!failed, "the worker reported the record failed: {answer}");
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .send()
            .await
            .expect("DeleteMessage");
        Run {
            total,
            invocation,
            peak_kib,
        }
    }
}

/// The functions' environment, for a model of the bench's own.
fn function_env(model_name: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.insert("MODEL_NAME".into(), model_name.into());
    // As deployed: template.yaml's LogLevel default.
    env.insert("RUST_LOG".into(), "info".into());
    env
}

async fn job(app: &retrain::App, admin: &str, job_id: &str) -> Value {
    let (status, job) = call_retrain(
        app,
        request(
            "GET",
            &format!("/admin/retrain/{job_id}"),
            None,
            Some(admin),
        ),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    job
}

/// The job's steps after `queued` as `step +seconds` from the run's start (an automatic
/// request is queued at its check's event time, which the loop puts hours back).
fn step_times(job: &Value) -> String {
    let steps = job["steps"].as_array().cloned().unwrap_or_default();
    let at = |s: &Value| s["at"].as_str().and_then(inferloop::time::parse_timestamp);
    let steps: Vec<&Value> = steps.iter().filter(|s| s["step"] != "queued").collect();
    let Some(first) = steps.first().and_then(|s| at(s)) else {
        return String::new();
    };
    steps
        .into_iter()
        .filter_map(|s| {
            let t = at(s)?;
            Some(format!(
                "{} +{:.1} s",
                s["step"].as_str().unwrap_or("?"),
                (t - first).as_seconds_f64()
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stores `photos` as `line`'s predictions at `at` and sends feedback with the true
/// label on those `corrected` picks; how many were corrected.
async fn traffic_with_feedback(
    stores: &Stores,
    name: &str,
    line: &str,
    version: &str,
    photos: &[Photo],
    at: time::OffsetDateTime,
    corrected: impl Fn(usize) -> bool,
) -> usize {
    let refs: Vec<&Photo> = photos.iter().collect();
    let ids = traffic::store(&stores.predictions, name, version, line, &refs, at).await;
    let mut sent = 0;
    for (n, (id, photo)) in ids.iter().zip(photos).enumerate() {
        if !corrected(n) {
            continue;
        }
        let right = photo.features.predicted_digit == photo.true_label;
        let body = json!({"prediction_id": id, "correct": right, "true_label": photo.true_label});
        let req = request(
            "POST",
            "/feedback",
            Some(&body.to_string()),
            Some(&stores.admin),
        );
        let response = feedback::handle(&stores.feedback, req)
            .await
            .expect("infallible");
        assert_eq!(response.status().as_u16(), 201, "{}", json_of(&response));
        sent += 1;
    }
    sent
}

struct Stores {
    predictions: inferloop::store::predictions::PredictionStore,
    feedback: feedback::App,
    admin: String,
}

impl Stores {
    async fn new() -> Self {
        Self {
            predictions: inferloop::store::predictions::PredictionStore::new(
                dynamodb().await,
                stack_var("PREDICTIONS_TABLE"),
            ),
            feedback: feedback_app().await,
            admin: token_for(&unique_username("bench-loop"), Role::Admin).await,
        }
    }
}

/// The version predict answers with for one photo.
async fn served_version(predict: &predict::App, token: &str, n: usize) -> String {
    let (image, _) = user_like_digit(n);
    let kind = if image.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let (status, answer, _) = call_predict(
        predict,
        upload("/api/v1/predict", Some(kind), image, Some(token)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["model"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn the_loop(root: &Path, binary: &Path) {
    println!("\n## the loop: shift, drift, auto-retrain, gate, promotion, serving (local stack)\n");
    let start = hour_start(3);
    let name = model_registered_at(&["v1"], &format_timestamp(start)).await;
    let stores = Stores::new().await;
    let drift = drift_app(&name).await;
    let app = retrain_app(&name).await;
    let response = drift::handle(
        &drift,
        request(
            "POST",
            "/drift/config",
            Some(
                &json!({"reference_size": 200, "detection_window_hours": 1, "min_samples": 100})
                    .to_string(),
            ),
            Some(&stores.admin),
        ),
    )
    .await
    .expect("infallible");
    assert_eq!(response.status().as_u16(), 200, "{}", json_of(&response));
    // Auto-retrain at its defaults (3 epochs, seed 1, 100 labels, auto-promotion) but
    // for the gate's base margin and recall drop, widened as in the integration test
    // (2 and 5 points): at the defaults a fine-tune that changes 1-3 % of its answers on
    // the 2,004-sample split passes half the time (docs/benchmarks.md, the gate). The
    // report prints the candidate's figures against both.
    set_auto_retrain(
        &name,
        json!({"enabled": true, "lines": ["v1"],
               "gate": {"base_margin_points": 2.0, "class_recall_drop_points": 5.0}}),
    )
    .await;
    let parent = traffic::shipped_model("v1");

    // Hour 0: clean photos; the first check captures the production reference from them.
    let clean = traffic::photos(&parent, &(0..200).collect::<Vec<_>>(), 40);
    traffic_with_feedback(&stores, &name, "v1", "v1.0", &clean, start, |_| false).await;
    let first = scheduled_report(&drift, &name, "v1", start + time::Duration::minutes(59)).await;
    println!(
        "hour 0: 200 clean predictions, verdict {}, auto-retrain {}",
        first["verdict"], first["auto_retrain"]["decision"]
    );

    // The user who asks predict throughout, and predict as a container already running.
    let user = token_for(&unique_username("bench-loop-user"), Role::User).await;
    let predict = predict_app_with(|s| s.model_name = name.clone(), stack_cache()).await;
    assert_eq!(served_version(&predict, &user, 0).await, "v1.0");

    // Hour 1: the shift, batch by batch, each followed by the schedule's check.
    let hour = start + time::Duration::hours(1);
    let (mut shifted, mut labelled, mut checks) = (0, 0, 0);
    let mut first_drift = None;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let (job_id, requested_at) = loop {
        assert!(
            shifted < MAX_SHIFTED,
            "no retrain was asked for after {shifted} shifted predictions"
        );
        let positions: Vec<usize> = (shifted..shifted + BATCH).collect();
        let batch = traffic::shifted_photos_of(Split::Train, &parent, &positions, 41, SHIFT);
        labelled +=
            traffic_with_feedback(&stores, &name, "v1", "v1.0", &batch, hour, |n| n % 5 < 3).await;
        shifted += batch.len();
        // One run per line and event time (a retried event finds its run): each check
        // 10 s after the last, its hour's window past hour 0's photos (stored over
        // its first 50 minutes) and over every shifted one (over hour 1's first 50).
        let check_at = hour + time::Duration::minutes(50) + time::Duration::seconds(10 * checks);
        checks += 1;
        let report = scheduled_report(&drift, &name, "v1", check_at).await;
        println!(
            "  {shifted} shifted, {labelled} corrected: verdict {}, drift score {}, auto-retrain {} {}",
            report["verdict"],
            report["overall_drift_score"],
            report["auto_retrain"]["decision"],
            report["auto_retrain"]["reason"]
        );
        if report["verdict"] == "drift" && first_drift.is_none() {
            first_drift = Some((shifted, report["overall_drift_score"].clone()));
        }
        let auto = &report["auto_retrain"];
        match auto["decision"].as_str() {
            Some("requested") => {
                break (
                    auto["event_id"].as_str().expect("the job's id").to_owned(),
                    Instant::now(),
                );
            }
            Some("refused") => {
                *refusals
                    .entry(auto["refusal"]["code"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
            _ => {}
        }
    };
    let (drift_at, score) = first_drift.expect("the check drifted before it asked");
    println!(
        "shifted predictions ({SHIFT:?}) until the check said drift: {drift_at} (drift score {score}); \
         until it asked for a retrain: {shifted}, with {labelled} corrected ({} labelled in all); \
         refusals before: {refusals:?}",
        labelled
    );

    // The event source mapping's part; the binary is started cold, as Lambda would.
    let log = root.join(".inferloop/bench/loop-retrain.log");
    std::fs::create_dir_all(log.parent().expect("a folder")).expect("the log folder");
    let mapping = Mapping::new().await;
    let run = mapping.run(binary, &function_env(&name), None, &log).await;
    let job = job(&app, &stores.admin, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    println!(
        "the run: {:.1} s from process start ({:.1} s invocation), peak RSS {:.0} MiB; steps: {}",
        run.total.as_secs_f64(),
        run.invocation.as_secs_f64(),
        run.peak_kib as f64 / 1024.0,
        step_times(&job)
    );
    let version = job["version"].as_str().expect("a version").to_owned();
    let registered = app
        .models
        .get_version(&name, &version)
        .await
        .expect("read the version")
        .expect("the version");
    // The whole gate report is in the version's manifest (the job keeps its verdict).
    let manifest: Value =
        serde_json::from_str(&registered.manifest_json).expect("the manifest's JSON");
    let gate = &manifest["retrain"]["gate"];
    let base = &gate["base"];
    println!(
        "gate: passed {}; base split: production {}, candidate {}, difference {} (95 % interval {}); \
         hold-out: {}; rules: {}",
        gate["passed"],
        base["production_accuracy"],
        base["candidate_accuracy"],
        base["difference"],
        base["difference_interval"],
        json!({
            "samples": gate["holdout"]["samples"],
            "production": gate["holdout"]["production_accuracy"],
            "candidate": gate["holdout"]["candidate_accuracy"],
            "mcnemar": gate["holdout"]["mcnemar"],
        }),
        gate["rules"]
    );
    let worst_drop = gate["classes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["change_points"].as_f64())
        .fold(f64::INFINITY, f64::min);
    println!(
        "against the default gate (base lower bound above -0.5 points, no recall down more than 3): \
         lower bound {} points, worst recall change {worst_drop:.2} points",
        base["difference_interval"]["lower"]
    );

    if gate["passed"] == true {
        let serving = loop {
            let elapsed = requested_at.elapsed();
            if served_version(&predict, &user, 1).await == version {
                break elapsed;
            }
            assert!(
                elapsed < RUN_LIMIT + SERVE_LIMIT,
                "predict did not serve {version} in time"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        println!(
            "request → {version} served by the running predict container: {:.1} s \
             (the run {:.1} s; the rest is the queue hand-over and the pointer's one-minute TTL)",
            serving.as_secs_f64(),
            run.total.as_secs_f64()
        );
    } else {
        println!("the gate refused the candidate: nothing was promoted, predict serves v1.0");
    }

    let candidate = registered_model(&registered).await;
    let unseen: Vec<usize> = (0..1000).collect();
    let noisy = traffic::shifted_photos_of(Split::Test, &parent, &unseen, 42, SHIFT);
    let plain = traffic::photos(&parent, &unseen, 43);
    println!(
        "\n| set (test split, never fed back) | n | v1.0 | {version} |\n| --- | --- | --- | --- |"
    );
    for (label, photos) in [
        ("noisy photos (the shift)", &noisy),
        ("clean user-like photos", &plain),
    ] {
        println!(
            "| {label} | {} | {:.2} % | {:.2} % |",
            photos.len(),
            100.0 * share_right(&parent, photos),
            100.0 * share_right(&candidate, photos)
        );
    }
    println!(
        "| base test split (28×28, as the gate reads it) | {} | {} | {} |",
        base["samples"], base["production_accuracy"], base["candidate_accuracy"]
    );
}

/// `line`'s retrain at the defaults after 250 corrected noisy predictions, on `cores`.
async fn one_retrain(root: &Path, binary: &Path, line: &str, cores: Option<&str>, memory_mb: f64) {
    let name = model_registered_at(&["v1", "v2"], &inferloop::time::now_rfc3339()).await;
    let stores = Stores::new().await;
    let app = retrain_app(&name).await;
    let model = traffic::shipped_model(line);
    let photos = traffic::shifted_photos_of(
        Split::Train,
        &model,
        &(0..250).collect::<Vec<_>>(),
        44,
        SHIFT,
    );
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(55);
    traffic_with_feedback(
        &stores,
        &name,
        line,
        &format!("{line}.0"),
        &photos,
        now,
        |_| true,
    )
    .await;
    let (status, queued) = call_retrain(
        &app,
        request(
            "POST",
            "/admin/retrain",
            Some(&json!({"line": line, "reason": "bench: one retrain"}).to_string()),
            Some(&stores.admin),
        ),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let job_id = queued["job_id"].as_str().expect("the job's id").to_owned();
    let log = root.join(format!(
        ".inferloop/bench/retrain-{line}-{}.log",
        cores.map_or("all".into(), |c| format!("cpu{c}"))
    ));
    std::fs::create_dir_all(log.parent().expect("a folder")).expect("the log folder");
    let run = Mapping::new()
        .await
        .run(binary, &function_env(&name), cores, &log)
        .await;
    let job = job(&app, &stores.admin, &job_id).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let seconds = run.total.as_secs_f64();
    let peak_mib = run.peak_kib as f64 / 1024.0;
    println!(
        "| {line} | {} | {seconds:.1} s | {:.1} s | {peak_mib:.0} MiB | ${:.5} | {} |",
        cores.map_or("2 (all)".to_owned(), |c| format!("1 (cpu {c})")),
        run.invocation.as_secs_f64(),
        memory_mb / 1024.0 * seconds * PRICE_PER_GB_SECOND,
        step_times(&job)
    );
}

async fn retrains(root: &Path, binary: &Path) {
    let memory_mb = template_memory_mb(root);
    println!(
        "\n## one retrain of each line (3 epochs, 250 feedback inputs; process start → answer)\n\n\
         cost at the template's {memory_mb} MB (x86, ${PRICE_PER_GB_SECOND}/GB-s; {ONE_VCPU_MB} MB is one vCPU)\n\n\
         | line | cores | total | invocation | peak RSS | cost | steps |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for line in ["v1", "v2"] {
        for cores in [None, Some("0")] {
            one_retrain(root, binary, line, cores, memory_mb).await;
        }
    }
}

fn main() {
    // cargo bench passes `--bench` to a harness-less bench; anything else names sections.
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |section: &str| asked.is_empty() || asked.iter().any(|a| a == section);
    println!("# cargo xtask bench loop\n");
    let root = root();
    let binary = retrain_binary(&root);
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    runtime.block_on(async {
        if wants("loop") {
            the_loop(&root, &binary).await;
        }
        if wants("retrain") {
            retrains(&root, &binary).await;
        }
    });
}
