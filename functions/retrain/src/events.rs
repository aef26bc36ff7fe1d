//! Auto-retrain's record (DESIGN.md §11, the seed's `/auto-retrain/*`): every job and
//! every refused automatic request is an event in the Jobs table.
//!
//! - `GET /auto-retrain/status`: per line, the cooldown and the day's automatic requests
//!   as the next decision will read them, the job queued or running, the last retrain;
//!   with the seed's `total_events`, `events`, `last_retrain_times`, `daily_counts`.
//! - `GET /auto-retrain/status/{line}`: one line's, with its recent events.
//! - `GET /auto-retrain/events?limit=&status=&cursor=`: both lines' events, newest first.
//! - `DELETE /auto-retrain/events/{event_id}`: cancels a queued job (409 naming the state
//!   of one that is not queued).

use crate::App;
use crate::compare::Stop;
use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::autoretrain::AutoRetrainSettings;
use inferloop::domain::Line;
use inferloop::http::{
    Admin, Ctx, HandlerResult, PageRequest, encode_cursor, json_response, query_param,
};
use inferloop::store::StoreError;
use inferloop::store::jobs::{Job, JobStatus, QueuedWithin};
use inferloop::time::format_timestamp;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

/// Events a status shows (the listing has the rest).
const STATUS_EVENTS: usize = 20;

/// A job as an event: the job, under the seed's names too.
pub fn event_json(job: &Job) -> Value {
    let mut event = serde_json::to_value(job).unwrap_or_default();
    event["event_id"] = json!(job.job_id);
    event["model_name"] = json!(job.model);
    event["timestamp"] = json!(job.queued_at);
    // A refusal was never a job.
    event["retrain_job_id"] = match job.status {
        JobStatus::Refused => Value::Null,
        _ => json!(job.job_id),
    };
    event["error_message"] = json!(job.error);
    if let Some(crossing) = job.result.as_ref().map(|r| &r["crossing"]) {
        event["drift_score"] = crossing["value"].clone();
        event["threshold"] = crossing["threshold"].clone();
    }
    event
}

/// One line's state as the next automatic decision will read it.
async fn line_state(
    app: &App,
    settings: &AutoRetrainSettings,
    line: Line,
    recent: &[Job],
) -> Result<Value, ApiError> {
    let now = app.now();
    let limits = app
        .requester
        .limits(settings, &app.model_name, line, now)
        .await?;
    let active = app
        .jobs()
        .lock_holder(&app.model_name, line.as_str())
        .await?;
    let last_retrain = recent
        .iter()
        .find(|job| job.status != JobStatus::Refused)
        .map(|job| job.queued_at.clone());
    let allowed = settings.enabled && settings.covers(line);
    // The next time the limits let an automatic request through (if drift asks).
    let next = if !allowed {
        None
    } else if limits.made_today >= limits.max_per_day {
        let tomorrow = now.replace_time(time::Time::MIDNIGHT) + time::Duration::days(1);
        Some(
            limits
                .cooldown_until
                .clone()
                .unwrap_or_default()
                .max(format_timestamp(tomorrow)),
        )
    } else {
        Some(
            limits
                .cooldown_until
                .clone()
                .unwrap_or_else(|| format_timestamp(now)),
        )
    };
    Ok(json!({
        "line": line.as_str(),
        "automatic": allowed,
        "active_job": active,
        "last_retrain_at": last_retrain,
        "last_automatic_request_at": limits.last_request,
        "cooldown_until": limits.cooldown_until,
        "automatic_requests_today": limits.made_today,
        "max_automatic_requests_per_day": limits.max_per_day,
        "next_automatic_request_at": next,
    }))
}

async fn recent_of(app: &App, line: Line, limit: usize) -> Result<Vec<Job>, StoreError> {
    app.jobs()
        .of_line(
            &app.model_name,
            line.as_str(),
            None,
            &QueuedWithin::default(),
            limit,
        )
        .await
}

