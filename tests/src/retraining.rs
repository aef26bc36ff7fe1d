//! What the retrain tests and `cargo xtask bench loop` share: models of their own
//! registered at a chosen time, whole-hour windows, the scheduled check's stored
//! report, the retrain function's answers, and a model's share right on a set of photos.

use crate::traffic::Photo;
use crate::{json_of, root, stack_var};
use inferloop::model::infer::{Model, onnx_to_nnef};
use inferloop::model::registry::{self, Artifacts};
use inferloop::store::models::{ModelStore, ModelVersion, Promotion};
use serde_json::Value;
use time::OffsetDateTime;

/// A model of the caller's own, the shipped `lines` published at `at` and promoted (the
/// default line v2 when it is among them, else the first). The drift check captures a production
/// reference from a version's predictions after its registration, so a check over past
/// windows needs versions registered before them.
pub async fn model_registered_at(lines: &[&str], at: &str) -> String {
    let name = format!("mnist-{}", ulid::Ulid::new().to_string().to_lowercase());
    let sdk = inferloop::aws::sdk_config().await;
    let store = ModelStore::new(inferloop::aws::dynamodb(&sdk), stack_var("MODELS_TABLE"));
    let s3 = inferloop::aws::s3(&sdk);
    for &line in lines {
        let artifacts = Artifacts::read_dir(&root().join("models").join(line))
            .expect("the shipped model's artifacts");
        let (version, _) = registry::publish(
            &store,
            &s3,
            &stack_var("MODELS_BUCKET"),
            &name,
            &artifacts,
            at,
        )
        .await
        .expect("publish a shipped model");
        store
            .promote(
                &name,
                &version,
                line == "v2" || (line == lines[0] && !lines.contains(&"v2")),
                &Promotion::published("test", inferloop::time::now_rfc3339()),
            )
            .await
            .expect("promote it");
    }
    name
}

/// The start of the hour `hours_ago` hours back (UTC): windows lie in the past, whole.
pub fn hour_start(hours_ago: i64) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - time::Duration::hours(hours_ago);
    now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("an hour's start"))
}

/// The scheduled check as EventBridge invokes it at `at`: the report it stored for `line`.
pub async fn scheduled_report(
    app: &drift::App,
    name: &str,
    line: &str,
    at: OffsetDateTime,
) -> Value {
    let result = drift::scheduled(app, at)
        .await
        .expect("the scheduled check");
    let checked = result["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["line"] == line))
        .unwrap_or_else(|| panic!("the check did not look at {line}: {result}"));
    let run_key = format!(
        "{}#{}",
        inferloop::time::format_timestamp(at),
        checked["run_id"].as_str().expect("the run's id")
    );
    app.runs
        .get(&format!("{name}#{line}"), &run_key)
        .await
        .expect("read the run")
        .expect("the run is stored")
        .report
}

/// The retrain function's answer to `req`, as JSON.
pub async fn call_retrain(app: &retrain::App, req: lambda_http::Request) -> (u16, Value) {
    let response = retrain::handle(app, req).await.expect("infallible");
    (response.status().as_u16(), json_of(&response))
}

/// The share of `photos` `model` reads as their true digit.
pub fn share_right(model: &Model, photos: &[Photo]) -> f64 {
    let right = photos
        .iter()
        .filter(|photo| {
            let input: [f32; 784] = std::array::from_fn(|i| f32::from(photo.input[i]) / 255.0);
            model
                .predict(&input)
                .expect("the model reads a photo")
                .digit
                == photo.true_label
        })
        .count();
    right as f64 / photos.len() as f64
}

/// A registered version's model, read from its artifacts in the stack's bucket and
/// loaded as predict serves it (NNEF).
pub async fn registered_model(version: &ModelVersion) -> Model {
    let sdk = inferloop::aws::sdk_config().await;
    let onnx = inferloop::aws::s3(&sdk)
        .get_object()
        .bucket(stack_var("MODELS_BUCKET"))
        .key(format!("{}model.onnx", version.artifact_prefix))
        .send()
        .await
        .expect("the version's model.onnx")
        .body
        .collect()
        .await
        .expect("its bytes")
        .into_bytes();
    Model::load(&onnx_to_nnef(&onnx).expect("ONNX to NNEF")).expect("the model loads")
}
