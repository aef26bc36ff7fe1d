//! Alerts reaching people (DESIGN.md §10), against the local stack: slack-alert's
//! deliveries to a stand-in Slack webhook (retries, Retry-After, refusals, a webhook that
//! never answers), what Slack and SES receive, exactly one message per (alert, state,
//! channel) under duplicates and crashes, the critical-error storm folded into one
//! alert, and every input of the admin routes.
//!
//! Each test has a stand-in webhook of its own and e-mails to an address of its own, so
//! tests running at the same time do not see each other's messages.

use aws_sdk_dynamodb::types::AttributeValue;
use inferloop::domain::Role;
use inferloop::notify::deliveries::{self, Channel, LEASE_SECS};
use inferloop::notify::store::{AlertStore, BY_FINGERPRINT_INDEX};
use inferloop::notify::{Alert, Kind, Notifier, Severity, State, email, slack, subject_line};
use inferloop::time::now_secs;
use integration_tests::standin::{Reply, Standin};
use integration_tests::*;
use lambda_http::Body;
use serde_json::{Value, json};
use slack_alert::webhook::{self, Webhook};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// slack-alert as its cold start builds it, posting to `hook`, with no e-mail.
async fn app_posting_to(hook: &Standin) -> slack_alert::App {
    stack_var("DELIVERIES_TABLE");
    let mut app = slack_alert::App::from_env()
        .await
        .expect("slack-alert starts with the stack's environment");
    app.slack = Some(Webhook::new(hook.url(), webhook::RETRIES));
    app.email.recipients = Vec::new();
    app
}

