//! The attacks a security review demonstrated (issue 19), each reproduced against the
//! functions as Lambda runs them — concurrent requests polled together as concurrent
//! containers interleave at DynamoDB — and each held now.

use inferloop::audit::AuditTrail;
use inferloop::config::AuditSettings;
use inferloop::domain::Role;
use integration_tests::*;
use lambda_http::{Body, Request};
use serde_json::{Value, json};

fn login_body(username: &str, password: &str) -> String {
    json!({"username": username, "password": password}).to_string()
}

/// A login from `source` (what API Gateway reports as the caller's address).
fn login_from(source: &str, username: &str, password: &str) -> Request {
    let mut req = request(
        "POST",
        "/login",
        Some(&login_body(username, password)),
        None,
    );
    req.headers_mut()
        .insert("x-forwarded-for", source.parse().unwrap());
    req
}

/// An address no other test uses, so per-source throttles do not mix.
fn private_source() -> String {
    let r = ulid::Ulid::new().random();
    format!("10.{}.{}.{}", (r >> 16) as u8, (r >> 8) as u8, r as u8)
}

async fn entries_of_actor(actor: &str, action: &str) -> Vec<Value> {
    audit_entries_where("actor", actor)
        .await
        .iter()
        .filter(|e| attr(e, "action") == action)
        .map(|e| serde_json::from_str(attr(e, "details")).unwrap_or(Value::Null))
        .collect()
}

/// The stack's common parts, with an audit trail that cannot write (its table is gone).
async fn common_with_broken_audit() -> (inferloop::service::Common, aws_sdk_dynamodb::Client) {
    let start = inferloop::service::ColdStart::from_env(&inferloop::config::process_env())
        .await
        .unwrap();
    let mut settings = AuditSettings::from_env(&inferloop::config::process_env()).unwrap();
    settings.table = "NoSuchAuditTable".into();
    let mut common = start.common;
    common.audit = AuditTrail::new(start.dynamodb.clone(), settings);
    (common, start.dynamodb)
}

// Finding 1: a removed admin keeps admin rights; a name taken again inherits its data.

