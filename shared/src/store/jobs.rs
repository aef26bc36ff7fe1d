//! The Jobs table (DESIGN.md §5, §11): one item per retrain job, and one lock item per
//! (model, line) naming the job that is queued or running for it.
//!
//! A job moves `queued → running → succeeded | failed`, or `queued → cancelled`, or
//! `queued → failed` (its queue message could not be sent); an automatic request the
//! auto-retrain limits turned down is written `refused` (final, no lock, never run). Every
//! move is a conditional write on the state it leaves, so a redelivered queue message
//! cannot run a job twice at once, and a cancelled job never starts. The lock is taken
//! in the job's own put and released in its final write (one transaction each), so "a
//! second request for a line with a job queued or running" is a failed condition, not a
//! race. A running job holds a lease that its steps extend; a worker that dies (a
//! Lambda timeout) leaves a lease that runs out, and the queue's next delivery takes
//! the job over.

use super::{Item, Refused, StoreError, get_n_opt, get_s, n, s, sdk_error};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};

/// The index of a line's jobs, newest first.
pub const BY_LINE_INDEX: &str = "by_line";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// An automatic request the auto-retrain limits turned down: kept as the record of
    /// the decision, never run.
    Refused,
}

impl JobStatus {
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Refused
        )
    }
}

/// One recorded step of a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobStep {
    pub at: String,
    pub step: String,
    pub detail: String,
}

/// A retrain job as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Job {
    pub job_id: String,
    pub model: String,
    pub line: String,
    pub status: JobStatus,
    /// `manual` (an admin's request), or the cause of an automatic one: `drift` (the
    /// data) or `performance` (the accuracy from labels).
    pub trigger: String,
    pub requested_by: String,
    pub reason: String,
    pub epochs: u32,
    pub seed: u64,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// How many times a worker started it (more than 1 after a worker died).
    pub attempts: u64,
    /// Unix seconds until which the running worker holds the job.
    #[serde(skip)]
    pub lease_until: Option<u64>,
    pub steps: Vec<JobStep>,
    /// The version the run registered.
    pub version: Option<String>,
    /// The run's figures: data counts, metrics, the gate's decision.
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// A new job, as `enqueue` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub job_id: String,
    pub model: String,
    pub line: String,
    pub trigger: String,
    pub requested_by: String,
    pub reason: String,
    pub epochs: u32,
    pub seed: u64,
    pub queued_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The line has a job queued or running: that job's id.
    #[error("job {0} is already queued or running for this line")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a worker's attempt to start a job found.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// This worker runs it now.
    Started(Job),
    /// Finished, cancelled, or running under another worker's live lease: nothing to do.
    NotRunnable(Job),
}

/// The queue times a listing covers, both ends inclusive (fixed-width timestamps); `None`:
/// open at that end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuedWithin<'a> {
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        version: String,
        result: serde_json::Value,
    },
    Failed {
        error: String,
    },
}

pub struct JobStore {
    client: Client,
    table: String,
}

fn lock_key(model: &str, line: &str) -> String {
    // Job ids are ULIDs: never this.
    format!("active#{model}#{line}")
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Dynamo(e.to_string())
}

