//! The drift function (DESIGN.md §2, §6a): the `/drift/*` admin routes and the scheduled
//! production check of every line, through the shared dispatch.
//!
//! - `POST /drift/data-drift`: posted records against posted reference records, or
//!   against a line's stored reference.
//! - `POST /drift/model-drift`: accuracy and macro-F1 of posted predictions and labels
//!   against a posted reference or the production version's test metrics.
//! - `POST /drift/set-reference`: a line's production reference from a production
//!   window (`{line, from, to}`) or from records (`{line, data}`).
//! - `POST /drift/production-data?line=&hours=` (or `from`/`to`): the production check
//!   on demand; `GET /drift/data/production-inference`: the window itself.
//! - `GET /drift/history`, `/drift/summary`, `/drift/alerts`, `/drift/recent-results`:
//!   stored runs. `GET`/`POST /drift/config`: the model's settings.
//! - `POST /drift/comprehensive-metrics`, `POST /drift/test-drift`, `GET /drift/health`.
//! - `POST /drift/model-performance-drift`: an old and a new model's predictions of the
//!   same samples, paired as the promotion gate pairs them ([`performance`]).
//! - The EventBridge schedule: [`scheduled`] checks each line's production version over
//!   the last `detection_window_hours`, stores the run and fires, holds or resolves the
//!   line's drift alert ([`alerting`]), and asks for a retrain when the verdict crosses
//!   the auto-retrain thresholds within their cooldown and daily limits
//!   (`inferloop::autoretrain`; each refusal is recorded with its reason, the decision
//!   goes into the run's report as `auto_retrain`).
//!
//! Modules: [`params`] and [`bodies`] parse requests, [`check`] reads windows and
//! references, [`estimate`] the label-free estimate, [`selftest`] the built-in samples.

pub mod alerting;
pub mod bodies;
pub mod check;
pub mod estimate;
pub mod params;
pub mod performance;
pub mod selftest;

use bodies::{DataDriftBody, MAX_BODY_BYTES, MetricsBody, ModelDriftBody, SetReferenceBody};
use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::autoretrain::AutoRetrainSettings;
use inferloop::autoretrain::decision::Verdict;
use inferloop::autoretrain::requester::{AutoRequest, Requester};
use inferloop::config;
use inferloop::dispatch::{Invocation, http_response};
use inferloop::drift::columns;
use inferloop::drift::data;
use inferloop::drift::reference::{ProductionReference, ReferenceSummary, Source};
use inferloop::drift::{DriftSettings, SettingsChange};
use inferloop::http::{
    Admin, AuditScope, Ctx, HandlerResult, PageRequest, RequestMeta, Router, encode_cursor,
    json_response, parse_json, query_param,
};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::stats::Confusion;
use inferloop::stats::calibration::Calibrator;
use inferloop::store::StoreError;
use inferloop::store::config_docs::ConfigStore;
use inferloop::store::drift_runs::{ADHOC, DriftRun, RunStore};
use inferloop::store::feedback::FeedbackStore;
use inferloop::store::jobs::JobStore;
use inferloop::store::models::{ModelStore, ModelVersion};
use inferloop::store::predictions::PredictionStore;
use inferloop::time::{TimeRange, format_timestamp};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex};
use time::OffsetDateTime;

/// How long stored runs are kept (TTL).
pub const RUN_RETENTION_DAYS: u64 = 400;
/// The actor of the scheduled check's audit entries: a system actor
/// (`inferloop::audit::SYSTEM_ACTOR_PREFIX`), so activity listings leave it out.
pub const SCHEDULE_ACTOR: &str = "system:schedule";

pub struct App {
    pub common: Common,
    pub models: ModelStore,
    pub predictions: PredictionStore,
    pub feedback: FeedbackStore,
    pub runs: RunStore,
    pub config: ConfigStore,
    /// Asks for retrains when a scheduled check's verdict crosses the auto-retrain
    /// thresholds, within their limits.
    pub requester: Requester,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub model_name: String,
    /// Fitted calibrators by version (`None`: the version has no labelled reference).
    pub calibrators: Mutex<HashMap<String, Option<Arc<Calibrator>>>>,
    /// Pinned "now" (tests); `None`: the clock.
    now: Option<OffsetDateTime>,
}

