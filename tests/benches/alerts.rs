//! `cargo xtask bench alerts`: how long an alert takes from `Notifier::publish` (the
//! Alerts table and the topic, in moto) to the Slack webhook (a local stand-in), through
//! slack-alert's delivery (its exactly-once claim, the post, the record); and, with the
//! webhook answering 429 with `Retry-After` 1–5 s first, that every alert is still
//! delivered and none is posted again before its `Retry-After` ran out.
//!
//! The first two parts run in process (the SNS event slack-alert gets is built here from
//! what was published); the third times the whole local path: published on the topic in
//! moto, delivered by moto's SNS to xtask's bridge, invoked under `cargo lambda watch`,
//! posted to the bridge's stand-in webhook (which notes each arrival's time).

use futures_util::future::join_all;
use inferloop::dispatch::{Invocation, SnsNotification};
use inferloop::notify::store::AlertStore;
use inferloop::notify::{Alert, Kind, Notifier, Severity};
use integration_tests::standin::{Reply, Standin};
use integration_tests::{stack_var, unique_username};
use slack_alert::webhook::{RETRIES, Webhook};
use std::time::{Duration, Instant};

const ALERTS: usize = 200;
const THROUGH_SNS: usize = 100;
const THROTTLED: usize = 50;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} n={:<4} p50 {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().expect("samples")),
    );
}

/// What SNS hands slack-alert for `alert`.
fn notification(alert: &Alert) -> Invocation {
    Invocation::Sns(vec![SnsNotification {
        message_id: ulid::Ulid::new().to_string(),
        topic_arn: stack_var("ALERTS_TOPIC_ARN"),
        subject: Some(inferloop::notify::subject_line(alert)),
        message: serde_json::to_string(alert).expect("an alert serialises"),
        attributes: [
            ("severity".to_owned(), alert.severity.as_str().to_owned()),
            ("kind".to_owned(), alert.kind.as_str().to_owned()),
        ]
        .into(),
    }])
}

fn alert(source: &str, n: usize) -> Alert {
    // Warning: below the e-mail threshold, so the figures are Slack's path alone.
    Alert::firing(
        Kind::Drift,
        Severity::Warning,
        format!("drift on v2, run {n}"),
        source,
        format!("drift:v2:{source}:{n}"),
    )
    .detail("psi", 0.27)
    .detail("feature", "mean_brightness")
}

async fn app_posting_to(url: String) -> slack_alert::App {
    let mut app = slack_alert::App::from_env()
        .await
        .expect("slack-alert starts with the stack's environment");
    app.slack = Some(Webhook::new(url, RETRIES));
    app
}

