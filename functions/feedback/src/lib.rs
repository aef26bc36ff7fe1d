//! The feedback function: `POST /feedback` (was a prediction right?) and, for admins,
//! `GET /feedback`. A feedback, its aggregate counters and the label mark on the
//! prediction are one transaction (inferloop::store::feedback), so trends can trust
//! the counters.

use inferloop::ApiError;
use inferloop::audit::{Action, AuditTrail, Outcome};
use inferloop::auth::{TokenKeys, authenticate};
use inferloop::config::{self, AuditSettings, AuthSettings};
use inferloop::domain::Username;
use inferloop::http::{
    PageRequest, RequestMeta, encode_cursor, json_response, parse_json, path_segments, query_param,
    serve,
};
use inferloop::store::StoreError;
use inferloop::store::feedback::{FeedbackFilter, FeedbackStore, NewFeedback, Submission};
use inferloop::store::models::valid_version;
use inferloop::store::predictions::PredictionStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use time::OffsetDateTime;

/// A feedback body is a few short fields and a comment.
const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Listing window when `from` is not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 86_400);

pub struct App {
    pub tokens: TokenKeys,
    pub audit: AuditTrail,
    pub predictions: PredictionStore,
    pub feedback: FeedbackStore,
}

impl App {
    /// Settings and clients, once per container; a missing variable stops the cold start.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let env = config::process_env();
        let auth = AuthSettings::from_env(&env)?;
        let audit = AuditSettings::from_env(&env)?;
        let predictions_table = env.required("PREDICTIONS_TABLE")?;
        let feedback_table = env.required("FEEDBACK_TABLE")?;
        let aggregates_table = env.required("AGGREGATES_TABLE")?;
        let sdk = inferloop::aws::sdk_config().await;
        let dynamodb = inferloop::aws::dynamodb(&sdk);
        Ok(Self {
            tokens: TokenKeys::new(auth),
            audit: AuditTrail::new(dynamodb.clone(), audit),
            predictions: PredictionStore::new(dynamodb.clone(), &predictions_table),
            feedback: FeedbackStore::new(
                dynamodb,
                feedback_table,
                aggregates_table,
                predictions_table,
            ),
        })
    }
}

/// The Lambda entry point: every request gets an answer, errors in the one shape.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(serve(req, |meta, req| route(app, meta, req)).await)
}

async fn route(app: &App, meta: RequestMeta, req: Request) -> Result<Response<Body>, ApiError> {
    let segments = path_segments(&req);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (segments.as_slice(), &method) {
        (["feedback"], &Method::POST) => submit(app, &meta, &req).await,
        (["feedback"], &Method::GET) => list(app, &meta, &req).await,
        (["feedback"], _) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: req.uri().path().to_owned(),
        }),
        _ => Err(ApiError::NotFound(format!(
            "no route for {}",
            req.uri().path()
        ))),
    }
}

#[derive(Deserialize)]
struct FeedbackRequest {
    prediction_id: String,
    correct: bool,
    #[serde(default)]
    true_label: Option<i64>,
    #[serde(default)]
    comment: Option<String>,
}

fn invalid_field(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_field", message)
}

/// A prediction id as predict issues them: a ULID (26 characters of Crockford base32).
fn valid_prediction_id(id: &str) -> bool {
    id.len() == 26 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The body, checked field by field: 422 naming the field for each wrong value.
fn parse_feedback(req: &Request) -> Result<(String, bool, Option<u8>, Option<String>), ApiError> {
    let body: FeedbackRequest = parse_json(req, MAX_BODY_BYTES)?;
    if !valid_prediction_id(&body.prediction_id) {
        return Err(invalid_field(
            "prediction_id must be the 26-character id a prediction returned",
        ));
    }
    let true_label = match body.true_label {
        None => None,
        Some(label @ 0..=9) => Some(label as u8),
        Some(other) => {
            return Err(invalid_field(format!(
                "true_label must be a digit from 0 to 9, got {other}"
            )));
        }
    };
    let comment = match body.comment {
        Some(text) if text.chars().count() > MAX_COMMENT_CHARS => {
            return Err(invalid_field(format!(
                "comment is at most {MAX_COMMENT_CHARS} characters"
            )));
        }
        Some(text) if text.trim().is_empty() => None,
        other => other,
    };
    Ok((body.prediction_id, body.correct, true_label, comment))
}

async fn submit(app: &App, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = authenticate(req, &app.tokens)?;
    let (prediction_id, correct, true_label, comment) = parse_feedback(req)?;
    let caller = principal.username.as_str();
    let prediction = app
        .predictions
        .get(&prediction_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no prediction {prediction_id}")))?;
    if prediction.username != caller && !principal.is_admin() {
        app.audit
            .record_best_effort(
                meta,
                caller,
                Action::Feedback,
                Outcome::Denied,
                json!({"prediction_id": prediction_id, "reason": "not_owner"}),
            )
            .await;
        return Err(ApiError::Forbidden);
    }
    if correct && true_label.is_some_and(|label| label != prediction.digit) {
        return Err(ApiError::unprocessable(
            "label_mismatch",
            format!(
                "correct is true, so true_label must be the predicted digit {}",
                prediction.digit
            ),
        ));
    }
    let feedback = NewFeedback {
        feedback_id: ulid::Ulid::new().to_string(),
        prediction_id: prediction_id.clone(),
        submitted_by: caller.to_owned(),
        created_at: inferloop::audit::now_rfc3339(),
        correct,
        true_label,
        comment,
    };
    match app.feedback.submit(&feedback, &prediction).await {
        Ok(Submission::Created) => {
            app.audit
                .record(
                    meta,
                    caller,
                    Action::Feedback,
                    Outcome::Success,
                    json!({
                        "prediction_id": prediction_id,
                        "feedback_id": feedback.feedback_id,
                        "correct": correct,
                        "true_label": true_label,
                        "model_version": prediction.model_version,
                    }),
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"feedback_id": feedback.feedback_id}),
            ))
        }
        // A retry of the same feedback: the first answer again, nothing counted twice.
        Ok(Submission::Exists(existing)) if feedback.same_content(&existing) => Ok(json_response(
            StatusCode::OK,
            &json!({"feedback_id": existing.feedback_id}),
        )),
        Ok(Submission::Exists(_)) => Err(ApiError::Conflict(format!(
            "prediction {prediction_id} already has a different feedback"
        ))),
        Err(StoreError::NotFound) => {
            Err(ApiError::NotFound(format!("no prediction {prediction_id}")))
        }
        Err(err) => Err(err.into()),
    }
}

fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_parameter", message)
}

async fn list(app: &App, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, ApiError> {
    let admin = app
        .audit
        .authorize_admin(meta, req, &app.tokens, Action::FeedbackViewed)
        .await?;
    let page = PageRequest::from_request(req)?;
    if let Some(cursor) = &page.cursor
        && cursor.matches('|').count() != 2
    {
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "the cursor is not one this API issued",
        ));
    }
    let username = query_param(req, "username")
        .map(|raw| {
            Username::parse(&raw)
                .map(|u| u.as_str().to_owned())
                .map_err(|e| invalid_parameter(format!("username: {e}")))
        })
        .transpose()?;
    let model_version = query_param(req, "model_version")
        .map(|raw| {
            if valid_version(&raw) {
                Ok(raw)
            } else {
                Err(invalid_parameter(format!(
                    "model_version {raw:?} is not a version name (e.g. v2.0)"
                )))
            }
        })
        .transpose()?;
    let correct = query_param(req, "correct")
        .map(|raw| match raw.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid_parameter("correct must be true or false")),
        })
        .transpose()?;
    let range = inferloop::audit::query::resolve_range(
        query_param(req, "from").as_deref(),
        query_param(req, "to").as_deref(),
        OffsetDateTime::now_utc(),
        DEFAULT_WINDOW,
    )?;
    let filter = FeedbackFilter {
        username,
        from: range.from_key(),
        to: range.to_key(),
        model_version,
        correct,
    };
    let found = app
        .feedback
        .list(&filter, page.limit, page.cursor.as_deref())
        .await?;
    app.audit
        .record_best_effort(
            meta,
            admin.username.as_str(),
            Action::FeedbackViewed,
            Outcome::Success,
            json!({
                "username": filter.username,
                "model_version": filter.model_version,
                "correct": filter.correct,
                "from": filter.from,
                "to": filter.to,
                "returned": found.items.len(),
            }),
        )
        .await;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "feedback": found.items,
            "next_cursor": found.next.map(|p| encode_cursor(&p)),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("/feedback")
            .header("content-type", "application/json")
            .body(Body::Text(body.to_owned()))
            .unwrap()
    }

    const ID: &str = "01KAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse_feedback(&post(&format!(
            r#"{{"prediction_id":"{ID}","correct":false,"true_label":3,"comment":"a 3"}}"#
        )))
        .unwrap();
        assert_eq!(ok, (ID.to_owned(), false, Some(3), Some("a 3".to_owned())));
        let blank = parse_feedback(&post(&format!(
            r#"{{"prediction_id":"{ID}","correct":true,"comment":"  "}}"#
        )))
        .unwrap();
        assert_eq!(blank.3, None);
        let long = "x".repeat(MAX_COMMENT_CHARS + 1);
        for (body, status) in [
            (
                format!(r#"{{"prediction_id":"{ID}","correct":false,"true_label":10}}"#),
                422,
            ),
            (
                format!(r#"{{"prediction_id":"{ID}","correct":false,"true_label":-1}}"#),
                422,
            ),
            (
                format!(r#"{{"prediction_id":"{ID}","correct":"yes"}}"#),
                422,
            ),
            (format!(r#"{{"prediction_id":"{ID}"}}"#), 422),
            (
                r#"{"prediction_id":"short","correct":true}"#.to_owned(),
                422,
            ),
            (
                format!(r#"{{"prediction_id":"{ID}","correct":true,"comment":"{long}"}}"#),
                422,
            ),
            ("{".to_owned(), 400),
        ] {
            let err = parse_feedback(&post(&body)).unwrap_err();
            assert_eq!(err.status_code().as_u16(), status, "{body}");
        }
        // 1000 characters, multi-byte, is within the limit.
        let exact = "é".repeat(MAX_COMMENT_CHARS);
        assert!(
            parse_feedback(&post(&format!(
                r#"{{"prediction_id":"{ID}","correct":true,"comment":"{exact}"}}"#
            )))
            .is_ok()
        );
    }
}
