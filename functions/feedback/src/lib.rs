//! The feedback function: `POST /feedback` (was a prediction right?) and, for admins,
//! `GET /feedback`. A feedback, its aggregate counters and the label mark on the
//! prediction are one transaction (inferloop::store::feedback), so trends can trust
//! the counters.

use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::auth::Principal;
use inferloop::config;
use inferloop::domain::{PredictionId, Username, VersionName};
use inferloop::http::{
    Admin, Ctx, HandlerResult, PageRequest, Router, json_response, parse_json, query_param,
};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::StoreError;
use inferloop::store::cursor::{fingerprint, page_range};
use inferloop::store::feedback::{
    FeedbackCursor, FeedbackFilter, FeedbackStore, NewFeedback, Submission,
};
use inferloop::store::predictions::PredictionStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;

/// A feedback body is a few short fields and a comment.
const MAX_BODY_BYTES: usize = 16 * 1024;
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Listing window when `from` is not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 86_400);

pub struct App {
    pub common: Common,
    pub predictions: PredictionStore,
    pub feedback: FeedbackStore,
}

impl App {
    /// Settings and clients, once per container; a missing variable stops the cold start.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        ROUTES.check()?;
        let env = config::process_env();
        let predictions_table = env.required("PREDICTIONS_TABLE")?;
        let feedback_table = env.required("FEEDBACK_TABLE")?;
        let aggregates_table = env.required("AGGREGATES_TABLE")?;
        let start = ColdStart::from_env(&env).await?;
        Ok(Self {
            common: start.common,
            predictions: PredictionStore::new(start.dynamodb.clone(), &predictions_table),
            feedback: FeedbackStore::new(
                start.dynamodb,
                feedback_table,
                aggregates_table,
                predictions_table,
            ),
        })
    }
}

impl Service for App {
    fn common(&self) -> &Common {
        &self.common
    }
}

static ROUTES: LazyLock<Router<App>> = LazyLock::new(|| {
    Router::new().user(Method::POST, "/feedback", submit).admin(
        Method::GET,
        "/feedback",
        Action::FeedbackViewed,
        list,
    )
});

/// This function's route table.
pub fn routes() -> &'static Router<App> {
    &ROUTES
}

/// The Lambda entry point: every request gets an answer, errors in the one shape.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(ROUTES.handle(app, req).await)
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

/// A feedback as the body gives it, each field checked.
#[derive(Debug, PartialEq, Eq)]
struct FeedbackBody {
    prediction_id: PredictionId,
    correct: bool,
    true_label: Option<u8>,
    comment: Option<String>,
}

/// The body, checked field by field: 422 naming the field for each wrong value.
fn parse_feedback(req: &Request) -> Result<FeedbackBody, ApiError> {
    let body: FeedbackRequest = parse_json(req, MAX_BODY_BYTES)?;
    let prediction_id = PredictionId::parse(&body.prediction_id)?;
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
    Ok(FeedbackBody {
        prediction_id,
        correct: body.correct,
        true_label,
        comment,
    })
}