impl App {
    /// Settings and clients once per container; a missing variable stops the cold start
    /// with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        ROUTES.check()?;
        let env = config::process_env();
        let runs = env.required("DRIFT_RUNS_TABLE")?;
        let config_table = env.required("CONFIG_TABLE")?;
        let predictions = env.required("PREDICTIONS_TABLE")?;
        let feedback = env.required("FEEDBACK_TABLE")?;
        let models = env.required("MODELS_TABLE")?;
        let bucket = env.required("MODELS_BUCKET")?;
        let jobs = env.required("JOBS_TABLE")?;
        let queue_url = env.required("RETRAIN_QUEUE_URL")?;
        let model_name = env.optional("MODEL_NAME").unwrap_or_else(|| "mnist".into());
        let start = ColdStart::from_env(&env).await?;
        let db = start.dynamodb.clone();
        Ok(Self {
            requester: Requester::new(JobStore::new(db.clone(), jobs), &start.sdk, queue_url),
            s3: inferloop::aws::s3(&start.sdk),
            common: start.common,
            models: ModelStore::new(db.clone(), models),
            predictions: PredictionStore::new(db.clone(), predictions.clone()),
            // Read-only here: the counters' table is never written by drift.
            feedback: FeedbackStore::new(db.clone(), feedback, String::new(), predictions),
            runs: RunStore::new(db.clone(), runs),
            config: ConfigStore::new(db, config_table),
            bucket,
            model_name,
            calibrators: Mutex::new(HashMap::new()),
            now: None,
        })
    }

    /// The same function for another model name (tests keep to models of their own).
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = name.into();
        self
    }

    /// Answers as if it were `now`.
    pub fn with_now(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    pub fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    fn settings_name(&self) -> String {
        format!("drift#{}", self.model_name)
    }

    /// The model's drift settings (the defaults until an admin changes them) and their
    /// revision.
    pub async fn settings(&self) -> Result<(DriftSettings, u64), ApiError> {
        Ok(self.config.load(&self.settings_name()).await?)
    }

    fn expires_at(&self) -> u64 {
        (self.now().unix_timestamp().max(0) as u64) + RUN_RETENTION_DAYS * 86_400
    }
}

impl Service for App {
    fn common(&self) -> &Common {
        &self.common
    }
}

static ROUTES: LazyLock<Router<App>> = LazyLock::new(|| {
    Router::new()
        .admin(
            Method::POST,
            "/drift/data-drift",
            Action::DriftCheck,
            data_drift,
        )
        .admin(
            Method::POST,
            "/drift/model-drift",
            Action::DriftCheck,
            model_drift,
        )
        .admin(
            Method::POST,
            "/drift/set-reference",
            Action::DriftReferenceSet,
            set_reference,
        )
        .admin(Method::GET, "/drift/history", Action::DriftViewed, history)
        .admin(Method::GET, "/drift/summary", Action::DriftViewed, summary)
        .admin(Method::GET, "/drift/alerts", Action::DriftViewed, alerts)
        .admin(
            Method::GET,
            "/drift/config",
            Action::DriftViewed,
            get_config,
        )
        .admin(
            Method::POST,
            "/drift/config",
            Action::DriftConfigChanged,
            post_config,
        )
        .admin(
            Method::POST,
            "/drift/model-performance-drift",
            Action::DriftCheck,
            model_performance_drift,
        )
        .admin(
            Method::POST,
            "/drift/comprehensive-metrics",
            Action::DriftCheck,
            comprehensive_metrics,
        )
        .admin(
            Method::GET,
            "/drift/data/production-inference",
            Action::DriftViewed,
            production_inference,
        )
        .admin(
            Method::POST,
            "/drift/production-data",
            Action::DriftCheck,
            production_data,
        )
        .admin(
            Method::GET,
            "/drift/recent-results",
            Action::DriftViewed,
            recent_results,
        )
        .admin(
            Method::POST,
            "/drift/test-drift",
            Action::DriftCheck,
            test_drift,
        )
        .admin(Method::GET, "/drift/health", Action::DriftViewed, health)
});

/// This function's route table.
pub fn routes() -> &'static Router<App> {
    &ROUTES
}

/// An HTTP request, as the router answers it.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(ROUTES.handle(app, req).await)
}

/// The Lambda entry point: HTTP requests and the EventBridge schedule.
pub async fn invoke(app: &App, invocation: Invocation) -> Result<Value, lambda_http::Error> {
    match invocation {
        Invocation::Http(req) => Ok(http_response(ROUTES.handle(app, req).await)),
        Invocation::Other(event) if is_schedule(&event) => {
            let at = event
                .get("time")
                .and_then(Value::as_str)
                .and_then(|t| {
                    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                })
                .unwrap_or_else(|| app.now());
            scheduled(app, at).await.map_err(Into::into)
        }
        Invocation::Sns(_) | Invocation::Other(_) => {
            tracing::warn!("an event the drift function does not take");
            Err("drift takes its HTTP routes and EventBridge scheduled events".into())
        }
    }
}

fn is_schedule(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        || event.get("source").and_then(Value::as_str) == Some("aws.events")
}

