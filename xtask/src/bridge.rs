//! What stands locally between a topic and its subscribed functions, and for Slack, so
//! an alert takes the same path here as in AWS (DESIGN.md §10): a function publishes on
//! the alerts topic, SNS hands the notification to slack-alert as an SNS event, and
//! slack-alert posts to a webhook.
//!
//! - **SNS → Lambda.** moto delivers a topic's notifications to HTTP subscribers only
//!   (it runs no functions of ours), so each function with an SNS event in
//!   template.yaml is subscribed, with its filter policy, at `/sns/<function>` here.
//!   A notification is answered at once (moto posts while it answers the publisher, one
//!   request at a time) and then invoked as Lambda's asynchronous invocation does it:
//!   the SNS event shape, two retries after a failed invocation (after 1 s and 2 s here,
//!   about 1 and 2 minutes in AWS), then the event with its error to the function's
//!   on-failure destination (the SQS queue its `EventInvokeConfig` names).
//!   moto's HTTP deliveries carry no message attributes, so neither do these events;
//!   moto has already applied the filter policy, which is what the attributes are for.
//! - **SQS → Lambda.** Each function with an SQS event is fed from its queue by
//!   [`crate::queues`], as Lambda's event source mapping does.
//! - **Slack.** When no webhook of one's own is configured (`INFERLOOP_SLACK_WEBHOOK_URL`),
//!   `/slack` stands in for one: it takes what Slack takes (the payload limits of
//!   `inferloop::notify::slack::check_limits`, answering 400 `invalid_blocks` as Slack
//!   does), prints a line per message, appends each to `.inferloop/slack-standin.jsonl`,
//!   and lists what it got at `GET /slack` as `{received_at_ms, message}` (what the
//!   end-to-end tests and the alerts bench read; the time is the Unix epoch in ms).
//!
//! A few routes over hyper's server, written here: nothing on crates.io stands in for
//! SNS's HTTP delivery or for Slack's webhook.

use crate::function_env::{Env, local_resolver};
use crate::intrinsics::Resolver;
use crate::template::{QUEUE, Template};
use crate::{local_aws, paths};
use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const DEV_PORT: u16 = 9010;
pub const TEST_PORT: u16 = 9011;

/// A developer's own webhook, used instead of the stand-in.
pub const WEBHOOK_URL_VARIABLE: &str = "INFERLOOP_SLACK_WEBHOOK_URL";

/// Lambda's asynchronous retries after a failed invocation (shortened: AWS waits about
/// one and then two minutes).
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// The first invocation may make watch build the function.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(300);

/// The stand-in webhook's URL on `port`.
pub fn standin_webhook_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/slack")
}

/// The webhook slack-alert posts to locally: the developer's own, or the stand-in.
pub fn webhook_url(port: u16) -> String {
    std::env::var(WEBHOOK_URL_VARIABLE)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| standin_webhook_url(port))
}

/// A function subscribed to a topic: an SNS event of a function in template.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    /// The function's binary, as watch knows it.
    pub function: String,
    pub topic_arn: String,
    pub filter_policy: Option<String>,
    /// The on-failure destination's queue name, if it has one.
    pub dead_letter_queue: Option<String>,
}

/// Every function's SNS events in the template.
pub fn subscribers(template: &Template, resolver: &Resolver) -> Result<Vec<Subscriber>> {
    let mut out = Vec::new();
    for (function, binary, properties) in template.function_events("SNS")? {
        let dead_letter_queue = match function
            .property("EventInvokeConfig")
            .and_then(|c| c.get("DestinationConfig"))
            .and_then(|c| c.get("OnFailure"))
            .and_then(|c| c.get("Destination"))
        {
            Some(destination) => Some(queue_name(
                template,
                resolver,
                &resolver.string(destination)?,
            )?),
            None => None,
        };
        let topic = properties
            .and_then(|p| p.get("Topic"))
            .with_context(|| format!("{}: an SNS event without a Topic", function.logical_id))?;
        let filter_policy = properties
            .and_then(|p| p.get("FilterPolicy"))
            .map(|policy| serde_json::to_string(&serde_json::to_value(policy)?))
            .transpose()
            .context("FilterPolicy")?;
        out.push(Subscriber {
            function: binary.to_owned(),
            topic_arn: resolver.string(topic)?,
            filter_policy,
            dead_letter_queue,
        });
    }
    Ok(out)
}

