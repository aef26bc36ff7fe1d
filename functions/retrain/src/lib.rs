//! The retrain function (DESIGN.md §2, §11): retraining on feedback and the model
//! registry's routes, through the shared dispatch.
//!
//! - `POST /admin/retrain` (and the seed's `/admin/retrain_mlflow`) `{line, reason,
//!   epochs?, seed?}`: writes the job as `queued` (taking the line's lock: a second
//!   request while one is queued or running is a 409 naming it; so is a line with no
//!   production version to start from) and sends its id to the
//!   jobs queue; 202 `{job_id}` at once. `GET /admin/retrain/{job_id}`: the job, every
//!   step recorded.
//! - The queue (SQS, with a dead-letter queue; locally the same queue in moto, which
//!   xtask's bridge polls and hands to this function as Lambda's event source mapping
//!   does): [`worker`] runs each job.
//! - `GET /models`, `GET /models/{name}/versions`, `GET /models/{name}/history?line=&at=`,
//!   `POST /models/{name}/versions/{version}/promote` (the gate unless `force`),
//!   `POST /models/{name}/versions/{version}/rollback`: the registry ([`registry`],
//!   [`promotion`]).
//! - `GET`/`PUT /auto-retrain/config`: the auto-retrain settings, auto-promotion and
//!   the gate's numbers ([`auto`]); `GET /auto-retrain/status`, `/status/{line}`,
//!   `/events`, `DELETE /auto-retrain/events/{id}` ([`events`]); `POST
//!   /auto-retrain/trigger/{line}`, `/check-drift/{line}` ([`triggers`]).
//! - The seed's `/drift/evaluate-model`, `/drift/promote-model`,
//!   `/drift/promotion-history`, `/drift/promotion-criteria` ([`seed`]).

pub mod auto;
pub mod compare;
pub mod events;
pub mod promotion;
pub mod registry;
pub mod request;
pub mod seed;
pub mod triggers;
pub mod worker;

use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::autoretrain::requester::{Requester, SubmitError};
use inferloop::config;
use inferloop::dispatch::{Invocation, http_response};
use inferloop::http::{Admin, Ctx, HandlerResult, Router, json_response, parse_json};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::StoreError;
use inferloop::store::config_docs::ConfigStore;
use inferloop::store::drift_runs::RunStore;
use inferloop::store::feedback::FeedbackStore;
use inferloop::store::jobs::{JobStore, NewJob};
use inferloop::store::models::ModelStore;
use inferloop::store::predictions::PredictionStore;
use inferloop::time::format_timestamp;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use request::{MAX_BODY_BYTES, RetrainRequest};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::LazyLock;
use time::OffsetDateTime;

/// How long this function waits for an alert's publish (a request path waits
/// `inferloop::notify::PUBLISH_DEADLINE`).
pub const ALERT_PUBLISH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct App {
    pub common: Common,
    pub models: ModelStore,
    /// Read-only here: the labelled feedback a run trains on.
    pub feedback: FeedbackStore,
    pub predictions: PredictionStore,
    /// Queues jobs (the jobs queue) and records auto-retrain's decisions; holds the Jobs
    /// table ([`App::jobs`]).
    pub requester: Requester,
    /// Read-only here: the line's latest drift check, for `check-drift`.
    pub runs: RunStore,
    pub s3: aws_sdk_s3::Client,
    /// The auto-retrain settings (and the gate's numbers in them).
    pub config: ConfigStore,
    pub bucket: String,
    pub model_name: String,
    /// Pinned "now" (tests); `None`: the clock.
    now: Option<OffsetDateTime>,
}