/// The scheduled check at `at` (the event's time): each line's production version over
/// the window ending then. A run is keyed by that time, so a retried event answers the
/// run it already stored instead of checking (and alerting) twice. A line that fails
/// does not stop the others; the invocation then fails, and Lambda's retry redoes only
/// the lines without a stored run.
pub async fn scheduled(app: &App, at: OffsetDateTime) -> Result<Value, String> {
    let (settings, _) = app.settings().await.map_err(|e| e.to_string())?;
    let pointer = app
        .models
        .production(&app.model_name)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let checked_at = format_timestamp(at);
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (line, version) in &pointer.lines {
        // One run per line and event time: a retried event finds it; the line in the id
        // keeps two lines' runs of one event apart in listings.
        let run_id = format!("scheduled-{line}-{}", at.unix_timestamp());
        match scheduled_line(app, line, version, at, &checked_at, &run_id, &settings).await {
            Ok(run) => results.push(json!({
                "line": line, "version": version, "run_id": run.run_id,
                "verdict": run.verdict, "alert": run.report.get("alert"),
            })),
            Err(err) => {
                tracing::error!(line = %line, error = %err, "scheduled drift check failed");
                failures.push(format!("{line}: {err}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(json!({"checked_at": checked_at, "lines": results}))
    } else {
        Err(failures.join("; "))
    }
}

async fn scheduled_line(
    app: &App,
    line: &str,
    version: &str,
    at: OffsetDateTime,
    checked_at: &str,
    run_id: &str,
    settings: &DriftSettings,
) -> Result<DriftRun, ApiError> {
    let scope = DriftRun::scope_of(&app.model_name, line);
    let run_key = format!("{checked_at}#{run_id}");
    if let Some(done) = app.runs.get(&scope, &run_key).await? {
        return Ok(done);
    }
    let Some(version) = app.models.get_version(&app.model_name, version).await? else {
        return Err(ApiError::Internal(format!(
            "production version {version} is not registered"
        )));
    };
    let range = TimeRange::new(
        at - time::Duration::hours(i64::from(settings.detection_window_hours)),
        at,
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let result = check::check_line(app, &version, &range, settings, &run_key, at).await?;
    let (action, alert_id) =
        alerting::apply(app, &result, run_id, settings.alert_repeat_hours, at).await;
    let mut report = check::to_json(&result);
    report["run_id"] = json!(run_id);
    report["timestamp"] = json!(checked_at);
    report["alert"] = json!({"action": action, "alert_id": alert_id});
    report["auto_retrain"] = auto_retrain(app, line, &result, &report, run_id, at).await;
    let run = DriftRun {
        scope,
        run_id: run_id.to_owned(),
        checked_at: checked_at.to_owned(),
        kind: "scheduled".into(),
        model_name: Some(app.model_name.clone()),
        line: Some(line.to_owned()),
        version: Some(version.version.clone()),
        verdict: result.data.verdict.as_str().to_owned(),
        drift_detected: result.drifting(),
        drift_score: result.data.overall_drift_score,
        severity: result
            .data
            .severity
            .map(|s| format!("{s:?}").to_lowercase()),
        report,
        expires_at: app.expires_at(),
    };
    match app.runs.put(&run).await {
        Ok(()) | Err(StoreError::Conflict) => {}
        Err(err) => return Err(err.into()),
    }
    let meta = RequestMeta {
        request_id: run_id.to_owned(),
        source_ip: None,
        user_agent: None,
    };
    app.common
        .audit
        .record_best_effort(
            &meta,
            SCHEDULE_ACTOR,
            Action::DriftCheck,
            Outcome::Success,
            json!({"line": line, "version": run.version, "run_id": run_id, "verdict": run.verdict, "alert": action}),
        )
        .await;
    Ok(run)
}

/// Asks for a retrain of `line` if the check's verdict crosses the auto-retrain
/// thresholds and the limits allow; the decision (or why it could not be made) goes into
/// the run's report. A failure here never fails the check: the next run decides again.
async fn auto_retrain(
    app: &App,
    line: &str,
    result: &check::LineCheck,
    report: &Value,
    run_id: &str,
    at: OffsetDateTime,
) -> Value {
    let Ok(line) = inferloop::domain::Line::parse_named("line", line) else {
        return json!({"decision": "error", "error": format!("{line} is not a line")});
    };
    let name = inferloop::autoretrain::doc_name(&app.model_name);
    let settings: AutoRetrainSettings = match app.config.load(&name).await {
        Ok((settings, _)) => settings,
        Err(err) => {
            tracing::error!(error = %err, "auto-retrain settings unreadable");
            return json!({"decision": "error", "error": err.to_string()});
        }
    };
    let request = AutoRequest {
        model: &app.model_name,
        line,
        verdict: Verdict::of_check(result.data.overall_drift_score, report),
        settings: &settings,
        run_id,
        now: at,
    };
    let audit = AuditScope::system(&app.common.audit, run_id, SCHEDULE_ACTOR);
    match app
        .requester
        .consider(&request, &app.feedback, &audit)
        .await
    {
        Ok(considered) => serde_json::to_value(considered).unwrap_or_default(),
        Err(err) => {
            tracing::error!(error = %err, line = line.as_str(), "auto-retrain decision failed");
            json!({"decision": "error", "error": err.to_string()})
        }
    }
}

/// A `model_name` in a request must be this function's model.
fn check_model_name(app: &App, given: Option<&str>) -> Result<(), ApiError> {
    match given {
        Some(name) if name != app.model_name => Err(ApiError::NotFound(format!(
            "model {name:?} is not served here (this service serves {:?})",
            app.model_name
        ))),
        _ => Ok(()),
    }
}

fn line_of(raw: Option<&str>) -> Result<Option<inferloop::domain::Line>, ApiError> {
    raw.map(|r| inferloop::domain::Line::parse_named("line", r))
        .transpose()
        .map_err(ApiError::bad_parameter)
}

/// The production version of `line`, or of the default line without one; 404 if none.
async fn serving_version(
    app: &App,
    line: Option<inferloop::domain::Line>,
) -> Result<ModelVersion, ApiError> {
    let pointer = app
        .models
        .production(&app.model_name)
        .await?
        .unwrap_or_default();
    let line = match line {
        Some(line) => line.as_str().to_owned(),
        None => pointer.default_line.clone().ok_or_else(|| {
            ApiError::NotFound(format!(
                "model {} has no production version",
                app.model_name
            ))
        })?,
    };
    let version = pointer
        .version_of(&line)
        .ok_or_else(|| ApiError::NotFound(format!("line {line} has no production version")))?;
    app.models
        .get_version(&app.model_name, version)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("production version {version} is not registered"))
        })
}

/// What a listing shows of a run without opening its report.
struct RunOutcome<'a> {
    verdict: &'a str,
    drift: bool,
    score: f64,
    severity: Option<String>,
}

/// Stores a check an admin asked for (scope `adhoc`); its id and time.
async fn store_adhoc(
    app: &App,
    kind: &str,
    version: Option<&ModelVersion>,
    outcome: RunOutcome<'_>,
    mut report: Value,
) -> Result<(String, String), ApiError> {
    let RunOutcome {
        verdict,
        drift,
        score,
        severity,
    } = outcome;
    let run_id = ulid::Ulid::new().to_string();
    let checked_at = format_timestamp(app.now());
    report["run_id"] = json!(run_id);
    report["timestamp"] = json!(checked_at);
    let run = DriftRun {
        scope: ADHOC.into(),
        run_id: run_id.clone(),
        checked_at: checked_at.clone(),
        kind: kind.into(),
        model_name: Some(app.model_name.clone()),
        line: version.map(|v| v.line.clone()),
        version: version.map(|v| v.version.clone()),
        verdict: verdict.into(),
        drift_detected: drift,
        drift_score: score,
        severity,
        report,
        expires_at: app.expires_at(),
    };
    app.runs.put(&run).await?;
    Ok((run_id, checked_at))
}

fn severity_text(report: &data::DataDrift) -> Option<String> {
    report.severity.map(|s| format!("{s:?}").to_lowercase())
}

fn column_error(err: columns::ColumnError) -> ApiError {
    ApiError::unprocessable("invalid_records", err.to_string())
}

async fn data_drift(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: DataDriftBody = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let result = data_drift_report(app, body).await;
    let details = json!({"route": "/drift/data-drift",
        "verdict": result.as_ref().ok().and_then(|r| r.get("verdict").cloned()),
        "run_id": result.as_ref().ok().and_then(|r| r.get("run_id").cloned())});
    let report = cx.audit.read(Action::DriftCheck, details, result).await?;
    Ok(json_response(StatusCode::OK, &report))
}

async fn data_drift_report(app: &App, body: DataDriftBody) -> Result<Value, ApiError> {
    check_model_name(app, body.model_name.as_deref())?;
    bodies::check_len("current_data", &body.current_data)?;
    let (settings, _) = app.settings().await?;
    let wanted = body.feature_columns.as_deref();
    let current = columns::from_records(
        "current_data",
        &body.current_data,
        wanted,
        &body.categorical_columns,
    )
    .map_err(column_error)?;
    let n_current = body.current_data.len();
    let (report, summary, version) = match &body.reference_data {
        Some(reference_data) => {
            if body.line.is_some() {
                return Err(ApiError::invalid_parameter(
                    "give reference_data or line, not both",
                ));
            }
            bodies::check_len("reference_data", reference_data)?;
            let reference = columns::from_records(
                "reference_data",
                reference_data,
                wanted,
                &body.categorical_columns,
            )
            .map_err(column_error)?;
            let pairs = columns::pair(&reference, &current).map_err(column_error)?;
            let report = data::compare(
                &pairs,
                |_| Ok(()),
                reference_data.len(),
                n_current,
                &settings,
            );
            let summary = ReferenceSummary {
                kind: "posted",
                model: None,
                version: None,
                n: reference_data.len(),
                captured_at: None,
                source: None,
            };
            (report, summary, None)
        }
        None => {
            let version = serving_version(app, line_of(body.line.as_deref())?).await?;
            let reference = check::production_reference(app, &version.version).await?;
            let (report, summary) = check::against_stored(
                app,
                &version,
                reference.as_ref(),
                &current,
                &[],
                n_current,
                &settings,
            )
            .await?;
            (report, summary, Some(version))
        }
    };
    let mut doc = serde_json::to_value(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
    doc["reference"] = json!(summary);
    let (run_id, timestamp) = store_adhoc(
        app,
        "data",
        version.as_ref(),
        RunOutcome {
            verdict: report.verdict.as_str(),
            drift: report.drift_detected,
            score: report.overall_drift_score,
            severity: severity_text(&report),
        },
        doc.clone(),
    )
    .await?;
    doc["run_id"] = json!(run_id);
    doc["timestamp"] = json!(timestamp);
    Ok(doc)
}

/// Accuracy, per-class and averaged precision/recall/F1 and the confusion matrix.
fn metrics_json(confusion: &Confusion) -> Value {
    let per_class = confusion.per_class();
    let total: u64 = per_class.iter().map(|c| c.support).sum();
    let weighted = |pick: fn(&inferloop::stats::ClassMetrics) -> f64| {
        if total == 0 {
            0.0
        } else {
            per_class
                .iter()
                .map(|c| pick(c) * c.support as f64)
                .sum::<f64>()
                / total as f64
        }
    };
    json!({
        "accuracy": confusion.accuracy(),
        "precision_macro": confusion.macro_precision(),
        "recall_macro": confusion.macro_recall(),
        "f1_macro": confusion.macro_f1(),
        "precision_weighted": weighted(|c| c.precision),
        "recall_weighted": weighted(|c| c.recall),
        "f1_weighted": confusion.weighted_f1(),
        "per_class": per_class.iter().enumerate().map(|(digit, c)| (digit.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
        "confusion_matrix": confusion,
        "n_samples": confusion.total(),
    })
}

async fn model_drift(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: ModelDriftBody = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let result = model_drift_report(app, body).await;
    let details = json!({"route": "/drift/model-drift",
        "drift_detected": result.as_ref().ok().and_then(|r| r.get("drift_detected").cloned())});
    let report = cx.audit.read(Action::DriftCheck, details, result).await?;
    Ok(json_response(StatusCode::OK, &report))
}

fn labelled_pairs(
    predictions_field: &str,
    predictions: &[Value],
    labels_field: &str,
    labels: &[Value],
) -> Result<Vec<(u8, u8)>, ApiError> {
    let predicted = bodies::digits(predictions_field, predictions, bodies::predicted)?;
    let truth = bodies::digits(labels_field, labels, bodies::digit)?;
    if predicted.len() != truth.len() {
        return Err(ApiError::unprocessable(
            "length_mismatch",
            format!(
                "{predictions_field} has {} entries and {labels_field} {}; they must pair up",
                predicted.len(),
                truth.len()
            ),
        ));
    }
    Ok(truth.into_iter().zip(predicted).collect())
}

async fn model_drift_report(app: &App, body: ModelDriftBody) -> Result<Value, ApiError> {
    check_model_name(app, body.model_name.as_deref())?;
    let (settings, _) = app.settings().await?;
    let current = labelled_pairs(
        "current_predictions",
        &body.current_predictions,
        "current_labels",
        &body.current_labels,
    )?;
    let (baseline_accuracy, baseline_f1, baseline, version) = match (
        &body.reference_predictions,
        &body.reference_labels,
    ) {
        (Some(p), Some(l)) => {
            let pairs = labelled_pairs("reference_predictions", p, "reference_labels", l)?;
            if pairs.is_empty() {
                return Err(ApiError::unprocessable(
                    "insufficient_data",
                    "the reference predictions are empty",
                ));
            }
            let confusion = Confusion::from_pairs(pairs);
            (
                confusion.accuracy(),
                confusion.macro_f1(),
                json!({"kind": "posted", "n": confusion.total()}),
                None,
            )
        }
        (None, None) => {
            let version = serving_version(app, line_of(body.line.as_deref())?).await?;
            (
                version.accuracy,
                version.macro_f1,
                json!({"kind": "registered_test_metrics", "version": version.version, "line": version.line}),
                Some(version),
            )
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_body",
                "reference_predictions and reference_labels go together",
            ));
        }
    };
    let drift =
        inferloop::drift::model::from_labels(&current, baseline_accuracy, baseline_f1, &settings);
    let mut doc = serde_json::to_value(&drift).map_err(|e| ApiError::Internal(e.to_string()))?;
    doc["reference"] = baseline;
    doc["current_metrics"] = metrics_json(&Confusion::from_pairs(current.iter().copied()));
    let verdict = match drift.status {
        inferloop::drift::model::ModelStatus::Tested if drift.drift_detected => "drift",
        inferloop::drift::model::ModelStatus::Tested => "no_drift",
        inferloop::drift::model::ModelStatus::InsufficientLabels => "insufficient_data",
    };
    doc["verdict"] = json!(verdict);
    let (run_id, timestamp) = store_adhoc(
        app,
        "model",
        version.as_ref(),
        RunOutcome {
            verdict,
            drift: drift.drift_detected,
            score: drift.accuracy_drop.unwrap_or(0.0),
            severity: None,
        },
        doc.clone(),
    )
    .await?;
    doc["run_id"] = json!(run_id);
    doc["timestamp"] = json!(timestamp);
    Ok(doc)
}

async fn set_reference(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: SetReferenceBody = parse_json(&cx.req, MAX_BODY_BYTES)?;
    check_model_name(app, body.model_name.as_deref())?;
    let line = inferloop::domain::Line::parse_named("line", &body.line)
        .map_err(ApiError::bad_parameter)?;
    let version = serving_version(app, Some(line)).await?;
    let (settings, _) = app.settings().await?;
    let now = app.now();
    let reference = match (&body.data, body.from.is_some() || body.to.is_some()) {
        (Some(_), true) => {
            return Err(ApiError::invalid_parameter(
                "give data or from/to, not both",
            ));
        }
        (None, false) => {
            return Err(ApiError::invalid_parameter(
                "give a production window (from, to) or records (data)",
            ));
        }
        (Some(data), false) => {
            bodies::check_len("data", data)?;
            let columns = columns::from_records("data", data, None, &body.categorical_columns)
                .map_err(column_error)?;
            let (numeric, categorical) = ProductionReference::split_columns(columns);
            ProductionReference {
                model: app.model_name.clone(),
                version: version.version.clone(),
                line: version.line.clone(),
                source: Source::Records,
                captured_at: format_timestamp(now),
                n: data.len(),
                from: None,
                to: None,
                numeric,
                categorical,
                inputs: String::new(),
            }
        }
        (None, true) => {
            let range = params::bounded(inferloop::time::resolve_range(
                body.from.as_deref(),
                body.to.as_deref(),
                now,
                std::time::Duration::from_secs(86_400),
            )?)?;
            let records = check::window(app, &version.version, &range).await?;
            // A long window is sampled uniformly down to reference_size, as captures are.
            let chosen: Vec<_> = inferloop::drift::sample_indices(
                records.len(),
                settings.reference_size,
                inferloop::drift::seed_of(&range.from_key()),
            )
            .into_iter()
            .map(|i| records[i].clone())
            .collect();
            check::reference_of(app, &version, &chosen, Source::Window, now)
        }
    };
    if reference.n < settings.min_samples {
        return Err(ApiError::unprocessable(
            "insufficient_data",
            format!(
                "a reference needs at least min_samples ({}) records; this one has {}",
                settings.min_samples, reference.n
            ),
        ));
    }
    check::put_production_reference(app, &reference).await?;
    let summary = json!({"line": reference.line, "version": reference.version, "source": reference.source,
        "n": reference.n, "captured_at": reference.captured_at, "from": reference.from, "to": reference.to,
        "features": reference.columns().iter().map(|c| c.name.clone()).collect::<Vec<_>>()});
    cx.audit
        .record(Action::DriftReferenceSet, Outcome::Success, summary.clone())
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": "reference_set", "reference": summary}),
    ))
}

