//! The retrain function against the local stack: a request queues a job (202) and locks
//! its line (a second is a 409 naming the first), the job reads back with its steps;
//! the registry routes list versions, every pointer change, which version served when,
//! and roll a line back.
//! And a run end to end, through the jobs queue as in AWS: noisy photos v1 misreads,
//! corrected by feedback, are learnt; the candidate is registered as `staging` with its
//! parent, data counts and gate report.

use inferloop::domain::Role;
use inferloop::model::dataset::Split;
use inferloop::model::infer::{Model, onnx_to_nnef};
use inferloop::model::registry::{self, Artifacts};
use inferloop::store::models::{ModelStore, ModelVersion, Promotion, Stage};
use integration_tests::traffic::{self, Photo, Shift};
use integration_tests::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn call_retrain(app: &retrain::App, req: lambda_http::Request) -> (u16, Value) {
    let response = retrain::handle(app, req).await.expect("infallible");
    (response.status().as_u16(), json_of(&response))
}

/// A model of the test's own, the shipped lines published and promoted.
async fn private_model() -> String {
    private_model_of(&["v1", "v2"]).await
}

/// A model of the test's own, the shipped `lines` published and promoted.
async fn private_model_of(lines: &[&str]) -> String {
    let name = format!("mnist-{}", ulid::Ulid::new().to_string().to_lowercase());
    let sdk = inferloop::aws::sdk_config().await;
    let store = ModelStore::new(inferloop::aws::dynamodb(&sdk), stack_var("MODELS_TABLE"));
    let s3 = inferloop::aws::s3(&sdk);
    for &line in lines {
        let artifacts = Artifacts::read_dir(&root().join("models").join(line)).unwrap();
        let (version, _) = registry::publish(
            &store,
            &s3,
            &stack_var("MODELS_BUCKET"),
            &name,
            &artifacts,
            &inferloop::time::now_rfc3339(),
        )
        .await
        .unwrap();
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
async fn a_request_queues_one_job_per_line_and_reads_back() {
    // v1 only: the job this test queues really runs (through the queue, under watch),
    // and v1 is the cheap line to train.
    let name = private_model_of(&["v1"]).await;
    let app = retrain_app(&name).await;
    let admin = token_for(&unique_username("retrainer"), Role::Admin).await;
    let body = json!({"line": "v1", "reason": "feedback says sevens", "epochs": 1}).to_string();
    let (status, first) = call_retrain(
        &app,
        request("POST", "/admin/retrain", Some(&body), Some(&admin)),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    let job_id = first["job_id"].as_str().unwrap().to_owned();
    // The seed's path, the same line: refused while the first is queued or running.
    let (status, second) = call_retrain(
        &app,
        request("POST", "/admin/retrain_mlflow", Some(&body), Some(&admin)),
    )
    .await;
    assert_eq!(status, 409, "{second}");
    assert!(
        second["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&job_id),
        "{second}"
    );
    // A line with nothing in production has nothing to start from: refused at once,
    // not queued to fail.
    let other = json!({"line": "v2", "reason": "r", "epochs": 1}).to_string();
    let (status, refused) = call_retrain(
        &app,
        request("POST", "/admin/retrain", Some(&other), Some(&admin)),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no production version"),
        "{refused}"
    );
    let (status, job) = call_retrain(
        &app,
        request(
            "GET",
            &format!("/admin/retrain/{job_id}"),
            None,
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["line"], "v1");
    assert_eq!(job["epochs"], 1);
    assert_eq!(job["steps"][0]["step"], "queued");
    // A user is no admin; bad input names its field.
    let user = token_for(&unique_username("retrain-user"), Role::User).await;
    let (status, _) = call_retrain(
        &app,
        request("POST", "/admin/retrain", Some(&body), Some(&user)),
    )
    .await;
    assert_eq!(status, 403);
    let (status, bad) = call_retrain(
        &app,
        request(
            "POST",
            "/admin/retrain",
            Some(r#"{"line": "v3", "reason": "r"}"#),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("line"));
    let (status, _) = call_retrain(
        &app,
        request("GET", "/admin/retrain/01JNOSUCHJOB", None, Some(&admin)),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_registry_routes_list_history_and_roll_back() {
    let name = private_model().await;
    let app = retrain_app(&name).await;
    let admin = token_for(&unique_username("registrar"), Role::Admin).await;
    // A second v1 version, promoted, so there is something to roll back to.
    let v1 = app
        .models
        .get_version(&name, "v1.0")
        .await
        .unwrap()
        .unwrap();
    let next = ModelVersion {
        version: "v1.1".into(),
        stage: Stage::Staging,
        parent: Some("v1.0".into()),
        ..v1
    };
    app.models.put_version(&next).await.unwrap();
    let promotion = Promotion {
        kind: inferloop::store::models::ChangeKind::Forced,
        ..Promotion::published("test", inferloop::time::now_rfc3339())
    };
    app.models
        .promote(&name, &next, false, &promotion)
        .await
        .unwrap()
        .unwrap();

    let get = |path: String| request("GET", &path, None, Some(&admin));
    let (status, versions) = call_retrain(&app, get(format!("/models/{name}/versions"))).await;
    assert_eq!(status, 200, "{versions}");
    let stages: Vec<(String, String)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().into(),
                v["stage"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        stages.contains(&("v1.0".into(), "archived".into())),
        "{stages:?}"
    );
    assert!(
        stages.contains(&("v1.1".into(), "production".into())),
        "{stages:?}"
    );
    let (status, _) = call_retrain(&app, get("/models/someone-else/versions".into())).await;
    assert_eq!(status, 404);

    let (status, history) = call_retrain(
        &app,
        get(format!("/models/{name}/history?line=v1&at=2001-01-01")),
    )
    .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["changes"].as_array().unwrap().len(), 2);
    assert_eq!(history["served"], Value::Null, "nothing served in 2001");
    let (_, now) = call_retrain(
        &app,
        get(format!(
            "/models/{name}/history?line=v1&at={}",
            inferloop::time::now_rfc3339()
        )),
    )
    .await;
    assert_eq!(now["served"], "v1.1", "{now}");

    let rollback = |version: &str, body: &str| {
        request(
            "POST",
            &format!("/models/{name}/versions/{version}/rollback"),
            Some(body),
            Some(&admin),
        )
    };
    // Only the production version can be rolled back.
    let (status, refused) = call_retrain(&app, rollback("v1.0", r#"{"reason": "r"}"#)).await;
    assert_eq!(status, 409, "{refused}");
    let (status, done) = call_retrain(
        &app,
        rollback("v1.1", r#"{"reason": "v1.1 misreads sevens"}"#),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["production"]["v1"], "v1.0");
    assert_eq!(done["change"]["kind"], "rollback");
    // v1.0 was the line's first: nothing before it.
    let (status, _) = call_retrain(&app, rollback("v1.0", r#"{"reason": "r"}"#)).await;
    assert_eq!(status, 409);
}

/// How long a run may take here before the test says it never finished: a v1 epoch over
/// 8,000 images in a debug build, with the other tests running beside it.
const RUN_DEADLINE: Duration = Duration::from_secs(15 * 60);

fn share_right(model: &Model, photos: &[Photo]) -> f64 {
    let right = photos
        .iter()
        .filter(|photo| {
            let input: [f32; 784] = std::array::from_fn(|i| f32::from(photo.input[i]) / 255.0);
            model.predict(&input).unwrap().digit == photo.true_label
        })
        .count();
    right as f64 / photos.len() as f64
}

#[tokio::test]
async fn a_run_learns_the_corrected_feedback_and_registers_a_staging_version() {
    let name = private_model().await;
    let app = retrain_app(&name).await;
    let admin = token_for(&unique_username("retrain-e2e"), Role::Admin).await;
    // Photos with heavy noise, which v1 mostly misreads, predicted and corrected: from
    // the train split, so the base test split stays unseen.
    let parent = traffic::shipped_model("v1");
    let noise = Shift::Noise(25.0);
    let positions: Vec<usize> = (0..250).collect();
    let seen = traffic::shifted_photos_of(Split::Train, &parent, &positions, 41, noise);
    let predictions = inferloop::store::predictions::PredictionStore::new(
        dynamodb().await,
        stack_var("PREDICTIONS_TABLE"),
    );
    let refs: Vec<&Photo> = seen.iter().collect();
    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let ids = traffic::store(&predictions, &name, "v1.0", "v1", &refs, start).await;
    let feedback = feedback_app().await;
    for (id, photo) in ids.iter().zip(&seen) {
        let right = photo.features.predicted_digit == photo.true_label;
        let body = json!({"prediction_id": id, "correct": right, "true_label": photo.true_label});
        let req = request("POST", "/feedback", Some(&body.to_string()), Some(&admin));
        let response = feedback::handle(&feedback, req).await.unwrap();
        assert_eq!(response.status().as_u16(), 201, "{}", json_of(&response));
    }

    let body = json!({"line": "v1", "reason": "noisy photos", "epochs": 1, "seed": 5});
    let (status, queued) = call_retrain(
        &app,
        request(
            "POST",
            "/admin/retrain",
            Some(&body.to_string()),
            Some(&admin),
        ),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let job_id = queued["job_id"].as_str().unwrap().to_owned();
    // The queue's message reaches the worker as Lambda's event source mapping hands it.
    let started = Instant::now();
    let job = loop {
        let (status, job) = call_retrain(
            &app,
            request(
                "GET",
                &format!("/admin/retrain/{job_id}"),
                None,
                Some(&admin),
            ),
        )
        .await;
        assert_eq!(status, 200, "{job}");
        match job["status"].as_str().unwrap() {
            "succeeded" => break job,
            "queued" | "running" => {}
            other => panic!("the job ended {other}: {job}"),
        }
        assert!(
            started.elapsed() < RUN_DEADLINE,
            "the job did not finish in {RUN_DEADLINE:?}: {job}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let steps: Vec<&str> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    for step in ["queued", "parent", "data", "trained", "gate", "registered"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    let version = job["version"]
        .as_str()
        .expect("the registered version")
        .to_owned();
    let data = &job["result"]["data"];
    let counted =
        data["feedback_trained_on"].as_u64().unwrap() + data["feedback_held_out"].as_u64().unwrap();
    assert!(counted >= 250, "every labelled input counted: {data}");
    assert_eq!(data["train_split"], 7996);

    let registered = app
        .models
        .get_version(&name, &version)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registered.parent.as_deref(), Some("v1.0"));
    let manifest: Value = serde_json::from_str(&registered.manifest_json).unwrap();
    assert_eq!(manifest["retrain"]["job_id"], job_id.as_str());
    assert!(
        manifest["retrain"]["gate"]["rules"].is_array(),
        "{manifest}"
    );
    // Auto-promotion is on by default: a candidate the gate passed serves, one it
    // refused waits in staging; either way the gate's verdict was an alert.
    let pointer = app.models.production(&name).await.unwrap().unwrap();
    let passed = job["result"]["gate"]["passed"].as_bool().unwrap();
    if passed {
        assert_eq!(pointer.version_of("v1"), Some(version.as_str()), "{job}");
        assert_eq!(registered.stage, Stage::Production);
        let history = app.models.history(&name, Some("v1")).await.unwrap();
        let last = history.last().unwrap();
        assert_eq!(last.kind.as_str(), "gated");
        assert_eq!(last.actor, "system:retrain");
    } else {
        assert_eq!(pointer.version_of("v1"), Some("v1.0"), "{job}");
        assert_eq!(registered.stage, Stage::Staging);
    }
    let alerts = scan_where(&stack_var("ALERTS_TABLE"), "run_id", &job_id).await;
    assert_eq!(alerts.len(), 1, "one alert of the gate's verdict");

    // The candidate reads noisy photos it never saw better than its parent.
    let sdk = inferloop::aws::sdk_config().await;
    let onnx = inferloop::aws::s3(&sdk)
        .get_object()
        .bucket(stack_var("MODELS_BUCKET"))
        .key(format!("{}model.onnx", registered.artifact_prefix))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let candidate = Model::load(&onnx_to_nnef(&onnx).unwrap()).unwrap();
    let unseen: Vec<usize> = (0..300).collect();
    let fresh = traffic::shifted_photos_of(Split::Test, &parent, &unseen, 42, noise);
    let (before, after) = (
        share_right(&parent, &fresh),
        share_right(&candidate, &fresh),
    );
    assert!(
        after > before + 0.05,
        "noisy photos read right: {before:.3} by the parent, {after:.3} by the candidate"
    );
}

#[tokio::test]
async fn a_promotion_is_judged_by_the_gate_unless_forced_and_the_settings_are_ranged() {
    let name = private_model().await;
    let app = retrain_app(&name).await;
    let admin = token_for(&unique_username("promoter"), Role::Admin).await;
    // A copy of v1.0 in staging: the same answers everywhere, so never better on the
    // feedback hold-out (the stack's feedback is never empty: this test writes some).
    let feedback = feedback_app().await;
    let predictions = inferloop::store::predictions::PredictionStore::new(
        dynamodb().await,
        stack_var("PREDICTIONS_TABLE"),
    );
    let parent = traffic::shipped_model("v1");
    let photos = traffic::shifted_photos_of(
        Split::Train,
        &parent,
        &(1..=30).collect::<Vec<usize>>(),
        43,
        Shift::None,
    );
    let refs: Vec<&Photo> = photos.iter().collect();
    let ids = traffic::store(
        &predictions,
        &name,
        "v1.0",
        "v1",
        &refs,
        time::OffsetDateTime::now_utc() - time::Duration::hours(1),
    )
    .await;
    for (id, photo) in ids.iter().zip(&photos) {
        let right = photo.features.predicted_digit == photo.true_label;
        let body = json!({"prediction_id": id, "correct": right, "true_label": photo.true_label});
        let req = request("POST", "/feedback", Some(&body.to_string()), Some(&admin));
        let response = feedback::handle(&feedback, req).await.unwrap();
        assert_eq!(response.status().as_u16(), 201, "{}", json_of(&response));
    }
    let v1 = app
        .models
        .get_version(&name, "v1.0")
        .await
        .unwrap()
        .unwrap();
    let copy = ModelVersion {
        version: "v1.2".into(),
        stage: Stage::Staging,
        parent: Some("v1.0".into()),
        ..v1
    };
    app.models.put_version(&copy).await.unwrap();
    let promote = |body: Value| {
        request(
            "POST",
            &format!("/models/{name}/versions/v1.2/promote"),
            Some(&body.to_string()),
            Some(&admin),
        )
    };
    let (status, refused) = call_retrain(&app, promote(json!({"reason": "looks fine"}))).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "gate_failed");
    let pointer = app.models.production(&name).await.unwrap().unwrap();
    assert_eq!(pointer.version_of("v1"), Some("v1.0"));
    let (status, bad) = call_retrain(&app, promote(json!({"reason": " "}))).await;
    assert_eq!(status, 422, "{bad}");

    let (status, forced) = call_retrain(
        &app,
        promote(json!({"reason": "an incident needs it now", "force": true})),
    )
    .await;
    assert_eq!(status, 200, "{forced}");
    assert_eq!(forced["production"]["v1"], "v1.2");
    assert_eq!(forced["change"]["kind"], "forced");
    assert_eq!(forced["gate"], Value::Null, "not judged");
    let (status, again) = call_retrain(&app, promote(json!({"reason": "r", "force": true}))).await;
    assert_eq!(status, 409, "{again}");
    let entries = audit_entries_where("action", "model_promoted").await;
    assert!(
        entries
            .iter()
            .any(|e| attr(e, "details").contains("an incident needs it now")),
        "the forced promotion is audited"
    );

    // The settings the gate and auto-promotion read: defaults, a ranged change, a
    // refused change that writes nothing.
    let config = |method: &str, body: Option<Value>| {
        request(
            method,
            "/auto-retrain/config",
            body.map(|b| b.to_string()).as_deref(),
            Some(&admin),
        )
    };
    let (status, defaults) = call_retrain(&app, config("GET", None)).await;
    assert_eq!(status, 200, "{defaults}");
    assert_eq!(defaults["auto_promote"], true);
    assert_eq!(defaults["gate"]["base_margin_points"], 0.5);
    assert_eq!(defaults["revision"], 0);
    let change = json!({"auto_promote": false, "gate": {"holdout_alpha": 0.01}});
    let (status, changed) = call_retrain(&app, config("PUT", Some(change))).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["auto_promote"], false);
    assert_eq!(changed["gate"]["holdout_alpha"], 0.01);
    assert_eq!(changed["gate"]["confidence"], 0.95);
    assert_eq!(changed["revision"], 1);
    let (status, bad) =
        call_retrain(&app, config("PUT", Some(json!({"cooldown_hours": -2})))).await;
    assert_eq!(status, 422, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cooldown_hours")
    );
    let (_, read) = call_retrain(&app, config("GET", None)).await;
    assert_eq!(read["revision"], 1, "a refused change writes nothing");
}
