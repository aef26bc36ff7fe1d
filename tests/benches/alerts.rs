//! `cargo xtask bench alerts`: how long an alert takes from `Notifier::publish` (the
//! Alerts table and the topic, in moto) to the Slack webhook (a local stand-in), through
//! slack-alert's delivery (its exactly-once claim, the post, the record); and, with the
//! webhook answering 429 with `Retry-After` 1–5 s first, that every alert is still
//! delivered and none is posted again before its `Retry-After` ran out.
//!
//! In process, release build: the hop from moto's SNS to the function (in AWS, Lambda's
//! asynchronous invocation; locally, xtask's bridge and watch) is not in these figures;
//! the SNS event slack-alert gets is built here from what was published.

use futures_util::future::join_all;
use inferloop::dispatch::{Invocation, SnsNotification};
use inferloop::notify::store::AlertStore;
use inferloop::notify::{Alert, Kind, Notifier, Severity};
use integration_tests::standin::{Reply, Standin};
use integration_tests::{stack_var, unique_username};
use slack_alert::webhook::{RETRIES, Webhook};
use std::time::{Duration, Instant};

const ALERTS: usize = 200;
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
    let notifier = Notifier::new(
        aws_sdk_sns::Client::new(&sdk),
        stack_var("ALERTS_TOPIC_ARN"),
        AlertStore::new(inferloop::aws::dynamodb(&sdk), stack_var("ALERTS_TABLE")),
        &source,
    );

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
    println!("alerts, each answered 200 ({ALERTS} alerts, one after another)");
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
}