/// The queue an on-failure destination's ARN names.
fn queue_name(template: &Template, resolver: &Resolver, arn: &str) -> Result<String> {
    for queue in template.resources().filter(|r| r.kind == QUEUE) {
        let name = resolver.physical_name(&queue)?;
        if arn.rsplit(':').next() == Some(name.as_str()) {
            return Ok(name);
        }
    }
    anyhow::bail!("the on-failure destination {arn} is no queue of the template")
}

/// Subscribes each subscriber's endpoint here (`port`) to its topic in the emulator.
/// SNS answers an existing subscription with the same one, so this can run every start.
pub async fn subscribe(
    sns: &aws_sdk_sns::Client,
    subscribers: &[Subscriber],
    port: u16,
) -> Result<()> {
    for subscriber in subscribers {
        let endpoint = format!("http://127.0.0.1:{port}/sns/{}", subscriber.function);
        let mut request = sns
            .subscribe()
            .topic_arn(&subscriber.topic_arn)
            .protocol("http")
            .endpoint(&endpoint)
            .return_subscription_arn(true);
        if let Some(policy) = &subscriber.filter_policy {
            request = request.attributes("FilterPolicy", policy);
        }
        request
            .send()
            .await
            .with_context(|| format!("subscribing {endpoint} to {}", subscriber.topic_arn))?;
        println!(
            "  {:<28} SNS → {}",
            subscriber.function, subscriber.topic_arn
        );
    }
    Ok(())
}

/// What `dev` and `test` run beside watch: the template's SNS subscribers subscribed
/// here, and served, with the Slack stand-in.
pub async fn wire(
    root: &Path,
    endpoint: &str,
    region: &str,
    port: u16,
    invoke_api: String,
    echo: bool,
) -> Result<Bridge> {
    let template = Template::load(&paths::template(root))?;
    let resolver = local_resolver(root, &template, region)?;
    let subscribers = subscribers(&template, &resolver)?;
    let config = local_aws::sdk_config(endpoint, region).await;
    let slack_log = paths::ensure_state_dir(root)?.join("slack-standin.jsonl");
    if !echo {
        // A test run's record starts empty; dev's keeps what earlier sessions got.
        let _ = std::fs::remove_file(&slack_log);
    }
    let mappings = crate::queues::mappings(&template, &resolver)?;
    let bridge = start(
        port,
        invoke_api.clone(),
        aws_sdk_sqs::Client::new(&config),
        subscribers.clone(),
        slack_log,
        echo,
    )
    .await?;
    println!(
        "bridge: SNS → functions and the Slack stand-in on http://{}",
        bridge.address
    );
    subscribe(&aws_sdk_sns::Client::new(&config), &subscribers, port).await?;
    crate::queues::spawn(aws_sdk_sqs::Client::new(&config), mappings, invoke_api).await?;
    Ok(bridge)
}

struct State {
    /// Where watch answers the Lambda invoke API.
    invoke_api: String,
    http: reqwest::Client,
    sqs: aws_sdk_sqs::Client,
    subscribers: Vec<Subscriber>,
    slack_log: PathBuf,
    received: Mutex<Vec<Value>>,
    /// Print a line per message (dev), or only keep them (test).
    echo: bool,
}

/// The running bridge; it stops with the runtime that serves it.
pub struct Bridge {
    pub address: SocketAddr,
}