async fn list_runs(
    app: &App,
    req: &Request,
    days: u32,
    drift_only: bool,
) -> Result<(Vec<DriftRun>, Option<String>), ApiError> {
    let page = PageRequest::from_request(req)?;
    let now = app.now();
    let range = TimeRange::new(now - time::Duration::days(i64::from(days)), now)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    let (runs, more) = app
        .runs
        .list(
            &range.days_newest_first(),
            &range.from_key(),
            page.cursor.as_deref(),
            page.limit as usize,
            drift_only,
        )
        .await?;
    let next = if more {
        runs.last().map(|r| encode_cursor(&r.run_key()))
    } else {
        None
    };
    Ok((runs, next))
}

async fn history(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let days = params::days(&cx.req, 30)?;
    let result = list_runs(app, &cx.req, days, false).await;
    let details = json!({"route": "/drift/history", "days": days});
    let (runs, next) = cx.audit.read(Action::DriftViewed, details, result).await?;
    let history: Vec<Value> = runs.iter().map(|r| r.to_json()).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"days": days, "count": history.len(), "history": history, "next_cursor": next}),
    ))
}

/// The runs since `since` (newest first), at most `limit`, and whether there were more.
async fn runs_since(
    app: &App,
    since: time::Duration,
    limit: usize,
) -> Result<(Vec<DriftRun>, bool), ApiError> {
    let now = app.now();
    let range =
        TimeRange::new(now - since, now).map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    Ok(app
        .runs
        .list(
            &range.days_newest_first(),
            &range.from_key(),
            None,
            limit,
            false,
        )
        .await?)
}

