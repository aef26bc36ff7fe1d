//! The login function's handlers, called with hand-built requests against moto.

use inferloop::domain::Role;
use integration_tests::*;
use serde_json::json;

fn login_body(username: &str, password: &str) -> String {
    json!({"username": username, "password": password}).to_string()
}

#[tokio::test]
async fn a_user_logs_in_and_gets_a_token_for_their_role() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    let (status, body, _) = call(
        &app,
        request("POST", "/login", Some(&login_body(&name, PASSWORD)), None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["role"], "user");
    let principal = app
        .common
        .tokens
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(principal.username.as_str(), name);
    assert_eq!(principal.role, Role::User);

    let entries = audit_entries_where("actor", &name).await;
    let login = entries
        .iter()
        .find(|e| attr(e, "action") == "login")
        .expect("the login is audited");
    assert_eq!(attr(login, "outcome"), "success");
    assert_eq!(attr(login, "user_agent"), "integration-tests");
    assert!(!attr(login, "details").contains(PASSWORD));
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    let (s1, b1, _) = call(
        &app,
        request(
            "POST",
            "/login",
            Some(&login_body(&name, "wrong password!")),
            None,
        ),
    )
    .await;
    let ghost = unique_username("ghost");
    let (s2, b2, _) = call(
        &app,
        request("POST", "/login", Some(&login_body(&ghost, PASSWORD)), None),
    )
    .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1["error"]["code"], "invalid_credentials");
    assert_eq!(b1["error"]["code"], b2["error"]["code"]);
    assert_eq!(b1["error"]["message"], b2["error"]["message"]);
    // Both failures are audited, with the reason only the auditor sees.
    let ghost_entries = audit_entries_where("actor", &ghost).await;
    assert!(
        ghost_entries
            .iter()
            .any(|e| attr(e, "action") == "login_failed"
                && attr(e, "outcome") == "denied"
                && attr(e, "details").contains("unknown_user"))
    );
    // An unknown user leaves no account behind.
    let store = inferloop::store::users::UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    let ghost_name = inferloop::domain::Username::parse(&ghost).unwrap();
    assert!(store.get(&ghost_name).await.unwrap().is_none());
}

#[tokio::test]
async fn five_failures_lock_the_account_with_retry_after() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    for attempt in 1..=4 {
        let (status, body, _) = call(
            &app,
            request(
                "POST",
                "/login",
                Some(&login_body(&name, "wrong password!")),
                None,
            ),
        )
        .await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    let (status, body, response) = call(
        &app,
        request(
            "POST",
            "/login",
            Some(&login_body(&name, "wrong password!")),
            None,
        ),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "account_locked");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry_after), "{retry_after}");

    // Locked means locked: the right password does not get in either.
    let (status, _, response) = call(
        &app,
        request("POST", "/login", Some(&login_body(&name, PASSWORD)), None),
    )
    .await;
    assert_eq!(status, 429);
    assert!(response.headers().contains_key("retry-after"));

    let entries = audit_entries_where("actor", &name).await;
    assert!(
        entries
            .iter()
            .any(|e| attr(e, "action") == "account_locked")
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| attr(e, "action") == "login_failed")
            .count(),
        6
    );
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    let body = login_body(&name, "wrong password!");
    let attempt = || call(&app, request("POST", "/login", Some(&body), None));
    // Polled together, the five interleave at every await, as requests from concurrent
    // containers interleave at DynamoDB.
    let (a, b, c, d, e) = tokio::join!(attempt(), attempt(), attempt(), attempt(), attempt());
    let statuses = [a.0, b.0, c.0, d.0, e.0];
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // However they interleaved, none was lost: the account is locked now.
    let (status, _, _) = call(
        &app,
        request("POST", "/login", Some(&login_body(&name, PASSWORD)), None),
    )
    .await;
    assert_eq!(status, 429, "statuses were {statuses:?}");
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = login_app().await;
    let name = create_account(Role::User).await;
    for _ in 0..3 {
        call(
            &app,
            request(
                "POST",
                "/login",
                Some(&login_body(&name, "wrong password!")),
                None,
            ),
        )
        .await;
    }
    login_token(&app, &name).await;
    for attempt in 1..=4 {
        let (status, _, _) = call(
            &app,
            request(
                "POST",
                "/login",
                Some(&login_body(&name, "wrong password!")),
                None,
            ),
        )
        .await;
        assert_eq!(
            status, 401,
            "attempt {attempt} after a success must not lock"
        );
    }
}