/// An address no other test sends to.
fn unique_recipient() -> String {
    format!(
        "ops-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// A firing alert no other test has.
fn alert(severity: Severity, title: &str) -> Alert {
    let id = ulid::Ulid::new().to_string();
    Alert::firing(
        Kind::Manual,
        severity,
        title,
        "integration-tests",
        format!("test:{id}"),
    )
    .detail("line", "v2")
    .detail("version", "v2.0")
}

fn slack_key(alert: &Alert) -> String {
    deliveries::key(&alert.alert_id, alert.state.as_str(), Channel::Slack)
}

fn email_key(alert: &Alert) -> String {
    deliveries::key(&alert.alert_id, alert.state.as_str(), Channel::Email)
}

/// The messages moto's SES accepted for `recipient` (`{id, source, subject, body,
/// destinations}`): moto lists every message it was sent in its model dump.
async fn emails_to(recipient: &str) -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", stack_var("AWS_ENDPOINT_URL"));
    let data: Value = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("moto's model dump")
        .json()
        .await
        .expect("moto's model dump is JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|message| {
            message["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|to| to.iter().any(|a| a == recipient))
        })
        .collect()
}

/// Every block of a webhook payload, top level and in attachments.
fn blocks_of(message: &Value) -> Vec<Value> {
    let mut blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    for attachment in message["attachments"].as_array().into_iter().flatten() {
        blocks.extend(attachment["blocks"].as_array().cloned().unwrap_or_default());
    }
    blocks
}

/// Every text of a payload, joined.
fn all_text(value: &Value) -> String {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("text", Value::String(text)) => out.push(text.clone()),
                        _ => walk(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut out);
    out.join("\n")
}

/// What a webhook payload must be for Slack to take it: Block Kit within its limits.
fn assert_block_kit(message: &Value) {
    let blocks = blocks_of(message);
    assert!(!blocks.is_empty(), "no blocks: {message}");
    assert!(blocks.len() <= slack::MAX_BLOCKS, "{} blocks", blocks.len());
    assert!(
        blocks.iter().all(|b| b["type"].is_string()),
        "a block without a type: {message}"
    );
    assert!(
        message["text"]
            .as_str()
            .is_some_and(|t| !t.trim().is_empty()),
        "no fallback text: {message}"
    );
    assert_eq!(slack::check_limits(message), Ok(()));
}

// 1. Retries.

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after_then_recorded_delivered() {
    let hook = Standin::start(vec![
        Reply::TooMany {
            retry_after_secs: 2,
        },
        Reply::Ok,
    ])
    .await;
    let app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "retry after a 429");

    slack_alert::deliver(&app, &alert).await.expect("delivered");

    let posts = hook.received();
    assert_eq!(posts.len(), 2, "the 429 and the retry");
    let waited = posts[1].0.duration_since(posts[0].0);
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, before Retry-After: 2"
    );
    assert_eq!(posts[0].1, posts[1].1, "the retry posts the same message");
    assert_eq!(
        app.deliveries
            .status(&slack_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_slack_takes_the_message() {
    let hook = Standin::start(vec![Reply::ServerError, Reply::ServerError, Reply::Ok]).await;
    let app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "retry after two 500s");

    slack_alert::deliver(&app, &alert).await.expect("delivered");

    assert_eq!(hook.received().len(), 3);
    assert_eq!(
        app.deliveries
            .status(&slack_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[tokio::test]
async fn three_server_errors_fail_the_delivery_and_give_the_claim_back() {
    let hook = Standin::start(vec![Reply::ServerError; 3]).await;
    let mut app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "three 500s");

    let err = slack_alert::deliver(&app, &alert).await.unwrap_err();
    assert!(err.contains("slack"), "{err}");
    assert_eq!(
        hook.received().len(),
        webhook::RETRIES.max_attempts as usize,
        "every attempt, no more"
    );
    assert_eq!(
        app.deliveries.status(&slack_key(&alert)).await.unwrap(),
        None,
        "the claim is released, not left to expire"
    );

    // Lambda's retry of the invocation sends it at once.
    let healthy = Standin::start(vec![]).await;
    app.slack = Some(Webhook::new(healthy.url(), webhook::RETRIES));
    slack_alert::deliver(&app, &alert).await.expect("delivered");
    assert_eq!(healthy.received().len(), 1);
    assert_eq!(hook.received().len(), 3, "nothing more to the old webhook");
    assert_eq!(
        app.deliveries
            .status(&slack_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[tokio::test]
async fn a_refused_payload_is_not_posted_again() {
    let hook = Standin::start(vec![Reply::BadRequest("invalid_blocks")]).await;
    let app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "refused by Slack");

    let err = slack_alert::deliver(&app, &alert).await.unwrap_err();
    assert!(
        err.contains("400") && err.contains("invalid_blocks"),
        "{err}"
    );
    assert_eq!(hook.received().len(), 1, "a 400 is not retried");
    assert_ne!(
        app.deliveries
            .status(&slack_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_gives_up_at_once() {
    let hook = Standin::start(vec![Reply::TooMany {
        retry_after_secs: 60,
    }])
    .await;
    let app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "Retry-After: 60");
    assert!(webhook::RETRIES.budget < Duration::from_secs(60));

    let started = Instant::now();
    let err = slack_alert::deliver(&app, &alert).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.contains("429"), "{err}");
    assert_eq!(hook.received().len(), 1);
    assert!(
        took < Duration::from_secs(30),
        "waited {took:?} for a Retry-After it could not honour"
    );
}

#[tokio::test]
async fn a_webhook_that_never_answers_times_out_each_attempt() {
    let hook = Standin::start(vec![Reply::Hang; 10]).await;
    let mut app = app_posting_to(&hook).await;
    app.slack = Some(
        Webhook::new(hook.url(), webhook::RETRIES).with_attempt_timeout(Duration::from_secs(1)),
    );
    let alert = alert(Severity::Warning, "Slack hangs");

    let err = slack_alert::deliver(&app, &alert).await.unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    let posts = hook.received().len();
    assert!(
        (1..=webhook::RETRIES.max_attempts as usize).contains(&posts),
        "{posts} posts"
    );
    assert_eq!(
        app.deliveries.status(&slack_key(&alert)).await.unwrap(),
        None
    );
}

// 2. What Slack receives.

#[tokio::test]
async fn slack_gets_block_kit_with_the_title_and_id_and_one_message_per_state() {
    let hook = Standin::start(vec![]).await;
    let app = app_posting_to(&hook).await;
    let firing = alert(Severity::Warning, "drift on v2: mean_brightness");

    slack_alert::deliver(&app, &firing).await.unwrap();
    slack_alert::deliver(&app, &firing).await.unwrap();
    let mut resolved = firing.clone();
    resolved.state = State::Resolved;
    slack_alert::deliver(&app, &resolved).await.unwrap();
    slack_alert::deliver(&app, &resolved).await.unwrap();

    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "one message per state change");
    for body in &bodies {
        assert_block_kit(body);
        let text = all_text(body);
        assert!(text.contains("drift on v2: mean_brightness"), "{text}");
        assert!(text.contains(&firing.alert_id), "{text}");
        assert!(text.contains("v2.0"), "the details are shown: {text}");
    }
    let header = |body: &Value| {
        blocks_of(body)[0]["text"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        header(&bodies[0]).contains("WARNING"),
        "{}",
        header(&bodies[0])
    );
    assert!(
        header(&bodies[1]).contains("RESOLVED"),
        "{}",
        header(&bodies[1])
    );
    let color = |body: &Value| body["attachments"][0]["color"].as_str().map(str::to_owned);
    assert_eq!(color(&bodies[0]).as_deref(), Some(slack::COLOR_WARNING));
    assert_eq!(color(&bodies[1]).as_deref(), Some(slack::COLOR_RESOLVED));
    assert_ne!(color(&bodies[0]), color(&bodies[1]));
}

#[tokio::test]
async fn an_alert_too_big_for_one_message_still_reaches_slack_within_its_limits() {
    let hook = Standin::start(vec![]).await;
    let app = app_posting_to(&hook).await;
    let mut big = alert(Severity::Critical, &"a very long title ".repeat(40));
    for i in 0..300 {
        big = big.detail(format!("feature_{i}"), "é<&>😀".repeat(100));
    }

    slack_alert::deliver(&app, &big).await.expect("delivered");

    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_block_kit(&bodies[0]);
    let text = all_text(&bodies[0]);
    assert!(text.contains("not shown"), "says that it left details out");
    assert!(text.contains(&big.alert_id), "and where to see them");
    assert!(!text.contains("<&>"), "mrkdwn is escaped");
}

// 3. Duplicates.

/// An SNS event as Lambda gets it from the alerts topic, carrying `alert`.
fn sns_event(alert: &Alert, message_id: &str) -> Value {
    let topic = stack_var("ALERTS_TOPIC_ARN");
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{topic}:integration-tests"),
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic,
            "Subject": subject_line(alert),
            "Message": serde_json::to_string(alert).unwrap(),
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "MessageAttributes": {
                "severity": {"Type": "String", "Value": alert.severity.as_str()},
                "kind": {"Type": "String", "Value": alert.kind.as_str()},
            },
        },
    }]})
}

#[tokio::test]
async fn a_hundred_duplicate_notifications_send_one_slack_message_and_one_email() {
    let hook = Standin::start(vec![]).await;
    let mut app = app_posting_to(&hook).await;
    let recipient = unique_recipient();
    app.email.recipients = vec![recipient.clone()];
    let app = Arc::new(app);
    let alert = alert(Severity::Critical, "a critical alert handed over 100 times");
    let event = sns_event(&alert, &ulid::Ulid::new().to_string());

    // SNS and Lambda's retries: ten waves of ten at once, as concurrent containers.
    let mut results = Vec::new();
    for _ in 0..10 {
        let mut wave = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (app, event) = (Arc::clone(&app), event.clone());
            wave.spawn(async move {
                let invocation = inferloop::dispatch::Invocation::classify(
                    event,
                    lambda_http::Context::default(),
                );
                assert!(matches!(
                    invocation,
                    inferloop::dispatch::Invocation::Sns(_)
                ));
                slack_alert::invoke(&app, invocation)
                    .await
                    .map_err(|e| e.to_string())
            });
        }
        while let Some(result) = wave.join_next().await {
            results.push(result.expect("an invocation task"));
        }
    }

    assert_eq!(results.len(), 100);
    // A duplicate that met the claim while it was being sent fails, so that Lambda
    // retries it (the holder might die before sending); nothing else fails.
    for result in &results {
        match result {
            Ok(answer) => assert_eq!(answer["delivered"], json!(1)),
            Err(why) => assert!(why.contains("another delivery is sending it"), "{why}"),
        }
    }
    assert!(results.iter().any(Result::is_ok));
    // Its retry, after the holder finished: done, nothing sent again.
    let retry = inferloop::dispatch::Invocation::classify(event, lambda_http::Context::default());
    slack_alert::invoke(&app, retry)
        .await
        .expect("delivered before");
    assert_eq!(hook.received().len(), 1, "exactly one Slack message");
    assert_eq!(emails_to(&recipient).await.len(), 1, "exactly one e-mail");
    for key in [slack_key(&alert), email_key(&alert)] {
        assert_eq!(
            app.deliveries.status(&key).await.unwrap().as_deref(),
            Some("delivered"),
            "{key}"
        );
    }
}