impl App {
    /// Settings and clients once per container; a missing variable stops the cold start
    /// with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        ROUTES.check()?;
        let env = config::process_env();
        let jobs = env.required("JOBS_TABLE")?;
        let models = env.required("MODELS_TABLE")?;
        let bucket = env.required("MODELS_BUCKET")?;
        let queue_url = env.required("RETRAIN_QUEUE_URL")?;
        let feedback = env.required("FEEDBACK_TABLE")?;
        let predictions = env.required("PREDICTIONS_TABLE")?;
        let config = env.required("CONFIG_TABLE")?;
        let runs = env.required("DRIFT_RUNS_TABLE")?;
        let model_name = env.optional("MODEL_NAME").unwrap_or_else(|| "mnist".into());
        let mut start = ColdStart::from_env(&env).await?;
        // A run takes minutes and its alert is the gate verdict's only notice: waiting
        // seconds for the publish costs nothing here.
        start.common.notifier = start
            .common
            .notifier
            .map(|n| n.with_publish_deadline(ALERT_PUBLISH_DEADLINE));
        let db = start.dynamodb.clone();
        Ok(Self {
            requester: Requester::new(JobStore::new(db.clone(), jobs), &start.sdk, queue_url),
            s3: inferloop::aws::s3(&start.sdk),
            common: start.common,
            runs: RunStore::new(db.clone(), runs),
            config: ConfigStore::new(db.clone(), config),
            models: ModelStore::new(db.clone(), models),
            // The counters' table is never written here.
            feedback: FeedbackStore::new(db.clone(), feedback, String::new(), predictions.clone()),
            predictions: PredictionStore::new(db, predictions),
            bucket,
            model_name,
            now: None,
        })
    }

    /// The same function for another model name (tests keep to models of their own).
    pub fn with_model_name(mut self, name: impl Into<String>) -> Self {
        self.model_name = name.into();
        self
    }

    /// The same function sending jobs to another queue (tests: one no mapping polls).
    pub fn with_queue_url(mut self, queue_url: &str) -> Self {
        self.requester = self.requester.with_queue_url(queue_url);
        self
    }

    /// The Jobs table.
    pub fn jobs(&self) -> &JobStore {
        &self.requester.jobs
    }

    pub fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
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
            "/admin/retrain",
            Action::RetrainRequested,
            request_retrain,
        )
        .admin(
            Method::POST,
            "/admin/retrain_mlflow",
            Action::RetrainRequested,
            request_retrain,
        )
        .admin(
            Method::GET,
            "/admin/retrain/{job_id}",
            Action::RetrainViewed,
            get_job,
        )
        .admin(
            Method::GET,
            "/models",
            Action::ModelsViewed,
            registry::models,
        )
        .admin(
            Method::GET,
            "/models/{name}/versions",
            Action::ModelsViewed,
            registry::versions,
        )
        .admin(
            Method::GET,
            "/models/{name}/history",
            Action::ModelsViewed,
            registry::history,
        )
        .admin(
            Method::POST,
            "/models/{name}/versions/{version}/promote",
            Action::ModelPromoted,
            registry::promote,
        )
        .admin(
            Method::GET,
            "/auto-retrain/config",
            Action::RetrainViewed,
            auto::get_config,
        )
        .admin(
            Method::PUT,
            "/auto-retrain/config",
            Action::AutoRetrainConfigChanged,
            auto::put_config,
        )
        .admin(
            Method::POST,
            "/models/{name}/versions/{version}/rollback",
            Action::ModelRolledBack,
            registry::rollback,
        )
        .admin(
            Method::GET,
            "/auto-retrain/status",
            Action::RetrainViewed,
            events::status,
        )
        .admin(
            Method::GET,
            "/auto-retrain/status/{line}",
            Action::RetrainViewed,
            events::line_status,
        )
        .admin(
            Method::GET,
            "/auto-retrain/events",
            Action::RetrainViewed,
            events::list,
        )
        .admin(
            Method::DELETE,
            "/auto-retrain/events/{event_id}",
            Action::RetrainCancelled,
            events::cancel,
        )
        .admin(
            Method::POST,
            "/auto-retrain/trigger/{line}",
            Action::RetrainRequested,
            triggers::trigger,
        )
        .admin(
            Method::POST,
            "/auto-retrain/check-drift/{line}",
            Action::RetrainRequested,
            triggers::check_drift,
        )
        .admin(
            Method::POST,
            "/drift/evaluate-model",
            Action::ModelsViewed,
            seed::evaluate_model,
        )
        .admin(
            Method::POST,
            "/drift/promote-model",
            Action::ModelPromoted,
            seed::promote_model,
        )
        .admin(
            Method::GET,
            "/drift/promotion-history",
            Action::ModelsViewed,
            seed::promotion_history,
        )
        .admin(
            Method::GET,
            "/drift/promotion-criteria",
            Action::ModelsViewed,
            seed::promotion_criteria,
        )
});