#[tokio::test]
async fn an_admin_manages_accounts() {
    let app = login_app().await;
    let admin = create_account(Role::Admin).await;
    let token = login_token(&app, &admin).await;
    let newcomer = unique_username("new");
    let create =
        json!({"username": newcomer, "password": "a fine password", "role": "user"}).to_string();

    let (status, body, _) =
        call(&app, request("POST", "/users", Some(&create), Some(&token))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], newcomer.as_str());
    assert_eq!(body["role"], "user");
    assert!(body.get("password_hash").is_none());

    let (status, body, _) =
        call(&app, request("POST", "/users", Some(&create), Some(&token))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    let login = json!({"username": newcomer, "password": "a fine password"}).to_string();
    let (status, _, _) = call(&app, request("POST", "/login", Some(&login), None)).await;
    assert_eq!(status, 200);

    // Page through the list one at a time until the newcomer shows up.
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/users?limit=1&cursor={c}"),
            None => "/users?limit=1".to_owned(),
        };
        let (status, body, _) = call(&app, request("GET", &path, None, Some(&token))).await;
        assert_eq!(status, 200, "{body}");
        let users = body["users"].as_array().unwrap();
        assert!(users.len() <= 1);
        for u in users {
            assert!(u.get("password_hash").is_none());
            seen.push(u["username"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(
        seen.contains(&newcomer) && seen.contains(&admin),
        "{seen:?}"
    );

    let (status, _, response) = call(
        &app,
        request("DELETE", &format!("/users/{newcomer}"), None, Some(&token)),
    )
    .await;
    assert_eq!(status, 204);
    assert!(matches!(response.body(), lambda_http::Body::Empty));
    let (status, body, _) = call(
        &app,
        request("DELETE", &format!("/users/{newcomer}"), None, Some(&token)),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = call(&app, request("POST", "/login", Some(&login), None)).await;
    assert_eq!(status, 401, "a deleted user cannot log in");

    let (status, body, _) = call(
        &app,
        request("DELETE", &format!("/users/{admin}"), None, Some(&token)),
    )
    .await;
    assert_eq!(status, 409, "an admin cannot delete themself: {body}");

    let entries = audit_entries_where("actor", &admin).await;
    for action in ["user_created", "user_deleted", "users_listed"] {
        assert!(
            entries
                .iter()
                .any(|e| attr(e, "action") == action && attr(e, "outcome") == "success"),
            "{action}"
        );
    }
}

#[tokio::test]
async fn a_user_token_cannot_use_admin_routes() {
    let app = login_app().await;
    let user = create_account(Role::User).await;
    let token = login_token(&app, &user).await;
    let victim = unique_username("victim");
    let create =
        json!({"username": victim, "password": "a fine password", "role": "admin"}).to_string();
    for req in [
        request("POST", "/users", Some(&create), Some(&token)),
        request("GET", "/users", None, Some(&token)),
        request("DELETE", &format!("/users/{user}"), None, Some(&token)),
    ] {
        let (status, body, _) = call(&app, req).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let store = inferloop::store::users::UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    assert!(
        store
            .get(&inferloop::domain::Username::parse(&victim).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let denied = audit_entries_where("actor", &user).await;
    assert_eq!(
        denied
            .iter()
            .filter(|e| attr(e, "outcome") == "denied")
            .count(),
        3
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_on_admin_routes() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = login_app().await;
    let admin = create_account(Role::Admin).await;
    let uid = account_id(&admin).await.expect("the account's id");
    let now = inferloop::time::now_secs();
    let claims = |aud: &str, iat: u64, exp: u64| {
        json!({"sub": admin, "uid": uid, "role": "admin", "iat": iat, "exp": exp,
               "iss": stack_var("JWT_ISSUER"), "aud": aud, "jti": "x"})
    };
    // Tokens signed by hand with Ed25519 (the stack's key, or another), so each case
    // differs from a valid token in one thing only.
    let sign_ed = |claims: serde_json::Value, pkcs8: &str| {
        use aws_lc_rs::signature::Ed25519KeyPair;
        let der = base64::engine::general_purpose::STANDARD
            .decode(pkcs8)
            .unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(&der).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signature = pair.sign(format!("{header}.{payload}").as_bytes());
        format!(
            "{header}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    };
    let key = stack_var("JWT_SIGNING_KEY");
    let sign = |claims: serde_json::Value| sign_ed(claims, &key);
    let other_key = inferloop::auth::token::new_key_pair().unwrap().0;
    // The classic confusion: HS256 keyed with the public key, which everyone may know.
    let hs256_with_public_key = {
        let public = URL_SAFE_NO_PAD.decode(stack_var("JWT_PUBLIC_KEY")).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(claims(&stack_var("JWT_AUDIENCE"), now, now + 600).to_string());
        let mac = hmac_sha256(&public, format!("{header}.{payload}").as_bytes());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
    };
    let audience = stack_var("JWT_AUDIENCE");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(&audience, now, now + 600).to_string())
    );
    let cases = [
        ("missing", None, "missing_token"),
        ("garbage", Some("garbage".to_owned()), "invalid_token"),
        ("alg none", Some(alg_none), "invalid_token"),
        (
            "expired",
            Some(sign(claims(&audience, now - 7200, now - 3600))),
            "token_expired",
        ),
        (
            "wrong audience",
            Some(sign(claims("another-api", now, now + 600))),
            "invalid_token",
        ),
        (
            "wrong key",
            Some(sign_ed(claims(&audience, now, now + 600), &other_key)),
            "invalid_token",
        ),
        (
            "HS256 with the public key",
            Some(hs256_with_public_key),
            "invalid_token",
        ),
    ];
    // The hand-rolled signer must be right, or the cases above prove nothing.
    let valid = sign(claims(&audience, now, now + 600));
    let (status, body, _) = call(&app, request("GET", "/users?limit=1", None, Some(&valid))).await;
    assert_eq!(status, 200, "{body}");
    for (name, token, code) in cases {
        let (status, body, _) = call(&app, request("GET", "/users", None, token.as_deref())).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}");
    }
    let (status, _, _) = call(&app, {
        let mut req = request("GET", "/users", None, None);
        req.headers_mut()
            .insert("authorization", "Basic YWRtaW46cGFzcw==".parse().unwrap());
        req
    })
    .await;
    assert_eq!(status, 401);
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}
