//! `cargo xtask bench trends`: does a trends call cost the same with 100 times more
//! feedback? `GET /admin/trends?days=90` (no filter) through `trends::handle`, against
//! the bench's own stack, with 1,000 and then 100,000 feedback rows spread over the 90
//! days.
//!
//! Trends read the aggregates only, so the call should make the same number of
//! DynamoDB reads, and take about the same time, at both sizes (target: the 100k p50
//! within 1.5× of the 1k p50).
//!
//! How the rows get there:
//! - the first 1,000 through the feedback function's own write path: a stored
//!   prediction, then `FeedbackStore::submit` (feedback item, both counter updates and
//!   the label mark in one TransactWriteItems);
//! - the other 99,000 in bulk, because moto's TransactWriteItems deep-copies every
//!   table it touches before applying a transaction (to roll back), so each submit
//!   costs time in proportion to the Feedback and Predictions tables' size: the first
//!   1,000 take minutes, 100,000 would take many hours. The bulk load writes the same
//!   Feedback items (BatchWriteItem, the attributes `FeedbackStore` writes) and the same
//!   counters: the sum over the rows of `FeedbackCounts::counters()`, one `ADD` per
//!   aggregate item. `ADD` commutes, so the items end up exactly as 99,000 transactions
//!   would leave them. The rows' predictions are not stored: no trends path reads them.

use aws_sdk_dynamodb::types::AttributeValue;
use inferloop::domain::Role;
use inferloop::store::aggregates::{ALL_VERSIONS, FeedbackCounts, key};
use inferloop::store::feedback::{FeedbackStore, NewFeedback, Submission};
use inferloop::store::predictions::{
    DriftFeatures, INPUT_BYTES, PredictionRecord, PredictionStore,
};
use inferloop::time::format_timestamp;
use integration_tests::{dynamodb, json_of, request, stack_var, token_for, trends_app};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const DAYS: u64 = 90;
const SMALL: u64 = 1_000;
const LARGE: u64 = 100_000;
const WRITERS: u64 = 8;
const WARM_UP: usize = 5;
const CALLS: usize = 30;
const PATH: &str = "/admin/trends?days=90";

/// The `i`-th feedback of the bench: its day, version, route, digit, verdict.
fn record(i: u64, now: OffsetDateTime) -> (PredictionRecord, NewFeedback) {
    let day = i % DAYS;
    // Within the first hour of its day, so no row slips out of the window's first day.
    let at = (now.date() - time::Duration::days(day as i64))
        .midnight()
        .assume_utc()
        + time::Duration::seconds((i % 3600) as i64);
    let created_at = format_timestamp(at);
    let (line, route, variant) = match i % 4 {
        0 => ("v1", "v1", None),
        1 => ("v2", "v2", None),
        2 => ("v2", "production", None),
        _ => {
            let arm = if (i / 4).is_multiple_of(2) {
                "v1"
            } else {
                "v2"
            };
            (arm, "ab", Some(arm.to_owned()))
        }
    };
    let digit = (i % 10) as u8;
    // About 9 in 10 right; the wrong ones give the true digit half of the time.
    let correct = i % 10 != 3;
    let true_label = (!correct && i % 20 == 3).then_some(((i / 10) % 10) as u8);
    let prediction_id = ulid::Ulid::new().to_string();
    let mut probabilities = [0.01f32; 10];
    probabilities[usize::from(digit)] = 0.91;
    let prediction = PredictionRecord {
        prediction_id: prediction_id.clone(),
        username: format!("bench-user-{}", i % 50),
        user_id: None,
        created_at: created_at.clone(),
        model_name: "mnist".into(),
        model_version: format!("{line}.0"),
        line: line.into(),
        route: route.into(),
        ab_arm: variant,
        experiment: (route == "ab").then(|| "lines-v1-v2".to_owned()),
        digit,
        probability: 0.91,
        probabilities,
        input_sha256: format!("{i:064x}"),
        latency_ms: 1.0,
        cached: false,
        features: DriftFeatures {
            input: inferloop::model::preprocess::InputFeatures {
                raw_width: 64,
                raw_height: 64,
                mean_brightness: 0.8,
                ink_aspect_ratio: 0.6,
                ink_box_share: 0.2,
                input_mean: 0.13,
                input_ink_ratio: 0.19,
            },
            top_probability: 0.91,
            entropy: 0.5,
            predicted_digit: digit,
        },
        input: [0u8; INPUT_BYTES],
        expires_at: (now.unix_timestamp() + 90 * 86_400).max(0) as u64,
    };
    let feedback = NewFeedback {
        feedback_id: ulid::Ulid::new().to_string(),
        prediction_id,
        submitted_by: prediction.username.clone(),
        created_at,
        correct,
        true_label,
        comment: None,
    };
    (prediction, feedback)
}

