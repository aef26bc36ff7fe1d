//! Asking for a retrain (DESIGN.md §11): the one path by which a job is queued, for an
//! admin's request and for auto-retrain's, and the record of what auto-retrain decided.
//! The retrain function queues admins' requests and answers `check-drift`; the drift
//! function's schedule asks after each line's check.

use super::decision::{self, Crossing, Decision, Limits, Refusal, Verdict};
use super::{AutoRetrainSettings, FEEDBACK_DAYS};
use crate::audit::{Action, Outcome, Pending};
use crate::domain::Line;
use crate::http::AuditScope;
use crate::store::StoreError;
use crate::store::feedback::FeedbackStore;
use crate::store::jobs::{EnqueueError, JobStatus, JobStore, NewJob, QueuedWithin};
use crate::time::{format_timestamp, parse_timestamp};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

/// The most of a line's recent jobs the limits read: a day of hourly refusals and the
/// attempts among them fit many times over.
const RECENT_JOBS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The line has a job queued or running: that job's id.
    #[error("job {0} is already queued or running for this line")]
    Busy(String),
    /// The job was written but its message could not be sent: the job is failed, saying so.
    #[error("{0}")]
    Queue(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Jobs table and the jobs queue.
pub struct Requester {
    pub jobs: JobStore,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

/// One automatic request to consider: the verdict of a drift run on a line.
pub struct AutoRequest<'a> {
    pub model: &'a str,
    pub line: Line,
    pub verdict: Verdict,
    pub settings: &'a AutoRetrainSettings,
    /// The drift run the verdict is from (named in the job's reason).
    pub run_id: &'a str,
    pub now: OffsetDateTime,
}

/// What was decided, as the drift run stores it and `check-drift` answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Considered {
    /// `quiet` (nothing crossed a threshold), `requested` or `refused`.
    pub decision: &'static str,
    pub crossing: Option<Crossing>,
    pub refusal: Option<Refusal>,
    pub reason: Option<String>,
    /// The queued job, or the refusal's record (both in the Jobs table).
    pub event_id: Option<String>,
    /// Labelled feedback samples there were to train on, and the line's limits: read
    /// once a threshold crossed, unless auto-retrain is off or leaves the line out.
    pub labelled: Option<usize>,
    pub limits: Option<Limits>,
}

impl Considered {
    fn quiet() -> Self {
        Self {
            decision: "quiet",
            crossing: None,
            refusal: None,
            reason: None,
            event_id: None,
            labelled: None,
            limits: None,
        }
    }
}

