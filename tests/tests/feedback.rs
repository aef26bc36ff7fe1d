//! The feedback function against moto: one feedback per prediction, counted once in the
//! aggregates, in one transaction, whatever the retries and the concurrency.

use aws_sdk_dynamodb::types::AttributeValue;
use inferloop::domain::Role;
use inferloop::store::aggregates::{AggregateStore, Counters};
use inferloop::store::predictions::{DriftFeatures, PredictionRecord, PredictionStore};
use integration_tests::*;
use serde_json::{Value, json};
use std::collections::HashMap;

/// A model version of the test's own, so its aggregate items are private to it.
fn private_version() -> String {
    format!("vt-{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn today() -> String {
    inferloop::time::now_rfc3339()[..10].to_owned()
}

/// Stores a prediction as predict would, for `username`, with `digit`.
async fn prediction(username: &str, version: &str, digit: u8, route: &str) -> String {
    let id = ulid::Ulid::new().to_string();
    let store = PredictionStore::new(dynamodb().await, stack_var("PREDICTIONS_TABLE"));
    store
        .put(
            &PredictionRecord {
                prediction_id: id.clone(),
                username: username.to_owned(),
                user_id: account_id(username).await,
                created_at: inferloop::time::now_rfc3339(),
                model_name: "mnist".into(),
                model_version: version.to_owned(),
                line: "v2".into(),
                route: route.to_owned(),
                ab_arm: (route == "ab").then(|| "v2".to_owned()),
                experiment: None,
                digit,
                probability: 0.9,
                probabilities: [0.01; 10],
                input_sha256: "0".repeat(64),
                latency_ms: 1.0,
                cached: false,
                features: DriftFeatures {
                    input: inferloop::model::preprocess::InputFeatures {
                        raw_width: 28,
                        raw_height: 28,
                        mean_brightness: 0.9,
                        ink_aspect_ratio: 1.0,
                        ink_box_share: 0.5,
                        input_mean: 0.1,
                        input_ink_ratio: 0.1,
                    },
                    top_probability: 0.9,
                    entropy: 0.4,
                    predicted_digit: digit,
                },
                input: [0; 784],
                expires_at: 4_000_000_000,
            },
            None,
        )
        .await
        .expect("store a prediction");
    id
}

async fn post(app: &feedback::App, token: &str, body: Value) -> (u16, Value) {
    let req = request("POST", "/feedback", Some(&body.to_string()), Some(token));
    let response = feedback::handle(app, req).await.unwrap();
    (response.status().as_u16(), json_of(&response))
}

async fn get(app: &feedback::App, token: &str, query: &str) -> (u16, Value) {
    let req = request("GET", &format!("/feedback?{query}"), None, Some(token));
    let response = feedback::handle(app, req).await.unwrap();
    (response.status().as_u16(), json_of(&response))
}

async fn counters(version: &str) -> Counters {
    let store = AggregateStore::new(dynamodb().await, stack_var("AGGREGATES_TABLE"));
    let key = inferloop::store::aggregates::key(version, &today());
    let (found, _) = store.get_many(&[key]).await.unwrap();
    found.into_iter().next().unwrap_or_default()
}

async fn prediction_item(id: &str) -> HashMap<String, AttributeValue> {
    dynamodb()
        .await
        .get_item()
        .table_name(stack_var("PREDICTIONS_TABLE"))
        .key("prediction_id", AttributeValue::S(id.to_owned()))
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .expect("the prediction")
}

async fn user() -> (String, String) {
    let name = unique_username("feedbacker");
    let token = token_for(&name, Role::User).await;
    (name, token)
}

#[tokio::test]
async fn feedback_is_counted_and_labels_the_stored_input() {
    let app = feedback_app().await;
    let (name, token) = user().await;
    let version = private_version();
    let id = prediction(&name, &version, 8, "ab").await;
    let (status, body) = post(
        &app,
        &token,
        json!({"prediction_id": id, "correct": false, "true_label": 3, "comment": "a 3"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let feedback_id = body["feedback_id"].as_str().unwrap();
    assert_eq!(feedback_id.len(), 26);

    let c = counters(&version).await;
    assert_eq!(c.model_version, version);
    assert_eq!(c.line, "v2");
    for (name, value) in [
        ("total", 1),
        ("correct", 0),
        ("labelled", 1),
        ("pred_8", 1),
        ("cm_3_8", 1),
        ("route_ab_total", 1),
        ("ab_total", 1),
        ("ab_cm_3_8", 1),
    ] {
        assert_eq!(c.get(name), value, "{name}");
    }
    let store = AggregateStore::new(dynamodb().await, stack_var("AGGREGATES_TABLE"));
    let (day, _) = store
        .get_many(&[inferloop::store::aggregates::key("*", &today())])
        .await
        .unwrap();
    assert!(
        day[0].versions.contains(&version),
        "the day lists the version"
    );

    let item = prediction_item(&id).await;
    assert_eq!(
        item["true_label"].as_n().unwrap(),
        "3",
        "the input is labelled"
    );
    let entries = audit_entries_where("actor", &name).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(attr(&entries[0], "action"), "feedback");
    assert!(attr(&entries[0], "details").contains(feedback_id));
}

#[tokio::test]
async fn a_retry_answers_the_first_id_and_different_content_conflicts() {
    let app = feedback_app().await;
    let (name, token) = user().await;
    let version = private_version();
    let id = prediction(&name, &version, 4, "v2").await;
    let body = json!({"prediction_id": id, "correct": true});
    let (first, created) = post(&app, &token, body.clone()).await;
    let (again, retried) = post(&app, &token, body).await;
    assert_eq!((first, again), (201, 200));
    assert_eq!(created["feedback_id"], retried["feedback_id"]);
    let (status, conflict) = post(
        &app,
        &token,
        json!({"prediction_id": id, "correct": false, "true_label": 9}),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "conflict");
    let c = counters(&version).await;
    assert_eq!(
        (c.get("total"), c.get("correct"), c.get("cm_4_4")),
        (1, 1, 1)
    );
    assert_eq!(
        prediction_item(&id).await["true_label"].as_n().unwrap(),
        "4"
    );
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_give_feedback() {
    let app = feedback_app().await;
    let (owner, _) = user().await;
    let (_, stranger) = user().await;
    let version = private_version();
    let id = prediction(&owner, &version, 1, "v1").await;
    let body = json!({"prediction_id": id, "correct": true});
    let (status, _) = post(&app, &stranger, body.clone()).await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &app,
        &stranger,
        json!({"prediction_id": ulid::Ulid::new().to_string(), "correct": true}),
    )
    .await;
    assert_eq!(status, 404);
    let req = request("POST", "/feedback", Some(&body.to_string()), None);
    assert_eq!(feedback::handle(&app, req).await.unwrap().status(), 401);
    assert_eq!(counters(&version).await.get("total"), 0, "nothing counted");
    let admin = token_for(&unique_username("admin"), Role::Admin).await;
    let (status, _) = post(&app, &admin, body).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn labels_must_agree_with_the_verdict() {
    let app = feedback_app().await;
    let (name, token) = user().await;
    let version = private_version();
    let a = prediction(&name, &version, 5, "v2").await;
    let (status, body) = post(
        &app,
        &token,
        json!({"prediction_id": a, "correct": true, "true_label": 6}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("label_mismatch"))
    );
    // Incorrect without a label: counted, but not labelled training data.
    let (status, _) = post(&app, &token, json!({"prediction_id": a, "correct": false})).await;
    assert_eq!(status, 201);
    let c = counters(&version).await;
    assert_eq!((c.get("total"), c.get("labelled")), (1, 0));
    assert!(!prediction_item(&a).await.contains_key("true_label"));
}

#[tokio::test]
async fn concurrent_and_repeated_submissions_are_counted_exactly_once() {
    let app = std::sync::Arc::new(feedback_app().await);
    let (name, token) = user().await;
    let version = private_version();
    let mut ids = Vec::new();
    for n in 0..30u8 {
        ids.push((prediction(&name, &version, n % 10, "v2").await, n));
    }
    let mut tasks = Vec::new();
    for (id, n) in &ids {
        // Every third one wrong, with the true label one above; each sent three times at once.
        let body = if n % 3 == 0 {
            json!({"prediction_id": id, "correct": false, "true_label": (n + 1) % 10})
        } else {
            json!({"prediction_id": id, "correct": true})
        };
        for _ in 0..3 {
            let (app, token, body) = (app.clone(), token.clone(), body.clone());
            tasks.push(tokio::spawn(async move { post(&app, &token, body).await }));
        }
    }
    let mut created = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert!(status == 201 || status == 200, "{status}: {body}");
        created += usize::from(status == 201);
    }
    assert_eq!(created, ids.len(), "exactly one 201 per prediction");

    let c = counters(&version).await;
    assert_eq!(c.get("total"), 30);
    assert_eq!(c.get("correct"), 20);
    assert_eq!(c.get("labelled"), 30);
    let confusion: u64 = (0..10)
        .flat_map(|t| (0..10).map(move |p| format!("cm_{t}_{p}")))
        .map(|k| c.get(&k))
        .sum();
    assert_eq!(confusion, 30);
    for (_, n) in ids.iter().filter(|(_, n)| n % 3 == 0) {
        let (t, p) = ((n + 1) % 10, n % 10);
        assert!(c.get(&format!("cm_{t}_{p}")) >= 1, "cm_{t}_{p}");
    }
    // The counters agree with the items.
    let (status, listed) = get(
        &app,
        &token_for(&unique_username("admin"), Role::Admin).await,
        &format!("username={name}&limit=500"),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["feedback"].as_array().unwrap();
    assert_eq!(items.len() as u64, c.get("total"));
    let correct = items.iter().filter(|f| f["correct"] == true).count() as u64;
    assert_eq!(correct, c.get("correct"));
}

#[tokio::test]
async fn admins_list_feedback_by_user_and_by_day_in_pages() {
    let app = feedback_app().await;
    let (name, token) = user().await;
    let version = private_version();
    for n in 0..5u8 {
        let id = prediction(&name, &version, n, "v1").await;
        let (status, _) = post(
            &app,
            &token,
            json!({"prediction_id": id, "correct": n % 2 == 0}),
        )
        .await;
        assert_eq!(status, 201);
    }
    let admin = token_for(&unique_username("admin"), Role::Admin).await;
    for query in [
        format!("username={name}"),
        format!("model_version={version}"),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("{query}&limit=2&cursor={c}"),
                None => format!("{query}&limit=2"),
            };
            let (status, body) = get(&app, &admin, &page).await;
            assert_eq!(status, 200, "{body}");
            let items = body["feedback"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(
                items
                    .iter()
                    .map(|f| f["created_at"].as_str().unwrap().to_owned()),
            );
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "{query}: every item once");
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "{query}: newest first");
    }
    let (_, wrong) = get(&app, &admin, &format!("username={name}&correct=false")).await;
    assert_eq!(wrong["feedback"].as_array().unwrap().len(), 2);

    let (status, _) = get(&app, &token, "").await;
    assert_eq!(status, 403, "users may not list");
    for bad in [
        "days=3&from=yesterday",
        "correct=maybe",
        "model_version=../x",
        "username=a",
        "from=2026-03-02&to=2026-03-01",
        "limit=0",
    ] {
        let (status, body) = get(&app, &admin, bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _) = get(&app, &admin, "cursor=bm90LWEtY3Vyc29y").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_sample_events_are_served() {
    let app = feedback_app().await;
    let (name, token) = user().await;
    let id = prediction(&name, &private_version(), 8, "v2").await;
    let admin = token_for(&unique_username("admin"), Role::Admin).await;
    let root = root().join("events");
    for (file, token, status) in [
        ("feedback-submit.json", &token, 201),
        ("feedback-list.json", &admin, 200),
    ] {
        let text = std::fs::read_to_string(root.join(file))
            .unwrap()
            .replace("REPLACE_WITH_TOKEN", token)
            .replace("REPLACE_WITH_PREDICTION_ID", &id);
        let req = lambda_http::request::from_str(&text).expect("an API Gateway v2 event");
        let response = feedback::handle(&app, req).await.unwrap();
        assert_eq!(response.status(), status, "{file}: {}", json_of(&response));
    }
}