/// This function's route table.
pub fn routes() -> &'static Router<App> {
    &ROUTES
}

/// An HTTP request, as the router answers it.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(ROUTES.handle(app, req).await)
}

/// The Lambda entry point: HTTP requests and the jobs queue's SQS batches.
pub async fn invoke(app: &App, invocation: Invocation) -> Result<Value, lambda_http::Error> {
    match invocation {
        Invocation::Http(req) => Ok(http_response(ROUTES.handle(app, req).await)),
        Invocation::Other(event) if is_sqs(&event) => Ok(worker::handle_batch(app, &event).await),
        Invocation::Sns(_) | Invocation::Other(_) => {
            tracing::warn!("an event the retrain function does not take");
            Err("retrain takes its HTTP routes and the jobs queue's SQS events".into())
        }
    }
}

fn is_sqs(event: &Value) -> bool {
    event["Records"]
        .as_array()
        .and_then(|records| records.first())
        .and_then(|record| record["eventSource"].as_str())
        == Some("aws:sqs")
}

async fn request_retrain(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: Value = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let request = RetrainRequest::parse(body)?;
    queue_manual(app, &cx, &request, json!({})).await
}

/// Queues an admin's request (`/admin/retrain`, `/auto-retrain/trigger/{line}`): 202 with
/// the job's id; 409 naming the line's job if one is queued or running, or when the line
/// has no production version to start from. `extra` goes into the audit entry.
pub(crate) async fn queue_manual(
    app: &App,
    cx: &Ctx<'_, Admin>,
    request: &RetrainRequest,
    extra: Value,
) -> HandlerResult {
    // A run starts from the line's production weights: without them it could only fail.
    let pointer = app.models.production(&app.model_name).await?;
    if pointer
        .as_ref()
        .and_then(|p| p.version_of(request.line.as_str()))
        .is_none()
    {
        return Err(ApiError::Conflict(format!(
            "line {} has no production version to start a retrain from",
            request.line.as_str()
        )));
    }
    let now = app.now();
    let job = NewJob {
        job_id: ulid::Ulid::new().to_string(),
        model: app.model_name.clone(),
        line: request.line.as_str().to_owned(),
        trigger: "manual".into(),
        requested_by: cx.audit.actor().to_owned(),
        reason: request.reason.clone(),
        epochs: request.epochs as u32,
        seed: request.seed,
        queued_at: format_timestamp(now),
    };
    let mut details = json!({
        "job_id": job.job_id, "model": job.model, "line": job.line,
        "reason": job.reason, "epochs": job.epochs, "seed": job.seed,
    });
    if let (Some(details), Value::Object(extra)) = (details.as_object_mut(), extra) {
        details.extend(extra);
    }
    let audit = cx
        .audit
        .prepare(Action::RetrainRequested, Outcome::Success, details)
        .await;
    match app.requester.submit(&job, audit, now).await {
        Ok(()) => Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"job_id": job.job_id, "status": "queued", "line": job.line}),
        )),
        Err(SubmitError::Busy(holder)) => Err(ApiError::Conflict(format!(
            "job {holder} is already queued or running for line {}",
            job.line
        ))),
        Err(SubmitError::Queue(error)) => Err(ApiError::dependency(error)),
        Err(SubmitError::Store(err)) => Err(err.into()),
    }
}

async fn get_job(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let job_id = cx.param("job_id")?.to_owned();
    let result = app.jobs().get(&job_id).await;
    let job = cx
        .audit
        .read(Action::RetrainViewed, json!({"job_id": job_id}), result)
        .await?;
    match job {
        Some(job) if job.model == app.model_name => Ok(json_response(StatusCode::OK, &job)),
        _ => Err(ApiError::NotFound(format!("no retrain job {job_id}"))),
    }
}

/// A store's `Conflict` as the 409 a client can act on.
pub(crate) fn changed_meanwhile(err: StoreError, what: &str) -> ApiError {
    match err {
        StoreError::Conflict => ApiError::Conflict(format!(
            "{what} changed while this request was made; read it and try again"
        )),
        other => other.into(),
    }
}
