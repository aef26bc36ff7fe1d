//! End to end: real HTTP through `cargo lambda watch` (started by `cargo xtask test`) into
//! the login function, against moto.

use inferloop::domain::Role;
use integration_tests::*;
use serde_json::{Value, json};

fn api(path: &str) -> String {
    format!(
        "{}{path}",
        stack_var("INFERLOOP_API_URL").trim_end_matches('/')
    )
}

#[tokio::test]
async fn an_admin_logs_in_over_http_and_lists_users() {
    let admin = create_account(Role::Admin).await;
    let http = reqwest::Client::new();

    let response = http
        .post(api("/login"))
        .json(&json!({"username": admin, "password": PASSWORD}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let response = http
        .get(api("/users?limit=500"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == admin.as_str())
    );

    let newcomer = unique_username("e2e");
    let response = http
        .post(api("/users"))
        .bearer_auth(&token)
        .json(&json!({"username": newcomer, "password": "an e2e password", "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = http
        .delete(api(&format!("/users/{newcomer}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn errors_cross_the_wire_in_the_one_shape() {
    let http = reqwest::Client::new();
    let response = http
        .post(api("/login"))
        .json(&json!({"username": unique_username("nobody"), "password": "not the password"}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    let response = http.get(api("/users")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_token");

    let response = http
        .post(api("/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn a_user_uploads_a_digit_over_http() {
    let user = unique_username("e2e-predict");
    let token = token_for(&user, Role::User).await;
    let (image, _) = user_like_digit(0);
    let http = reqwest::Client::new();
    let response = http
        .post(api("/api/v2/predict"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=e2e")
        .body(multipart_body("e2e", "file", &image))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"]["version"], "v2.0");
    assert!(
        body["prediction"].as_u64().is_some_and(|d| d < 10),
        "{body}"
    );

    let response = http.get(api("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "healthy", "{body}");
}

/// Under watch, as behind the deployed API: a known path with another method is its
/// function's 405 (with Allow), an unknown path is the web function's 404, both in the
/// one error shape rather than the runner's own.
#[tokio::test]
async fn wrong_methods_and_unknown_paths_cross_the_wire_in_the_one_shape() {
    let http = reqwest::Client::new();
    for (method, path, status, allow) in [
        (reqwest::Method::GET, "/login", 405, Some("POST")),
        (reqwest::Method::PUT, "/feedback", 405, Some("GET, POST")),
        (reqwest::Method::GET, "/nowhere", 404, None),
        (reqwest::Method::DELETE, "/api/v3/predict", 404, None),
    ] {
        let response = http
            .request(method.clone(), api(path))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            allow,
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        let code = if status == 405 {
            "method_not_allowed"
        } else {
            "not_found"
        };
        assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
    }
}
