//! The seed's evaluate-then-promote routes (seed 004), mapped onto the registry
//! (DESIGN.md §2, §11):
//!
//! - `POST /drift/evaluate-model {model_name, version, force?, test_data?}`: the gate's
//!   verdict on a version against its line's production version, promoting nothing.
//! - `POST /drift/promote-model {model_name, version, force?, test_data?, reason?}`:
//!   `POST /models/{name}/versions/{v}/promote`.
//! - `GET /drift/promotion-history?model_name=&line=`: `GET /models/{name}/history`.
//! - `GET /drift/promotion-criteria`: the gate's rules and numbers (set through
//!   `PUT /auto-retrain/config`).
//!
//! The seed's `test_data` is not taken: every comparison is on the same labelled sets
//! for both models (the base test split and the feedback hold-out), so a posted set
//! would make two verdicts on one version disagree. An empty or absent one is accepted.

use crate::App;
use crate::compare::Stop;
use crate::registry;
use inferloop::ApiError;
use inferloop::audit::Action;
use inferloop::domain::{Line, VersionName};
use inferloop::http::{Admin, Ctx, HandlerResult, json_response, parse_json, query_param};
use lambda_http::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// The reason recorded for a promotion through the seed's route when none is given.
const SEED_PROMOTION_REASON: &str = "promoted through /drift/promote-model";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedPromotionBody {
    model_name: String,
    version: String,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    test_data: Option<Vec<Value>>,
    #[serde(default)]
    reason: Option<String>,
}

/// The body, its model checked against this deployment's and its version parsed.
fn parse_body(
    app: &App,
    cx: &Ctx<'_, Admin>,
) -> Result<(SeedPromotionBody, VersionName), ApiError> {
    let body: SeedPromotionBody = parse_json(&cx.req, 16 * 1024)?;
    if body.model_name != app.model_name {
        return Err(ApiError::NotFound(format!(
            "no model named {}",
            body.model_name
        )));
    }
    if body.test_data.as_ref().is_some_and(|rows| !rows.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "test_data is not taken: both models are judged on the base test split and the \
             feedback hold-out, the same sets every time",
        ));
    }
    let version =
        VersionName::parse_named("version", &body.version).map_err(ApiError::bad_parameter)?;
    Ok((body, version))
}

pub async fn evaluate_model(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (body, version) = parse_body(app, &cx)?;
    let result = registry::evaluation(app, version.as_str()).await;
    let details = json!({"route": "/drift/evaluate-model", "version": version.as_str()});
    let (candidate, production, report) =
        cx.audit.read(Action::ModelsViewed, details, result).await?;
    let recommendation = if report.passed {
        "promote"
    } else {
        "keep_in_staging"
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "model_name": app.model_name,
            "version": candidate.version,
            "line": candidate.line,
            "stage": candidate.stage.as_str(),
            "against": production.version,
            "passed": report.passed,
            "should_promote": report.passed,
            "recommendation": recommendation,
            "reasons": report.reasons,
            "force": body.force,
            "gate": report,
        }),
    ))
}

pub async fn promote_model(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (body, version) = parse_body(app, &cx)?;
    let reason = body
        .reason
        .clone()
        .unwrap_or_else(|| SEED_PROMOTION_REASON.to_owned());
    let name = app.model_name.clone();
    registry::promote_version(app, &cx, &name, &version, &reason, body.force).await
}

pub async fn promotion_history(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    if let Some(name) = query_param(&cx.req, "model_name")
        && name != app.model_name
    {
        return Err(ApiError::NotFound(format!("no model named {name}")));
    }
    let line = query_param(&cx.req, "line")
        .map(|raw| Line::parse_named("line", &raw))
        .transpose()
        .map_err(ApiError::bad_parameter)?;
    let line = line.map(|l| l.as_str());
    let result = app.models.history(&app.model_name, line).await;
    let details = json!({"route": "/drift/promotion-history", "line": line});
    let changes = cx.audit.read(Action::ModelsViewed, details, result).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"model_name": app.model_name, "line": line, "total": changes.len(), "history": changes}),
    ))
}

pub async fn promotion_criteria(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let result = app
        .auto_retrain_settings(&app.model_name)
        .await
        .map_err(Stop::into_api);
    let details = json!({"route": "/drift/promotion-criteria"});
    let (settings, revision) = cx.audit.read(Action::ModelsViewed, details, result).await?;
    let gate = &settings.gate;
    let rules = [
        format!(
            "base_non_inferiority: on the base test split, the one-sided {:.0} % lower bound \
             of (candidate - production) accuracy is above -{} points",
            gate.confidence * 100.0,
            gate.base_margin_points
        ),
        format!(
            "class_recall: no digit's recall on the base test split falls by more than {} points",
            gate.class_recall_drop_points
        ),
        format!(
            "holdout_better: on the feedback hold-out the candidate is right more often than \
             production, and with at least {} samples significantly so (one-sided exact \
             McNemar, p < {}); with no hold-out yet the base split decides",
            gate.holdout_significance_min, gate.holdout_alpha
        ),
    ];
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "model_name": app.model_name,
            "criteria": gate,
            "rules": rules,
            "auto_promote": settings.auto_promote,
            "settings_revision": revision,
            "changed_through": "PUT /auto-retrain/config {\"gate\": {...}}",
        }),
    ))
}