impl Requester {
    pub fn new(jobs: JobStore, sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            jobs,
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
        }
    }

    /// The same requester sending to another queue (tests: one no mapping polls, so a
    /// queued job stays queued).
    pub fn with_queue_url(mut self, queue_url: impl Into<String>) -> Self {
        self.queue_url = queue_url.into();
        self
    }

    /// Writes `job` queued (with its line's lock and its audit entry, one transaction) and
    /// sends its id to the queue. A message that cannot be sent fails the job at once:
    /// it would otherwise wait with its line locked for a run that never comes.
    pub async fn submit(
        &self,
        job: &NewJob,
        audit: Pending<'_>,
        now: OffsetDateTime,
    ) -> Result<(), SubmitError> {
        let now_secs = now.unix_timestamp().max(0) as u64;
        match self.jobs.enqueue(job, audit, now_secs).await {
            Ok(()) => {}
            Err(EnqueueError::Busy(holder)) => return Err(SubmitError::Busy(holder)),
            Err(EnqueueError::Store(err)) => return Err(err.into()),
        }
        let sent = self
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(json!({"job_id": job.job_id}).to_string())
            .send()
            .await;
        let Err(err) = sent else {
            return Ok(());
        };
        let error = format!(
            "the job could not be queued: {}",
            crate::error::error_chain(&err)
        );
        let outcome = crate::store::jobs::Outcome::Failed {
            error: error.clone(),
        };
        if let Err(store) = self
            .jobs
            .finish(&job.job_id, &outcome, &format_timestamp(now), None)
            .await
        {
            tracing::error!(job = %job.job_id, error = %store, "a job that could not be queued is left queued");
        }
        Err(SubmitError::Queue(error))
    }

    /// What cooldown and the daily limit say for `line` at `now`: its automatic requests
    /// (refusals are not requests) since the earlier of the day's start and the cooldown.
    pub async fn limits(
        &self,
        settings: &AutoRetrainSettings,
        model: &str,
        line: Line,
        now: OffsetDateTime,
    ) -> Result<Limits, StoreError> {
        let day_start = now.replace_time(time::Time::MIDNIGHT);
        let cooldown_start = now - time::Duration::seconds_f64(settings.cooldown_hours * 3600.0);
        let since = format_timestamp(day_start.min(cooldown_start));
        let recent = self
            .jobs
            .of_line(
                model,
                line.as_str(),
                None,
                &QueuedWithin {
                    since: Some(&since),
                    until: None,
                },
                RECENT_JOBS,
            )
            .await?;
        let requests: Vec<OffsetDateTime> = recent
            .iter()
            .filter(|job| {
                decision::Cause::is_automatic(&job.trigger) && job.status != JobStatus::Refused
            })
            .filter_map(|job| parse_timestamp(&job.queued_at))
            .collect();
        Ok(decision::limits(settings, &requests, now))
    }

    /// Decides on `request` and writes the decision: a queued job, or a `refused` record
    /// with its reason; nothing when the verdict crosses no threshold. `audit` names who
    /// asks (the schedule's system actor, or the admin of `check-drift`); each job and
    /// each refusal is audited in its own write.
    pub async fn consider(
        &self,
        request: &AutoRequest<'_>,
        feedback: &FeedbackStore,
        audit: &AuditScope<'_>,
    ) -> Result<Considered, StoreError> {
        let settings = request.settings;
        if decision::crossing(settings, &request.verdict).is_none() {
            return Ok(Considered::quiet());
        }
        let now = request.now;
        // Disabled and an uncovered line are refused before labels or limits count:
        // neither is read for them (a disabled model's every hourly crossing).
        let (labelled, limits) = if settings.enabled && settings.covers(request.line) {
            // What a run started now would train on: feedback up to the clock's now (a
            // retried schedule's event time may be behind it).
            let until = now.max(OffsetDateTime::now_utc());
            let labelled = feedback
                .labelled(
                    &format_timestamp(until - time::Duration::days(FEEDBACK_DAYS)),
                    &format_timestamp(until),
                )
                .await?
                .len();
            let limits = self
                .limits(settings, request.model, request.line, now)
                .await?;
            (Some(labelled), Some(limits))
        } else {
            (None, None)
        };
        let decided = decision::decide(
            settings,
            request.line,
            &request.verdict,
            labelled.unwrap_or(0),
            &limits.clone().unwrap_or_default(),
        );
        let (crossing, refusal) = match decided {
            Decision::Quiet => return Ok(Considered::quiet()),
            Decision::Retrain(crossing) => (crossing, None),
            Decision::Refuse(crossing, refusal) => (crossing, Some(refusal)),
        };
        let job = NewJob {
            job_id: ulid::Ulid::new().to_string(),
            model: request.model.to_owned(),
            line: request.line.as_str().to_owned(),
            trigger: crossing.cause.as_str().to_owned(),
            requested_by: audit.actor().to_owned(),
            reason: format!(
                "{} {:.3} at or above {:.3} (drift run {})",
                match crossing.cause {
                    decision::Cause::Drift => "drift score",
                    decision::Cause::Performance => "accuracy drop",
                },
                crossing.value,
                crossing.threshold,
                request.run_id
            ),
            epochs: settings.epochs as u32,
            seed: settings.seed,
            queued_at: format_timestamp(now),
        };
        let mut considered = Considered {
            decision: "requested",
            crossing: Some(crossing),
            refusal: None,
            reason: None,
            event_id: Some(job.job_id.clone()),
            labelled,
            limits,
        };
        let refusal = match refusal {
            Some(refusal) => refusal,
            None => {
                let details = json!({
                    "job_id": job.job_id, "model": job.model, "line": job.line,
                    "trigger": job.trigger, "reason": job.reason, "run_id": request.run_id,
                    "epochs": job.epochs, "seed": job.seed,
                });
                let pending = audit
                    .prepare(Action::RetrainRequested, Outcome::Success, details)
                    .await;
                match self.submit(&job, pending, now).await {
                    Ok(()) => return Ok(considered),
                    Err(SubmitError::Busy(holder)) => Refusal::Busy { job_id: holder },
                    Err(SubmitError::Queue(error)) => {
                        // The job is recorded as failed with this error: the event says so.
                        considered.decision = "failed";
                        considered.reason = Some(error);
                        return Ok(considered);
                    }
                    Err(SubmitError::Store(err)) => return Err(err),
                }
            }
        };
        let reason = refusal.to_string();
        let record = NewJob {
            // A new id: a Busy refusal's first id may be half-used by the refused put.
            job_id: ulid::Ulid::new().to_string(),
            ..job
        };
        let details = json!({"crossing": crossing, "refusal": refusal, "labelled": labelled, "run_id": request.run_id});
        let pending = audit
            .prepare(Action::RetrainRequested, Outcome::Denied, {
                let mut audited = details.clone();
                audited["job_id"] = json!(record.job_id);
                audited["line"] = json!(record.line);
                audited
            })
            .await;
        self.jobs
            .refuse(&record, &reason, &details, pending)
            .await?;
        considered.decision = "refused";
        considered.event_id = Some(record.job_id);
        considered.refusal = Some(refusal);
        considered.reason = Some(reason);
        Ok(considered)
    }
}
