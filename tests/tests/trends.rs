//! The trends function against moto: exact figures from counters written through the
//! feedback transaction's own path (`FeedbackCounts::updates` in one
//! TransactWriteItems), the zero state, the cost in read calls, 422s per parameter,
//! admin-only access and the audit entry of every read.
//!
//! Tests run concurrently against one table, and other tests write today's `*#<day>`
//! item. So each test either filters by a model version of its own (`vt-<ulid>`), or
//! pins the function's "today" (`App::with_today`) to a random day between the years
//! 1000 and 1900, whose windows no other test writes into.

use aws_sdk_dynamodb::types::TransactWriteItem;
use inferloop::domain::Role;
use inferloop::stats::Confusion;
use inferloop::store::aggregates::FeedbackCounts;
use inferloop::time::format_day as day_key;
use integration_tests::*;
use serde_json::Value;
use time::macros::date;
use time::{Date, Duration, OffsetDateTime};

fn private_version() -> String {
    format!("vt-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A day whose windows (up to 2 × 365 days back) belong to the calling test alone: drawn
/// from 2.5 million days (years 1002–7800), so two tests' windows overlap with a chance
/// of about 1 in 1,700 (it was 1 in 200 over 300,000 days, and happened).
fn private_today() -> Date {
    let r = ulid::Ulid::new().random();
    date!(1000 - 01 - 01) + Duration::days(800 + (r % 2_500_000) as i64)
}

async fn admin_token() -> (String, String) {
    let admin = unique_username("trends-admin");
    let token = token_for(&admin, Role::Admin).await;
    (admin, token)
}

async fn get(app: &trends::App, path: &str, token: Option<&str>) -> (u16, Value) {
    let response = trends::handle(app, request("GET", path, None, token))
        .await
        .expect("infallible");
    (response.status().as_u16(), json_of(&response))
}

async fn ok(app: &trends::App, path: &str, token: &str) -> Value {
    let (status, body) = get(app, path, Some(token)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// One kind of feedback, `times` times.
struct Given<'a> {
    version: &'a str,
    line: &'a str,
    route: &'a str,
    day: Date,
    predicted: u8,
    correct: bool,
    true_label: Option<u8>,
    times: usize,
}

/// Writes the counters exactly as the feedback store does: both updates of
/// `FeedbackCounts::updates` in one TransactWriteItems, one per feedback.
async fn give(feedback: &[Given<'_>]) {
    let client = dynamodb().await;
    let table = stack_var("AGGREGATES_TABLE");
    for g in feedback {
        let counts = FeedbackCounts {
            model_version: g.version.to_owned(),
            line: g.line.to_owned(),
            route: g.route.to_owned(),
            day: day_key(g.day),
            predicted: g.predicted,
            correct: g.correct,
            true_label: g.true_label,
        };
        for _ in 0..g.times {
            let items = counts
                .updates(&table)
                .expect("updates")
                .map(|u| TransactWriteItem::builder().update(u).build());
            client
                .transact_write_items()
                .set_transact_items(Some(items.to_vec()))
                .send()
                .await
                .expect("the counters' transaction");
        }
    }
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn a_private_version_is_counted_exactly() {
    let today = OffsetDateTime::now_utc().date();
    let app = trends_app().await.with_today(today);
    let (_, token) = admin_token().await;
    let v = private_version();
    let yesterday = today - Duration::days(1);
    let last_week = today - Duration::days(8);
    let g = |day, predicted, correct, true_label, times| Given {
        version: &v,
        line: "v2",
        route: "v2",
        day,
        predicted,
        correct,
        true_label,
        times,
    };
    give(&[
        g(today, 7, true, Some(7), 3),
        g(today, 1, false, Some(7), 1),
        g(today, 4, false, None, 1),
        g(yesterday, 3, true, Some(3), 2),
        // The previous window: 2 of 4 correct.
        g(last_week, 5, true, Some(5), 2),
        g(last_week, 5, false, Some(6), 2),
    ])
    .await;

    let body = ok(
        &app,
        &format!("/admin/trends?days=7&model_version={v}"),
        &token,
    )
    .await;
    assert_eq!(body["total_feedback"], 7, "{body}");
    assert_eq!(body["correct_feedback"], 5);
    assert_eq!(body["incorrect_feedback"], 2);
    assert!(close(&body["accuracy_percentage"], 500.0 / 7.0), "{body}");
    assert!(close(&body["accuracy"], 5.0 / 7.0));
    assert_eq!(body["labelled_feedback"], 6);
    let distribution = &body["prediction_distribution"];
    assert_eq!(
        (0..10)
            .map(|d| distribution[d.to_string()].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 0, 2, 1, 0, 0, 3, 0, 0]
    );
    let cm = &body["confusion_matrix"];
    assert_eq!(
        (&cm[7][7], &cm[7][1], &cm[3][3], &cm[5][5]),
        (&3.into(), &1.into(), &2.into(), &0.into())
    );
    let seven = &body["per_class"][7];
    assert_eq!((&seven["digit"], &seven["support"]), (&7.into(), &4.into()));
    assert!(close(&seven["precision"], 1.0) && close(&seven["recall"], 0.75));
    assert!(close(&seven["f1"], 2.0 * 3.0 / (4.0 + 3.0)));
    assert!(close(&body["per_class"][1]["precision"], 0.0));
    assert!(close(&body["per_class"][3]["f1"], 1.0));
    // Classes present: 1, 3, 7 (F1 0, 1, 6/7).
    assert!(close(
        &body["metrics"]["macro_f1"],
        (0.0 + 1.0 + 6.0 / 7.0) / 3.0
    ));

    let daily = body["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 2, "{body}");
    assert_eq!(daily[0]["date"], day_key(yesterday));
    assert_eq!(
        (&daily[0]["total"], &daily[0]["correct"]),
        (&2.into(), &2.into())
    );
    assert_eq!(daily[1]["date"], day_key(today));
    assert!(close(&daily[1]["accuracy"], 0.6));

    let cmp = &body["period_comparison"];
    assert_eq!(cmp["metric"], "accuracy");
    assert!(close(&cmp["current"], 5.0 / 7.0) && close(&cmp["previous"], 0.5));
    assert!(close(&cmp["change"], 5.0 / 7.0 - 0.5));
    assert_eq!(cmp["trend"], "improving");
    assert_eq!(
        (&cmp["current_samples"], &cmp["previous_samples"]),
        (&7.into(), &4.into())
    );
    assert!(close(&cmp["dead_band"], 0.01) && close(&body["dead_band"], 0.01));

    let versions = body["by_model_version"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{body}");
    assert_eq!(
        (&versions[0]["model_version"], &versions[0]["line"]),
        (&v.clone().into(), &"v2".into())
    );
    assert_eq!(
        (&versions[0]["total"], &versions[0]["labelled"]),
        (&7.into(), &6.into())
    );
    assert_eq!(body["by_line"].as_array().unwrap().len(), 1);
    assert_eq!(body["by_line"][0]["total"], 7);
    // No A/B traffic: empty arms, no test.
    assert_eq!(body["ab_test"]["v2"]["total"], 0);
    assert_eq!(body["ab_test"]["p_value"], Value::Null);
    assert!(body["busiest_day"].is_string());
    assert!(
        body["forecast"]["predicted_daily_average"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    assert_eq!(body["filters"]["model_version"], v);
    // 14 version keys, read directly: one BatchGetItem.
    assert_eq!(body["reads"], 1, "{body}");

    // The line filter keeps the version (line v2) or drops it (v1).
    let v2 = ok(
        &app,
        &format!("/admin/trends?days=7&model_version={v}&line=v2"),
        &token,
    )
    .await;
    assert_eq!(v2["total_feedback"], 7);
    let v1 = ok(
        &app,
        &format!("/admin/trends?days=7&model_version={v}&line=v1"),
        &token,
    )
    .await;
    assert_eq!(v1["total_feedback"], 0);
    assert!(v1["daily"].as_array().unwrap().is_empty());
    // Only A/B traffic counts for a variant, and this version had none.
    let arm = ok(
        &app,
        &format!("/admin/trends?days=7&model_version={v}&variant=v2"),
        &token,
    )
    .await;
    assert_eq!(arm["total_feedback"], 0);
}

#[tokio::test]
async fn an_own_window_without_filters_is_exact_and_ab_is_tested() {
    let today = private_today();
    let app = trends_app().await.with_today(today);
    let (_, token) = admin_token().await;
    let (va, vb, vc) = (private_version(), private_version(), private_version());
    let day = today - Duration::days(2);
    let before = today - Duration::days(9);
    let g = |version, line, route, day, predicted, correct, true_label, times| Given {
        version,
        line,
        route,
        day,
        predicted,
        correct,
        true_label,
        times,
    };
    give(&[
        // A/B arm v1: 4 of 10 correct; arm v2: 9 of 10.
        g(&va, "v1", "ab", day, 2, true, Some(2), 4),
        g(&va, "v1", "ab", day, 2, false, Some(8), 6),
        g(&vb, "v2", "ab", day, 8, true, Some(8), 9),
        g(&vb, "v2", "ab", day, 8, false, None, 1),
        // Line v2 outside the experiment.
        g(&vc, "v2", "v2", today, 0, true, Some(0), 3),
        g(&vc, "v2", "v2", today, 6, false, Some(5), 1),
        // The previous window.
        g(&vc, "v2", "v2", before, 0, true, Some(0), 2),
        g(&vc, "v2", "v2", before, 9, false, Some(4), 2),
    ])
    .await;

    let body = ok(&app, "/admin/trends?days=7", &token).await;
    assert_eq!(body["total_feedback"], 24, "{body}");
    assert_eq!(body["correct_feedback"], 16);
    assert_eq!(body["labelled_feedback"], 23);
    assert_eq!(body["confusion_matrix"][8][2], 6);
    assert_eq!(body["confusion_matrix"][5][6], 1);
    let versions: Vec<(String, u64)> = body["by_model_version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["model_version"].as_str().unwrap().to_owned(),
                b["total"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![(va.clone(), 10), (vb.clone(), 10), (vc.clone(), 4)];
    expected.sort();
    assert_eq!(versions, expected);
    let lines: Vec<(&str, u64)> = body["by_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["line"].as_str().unwrap(), b["total"].as_u64().unwrap()))
        .collect();
    assert_eq!(lines, [("v1", 10), ("v2", 14)]);
    assert_eq!(body["busiest_day"], day.weekday().to_string());
    let cmp = &body["period_comparison"];
    assert!(close(&cmp["previous"], 0.5) && close(&cmp["current"], 16.0 / 24.0));
    assert_eq!(cmp["trend"], "improving");

    // 4/10 against 9/10: pooled 0.65, se = sqrt(0.65 · 0.35 · 0.2) = 0.213307,
    // z = 0.5 / se = 2.344036, p = erfc(z / √2) = 0.019076.
    let ab = &body["ab_test"];
    assert_eq!(
        (&ab["v1"]["total"], &ab["v1"]["correct"]),
        (&10.into(), &4.into())
    );
    assert_eq!(
        (&ab["v2"]["total"], &ab["v2"]["correct"]),
        (&10.into(), &9.into())
    );
    assert!(close(&ab["difference"], 0.5), "{ab}");
    assert!((ab["z"].as_f64().unwrap() - 2.344036).abs() < 1e-5, "{ab}");
    assert!(
        (ab["p_value"].as_f64().unwrap() - 0.019076).abs() < 1e-5,
        "{ab}"
    );
    assert_eq!(ab["significant"], true);
    // 14 day keys, then the current window's version keys: two calls.
    assert_eq!(body["reads"], 2, "{body}");

    // One arm: that arm's A/B counters only.
    let arm = ok(&app, "/admin/trends?days=7&variant=v1", &token).await;
    assert_eq!(
        (&arm["total_feedback"], &arm["correct_feedback"]),
        (&10.into(), &4.into())
    );
    assert_eq!(arm["ab_test"]["v2"]["total"], 0);
    let arm = ok(&app, "/admin/trends?days=7&variant=v2", &token).await;
    assert_eq!(arm["total_feedback"], 10);
    // vc (line v2, no A/B traffic) has nothing on this arm.
    assert_eq!(
        arm["by_model_version"].as_array().unwrap().len(),
        1,
        "{arm}"
    );
    assert_eq!(arm["by_model_version"][0]["model_version"], vb);
    let line = ok(&app, "/admin/trends?days=7&line=v2", &token).await;
    assert_eq!(
        (&line["total_feedback"], &line["correct_feedback"]),
        (&14.into(), &12.into())
    );
    assert_eq!(line["period_comparison"]["previous_samples"], 4);

    // /analytics/trends over the same data: macro metrics of the two windows' matrices.
    let current = Confusion::from_pairs(
        [(2, 2); 4]
            .into_iter()
            .chain([(8, 2); 6])
            .chain([(8, 8); 9])
            .chain([(0, 0); 3])
            .chain([(5, 6)]),
    );
    let previous = Confusion::from_pairs([(0, 0), (0, 0), (4, 9), (4, 9)]);
    let a = ok(&app, "/analytics/trends?period=7d", &token).await;
    assert_eq!(a["period"], "7d");
    let t = &a["trends"];
    assert!(close(&t["accuracy"]["current"], 16.0 / 24.0), "{a}");
    assert!(close(&t["f1_score"]["current"], current.macro_f1()));
    assert!(close(&t["f1_score"]["previous"], previous.macro_f1()));
    assert!(close(&t["precision"]["current"], current.macro_precision()));
    assert!(close(&t["recall"]["previous"], previous.macro_recall()));
    assert!(close(
        &t["recall"]["change"],
        current.macro_recall() - previous.macro_recall()
    ));
    for metric in ["accuracy", "f1_score", "precision", "recall"] {
        assert_eq!(t[metric]["trend"], "improving", "{metric}: {a}");
    }
    assert_eq!(a["reads"], 1, "{a}");
    let only = ok(&app, "/analytics/trends?period=7d&metric=precision", &token).await;
    assert_eq!(only["trends"].as_object().unwrap().len(), 1);
    assert!(close(
        &only["trends"]["precision"]["previous"],
        previous.macro_precision()
    ));

    let report = ok(&app, "/admin/report?days=3", &token).await;
    assert_eq!(report["total_feedback"], 24, "{report}");
    assert_eq!(report["incorrect_feedback"], 8);
    assert!(close(&report["accuracy_percentage"], 1600.0 / 24.0));
    assert_eq!(report["from"], day_key(day));
    let one_day = ok(&app, "/admin/report?days=1", &token).await;
    assert_eq!(one_day["total_feedback"], 4);
}

#[tokio::test]
async fn no_feedback_is_zeros_and_empty_series() {
    let app = trends_app().await.with_today(private_today());
    let (_, token) = admin_token().await;
    let body = ok(&app, "/admin/trends", &token).await;
    assert_eq!(body["days"], 30);
    for field in [
        "total_feedback",
        "correct_feedback",
        "incorrect_feedback",
        "labelled_feedback",
    ] {
        assert_eq!(body[field], 0, "{field}: {body}");
    }
    assert!(close(&body["accuracy_percentage"], 0.0));
    assert!(
        body["prediction_distribution"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n == 0)
    );
    for series in ["daily", "by_model_version", "by_line"] {
        assert_eq!(body[series], Value::Array(vec![]), "{series}");
    }
    assert_eq!(body["busiest_day"], Value::Null);
    assert!(close(&body["forecast"]["predicted_daily_average"], 0.0));
    assert_eq!(body["period_comparison"]["trend"], "stable");
    assert_eq!(body["ab_test"]["p_value"], Value::Null);
    assert_eq!(body["reads"], 1, "60 day keys, no versions: {body}");

    let report = ok(&app, "/admin/report", &token).await;
    assert_eq!(report["days"], 7);
    assert_eq!(
        (&report["total_feedback"], &report["accuracy_percentage"]),
        (&0.into(), &0.0.into())
    );
    let a = ok(&app, "/analytics/trends", &token).await;
    assert_eq!(a["period"], "30d");
    for metric in ["accuracy", "f1_score", "precision", "recall"] {
        assert_eq!(a["trends"][metric]["trend"], "stable");
        assert!(close(&a["trends"][metric]["current"], 0.0));
    }
}

#[tokio::test]
async fn reads_grow_with_days_not_with_feedback_rows() {
    let (_, token) = admin_token().await;
    let mut reads = Vec::new();
    let first_today = private_today();
    for (i, rows) in [1, 40].into_iter().enumerate() {
        // The two sizes' windows (up to 365 days back) must not overlap each other.
        let today = first_today + Duration::days(1000 * i as i64);
        let app = trends_app().await.with_today(today);
        let v = private_version();
        give(&[Given {
            version: &v,
            line: "v1",
            route: "v1",
            day: today - Duration::days(3),
            predicted: 1,
            correct: true,
            true_label: Some(1),
            times: rows,
        }])
        .await;
        let body = ok(&app, "/admin/trends?days=90", &token).await;
        assert_eq!(body["total_feedback"], rows, "{body}");
        reads.push(body["reads"].as_u64().unwrap());
        let year = ok(&app, "/admin/trends?days=365", &token).await;
        assert_eq!(year["total_feedback"], rows);
        // 730 day keys: 8 calls of at most 100 keys, then one for the version.
        assert_eq!(year["reads"], 9, "{year}");
    }
    // 180 day keys (2 calls) and 1 version key (1 call), whatever the rows.
    assert_eq!(reads, [3, 3]);
}

#[tokio::test]
async fn todays_feedback_appears_without_a_pinned_date() {
    let app = trends_app().await;
    let (_, token) = admin_token().await;
    let v = private_version();
    let today = OffsetDateTime::now_utc().date();
    give(&[Given {
        version: &v,
        line: "v1",
        route: "ab",
        day: today,
        predicted: 9,
        correct: false,
        true_label: Some(4),
        times: 3,
    }])
    .await;
    let body = ok(&app, "/admin/trends?days=1", &token).await;
    // Other tests write today too: at least ours, and our version exactly.
    assert!(body["total_feedback"].as_u64().unwrap() >= 3, "{body}");
    assert!(body["ab_test"]["v1"]["total"].as_u64().unwrap() >= 3);
    let ours: Vec<&Value> = body["by_model_version"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["model_version"] == v.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{body}");
    assert_eq!(
        (&ours[0]["total"], &ours[0]["correct"]),
        (&3.into(), &0.into())
    );
    let report = ok(&app, "/admin/report?days=1", &token).await;
    assert!(report["total_feedback"].as_u64().unwrap() >= 3);
    let mine = ok(
        &app,
        &format!("/admin/trends?days=1&model_version={v}&variant=v1"),
        &token,
    )
    .await;
    assert_eq!(mine["total_feedback"], 3);
    assert_eq!(mine["confusion_matrix"][4][9], 3);
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_parameter() {
    let app = trends_app().await.with_today(private_today());
    let (_, token) = admin_token().await;
    for (path, name) in [
        ("/admin/trends?days=0", "days"),
        ("/admin/trends?days=366", "days"),
        ("/admin/trends?days=week", "days"),
        ("/admin/trends?days=-3", "days"),
        ("/admin/trends?model_version=v2%23x", "model_version"),
        ("/admin/trends?model_version=*", "model_version"),
        ("/admin/trends?line=v3", "line"),
        ("/admin/trends?variant=control", "variant"),
        ("/admin/report?days=400", "days"),
        ("/analytics/trends?period=1y", "period"),
        ("/analytics/trends?metric=auc", "metric"),
        ("/analytics/trends?period=7d&line=v9", "line"),
    ] {
        let (status, body) = get(&app, path, Some(&token)).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(name), "{path}: {message}");
        assert!(body["error"]["request_id"].is_string());
    }
    let (status, _) = get(&app, "/admin/trends?days=365", Some(&token)).await;
    assert_eq!(status, 200);
    let response = trends::handle(&app, request("POST", "/admin/trends", None, Some(&token)))
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let (status, _) = get(&app, "/admin/nothing", Some(&token)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn only_admins_and_refusals_are_audited() {
    let app = trends_app().await.with_today(private_today());
    let user = unique_username("trends-user");
    let user_token = token_for(&user, Role::User).await;
    for path in ["/admin/trends", "/admin/report", "/analytics/trends"] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "missing_token");
        let (status, _) = get(&app, path, Some("not-a-token")).await;
        assert_eq!(status, 401, "{path}");
        let (status, body) = get(&app, path, Some(&user_token)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let mut denied: Vec<String> = audit_entries_where("actor", &user)
        .await
        .iter()
        .filter(|e| attr(e, "outcome") == "denied")
        .map(|e| attr(e, "action").to_owned())
        .collect();
    denied.sort();
    assert_eq!(denied, ["report_viewed", "trends_viewed", "trends_viewed"]);
}

#[tokio::test]
async fn every_read_is_audited() {
    let app = trends_app().await.with_today(private_today());
    let (admin, token) = admin_token().await;
    ok(&app, "/admin/trends?days=14&line=v1", &token).await;
    ok(&app, "/admin/report?days=3", &token).await;
    ok(&app, "/analytics/trends?period=90d&metric=recall", &token).await;
    let entries = audit_entries_where("actor", &admin).await;
    let mut seen: Vec<(String, String, Value)> = entries
        .iter()
        .map(|e| {
            (
                attr(e, "action").to_owned(),
                attr(e, "outcome").to_owned(),
                serde_json::from_str(attr(e, "details")).unwrap(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.2["route"].as_str().cmp(&b.2["route"].as_str()));
    assert_eq!(seen.len(), 3, "{seen:?}");
    let (action, outcome, details) = &seen[0];
    assert_eq!(
        (action.as_str(), outcome.as_str()),
        ("report_viewed", "success")
    );
    assert_eq!(
        (&details["route"], &details["days"]),
        (&"/admin/report".into(), &3.into())
    );
    let (action, _, details) = &seen[1];
    assert_eq!(action, "trends_viewed");
    assert_eq!(
        (&details["days"], &details["line"]),
        (&14.into(), &"v1".into())
    );
    assert_eq!(details["reads"], 1);
    let (action, _, details) = &seen[2];
    assert_eq!(action, "trends_viewed");
    assert_eq!(
        (&details["route"], &details["period"], &details["metric"]),
        (&"/analytics/trends".into(), &"90d".into(), &"recall".into())
    );
}

#[tokio::test]
async fn the_sample_events_are_served() {
    let app = trends_app().await;
    let (_, token) = admin_token().await;
    for (name, field) in [
        ("trends.json", "total_feedback"),
        ("report.json", "total_feedback"),
        ("analytics-trends.json", "trends"),
    ] {
        let text = std::fs::read_to_string(root().join("events").join(name)).unwrap();
        let text = text.replace("REPLACE_WITH_TOKEN", &token);
        let req = lambda_http::request::from_str(&text).expect("an API Gateway v2 event");
        let response = trends::handle(&app, req).await.unwrap();
        let body = json_of(&response);
        assert_eq!(response.status(), 200, "{name}: {body}");
        assert!(!body[field].is_null(), "{name}: {body}");
        assert!(body["reads"].as_u64().unwrap() >= 1, "{name}: {body}");
    }
}
