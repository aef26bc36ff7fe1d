//! The jobs queue's worker (DESIGN.md §11): one job per SQS message. A run starts from
//! the line's production weights, fine-tunes them on the base train split plus the
//! feedback-labelled inputs (all but the hold-out fifth), measures candidate and
//! production on the test split and the hold-out, judges them by the promotion gate,
//! and registers the candidate as `staging` with its manifest (parent, data counts,
//! parameters, seed, metrics, the gate report) and test-split reference. Every step is
//! recorded on the job.
//!
//! Still to add (issue 14): auto-promotion, the alert on the gate's verdict, the gate's
//! settings from the auto-retrain document.

use crate::App;
use inferloop::domain::Line;
use inferloop::gate::{self, GateSettings, PairedPredictions};
use inferloop::model::dataset::{self, Split};
use inferloop::model::infer::{Model, onnx_to_nnef};
use inferloop::model::onnx::from_onnx;
use inferloop::model::preprocess::INPUT_LEN;
use inferloop::model::registry::{self, MANIFEST_FILE, ONNX_FILE};
use inferloop::model::retrain::{FEEDBACK_WEIGHT, fine_tune_params, in_holdout};
use inferloop::model::train::{self, LabelledInput, architecture, fine_tune, package};
use inferloop::store::feedback::FeedbackFilter;
use inferloop::store::jobs::{Job, Outcome, Start};
use inferloop::time::format_timestamp;
use serde_json::{Value, json};

/// A running job's lease: longer than its longest step (training reports each epoch).
pub const LEASE_SECS: u64 = 20 * 60;
/// How far back feedback is read: predictions, and the inputs they keep, expire after
/// 90 days.
const FEEDBACK_DAYS: i64 = 90;
/// Feedback read per page.
const PAGE: u32 = 500;

/// What the blocking part of a run hands back.
struct Trained {
    artifacts: train::Artifacts,
    base: PairedPredictions,
    holdout: PairedPredictions,
}

/// Why a run stopped.
enum Stop {
    /// The job itself cannot succeed (no production version, a file that does not
    /// match its hash): it is marked failed, and the message is done.
    Job(String),
    /// A dependency failed: the job stays running, its lease runs out, and the queue's
    /// redelivery (or, after the last one, the next request) takes it over.
    Dependency(String),
}

impl<E: std::fmt::Display> From<E> for Stop {
    fn from(err: E) -> Self {
        Self::Dependency(err.to_string())
    }
}

/// An SQS batch: each record's job in turn; the records whose job hit a dependency's
/// failure are returned as batch item failures, for SQS to deliver again.
pub async fn handle_batch(app: &App, event: &Value) -> Value {
    let mut failures = Vec::new();
    for record in event["Records"].as_array().into_iter().flatten() {
        let message_id = record["messageId"].as_str().unwrap_or_default();
        let job_id = record["body"]
            .as_str()
            .and_then(|body| serde_json::from_str::<Value>(body).ok())
            .and_then(|body| body["job_id"].as_str().map(str::to_owned));
        let Some(job_id) = job_id else {
            // Not a message of ours: redelivering it would change nothing.
            tracing::error!(message_id, "a jobs-queue message without a job id");
            continue;
        };
        if let Err(err) = run_job(app, &job_id).await {
            tracing::error!(job = %job_id, error = %err, "retrain job left for redelivery");
            failures.push(json!({"itemIdentifier": message_id}));
        }
    }
    json!({"batchItemFailures": failures})
}

async fn run_job(app: &App, job_id: &str) -> Result<(), String> {
    let now = app.now();
    let now_secs = now.unix_timestamp().max(0) as u64;
    let job = match app
        .jobs
        .start(job_id, &format_timestamp(now), now_secs, LEASE_SECS)
        .await
        .map_err(|e| e.to_string())?
    {
        Start::Started(job) => job,
        Start::NotRunnable(job) => {
            tracing::info!(job = %job_id, status = job.status.as_str(), "nothing to run");
            return Ok(());
        }
    };
    let outcome = match run(app, &job).await {
        Ok((version, result)) => Outcome::Succeeded { version, result },
        Err(Stop::Job(error)) => Outcome::Failed { error },
        Err(Stop::Dependency(error)) => return Err(error),
    };
    app.jobs
        .finish(job_id, &outcome, &format_timestamp(app.now()), None)
        .await
        .map_err(|e| e.to_string())
}