/// Feedback `from..to`, by `WRITERS` concurrent writers. Writer k takes the rows whose
/// day is k modulo `WRITERS`, so two writers rarely update the same day's counters.
async fn load(from: u64, to: u64, now: OffsetDateTime) -> Duration {
    let started = Instant::now();
    let client = dynamodb().await;
    let mut writers = tokio::task::JoinSet::new();
    for k in 0..WRITERS {
        let predictions = PredictionStore::new(client.clone(), stack_var("PREDICTIONS_TABLE"));
        let feedback = FeedbackStore::new(
            client.clone(),
            stack_var("FEEDBACK_TABLE"),
            stack_var("AGGREGATES_TABLE"),
            stack_var("PREDICTIONS_TABLE"),
        );
        // Each writer is an instance of its own, with its own audit chain, as feedback's
        // containers are.
        let audit = inferloop::audit::AuditTrail::new(
            client.clone(),
            inferloop::config::AuditSettings::from_env(&inferloop::config::process_env())
                .expect("audit settings"),
        );
        writers.spawn(async move {
            let meta = inferloop::http::RequestMeta {
                request_id: "bench-trends".into(),
                source_ip: None,
                user_agent: None,
            };
            for i in (from..to).filter(|i| (i % DAYS) % WRITERS == k) {
                let (prediction, given) = record(i, now);
                predictions
                    .put(&prediction, None)
                    .await
                    .expect("prediction put");
                let entry = audit
                    .prepare(
                        &meta,
                        &prediction.username,
                        inferloop::audit::Action::Feedback,
                        inferloop::audit::Outcome::Success,
                        serde_json::json!({"prediction_id": prediction.prediction_id}),
                    )
                    .await;
                let outcome = feedback
                    .submit(&given, &prediction, entry)
                    .await
                    .expect("feedback");
                assert_eq!(outcome, Submission::Created);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }
    started.elapsed()
}

/// What one feedback adds to the aggregates, as `FeedbackStore::submit` computes it.
fn counts(prediction: &PredictionRecord, feedback: &NewFeedback) -> FeedbackCounts {
    FeedbackCounts {
        model_version: prediction.model_version.clone(),
        line: prediction.line.clone(),
        route: prediction.route.clone(),
        day: feedback.created_at[..10].to_owned(),
        predicted: prediction.digit,
        correct: feedback.correct,
        true_label: feedback.known_label(prediction.digit),
    }
}

/// The Feedback item `FeedbackStore` writes for this feedback (its attributes).
fn feedback_item(
    prediction: &PredictionRecord,
    f: &NewFeedback,
) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut item = HashMap::from([
        ("prediction_id".to_owned(), s(&f.prediction_id)),
        ("feedback_id".to_owned(), s(&f.feedback_id)),
        ("username".to_owned(), s(&prediction.username)),
        ("submitted_by".to_owned(), s(&f.submitted_by)),
        ("created_at".to_owned(), s(&f.created_at)),
        ("day".to_owned(), s(&f.created_at[..10])),
        ("correct".to_owned(), AttributeValue::Bool(f.correct)),
        (
            "predicted".to_owned(),
            AttributeValue::N(prediction.digit.to_string()),
        ),
        ("model_version".to_owned(), s(&prediction.model_version)),
        ("line".to_owned(), s(&prediction.line)),
        ("route".to_owned(), s(&prediction.route)),
    ]);
    if let Some(label) = f.true_label {
        item.insert(
            "true_label".to_owned(),
            AttributeValue::N(label.to_string()),
        );
    }
    if let Some(arm) = &prediction.ab_arm {
        item.insert("variant".to_owned(), s(arm));
    }
    item
}

/// One aggregate item's share of a bulk load.
#[derive(Default)]
struct Sums {
    counters: BTreeMap<String, u64>,
    /// On a version item: (model_version, line).
    version: Option<(String, String)>,
    /// On a day item: the versions seen.
    versions: BTreeSet<String>,
    day: String,
}

/// Feedback `from..to` in bulk (see the module doc): the Feedback items with
/// BatchWriteItem, the counters summed and added with one UpdateItem per aggregate item.
async fn load_bulk(from: u64, to: u64, now: OffsetDateTime) -> Duration {
    let started = Instant::now();
    let client = dynamodb().await;
    let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
    let mut items = Vec::with_capacity((to - from) as usize);
    for i in from..to {
        let (prediction, feedback) = record(i, now);
        let c = counts(&prediction, &feedback);
        for (item_key, is_version) in [
            (key(&c.model_version, &c.day), true),
            (key(ALL_VERSIONS, &c.day), false),
        ] {
            let entry = sums.entry(item_key).or_default();
            entry.day.clone_from(&c.day);
            for name in c.counters() {
                *entry.counters.entry(name).or_default() += 1;
            }
            if is_version {
                entry.version = Some((c.model_version.clone(), c.line.clone()));
            } else {
                entry.versions.insert(c.model_version.clone());
            }
        }
        items.push(feedback_item(&prediction, &feedback));
    }

    integration_tests::bulk_put(&stack_var("FEEDBACK_TABLE"), items, WRITERS as usize).await;

    let table = stack_var("AGGREGATES_TABLE");
    for (item_key, sum) in sums {
        let mut adds: Vec<String> = Vec::new();
        let mut update = client
            .update_item()
            .table_name(&table)
            .key("key", AttributeValue::S(item_key));
        for (i, (name, count)) in sum.counters.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), name)
                .expression_attribute_values(
                    format!(":c{i}"),
                    AttributeValue::N(count.to_string()),
                );
        }
        let mut set = vec!["#d = :d".to_owned()];
        update = update
            .expression_attribute_names("#d", "day")
            .expression_attribute_values(":d", AttributeValue::S(sum.day.clone()));
        if let Some((version, line)) = &sum.version {
            set.push("model_version = :v, line = :l".to_owned());
            update = update
                .expression_attribute_values(":v", AttributeValue::S(version.clone()))
                .expression_attribute_values(":l", AttributeValue::S(line.clone()));
        } else {
            adds.push("versions :vs".to_owned());
            update = update.expression_attribute_values(
                ":vs",
                AttributeValue::Ss(sum.versions.iter().cloned().collect()),
            );
        }
        update
            .update_expression(format!("ADD {} SET {}", adds.join(", "), set.join(", ")))
            .send()
            .await
            .expect("counters");
    }
    started.elapsed()
}