/// The most runs a summary reads.
const SUMMARY_MAX_RUNS: usize = 5000;

async fn summary(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let days = params::days(&cx.req, 30)?;
    let result = runs_since(app, time::Duration::days(i64::from(days)), SUMMARY_MAX_RUNS).await;
    let details = json!({"route": "/drift/summary", "days": days});
    let (runs, truncated) = cx.audit.read(Action::DriftViewed, details, result).await?;
    let mut by_verdict: BTreeMap<&str, usize> = BTreeMap::new();
    let mut features: BTreeMap<String, usize> = BTreeMap::new();
    let mut latest: BTreeMap<&str, Value> = BTreeMap::new();
    for run in &runs {
        *by_verdict.entry(run.verdict.as_str()).or_default() += 1;
        if let Some(list) = run.report.get("drifted_features").and_then(Value::as_array) {
            for f in list.iter().filter_map(Value::as_str) {
                *features.entry(f.to_owned()).or_default() += 1;
            }
        }
        // Runs come newest first: the first of a scope is its latest.
        latest.entry(run.scope.as_str()).or_insert_with(|| json!({"run_id": run.run_id, "timestamp": run.checked_at, "verdict": run.verdict, "version": run.version}));
    }
    let drift_runs = runs.iter().filter(|r| r.drift_detected).count();
    let scores: Vec<f64> = runs.iter().map(|r| r.drift_score).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "days": days,
            "total_runs": runs.len(),
            "drift_runs": drift_runs,
            "drift_rate": if runs.is_empty() { 0.0 } else { drift_runs as f64 / runs.len() as f64 },
            "average_drift_score": if scores.is_empty() { 0.0 } else { scores.iter().sum::<f64>() / scores.len() as f64 },
            "by_verdict": by_verdict,
            "most_drifted_features": features,
            "latest": latest,
            "truncated": truncated,
        }),
    ))
}