/// Serves the bridge on 127.0.0.1:`port`, invoking functions through `invoke_api`.
pub async fn start(
    port: u16,
    invoke_api: String,
    sqs: aws_sdk_sqs::Client,
    subscribers: Vec<Subscriber>,
    slack_log: PathBuf,
    echo: bool,
) -> Result<Bridge> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("127.0.0.1:{port} (the SNS bridge and Slack stand-in)"))?;
    let address = listener.local_addr()?;
    let state = Arc::new(State {
        invoke_api,
        http: reqwest::Client::new(),
        sqs,
        subscribers,
        slack_log,
        received: Mutex::new(Vec::new()),
        echo,
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(state.clone(), req));
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(Bridge { address })
}

type Answer = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Answer, std::convert::Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    Ok(match (method, path.as_str()) {
        (Method::POST, "/slack") => slack(&state, &body),
        (Method::GET, "/slack") => {
            let received = state
                .received
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut response = reply(StatusCode::OK, Value::Array(received).to_string());
            response.headers_mut().insert(
                "content-type",
                "application/json".parse().expect("a header value"),
            );
            response
        }
        (Method::POST, path) if path.starts_with("/sns/") => {
            let function = path.trim_start_matches("/sns/").to_owned();
            notification(state, function, &body)
        }
        _ => reply(StatusCode::NOT_FOUND, "not here"),
    })
}

/// What Slack's webhook does with a message: takes it if it fits, says `ok`.
fn slack(state: &State, body: &[u8]) -> Answer {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return reply(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if let Err(why) = inferloop::notify::slack::check_limits(&message) {
        eprintln!("slack stand-in: refused a message: {why}");
        return reply(StatusCode::BAD_REQUEST, "invalid_blocks");
    }
    if state.echo {
        let text = message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("(no text)");
        println!("slack ← {}", text.lines().next().unwrap_or_default());
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&state.slack_log)
    {
        let _ = writeln!(file, "{message}");
    }
    let received_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    state
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(json!({"received_at_ms": received_at_ms, "message": message}));
    reply(StatusCode::OK, "ok")
}

/// One SNS notification for `function`: answered now, invoked after.
fn notification(state: Arc<State>, function: String, body: &[u8]) -> Answer {
    let Ok(notification) = serde_json::from_slice::<Value>(body) else {
        return reply(StatusCode::BAD_REQUEST, "not an SNS notification");
    };
    let Some(subscriber) = state
        .subscribers
        .iter()
        .find(|s| s.function == function)
        .cloned()
    else {
        return reply(StatusCode::NOT_FOUND, "no such subscriber");
    };
    if notification.get("Type").and_then(Value::as_str) != Some("Notification") {
        // moto confirms HTTP subscriptions itself; anything else has nothing to deliver.
        return reply(StatusCode::OK, "");
    }
    tokio::spawn(async move {
        invoke_async(&state, &subscriber, sns_event(&notification, &subscriber)).await;
    });
    reply(StatusCode::OK, "")
}

/// The event Lambda gets from an SNS subscription, made from what SNS posts over HTTP.
pub fn sns_event(notification: &Value, subscriber: &Subscriber) -> Value {
    let field = |name: &str| notification.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{}:{}", subscriber.topic_arn, subscriber.function),
            "Sns": {
                "Type": "Notification",
                "MessageId": field("MessageId"),
                "TopicArn": field("TopicArn"),
                "Subject": field("Subject"),
                "Message": field("Message"),
                "Timestamp": field("Timestamp"),
                "SignatureVersion": field("SignatureVersion"),
                "Signature": field("Signature"),
                "SigningCertUrl": field("SigningCertURL"),
                "UnsubscribeUrl": field("UnsubscribeURL"),
                "MessageAttributes": {},
            }
        }]
    })
}

