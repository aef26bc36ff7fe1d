//! The drift function against the local stack (moto + Redis): scheduled checks over
//! stored production traffic, references, alerts, and every route's bad input.
//!
//! Each test registers a model of its own (the shipped v1, under a fresh name), so its
//! predictions, references, runs and alert state are its own. Traffic is user-like photos
//! of test-split digits read by the shipped v1 model (tests/src/traffic.rs).

use inferloop::domain::Role;
use inferloop::notify::store::AlertStore;
use inferloop::store::models::ModelStore;
use inferloop::store::predictions::PredictionStore;
use integration_tests::retraining::{hour_start, model_registered_at};
use integration_tests::traffic::{self, Photo};
use integration_tests::{
    drift_app, dynamodb, json_of, request, set_auto_retrain, stack_var, token_for, unique_username,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Hours ago the tests' traffic starts: windows lie in the past, so nothing real
/// overlaps them.
const START_HOURS_AGO: i64 = 48;

struct Setup {
    app: drift::App,
    predictions: PredictionStore,
    model: String,
    version: String,
    start: OffsetDateTime,
}

/// A model of this test's own (the shipped v1, registered at `start`), the drift
/// function for it, and settings for hour-long windows over a reference of 200.
async fn setup(settings: Value) -> Setup {
    let start = hour_start(START_HOURS_AGO);
    let model = model_registered_at(&["v1"], &inferloop::time::format_timestamp(start)).await;
    let store = ModelStore::new(dynamodb().await, stack_var("MODELS_TABLE"));
    let version = store
        .production(&model)
        .await
        .expect("read the pointer")
        .and_then(|p| p.version_of("v1").map(str::to_owned))
        .expect("v1 serves");
    let app = drift_app(&model).await;
    let mut body = json!({"reference_size": 200, "detection_window_hours": 1, "min_samples": 100});
    if let (Some(extra), Some(map)) = (settings.as_object(), body.as_object_mut()) {
        map.extend(extra.clone());
    }
    let (status, json) = call(&app, "POST", "/drift/config", Some(&body.to_string())).await;
    assert_eq!(status, 200, "{json}");
    Setup {
        predictions: PredictionStore::new(dynamodb().await, stack_var("PREDICTIONS_TABLE")),
        app,
        model,
        version,
        start,
    }
}

/// Every Alerts item of `fingerprint` (its index), as stored.
async fn alerts_with(
    fingerprint: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    integration_tests::dynamodb()
        .await
        .query()
        .table_name(stack_var("ALERTS_TABLE"))
        .index_name("by_fingerprint")
        .key_condition_expression("fingerprint = :f")
        .expression_attribute_values(
            ":f",
            aws_sdk_dynamodb::types::AttributeValue::S(fingerprint.to_owned()),
        )
        .send()
        .await
        .expect("query the alerts of a fingerprint")
        .items
        .unwrap_or_default()
}

async fn admin() -> String {
    token_for(&unique_username("drift-admin"), Role::Admin).await
}

async fn call(app: &drift::App, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let token = admin().await;
    call_as(app, method, path, body, Some(&token)).await
}

async fn call_as(
    app: &drift::App,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = request(method, path, body, token);
    if body.is_some() {
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
    }
    let response = drift::handle(app, req).await.expect("infallible");
    (response.status().as_u16(), json_of(&response))
}

impl Setup {
    /// Stores `photos` in the hour `hour` after the start.
    async fn traffic(&self, hour: i64, photos: &[&Photo]) {
        traffic::store(
            &self.predictions,
            &self.model,
            &self.version,
            "v1",
            photos,
            self.start + time::Duration::hours(hour),
        )
        .await;
    }

    /// The scheduled check at the end of the hour `hour` after the start.
    async fn check(&self, hour: i64) -> Value {
        let at = self.start + time::Duration::hours(hour + 1) - time::Duration::seconds(1);
        let result = drift::scheduled(&self.app, at)
            .await
            .expect("the scheduled check");
        let line = &result["lines"][0];
        assert_eq!(line["line"], "v1", "{result}");
        let run_key = format!(
            "{}#{}",
            inferloop::time::format_timestamp(at),
            line["run_id"].as_str().unwrap()
        );
        let run = self
            .app
            .runs
            .get(&format!("{}#v1", self.model), &run_key)
            .await
            .unwrap()
            .expect("the run is stored");
        run.report
    }
}

#[tokio::test]
async fn in_distribution_windows_after_a_production_reference_do_not_alarm() {
    let s = setup(json!({})).await;
    let references = traffic::half(true);
    let windows = traffic::half(false);
    s.traffic(0, &traffic::draw(&references, 200, 1)).await;
    let first = s.check(0).await;
    assert_eq!(first["reference"]["kind"], "production", "{first}");
    assert_eq!(first["reference"]["n"], 200);
    assert_eq!(first["reference"]["source"], "first_predictions");
    let mut verdicts = Vec::new();
    for seed in 0..20 {
        s.traffic(1 + seed, &traffic::draw(&windows, 100, 100 + seed as u64))
            .await;
        let report = s.check(1 + seed).await;
        assert_eq!(report["n_current"], 100, "{report}");
        assert_eq!(report["alert"]["action"], "none", "{report}");
        assert_eq!(
            report["multivariate"]["status"], "tested",
            "{:#}",
            report["multivariate"]
        );
        verdicts.push(report["verdict"].as_str().unwrap().to_owned());
        if report["verdict"] == "drift" {
            panic!("window {seed} drifted: {:#}", report["statistical_tests"]);
        }
    }
    assert!(verdicts.iter().all(|v| v == "no_drift"), "{verdicts:?}");
}

#[tokio::test]
async fn a_shifted_window_drifts_alerts_once_and_resolves_when_traffic_is_back() {
    let s = setup(json!({})).await;
    // A drifted verdict crosses the lowest threshold there is; auto-retrain is off for
    // the test's model (drift_app), so it is refused as disabled, and the run says so.
    set_auto_retrain(&s.model, json!({"drift_score_threshold": 0.001})).await;
    let references = traffic::half(true);
    let windows = traffic::half(false);
    s.traffic(0, &traffic::draw(&references, 200, 2)).await;
    s.check(0).await;

    s.traffic(1, &traffic::digit_shift(&windows, 200, 1, 0.4, 3))
        .await;
    let shifted = s.check(1).await;
    assert_eq!(shifted["verdict"], "drift", "{shifted}");
    let digit = &shifted["statistical_tests"]["predicted_digit"];
    assert_eq!(digit["is_drifted"], true);
    assert!(digit["drift_severity"].is_string());
    assert_eq!(shifted["alert"]["action"], "fired");
    let auto = &shifted["auto_retrain"];
    assert_eq!(auto["decision"], "refused", "{auto}");
    assert_eq!(auto["refusal"]["code"], "disabled", "{auto}");
    assert_eq!(auto["crossing"]["value"], shifted["overall_drift_score"]);
    let alert_id = shifted["alert"]["alert_id"].as_str().unwrap().to_owned();
    let alerts = AlertStore::new(
        integration_tests::dynamodb().await,
        stack_var("ALERTS_TABLE"),
    );
    let alert = alerts
        .get(&alert_id)
        .await
        .unwrap()
        .expect("the alert is recorded");
    assert_eq!(alert.state, inferloop::notify::State::Firing);
    assert_eq!(
        alert.fingerprint,
        format!("drift:{}:v1:{}", s.model, s.version)
    );
    assert!(
        alert
            .details
            .iter()
            .any(|(name, _)| name == "predicted_digit"),
        "{alert:?}"
    );

    // The schedule retried at the same time: the same run, no second alert.
    let again = s.check(1).await;
    assert_eq!(again["run_id"], shifted["run_id"]);
    let fingerprint = format!("drift:{}:v1:{}", s.model, s.version);
    assert_eq!(alerts_with(&fingerprint).await.len(), 1);

    s.traffic(2, &traffic::digit_shift(&windows, 200, 1, 0.4, 4))
        .await;
    let still = s.check(2).await;
    assert_eq!(still["verdict"], "drift");
    assert_eq!(still["alert"]["action"], "suppressed", "{still}");

    s.traffic(3, &traffic::draw(&windows, 200, 5)).await;
    let back = s.check(3).await;
    assert_eq!(
        back["verdict"], "no_drift",
        "{:#}",
        back["statistical_tests"]
    );
    assert_eq!(back["alert"]["action"], "resolved");
    assert_eq!(back["alert"]["alert_id"], alert_id.as_str());
    let resolved = alerts.get(&alert_id).await.unwrap().unwrap();
    assert_eq!(resolved.state, inferloop::notify::State::Resolved);
    // One alert for the whole episode, fired and resolved.
    assert_eq!(alerts_with(&fingerprint).await.len(), 1);

    // History and alerts list the runs, newest first.
    let (status, history) = call(&s.app, "GET", "/drift/history?days=3", None).await;
    assert_eq!(status, 200, "{history}");
    let runs: Vec<&Value> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model_name"] == s.model.as_str())
        .collect();
    assert!(runs.len() >= 4, "{history}");
    let (status, listed) = call(&s.app, "GET", "/drift/alerts?days=3", None).await;
    assert_eq!(status, 200);
    assert!(
        listed["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["run_id"] == shifted["run_id"])
    );
}

#[tokio::test]
async fn a_drift_that_goes_on_is_reminded_as_the_same_alert_after_the_repeat_hours() {
    let s = setup(json!({"alert_repeat_hours": 1})).await;
    let references = traffic::half(true);
    let windows = traffic::half(false);
    s.traffic(0, &traffic::draw(&references, 200, 10)).await;
    s.check(0).await;
    s.traffic(1, &traffic::digit_shift(&windows, 200, 1, 0.6, 11))
        .await;
    let first = s.check(1).await;
    assert_eq!(first["alert"]["action"], "fired", "{first}");
    s.traffic(2, &traffic::digit_shift(&windows, 200, 1, 0.6, 12))
        .await;
    let second = s.check(2).await;
    assert_eq!(second["alert"]["action"], "repeated", "{second}");
    assert_eq!(second["alert"]["alert_id"], first["alert"]["alert_id"]);
    let id = first["alert"]["alert_id"].as_str().unwrap();
    let alerts = AlertStore::new(
        integration_tests::dynamodb().await,
        stack_var("ALERTS_TABLE"),
    );
    let stored = alerts.get(id).await.unwrap().expect("the alert");
    assert_eq!(stored.repeat, 1);
    assert_eq!(stored.delivery_state(), "firing-repeat-1");
    let fingerprint = format!("drift:{}:v1:{}", s.model, s.version);
    assert_eq!(alerts_with(&fingerprint).await.len(), 1);
}

/// `input` mirrored across its diagonal: as much ink, in other places.
fn transposed(input: &[u8; 784]) -> [u8; 784] {
    std::array::from_fn(|i| input[(i % 28) * 28 + i / 28])
}

#[tokio::test]
async fn inputs_with_their_ink_elsewhere_drift_by_the_multivariate_check_alone() {
    let s = setup(json!({})).await;
    let references = traffic::half(true);
    let windows = traffic::half(false);
    s.traffic(0, &traffic::draw(&references, 200, 20)).await;
    s.check(0).await;
    s.traffic(1, &traffic::draw(&windows, 200, 21)).await;
    let healthy = s.check(1).await;
    let multivariate = &healthy["multivariate"];
    assert_eq!(multivariate["status"], "tested", "{multivariate:#}");
    assert_eq!(multivariate["is_drifted"], false, "{multivariate:#}");
    assert_eq!(multivariate["method"], "pca_reconstruction_error");
    assert!(multivariate["components"].as_u64().unwrap() >= 2);
    assert_eq!(multivariate["n_reference"], 200);
    // The same kind of photos with every input mirrored: their features are the healthy
    // ones, so no feature can drift; only the inputs themselves tell.
    let mirrored: Vec<Photo> = traffic::draw(&windows, 200, 22)
        .into_iter()
        .map(|p| Photo {
            input: transposed(&p.input),
            ..p.clone()
        })
        .collect();
    s.traffic(2, &mirrored.iter().collect::<Vec<_>>()).await;
    let report = s.check(2).await;
    let multivariate = &report["multivariate"];
    assert_eq!(report["verdict"], "drift", "{report:#}");
    assert_eq!(report["drifted_features"], json!([]), "{report:#}");
    assert_eq!(multivariate["is_drifted"], true);
    assert!(
        multivariate["reconstruction_error"].as_f64().unwrap()
            > multivariate["upper_threshold"].as_f64().unwrap()
    );
    assert_eq!(report["severity"], "moderate");
    assert_eq!(report["alert"]["action"], "fired", "{report:#}");
}

#[tokio::test]
async fn until_a_production_reference_exists_the_verdict_is_no_reference() {
    let s = setup(json!({})).await;
    s.traffic(0, &traffic::draw(&traffic::half(false), 120, 6))
        .await;
    let report = s.check(0).await;
    assert_eq!(report["verdict"], "no_reference", "{report}");
    assert_eq!(report["drift_detected"], false);
    assert_eq!(report["reference"]["kind"], "test_split");
    let tests = &report["statistical_tests"];
    for upload in [
        "raw_width",
        "raw_height",
        "mean_brightness",
        "ink_box_share",
    ] {
        assert_eq!(tests[upload]["status"], "not_comparable", "{upload}");
    }
    assert_eq!(tests["input_mean"]["status"], "tested");
    assert_eq!(report["model_drift"]["status"], "insufficient_labels");
    assert_eq!(report["multivariate"]["status"], "not_comparable");
    // 120 of the 200 needed: the reference is not captured yet, and no alert is sent.
    assert_eq!(report["alert"]["action"], "none");
}

#[tokio::test]
async fn a_reference_set_from_records_is_what_posted_checks_compare_with() {
    let s = setup(json!({})).await;
    let records = |photos: &[&Photo]| -> Vec<Value> {
        photos
            .iter()
            .map(|p| serde_json::to_value(p.features).unwrap())
            .collect()
    };
    let data = records(&traffic::draw(&traffic::half(true), 200, 7));
    let (status, set) = call(
        &s.app,
        "POST",
        "/drift/set-reference",
        Some(&json!({"line": "v1", "data": data}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["reference"]["n"], 200);
    // Most of the window ones: unmistakable, whatever the draw.
    let current = records(&traffic::digit_shift(&traffic::half(false), 200, 1, 0.7, 8));
    let (status, report) = call(
        &s.app,
        "POST",
        "/drift/data-drift",
        Some(&json!({"current_data": current, "line": "v1"}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["reference"]["kind"], "production");
    assert_eq!(report["reference"]["source"], "records");
    // Records are features: no inputs on either side to fit components on.
    assert_eq!(report["multivariate"]["status"], "not_comparable");
    assert_eq!(report["multivariate"]["is_drifted"], false);
    assert_eq!(
        report["verdict"], "drift",
        "{:#}",
        report["statistical_tests"]
    );
    assert!(report["run_id"].is_string());
    let digit = &report["statistical_tests"]["predicted_digit"];
    assert_eq!(digit["method"], "chi_square");
    for field in [
        "ks_statistic",
        "ks_pvalue",
        "psi_value",
        "reference_mean",
        "current_mean",
        "p_value",
        "effect",
    ] {
        assert!(
            report["statistical_tests"]["input_ink_ratio"]
                .get(field)
                .is_some(),
            "{field}"
        );
    }
}

#[tokio::test]
async fn posted_windows_settings_metrics_and_the_self_test() {
    const KINDS: [&str; 2] = ["a", "b"];
    let s = setup(json!({})).await;
    // Posted records against posted records (the seed's request).
    let reference: Vec<Value> = (0..150)
        .map(|i| json!({"length": 10 + i % 7, "kind": KINDS[i % 2]}))
        .collect();
    let current: Vec<Value> = (0..150)
        .map(|i| json!({"length": 30 + i % 7, "kind": KINDS[i % 2]}))
        .collect();
    let body = json!({"current_data": current, "reference_data": reference}).to_string();
    let (status, report) = call(&s.app, "POST", "/drift/data-drift", Some(&body)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["drifted_features"], json!(["length"]));
    assert_eq!(report["statistical_tests"]["kind"]["method"], "chi_square");
    assert_eq!(report["reference"]["kind"], "posted");

    // Settings: our names and the seed's, stored per model, revisions counted.
    let (status, config) = call(&s.app, "GET", "/drift/config", None).await;
    assert_eq!(status, 200);
    assert_eq!(config["reference_size"], 200);
    let revision = config["revision"].as_u64().unwrap();
    let (status, changed) = call(
        &s.app,
        "POST",
        "/drift/config",
        Some(r#"{"ks_threshold": 0.05}"#),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["alpha"], 0.05);
    assert_eq!(changed["revision"], revision + 1);

    // Metrics as scikit-learn gives them for this example.
    let body = json!({"y_true": ["1", "1", "2", "2"], "y_pred": [1, 2, 2, 2],
                      "y_prob": [[0.0, 0.9, 0.1, 0, 0, 0, 0, 0, 0, 0], [0.0, 0.4, 0.6, 0, 0, 0, 0, 0, 0, 0],
                                 [0.0, 0.2, 0.8, 0, 0, 0, 0, 0, 0, 0], [0.0, 0.3, 0.7, 0, 0, 0, 0, 0, 0, 0]]});
    let (status, metrics) = call(
        &s.app,
        "POST",
        "/drift/comprehensive-metrics",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(metrics["accuracy"], 0.75);
    assert_eq!(metrics["confusion_matrix"][1][2], 1);
    // log_loss([1,1,2,2], p) = -(ln .9 + ln .4 + ln .8 + ln .7)/4
    let expected = -((0.9f64).ln() + (0.4f64).ln() + (0.8f64).ln() + (0.7f64).ln()) / 4.0;
    assert!(
        (metrics["log_loss"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{metrics}"
    );

    let (status, model) = call(
        &s.app,
        "POST",
        "/drift/model-drift",
        Some(
            &json!({"current_predictions": [1, 2, 3, 4], "current_labels": [1, 2, 3, 5]})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["verdict"], "insufficient_data");
    assert_eq!(model["reference"]["kind"], "registered_test_metrics");

    let (status, selftest) = call(&s.app, "POST", "/drift/test-drift", None).await;
    assert_eq!(status, 200);
    assert_eq!(selftest["passed"], true, "{selftest}");
    let (status, health) = call(&s.app, "GET", "/drift/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["lines"]["v1"]["version"], s.version.as_str());
}

#[tokio::test]
async fn every_bad_input_is_a_4xx_in_the_error_shape() {
    let s = setup(json!({})).await;
    let user = token_for(&unique_username("drift-user"), Role::User).await;
    let (status, body) = call_as(&s.app, "GET", "/drift/history", None, Some(&user)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call_as(&s.app, "GET", "/drift/history", None, None).await;
    assert_eq!(status, 401);
    let long: Vec<Value> = (0..3).map(|_| json!({"a": [1]})).collect();
    for (method, path, body, expected) in [
        ("GET", "/drift/history?days=0", None, 422),
        ("GET", "/drift/summary?days=abc", None, 422),
        ("GET", "/drift/alerts?days=400", None, 422),
        ("GET", "/drift/recent-results?hours=0", None, 422),
        ("GET", "/drift/history?cursor=%%%", None, 400),
        ("GET", "/drift/data/production-inference?line=v9", None, 422),
        (
            "GET",
            "/drift/data/production-inference?hours=2&from=2026-12-01",
            None,
            422,
        ),
        ("POST", "/drift/production-data?from=never", None, 422),
        ("POST", "/drift/production-data?model_name=other", None, 404),
        (
            "POST",
            "/drift/config",
            Some(r#"{"alpha": 2}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/config",
            Some(r#"{"alpha_level": 0.1}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/config",
            Some(r#"{"min_samples": 1.5}"#.to_owned()),
            422,
        ),
        ("POST", "/drift/config", Some("not json".to_owned()), 400),
        ("POST", "/drift/config", Some("[1]".to_owned()), 422),
        (
            "POST",
            "/drift/data-drift",
            Some(r#"{"current_data": [1, 2]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/data-drift",
            Some(json!({"current_data": long}).to_string()),
            422,
        ),
        (
            "POST",
            "/drift/data-drift",
            Some(r#"{"reference_data": []}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/data-drift",
            Some(r#"{"current_data": [{"a": 1}], "reference_data": [{"a": "x"}]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/data-drift",
            Some(r#"{"current_data": [], "model_name": "other"}"#.to_owned()),
            404,
        ),
        (
            "POST",
            "/drift/data-drift",
            Some(r#"{"current_data": [{"a": 1e400}]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/data-drift",
            Some(r#"{"current_data": [{"a": 1}], "feature_columns": ["b"]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/model-drift",
            Some(r#"{"current_predictions": [1], "current_labels": [1, 2]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/model-drift",
            Some(r#"{"current_predictions": [11], "current_labels": [1]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/model-drift",
            Some(
                r#"{"current_predictions": [1], "current_labels": [1], "reference_labels": [1]}"#
                    .to_owned(),
            ),
            422,
        ),
        (
            "POST",
            "/drift/set-reference",
            Some(r#"{"line": "v1"}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/set-reference",
            Some(r#"{"line": "v7", "data": []}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/set-reference",
            Some(r#"{"line": "v1", "data": [{"a": 1}]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/set-reference",
            Some(r#"{"line": "v1", "data": [], "from": "2026-12-01"}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/comprehensive-metrics",
            Some(r#"{"y_true": [], "y_pred": []}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/comprehensive-metrics",
            Some(r#"{"y_true": ["cat"], "y_pred": ["1"]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/comprehensive-metrics",
            Some(r#"{"y_true": [1], "y_pred": [1], "y_prob": [[1]]}"#.to_owned()),
            422,
        ),
        (
            "POST",
            "/drift/comprehensive-metrics",
            Some(r#"{"y_true": [1], "y_pred": [1], "y_prob": []}"#.to_owned()),
            422,
        ),
        ("DELETE", "/drift/config", None, 405),
    ] {
        let (status, json) = call(&s.app, method, path, body.as_deref()).await;
        assert_eq!(status, expected, "{method} {path} {body:?}: {json}");
        let error = &json["error"];
        assert!(
            error["code"].is_string()
                && error["message"].is_string()
                && error["request_id"].is_string(),
            "{method} {path}: {json}"
        );
    }
}

#[tokio::test]
async fn the_schedules_event_runs_the_check_through_the_dispatch() {
    use inferloop::dispatch::Invocation;
    let s = setup(json!({})).await;
    s.traffic(0, &traffic::draw(&traffic::half(true), 50, 9))
        .await;
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/drift-schedule.json")).unwrap();
    let at = s.start + time::Duration::hours(1) - time::Duration::seconds(1);
    event["time"] = json!(
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let invocation = Invocation::classify(event, lambda_http::Context::default());
    let result = drift::invoke(&s.app, invocation)
        .await
        .expect("the schedule's invocation");
    assert_eq!(result["lines"][0]["line"], "v1", "{result}");
    // 50 predictions: fewer than the reference needs, so no reference yet.
    assert_eq!(result["lines"][0]["verdict"], "no_reference", "{result}");
    let other = Invocation::classify(json!({"hello": "world"}), lambda_http::Context::default());
    assert!(drift::invoke(&s.app, other).await.is_err());
}