#[tokio::test]
async fn a_deleted_or_demoted_admins_token_stops_at_once() {
    let app = login_app().await;
    let boss = create_account(Role::Admin).await;
    let boss_token = login_token(&app, &boss).await;
    let rogue = create_account(Role::Admin).await;
    let rogue_token = login_token(&app, &rogue).await;
    let create = |name: &str| {
        json!({"username": name, "password": "a fine password", "role": "admin"}).to_string()
    };

    let (status, _, _) = call(
        &app,
        request(
            "DELETE",
            &format!("/users/{rogue}"),
            None,
            Some(&boss_token),
        ),
    )
    .await;
    assert_eq!(status, 204);
    // The deleted admin's token can no longer create an admin (the attack), nor list.
    let sleeper = unique_username("sleeper");
    let (status, body, _) = call(
        &app,
        request(
            "POST",
            "/users",
            Some(&create(&sleeper)),
            Some(&rogue_token),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_revoked"))
    );
    let (status, _, _) = call(&app, request("GET", "/users", None, Some(&rogue_token))).await;
    assert_eq!(status, 401);

    // Re-created with the same name as a user: the old admin token is still refused
    // (another account), and the new account's own token is a user's.
    let recreate = json!({"username": rogue, "password": "a fine password", "role": "user"});
    let (status, _, _) = call(
        &app,
        request(
            "POST",
            "/users",
            Some(&recreate.to_string()),
            Some(&boss_token),
        ),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body, _) = call(
        &app,
        request(
            "POST",
            "/users",
            Some(&create(&sleeper)),
            Some(&rogue_token),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_revoked"))
    );
    let store = inferloop::store::users::UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    let sleeper_name = inferloop::domain::Username::parse(&sleeper).unwrap();
    assert!(
        store.get(&sleeper_name).await.unwrap().is_none(),
        "no admin was made"
    );
}

#[tokio::test]
async fn a_deleted_users_token_stops_within_the_check_bound_and_a_new_owner_of_the_name_owns_nothing()
 {
    let login = login_app().await;
    let admin = create_account(Role::Admin).await;
    let admin_token = login_token(&login, &admin).await;
    let user = create_account(Role::User).await;
    let old_token = login_token(&login, &user).await;

    // The old account's prediction.
    let predict = predict_app().await;
    let (image, _) = user_like_digit(3);
    let (status, body, _) = call_predict(
        &predict,
        upload(
            "/api/v2/predict",
            Some("image/png"),
            image,
            Some(&old_token),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let prediction_id = body["prediction_id"].as_str().unwrap().to_owned();

    // A feedback function whose account check remembers answers for one second.
    let start = inferloop::service::ColdStart::from_env(&inferloop::config::process_env())
        .await
        .unwrap();
    let mut feedback = feedback_app().await;
    feedback.common.accounts = inferloop::auth::accounts::Accounts::new(
        inferloop::store::users::UserStore::new(start.dynamodb, stack_var("USERS_TABLE")),
        std::time::Duration::from_secs(1),
    );
    let give = |token: &str| {
        let body = json!({"prediction_id": prediction_id, "correct": true}).to_string();
        request("POST", "/feedback", Some(&body), Some(token))
    };
    let status_of = |r: lambda_http::Response<Body>| r.status().as_u16();
    // A request that fails after the account check (409 would need feedback; a bad
    // body is refused after it too): primes the cache with the live account.
    let bad = request("POST", "/feedback", Some("{}"), Some(&old_token));
    assert_eq!(
        status_of(feedback::handle(&feedback, bad).await.unwrap()),
        422
    );

    let (status, _, _) = call(
        &login,
        request(
            "DELETE",
            &format!("/users/{user}"),
            None,
            Some(&admin_token),
        ),
    )
    .await;
    assert_eq!(status, 204);
    // Within the bound the cached answer may still let the old token through...
    let within = status_of(
        feedback::handle(
            &feedback,
            request("POST", "/feedback", Some("{}"), Some(&old_token)),
        )
        .await
        .unwrap(),
    );
    assert!(within == 422 || within == 401, "{within}");
    // ...past it, never.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = feedback::handle(&feedback, give(&old_token)).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json_of(&response)["error"]["code"], "token_revoked");

    // Someone else takes the name: a new account, which owns nothing of the old one.
    let recreate = json!({"username": user, "password": PASSWORD, "role": "user"}).to_string();
    let (status, _, _) = call(
        &login,
        request("POST", "/users", Some(&recreate), Some(&admin_token)),
    )
    .await;
    assert_eq!(status, 201);
    let new_token = login_token(&login, &user).await;
    let response = feedback::handle(&feedback, give(&new_token)).await.unwrap();
    let json = json_of(&response);
    assert_eq!(response.status(), 403, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not yours"),
        "{json}"
    );
    // And the old token still cannot act for the new account.
    let response = feedback::handle(&feedback, give(&old_token)).await.unwrap();
    assert_eq!(response.status(), 401);
}

// Finding 2: the lockout could be raced.

#[tokio::test]
async fn up_to_fifty_concurrent_guesses_verify_at_most_five_passwords() {
    let app = login_app().await;
    for n in [10, 25, 50] {
        let victim = create_account(Role::User).await;
        let before = app.verifications();
        let guesses: Vec<_> = (0..n)
            .map(|_| {
                call(
                    &app,
                    login_from(&private_source(), &victim, "wrong password!"),
                )
            })
            .collect();
        let statuses: Vec<u16> = futures_join_all(guesses)
            .await
            .iter()
            .map(|(s, _, _)| *s)
            .collect();
        assert!(
            statuses.iter().all(|s| [401, 429].contains(s)),
            "a contended write is never a 5xx: {statuses:?}"
        );
        let verified = app.verifications() - before;
        assert!(
            verified <= 5,
            "{n} guesses: {verified} passwords verified ({statuses:?})"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count() as u64,
            verified.min(4)
        );
    }
    // The right password among concurrent wrong ones: an answer, never a 5xx.
    let victim = create_account(Role::User).await;
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let password = if i == 7 { PASSWORD } else { "wrong password!" };
            call(&app, login_from(&private_source(), &victim, password))
        })
        .collect();
    for (status, body, _) in futures_join_all(guesses).await {
        assert!([200, 401, 429].contains(&status), "{status}: {body}");
    }
}

/// Polls every future together, as concurrent containers' requests interleave.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

// Finding 3: the lockout told which names exist, and could keep anyone out.

#[tokio::test]
async fn unknown_names_answer_as_known_ones_and_lock_alike() {
    let app = login_app().await;
    let real = create_account(Role::User).await;
    let ghost = unique_username("ghost");
    let source = private_source();
    for name in [&real, &ghost] {
        let mut answers = Vec::new();
        for _ in 0..6 {
            let (status, body, _) = call(&app, login_from(&source, name, "wrong password!")).await;
            answers.push((status, body["error"]["code"].as_str().unwrap().to_owned()));
        }
        let codes: Vec<(u16, &str)> = answers.iter().map(|(s, c)| (*s, c.as_str())).collect();
        assert_eq!(
            codes,
            [
                (401, "invalid_credentials"),
                (401, "invalid_credentials"),
                (401, "invalid_credentials"),
                (401, "invalid_credentials"),
                (429, "account_locked"),
                (429, "account_locked"),
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn one_address_trying_many_names_is_throttled_and_an_admin_can_unlock() {
    let app = login_app().await;
    let stuffer = private_source();
    let max = inferloop::store::guards::SOURCE_MAX_FAILURES;
    let mut last = (0, Value::Null);
    for _ in 0..=max {
        let (status, body, _) = call(
            &app,
            login_from(&stuffer, &unique_username("victim"), "guess1234"),
        )
        .await;
        last = (status, body);
    }
    assert_eq!(last.0, 429, "{}", last.1);
    assert_eq!(last.1["error"]["code"], "too_many_attempts");

    // Locked out by someone else's failures, the account is opened again by an admin.
    let locked = create_account(Role::User).await;
    for _ in 0..5 {
        call(
            &app,
            login_from(&private_source(), &locked, "wrong password!"),
        )
        .await;
    }
    let (status, _, _) = call(&app, login_from(&private_source(), &locked, PASSWORD)).await;
    assert_eq!(status, 429);
    let admin = create_account(Role::Admin).await;
    let admin_token = login_token(&app, &admin).await;
    let (status, body, _) = call(
        &app,
        request(
            "POST",
            &format!("/users/{locked}/unlock"),
            None,
            Some(&admin_token),
        ),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, _) = call(&app, login_from(&private_source(), &locked, PASSWORD)).await;
    assert_eq!(status, 200);
    let unlocked = entries_of_actor(&admin, "account_unlocked").await;
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0]["was_locked"], true);
}

// Finding 4: a change could be stored with no audit entry.

#[tokio::test]
async fn a_change_whose_audit_entry_cannot_be_written_does_not_happen() {
    let healthy = login_app().await;
    let admin = create_account(Role::Admin).await;
    let token = login_token(&healthy, &admin).await;
    let (common, client) = common_with_broken_audit().await;
    let broken = login::App::new(
        common,
        inferloop::store::users::UserStore::new(client.clone(), stack_var("USERS_TABLE")),
        inferloop::store::guards::GuardStore::new(client, stack_var("LOGIN_GUARDS_TABLE")),
    )
    .unwrap();
    let newcomer = unique_username("unaudited");
    let body = json!({"username": newcomer, "password": "a fine password", "role": "user"});
    let (status, _, _) = call(
        &broken,
        request("POST", "/users", Some(&body.to_string()), Some(&token)),
    )
    .await;
    assert_eq!(status, 503);
    let store = inferloop::store::users::UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    let name = inferloop::domain::Username::parse(&newcomer).unwrap();
    assert!(
        store.get(&name).await.unwrap().is_none(),
        "a 503 means nothing happened"
    );

    // A prediction that cannot be audited is neither answered nor stored.
    let user = unique_username("unaudited-predictor");
    let user_token = token_for(&user, Role::User).await;
    let (common, _) = common_with_broken_audit().await;
    let start = inferloop::service::ColdStart::from_env(&inferloop::config::process_env())
        .await
        .unwrap();
    let start = inferloop::service::ColdStart { common, ..start };
    let settings = predict::PredictSettings::from_env(&inferloop::config::process_env()).unwrap();
    let predict = predict::App::new(start, settings, stack_cache());
    let (image, _) = user_like_digit(5);
    let (status, _, _) = call_predict(
        &predict,
        upload(
            "/api/v1/predict",
            Some("image/png"),
            image,
            Some(&user_token),
        ),
    )
    .await;
    assert_eq!(status, 503);
    let stored = scan_where(&stack_var("PREDICTIONS_TABLE"), "username", &user).await;
    assert!(stored.is_empty(), "{} predictions stored", stored.len());
}

#[tokio::test]
async fn a_huge_user_agent_is_capped_not_a_reason_to_lose_the_entry() {
    let app = login_app().await;
    let admin = create_account(Role::Admin).await;
    let token = login_token(&app, &admin).await;
    let newcomer = unique_username("ua");
    let body = json!({"username": newcomer, "password": "a fine password", "role": "user"});
    let mut req = request("POST", "/users", Some(&body.to_string()), Some(&token));
    req.headers_mut()
        .insert("user-agent", "x".repeat(410_000).parse().unwrap());
    let (status, body, _) = call(&app, req).await;
    assert_eq!(status, 201, "{body}");
    let entries = audit_entries_where("actor", &admin).await;
    let created = entries
        .iter()
        .find(|e| attr(e, "action") == "user_created" && attr(e, "details").contains(&newcomer))
        .expect("the creation is audited");
    assert!(attr(created, "user_agent").len() < 1_000);
    assert!(attr(created, "user_agent").contains("[+409488 chars]"));
}

// Finding 7: unauthenticated requests wrote audit entries cheaply.

#[tokio::test]
async fn fifty_logins_on_a_locked_account_write_one_entry() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    // Locked from elsewhere; then one address keeps trying (within its own budget of
    // failures, so the refusals are all the lock's).
    let elsewhere = private_source();
    for _ in 0..5 {
        call(&app, login_from(&elsewhere, &name, "wrong password!")).await;
    }
    let source = private_source();
    let attempts = 44;
    let started = std::time::Instant::now();
    for _ in 0..attempts {
        let (status, body, _) = call(&app, login_from(&source, &name, PASSWORD)).await;
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "account_locked");
    }
    let refused: Vec<Value> = entries_of_actor(&name, "login_failed")
        .await
        .into_iter()
        .filter(|d| d["reason"] == "locked")
        .collect();
    // One entry per denial window (a minute): one for the whole burst, unless a busy
    // machine stretched the burst past a window, when each further window adds one
    // carrying how many it folded. Never one per attempt.
    let windows = 1 + (started.elapsed().as_secs() / 60) as usize;
    assert!(
        !refused.is_empty() && refused.len() <= windows,
        "{attempts} refusals in {windows} denial window(s), one entry each: {refused:?}"
    );
}

// Finding 9: the cache answered for other users.

#[tokio::test]
async fn cached_is_said_only_of_ones_own_repeat() {
    let app = predict_app().await;
    let (image, _) = user_like_digit(41);
    let alice = token_for(&unique_username("alice"), Role::User).await;
    let bob = token_for(&unique_username("bob"), Role::User).await;
    let ask = |token: &str| {
        upload(
            "/api/v2/predict",
            Some("image/png"),
            image.clone(),
            Some(token),
        )
    };
    let (_, first, _) = call_predict(&app, ask(&alice)).await;
    assert_eq!(first["cached"], false);
    let (_, bobs, _) = call_predict(&app, ask(&bob)).await;
    assert_eq!(
        bobs["cached"], false,
        "bob must not learn that alice sent it"
    );
    let (_, again, _) = call_predict(&app, ask(&alice)).await;
    assert_eq!(again["cached"], true, "alice's own repeat");
    assert_eq!(again["prediction"], first["prediction"]);
}

// Findings 8, 10, 12.

#[tokio::test]
async fn the_small_ones_hold() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    let (status, _, response) = call(
        &app,
        request("POST", "/login", Some(&login_body(&name, PASSWORD)), None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response.headers()["cache-control"], "no-store");

    // A forged feedback cursor naming a day far outside its range is refused at once.
    let admin = token_for(&unique_username("admin"), Role::Admin).await;
    // Bound to the listing without filters, as the function binds it: only the day is off.
    let query =
        inferloop::store::cursor::fingerprint(&json!(["feedback", null, null, null, null, null]));
    let forged = inferloop::store::feedback::FeedbackCursor {
        query,
        from: "2026-01-01T00:00:00.000000Z".into(),
        to: "2026-01-07T00:00:00.000000Z".into(),
        position: inferloop::store::feedback::Position {
            day: Some("2020-06-01".into()),
            after: None,
        },
    };
    let feedback = feedback_app().await;
    let response = feedback::handle(
        &feedback,
        request(
            "GET",
            &format!("/feedback?cursor={}", forged.encode()),
            None,
            Some(&admin),
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(json_of(&response)["error"]["code"], "invalid_cursor");

    // "Wrong, and it was the digit it said" contradicts itself.
    let user = unique_username("contradicts");
    let token = token_for(&user, Role::User).await;
    let predict = predict_app().await;
    let (image, _) = user_like_digit(8);
    let (_, answer, _) = call_predict(
        &predict,
        upload("/api/v1/predict", Some("image/png"), image, Some(&token)),
    )
    .await;
    let body = json!({
        "prediction_id": answer["prediction_id"],
        "correct": false,
        "true_label": answer["prediction"],
    })
    .to_string();
    let response = feedback::handle(
        &feedback,
        request("POST", "/feedback", Some(&body), Some(&token)),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(json_of(&response)["error"]["code"], "label_mismatch");
}

/// Feedback stored before its audit entry joined the transaction, and never audited (the
/// finding: its retry answered 200 and wrote nothing): the retry writes the entry, once.
#[tokio::test]
async fn a_retry_of_unaudited_feedback_writes_its_entry_once() {
    let app = feedback_app().await;
    let user = unique_username("legacy");
    let token = token_for(&user, Role::User).await;
    let predict = predict_app().await;
    let (image, _) = user_like_digit(12);
    let (_, answer, _) = call_predict(
        &predict,
        upload("/api/v1/predict", Some("image/png"), image, Some(&token)),
    )
    .await;
    let prediction_id = answer["prediction_id"].as_str().unwrap().to_owned();
    let body = json!({"prediction_id": prediction_id, "correct": true}).to_string();
    let response = feedback::handle(
        &app,
        request("POST", "/feedback", Some(&body), Some(&token)),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let audited = || async {
        audit_entries_where("actor", &user)
            .await
            .iter()
            .filter(|e| {
                attr(e, "action") == "feedback" && attr(e, "details").contains(&prediction_id)
            })
            .count()
    };
    assert_eq!(audited().await, 1, "written with the feedback");
    // As an item from before: no record of its entry, and the entry gone with it.
    dynamodb()
        .await
        .update_item()
        .table_name(stack_var("FEEDBACK_TABLE"))
        .key(
            "prediction_id",
            aws_sdk_dynamodb::types::AttributeValue::S(prediction_id.clone()),
        )
        .update_expression("REMOVE audit_ref")
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        let response = feedback::handle(
            &app,
            request("POST", "/feedback", Some(&body), Some(&token)),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        audited().await,
        2,
        "the first retry recorded it, the later ones did not again"
    );
}