// 4. Crashes.

#[tokio::test]
async fn a_claim_left_by_a_crashed_sender_is_sent_once_after_its_lease() {
    let hook = Standin::start(vec![]).await;
    let app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "the sender crashed before recording");
    // What a sender that died between sending and recording leaves: a claim whose
    // lease ran out.
    let claimed = app
        .deliveries
        .claim(&slack_key(&alert), now_secs() - LEASE_SECS - 1)
        .await
        .unwrap();
    assert_eq!(claimed, deliveries::Claim::Granted);

    slack_alert::deliver(&app, &alert).await.expect("delivered");
    assert_eq!(hook.received().len(), 1, "sent again, not lost");
    slack_alert::deliver(&app, &alert)
        .await
        .expect("nothing to do");
    assert_eq!(hook.received().len(), 1, "and once only");
    assert_eq!(
        app.deliveries
            .status(&slack_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[tokio::test]
async fn a_live_claim_is_left_to_its_holder() {
    let hook = Standin::start(vec![]).await;
    let app = app_posting_to(&hook).await;
    let alert = alert(Severity::Warning, "another container is sending this");
    let claimed = app
        .deliveries
        .claim(&slack_key(&alert), now_secs())
        .await
        .unwrap();
    assert_eq!(claimed, deliveries::Claim::Granted);

    // Not sent twice, and not taken as done either: the holder may die before it
    // sends, so this delivery fails and its invocation is retried.
    let why = slack_alert::deliver(&app, &alert)
        .await
        .expect_err("retried until the holder delivered or its lease ran out");
    assert!(why.contains("another delivery is sending it"), "{why}");
    assert!(hook.received().is_empty(), "not sent twice");
    assert_eq!(
        app.deliveries
            .status(&slack_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("in_progress")
    );
}

// 5. E-mail.

#[tokio::test]
async fn the_test_email_reaches_every_recipient_from_the_sender() {
    let hook = Standin::start(vec![]).await;
    let mut app = app_posting_to(&hook).await;
    let (first, second) = (unique_recipient(), unique_recipient());
    app.email.recipients = vec![first.clone(), second.clone()];
    let token = token_for(&unique_username("admin"), Role::Admin).await;

    for path in ["/admin/test-email", "/drift/test-email"] {
        let (status, body) = call(&app, request("POST", path, None, Some(&token))).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["sent"], true);
        assert_eq!(body["recipients"], json!([first, second]));
        let id = body["message_id"].as_str().expect("a message id");
        assert!(!id.is_empty());

        let sent = emails_to(&first).await;
        let mail = sent
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{path}: SES did not get {id}: {sent:?}"));
        assert_eq!(mail["destinations"]["ToAddresses"], json!([first, second]));
        assert_eq!(mail["source"], stack_var("ALERT_SENDER"));
        assert_eq!(mail["subject"], "[info] inferloop test e-mail");
        let html = mail["body"].as_str().unwrap_or_default();
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(
            html.contains("This is a test e-mail from inferloop."),
            "{html}"
        );
        assert!(
            html.contains(&first) && html.contains(&second),
            "names its recipients"
        );
    }
    assert!(
        hook.received().is_empty(),
        "a test e-mail is not a Slack message"
    );
}

#[tokio::test]
async fn an_alert_email_carries_the_subject_and_every_fact_escaped() {
    let hook = Standin::start(vec![]).await;
    let mut app = app_posting_to(&hook).await;
    let recipient = unique_recipient();
    app.email.recipients = vec![recipient.clone()];
    app.email.min_severity = Severity::Critical;
    let mut alert = alert(Severity::Critical, "predict answered a 5xx: internal")
        .detail("payload", r#"<script>alert("x") & 'y'</script>"#);
    alert.request_id = Some("req-email-1".into());

    slack_alert::deliver(&app, &alert).await.expect("delivered");

    let sent = emails_to(&recipient).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let mail = &sent[0];
    assert_eq!(mail["source"], stack_var("ALERT_SENDER"));
    assert_eq!(mail["destinations"]["ToAddresses"], json!([recipient]));
    assert_eq!(mail["subject"], subject_line(&alert));
    assert_eq!(
        mail["subject"],
        "[critical] manual firing: predict answered a 5xx: internal"
    );
    // moto keeps the HTML part of a message that has both (the text part is held to the
    // same facts by inferloop::notify::email's unit tests).
    let html = mail["body"].as_str().unwrap_or_default();
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>"));
    for fact in [
        alert.alert_id.as_str(),
        "predict answered a 5xx: internal",
        "req-email-1",
        "v2.0",
        "CRITICAL",
        "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;",
    ] {
        assert!(html.contains(fact), "{fact} missing from {html}");
    }
    assert!(!html.contains("<script"), "the detail is escaped");
    assert_eq!(html, email::email(&alert).html, "the HTML part as built");
    assert_eq!(
        app.deliveries
            .status(&email_key(&alert))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );

    // Below the configured severity: Slack only.
    let warning = self::alert(Severity::Warning, "only a warning");
    slack_alert::deliver(&app, &warning)
        .await
        .expect("delivered");
    assert_eq!(
        emails_to(&recipient).await.len(),
        1,
        "no e-mail for a warning"
    );
    assert_eq!(
        app.deliveries.status(&email_key(&warning)).await.unwrap(),
        None
    );
    assert_eq!(hook.received().len(), 2, "both reached Slack");
}

// 6. The critical-error storm.

async fn alerts_with_fingerprint(fingerprint: &str) -> Vec<HashMap<String, AttributeValue>> {
    let out = dynamodb()
        .await
        .query()
        .table_name(stack_var("ALERTS_TABLE"))
        .index_name(BY_FINGERPRINT_INDEX)
        .key_condition_expression("fingerprint = :f")
        .expression_attribute_values(":f", AttributeValue::S(fingerprint.to_owned()))
        .send()
        .await
        .expect("query the by_fingerprint index");
    out.items().to_vec()
}

#[tokio::test]
async fn a_storm_of_5xx_raises_one_alert_and_the_next_one_counts_the_rest() {
    let sdk = inferloop::aws::sdk_config().await;
    let source = unique_username("storm");
    let store = AlertStore::new(dynamodb().await, stack_var("ALERTS_TABLE"));
    let window = Duration::from_secs(2);
    let notifier = Arc::new(
        Notifier::new(
            aws_sdk_sns::Client::new(&sdk),
            stack_var("ALERTS_TOPIC_ARN"),
            store.clone(),
            source.clone(),
        )
        .with_critical_window(window),
    );
    let fingerprint = format!("critical_error:{source}:internal");

    let mut storm = tokio::task::JoinSet::new();
    for i in 0..50 {
        let notifier = Arc::clone(&notifier);
        storm.spawn(async move {
            notifier
                .critical_error("internal", &format!("req-{i}"), "/api/v2/predict")
                .await
        });
    }
    while let Some(done) = storm.join_next().await {
        done.expect("a request task");
    }
    let first = alerts_with_fingerprint(&fingerprint).await;
    assert_eq!(first.len(), 1, "one alert for the storm");
    let first_id = attr(&first[0], "alert_id").to_owned();
    let first_alert = store.get(&first_id).await.unwrap().expect("stored");
    assert_eq!(first_alert.severity, Severity::Critical);
    assert!(
        !first_alert
            .details
            .iter()
            .any(|(n, _)| n.starts_with("suppressed")),
        "{:?}",
        first_alert.details
    );

    tokio::time::sleep(window + Duration::from_millis(500)).await;
    notifier
        .critical_error("internal", "req-after", "/api/v2/predict")
        .await;
    let both = alerts_with_fingerprint(&fingerprint).await;
    assert_eq!(both.len(), 2, "the next 5xx after the window is an alert");
    let second_id = both
        .iter()
        .map(|item| attr(item, "alert_id"))
        .find(|id| *id != first_id)
        .expect("a second alert")
        .to_owned();
    let second = store.get(&second_id).await.unwrap().expect("stored");
    assert!(
        second.details.contains(&(
            "suppressed since the last alert".to_owned(),
            "49".to_owned()
        )),
        "{:?}",
        second.details
    );
    assert_eq!(second.request_id.as_deref(), Some("req-after"));
}

// 7. The admin routes.

async fn call(app: &slack_alert::App, req: lambda_http::Request) -> (u16, Value) {
    let response = slack_alert::handle(app, req).await.expect("infallible");
    (response.status().as_u16(), json_of(&response))
}

/// The one error shape, with `code`.
fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str, what: &str) {
    assert_eq!(status, expected_status, "{what}: {body}");
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert_eq!(error.len(), 3, "{what}: {body}");
    assert_eq!(error["code"], code, "{what}: {body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(error["request_id"].is_string(), "{what}: {body}");
}

async fn slack_alert_entries(actor: &str) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, String, Value)> = audit_entries_where("actor", actor)
        .await
        .iter()
        .filter(|e| attr(e, "action") == "slack_alert")
        .map(|e| {
            (
                attr(e, "ts").to_owned(),
                attr(e, "outcome").to_owned(),
                serde_json::from_str(attr(e, "details")).unwrap_or(Value::Null),
            )
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().map(|(_, o, d)| (o, d)).collect()
}

#[tokio::test]
async fn every_bad_manual_alert_is_refused_in_the_one_error_shape_and_posts_nothing() {
    let hook = Standin::start(vec![]).await;
    let app = app_posting_to(&hook).await;
    let admin = unique_username("admin");
    let token = token_for(&admin, Role::Admin).await;
    let user = unique_username("user");
    let user_token = token_for(&user, Role::User).await;
    let path = "/admin/slack_alert";
    let good = json!({"message": "deploy done"}).to_string();

    let (status, body) = call(&app, request("POST", path, Some(&good), None)).await;
    assert_error(status, &body, 401, "missing_token", "no token");
    let (status, body) = call(&app, request("POST", path, Some(&good), Some(&user_token))).await;
    assert_error(status, &body, 403, "forbidden", "a user's token");
    let response = slack_alert::handle(&app, request("GET", path, None, Some(&token)))
        .await
        .unwrap();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_error(
        response.status().as_u16(),
        &json_of(&response),
        405,
        "method_not_allowed",
        "GET",
    );
    assert!(allow.contains("POST"), "Allow: {allow}");

    let multibyte_too_long = "é".repeat(slack_alert::MAX_MESSAGE_CHARS + 1);
    let bad: Vec<(&str, String, u16, &str)> = vec![
        ("not JSON", "deploy done".into(), 400, "malformed_json"),
        (
            "truncated JSON",
            r#"{"message": "dep"#.into(),
            400,
            "malformed_json",
        ),
        (
            "an unknown field",
            json!({"message": "deploy done", "channel": "#general"}).to_string(),
            422,
            "invalid_body",
        ),
        (
            "no message",
            json!({"severity": "info"}).to_string(),
            422,
            "invalid_body",
        ),
        (
            "message not a string",
            json!({"message": 7}).to_string(),
            422,
            "invalid_body",
        ),
        (
            "an empty message",
            json!({"message": ""}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "a blank message",
            json!({"message": " \n\t "}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "3,001 characters",
            json!({"message": "x".repeat(3001)}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "3,001 two-byte characters",
            json!({"message": multibyte_too_long}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "an array of the fields instead of an object",
            json!(["deploy done"]).to_string(),
            422,
            "invalid_body",
        ),
        (
            "1,001 emoji and 999 letters: 3,001 characters as Slack counts them (UTF-16)",
            json!({"message": "😀".repeat(1001) + &"x".repeat(999)}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "750 ampersands: 3,750 characters once escaped for Slack",
            json!({"message": "&".repeat(750)}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "an unknown severity",
            json!({"message": "deploy done", "severity": "loud"}).to_string(),
            422,
            "invalid_field",
        ),
        (
            "a severity in capitals",
            json!({"message": "deploy done", "severity": "CRITICAL"}).to_string(),
            422,
            "invalid_field",
        ),
    ];
    for (what, body, expected, code) in &bad {
        let (status, answer) = call(&app, request("POST", path, Some(body), Some(&token))).await;
        assert_error(status, &answer, *expected, code, what);
    }
    let (status, body) = call(&app, request("POST", path, None, Some(&token))).await;
    assert_error(status, &body, 400, "missing_body", "no body");
    let mut plain = request("POST", path, Some(&good), Some(&token));
    plain
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    let (status, body) = call(&app, plain).await;
    assert_error(status, &body, 415, "unsupported_media_type", "text/plain");
    let huge = json!({"message": "x".repeat(40 * 1024)}).to_string();
    let (status, body) = call(&app, request("POST", path, Some(&huge), Some(&token))).await;
    assert_error(status, &body, 413, "payload_too_large", "a 40 KiB body");

    assert!(hook.received().is_empty(), "nothing reached Slack");
    let denied = slack_alert_entries(&user).await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].0, "denied");
    assert!(
        slack_alert_entries(&admin).await.is_empty(),
        "a refused body changes nothing, so records nothing"
    );
}

#[tokio::test]
async fn a_manual_alert_reaches_slack_and_is_audited_whatever_slack_answers() {
    let hook = Standin::start(vec![]).await;
    let mut app = app_posting_to(&hook).await;
    let admin = unique_username("admin");
    let token = token_for(&admin, Role::Admin).await;
    let path = "/admin/slack_alert";

    // 3,000 characters of two bytes each: the limit is in characters, not bytes.
    let message = "é".repeat(slack_alert::MAX_MESSAGE_CHARS - 12) + " deploy done";
    assert_eq!(message.chars().count(), slack_alert::MAX_MESSAGE_CHARS);
    let body = json!({"message": message, "severity": "warning"}).to_string();
    let (status, answer) = call(&app, request("POST", path, Some(&body), Some(&token))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], true);
    let alert_id = answer["alert_id"].as_str().expect("an alert id").to_owned();
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_block_kit(&bodies[0]);
    let text = all_text(&bodies[0]);
    assert!(text.contains(&"é".repeat(100)), "{text}");
    assert!(text.contains(&alert_id), "{text}");
    assert!(text.contains(&admin), "says who sent it: {text}");
    let stored = app.alerts.get(&alert_id).await.unwrap().expect("stored");
    assert_eq!(
        (stored.kind, stored.severity),
        (Kind::Manual, Severity::Warning)
    );
    assert_eq!(stored.title, message);
    assert_eq!(
        app.deliveries
            .status(&deliveries::key(&alert_id, "firing", Channel::Slack))
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );

    // Slack failing: 502, said so.
    let failing = Standin::start(vec![Reply::ServerError; 3]).await;
    app.slack = Some(Webhook::new(failing.url(), webhook::RETRIES));
    let body = json!({"message": "second"}).to_string();
    let (status, answer) = call(&app, request("POST", path, Some(&body), Some(&token))).await;
    assert_error(
        status,
        &answer,
        502,
        "slack_unavailable",
        "Slack answering 500",
    );
    assert_eq!(failing.received().len(), 3);

    // No webhook at all: 503, said so.
    app.slack = None;
    let (status, answer) = call(&app, request("POST", path, Some(&body), Some(&token))).await;
    assert_error(status, &answer, 503, "not_configured", "no webhook");

    let entries = slack_alert_entries(&admin).await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[0].0, "success");
    assert_eq!(entries[0].1["alert_id"], alert_id);
    assert_eq!(entries[0].1["severity"], "warning");
    assert_eq!(entries[0].1["characters"], slack_alert::MAX_MESSAGE_CHARS);
    assert_eq!(entries[1].0, "error");
    assert_eq!(entries[1].1["delivered"], false);
    assert_eq!(entries[2].0, "error");
    assert_eq!(entries[2].1["reason"], "not_configured");
    assert_eq!(
        hook.received().len(),
        1,
        "nothing more to the first webhook"
    );
}

#[tokio::test]
async fn the_test_email_without_recipients_says_what_to_configure() {
    let hook = Standin::start(vec![]).await;
    let mut app = app_posting_to(&hook).await;
    let token = token_for(&unique_username("admin"), Role::Admin).await;
    let user_token = token_for(&unique_username("user"), Role::User).await;

    for path in ["/admin/test-email", "/drift/test-email"] {
        app.email.recipients = Vec::new();
        let (status, body) = call(&app, request("POST", path, None, Some(&token))).await;
        assert_error(status, &body, 503, "not_configured", path);
        let (status, body) = call(&app, request("POST", path, None, Some(&user_token))).await;
        assert_error(status, &body, 403, "forbidden", path);
        let (status, body) = call(&app, request("POST", path, None, None)).await;
        assert_eq!(status, 401, "{path}: {body}");

        let recipient = unique_recipient();
        app.email.recipients = vec![recipient.clone()];
        let response = slack_alert::handle(&app, request("POST", path, None, Some(&token)))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(matches!(response.body(), Body::Text(_)));
        let body = json_of(&response);
        assert!(
            body["message_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{body}"
        );
        assert_eq!(emails_to(&recipient).await.len(), 1);
    }
}

#[tokio::test]
async fn a_long_manual_message_reaches_slack_whole() {
    let hook = Standin::start(vec![]).await;
    let app = app_posting_to(&hook).await;
    let token = token_for(&unique_username("admin"), Role::Admin).await;
    // Well within the 3,000 characters the route takes.
    let message = "the model was retrained on the corrected feedback; ".repeat(40) + "the end";
    assert!(message.chars().count() <= slack_alert::MAX_MESSAGE_CHARS);
    let body = json!({"message": message}).to_string();

    let (status, answer) = call(
        &app,
        request("POST", "/admin/slack_alert", Some(&body), Some(&token)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert_block_kit(&bodies[0]);
    let text = all_text(&bodies[0]);
    assert!(
        text.contains("the end"),
        "the message was cut short in Slack: {text}"
    );
}
