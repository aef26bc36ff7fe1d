//! The registry's routes (DESIGN.md §11): what versions a model has, every change of its
//! production pointer and which version served a line when, and the rollback.

use crate::compare::Stop;
use crate::promotion;
use crate::{App, changed_meanwhile};
use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::domain::{Line, VersionName};
use inferloop::gate::GateReport;
use inferloop::http::{Admin, Ctx, HandlerResult, json_response, parse_json, query_param};
use inferloop::store::models::{ChangeKind, ModelVersion, Promotion, rollback_target};
use inferloop::time::{format_timestamp, parse_instant};
use lambda_http::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

fn version_json(v: &ModelVersion) -> serde_json::Value {
    json!({
        "version": v.version, "line": v.line, "stage": v.stage.as_str(),
        "metrics": {"accuracy": v.accuracy, "macro_f1": v.macro_f1},
        "parent": v.parent, "created": v.registered_at, "sha256": v.sha256,
        "manifest": serde_json::from_str::<serde_json::Value>(&v.manifest_json).ok(),
    })
}

/// The model this deployment serves; another name is a 404.
fn own_model<'a>(app: &'a App, cx: &Ctx<'_, Admin>) -> Result<&'a str, ApiError> {
    let name = cx.param("name")?;
    if name == app.model_name {
        Ok(&app.model_name)
    } else {
        Err(ApiError::NotFound(format!("no model named {name}")))
    }
}

pub async fn models(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let result = app.models.production(&app.model_name).await;
    let pointer = cx
        .audit
        .read(Action::ModelsViewed, json!({"route": "/models"}), result)
        .await?
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &json!({"models": [{
            "name": app.model_name,
            "production": pointer.lines,
            "default_line": pointer.default_line,
            "revision": pointer.revision,
        }]}),
    ))
}

pub async fn versions(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let name = own_model(app, &cx)?;
    let result = app.models.versions(name).await;
    let versions = cx
        .audit
        .read(Action::ModelsViewed, json!({"model": name}), result)
        .await?;
    let shown: Vec<_> = versions.iter().map(version_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"name": name, "versions": shown}),
    ))
}

/// `?line=` (one line's changes) and `?at=` (with `line`: which version served then).
pub async fn history(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let name = own_model(app, &cx)?;
    let line = query_param(&cx.req, "line")
        .map(|raw| Line::parse_named("line", &raw))
        .transpose()
        .map_err(ApiError::bad_parameter)?;
    // A date means its last instant: what served at the end of that day.
    let at = query_param(&cx.req, "at")
        .map(|raw| parse_instant("at", &raw, true))
        .transpose()?;
    if at.is_some() && line.is_none() {
        return Err(ApiError::invalid_parameter(
            "at needs line: which line's version at that time",
        ));
    }
    let line = line.map(|l| l.as_str().to_owned());
    let changes = app.models.history(name, line.as_deref()).await;
    let details = json!({"model": name, "line": line});
    let changes = cx
        .audit
        .read(Action::ModelsViewed, details, changes)
        .await?;
    let mut body = json!({"name": name, "line": line, "changes": changes});
    if let (Some(line), Some(at)) = (&line, at) {
        let at = format_timestamp(at);
        let served = app.models.served_at(name, line, &at).await?;
        body["at"] = json!(at);
        body["served"] = json!(served.map(|change| change.to));
    }
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    reason: String,
}

