//! The audit-logs function against moto: listings, pagination, activity, admin-only
//! access, the read being audited, and the integrity check finding each kind of
//! tampering made directly in the table.
//!
//! Tests run concurrently against one table. Each writes its entries with
//! `AuditTrail::record_at` into a one-hour window of its own, at a random hour between
//! 1990 and 2020, so a listing or a check over that window sees only what the test wrote
//! (and tampering in one test cannot show up in another's check).

use aws_sdk_dynamodb::types::AttributeValue;
use inferloop::audit::{Action, AuditEntry, AuditTrail, Outcome};
use inferloop::config::{AuditSettings, Env};
use inferloop::domain::Role;
use inferloop::http::RequestMeta;
use inferloop::time::format_timestamp;
use integration_tests::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

type Item = HashMap<String, AttributeValue>;

async fn audit_app() -> audit_logs::App {
    stack_var("AWS_ENDPOINT_URL");
    audit_logs::App::from_env()
        .await
        .expect("the audit-logs function starts with the stack's environment")
}

fn settings() -> AuditSettings {
    AuditSettings::from_env(&Env::new(|name| std::env::var(name).ok()))
        .expect("the stack's audit settings")
}

/// A writer with a fresh chain, as a new function instance has.
async fn trail() -> AuditTrail {
    AuditTrail::new(dynamodb().await, settings())
}

fn meta() -> RequestMeta {
    RequestMeta {
        request_id: ulid::Ulid::new().to_string(),
        source_ip: Some("203.0.113.9".into()),
        user_agent: Some("integration-tests".into()),
    }
}

/// The start of a one-hour window no other test uses.
fn private_window() -> OffsetDateTime {
    let r = ulid::Ulid::new().random();
    datetime!(1990-01-01 0:00 UTC)
        + Duration::days((r % 10_950) as i64)
        + Duration::hours(((r >> 20) % 23) as i64)
}

fn ts(at: OffsetDateTime) -> String {
    format_timestamp(at)
}

async fn get(app: &audit_logs::App, path: &str, token: Option<&str>) -> (u16, Value) {
    let response = audit_logs::handle(app, request("GET", path, None, token))
        .await
        .expect("infallible");
    (response.status().as_u16(), json_of(&response))
}

async fn admin_token() -> (String, String) {
    let admin = create_account(Role::Admin).await;
    let token = login_token(&login_app().await, &admin).await;
    (admin, token)
}

fn window_query(from: OffsetDateTime, to: OffsetDateTime) -> String {
    format!("from={}&to={}", ts(from), ts(to))
}

fn actions(body: &Value) -> Vec<String> {
    entries(body)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn entries(body: &Value) -> &Vec<Value> {
    body["entries"].as_array().expect("an entries list")
}

fn assert_newest_first(body: &Value) {
    let stamps: Vec<&str> = entries(body)
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "newest first");
}