impl JobStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes the job as `queued` and takes its line's lock, with the audit entry, in one
    /// transaction; `Busy` with the holder's id if the line has a job queued or running.
    /// A lock left by a job that is over (its worker died before releasing it) is taken
    /// over: the abandoned job is marked failed first.
    pub async fn enqueue(
        &self,
        job: &NewJob,
        audit: crate::audit::Pending<'_>,
        now_secs: u64,
    ) -> Result<(), EnqueueError> {
        let cleared = match self.lock_holder(&job.model, &job.line).await {
            Ok(Some(holder)) => {
                self.clear_abandoned(&holder, now_secs, &job.queued_at)
                    .await
            }
            Ok(None) => Ok(()),
            Err(err) => Err(err),
        };
        if let Err(err) = cleared {
            // Nothing was written: the chain stays where it was.
            audit.not_written();
            return Err(err.into());
        }
        let put_job = Put::builder()
            .table_name(&self.table)
            .set_item(Some(new_job_item(job)))
            .condition_expression("attribute_not_exists(job_id)")
            .build()
            .map_err(build_error)?;
        let put_lock = Put::builder()
            .table_name(&self.table)
            .item("job_id", s(lock_key(&job.model, &job.line)))
            .item("active_job", s(&job.job_id))
            .condition_expression("attribute_not_exists(job_id)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(put_job).build(),
            TransactWriteItem::builder().put(put_lock).build(),
        ];
        match super::transact_audited(&self.client, items, audit).await {
            Ok(()) => Ok(()),
            Err(Refused::Condition(1)) => {
                match self.lock_holder(&job.model, &job.line).await? {
                    Some(holder) => Err(EnqueueError::Busy(holder)),
                    // Released in between: the caller may simply ask again.
                    None => Err(StoreError::Conflict.into()),
                }
            }
            Err(Refused::Condition(_)) => Err(StoreError::Conflict.into()),
            Err(Refused::Failed(err)) => Err(err.into()),
        }
    }

    /// Records an automatic request that was turned down, as a `refused` job with the
    /// reason as its error and `details` as its result, with its audit entry; it takes no
    /// lock and is never run.
    pub async fn refuse(
        &self,
        job: &NewJob,
        reason: &str,
        details: &serde_json::Value,
        audit: crate::audit::Pending<'_>,
    ) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(refused_job_item(job, reason, details)))
            .condition_expression("attribute_not_exists(job_id)")
            .build()
            .map_err(build_error)?;
        let items = vec![TransactWriteItem::builder().put(put).build()];
        match super::transact_audited(&self.client, items, audit).await {
            Ok(()) => Ok(()),
            Err(Refused::Condition(_)) => Err(StoreError::Conflict),
            Err(Refused::Failed(err)) => Err(err),
        }
    }

    /// The job holding `model`'s `line`, if any.
    pub async fn lock_holder(&self, model: &str, line: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", s(lock_key(model, line)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item()
            .map(|item| get_s(item, "active_job").map(str::to_owned))
            .transpose()
    }

    /// Frees the lock of `holder` if that job is over or its worker's lease ran out.
    async fn clear_abandoned(
        &self,
        holder: &str,
        now_secs: u64,
        at: &str,
    ) -> Result<(), StoreError> {
        let Some(job) = self.get(holder).await? else {
            return Ok(());
        };
        let abandoned = job.status == JobStatus::Running
            && job.lease_until.is_some_and(|lease| lease < now_secs);
        if abandoned {
            let outcome = Outcome::Failed {
                error: "the worker stopped before the job finished (its lease ran out)".into(),
            };
            match self.finish(&job.job_id, &outcome, at, None).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(err) => return Err(err),
            }
        } else if job.status.is_final() {
            self.release(&job).await?;
        }
        Ok(())
    }

    async fn release(&self, job: &Job) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("job_id", s(lock_key(&job.model, &job.line)))
            .condition_expression("active_job = :job")
            .expression_attribute_values(":job", s(&job.job_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if super::is_conditional_failure(&err) => Ok(()),
            Err(err) => Err(sdk_error(err)),
        }
    }

    pub async fn get(&self, job_id: &str) -> Result<Option<Job>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item() {
            Some(item) if item.contains_key("status") => job_from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    /// Moves a queued job (or a running one whose lease ran out) to `running` under a
    /// lease of `lease_secs`.
    pub async fn start(
        &self,
        job_id: &str,
        at: &str,
        now_secs: u64,
        lease_secs: u64,
    ) -> Result<Start, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .update_expression(
                "SET #st = :running, started_at = if_not_exists(started_at, :at), \
                 lease_until = :lease, attempts = if_not_exists(attempts, :zero) + :one, \
                 steps = list_append(if_not_exists(steps, :empty), :step)",
            )
            .condition_expression(
                "attribute_exists(job_id) AND (#st = :queued OR (#st = :running AND lease_until < :now))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":now", n(now_secs))
            .expression_attribute_values(":lease", n(now_secs + lease_secs))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":step", step_list(at, "started", "a worker took the job"))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out
                    .attributes()
                    .ok_or_else(|| StoreError::Corrupt("start returned no item".into()))?;
                Ok(Start::Started(job_from_item(item)?))
            }
            Err(err) if super::is_conditional_failure(&err) => match self.get(job_id).await? {
                Some(job) => Ok(Start::NotRunnable(job)),
                None => Err(StoreError::NotFound),
            },
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Appends a step to a running job and extends its lease; `Conflict` if the job is no
    /// longer running.
    pub async fn record_step(
        &self,
        job_id: &str,
        at: &str,
        step: &str,
        detail: &str,
        lease_until: u64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .update_expression("SET steps = list_append(steps, :step), lease_until = :lease")
            .condition_expression("#st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":step", step_list(at, step, detail))
            .expression_attribute_values(":lease", n(lease_until))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if super::is_conditional_failure(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Ends a running job (or fails a queued one) and releases its line, in one
    /// transaction (with `audit`'s entry when given); `Conflict` if the job is in no
    /// state to end so.
    pub async fn finish(
        &self,
        job_id: &str,
        outcome: &Outcome,
        at: &str,
        audit: Option<crate::audit::Pending<'_>>,
    ) -> Result<(), StoreError> {
        let Some(job) = self.get(job_id).await? else {
            return Err(StoreError::NotFound);
        };
        let (status, step, detail) = match outcome {
            Outcome::Succeeded { version, .. } => (
                JobStatus::Succeeded,
                "succeeded",
                format!("registered {version}"),
            ),
            Outcome::Failed { error } => (JobStatus::Failed, "failed", error.clone()),
        };
        // A run ends a running job; a job that never reached a worker (its message
        // could not be sent) fails from queued.
        let leaves = match outcome {
            Outcome::Succeeded { .. } => "#st = :running",
            Outcome::Failed { .. } => "#st = :running OR #st = :queued",
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .condition_expression(leaves)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":step", step_list(at, step, &detail));
        let set = "SET #st = :status, finished_at = :at, \
                   steps = list_append(if_not_exists(steps, :empty), :step)";
        update = match outcome {
            Outcome::Succeeded { version, result } => update
                .update_expression(format!("{set}, version = :version, #result = :result"))
                .expression_attribute_names("#result", "result")
                .expression_attribute_values(":version", s(version))
                .expression_attribute_values(":result", s(result.to_string())),
            Outcome::Failed { error } => update
                .update_expression(format!("{set}, #error = :error"))
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(error))
                .expression_attribute_values(":queued", s(JobStatus::Queued.as_str())),
        };
        self.end(&job, update.build().map_err(build_error)?, audit)
            .await
    }

    /// Cancels a queued job and releases its line; `Conflict` with the job as it is when
    /// it is not queued (running, or over).
    pub async fn cancel(
        &self,
        job_id: &str,
        at: &str,
        actor: &str,
        audit: crate::audit::Pending<'_>,
    ) -> Result<(), StoreError> {
        let Some(job) = self.get(job_id).await? else {
            audit.not_written();
            return Err(StoreError::NotFound);
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .update_expression(
                "SET #st = :cancelled, finished_at = :at, \
                 steps = list_append(if_not_exists(steps, :empty), :step)",
            )
            .condition_expression("#st = :queued")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":cancelled", s(JobStatus::Cancelled.as_str()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(
                ":step",
                step_list(at, "cancelled", &format!("cancelled by {actor}")),
            )
            .build()
            .map_err(build_error)?;
        self.end(&job, update, Some(audit)).await
    }

    /// The job's final update and the release of its line's lock, together.
    async fn end(
        &self,
        job: &Job,
        update: Update,
        audit: Option<crate::audit::Pending<'_>>,
    ) -> Result<(), StoreError> {
        let release = Delete::builder()
            .table_name(&self.table)
            .key("job_id", s(lock_key(&job.model, &job.line)))
            .condition_expression("attribute_not_exists(job_id) OR active_job = :job")
            .expression_attribute_values(":job", s(&job.job_id))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().delete(release).build(),
        ];
        match audit {
            Some(audit) => match super::transact_audited(&self.client, items, audit).await {
                Ok(()) => Ok(()),
                Err(Refused::Condition(_)) => Err(StoreError::Conflict),
                Err(Refused::Failed(err)) => Err(err),
            },
            None => {
                let result = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(()),
                    Err(err) if super::is_cancelled(&err) => Err(StoreError::Conflict),
                    Err(err) => Err(sdk_error(err)),
                }
            }
        }
    }

    /// A line's jobs, newest first, at most `limit`, optionally of one status and queued
    /// within `window`.
    pub async fn of_line(
        &self,
        model: &str,
        line: &str,
        status: Option<JobStatus>,
        window: &QueuedWithin<'_>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_LINE_INDEX)
                .expression_attribute_names("#scope", "scope")
                .expression_attribute_values(":scope", s(scope(model, line)))
                .scan_index_forward(false)
                .set_exclusive_start_key(start);
            query = match (window.since, window.until) {
                (Some(since), Some(until)) => query
                    .key_condition_expression(
                        "#scope = :scope AND queued_at BETWEEN :since AND :until",
                    )
                    .expression_attribute_values(":since", s(since))
                    .expression_attribute_values(":until", s(until)),
                (Some(since), None) => query
                    .key_condition_expression("#scope = :scope AND queued_at >= :since")
                    .expression_attribute_values(":since", s(since)),
                (None, Some(until)) => query
                    .key_condition_expression("#scope = :scope AND queued_at <= :until")
                    .expression_attribute_values(":until", s(until)),
                (None, None) => query.key_condition_expression("#scope = :scope"),
            };
            if let Some(status) = status {
                query = query
                    .filter_expression("#st = :status")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":status", s(status.as_str()));
            }
            let out = query.send().await.map_err(sdk_error)?;
            for item in out.items() {
                if jobs.len() == limit {
                    return Ok(jobs);
                }
                jobs.push(job_from_item(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(jobs);
            }
        }
    }
}

fn scope(model: &str, line: &str) -> String {
    format!("{model}#{line}")
}

fn step_list(at: &str, step: &str, detail: &str) -> AttributeValue {
    AttributeValue::L(vec![AttributeValue::M(
        [
            ("at".to_owned(), s(at)),
            ("step".to_owned(), s(step)),
            ("detail".to_owned(), s(detail)),
        ]
        .into(),
    )])
}

fn new_job_item(job: &NewJob) -> Item {
    Item::from([
        ("job_id".to_owned(), s(&job.job_id)),
        ("model".to_owned(), s(&job.model)),
        ("line".to_owned(), s(&job.line)),
        ("scope".to_owned(), s(scope(&job.model, &job.line))),
        ("status".to_owned(), s(JobStatus::Queued.as_str())),
        ("trigger".to_owned(), s(&job.trigger)),
        ("requested_by".to_owned(), s(&job.requested_by)),
        ("reason".to_owned(), s(&job.reason)),
        ("epochs".to_owned(), n(u64::from(job.epochs))),
        ("seed".to_owned(), n(job.seed)),
        ("queued_at".to_owned(), s(&job.queued_at)),
        (
            "steps".to_owned(),
            step_list(
                &job.queued_at,
                "queued",
                &format!("requested by {}", job.requested_by),
            ),
        ),
    ])
}

fn refused_job_item(job: &NewJob, reason: &str, details: &serde_json::Value) -> Item {
    let mut item = new_job_item(job);
    item.insert("status".into(), s(JobStatus::Refused.as_str()));
    item.insert("finished_at".into(), s(&job.queued_at));
    item.insert("error".into(), s(reason));
    item.insert("result".into(), s(details.to_string()));
    item.insert("steps".into(), step_list(&job.queued_at, "refused", reason));
    item
}

fn job_from_item(item: &Item) -> Result<Job, StoreError> {
    let optional = |key: &str| item.get(key).and_then(|v| v.as_s().ok()).cloned();
    let status = get_s(item, "status")?;
    let steps = match item.get("steps") {
        None => Vec::new(),
        Some(value) => value
            .as_l()
            .map_err(|_| StoreError::Corrupt("steps is not a list".into()))?
            .iter()
            .map(|step| {
                let step = step
                    .as_m()
                    .map_err(|_| StoreError::Corrupt("a step is not a map".into()))?;
                Ok(JobStep {
                    at: get_s(step, "at")?.to_owned(),
                    step: get_s(step, "step")?.to_owned(),
                    detail: get_s(step, "detail")?.to_owned(),
                })
            })
            .collect::<Result<_, StoreError>>()?,
    };
    let result = optional("result")
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("job result: {e}")))
        })
        .transpose()?;
    Ok(Job {
        job_id: get_s(item, "job_id")?.to_owned(),
        model: get_s(item, "model")?.to_owned(),
        line: get_s(item, "line")?.to_owned(),
        status: JobStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job status {status:?}")))?,
        trigger: get_s(item, "trigger")?.to_owned(),
        requested_by: get_s(item, "requested_by")?.to_owned(),
        reason: get_s(item, "reason")?.to_owned(),
        epochs: get_n_opt(item, "epochs")?
            .and_then(|e| u32::try_from(e).ok())
            .unwrap_or(0),
        seed: get_n_opt(item, "seed")?.unwrap_or(0),
        queued_at: get_s(item, "queued_at")?.to_owned(),
        started_at: optional("started_at"),
        finished_at: optional("finished_at"),
        attempts: get_n_opt(item, "attempts")?.unwrap_or(0),
        lease_until: get_n_opt(item, "lease_until")?,
        steps,
        version: optional("version"),
        result,
        error: optional("error"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_job_reads_back_as_queued_with_its_first_step() {
        let job = NewJob {
            job_id: "01JOB".into(),
            model: "mnist".into(),
            line: "v2".into(),
            trigger: "manual".into(),
            requested_by: "admin".into(),
            reason: "drift".into(),
            epochs: 3,
            seed: 7,
            queued_at: "2026-12-03T00:00:00.000000Z".into(),
        };
        let read = job_from_item(&new_job_item(&job)).unwrap();
        assert_eq!(read.status, JobStatus::Queued);
        assert_eq!((read.epochs, read.seed), (3, 7));
        assert_eq!(read.steps.len(), 1);
        assert_eq!(read.steps[0].step, "queued");
        assert_eq!(read.attempts, 0);
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        assert!(!JobStatus::Running.is_final() && JobStatus::Cancelled.is_final());
        let refused = job_from_item(&refused_job_item(
            &job,
            "in cooldown",
            &serde_json::json!({"code": "cooldown"}),
        ))
        .unwrap();
        assert_eq!(refused.status, JobStatus::Refused);
        assert!(refused.status.is_final());
        assert_eq!(refused.error.as_deref(), Some("in cooldown"));
        assert_eq!(refused.result.unwrap()["code"], "cooldown");
        assert_eq!(refused.steps[0].step, "refused");
        // The lock's key can never be a job id (a ULID).
        assert!(lock_key("mnist", "v2").contains('#'));
    }
}