/// `POST /models/{name}/versions/{version}/rollback {reason}`: `version` must be its
/// line's production version; the version that served before it is made production
/// again (audited, in the pointer's history as a rollback).
pub async fn rollback(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let name = own_model(app, &cx)?.to_owned();
    let version = VersionName::parse(cx.param("version")?).map_err(ApiError::bad_parameter)?;
    let body: RollbackBody = parse_json(&cx.req, 4 * 1024)?;
    let reason = checked_reason(&body.reason)?;
    let Some(current) = app.models.get_version(&name, version.as_str()).await? else {
        return Err(ApiError::NotFound(format!(
            "model {name} has no version {}",
            version.as_str()
        )));
    };
    let pointer = app.models.production(&name).await?.unwrap_or_default();
    if pointer.version_of(&current.line) != Some(current.version.as_str()) {
        return Err(ApiError::Conflict(format!(
            "{} is not the production version of line {} ({} is)",
            current.version,
            current.line,
            pointer.version_of(&current.line).unwrap_or("none")
        )));
    }
    let history = app.models.history(&name, Some(&current.line)).await?;
    let Some(target) = rollback_target(&history, &current.version) else {
        return Err(ApiError::Conflict(format!(
            "line {} has no version before {} to roll back to",
            current.line, current.version
        )));
    };
    let Some(previous) = app.models.get_version(&name, target).await? else {
        return Err(ApiError::Internal(format!(
            "the history names {target}, which is not registered"
        )));
    };
    let promotion = Promotion {
        actor: cx.audit.actor().to_owned(),
        reason: reason.to_owned(),
        kind: ChangeKind::Rollback,
        gate_report_sha256: None,
        at: format_timestamp(app.now()),
    };
    let details = json!({
        "model": name, "line": current.line, "from": current.version,
        "to": previous.version, "reason": reason,
    });
    let audit = cx
        .audit
        .prepare(Action::ModelRolledBack, Outcome::Success, details)
        .await;
    let changed = promotion::promote(app, &previous, &promotion, audit)
        .await
        .map_err(|e| changed_meanwhile(e, "the production pointer"))?;
    let Some((pointer, change)) = changed else {
        return Err(ApiError::Conflict(format!(
            "{} already serves line {}",
            previous.version, current.line
        )));
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"change": change, "production": pointer.lines}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    reason: String,
    #[serde(default)]
    force: bool,
}

/// `POST /models/{name}/versions/{version}/promote {reason, force?}`: the version becomes
/// production on its line if the promotion gate passes it against the line's current
/// production version (on the base test split and the feedback hold-out, by the
/// auto-retrain settings' gate); `force: true` skips the gate and is recorded as forced.
/// A refusal is a 422 `gate_failed` with the rules it failed.
pub async fn promote(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let name = own_model(app, &cx)?.to_owned();
    let version = VersionName::parse(cx.param("version")?).map_err(ApiError::bad_parameter)?;
    let body: PromoteBody = parse_json(&cx.req, 4 * 1024)?;
    promote_version(app, &cx, &name, &version, &body.reason, body.force).await
}

/// The version `version` of `name` and the version serving its line (if any): 404 for
/// an unknown version, 409 when it serves already.
async fn candidate_and_serving(
    app: &App,
    name: &str,
    version: &str,
) -> Result<(ModelVersion, Option<String>), ApiError> {
    let Some(candidate) = app.models.get_version(name, version).await? else {
        return Err(ApiError::NotFound(format!(
            "model {name} has no version {version}"
        )));
    };
    let pointer = app.models.production(name).await?.unwrap_or_default();
    let serving = pointer.version_of(&candidate.line).map(str::to_owned);
    if serving.as_deref() == Some(candidate.version.as_str()) {
        return Err(ApiError::Conflict(format!(
            "{} already serves line {}",
            candidate.version, candidate.line
        )));
    }
    Ok((candidate, serving))
}

/// The gate's report on `candidate` against `serving` (the line's production version).
async fn judged(
    app: &App,
    name: &str,
    candidate: &ModelVersion,
    serving: &str,
) -> Result<(ModelVersion, GateReport), ApiError> {
    let Some(production) = app.models.get_version(name, serving).await? else {
        return Err(ApiError::Internal(format!(
            "the pointer names {serving}, which is not registered"
        )));
    };
    let (settings, _) = app
        .auto_retrain_settings(&app.model_name)
        .await
        .map_err(Stop::into_api)?;
    let report = promotion::judge(app, &production, candidate, &settings.gate)
        .await
        .map_err(Stop::into_api)?;
    Ok((production, report))
}