async fn status_body(app: &App) -> Result<Value, ApiError> {
    let (settings, revision) = app
        .auto_retrain_settings(&app.model_name)
        .await
        .map_err(Stop::into_api)?;
    let mut lines = serde_json::Map::new();
    let mut events = Vec::new();
    let mut last_times = serde_json::Map::new();
    let mut daily = serde_json::Map::new();
    for line in Line::ALL {
        let recent = recent_of(app, line, STATUS_EVENTS).await?;
        let state = line_state(app, &settings, line, &recent).await?;
        last_times.insert(line.as_str().into(), state["last_retrain_at"].clone());
        daily.insert(
            line.as_str().into(),
            state["automatic_requests_today"].clone(),
        );
        lines.insert(line.as_str().into(), state);
        events.extend(recent);
    }
    sort_newest_first(&mut events);
    events.truncate(STATUS_EVENTS);
    Ok(json!({
        "model_name": app.model_name,
        "enabled": settings.enabled,
        "auto_promote": settings.auto_promote,
        "settings_revision": revision,
        "lines": lines,
        "total_events": events.len(),
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
        "last_retrain_times": last_times,
        "daily_counts": daily,
    }))
}

fn sort_newest_first(events: &mut [Job]) {
    events.sort_by(|a, b| (&b.queued_at, &b.job_id).cmp(&(&a.queued_at, &a.job_id)));
}

pub async fn status(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let result = status_body(app).await;
    let body = cx
        .audit
        .read(
            Action::RetrainViewed,
            json!({"route": "/auto-retrain/status"}),
            result,
        )
        .await?;
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn line_status(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let line = Line::parse_named("line", cx.param("line")?).map_err(ApiError::bad_parameter)?;
    let result = async {
        let (settings, _) = app
            .auto_retrain_settings(&app.model_name)
            .await
            .map_err(Stop::into_api)?;
        let recent = recent_of(app, line, STATUS_EVENTS).await?;
        let mut state = line_state(app, &settings, line, &recent).await?;
        state["model_name"] = json!(app.model_name);
        state["events"] = json!(recent.iter().map(event_json).collect::<Vec<_>>());
        Ok::<_, ApiError>(state)
    }
    .await;
    let body = cx
        .audit
        .read(
            Action::RetrainViewed,
            json!({"route": "/auto-retrain/status/{line}", "line": line.as_str()}),
            result,
        )
        .await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// Where a page of events resumes: strictly older than this (queue time, then id).
fn parse_after(cursor: &str) -> Result<(String, String), ApiError> {
    cursor
        .split_once('|')
        .map(|(at, id)| (at.to_owned(), id.to_owned()))
        .ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this API issued")
        })
}