#[tokio::test]
async fn listings_filter_by_user_action_outcome_and_range_newest_first() {
    let app = audit_app().await;
    let (_, token) = admin_token().await;
    let start = private_window();
    let alice = unique_username("alice");
    let bob = unique_username("bob");
    let writer = trail().await;
    let plan = [
        (&alice, Action::Login, Outcome::Success),
        (&alice, Action::Predict, Outcome::Success),
        (&bob, Action::Login, Outcome::Success),
        (&alice, Action::LoginFailed, Outcome::Denied),
        (&alice, Action::Predict, Outcome::Error),
        (&bob, Action::Feedback, Outcome::Success),
        (&alice, Action::LoginFailed, Outcome::Denied),
    ];
    for (i, (actor, action, outcome)) in plan.iter().enumerate() {
        let at = start + Duration::seconds(i as i64 * 10);
        writer
            .record_at(&meta(), actor, *action, *outcome, json!({"i": i}), at)
            .await
            .unwrap();
    }
    let window = window_query(start, start + Duration::hours(1));

    let (status, body) = get(
        &app,
        &format!("/admin/audit_logs?username={alice}&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        actions(&body),
        [
            "login_failed",
            "predict",
            "login_failed",
            "predict",
            "login"
        ]
    );
    assert_newest_first(&body);
    assert_eq!(body["next_cursor"], Value::Null);
    let newest = &entries(&body)[0];
    assert_eq!(newest["username"], alice.as_str());
    assert_eq!(newest["outcome"], "denied");
    assert_eq!(newest["details"], json!({"i": 6}));
    assert_eq!(newest["ip"], "203.0.113.9");
    assert_eq!(newest["user_agent"], "integration-tests");
    assert_eq!(newest["timestamp"], ts(start + Duration::seconds(60)));
    assert!(newest["request_id"].as_str().is_some_and(|r| !r.is_empty()));

    let (_, body) = get(
        &app,
        &format!("/admin/audit_logs?username={alice}&action=predict&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), ["predict", "predict"]);
    let (_, body) = get(
        &app,
        &format!("/admin/audit_logs?username={alice}&outcome=denied&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), ["login_failed", "login_failed"]);
    let (_, body) = get(
        &app,
        &format!("/admin/audit_logs?username={alice}&action=predict&outcome=error&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), ["predict"]);

    // A narrower range, inclusive at both ends.
    let narrow = window_query(start + Duration::seconds(10), start + Duration::seconds(40));
    let (_, body) = get(
        &app,
        &format!("/admin/audit_logs?username={alice}&{narrow}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), ["predict", "login_failed", "predict"]);

    // Without a username, by day: everyone's entries in the range.
    let (status, body) = get(&app, &format!("/admin/audit_logs?{window}"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(entries(&body).len(), plan.len());
    assert_newest_first(&body);
    let (_, body) = get(
        &app,
        &format!("/admin/audit_logs?action=login&{window}"),
        Some(&token),
    )
    .await;
    let users: Vec<&str> = entries(&body)
        .iter()
        .map(|e| e["username"].as_str().unwrap())
        .collect();
    assert_eq!(users, [bob.as_str(), alice.as_str()]);
}

/// Follows `next_cursor` from `path` with `limit`, returning every page's entries.
async fn all_pages(
    app: &audit_logs::App,
    token: &str,
    path: &str,
    limit: u32,
) -> (Vec<Value>, usize) {
    let mut collected = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&limit={limit}&cursor={c}"),
            None => format!("{path}&limit={limit}"),
        };
        let (status, body) = get(app, &url, Some(token)).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages += 1;
        assert!(entries(&body).len() <= limit as usize);
        collected.extend(entries(&body).iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (collected, pages),
        }
        assert!(pages < 100, "the cursor does not advance");
    }
}

#[tokio::test]
async fn pages_follow_the_cursor_across_days_without_gaps_or_repeats() {
    let app = audit_app().await;
    let (_, token) = admin_token().await;
    // Three days, so that by-day listings cross partitions mid-page.
    let start = private_window();
    let actor = unique_username("pager");
    let writer = trail().await;
    let mut written = Vec::new();
    for i in 0..11i64 {
        let at = start + Duration::hours(i * 6);
        let outcome = if i % 3 == 0 {
            Outcome::Denied
        } else {
            Outcome::Success
        };
        writer
            .record_at(
                &meta(),
                &actor,
                Action::Predict,
                outcome,
                json!({"i": i}),
                at,
            )
            .await
            .unwrap();
        written.push((ts(at), outcome));
    }
    written.reverse();
    let window = window_query(start, start + Duration::hours(60));

    for path in [
        format!("/admin/audit_logs?{window}"),
        format!("/admin/audit_logs?username={actor}&{window}"),
    ] {
        for limit in [1, 2, 3, 11, 500] {
            let (collected, pages) = all_pages(&app, &token, &path, limit).await;
            let stamps: Vec<&str> = collected
                .iter()
                .map(|e| e["timestamp"].as_str().unwrap())
                .collect();
            let expected: Vec<&str> = written.iter().map(|(t, _)| t.as_str()).collect();
            assert_eq!(stamps, expected, "{path} limit {limit}");
            assert!(
                pages >= 11usize.div_ceil(limit as usize),
                "{path} limit {limit}"
            );
        }
    }
    // A filter that discards most of what each query reads.
    let denied = format!("/admin/audit_logs?outcome=denied&{window}");
    let (collected, _) = all_pages(&app, &token, &denied, 1).await;
    let expected: Vec<&str> = written
        .iter()
        .filter(|(_, o)| *o == Outcome::Denied)
        .map(|(t, _)| t.as_str())
        .collect();
    let stamps: Vec<&str> = collected
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(stamps, expected);

    // A cursor belongs to its listing: other filters, another listing, garbage → 400.
    let (_, first) = get(
        &app,
        &format!("/admin/audit_logs?{window}&limit=2"),
        Some(&token),
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    for path in [
        format!("/admin/audit_logs?outcome=denied&{window}&cursor={cursor}"),
        format!("/admin/activity_logs?{window}&cursor={cursor}"),
        format!("/admin/audit_logs?username={actor}&{window}&cursor={cursor}"),
        format!("/admin/audit_logs?{window}&cursor=e30"),
        format!("/admin/audit_logs?{window}&cursor=!!!"),
    ] {
        let (status, body) = get(&app, &path, Some(&token)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_cursor");
    }
}

#[tokio::test]
async fn activity_logs_list_only_what_people_did() {
    let app = audit_app().await;
    let (_, token) = admin_token().await;
    let start = private_window();
    let alice = unique_username("alice");
    let admin = unique_username("admin");
    let writer = trail().await;
    let plan = [
        (alice.as_str(), Action::Login, Outcome::Success),
        (alice.as_str(), Action::AccountLocked, Outcome::Success),
        ("system:retrain", Action::RetrainStarted, Outcome::Success),
        ("system:schedule", Action::DriftCheck, Outcome::Success),
        (admin.as_str(), Action::DriftCheck, Outcome::Success),
        (alice.as_str(), Action::Feedback, Outcome::Denied),
        ("system:alerts", Action::AlertSent, Outcome::Success),
    ];
    for (i, (actor, action, outcome)) in plan.iter().enumerate() {
        let at = start + Duration::seconds(i as i64);
        writer
            .record_at(&meta(), actor, *action, *outcome, json!({}), at)
            .await
            .unwrap();
    }
    let window = window_query(start, start + Duration::hours(1));

    let (status, body) = get(
        &app,
        &format!("/admin/activity_logs?{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(actions(&body), ["feedback", "drift_check", "login"]);
    assert_eq!(entries(&body)[1]["username"], admin.as_str());

    let (_, body) = get(
        &app,
        &format!("/admin/activity_logs?username={alice}&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), ["feedback", "login"]);
    let (_, body) = get(
        &app,
        &format!("/admin/activity_logs?outcome=denied&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), ["feedback"]);
    let (_, body) = get(
        &app,
        &format!("/admin/activity_logs?username=system:schedule&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(actions(&body), Vec::<String>::new());

    // The full trail still has all of it.
    let (_, body) = get(&app, &format!("/admin/audit_logs?{window}"), Some(&token)).await;
    assert_eq!(entries(&body).len(), plan.len());

    let (status, body) = get(
        &app,
        &format!("/admin/activity_logs?action=retrain_started&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn only_admins_read_the_trail_and_refusals_are_audited() {
    let app = audit_app().await;
    let user = create_account(Role::User).await;
    let user_token = login_token(&login_app().await, &user).await;
    let routes = [
        "/admin/audit_logs",
        "/admin/activity_logs",
        "/admin/audit_logs/verify",
    ];
    for path in routes {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "missing_token");
        let (status, body) = get(&app, path, Some("not-a-token")).await;
        assert_eq!(status, 401, "{path}: {body}");
        let (status, body) = get(&app, path, Some(&user_token)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let denied: Vec<(String, String)> = audit_entries_where("actor", &user)
        .await
        .iter()
        .filter(|e| attr(e, "outcome") == "denied")
        .map(|e| (attr(e, "action").to_owned(), attr(e, "details").to_owned()))
        .collect();
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert_eq!(
        denied.iter().filter(|(a, _)| a == "audit_viewed").count(),
        2
    );
    assert_eq!(
        denied.iter().filter(|(a, _)| a == "audit_verified").count(),
        1
    );

    let (status, _) = get(&app, "/admin/audit_logs", Some(&admin_token().await.1)).await;
    assert_eq!(status, 200);
    let response = audit_logs::handle(&app, request("POST", "/admin/audit_logs", Some("{}"), None))
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let (status, _) = get(&app, "/admin/audit_logs/nope", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_read_is_itself_audited() {
    let app = audit_app().await;
    let (admin, token) = admin_token().await;
    let empty = private_window();
    let window = window_query(empty, empty + Duration::hours(1));
    let (status, _) = get(
        &app,
        &format!("/admin/audit_logs?action=login&{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(
        &app,
        &format!("/admin/activity_logs?{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
    let (status, report) = get(
        &app,
        &format!("/admin/audit_logs/verify?{window}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"verified": true, "chains": 0, "entries_checked": 0, "problems": [],
               "problems_truncated": false, "from": ts(empty),
               "to": ts(empty + Duration::hours(1))})
    );

    // Read back through the API itself: the admin's own trail, newest first.
    let (status, body) = get(
        &app,
        &format!("/admin/audit_logs?username={admin}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        actions(&body),
        ["audit_verified", "audit_viewed", "audit_viewed", "login"]
    );
    let verified = &entries(&body)[0];
    assert_eq!(verified["outcome"], "success");
    assert_eq!(verified["details"]["verified"], true);
    assert_eq!(verified["details"]["from"], ts(empty));
    let listed = &entries(&body)[2];
    assert_eq!(listed["details"]["listing"], "audit_logs");
    assert_eq!(listed["details"]["action"], "login");
    assert_eq!(entries(&body)[1]["details"]["listing"], "activity_logs");
}

#[tokio::test]
async fn a_read_is_answered_when_its_audit_entry_cannot_be_written() {
    let (_, token) = admin_token().await;
    let client = dynamodb().await;
    let mut broken = settings();
    broken.table = "NoSuchAuditTable".into();
    let mut common = inferloop::service::ColdStart::from_env(&Env::new(|n| std::env::var(n).ok()))
        .await
        .unwrap()
        .common;
    common.audit = AuditTrail::new(client.clone(), broken);
    let app = audit_logs::App::new(
        common,
        inferloop::audit::AuditReader::new(client, &settings()),
    );
    let empty = private_window();
    let window = window_query(empty, empty + Duration::hours(1));
    for path in [
        format!("/admin/audit_logs?{window}"),
        format!("/admin/audit_logs/verify?{window}"),
    ] {
        let (status, body) = get(&app, &path, Some(&token)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn bad_parameters_are_refused_in_the_one_shape() {
    let app = audit_app().await;
    let (_, token) = admin_token().await;
    let cases = [
        ("/admin/audit_logs?from=yesterday", 422),
        ("/admin/audit_logs?to=2026-02-30", 422),
        ("/admin/audit_logs?from=2026-03-02&to=2026-03-01", 422),
        ("/admin/audit_logs?from=2020-01-01&to=2026-01-01", 422),
        ("/admin/audit_logs?outcome=ok", 422),
        ("/admin/audit_logs?action=dance", 422),
        ("/admin/audit_logs?limit=0", 422),
        ("/admin/audit_logs?limit=501", 422),
        ("/admin/audit_logs?limit=ten", 422),
        ("/admin/audit_logs?cursor=!!!", 400),
        ("/admin/activity_logs?from=2026-03-01T25:00:00Z", 422),
        (
            "/admin/audit_logs/verify?from=2026-03-02&to=2026-03-01",
            422,
        ),
        ("/admin/audit_logs/verify?to=soon", 422),
        (
            "/admin/audit_logs/verify?from=2020-01-01&to=2026-01-01",
            422,
        ),
    ];
    for (path, expected) in cases {
        let (status, body) = get(&app, path, Some(&token)).await;
        assert_eq!(status, expected, "{path}: {body}");
        let error = body["error"].as_object().expect("the one error shape");
        assert_eq!(error.len(), 3, "{path}: {body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error["request_id"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn the_sample_events_are_served() {
    let app = audit_app().await;
    let (_, token) = admin_token().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    for name in [
        "audit-logs-list.json",
        "audit-logs-activity.json",
        "audit-logs-verify.json",
    ] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let text = text.replace("REPLACE_WITH_TOKEN", &token);
        let req = lambda_http::request::from_str(&text).expect("an API Gateway v2 event");
        let response = audit_logs::handle(&app, req).await.unwrap();
        let body = json_of(&response);
        assert_eq!(response.status(), 200, "{name}: {body}");
        assert!(body["from"].is_string(), "{name}: {body}");
    }
}

// ---- tampering -------------------------------------------------------------------

/// A chain of `len` entries in a window of its own: (chain id, window start).
async fn private_chain(len: i64) -> (String, OffsetDateTime) {
    let start = private_window();
    let writer = trail().await;
    let chain = writer.chain_id().await;
    let actor = unique_username("chained");
    for i in 0..len {
        let outcome = if i % 2 == 0 {
            Outcome::Success
        } else {
            Outcome::Denied
        };
        writer
            .record_at(
                &meta(),
                &actor,
                Action::LoginFailed,
                outcome,
                json!({"attempt": i}),
                start + Duration::seconds(i),
            )
            .await
            .unwrap();
    }
    (chain, start)
}

async fn verify(app: &audit_logs::App, token: &str, start: OffsetDateTime) -> Value {
    let window = window_query(start, start + Duration::hours(1));
    let (status, body) = get(
        app,
        &format!("/admin/audit_logs/verify?{window}"),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn problems(report: &Value) -> Vec<(String, u64, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["chain"].as_str().unwrap().to_owned(),
                p["sequence"].as_u64().unwrap(),
                p["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn stored(chain: &str, seq: u64) -> Item {
    dynamodb()
        .await
        .get_item()
        .table_name(stack_var("AUDIT_TABLE"))
        .key("chain_id", AttributeValue::S(chain.into()))
        .key("seq", AttributeValue::N(seq.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the entry exists")
}

async fn put(item: Item) {
    dynamodb()
        .await
        .put_item()
        .table_name(stack_var("AUDIT_TABLE"))
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

/// Checks the untouched chain, lets `tamper` change the table, checks again.
async fn tampered(
    len: i64,
    tamper: impl AsyncFnOnce(&str),
) -> (String, Vec<(String, u64, String)>) {
    let app = audit_app().await;
    let (_, token) = admin_token().await;
    let (chain, start) = private_chain(len).await;
    let clean = verify(&app, &token, start).await;
    assert_eq!(clean["verified"], true, "{clean}");
    assert_eq!(clean["chains"], 1);
    assert_eq!(clean["entries_checked"], len);
    tamper(&chain).await;
    let report = verify(&app, &token, start).await;
    assert_eq!(report["verified"], false, "{report}");
    (chain, problems(&report))
}

#[tokio::test]
async fn an_edited_field_is_found_as_modified() {
    let (chain, found) = tampered(8, async |chain: &str| {
        dynamodb()
            .await
            .update_item()
            .table_name(stack_var("AUDIT_TABLE"))
            .key("chain_id", AttributeValue::S(chain.into()))
            .key("seq", AttributeValue::N("3".into()))
            .update_expression("SET outcome = :ok")
            .expression_attribute_values(":ok", AttributeValue::S("success".into()))
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(found, [(chain, 3, "modified".to_owned())]);
}

#[tokio::test]
async fn a_deleted_entry_in_the_middle_is_found_as_missing() {
    let (chain, found) = tampered(8, async |chain: &str| {
        dynamodb()
            .await
            .delete_item()
            .table_name(stack_var("AUDIT_TABLE"))
            .key("chain_id", AttributeValue::S(chain.into()))
            .key("seq", AttributeValue::N("4".into()))
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(found, [(chain, 4, "missing".to_owned())]);
}

#[tokio::test]
async fn a_swapped_pair_is_found_as_reordered() {
    let (chain, found) = tampered(8, async |chain: &str| {
        let (mut second, mut third) = (stored(chain, 2).await, stored(chain, 3).await);
        second.insert("seq".into(), AttributeValue::N("3".into()));
        third.insert("seq".into(), AttributeValue::N("2".into()));
        put(second).await;
        put(third).await;
    })
    .await;
    assert_eq!(
        found,
        [
            (chain.clone(), 2, "reordered".to_owned()),
            (chain, 3, "reordered".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_forged_entry_is_found_as_bad_mac() {
    let (chain, found) = tampered(8, async |chain: &str| {
        // A plausible entry, its hash right, chained after the last one; only the key is
        // missing, so its MAC is made with another.
        let last = stored(chain, 7).await;
        let text = |name: &str| last[name].as_s().unwrap().clone();
        let forged = AuditEntry {
            chain_id: chain.to_owned(),
            seq: 8,
            timestamp: text("ts").replace(":07.", ":08."),
            actor: text("actor"),
            action: Action::Login.as_str().into(),
            outcome: Outcome::Success.as_str().into(),
            details: json!({"role": "admin"}).to_string(),
            source_ip: text("source_ip"),
            user_agent: text("user_agent"),
            request_id: ulid::Ulid::new().to_string(),
        }
        .seal(b"a guess at the key, 32 bytes long", &text("mac"), 0);
        put(forged.to_item()).await;
    })
    .await;
    assert_eq!(found, [(chain, 8, "bad_mac".to_owned())]);
}

#[tokio::test]
async fn the_live_trail_verifies_clean() {
    let app = audit_app().await;
    // Real entries from the real writers, now: a login, and this read.
    let (_, token) = admin_token().await;
    let (status, _) = get(&app, "/admin/audit_logs?limit=5", Some(&token)).await;
    assert_eq!(status, 200);
    let (status, report) = get(&app, "/admin/audit_logs/verify", Some(&token)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["problems"], json!([]), "{report}");
    assert_eq!(report["verified"], true);
    assert!(report["chains"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["entries_checked"].as_u64().unwrap() >= 2, "{report}");
}

#[tokio::test]
async fn the_router_serves_the_audit_routes_over_http() {
    // The first request makes `cargo lambda watch` build and start the function.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .unwrap();
    let api = stack_var("INFERLOOP_API_URL");
    let api = api.trim_end_matches('/');
    let response = http
        .get(format!("{api}/admin/audit_logs"))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_token");

    let (_, token) = admin_token().await;
    let empty = private_window();
    for path in [
        "/admin/audit_logs/verify",
        "/admin/activity_logs",
        "/admin/audit_logs",
    ] {
        let response = http
            .get(format!("{api}{path}"))
            .query(&[("from", ts(empty)), ("to", ts(empty + Duration::hours(1)))])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["from"], ts(empty), "{path}: {body}");
    }
}

/// The policies of template.yaml: every function that writes audit entries may only add
/// them (PutItem, through the one managed policy), reads the key from the generated
/// secret at cold start (Globals name the secret, never hold its value); only
/// audit-logs may read.
#[test]
fn only_audit_logs_may_read_the_trail_and_writers_only_append() {
    use serde_norway::Value as Yaml;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let template: Yaml = serde_norway::from_str(&text).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let key = format!("{:?}", globals["AUDIT_KEY_SECRET"]);
    assert!(
        key.contains("AuditKeySecret"),
        "AUDIT_KEY_SECRET must name AuditKeySecret, not {key}"
    );
    assert!(
        !text.contains("{{resolve:"),
        "no secret's value is resolved into a function's configuration"
    );
    assert!(globals.get("AUDIT_TABLE").is_some());
    let mut writers = 0;
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let properties = &resource["Properties"];
        assert!(
            properties["Environment"]["Variables"]
                .get("AUDIT_KEY_SECRET")
                .is_none(),
            "{id}: the audit key's secret is named in Globals, once"
        );
        let mut audit_actions: Vec<String> = Vec::new();
        let mut uses_append_policy = false;
        for policy in properties["Policies"].as_sequence().into_iter().flatten() {
            // `!Ref SomeManagedPolicy` stands for that policy's document.
            let document = match policy {
                Yaml::Tagged(tagged) if tagged.tag == "Ref" => {
                    let name = tagged.value.as_str().unwrap();
                    uses_append_policy |= name == "AuditAppendPolicy";
                    let managed = &template["Resources"][name];
                    assert_eq!(
                        managed["Type"].as_str(),
                        Some("AWS::IAM::ManagedPolicy"),
                        "{id}: {name}"
                    );
                    &managed["Properties"]["PolicyDocument"]
                }
                inline => inline,
            };
            for statement in document["Statement"].as_sequence().into_iter().flatten() {
                let statement_resources = format!("{:?}", statement["Resource"]);
                let actions: Vec<String> = match &statement["Action"] {
                    Yaml::String(one) => vec![one.clone()],
                    Yaml::Sequence(many) => many
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    other => panic!("{id}: unexpected Action {other:?}"),
                };
                let dynamodb = actions.iter().any(|a| a.starts_with("dynamodb:"));
                assert!(
                    !(dynamodb && statement_resources.contains("\"*\"")),
                    "{id}: DynamoDB actions on every resource"
                );
                if statement_resources.contains("AuditTable") {
                    audit_actions.extend(actions);
                }
            }
        }
        audit_actions.sort();
        audit_actions.dedup();
        writers += usize::from(uses_append_policy);
        let expected: &[&str] = match id {
            "AuditLogsFunction" => &["dynamodb:PutItem", "dynamodb:Query"],
            _ if uses_append_policy => &["dynamodb:PutItem"],
            _ => &[],
        };
        assert_eq!(audit_actions, expected, "{id}'s rights on the Audit table");
    }
    assert!(writers >= 5, "every function but web writes audit entries");
}
