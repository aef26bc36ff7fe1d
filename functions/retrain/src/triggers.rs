//! The seed's manual triggers (DESIGN.md §2, §11):
//!
//! - `POST /auto-retrain/trigger/{line}` `{reason, epochs?, seed?, model_name?,
//!   priority?}`: an admin's retrain of the line, as `POST /admin/retrain` (manual
//!   requests are not held to the automatic limits). `priority` is accepted for the
//!   seed's clients and recorded in the audit entry; it changes nothing: a line runs one
//!   job at a time from one queue.
//! - `POST /auto-retrain/check-drift/{line}`: the decision the schedule makes, now, on
//!   the line's latest stored drift check: quiet, requested (202, a job queued under the
//!   automatic limits) or refused (the refusal recorded with its reason).

use crate::App;
use crate::request::{MAX_BODY_BYTES, RetrainRequest};
use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::autoretrain::decision::Verdict;
use inferloop::autoretrain::requester::AutoRequest;
use inferloop::domain::Line;
use inferloop::http::{Admin, Ctx, HandlerResult, json_response, parse_json};
use inferloop::store::drift_runs::DriftRun;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

/// The longest `priority` kept.
const MAX_PRIORITY_CHARS: usize = 32;

fn path_line(cx: &Ctx<'_, Admin>) -> Result<Line, ApiError> {
    Line::parse_named("line", cx.param("line")?).map_err(ApiError::bad_parameter)
}

/// The trigger's body as a retrain request for `line`, and its priority.
fn parse_trigger(
    model: &str,
    line: Line,
    body: Value,
) -> Result<(RetrainRequest, Option<String>), ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::invalid_parameter(
            "the trigger request must be a JSON object",
        ));
    };
    if let Some(name) = body.remove("model_name")
        && name.as_str() != Some(model)
    {
        return Err(ApiError::invalid_parameter(format!(
            "model_name must be {model}, this service's model, got {name}"
        )));
    }
    let priority = match body.remove("priority") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if !p.is_empty() && p.chars().count() <= MAX_PRIORITY_CHARS => {
            Some(p)
        }
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!(
                "priority must be a string of 1 to {MAX_PRIORITY_CHARS} characters, got {other}"
            )));
        }
    };
    match body.get("line") {
        None => {
            body.insert("line".into(), json!(line.as_str()));
        }
        Some(given) if given.as_str() == Some(line.as_str()) => {}
        Some(given) => {
            return Err(ApiError::invalid_parameter(format!(
                "line {given} in the body differs from the path's {}",
                line.as_str()
            )));
        }
    }
    Ok((RetrainRequest::parse(Value::Object(body))?, priority))
}

pub async fn trigger(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let line = path_line(&cx)?;
    let body: Value = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let (request, priority) = parse_trigger(&app.model_name, line, body)?;
    crate::queue_manual(
        app,
        &cx,
        &request,
        json!({"route": "/auto-retrain/trigger/{line}", "priority": priority}),
    )
    .await
}

pub async fn check_drift(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let line = path_line(&cx)?;
    let (settings, _) = app
        .auto_retrain_settings(&app.model_name)
        .await
        .map_err(crate::compare::Stop::into_api)?;
    let scope = DriftRun::scope_of(&app.model_name, line.as_str());
    let Some(run) = app.runs.latest(&scope).await? else {
        return Err(ApiError::Conflict(format!(
            "no drift check of line {} is stored yet: the schedule runs one every hour, \
             POST /drift/production-data runs one now",
            line.as_str()
        )));
    };
    let verdict = Verdict::of_check(run.drift_score, &run.report);
    let request = AutoRequest {
        model: &app.model_name,
        line,
        verdict,
        settings: &settings,
        run_id: &run.run_id,
        now: app.now(),
    };
    let considered = app
        .requester
        .consider(&request, &app.feedback, &cx.audit)
        .await?;
    if considered.decision == "quiet" {
        // Nothing was written; the admin's look at the verdict is still recorded.
        cx.audit
            .record_best_effort(
                Action::RetrainViewed,
                Outcome::Success,
                json!({"route": "/auto-retrain/check-drift/{line}", "line": line.as_str(), "run_id": run.run_id, "decision": "quiet"}),
            )
            .await;
    }
    let status = if considered.decision == "requested" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &json!({
            "model_name": app.model_name,
            "line": line.as_str(),
            "run": {
                "run_id": run.run_id, "checked_at": run.checked_at, "kind": run.kind,
                "version": run.version, "verdict": run.verdict, "drift_score": run.drift_score,
            },
            "verdict": verdict,
            "decision": considered.decision,
            "auto_retrain": considered,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: Value) -> Result<(RetrainRequest, Option<String>), ApiError> {
        parse_trigger("mnist", Line::V2, body)
    }

    #[test]
    fn the_path_names_the_line_and_the_seeds_fields_are_checked() {
        let (request, priority) =
            parsed(json!({"reason": "drift", "priority": "high", "model_name": "mnist"})).unwrap();
        assert_eq!(request.line, Line::V2);
        assert_eq!(priority.as_deref(), Some("high"));
        for (body, field) in [
            (json!({"reason": "r", "line": "v1"}), "line"),
            (json!({"reason": "r", "model_name": "other"}), "model_name"),
            (json!({"reason": "r", "priority": 3}), "priority"),
            (json!({"reason": "r", "epochs": 0}), "epochs"),
            (json!({"line": "v2"}), "reason"),
            (json!([1]), "object"),
        ] {
            let err = parsed(body.clone()).unwrap_err().to_string();
            assert!(err.contains(field), "{body}: {err}");
        }
    }
}
