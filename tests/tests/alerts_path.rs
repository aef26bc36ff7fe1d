//! The whole path of an alert on the local stack, as in AWS: published on the alerts
//! topic (moto's SNS, with slack-alert's filter policy), handed to slack-alert under
//! `cargo lambda watch` as an SNS event (xtask's bridge), posted to the Slack stand-in
//! and, from critical on, e-mailed through moto's SES. Also: the sample events in
//! events/ are served, and the manual alert route works through the API.

use inferloop::dispatch::Invocation;
use inferloop::domain::Role;
use inferloop::notify::store::AlertStore;
use inferloop::notify::{Alert, Kind, Notifier, Severity};
use integration_tests::{json_of, root, stack_var, token_for, unique_username};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Long enough for watch to start slack-alert on its first event (prebuilt).
const ARRIVAL_LIMIT: Duration = Duration::from_secs(120);

/// What the stand-in webhook received so far: `{received_at_ms, message}` each.
async fn slack_received() -> Vec<Value> {
    let url = stack_var("INFERLOOP_SLACK_STANDIN_URL");
    reqwest::get(&url)
        .await
        .expect("the Slack stand-in answers (started by `cargo xtask test`)")
        .json()
        .await
        .expect("a JSON list")
}

/// The Slack messages that name `needle` (an alert id), once at least one arrived.
async fn wait_for_slack(needle: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found: Vec<Value> = slack_received()
            .await
            .into_iter()
            .filter(|m| m.to_string().contains(needle))
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            started.elapsed() < ARRIVAL_LIMIT,
            "no Slack message naming {needle} within {ARRIVAL_LIMIT:?}; see .inferloop/test-watch.log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The e-mails moto's SES accepted whose subject or body names `needle`.
async fn mails_naming(needle: &str) -> Vec<Value> {
    let url = format!("{}/moto-api/data.json", stack_var("AWS_ENDPOINT_URL"));
    let data: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.to_string().contains(needle))
        .collect()
}

async fn notifier(source: &str) -> Notifier {
    let sdk = inferloop::aws::sdk_config().await;
    Notifier::new(
        aws_sdk_sns::Client::new(&sdk),
        stack_var("ALERTS_TOPIC_ARN"),
        AlertStore::new(inferloop::aws::dynamodb(&sdk), stack_var("ALERTS_TABLE")),
        source,
    )
    // What is tested is the path, not its speed: a busy machine must not fail it.
    .with_publish_deadline(std::time::Duration::from_secs(10))
}

#[tokio::test]
async fn a_published_alert_reaches_slack_and_mail_through_sns_once() {
    let source = unique_username("path");
    let alert = Alert::firing(
        Kind::Drift,
        Severity::Critical,
        "drift on v2: mean_brightness moved",
        &source,
        format!("drift:v2:{source}"),
    )
    .detail("psi", 0.31)
    .detail("feature", "mean_brightness");
    assert!(notifier(&source).await.publish(&alert).await, "published");

    let messages = wait_for_slack(&alert.alert_id).await;
    let text = messages[0].to_string();
    assert!(
        text.contains("drift on v2: mean_brightness moved"),
        "{text}"
    );
    assert!(
        text.contains("mean_brightness") && text.contains("0.31"),
        "{text}"
    );

    // The e-mail goes out in the same delivery, after Slack's.
    let started = Instant::now();
    let mails = loop {
        let mails = mails_naming(&alert.alert_id).await;
        if !mails.is_empty() || started.elapsed() > ARRIVAL_LIMIT {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(mails.len(), 1, "one e-mail: {mails:?}");
    let mail = &mails[0];
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .contains("[critical] drift firing"),
        "{mail}"
    );
    assert_eq!(
        mail["destinations"]["ToAddresses"][0],
        stack_var("ALERT_EMAILS")
    );

    // Stored as published, and delivered once per channel.
    let store = AlertStore::new(
        integration_tests::dynamodb().await,
        stack_var("ALERTS_TABLE"),
    );
    assert_eq!(
        store.get(&alert.alert_id).await.unwrap(),
        Some(alert.clone())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        wait_for_slack(&alert.alert_id).await.len(),
        1,
        "posted once"
    );
}

#[tokio::test]
async fn an_alarm_notification_without_attributes_passes_the_filter_and_is_formatted() {
    // What CloudWatch publishes: its own JSON, no message attributes.
    let name = unique_username("alarm");
    let message = std::fs::read_to_string(root().join("events/cloudwatch-alarm.json")).unwrap();
    let event: Value = serde_json::from_str(&message).unwrap();
    let alarm = event["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .replace("inferloop-PredictErrorsAlarm", &name);
    let sdk = inferloop::aws::sdk_config().await;
    aws_sdk_sns::Client::new(&sdk)
        .publish()
        .topic_arn(stack_var("ALERTS_TOPIC_ARN"))
        .subject(format!("ALARM: \"{name}\""))
        .message(alarm)
        .send()
        .await
        .unwrap();
    let messages = wait_for_slack(&name).await;
    assert_eq!(messages.len(), 1);
    let text = messages[0].to_string();
    assert!(
        text.contains("Threshold Crossed"),
        "the reason is shown: {text}"
    );
}

#[tokio::test]
async fn the_manual_alert_route_posts_to_slack_through_the_api() {
    let admin = token_for(&unique_username("admin"), Role::Admin).await;
    let message = format!("deploying {}", ulid::Ulid::new());
    let response = reqwest::Client::new()
        .post(format!(
            "{}/admin/slack_alert",
            stack_var("INFERLOOP_API_URL")
        ))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"message": message, "severity": "warning"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], true);
    let alert_id = body["alert_id"].as_str().unwrap();
    let messages = wait_for_slack(alert_id).await;
    assert!(messages[0].to_string().contains(&message));
}

#[tokio::test]
async fn the_sample_events_are_served() {
    let app = slack_alert::App::from_env()
        .await
        .expect("slack-alert starts with the stack's environment");
    let admin = token_for(&unique_username("admin"), Role::Admin).await;
    for (file, status) in [
        ("slack-alert.json", 200),
        ("test-email.json", 200),
        ("drift-test-email.json", 200),
    ] {
        let text = std::fs::read_to_string(root().join("events").join(file))
            .unwrap()
            .replace("REPLACE_WITH_TOKEN", &admin);
        let req = lambda_http::request::from_str(&text).expect("an API Gateway v2 event");
        let response = slack_alert::handle(&app, req).await.unwrap();
        assert_eq!(response.status(), status, "{file}: {}", json_of(&response));
    }
    for file in ["sns-alert.json", "cloudwatch-alarm.json"] {
        let text = std::fs::read_to_string(root().join("events").join(file)).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        let invocation = Invocation::classify(event, lambda_http::Context::default());
        assert!(
            matches!(invocation, Invocation::Sns(_)),
            "{file} is an SNS event"
        );
        let answer = slack_alert::invoke(&app, invocation).await;
        assert!(answer.is_ok(), "{file}: {answer:?}");
    }
}
