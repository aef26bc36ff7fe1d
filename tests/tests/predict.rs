//! The predict function against the local stack: moto (Predictions, Models, Audit, the
//! models bucket with the shipped models that `cargo xtask test` published) and Redis.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use inferloop::cache::Cache;
use inferloop::domain::Role;
use inferloop::model::infer::onnx_to_nnef;
use inferloop::model::preprocess::preprocess_bytes;
use inferloop::model::registry::{self, Artifacts, Published, RegistryError};
use inferloop::store::StoreError;
use inferloop::store::models::{
    ChangeKind, ModelStore, ModelVersion, Promotion, Stage, rollback_target,
};
use inferloop::store::predictions::PredictionStore;
use integration_tests::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::time::Duration;

const PATHS: [&str; 4] = [
    "/api/v1/predict",
    "/api/v2/predict",
    "/api/ab/predict",
    "/predict",
];

async fn user() -> (String, String) {
    let name = unique_username("predictor");
    let token = token_for(&name, Role::User).await;
    (name, token)
}

/// A user-like digit as PNG (re-encoded when the generator chose JPEG) and its label.
fn png_digit(n: usize) -> (Vec<u8>, u8) {
    let (bytes, label) = user_like_digit(n);
    let decoded = image::load_from_memory(&bytes).expect("decodable");
    (encode(&decoded, image::ImageFormat::Png), label)
}

/// Encoded as 8-bit RGB, which every encoder here accepts.
fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img.to_rgb8())
        .write_to(&mut out, format)
        .expect("encode");
    out.into_inner()
}

async fn predictions() -> PredictionStore {
    PredictionStore::new(dynamodb().await, stack_var("PREDICTIONS_TABLE"))
}

/// `image` as a raw `image/png` body to `path`, with `token`.
async fn send_png(
    app: &predict::App,
    path: &str,
    image: &[u8],
    token: &str,
) -> (u16, Value, lambda_http::Response<lambda_http::Body>) {
    call_predict(
        app,
        upload(path, Some("image/png"), image.to_vec(), Some(token)),
    )
    .await
}

/// How many predictions are stored for `username` (a scan: tests only).
async fn stored_for(username: &str) -> usize {
    let client = dynamodb().await;
    let mut count = 0;
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(stack_var("PREDICTIONS_TABLE"))
            .filter_expression("username = :u")
            .expression_attribute_values(":u", AttributeValue::S(username.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan predictions");
        count += out.items().len();
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return count;
        }
    }
}