async fn step(app: &App, job: &Job, name: &str, detail: &str) -> Result<(), Stop> {
    let now = app.now();
    app.jobs
        .record_step(
            &job.job_id,
            &format_timestamp(now),
            name,
            detail,
            now.unix_timestamp().max(0) as u64 + LEASE_SECS,
        )
        .await
        .map_err(|e| Stop::Dependency(format!("recording step {name}: {e}")))
}

async fn get_object(app: &App, key: &str) -> Result<Vec<u8>, Stop> {
    let out = app
        .s3
        .get_object()
        .bucket(&app.bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            Stop::Dependency(format!("s3 {key}: {}", inferloop::error::error_chain(&e)))
        })?;
    let bytes = out.body.collect().await?;
    Ok(bytes.into_bytes().to_vec())
}

/// The feedback whose true digit is known, with its stored input, split by hash of the
/// prediction id into what the run trains on and the hold-out; and how many labelled
/// feedbacks had no input left (their prediction expired).
async fn labelled_feedback(
    app: &App,
) -> Result<(Vec<LabelledInput>, Vec<LabelledInput>, usize), Stop> {
    let now = app.now();
    let filter = FeedbackFilter {
        from: format_timestamp(now - time::Duration::days(FEEDBACK_DAYS)),
        to: format_timestamp(now),
        ..FeedbackFilter::default()
    };
    let mut labelled = Vec::new();
    let mut start = None;
    loop {
        let page = app.feedback.list(&filter, PAGE, start).await?;
        for item in page.items {
            let label = if item.correct {
                Some(item.predicted)
            } else {
                item.true_label
            };
            if let Some(label) = label {
                labelled.push((item.prediction_id, label));
            }
        }
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    // The listing is newest first; a fixed order (by id) keeps the run deterministic.
    labelled.sort();
    let ids: Vec<String> = labelled.iter().map(|(id, _)| id.clone()).collect();
    let inputs = app.predictions.inputs(&ids).await?;
    let (mut train, mut holdout, mut missing) = (Vec::new(), Vec::new(), 0);
    for (id, label) in labelled {
        let Some(input) = inputs.get(&id) else {
            missing += 1;
            continue;
        };
        let sample = LabelledInput {
            input: *input,
            label,
        };
        if in_holdout(&id) {
            holdout.push(sample);
        } else {
            train.push(sample);
        }
    }
    Ok((train, holdout, missing))
}

fn dequantised(sample: &LabelledInput) -> [f32; INPUT_LEN] {
    std::array::from_fn(|i| f32::from(sample.input[i]) / 255.0)
}

/// Each model's digit for each hold-out input.
fn predict_all(model: &Model, samples: &[LabelledInput]) -> Result<Vec<u8>, Stop> {
    samples
        .iter()
        .map(|sample| {
            model
                .predict(&dequantised(sample))
                .map(|p| p.digit)
                .map_err(|e| Stop::Job(format!("inference: {e}")))
        })
        .collect()
}

/// The job's own model (the one it was requested for: tests keep to models of their
/// own), not necessarily this function's.
async fn run(app: &App, job: &Job) -> Result<(String, Value), Stop> {
    let line = Line::parse_named("line", &job.line).map_err(|e| Stop::Job(e.to_string()))?;
    // The parent: the line's production version, its file checked against its hash.
    let pointer = app.models.production(&job.model).await?.unwrap_or_default();
    let Some(parent_name) = pointer.version_of(line.as_str()) else {
        return Err(Stop::Job(format!(
            "line {} has no production version",
            line.as_str()
        )));
    };
    let Some(parent) = app.models.get_version(&job.model, parent_name).await? else {
        return Err(Stop::Job(format!(
            "production version {parent_name} is not registered"
        )));
    };
    let onnx = get_object(app, &format!("{}{ONNX_FILE}", parent.artifact_prefix)).await?;
    let actual = registry::sha256_hex(&onnx);
    if actual != parent.sha256 {
        return Err(Stop::Job(format!(
            "{}'s model.onnx has sha256 {actual}, registered as {}",
            parent.version, parent.sha256
        )));
    }
    let parent_net = from_onnx(&onnx, architecture(line)).map_err(|e| Stop::Job(e.to_string()))?;
    step(
        app,
        job,
        "parent",
        &format!("starting from {}", parent.version),
    )
    .await?;

    let data = dataset::parse(&get_object(app, dataset::BUCKET_KEY).await?)
        .map_err(|e| Stop::Job(e.to_string()))?;
    let (feedback, holdout, missing) = labelled_feedback(app).await?;
    let counts = json!({
        "train_split": data.indices(Split::Train).len(),
        "test_split": data.indices(Split::Test).len(),
        "feedback_trained_on": feedback.len(),
        "feedback_held_out": holdout.len(),
        "feedback_without_input": missing,
        "feedback_weight": FEEDBACK_WEIGHT,
    });
    step(app, job, "data", &counts.to_string()).await?;

    let params = fine_tune_params(line, job.seed, job.epochs as usize);
    let version = format!("{}-r{}", parent.version, job.job_id.to_lowercase());
    let trained = {
        let params = params.clone();
        let version = version.clone();
        let feedback = feedback.clone();
        let holdout = holdout.clone();
        tokio::task::spawn_blocking(move || -> Result<Trained, Stop> {
            let net = fine_tune(
                parent_net,
                &params,
                &data,
                &feedback,
                FEEDBACK_WEIGHT,
                |line| {
                    tracing::info!(progress = line, "fine-tune");
                },
            );
            let artifacts = package(&net, line, &params, &version, &data)
                .map_err(|e| Stop::Job(e.to_string()))?;
            let load = |bytes: &[u8]| {
                onnx_to_nnef(bytes)
                    .and_then(|nnef| Model::load(&nnef))
                    .map_err(|e| Stop::Job(e.to_string()))
            };
            let parent_model = load(&onnx)?;
            let candidate_model = load(&artifacts.onnx)?;
            // Both models on the same labelled sets: the test split, then the hold-out.
            let (_, parent_reference) =
                train::evaluate(&parent_model, &data).map_err(|e| Stop::Job(e.to_string()))?;
            let labels: Vec<u8> = data
                .indices(Split::Test)
                .into_iter()
                .map(|i| data.label(i))
                .collect();
            let base = PairedPredictions::new(
                labels,
                parent_reference.predicted_digit,
                artifacts.reference.predicted_digit.clone(),
            )
            .map_err(|e| Stop::Job(format!("the test split's answers: {e}")))?;
            let holdout_set = PairedPredictions::new(
                holdout.iter().map(|s| s.label).collect(),
                predict_all(&parent_model, &holdout)?,
                predict_all(&candidate_model, &holdout)?,
            )
            .map_err(|e| Stop::Job(format!("the hold-out's answers: {e}")))?;
            Ok(Trained {
                artifacts,
                base,
                holdout: holdout_set,
            })
        })
        .await
        .map_err(|e| Stop::Job(format!("training stopped: {e}")))??
    };
    step(app, job, "trained", &format!("{} epochs", params.epochs)).await?;
    let Trained {
        artifacts,
        base,
        holdout: holdout_set,
    } = trained;
    let settings = GateSettings::default();
    let report = gate::evaluate(&base, &holdout_set, &settings);
    let (report_json, report_sha256) = report.stored();
    step(
        app,
        job,
        "gate",
        &format!(
            "{} ({})",
            if report.passed { "passed" } else { "failed" },
            report.reasons.join("; ")
        ),
    )
    .await?;

    let mut manifest = artifacts.manifest;
    manifest.parent = Some(parent.version.clone());
    manifest.retrain = Some(json!({
        "job_id": job.job_id, "reason": job.reason, "requested_by": job.requested_by,
        "data": counts, "gate": serde_json::from_str::<Value>(&report_json).unwrap_or_default(),
        "gate_report_sha256": report_sha256,
    }));
    let files = registry::Artifacts {
        onnx: artifacts.onnx,
        manifest: serde_json::to_vec_pretty(&manifest).map_err(|e| Stop::Job(e.to_string()))?,
        reference: serde_json::to_vec(&artifacts.reference)
            .map_err(|e| Stop::Job(e.to_string()))?,
    };
    let (registered, _) = registry::publish(
        &app.models,
        &app.s3,
        &app.bucket,
        &job.model,
        &files,
        &format_timestamp(app.now()),
    )
    .await?;
    step(
        app,
        job,
        "registered",
        &format!(
            "{} in staging ({MANIFEST_FILE} beside it)",
            registered.version
        ),
    )
    .await?;
    Ok((
        registered.version,
        json!({
            "data": counts,
            "metrics": manifest.metrics,
            "gate": {"passed": report.passed, "reasons": report.reasons, "report_sha256": report_sha256},
        }),
    ))
}