/// Invokes as Lambda's asynchronous invocation does: retried twice, then to the
/// on-failure destination with the reason.
async fn invoke_async(state: &State, subscriber: &Subscriber, event: Value) {
    let mut attempts = 0;
    let error = loop {
        attempts += 1;
        match invoke(state, &subscriber.function, &event).await {
            Ok(()) => return,
            Err(why) if attempts <= RETRY_DELAYS.len() => {
                eprintln!(
                    "sns bridge: {} failed (attempt {attempts}): {why}; retrying",
                    subscriber.function
                );
                tokio::time::sleep(RETRY_DELAYS[attempts - 1]).await;
            }
            Err(why) => break why,
        }
    };
    eprintln!(
        "sns bridge: {} failed {attempts} times: {error}",
        subscriber.function
    );
    let Some(queue) = &subscriber.dead_letter_queue else {
        return;
    };
    if let Err(why) =
        dead_letter(state, queue, &subscriber.function, attempts, &event, &error).await
    {
        eprintln!("sns bridge: the event was not put on {queue} either: {why:#}");
    }
}

async fn invoke(state: &State, function: &str, event: &Value) -> Result<(), String> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        state.invoke_api
    );
    let response = state
        .http
        .post(&url)
        .header("X-Amz-Invocation-Type", "Event")
        .json(event)
        .timeout(INVOKE_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("no answer from watch: {e}"))?;
    let status = response.status();
    let function_error = response.headers().contains_key("x-amz-function-error");
    let body = response.text().await.unwrap_or_default();
    let reported = serde_json::from_str::<Value>(&body)
        .ok()
        .is_some_and(|v| v.get("errorType").is_some() || v.get("errorMessage").is_some());
    if status.is_success() && !function_error && !reported {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}",
            body.chars().take(500).collect::<String>()
        ))
    }
}

/// What an on-failure destination receives: the event, and why it failed.
async fn dead_letter(
    state: &State,
    queue: &str,
    function: &str,
    attempts: usize,
    event: &Value,
    error: &str,
) -> Result<()> {
    let url = state
        .sqs
        .get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .context("GetQueueUrl")?
        .queue_url
        .context("no queue URL")?;
    let record = json!({
        "version": "1.0",
        "timestamp": inferloop::time::now_rfc3339(),
        "requestContext": {
            "functionArn": function,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error},
    });
    state
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(record.to_string())
        .send()
        .await
        .context("SendMessage")?;
    Ok(())
}

/// The local environment slack-alert's tests and tools need to find the stand-in.
pub fn env(port: u16) -> Env {
    Env::from([(
        "INFERLOOP_SLACK_STANDIN_URL".to_owned(),
        standin_webhook_url(port),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_alert_subscribes_to_the_alerts_topic_with_its_filter_and_queue() {
        let root = crate::paths::root();
        let template = Template::load(&root.join("template.yaml")).unwrap();
        let resolver = Resolver::new(&template, Default::default(), "us-east-1");
        let all = subscribers(&template, &resolver).unwrap();
        let slack = all.iter().find(|s| s.function == "slack-alert").unwrap();
        assert!(
            slack.topic_arn.ends_with(":AlertsTopic"),
            "{}",
            slack.topic_arn
        );
        assert_eq!(
            slack.dead_letter_queue.as_deref(),
            Some("AlertsDeadLetterQueue")
        );
        let policy: Value = serde_json::from_str(slack.filter_policy.as_deref().unwrap()).unwrap();
        assert!(policy["$or"].is_array(), "{policy}");
    }

    #[test]
    fn an_http_notification_becomes_the_event_lambda_gets() {
        let subscriber = Subscriber {
            function: "slack-alert".into(),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:AlertsTopic".into(),
            filter_policy: None,
            dead_letter_queue: None,
        };
        let posted = json!({
            "Type": "Notification", "MessageId": "m-1", "TopicArn": subscriber.topic_arn,
            "Subject": "[critical] …", "Message": "{\"alert_id\":\"a\"}",
            "Timestamp": "2026-12-01T00:00:00.000Z", "SigningCertURL": "https://x",
        });
        let event = sns_event(&posted, &subscriber);
        let record = &event["Records"][0];
        assert_eq!(record["EventSource"], "aws:sns");
        assert_eq!(record["Sns"]["MessageId"], "m-1");
        assert_eq!(record["Sns"]["Message"], "{\"alert_id\":\"a\"}");
        assert_eq!(record["Sns"]["SigningCertUrl"], "https://x");
    }
}
