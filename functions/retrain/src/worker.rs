//! The jobs queue's worker (DESIGN.md §11): one job per SQS message. A run starts from
//! the line's production weights, fine-tunes them on the base train split plus the
//! feedback-labelled inputs (all but the hold-out fifth), measures candidate and
//! production on the test split and the hold-out, judges them by the promotion gate,
//! and registers the candidate as `staging` with its manifest (parent, data counts,
//! parameters, seed, metrics, the gate report) and test-split reference. Every step is
//! recorded on the job; the gate's verdict is an alert either way, and a candidate it
//! passes becomes production by itself when the auto-retrain settings say so.

use crate::App;
use crate::compare::{self, Stop};
use crate::promotion;
use inferloop::domain::Line;
use inferloop::gate::{self, PairedPredictions};
use inferloop::model::dataset::Split;
use inferloop::model::onnx::from_onnx;
use inferloop::model::registry::{self, MANIFEST_FILE};
use inferloop::model::retrain::{FEEDBACK_WEIGHT, fine_tune_params};
use inferloop::model::train::{self, architecture, fine_tune, package};
use inferloop::store::StoreError;
use inferloop::store::jobs::{Job, Outcome, Start};
use inferloop::store::models::{ChangeKind, Promotion};
use inferloop::time::format_timestamp;
use serde_json::{Value, json};

/// A running job's lease, renewed at each step: longer than the longest step (the
/// training, at most the function's 600 s timeout), and shorter than the queue's
/// visibility timeout less that timeout (1,320 − 600 s, template.yaml), so the message's
/// redelivery after a timed-out run finds the lease run out and takes the job over.
pub const LEASE_SECS: u64 = 11 * 60;
/// What the blocking part of a run hands back.
struct Trained {
    artifacts: train::Artifacts,
    base: PairedPredictions,
    holdout: PairedPredictions,
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
        .jobs()
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
        // The job itself cannot succeed: marked failed, and the message is done.
        Err(Stop::Job(error)) => Outcome::Failed { error },
        // The job stays running, its lease runs out, and the queue's redelivery (or,
        // after the last one, the next request) takes it over.
        Err(Stop::Dependency(error)) => return Err(error),
    };
    app.jobs()
        .finish(job_id, &outcome, &format_timestamp(app.now()), None)
        .await
        .map_err(|e| e.to_string())
}

async fn step(app: &App, job: &Job, name: &str, detail: &str) -> Result<(), Stop> {
    let now = app.now();
    app.jobs()
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
    let onnx = compare::version_onnx(app, &parent).await?;
    let parent_net = from_onnx(&onnx, architecture(line)).map_err(|e| Stop::Job(e.to_string()))?;
    step(
        app,
        job,
        "parent",
        &format!("starting from {}", parent.version),
    )
    .await?;

    let (settings, _) = app.auto_retrain_settings(&job.model).await?;
    let data = compare::base_dataset(app).await?;
    let compare::Feedback {
        train: feedback,
        holdout,
        without_input: missing,
    } = compare::labelled_feedback(app).await?;
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
            let parent_model = compare::load_model(&onnx)?;
            let candidate_model = compare::load_model(&artifacts.onnx)?;
            let (base, holdout_set) =
                compare::paired(&parent_model, &candidate_model, &data, &holdout)?;
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
    let report = gate::evaluate(&base, &holdout_set, &settings.gate);
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
    promotion::gate_alert(app, &registered, &report, &job.job_id).await;
    let promoted = if !report.passed {
        "no: the gate refused it".to_owned()
    } else if !settings.auto_promote {
        "no: auto-promotion is off; it waits in staging".to_owned()
    } else {
        auto_promote(app, job, &registered, &parent.version, &report_sha256).await?
    };
    step(app, job, "promotion", &promoted).await?;
    Ok((
        registered.version,
        json!({
            "data": counts,
            "metrics": manifest.metrics,
            "gate": {"passed": report.passed, "reasons": report.reasons, "report_sha256": report_sha256},
            "promoted": promoted,
        }),
    ))
}

/// A candidate the gate passed becomes production, if its parent still is: a line
/// promoted or rolled back while the run trained was judged against another version.
async fn auto_promote(
    app: &App,
    job: &Job,
    candidate: &inferloop::store::models::ModelVersion,
    parent: &str,
    report_sha256: &str,
) -> Result<String, Stop> {
    let pointer = app.models.production(&job.model).await?.unwrap_or_default();
    let serving = pointer.version_of(&candidate.line).unwrap_or("none");
    if serving != parent {
        return Ok(format!(
            "no: {serving} serves line {} now, not the parent {parent} it was judged against",
            candidate.line
        ));
    }
    let promotion = Promotion {
        actor: promotion::WORKER_ACTOR.to_owned(),
        reason: format!("retrain job {}: passed the promotion gate", job.job_id),
        kind: ChangeKind::Gated,
        gate_report_sha256: Some(report_sha256.to_owned()),
        at: format_timestamp(app.now()),
    };
    let details = json!({
        "model": job.model, "line": candidate.line, "version": candidate.version,
        "from": parent, "reason": promotion.reason, "kind": "gated",
        "gate_report_sha256": report_sha256, "job_id": job.job_id,
    });
    let audit = promotion::worker_audit(app, &job.job_id, details).await;
    match promotion::promote(app, candidate, &promotion, audit).await {
        Ok(Some(_)) => Ok(format!(
            "yes: {} serves line {}",
            candidate.version, candidate.line
        )),
        // A redelivered message whose first run promoted already.
        Ok(None) => Ok(format!(
            "yes: {} already served line {}",
            candidate.version, candidate.line
        )),
        Err(StoreError::Conflict) => Ok(format!(
            "no: line {}'s pointer changed while promoting; it waits in staging",
            candidate.line
        )),
        Err(err) => Err(err.into()),
    }
}