fn nothing_to_judge_against(candidate: &ModelVersion) -> ApiError {
    ApiError::Conflict(format!(
        "line {} has no production version to judge {} against; force: true promotes it unjudged",
        candidate.line, candidate.version
    ))
}

/// The gate's verdict on `version` against its line's production version, promoting
/// nothing: the candidate, the production version and the report.
pub async fn evaluation(
    app: &App,
    version: &str,
) -> Result<(ModelVersion, ModelVersion, GateReport), ApiError> {
    let (candidate, serving) = candidate_and_serving(app, &app.model_name, version).await?;
    let Some(serving) = serving else {
        return Err(nothing_to_judge_against(&candidate));
    };
    let (production, report) = judged(app, &app.model_name, &candidate, &serving).await?;
    Ok((candidate, production, report))
}

/// Promotes `version` of `name` (the registry's route and the seed's
/// `/drift/promote-model`): judged by the gate unless `force`, audited either way.
pub async fn promote_version(
    app: &App,
    cx: &Ctx<'_, Admin>,
    name: &str,
    version: &VersionName,
    reason: &str,
    force: bool,
) -> HandlerResult {
    let reason = checked_reason(reason)?;
    let (candidate, serving) = candidate_and_serving(app, name, version.as_str()).await?;
    let report = if force {
        None
    } else {
        let Some(serving) = &serving else {
            return Err(nothing_to_judge_against(&candidate));
        };
        Some(judged(app, name, &candidate, serving).await?.1)
    };
    let stored = report.as_ref().map(|r| r.stored());
    if let Some(report) = report.as_ref().filter(|r| !r.passed) {
        let details = json!({
            "model": name, "line": candidate.line, "version": candidate.version,
            "from": serving, "reason": reason, "refused": report.reasons,
            "gate_report_sha256": stored.as_ref().map(|(_, hash)| hash),
        });
        cx.audit
            .record(Action::ModelPromoted, Outcome::Denied, details)
            .await?;
        return Err(ApiError::unprocessable(
            "gate_failed",
            format!(
                "the promotion gate refused {} against {}: {}",
                candidate.version,
                serving.as_deref().unwrap_or("none"),
                report.reasons.join("; ")
            ),
        ));
    }
    let kind = if force {
        ChangeKind::Forced
    } else {
        ChangeKind::Gated
    };
    let promotion = Promotion {
        actor: cx.audit.actor().to_owned(),
        reason: reason.to_owned(),
        kind,
        gate_report_sha256: stored.as_ref().map(|(_, hash)| hash.clone()),
        at: format_timestamp(app.now()),
    };
    let details = json!({
        "model": name, "line": candidate.line, "version": candidate.version,
        "from": serving, "reason": reason, "kind": kind.as_str(),
        "gate_report_sha256": promotion.gate_report_sha256,
    });
    let audit = cx
        .audit
        .prepare(Action::ModelPromoted, Outcome::Success, details)
        .await;
    let changed = promotion::promote(app, &candidate, &promotion, audit)
        .await
        .map_err(|e| changed_meanwhile(e, "the production pointer"))?;
    let Some((pointer, change)) = changed else {
        return Err(ApiError::Conflict(format!(
            "{} already serves line {}",
            candidate.version, candidate.line
        )));
    };
    let gate = stored
        .map(|(json, _)| serde_json::from_str::<serde_json::Value>(&json).unwrap_or_default());
    Ok(json_response(
        StatusCode::OK,
        &json!({"change": change, "production": pointer.lines, "gate": gate}),
    ))
}

/// A change's reason: required, at most 500 characters.
fn checked_reason(raw: &str) -> Result<&str, ApiError> {
    let reason = raw.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::invalid_parameter(
            "reason is required, at most 500 characters",
        ));
    }
    Ok(reason)
}
