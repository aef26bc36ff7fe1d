//! One entry point for a function that answers more than HTTP (DESIGN.md §1): the event
//! is told apart by its shape — an API Gateway HTTP API request, SNS notifications, or
//! anything else (a schedule, a queue) — and handed to the function as such.
//!
//! The SNS shape is read here with a few serde lines rather than through
//! aws_lambda_events' `sns` feature, which would add chrono to every function.

use lambda_http::{Body, Context, Request, RequestExt, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a function was invoked with.
// One per invocation, moved once, never stored in bulk: boxing the request would buy
// nothing.
#[allow(clippy::large_enum_variant)]
pub enum Invocation {
    Http(Request),
    Sns(Vec<SnsNotification>),
    /// Any other event, as JSON (an EventBridge schedule, an SQS batch, a direct
    /// invocation).
    Other(serde_json::Value),
}

/// One SNS notification of an SNS event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsNotification {
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: String,
    /// String message attributes (`severity`, `kind`).
    pub attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct SnsEvent {
    #[serde(rename = "Records")]
    records: Vec<SnsRecord>,
}

#[derive(Deserialize)]
struct SnsRecord {
    #[serde(rename = "EventSource")]
    event_source: String,
    #[serde(rename = "Sns")]
    sns: SnsMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage {
    message_id: String,
    #[serde(default)]
    topic_arn: String,
    #[serde(default)]
    subject: Option<String>,
    message: String,
    #[serde(default)]
    message_attributes: BTreeMap<String, SnsAttribute>,
}

#[derive(Deserialize)]
struct SnsAttribute {
    #[serde(rename = "Value", default)]
    value: String,
}

impl Invocation {
    /// Tells the event apart by its shape; `ctx` goes with an HTTP request as
    /// lambda_http would attach it.
    pub fn classify(event: serde_json::Value, ctx: Context) -> Self {
        if event.get("requestContext").is_some() && event.get("routeKey").is_some() {
            match serde_json::from_value::<lambda_http::request::LambdaRequest>(event.clone()) {
                Ok(request) => {
                    return Self::Http(Request::from(request).with_lambda_context(ctx));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "an HTTP-shaped event that does not parse");
                }
            }
        }
        if let Ok(sns) = serde_json::from_value::<SnsEvent>(event.clone())
            && !sns.records.is_empty()
            && sns.records.iter().all(|r| r.event_source == "aws:sns")
        {
            return Self::Sns(
                sns.records
                    .into_iter()
                    .map(|r| SnsNotification {
                        message_id: r.sns.message_id,
                        topic_arn: r.sns.topic_arn,
                        subject: r.sns.subject,
                        message: r.sns.message,
                        attributes: r
                            .sns
                            .message_attributes
                            .into_iter()
                            .map(|(k, v)| (k, v.value))
                            .collect(),
                    })
                    .collect(),
            );
        }
        Self::Other(event)
    }
}

/// An HTTP response as API Gateway's HTTP API (payload 2.0) takes it from a function.
pub fn http_response(response: Response<Body>) -> serde_json::Value {
    use base64::Engine;
    let (parts, body) = response.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_owned(), values.join(", ").into());
    }
    let (body, is_base64) = match body {
        Body::Empty => (String::new(), false),
        Body::Text(text) => (text, false),
        Body::Binary(bytes) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            true,
        ),
        // A body kind this code does not know is sent as no body.
        #[allow(unreachable_patterns)]
        _ => (String::new(), false),
    };
    serde_json::json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
        "isBase64Encoded": is_base64,
        "cookies": [],
    })
}

/// Runs the function: every invocation is classified and handed to `handler`, whose
/// answer (JSON) is the invocation's result; an `Err` fails the invocation, so Lambda
/// retries an asynchronous one.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Invocation) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, lambda_http::Error>>,
{
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        |event: lambda_http::LambdaEvent<serde_json::Value>| {
            handler(Invocation::classify(event.payload, event.context))
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_events_are_told_apart_and_read() {
        let event = serde_json::json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:x",
            "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:topic",
                    "Subject": "s", "Message": "{\"a\":1}", "Timestamp": "2026-12-01T00:00:00.000Z",
                    "MessageAttributes": {"severity": {"Type": "String", "Value": "critical"}}}
        }]});
        let Invocation::Sns(notes) = Invocation::classify(event, Context::default()) else {
            panic!("an SNS event")
        };
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].message, r#"{"a":1}"#);
        assert_eq!(notes[0].attributes["severity"], "critical");
    }

    #[test]
    fn http_events_become_requests_and_the_rest_stays_json() {
        let event: serde_json::Value =
            serde_json::from_str(include_str!("../../events/health.json")).unwrap();
        let Invocation::Http(req) = Invocation::classify(event, Context::default()) else {
            panic!("an HTTP event")
        };
        assert_eq!(req.uri().path(), "/health");
        let schedule =
            serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event"});
        assert!(matches!(
            Invocation::classify(schedule, Context::default()),
            Invocation::Other(_)
        ));
    }

    #[test]
    fn responses_leave_as_api_gateway_takes_them() {
        let mut response = Response::new(Body::Text("{}".into()));
        *response.status_mut() = http::StatusCode::BAD_GATEWAY;
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        let json = http_response(response);
        assert_eq!(json["statusCode"], 502);
        assert_eq!(json["headers"]["content-type"], "application/json");
        assert_eq!(json["body"], "{}");
        assert_eq!(json["isBase64Encoded"], false);
    }
}