#[tokio::main]
async fn main() {
    let sdk = inferloop::aws::sdk_config().await;
    let source = unique_username("bench");
    let sns = aws_sdk_sns::Client::new(&sdk);
    let store = AlertStore::new(inferloop::aws::dynamodb(&sdk), stack_var("ALERTS_TABLE"));
    // The in-process parts publish on a topic nobody subscribes to: on the alerts topic
    // the bridge would deliver each alert too, and whichever delivery claimed it first
    // would post it (exactly once), leaving the other nothing to time. moto posts to an
    // HTTP subscriber inside the publish call; SNS in AWS does not, so this is also
    // the nearer figure for a publish.
    let quiet_topic = sns
        .create_topic()
        .name("inferloop-bench-unsubscribed")
        .send()
        .await
        .expect("a topic")
        .topic_arn
        .expect("its ARN");
    let notifier = Notifier::new(sns.clone(), quiet_topic, store.clone(), &source);
    let alerts_topic = Notifier::new(sns, stack_var("ALERTS_TOPIC_ARN"), store, &source);

    // Publish to post, every webhook answer 200.
    let hook = Standin::start(Vec::new()).await;
    let app = app_posting_to(hook.url()).await;
    for n in 0..5 {
        let warm = alert(&source, ALERTS + n);
        notifier.publish(&warm).await;
        slack_alert::invoke(&app, notification(&warm))
            .await
            .expect("delivered");
    }
    let (mut publish, mut deliver, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..ALERTS {
        let alert = alert(&source, n);
        let started = Instant::now();
        assert!(notifier.publish(&alert).await, "published");
        let published = Instant::now();
        slack_alert::invoke(&app, notification(&alert))
            .await
            .expect("delivered");
        let (arrived, body) = hook.received().pop().expect("a post");
        assert!(
            body.to_string().contains(&alert.alert_id),
            "the post is this alert's"
        );
        publish.push(published - started);
        deliver.push(arrived - published);
        total.push(arrived - started);
    }
    println!(
        "in process, each post answered 200 ({ALERTS} alerts, one after another; a topic without subscribers)"
    );
    report("publish (table + SNS)", publish);
    report("delivery (claim, post)", deliver);
    report("publish to webhook", total);

    // Every first post answered 429 with Retry-After 1–5 s; all alerts at once.
    let mut cases = Vec::new();
    for n in 0..THROTTLED {
        let retry_after = 1 + (n % 5) as u64;
        let hook = Standin::start(vec![Reply::TooMany {
            retry_after_secs: retry_after,
        }])
        .await;
        let app = app_posting_to(hook.url()).await;
        cases.push((alert(&source, 1000 + n), retry_after, hook, app));
    }
    let started = Instant::now();
    let outcomes = join_all(cases.iter().map(|(alert, _, _, app)| async move {
        let began = Instant::now();
        let delivered = slack_alert::deliver(app, alert).await;
        (delivered, began)
    }))
    .await;
    let wall = started.elapsed();
    let (mut delivered, mut early, mut totals, mut margins) = (0, 0, Vec::new(), Vec::new());
    for ((_, retry_after, hook, _), (outcome, began)) in cases.iter().zip(outcomes) {
        let posts = hook.received();
        if outcome.is_ok() && posts.len() == 2 {
            delivered += 1;
        }
        if let [(first, _), (second, _)] = posts.as_slice() {
            let gap = *second - *first;
            if gap < Duration::from_secs(*retry_after) {
                early += 1;
            }
            margins.push(gap - Duration::from_secs(*retry_after).min(gap));
            totals.push(*second - began);
        }
    }
    println!(
        "\nalerts whose first post got 429 Retry-After 1-5 s ({THROTTLED} at once, {:.1} s in all)",
        wall.as_secs_f64()
    );
    println!("delivered {delivered}/{THROTTLED}; posted again before Retry-After: {early}");
    report("wait beyond Retry-After", margins);
    report("delivery with one 429", totals);

    through_sns(&alerts_topic, &source).await;
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When the bridge's stand-in got the message naming `alert_id` (epoch ms), waiting for it.
async fn arrival(http: &reqwest::Client, alert_id: &str) -> u64 {
    let url = stack_var("INFERLOOP_SLACK_STANDIN_URL");
    let started = Instant::now();
    loop {
        let received: Vec<serde_json::Value> = http
            .get(&url)
            .send()
            .await
            .expect("the stand-in")
            .json()
            .await
            .expect("a list");
        if let Some(found) = received
            .iter()
            .find(|r| r["message"].to_string().contains(alert_id))
        {
            return found["received_at_ms"].as_u64().expect("an arrival time");
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{alert_id} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Publish to the stand-in through SNS, the bridge and watch, one alert at a time.
async fn through_sns(notifier: &Notifier, source: &str) {
    let http = reqwest::Client::new();
    for n in 0..3 {
        let warm = alert(source, 5000 + n);
        notifier.publish(&warm).await;
        arrival(&http, &warm.alert_id).await;
    }
    let mut total = Vec::new();
    for n in 0..THROUGH_SNS {
        let alert = alert(source, 6000 + n);
        let started = epoch_ms();
        assert!(notifier.publish(&alert).await, "published");
        let arrived = arrival(&http, &alert.alert_id).await;
        total.push(Duration::from_millis(arrived.saturating_sub(started)));
    }
    println!(
        "\nthrough moto's SNS, the bridge and watch ({THROUGH_SNS} alerts, one after another; ms resolution)"
    );
    report("publish to webhook", total);
}