async fn alerts(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let days = params::days(&cx.req, 7)?;
    let result = list_runs(app, &cx.req, days, true).await;
    let details = json!({"route": "/drift/alerts", "days": days});
    let (runs, next) = cx.audit.read(Action::DriftViewed, details, result).await?;
    let alerts: Vec<Value> = runs.iter().map(|r| {
        let features = r.report.get("drifted_features").cloned().unwrap_or(json!([]));
        let kind = if r.kind == "model" { "model_drift" } else { "data_drift" };
        json!({
            "type": kind,
            "message": format!("{} on {} {}: {}", kind.replace('_', " "), r.line.as_deref().unwrap_or("posted data"), r.version.as_deref().unwrap_or(""), features),
            "severity": r.severity.clone().unwrap_or_else(|| "minor".into()),
            "timestamp": r.checked_at,
            "run_id": r.run_id,
            "line": r.line,
            "version": r.version,
            "drifted_features": features,
            "alert": r.report.get("alert"),
        })
    }).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"days": days, "count": alerts.len(), "alerts": alerts, "next_cursor": next}),
    ))
}

async fn get_config(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let result = app.settings().await;
    let details = json!({"route": "/drift/config"});
    let (settings, revision) = cx.audit.read(Action::DriftViewed, details, result).await?;
    let mut doc = settings.to_json();
    doc["revision"] = json!(revision);
    doc["model_name"] = json!(app.model_name);
    Ok(json_response(StatusCode::OK, &doc))
}