struct Figures {
    p50: Duration,
    p95: Duration,
    reads: u64,
    total: u64,
}

async fn measure(app: &trends::App, token: &str) -> Figures {
    let call = || async {
        let started = Instant::now();
        let response = trends::handle(app, request("GET", PATH, None, Some(token)))
            .await
            .expect("infallible");
        let elapsed = started.elapsed();
        let body = json_of(&response);
        assert_eq!(response.status(), 200, "{body}");
        (elapsed, body)
    };
    for _ in 0..WARM_UP {
        call().await;
    }
    let mut latencies = Vec::with_capacity(CALLS);
    let mut reads = Vec::with_capacity(CALLS);
    let mut total = 0;
    for _ in 0..CALLS {
        let (elapsed, body) = call().await;
        latencies.push(elapsed);
        reads.push(body["reads"].as_u64().expect("reads"));
        total = body["total_feedback"].as_u64().expect("total");
    }
    latencies.sort();
    reads.dedup();
    assert_eq!(reads.len(), 1, "every call makes the same reads: {reads:?}");
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Figures {
        p50: at(0.5),
        p95: at(0.95),
        reads: reads[0],
        total,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print(rows: u64, f: &Figures) {
    println!(
        "{rows:>7} feedback rows: p50 {:>6.2} ms   p95 {:>6.2} ms   DynamoDB reads/call {}   (total_feedback in the window {})",
        ms(f.p50),
        ms(f.p95),
        f.reads,
        f.total,
    );
}

#[tokio::main]
async fn main() {
    let app = trends_app().await;
    let token = token_for("bench-admin", Role::Admin).await;
    // One "now" for the whole load: the rows stay inside the 90-day window even if the
    // load runs past midnight.
    let now = OffsetDateTime::now_utc();
    println!(
        "trends: GET {PATH} (no filter) through trends::handle, {CALLS} calls after {WARM_UP} warm-up"
    );

    let took = load(0, SMALL, now).await;
    println!(
        "load   {SMALL} rows in {:.1} s ({WRITERS} writers, PredictionStore::put + FeedbackStore::submit)",
        took.as_secs_f64()
    );
    let small = measure(&app, &token).await;
    print(SMALL, &small);

    let took = load_bulk(SMALL, LARGE, now).await;
    let stored = dynamodb()
        .await
        .describe_table()
        .table_name(stack_var("FEEDBACK_TABLE"))
        .send()
        .await
        .ok()
        .and_then(|t| t.table().and_then(|t| t.item_count()));
    println!(
        "load   {} more rows in bulk in {:.1} s (FeedbackTable now holds {} items)",
        LARGE - SMALL,
        took.as_secs_f64(),
        stored.map_or("?".to_owned(), |n| n.to_string()),
    );
    let large = measure(&app, &token).await;
    print(LARGE, &large);

    println!(
        "ratio  100k / 1k: p50 {:.2}x, p95 {:.2}x (target: p50 within 1.5x); reads/call {} vs {}",
        ms(large.p50) / ms(small.p50),
        ms(large.p95) / ms(small.p95),
        large.reads,
        small.reads,
    );
}