pub async fn list(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let page = PageRequest::from_request(&cx.req)?;
    let status = query_param(&cx.req, "status")
        .map(|raw| {
            JobStatus::parse(&raw).ok_or_else(|| {
                let known: Vec<_> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::invalid_parameter(format!(
                    "status must be one of {}, got {raw:?}",
                    known.join(", ")
                ))
            })
        })
        .transpose()?;
    let after = page.cursor.as_deref().map(parse_after).transpose()?;
    let limit = page.limit as usize;
    let result = async {
        let window = QueuedWithin {
            since: None,
            until: after.as_ref().map(|(at, _)| at.as_str()),
        };
        let mut events = Vec::new();
        for line in Line::ALL {
            // One more than the page, and the cursor's own tie, so a next page is known.
            let found = app
                .jobs()
                .of_line(&app.model_name, line.as_str(), status, &window, limit + 2)
                .await?;
            events.extend(found.into_iter().filter(|job| match &after {
                Some((at, id)) => (&job.queued_at, &job.job_id) < (at, id),
                None => true,
            }));
        }
        sort_newest_first(&mut events);
        let more = events.len() > limit;
        events.truncate(limit);
        let next = more
            .then(|| events.last())
            .flatten()
            .map(|job| encode_cursor(&format!("{}|{}", job.queued_at, job.job_id)));
        Ok::<_, ApiError>(json!({
            "model_name": app.model_name,
            "total_events": events.len(),
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
            "next_cursor": next,
        }))
    }
    .await;
    let body = cx
        .audit
        .read(
            Action::RetrainViewed,
            json!({"route": "/auto-retrain/events", "status": status.map(|s| s.as_str())}),
            result,
        )
        .await?;
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn cancel(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let event_id = cx.param("event_id")?.to_owned();
    let not_found = || ApiError::NotFound(format!("no retrain event {event_id}"));
    let Some(job) = app.jobs().get(&event_id).await? else {
        return Err(not_found());
    };
    if job.model != app.model_name {
        return Err(not_found());
    }
    if job.status != JobStatus::Queued {
        return Err(ApiError::Conflict(format!(
            "event {event_id} is {}: only a queued job can be cancelled",
            job.status.as_str()
        )));
    }
    let details = json!({"job_id": event_id, "line": job.line, "model": job.model});
    let audit = cx
        .audit
        .prepare(Action::RetrainCancelled, Outcome::Success, details)
        .await;
    let at = format_timestamp(app.now());
    match app
        .jobs()
        .cancel(&event_id, &at, cx.audit.actor(), audit)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            // A worker started it (or someone cancelled it) in between.
            let now = app
                .jobs()
                .get(&event_id)
                .await?
                .map(|j| j.status.as_str())
                .unwrap_or("gone");
            return Err(ApiError::Conflict(format!(
                "event {event_id} is {now}: only a queued job can be cancelled"
            )));
        }
        Err(StoreError::NotFound) => return Err(not_found()),
        Err(err) => return Err(err.into()),
    }
    let job = app.jobs().get(&event_id).await?.ok_or_else(not_found)?;
    Ok(json_response(StatusCode::OK, &event_json(&job)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, at: &str, status: JobStatus) -> Job {
        Job {
            job_id: id.into(),
            model: "mnist".into(),
            line: "v1".into(),
            status,
            trigger: "drift".into(),
            requested_by: "system:schedule".into(),
            reason: "r".into(),
            epochs: 3,
            seed: 1,
            queued_at: at.into(),
            started_at: None,
            finished_at: None,
            attempts: 0,
            lease_until: None,
            steps: vec![],
            version: None,
            result: Some(json!({"crossing": {"cause": "drift", "value": 0.8, "threshold": 0.5}})),
            error: Some("in cooldown".into()),
        }
    }

    #[test]
    fn an_event_carries_the_seeds_names_and_a_refusal_no_job() {
        let refused = event_json(&job(
            "01A",
            "2026-12-03T00:00:00.000000Z",
            JobStatus::Refused,
        ));
        assert_eq!(refused["event_id"], "01A");
        assert_eq!(refused["retrain_job_id"], Value::Null);
        assert_eq!(refused["drift_score"], 0.8);
        assert_eq!(refused["threshold"], 0.5);
        assert_eq!(refused["error_message"], "in cooldown");
        let queued = event_json(&job(
            "01B",
            "2026-12-03T00:00:00.000000Z",
            JobStatus::Queued,
        ));
        assert_eq!(queued["retrain_job_id"], "01B");
    }

    #[test]
    fn events_sort_newest_first_with_ties_by_id() {
        let mut events = vec![
            job("01A", "2026-12-03T00:00:00.000000Z", JobStatus::Queued),
            job("01C", "2026-12-03T00:00:01.000000Z", JobStatus::Queued),
            job("01B", "2026-12-03T00:00:00.000000Z", JobStatus::Queued),
        ];
        sort_newest_first(&mut events);
        let ids: Vec<_> = events.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["01C", "01B", "01A"]);
        assert!(parse_after("2026|01B").is_ok() && parse_after("nope").is_err());
    }
}