async fn post_config(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let change: SettingsChange = parse_json(&cx.req, 16 * 1024)?;
    check_model_name(app, change.model_name.as_deref())?;
    let (current, revision) = app.settings().await?;
    let next = current
        .apply(&change)
        .map_err(|e| ApiError::unprocessable("invalid_setting", e.to_string()))?;
    let doc = serde_json::to_value(&next).map_err(|e| ApiError::Internal(e.to_string()))?;
    let written = app
        .config
        .put(
            &app.settings_name(),
            &doc,
            revision,
            &format_timestamp(app.now()),
            cx.audit.actor(),
        )
        .await;
    let revision = match written {
        Ok(r) => r,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(
                "the settings changed while this change was made; read them and try again".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    cx.audit
        .record(
            Action::DriftConfigChanged,
            Outcome::Success,
            json!({"before": current, "after": next, "revision": revision}),
        )
        .await?;
    let mut shown = next.to_json();
    shown["revision"] = json!(revision);
    shown["model_name"] = json!(app.model_name);
    Ok(json_response(StatusCode::OK, &shown))
}

/// `POST /drift/model-performance-drift` ([`performance`]), by the gate's numbers.
async fn model_performance_drift(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: performance::PerformanceDriftBody = parse_json(&cx.req, MAX_BODY_BYTES)?;
    check_model_name(app, body.model_name.as_deref())?;
    let name = inferloop::autoretrain::doc_name(&app.model_name);
    let (settings, _): (AutoRetrainSettings, u64) = app.config.load(&name).await?;
    let mut doc = performance::report(&body, &settings.gate)?;
    doc["model_name"] = json!(app.model_name);
    cx.audit
        .record_best_effort(
            Action::DriftCheck,
            Outcome::Success,
            json!({"route": "/drift/model-performance-drift", "n": doc["samples"]}),
        )
        .await;
    Ok(json_response(StatusCode::OK, &doc))
}

async fn comprehensive_metrics(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: MetricsBody = parse_json(&cx.req, MAX_BODY_BYTES)?;
    check_model_name(app, body.model_name.as_deref())?;
    let pairs = labelled_pairs("y_pred", &body.y_pred, "y_true", &body.y_true)?;
    if pairs.is_empty() {
        return Err(ApiError::unprocessable(
            "insufficient_data",
            "y_true and y_pred are empty",
        ));
    }
    let confusion = Confusion::from_pairs(pairs.iter().copied());
    let mut doc = metrics_json(&confusion);
    if let Some(rows) = &body.y_prob {
        bodies::check_len("y_prob", rows)?;
        if rows.len() != pairs.len() {
            return Err(ApiError::unprocessable(
                "length_mismatch",
                format!("y_prob has {} rows for {} samples", rows.len(), pairs.len()),
            ));
        }
        let probabilities: Vec<[f64; 10]> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| bodies::probabilities(i, r))
            .collect::<Result<_, _>>()?;
        let truth: Vec<u8> = pairs.iter().map(|p| p.0).collect();
        doc["log_loss"] = json!(inferloop::stats::metrics::log_loss(&truth, &probabilities));
    } else {
        doc["log_loss"] = Value::Null;
    }
    doc["model_name"] = json!(app.model_name);
    cx.audit
        .record_best_effort(
            Action::DriftCheck,
            Outcome::Success,
            json!({"route": "/drift/comprehensive-metrics", "n": confusion.total()}),
        )
        .await;
    Ok(json_response(StatusCode::OK, &doc))
}

async fn production_inference(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (settings, _) = app.settings().await?;
    let range = params::window(&cx.req, app.now(), settings.detection_window_hours)?;
    let line = params::line(&cx.req)?;
    check_model_name(app, query_param(&cx.req, "model_name").as_deref())?;
    let page = PageRequest::from_request(&cx.req)?;
    let result = async {
        let version = serving_version(app, line).await?;
        let records = check::window(app, &version.version, &range).await?;
        Ok::<_, ApiError>((version, records))
    }
    .await;
    let details = json!({"route": "/drift/data/production-inference", "from": range.from_key(), "to": range.to_key()});
    let (version, records) = cx.audit.read(Action::DriftViewed, details, result).await?;
    let position = |r: &inferloop::store::predictions::WindowRecord| {
        format!("{}#{}", r.created_at, r.prediction_id)
    };
    let after: Vec<_> = records
        .iter()
        .filter(|r| page.cursor.as_ref().is_none_or(|c| position(r) > *c))
        .collect();
    let shown: Vec<_> = after.iter().take(page.limit as usize).collect();
    let next = (after.len() > shown.len())
        .then(|| shown.last().map(|r| encode_cursor(&position(r))))
        .flatten();
    let predictions: Vec<Value> = shown.iter().map(|r| json!({
        "prediction_id": r.prediction_id, "timestamp": r.created_at, "model_version": r.model_version,
        "line": r.line, "features": r.features,
    })).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "model_name": app.model_name, "line": version.line, "version": version.version,
            "from": range.from_key(), "to": range.to_key(), "count": records.len(),
            "predictions": predictions, "next_cursor": next,
        }),
    ))
}

