//! The auto-retrain settings' routes (DESIGN.md §11): `GET /auto-retrain/config` (the
//! settings, the defaults until changed, with their revision) and `PUT
//! /auto-retrain/config` (a partial document merged into them, each value ranged; a
//! change made meanwhile is a 409, never overwritten).

use crate::App;
use crate::compare::Stop;
use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::autoretrain::doc_name;
use inferloop::http::{Admin, Ctx, HandlerResult, json_response, parse_json};
use inferloop::store::StoreError;
use inferloop::time::format_timestamp;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

fn shown(app: &App, settings: &impl serde::Serialize, revision: u64) -> Value {
    let mut doc = serde_json::to_value(settings).unwrap_or_default();
    doc["revision"] = json!(revision);
    doc["model_name"] = json!(app.model_name);
    doc
}

pub async fn get_config(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let result = app
        .auto_retrain_settings(&app.model_name)
        .await
        .map_err(Stop::into_api);
    let details = json!({"route": "/auto-retrain/config"});
    let (settings, revision) = cx
        .audit
        .read(Action::RetrainViewed, details, result)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &shown(app, &settings, revision),
    ))
}

pub async fn put_config(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let change: Value = parse_json(&cx.req, 16 * 1024)?;
    let (current, revision) = app
        .auto_retrain_settings(&app.model_name)
        .await
        .map_err(Stop::into_api)?;
    let next = current
        .apply(&change)
        .map_err(|e| ApiError::unprocessable("invalid_setting", e))?;
    let doc = serde_json::to_value(&next).map_err(|e| ApiError::Internal(e.to_string()))?;
    let written = app
        .config
        .put(
            &doc_name(&app.model_name),
            &doc,
            revision,
            &format_timestamp(app.now()),
            cx.audit.actor(),
        )
        .await;
    let revision = match written {
        Ok(revision) => revision,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(
                "the settings changed while this change was made; read them and try again".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    cx.audit
        .record(
            Action::AutoRetrainConfigChanged,
            Outcome::Success,
            json!({"before": current, "after": next, "revision": revision}),
        )
        .await?;
    Ok(json_response(StatusCode::OK, &shown(app, &next, revision)))
}
