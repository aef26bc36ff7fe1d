//! Helpers for the integration tests: the local stack's settings, hand-built API Gateway
//! requests, and accounts made straight in the Users table.
//!
//! Every test here needs the stack that `cargo xtask test` starts (moto + Redis, and
//! `cargo lambda watch` for the end-to-end test). Without it they fail, loudly, saying so.

use aws_sdk_dynamodb::types::AttributeValue;
use inferloop::domain::{Password, Role, Username};
use inferloop::store::users::{NewUser, UserStore};
use lambda_http::{Body, Request, Response};
use std::collections::HashMap;

/// A variable the local stack sets; panics with instructions when it is missing.
pub fn stack_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests run against the local stack. \
             Run them with `cargo xtask test`, which starts moto, Redis and \
             `cargo lambda watch` and sets the environment."
        ),
    }
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    stack_var("AWS_ENDPOINT_URL");
    inferloop::aws::dynamodb(&inferloop::aws::sdk_config().await)
}

/// The login function's state, built exactly as its cold start builds it.
pub async fn login_app() -> login::App {
    stack_var("AWS_ENDPOINT_URL");
    login::App::from_env()
        .await
        .expect("the login function starts with the stack's environment")
}

/// A username no other test uses.
pub fn unique_username(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub const PASSWORD: &str = "correct horse battery staple";

/// Creates an account directly in the Users table, as `cargo xtask create-user` does.
pub async fn create_account(role: Role) -> String {
    let name = unique_username(role.as_str());
    let store = UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    let password = Password::parse(PASSWORD.to_owned()).expect("valid password");
    let user = NewUser {
        username: Username::parse(&name).expect("valid username"),
        password_hash: inferloop::auth::password::hash(&password).expect("hash"),
        role,
    };
    store
        .create(&user, &inferloop::audit::now_rfc3339())
        .await
        .expect("create account");
    name
}

/// An API Gateway request as the function receives it.
pub fn request(method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("user-agent", "integration-tests");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map_or(Body::Empty, |b| Body::Text(b.to_owned()));
    builder.body(body).expect("a valid request")
}

pub fn json_of(response: &Response<Body>) -> serde_json::Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
        Body::Binary(bytes) => serde_json::from_slice(bytes).expect("a JSON body"),
        Body::Empty => serde_json::Value::Null,
        _ => panic!("unexpected body kind"),
    }
}

pub async fn call(app: &login::App, req: Request) -> (u16, serde_json::Value, Response<Body>) {
    let response = login::handle(app, req).await.expect("infallible");
    (response.status().as_u16(), json_of(&response), response)
}

pub async fn login_token(app: &login::App, username: &str) -> String {
    let body = serde_json::json!({"username": username, "password": PASSWORD}).to_string();
    let (status, json, _) = call(app, request("POST", "/login", Some(&body), None)).await;
    assert_eq!(status, 200, "{json}");
    json["access_token"].as_str().expect("a token").to_owned()
}

/// Every audit entry whose attribute `name` equals `value` (a scan: tests only).
pub async fn audit_entries_where(name: &str, value: &str) -> Vec<HashMap<String, AttributeValue>> {
    let client = dynamodb().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(stack_var("AUDIT_TABLE"))
            .filter_expression("#n = :v")
            .expression_attribute_names("#n", name)
            .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan audit");
        items.extend(out.items().iter().cloned());
        start = out.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

pub fn attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or_default()
}