async fn production_data(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (settings, _) = app.settings().await?;
    let now = app.now();
    let range = params::window(&cx.req, now, settings.detection_window_hours)?;
    let line = params::line(&cx.req)?;
    check_model_name(app, query_param(&cx.req, "model_name").as_deref())?;
    let result = async {
        let version = serving_version(app, line).await?;
        let run_id = ulid::Ulid::new().to_string();
        let result = check::check_line(app, &version, &range, &settings, &run_id, now).await?;
        let doc = check::to_json(&result);
        let (run_id, timestamp) = store_adhoc(
            app,
            "production",
            Some(&version),
            RunOutcome {
                verdict: result.data.verdict.as_str(),
                drift: result.drifting(),
                score: result.data.overall_drift_score,
                severity: severity_text(&result.data),
            },
            doc.clone(),
        )
        .await?;
        let mut doc = doc;
        doc["run_id"] = json!(run_id);
        doc["timestamp"] = json!(timestamp);
        Ok::<_, ApiError>(doc)
    }
    .await;
    let details = json!({"route": "/drift/production-data", "from": range.from_key(), "to": range.to_key(),
        "verdict": result.as_ref().ok().and_then(|r| r.get("verdict").cloned())});
    let doc = cx.audit.read(Action::DriftCheck, details, result).await?;
    Ok(json_response(StatusCode::OK, &doc))
}

async fn recent_results(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let hours = params::whole(&cx.req, "hours", 24, 1..=params::MAX_HOURS)?;
    check_model_name(app, query_param(&cx.req, "model_name").as_deref())?;
    let result = runs_since(
        app,
        time::Duration::hours(i64::from(hours)),
        PageRequest::MAX_LIMIT as usize,
    )
    .await;
    let details = json!({"route": "/drift/recent-results", "hours": hours});
    let (runs, truncated) = cx.audit.read(Action::DriftViewed, details, result).await?;
    let results: Vec<Value> = runs.iter().map(|r| r.to_json()).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"hours": hours, "count": results.len(), "results": results, "truncated": truncated}),
    ))
}

async fn test_drift(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (settings, _) = app.settings().await?;
    let result = selftest::run(&settings);
    cx.audit
        .record_best_effort(
            Action::DriftCheck,
            Outcome::Success,
            json!({"route": "/drift/test-drift", "passed": result["passed"]}),
        )
        .await;
    Ok(json_response(StatusCode::OK, &result))
}

async fn health(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (database, pointer) = match app.models.production(&app.model_name).await {
        Ok(p) => ("ok", p),
        Err(err) => {
            tracing::warn!(error = %err, "drift health: registry unreadable");
            ("error", None)
        }
    };
    let storage = match app.s3.head_bucket().bucket(&app.bucket).send().await {
        Ok(_) => "ok",
        Err(err) => {
            tracing::warn!(error = %inferloop::error::error_chain(&err), "drift health: bucket unreachable");
            "error"
        }
    };
    let mut lines = serde_json::Map::new();
    if let Some(pointer) = &pointer {
        for (line, version) in &pointer.lines {
            let reference = match check::production_reference(app, version).await {
                Ok(Some(r)) => {
                    json!({"kind": "production", "n": r.n, "captured_at": r.captured_at})
                }
                Ok(None) => {
                    json!({"kind": "none", "note": "until a production reference exists the data verdict is no_reference"})
                }
                Err(_) => json!({"kind": "unknown"}),
            };
            lines.insert(
                line.clone(),
                json!({"version": version, "reference": reference}),
            );
        }
    }
    let healthy = database == "ok" && storage == "ok";
    cx.audit
        .record_best_effort(
            Action::DriftViewed,
            Outcome::Success,
            json!({"route": "/drift/health"}),
        )
        .await;
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(
        status,
        &json!({
            "status": if healthy { "healthy" } else { "degraded" },
            "service": "drift",
            "timestamp": format_timestamp(app.now()),
            "model_name": app.model_name,
            "dependencies": {"database": database, "storage": storage},
            "lines": lines,
        }),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_schedule_audits_as_a_system_actor() {
        assert!(super::SCHEDULE_ACTOR.starts_with(inferloop::audit::SYSTEM_ACTOR_PREFIX));
    }
}
