//! Bad input to the login function: each gets its documented 4xx in the one error shape,
//! nothing is written, and nothing panics.

use inferloop::domain::Role;
use integration_tests::*;
use lambda_http::Body;
use serde_json::json;

fn raw(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Body,
    token: Option<&str>,
) -> lambda_http::Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(path);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(body).unwrap()
}

fn cases(username: &str) -> Vec<(&'static str, Option<&'static str>, Body, u16, &'static str)> {
    let json = Some("application/json");
    let long_name = "u".repeat(65);
    vec![
        ("missing body", json, Body::Empty, 400, "missing_body"),
        (
            "non-JSON body",
            json,
            Body::Text("username=bob&password=x".into()),
            400,
            "malformed_json",
        ),
        (
            "truncated JSON",
            json,
            Body::Text(r#"{"username": "bob""#.into()),
            400,
            "malformed_json",
        ),
        (
            "binary garbage",
            json,
            Body::Binary(vec![0xff, 0xfe, 0x00, 0x81]),
            400,
            "malformed_json",
        ),
        (
            "wrong shape: array",
            json,
            Body::Text("[1, 2, 3]".into()),
            422,
            "invalid_body",
        ),
        (
            "wrong shape: number",
            json,
            Body::Text("42".into()),
            422,
            "invalid_body",
        ),
        (
            "wrong type",
            json,
            Body::Text(json!({"username": 7, "password": ["x"], "role": "user"}).to_string()),
            422,
            "invalid_body",
        ),
        (
            "missing fields",
            json,
            Body::Text(json!({"username": username}).to_string()),
            422,
            "invalid_body",
        ),
        (
            "over-long username",
            json,
            Body::Text(
                json!({"username": long_name, "password": "long enough", "role": "user"})
                    .to_string(),
            ),
            422,
            "invalid_field",
        ),
        (
            "over-long password",
            json,
            Body::Text(
                json!({"username": username, "password": "p".repeat(129), "role": "user"})
                    .to_string(),
            ),
            422,
            "invalid_field",
        ),
        (
            "short password",
            json,
            Body::Text(
                json!({"username": username, "password": "short", "role": "user"}).to_string(),
            ),
            422,
            "invalid_field",
        ),
        (
            "bad characters",
            json,
            Body::Text(
                json!({"username": "bob smith", "password": "long enough", "role": "user"})
                    .to_string(),
            ),
            422,
            "invalid_field",
        ),
        (
            "wrong content type",
            Some("text/plain"),
            Body::Text(
                json!({"username": username, "password": "long enough", "role": "user"})
                    .to_string(),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            Body::Text("username=bob".into()),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            None,
            Body::Text(
                json!({"username": username, "password": "long enough", "role": "user"})
                    .to_string(),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "huge body",
            json,
            Body::Text(format!(r#"{{"username":"{}"}}"#, "x".repeat(100_000))),
            413,
            "payload_too_large",
        ),
    ]
}

async fn assert_refused(
    app: &login::App,
    name: &str,
    req: lambda_http::Request,
    status: u16,
    code: &str,
) {
    let (got, body, _) = call(app, req).await;
    assert_eq!(got, status, "{name}: {body}");
    assert_eq!(body["error"]["code"], code, "{name}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty(),
        "{name}: a message explains the refusal"
    );
    let request_id = body["error"]["request_id"].as_str().unwrap_or_default();
    assert!(
        !request_id.is_empty(),
        "{name}: the error names its request"
    );
    assert!(
        audit_entries_where("request_id", request_id)
            .await
            .is_empty(),
        "{name}: a refused request writes nothing"
    );
}

#[tokio::test]
async fn bad_login_bodies_are_refused_and_write_nothing() {
    let app = login_app().await;
    let victim = create_account(Role::User).await;
    for (name, content_type, body, status, code) in cases(&victim) {
        assert_refused(
            &app,
            name,
            raw("POST", "/login", content_type, body, None),
            status,
            code,
        )
        .await;
    }
    // None of that counted as a failed login of the victim's account.
    let guards = inferloop::store::guards::GuardStore::new(
        dynamodb().await,
        stack_var("LOGIN_GUARDS_TABLE"),
    );
    assert!(guards.account(&victim).await.unwrap().is_clear());
}

#[tokio::test]
async fn bad_user_creation_bodies_are_refused_and_create_nothing() {
    let app = login_app().await;
    let admin = create_account(Role::Admin).await;
    let token = login_token(&app, &admin).await;
    let newcomer = unique_username("never");
    for (name, content_type, body, status, code) in cases(&newcomer) {
        assert_refused(
            &app,
            name,
            raw("POST", "/users", content_type, body, Some(&token)),
            status,
            code,
        )
        .await;
    }
    let bad_role =
        json!({"username": newcomer, "password": "long enough", "role": "root"}).to_string();
    assert_refused(
        &app,
        "unknown role",
        request("POST", "/users", Some(&bad_role), Some(&token)),
        422,
        "invalid_field",
    )
    .await;
    let store = inferloop::store::users::UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    assert!(
        store
            .get(&inferloop::domain::Username::parse(&newcomer).unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused() {
    let app = login_app().await;
    let (status, body, _) = call(&app, request("GET", "/nowhere", None, None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body, _) = call(&app, request("GET", "/login", None, None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, body, _) = call(&app, request("PUT", "/users/bob", None, None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let admin = create_account(Role::Admin).await;
    let token = login_token(&app, &admin).await;
    let (status, body, _) = call(
        &app,
        request("DELETE", "/users/a%20b%2F..", None, Some(&token)),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_field"))
    );
}