async fn submit(app: &App, cx: Ctx<'_, Principal>) -> HandlerResult {
    let body = parse_feedback(&cx.req)?;
    let prediction_id = body.prediction_id.as_str();
    let caller = cx.caller.username.as_str();
    let prediction = app
        .predictions
        .get(prediction_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no prediction {prediction_id}")))?;
    // Ownership is by account id: a name deleted and taken again owns none of the old
    // account's predictions. (Predictions stored before accounts had ids carry none;
    // those are matched by name.)
    let owner = match &prediction.user_id {
        Some(id) => *id == cx.caller.user_id,
        None => prediction.username == caller,
    };
    if !owner && !cx.caller.is_admin() {
        cx.audit
            .record_best_effort(
                Action::Feedback,
                Outcome::Denied,
                json!({"prediction_id": prediction_id, "reason": "not_owner"}),
            )
            .await;
        return Err(ApiError::Forbidden(format!(
            "prediction {prediction_id} is not yours: only its owner or an admin may give feedback on it"
        )));
    }
    if let Some(label) = body.true_label {
        // `correct` and `true_label` must say the same thing about the predicted digit.
        let mismatch = match body.correct {
            true if label != prediction.digit => Some(format!(
                "correct is true, so true_label must be the predicted digit {}",
                prediction.digit
            )),
            false if label == prediction.digit => Some(format!(
                "correct is false, so true_label cannot be the predicted digit {}",
                prediction.digit
            )),
            _ => None,
        };
        if let Some(message) = mismatch {
            return Err(ApiError::unprocessable("label_mismatch", message));
        }
    }
    let feedback = NewFeedback {
        feedback_id: ulid::Ulid::new().to_string(),
        prediction_id: prediction_id.to_owned(),
        submitted_by: caller.to_owned(),
        created_at: inferloop::time::now_rfc3339(),
        correct: body.correct,
        true_label: body.true_label,
        comment: body.comment,
    };
    let details = json!({
        "prediction_id": prediction_id,
        "feedback_id": feedback.feedback_id,
        "correct": feedback.correct,
        "true_label": feedback.true_label,
        "model_version": prediction.model_version,
    });
    let entry = cx
        .audit
        .prepare(Action::Feedback, Outcome::Success, details)
        .await;
    match app.feedback.submit(&feedback, &prediction, entry).await {
        Ok(Submission::Created) => Ok(json_response(
            StatusCode::CREATED,
            &json!({"feedback_id": feedback.feedback_id}),
        )),
        // A retry of the same feedback: the first answer again, nothing counted twice.
        Ok(Submission::Exists(existing)) if feedback.same_content(&existing) => {
            if existing.audit_ref.is_none() {
                // Stored before its entry joined the transaction, and never audited:
                // this retry writes the entry it lacks, once.
                let entry = cx
                    .audit
                    .prepare(
                        Action::Feedback,
                        Outcome::Success,
                        json!({
                            "prediction_id": prediction_id,
                            "feedback_id": existing.feedback_id,
                            "correct": existing.correct,
                            "true_label": existing.true_label,
                            "model_version": existing.model_version,
                            "recorded_on_retry": true,
                        }),
                    )
                    .await;
                let reference = entry.reference();
                app.feedback
                    .mark_audited_with(prediction_id, &reference, entry)
                    .await?;
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"feedback_id": existing.feedback_id}),
            ))
        }
        Ok(Submission::Exists(_)) => Err(ApiError::Conflict(format!(
            "prediction {prediction_id} already has a different feedback"
        ))),
        Err(StoreError::NotFound) => {
            Err(ApiError::NotFound(format!("no prediction {prediction_id}")))
        }
        Err(err) => Err(err.into()),
    }
}

/// The filters of `GET /feedback`, as given (what a cursor is bound to) and as parsed.
struct ListParams {
    username: Option<String>,
    model_version: Option<String>,
    correct: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl ListParams {
    fn from_request(req: &Request) -> Self {
        Self {
            username: query_param(req, "username"),
            model_version: query_param(req, "model_version"),
            correct: query_param(req, "correct"),
            from: query_param(req, "from"),
            to: query_param(req, "to"),
        }
    }

    fn fingerprint(&self) -> String {
        fingerprint(&json!([
            "feedback",
            self.username,
            self.model_version,
            self.correct,
            self.from,
            self.to
        ]))
    }
}

async fn list(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let page = PageRequest::from_request(&cx.req)?;
    let params = ListParams::from_request(&cx.req);
    let username = params.username.as_deref().map(Username::parse);
    let username = username.transpose().map_err(ApiError::bad_parameter)?;
    let model_version = params.model_version.as_deref().map(VersionName::parse);
    let model_version = model_version.transpose().map_err(ApiError::bad_parameter)?;
    let correct = params
        .correct
        .as_deref()
        .map(|raw| match raw {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid_parameter("correct must be true or false")),
        })
        .transpose()?;
    let query = params.fingerprint();
    let (range, start) = page_range(
        page.cursor.as_deref(),
        &query,
        username.is_none(),
        params.from.as_deref(),
        params.to.as_deref(),
        DEFAULT_WINDOW,
    )?;
    let filter = FeedbackFilter {
        username,
        from: range.from_key(),
        to: range.to_key(),
        model_version,
        correct,
    };
    let found = app.feedback.list(&filter, page.limit, start).await;
    let details = json!({
        "username": filter.username,
        "model_version": filter.model_version,
        "correct": filter.correct,
        "from": filter.from,
        "to": filter.to,
        "page": page.cursor.is_some(),
        "returned": found.as_ref().map_or(0, |f| f.items.len()),
    });
    let found = cx
        .audit
        .read(Action::FeedbackViewed, details, found)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "feedback": found.items,
            "next_cursor": found
                .next
                .map(|position| FeedbackCursor::new(&query, &range, position).encode()),
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
        assert_eq!(
            ok,
            FeedbackBody {
                prediction_id: PredictionId::parse(ID).unwrap(),
                correct: false,
                true_label: Some(3),
                comment: Some("a 3".to_owned()),
            }
        );
        let blank = parse_feedback(&post(&format!(
            r#"{{"prediction_id":"{ID}","correct":true,"comment":"  "}}"#
        )))
        .unwrap();
        assert_eq!(blank.comment, None);
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