#[tokio::test]
async fn every_route_answers_in_the_documented_shape() {
    let app = predict_app().await;
    let (_, token) = user().await;
    let (image, _) = png_digit(1);
    let expected = {
        let pre = preprocess_bytes(&image).unwrap();
        let v2 = app.registry.model_for_line("v2").await.unwrap();
        v2.model.predict(&pre.input).unwrap()
    };
    for path in PATHS {
        let (status, body, _) = send_png(&app, path, &image, &token).await;
        assert_eq!(status, 200, "{path}: {body}");
        let probabilities: Vec<f64> = body["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(probabilities.len(), 10);
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        let argmax = (0..10)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap();
        assert_eq!(body["prediction"], argmax, "{path}");
        assert_eq!(body["prediccion"], body["prediction"]);
        assert_eq!(body["probabilidad"], body["probability"]);
        assert_eq!(body["version"], body["variant"]);
        assert_eq!(body["model"]["name"], "mnist");
        let line = body["variant"].as_str().unwrap();
        assert_eq!(
            body["model"]["version"],
            format!("{line}.0"),
            "{path}: the shipped version of the line"
        );
        assert!(
            body["prediction_id"]
                .as_str()
                .is_some_and(|id| id.len() == 26)
        );
        assert!(body["cached"].is_boolean());
        match path {
            "/api/v1/predict" => assert_eq!(line, "v1"),
            "/api/v2/predict" | "/predict" => {
                assert_eq!(line, "v2", "v2 is the shipped production line");
                assert_eq!(body["prediction"], expected.digit);
            }
            _ => assert_eq!(body["ab_version"], line),
        }
        if path != "/api/ab/predict" {
            assert!(body.get("ab_version").is_none());
        }
    }
}

#[tokio::test]
async fn digits_are_read_correctly_through_the_api() {
    let app = predict_app().await;
    let (_, token) = user().await;
    let mut right = 0;
    let total = 25;
    for n in 0..total {
        let (image, label) = user_like_digit(100 + n);
        let body = json!({"image": base64::engine::general_purpose::STANDARD.encode(&image)});
        let (status, answer, _) = call_predict(
            &app,
            upload(
                "/api/v2/predict",
                Some("application/json"),
                body.to_string().into_bytes(),
                Some(&token),
            ),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        right += usize::from(answer["prediction"] == label);
    }
    // v2 reads 97 % of such images (docs/benchmarks.md); 25 of them at ≥ 22 leaves room
    // for chance, not for a broken pipeline (a constant answer gets ~3).
    assert!(right >= 22, "{right} of {total} right");
}

#[tokio::test]
async fn every_input_form_and_format_gives_the_same_answer() {
    let app = predict_app().await;
    let (_, token) = user().await;
    let (png_bytes, _) = png_digit(2);
    let decoded = image::load_from_memory(&png_bytes).unwrap();
    let reference = {
        let (status, body, _) = send_png(&app, "/api/v2/predict", &png_bytes, &token).await;
        assert_eq!(status, 200, "{body}");
        body["prediction"].clone()
    };
    let mut uploads = vec![
        (
            "multipart".to_owned(),
            Some("multipart/form-data; boundary=----inferloop".to_owned()),
            multipart_body("----inferloop", "file", &png_bytes),
        ),
        (
            "json".to_owned(),
            Some("application/json".to_owned()),
            json!({"image": base64::engine::general_purpose::STANDARD.encode(&png_bytes)})
                .to_string()
                .into_bytes(),
        ),
        (
            "octet-stream".to_owned(),
            Some("application/octet-stream".to_owned()),
            png_bytes.clone(),
        ),
    ];
    for (format, mime) in [
        (image::ImageFormat::Jpeg, "image/jpeg"),
        (image::ImageFormat::Bmp, "image/bmp"),
        (image::ImageFormat::Gif, "image/gif"),
        (image::ImageFormat::WebP, "image/webp"),
    ] {
        uploads.push((
            format!("{format:?}"),
            Some(mime.to_owned()),
            encode(&decoded, format),
        ));
    }
    for (what, content_type, body) in uploads {
        let (status, answer, _) = call_predict(
            &app,
            upload(
                "/api/v2/predict",
                content_type.as_deref(),
                body,
                Some(&token),
            ),
        )
        .await;
        assert_eq!(status, 200, "{what}: {answer}");
        assert_eq!(answer["prediction"], reference, "{what}");
    }
}

#[tokio::test]
async fn a_repeated_image_is_answered_from_the_cache_and_still_stored() {
    let app = predict_app().await;
    let (name, token) = user().await;
    // An image no other test sends: its own sha256, so the first call is a miss.
    let (mut image, _) = png_digit(3);
    image.extend_from_slice(name.as_bytes());
    let send = || {
        upload(
            "/api/v1/predict",
            Some("image/png"),
            image.clone(),
            Some(&token),
        )
    };
    let (status, first, _) = call_predict(&app, send()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["cached"], false);
    let (status, second, _) = call_predict(&app, send()).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["cached"], true);
    assert_eq!(second["prediction"], first["prediction"]);
    assert_eq!(second["probabilities"], first["probabilities"]);
    assert_ne!(second["prediction_id"], first["prediction_id"]);
    assert_eq!(stored_for(&name).await, 2, "a cached answer is stored too");

    let key = format!("pred:mnist@v1.0:{}", hex::encode(Sha256::digest(&image)));
    assert!(
        stack_cache().get(&key).await.is_some(),
        "the cache key names the model version and the image hash: {key}"
    );
    let stored = predictions()
        .await
        .get(second["prediction_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.cached);
    let direct = preprocess_bytes(&image).unwrap();
    assert_eq!(
        stored.input,
        direct.input_bytes(),
        "the cached input is the real one"
    );
}

#[tokio::test]
async fn a_prediction_is_stored_with_its_input_and_features_and_audited() {
    let app = predict_app().await;
    let (name, token) = user().await;
    let (mut image, _) = png_digit(4);
    image.extend_from_slice(name.as_bytes());
    let before = inferloop::time::now_secs();
    let (status, body, _) = send_png(&app, "/api/ab/predict", &image, &token).await;
    assert_eq!(status, 200, "{body}");
    let id = body["prediction_id"].as_str().unwrap();
    let record = predictions().await.get(id).await.unwrap().expect("stored");
    let pre = preprocess_bytes(&image).unwrap();
    assert_eq!(record.username, name);
    assert_eq!(record.route, "ab");
    assert_eq!(Some(record.line.as_str()), body["ab_version"].as_str());
    assert_eq!(record.ab_arm.as_deref(), Some(record.line.as_str()));
    assert_eq!(record.experiment.as_deref(), Some("lines-v1-v2"));
    assert_eq!(record.model_version, body["model"]["version"]);
    assert_eq!(record.digit, body["prediction"]);
    assert_eq!(record.input_sha256, hex::encode(Sha256::digest(&image)));
    assert_eq!(record.input, pre.input_bytes());
    assert_eq!(record.features.input.raw_width, pre.features.raw_width);
    assert_eq!(record.features.input.raw_height, pre.features.raw_height);
    assert!((record.features.input.input_mean - pre.features.input_mean).abs() < 1e-6);
    assert_eq!(record.features.predicted_digit, record.digit);
    assert!((record.features.top_probability - record.probability).abs() < 1e-6);
    assert!(record.features.entropy >= 0.0 && record.features.entropy <= 10f32.ln() + 1e-4);
    assert!(record.latency_ms >= 0.0);
    let ninety_days = 90 * 86_400;
    assert!((before + ninety_days..before + ninety_days + 120).contains(&record.expires_at));
    assert_eq!(record.hour(), &record.created_at[..13]);

    let entries = audit_entries_where("actor", &name).await;
    assert_eq!(entries.len(), 1, "one audit entry per prediction");
    assert_eq!(attr(&entries[0], "action"), "predict");
    assert!(attr(&entries[0], "details").contains(id));
}

/// What is wrong, the content type, the body, and the status and code expected.
type BadUpload = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_uploads_get_a_clear_4xx_and_nothing_is_stored() {
    let app = predict_app().await;
    let (name, token) = user().await;
    let (good, _) = png_digit(5);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    // A BMP header announcing 20 000 × 20 000 pixels and no pixels: refused from the
    // header, before any allocation.
    let mut bomb = b"BM".to_vec();
    for field in [54u32, 0, 54, 40, 20_000, 20_000] {
        bomb.extend_from_slice(&field.to_le_bytes());
    }
    bomb.extend_from_slice(&1u16.to_le_bytes());
    bomb.extend_from_slice(&24u16.to_le_bytes());
    bomb.extend_from_slice(&[0u8; 24]);
    let blank = encode(
        &image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(64, 64, image::Luma([255]))),
        image::ImageFormat::Png,
    );
    let cases: Vec<BadUpload> = vec![
        ("no body", Some("image/png"), vec![], 400, "missing_body"),
        (
            "text",
            Some("text/plain"),
            b"seven".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            None,
            good.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "not an image",
            Some("image/png"),
            b"this is not a picture".to_vec(),
            422,
            "invalid_image",
        ),
        (
            "truncated",
            Some("image/png"),
            truncated,
            422,
            "invalid_image",
        ),
        ("bomb", Some("image/bmp"), bomb, 413, "payload_too_large"),
        ("blank", Some("image/png"), blank, 422, "no_digit"),
        (
            "too big",
            Some("image/png"),
            vec![0u8; 6 * 1024 * 1024 + 1],
            413,
            "payload_too_large",
        ),
        (
            "multipart without file",
            Some("multipart/form-data; boundary=b"),
            multipart_body("b", "picture", &good),
            422,
            "missing_file",
        ),
        (
            "json without image",
            Some("application/json"),
            br#"{"picture":"AAAA"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "bad base64",
            Some("application/json"),
            br#"{"image":"%%%"}"#.to_vec(),
            422,
            "invalid_base64",
        ),
        (
            "broken json",
            Some("application/json"),
            b"{\"image\":".to_vec(),
            400,
            "malformed_json",
        ),
    ];
    for (what, content_type, body, status, code) in cases {
        let (got, answer, _) = call_predict(
            &app,
            upload("/api/v2/predict", content_type, body, Some(&token)),
        )
        .await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}");
        assert!(answer["error"]["request_id"].is_string(), "{what}");
    }
    assert_eq!(
        stored_for(&name).await,
        0,
        "a refused upload leaves nothing behind"
    );
    assert!(audit_entries_where("actor", &name).await.is_empty());
}

#[tokio::test]
async fn tokens_and_routes_are_checked() {
    let app = predict_app().await;
    let (image, _) = png_digit(6);
    let (status, body, _) = call_predict(
        &app,
        upload("/api/v2/predict", Some("image/png"), image.clone(), None),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_token"))
    );
    let (status, _, _) = call_predict(
        &app,
        upload(
            "/api/v2/predict",
            Some("image/png"),
            image.clone(),
            Some("not.a.token"),
        ),
    )
    .await;
    assert_eq!(status, 401);
    let (_, token) = user().await;
    let (status, _, _) = send_png(&app, "/api/v3/predict", &image, &token).await;
    assert_eq!(status, 404);
    let (status, _, _) =
        call_predict(&app, request("GET", "/api/v2/predict", None, Some(&token))).await;
    assert_eq!(status, 405);
    let (status, _, _) = call_predict(&app, request("POST", "/health", None, None)).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn ab_assignment_is_sticky_per_user() {
    let app = predict_app().await;
    let mut arms = std::collections::BTreeSet::new();
    for u in 0..12 {
        let (name, token) = user().await;
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..3 {
            let (image, _) = png_digit(20 + u * 3 + n);
            let (status, body, _) = send_png(&app, "/api/ab/predict", &image, &token).await;
            assert_eq!(status, 200, "{body}");
            seen.insert(body["ab_version"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 1, "{name} saw {seen:?}");
        arms.extend(seen);
    }
    // 12 users at 50 %: all on one arm has probability 2·0.5¹² ≈ 0.05 %.
    assert_eq!(arms.len(), 2, "both arms are used: {arms:?}");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_per_line() {
    let app = predict_app_with(|s| s.rate_limit_per_hour = 3, stack_cache()).await;
    let (_, token) = user().await;
    let (image, _) = png_digit(7);
    for _ in 0..3 {
        let (status, body, _) = send_png(&app, "/api/v1/predict", &image, &token).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body, response) = send_png(&app, "/api/v1/predict", &image, &token).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    // The limit is per line: v2 is still open to the same user.
    let (status, _, _) = send_png(&app, "/api/v2/predict", &image, &token).await;
    assert_eq!(status, 200);
}

/// Nothing listens on port 1: connection refused at once.
fn dead_redis() -> Cache {
    Cache::new("redis://127.0.0.1:1", inferloop::cache::DEFAULT_TIMEOUT).unwrap()
}

#[tokio::test]
async fn without_redis_predictions_still_work_and_the_limit_fails_open() {
    let app = predict_app_with(|s| s.rate_limit_per_hour = 1, dead_redis()).await;
    let (name, token) = user().await;
    let (image, _) = png_digit(8);
    for _ in 0..3 {
        let (status, body, _) = send_png(&app, "/api/v2/predict", &image, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["cached"], false);
    }
    assert_eq!(stored_for(&name).await, 3);
    let (status, health, _) = call_predict(&app, request("GET", "/health", None, None)).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["dependencies"]["cache"], false);
    assert_eq!(health["dependencies"]["model"], true);
}

#[tokio::test]
async fn a_redis_that_never_answers_does_not_hold_predict_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let silent = Cache::new(
        &format!("redis://{addr}"),
        inferloop::cache::DEFAULT_TIMEOUT,
    )
    .unwrap();
    let app = predict_app_with(|_| {}, silent).await;
    let (_, token) = user().await;
    let (image, _) = png_digit(9);
    // A guard against a hang, not a timing assertion.
    let (status, body, _) = tokio::time::timeout(
        Duration::from_secs(20),
        send_png(&app, "/api/v2/predict", &image, &token),
    )
    .await
    .expect("predict answers although Redis does not");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cached"], false);
}

#[tokio::test]
async fn health_reports_each_dependency() {
    let app = predict_app().await;
    let (status, body, _) = call_predict(&app, request("GET", "/health", None, None)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["service"], "inferloop-predict");
    assert_eq!(
        body["dependencies"],
        json!({"database": true, "cache": true, "model": true})
    );
    assert!(body["uptime_seconds"].is_u64());
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(body["details"]["models"]["v2"], "v2.0");
}

// ---- the registry: publishing, promotion, integrity -------------------------------

async fn registry_clients() -> (ModelStore, aws_sdk_s3::Client, String) {
    let sdk = inferloop::aws::sdk_config().await;
    (
        ModelStore::new(inferloop::aws::dynamodb(&sdk), stack_var("MODELS_TABLE")),
        inferloop::aws::s3(&sdk),
        stack_var("MODELS_BUCKET"),
    )
}

fn shipped(line: &str) -> Artifacts {
    Artifacts::read_dir(&root().join("models").join(line)).expect("shipped artifacts")
}

/// A model name of this test's own, with the shipped lines published and promoted
/// (v2 the default), so changing its pointer cannot disturb other tests.
async fn private_registry() -> String {
    let name = format!("mnist-{}", ulid::Ulid::new().to_string().to_lowercase());
    let (store, s3, bucket) = registry_clients().await;
    for line in ["v1", "v2"] {
        let (version, published) =
            registry::publish(&store, &s3, &bucket, &name, &shipped(line), "t")
                .await
                .unwrap();
        assert_eq!(published, Published::Registered);
        store
            .promote(
                &name,
                &version,
                line == "v2",
                &Promotion::published("test", inferloop::time::now_rfc3339()),
            )
            .await
            .unwrap();
    }
    name
}

#[tokio::test]
async fn every_pointer_change_is_kept_and_says_which_version_served_when() {
    let name = private_registry().await;
    let (store, _, _) = registry_clients().await;
    let published = store.history(&name, Some("v2")).await.unwrap();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        (published[0].from.as_deref(), published[0].to.as_str()),
        (None, "v2.0")
    );
    assert_eq!(published[0].kind, ChangeKind::Published);
    assert_eq!(store.history(&name, None).await.unwrap().len(), 2);

    // A retrained candidate of line v2, registered in staging, promoted by the gate.
    let parent = store.get_version(&name, "v2.0").await.unwrap().unwrap();
    let candidate = ModelVersion {
        version: "v2.1".into(),
        stage: Stage::Staging,
        parent: Some("v2.0".into()),
        ..parent.clone()
    };
    store.put_version(&candidate).await.unwrap();
    let before_promotion = inferloop::time::now_rfc3339();
    let gated = Promotion {
        actor: "admin-1".into(),
        reason: "retrained on feedback".into(),
        kind: ChangeKind::Gated,
        gate_report_sha256: Some("ab".repeat(32)),
        at: inferloop::time::now_rfc3339(),
    };
    let (pointer, change) = store
        .promote(&name, &candidate, false, &gated)
        .await
        .unwrap()
        .expect("a change");
    assert_eq!(pointer.version_of("v2"), Some("v2.1"));
    assert_eq!(
        pointer.default_line.as_deref(),
        Some("v2"),
        "the default line kept"
    );
    assert_eq!(
        (change.from.as_deref(), change.to.as_str()),
        (Some("v2.0"), "v2.1")
    );
    // Promoting what already serves changes nothing and records nothing.
    assert_eq!(
        store
            .promote(&name, &candidate, false, &gated)
            .await
            .unwrap(),
        None
    );

    let history = store.history(&name, Some("v2")).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], change, "newest first");
    assert_eq!(
        history[0].gate_report_sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    let served = |at: String| {
        let store = &store;
        let name = &name;
        async move {
            store
                .served_at(name, "v2", &at)
                .await
                .unwrap()
                .map(|change| change.to)
        }
    };
    assert_eq!(served(before_promotion).await.as_deref(), Some("v2.0"));
    assert_eq!(served(change.at.clone()).await.as_deref(), Some("v2.1"));
    assert_eq!(
        served(inferloop::time::now_rfc3339()).await.as_deref(),
        Some("v2.1")
    );
    assert_eq!(served("2001-01-01T00:00:00.000000Z".into()).await, None);

    let stages = |versions: Vec<ModelVersion>| {
        versions
            .into_iter()
            .map(|v| (v.version, v.stage))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stages(store.versions(&name).await.unwrap()),
        [
            ("v1.0".to_string(), Stage::Production),
            ("v2.0".to_string(), Stage::Archived),
            ("v2.1".to_string(), Stage::Production),
        ]
    );

    // A rollback returns to the version that served before, and is itself recorded.
    let target = rollback_target(&history, "v2.1").expect("a previous version");
    assert_eq!(target, "v2.0");
    let previous = store.get_version(&name, target).await.unwrap().unwrap();
    let rollback = Promotion {
        actor: "admin-2".into(),
        reason: "v2.1 misreads sevens".into(),
        kind: ChangeKind::Rollback,
        gate_report_sha256: None,
        at: inferloop::time::now_rfc3339(),
    };
    store
        .promote(&name, &previous, false, &rollback)
        .await
        .unwrap()
        .unwrap();
    let history = store.history(&name, None).await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(
        (
            history[0].kind,
            history[0].from.as_deref(),
            history[0].to.as_str()
        ),
        (ChangeKind::Rollback, Some("v2.1"), "v2.0")
    );
    assert_eq!(history[0].actor, "admin-2");
    assert_eq!(
        stages(store.versions(&name).await.unwrap())[1..],
        [
            ("v2.0".to_string(), Stage::Production),
            ("v2.1".to_string(), Stage::Archived),
        ]
    );
    // Line v1 was never touched; its history is its publication alone.
    assert_eq!(store.history(&name, Some("v1")).await.unwrap().len(), 1);
}

#[tokio::test]
async fn publishing_is_idempotent_and_refuses_other_bytes_under_a_version() {
    let name = private_registry().await;
    let (store, s3, bucket) = registry_clients().await;
    let (_, again) = registry::publish(&store, &s3, &bucket, &name, &shipped("v2"), "t")
        .await
        .unwrap();
    assert_eq!(again, Published::AlreadyRegistered);

    // What predict will load: the NNEF form of the shipped ONNX, under its recorded sha256.
    let entry = store.get_version(&name, "v2.0").await.unwrap().unwrap();
    let served = s3
        .get_object()
        .bucket(&bucket)
        .key(format!("models/{name}/v2.0/{}", registry::SERVING_FILE))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(served, onnx_to_nnef(&shipped("v2").onnx).unwrap());
    assert_eq!(
        entry.serving_sha256,
        Some(hex::encode(Sha256::digest(&served)))
    );
    assert_eq!(
        entry.sha256,
        hex::encode(Sha256::digest(&shipped("v2").onnx))
    );

    // v1's bytes with v2's manifest: the manifest's sha256 does not match.
    let mut forged = shipped("v2");
    forged.onnx = shipped("v1").onnx;
    assert!(matches!(
        registry::publish(&store, &s3, &bucket, &name, &forged, "t").await,
        Err(RegistryError::InvalidArtifacts(_))
    ));
    // A consistent manifest, but another file under an existing version.
    let mut manifest: Value = serde_json::from_slice(&shipped("v2").manifest).unwrap();
    manifest["sha256"] = json!(hex::encode(Sha256::digest(&forged.onnx)));
    forged.manifest = manifest.to_string().into_bytes();
    assert!(matches!(
        registry::publish(&store, &s3, &bucket, &name, &forged, "t").await,
        Err(RegistryError::Store(StoreError::Conflict))
    ));
    let v2 = store.get_version(&name, "v2.0").await.unwrap().unwrap();
    assert_eq!(v2.stage, inferloop::store::models::Stage::Production);
    assert!((v2.accuracy - 0.9835).abs() < 0.001);
}

#[tokio::test]
async fn a_promotion_reaches_a_running_function_without_a_redeploy() {
    let name = private_registry().await;
    let app = predict_app_with(
        |s| {
            s.model_name = name.clone();
            s.pointer_ttl = Duration::ZERO;
        },
        stack_cache(),
    )
    .await;
    let (_, token) = user().await;
    let (image, _) = png_digit(10);
    let send = || upload("/predict", Some("image/png"), image.clone(), Some(&token));
    let (status, body, _) = call_predict(&app, send()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"]["version"], "v2.0");

    // Promote v1 as the default line: the next request serves it, and the cache key
    // (which names the version) does not hand back v2's answer.
    let (store, _, _) = registry_clients().await;
    let v1 = store.get_version(&name, "v1.0").await.unwrap().unwrap();
    store
        .promote(
            &name,
            &v1,
            true,
            &Promotion::published("test", inferloop::time::now_rfc3339()),
        )
        .await
        .unwrap();
    let (status, body, _) = call_predict(&app, send()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"]["version"], "v1.0");
    assert_eq!(body["variant"], "v1");
    assert_eq!(body["cached"], false);

    // With the production TTL (a minute) the same change is not seen at once: the
    // pointer is re-read at most once per TTL.
    let cached = predict_app_with(
        |s| {
            s.model_name = name.clone();
        },
        stack_cache(),
    )
    .await;
    let (_, body, _) = call_predict(&cached, send()).await;
    assert_eq!(body["model"]["version"], "v1.0");
    let v2 = store.get_version(&name, "v2.0").await.unwrap().unwrap();
    store
        .promote(
            &name,
            &v2,
            true,
            &Promotion::published("test", inferloop::time::now_rfc3339()),
        )
        .await
        .unwrap();
    let (_, body, _) = call_predict(&cached, send()).await;
    assert_eq!(
        body["model"]["version"], "v1.0",
        "re-read at most once a minute"
    );
}

#[tokio::test]
async fn a_version_registered_without_its_served_form_is_refused_until_published_again() {
    let name = private_registry().await;
    let (store, s3, bucket) = registry_clients().await;
    // As a registration from before predict served NNEF looks: no serving_sha256.
    update_v2_item(&name, "REMOVE serving_sha256", None).await;
    let (status, body) = v2_answer_of_a_new_container(&name).await;
    assert_eq!(status, 503, "{body}");

    let (entry, published) = registry::publish(&store, &s3, &bucket, &name, &shipped("v2"), "t")
        .await
        .unwrap();
    assert_eq!(published, Published::ServingUpdated);
    assert!(entry.serving_sha256.is_some());
    assert_eq!(
        store.get_version(&name, "v2.0").await.unwrap().unwrap(),
        entry
    );
    // A container that refused it retries at its next pointer refresh; a new one serves it.
    let (status, body) = v2_answer_of_a_new_container(&name).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"]["version"], "v2.0");
}

/// Changes the private registry's v2.0 item behind the registry's back.
async fn update_v2_item(name: &str, expression: &str, value: Option<AttributeValue>) {
    dynamodb()
        .await
        .update_item()
        .table_name(stack_var("MODELS_TABLE"))
        .key("name", AttributeValue::S(name.to_owned()))
        .key("version", AttributeValue::S("v2.0".into()))
        .update_expression(expression)
        .set_expression_attribute_values(value.map(|v| [(":v".to_owned(), v)].into()))
        .send()
        .await
        .unwrap();
}

/// What a predict container started now on the registry `name` answers to a v2 request.
async fn v2_answer_of_a_new_container(name: &str) -> (u16, serde_json::Value) {
    let (_, token) = user().await;
    let (image, _) = png_digit(12);
    let app = predict_app_with(|s| s.model_name = name.to_owned(), stack_cache()).await;
    let (status, body, _) = send_png(&app, "/api/v2/predict", &image, &token).await;
    (status, body)
}

#[tokio::test]
async fn a_version_whose_item_names_another_prefix_is_served_from_there() {
    // predict fetches the served file from the usual prefix while it reads the registry
    // item; when the item names another prefix, the file there is the one served.
    let name = private_registry().await;
    let (_, s3, bucket) = registry_clients().await;
    let usual = format!("models/{name}/v2.0/{}", registry::SERVING_FILE);
    let elsewhere = format!("archive/{name}/v2.0/");
    s3.copy_object()
        .bucket(&bucket)
        .copy_source(format!("{bucket}/{usual}"))
        .key(format!("{elsewhere}{}", registry::SERVING_FILE))
        .send()
        .await
        .unwrap();
    // The usual place now holds other bytes (v1's model): serving them would be wrong.
    s3.put_object()
        .bucket(&bucket)
        .key(&usual)
        .body(onnx_to_nnef(&shipped("v1").onnx).unwrap().into())
        .send()
        .await
        .unwrap();
    update_v2_item(
        &name,
        "SET artifact_prefix = :v",
        Some(AttributeValue::S(elsewhere)),
    )
    .await;
    let (status, body) = v2_answer_of_a_new_container(&name).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"]["version"], "v2.0");
}

#[tokio::test]
async fn a_model_file_that_does_not_match_its_sha256_is_never_served() {
    let name = private_registry().await;
    let (_, s3, bucket) = registry_clients().await;
    // Overwrite v2's served file with v1's (a valid model, the wrong bytes), after
    // registration.
    s3.put_object()
        .bucket(&bucket)
        .key(format!("models/{name}/v2.0/{}", registry::SERVING_FILE))
        .body(onnx_to_nnef(&shipped("v1").onnx).unwrap().into())
        .send()
        .await
        .unwrap();
    let app = predict_app_with(|s| s.model_name = name.clone(), stack_cache()).await;
    let (user_name, token) = user().await;
    let (image, _) = png_digit(11);
    let (status, body, _) = send_png(&app, "/api/v2/predict", &image, &token).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "dependency_unavailable");
    assert!(
        !body.to_string().contains("sha256"),
        "no detail leaks: {body}"
    );
    assert_eq!(stored_for(&user_name).await, 0);
    // v1 is intact and still served; health says the production model is not.
    let (status, _, _) = send_png(&app, "/api/v1/predict", &image, &token).await;
    assert_eq!(status, 200);
    let (status, health, _) = call_predict(&app, request("GET", "/health", None, None)).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["dependencies"]["model"], false);
}

#[tokio::test]
async fn a_model_name_without_production_is_a_503_not_a_panic() {
    let app = predict_app_with(
        |s| s.model_name = format!("absent-{}", ulid::Ulid::new()),
        stack_cache(),
    )
    .await;
    let (_, token) = user().await;
    let (image, _) = png_digit(12);
    for path in PATHS {
        let (status, body, _) = send_png(&app, path, &image, &token).await;
        assert_eq!(status, 503, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_cache_stores_expires_and_counts_in_redis() {
    let cache = stack_cache();
    let key = format!("test:{}", ulid::Ulid::new());
    assert_eq!(cache.get(&key).await, None);
    assert!(cache.set(&key, "v", Duration::from_secs(60)).await);
    assert_eq!(cache.get(&key).await.as_deref(), Some("v"));
    assert_eq!(
        cache.status().await,
        inferloop::cache::CacheStatus::Available
    );
    let counter = format!("test-count:{}", ulid::Ulid::new());
    for expected in 1..=3 {
        assert_eq!(
            cache.increment(&counter, Duration::from_secs(60)).await,
            Some(expected)
        );
    }
}

#[tokio::test]
async fn the_sample_events_are_served() {
    let app = predict_app().await;
    let (_, token) = user().await;
    let root = root().join("events");
    for name in [
        "predict-v1.json",
        "predict-v2-json.json",
        "predict-v2-multipart.json",
        "predict-ab.json",
        "predict-production.json",
        "health.json",
    ] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let text = text.replace("REPLACE_WITH_TOKEN", &token);
        let req = lambda_http::request::from_str(&text).expect("an API Gateway v2 event");
        let response = predict::handle(&app, req).await.unwrap();
        let body = json_of(&response);
        assert_eq!(response.status(), 200, "{name}: {body}");
        if name != "health.json" {
            // The sample image is a hand-drawn 7.
            assert_eq!(body["prediction"], 7, "{name}: {body}");
        }
    }
}
