//! The shared router, through real functions on the local stack: 404 and 405 in the one
//! shape, each access level refused as it should be, API Gateway's routeKey honoured,
//! and every admin request audited with its outcome — failed reads included.

use inferloop::domain::Role;
use integration_tests::*;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;
use std::collections::HashMap;

fn entries_of(body: &Value) -> String {
    body["error"]["request_id"]
        .as_str()
        .expect("an error carries its request id")
        .to_owned()
}

async fn audited(request_id: &str) -> Vec<(String, String, Value)> {
    audit_entries_where("request_id", request_id)
        .await
        .iter()
        .map(|item| {
            (
                attr(item, "action").to_owned(),
                attr(item, "outcome").to_owned(),
                serde_json::from_str(attr(item, "details")).unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_and_an_unknown_path_404_in_every_function() {
    let login = login_app().await;
    let feedback = feedback_app().await;
    let trends = trends_app().await;
    let predict = predict_app().await;
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("GET", "/login", Some("POST")),
        ("PUT", "/users", Some("GET, POST")),
        ("GET", "/users/bob", Some("DELETE")),
        ("DELETE", "/feedback", Some("GET, POST")),
        ("POST", "/admin/trends", Some("GET")),
        ("GET", "/predict", Some("POST")),
        ("POST", "/health", Some("GET")),
        ("GET", "/nowhere", None),
        ("GET", "/users/bob/extra", None),
    ];
    for (method, path, allow) in cases {
        let req = || request(method, path, None, None);
        let response = match path {
            "/feedback" => feedback::handle(&feedback, req()).await.unwrap(),
            "/admin/trends" => trends::handle(&trends, req()).await.unwrap(),
            "/predict" | "/health" => predict::handle(&predict, req()).await.unwrap(),
            _ => login::handle(&login, req()).await.unwrap(),
        };
        let body = json_of(&response);
        let code = body["error"]["code"].as_str();
        match allow {
            Some(allow) => {
                assert_eq!(response.status(), 405, "{method} {path}: {body}");
                assert_eq!(code, Some("method_not_allowed"));
                assert_eq!(response.headers()["allow"], allow, "{method} {path}");
            }
            None => {
                assert_eq!(response.status(), 404, "{method} {path}: {body}");
                assert_eq!(code, Some("not_found"));
                assert!(response.headers().get("allow").is_none());
            }
        }
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(body["error"]["request_id"].as_str().is_some());
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}

#[tokio::test]
async fn each_access_level_admits_only_its_callers() {
    let app = login_app().await;
    let feedback = feedback_app().await;
    let user = create_account(Role::User).await;
    let user_token = login_token(&app, &user).await;
    let admin = create_account(Role::Admin).await;
    let admin_token = login_token(&app, &admin).await;

    // Anyone: no token needed (a wrong password is the login's own answer, not a 401
    // for the missing token).
    let wrong = serde_json::json!({"username": user, "password": "not the password"}).to_string();
    let (status, body, _) = call(&app, request("POST", "/login", Some(&wrong), None)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );

    // User: a token is needed, any role will do.
    let body = r#"{"prediction_id":"01KAAAAAAAAAAAAAAAAAAAAAAA","correct":true}"#;
    for (token, status, code) in [
        (None, 401, Some("missing_token")),
        (Some("not.a.token"), 401, Some("invalid_token")),
        (Some(user_token.as_str()), 404, Some("not_found")),
        (Some(admin_token.as_str()), 404, Some("not_found")),
    ] {
        let response = feedback::handle(&feedback, request("POST", "/feedback", Some(body), token))
            .await
            .unwrap();
        let json = json_of(&response);
        assert_eq!(
            (response.status().as_u16(), json["error"]["code"].as_str()),
            (status, code),
            "{token:?}: {json}"
        );
    }

    // Admin: a user's token is refused with 403, and the attempt is audited with the
    // route's action.
    for (path, action) in [("/users", "users_listed"), ("/feedback", "feedback_viewed")] {
        let response = if path == "/users" {
            login::handle(&app, request("GET", path, None, Some(&user_token))).await
        } else {
            feedback::handle(&feedback, request("GET", path, None, Some(&user_token))).await
        }
        .unwrap();
        let json = json_of(&response);
        assert_eq!(response.status(), 403, "{json}");
        assert_eq!(json["error"]["code"], "forbidden");
        let entries = audited(&entries_of(&json)).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(
            (entries[0].0.as_str(), entries[0].1.as_str()),
            (action, "denied")
        );
        assert_eq!(entries[0].2["reason"], "not_admin");
    }
    let (status, _, _) = call(&app, request("GET", "/users", None, None)).await;
    assert_eq!(status, 401);
    let (status, _, _) = call(
        &app,
        request("GET", "/users?limit=1", None, Some(&admin_token)),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_admin_reads_are_audited_with_their_error() {
    let app = login_app().await;
    let admin = create_account(Role::Admin).await;
    let token = login_token(&app, &admin).await;

    // The read itself fails: the Users table is not there.
    let start = inferloop::service::ColdStart::from_env(&inferloop::config::process_env())
        .await
        .unwrap();
    let broken = login::App::new(
        start.common,
        inferloop::store::users::UserStore::new(start.dynamodb.clone(), "NoSuchUsersTable"),
        inferloop::store::guards::GuardStore::new(start.dynamodb, stack_var("LOGIN_GUARDS_TABLE")),
    )
    .unwrap();
    let (status, body, _) = call(&broken, request("GET", "/users", None, Some(&token))).await;
    assert_eq!(status, 503, "{body}");
    let entries = audited(&entries_of(&body)).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (action, outcome, details) = &entries[0];
    assert_eq!(
        (action.as_str(), outcome.as_str()),
        ("users_listed", "error")
    );
    assert_eq!(details["error"], "dependency_unavailable");
    assert_eq!(details["status"], 503);

    // Refused before the read (a bad parameter): still one entry, with the 422.
    let (status, body, _) = call(&app, request("GET", "/users?limit=0", None, Some(&token))).await;
    assert_eq!(status, 422);
    let entries = audited(&entries_of(&body)).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].0.as_str(), entries[0].1.as_str()),
        ("users_listed", "error")
    );
    assert_eq!(entries[0].2["error"], "invalid_parameter");

    // The feedback listing, likewise.
    let feedback = feedback_app().await;
    let response = feedback::handle(
        &feedback,
        request(
            "GET",
            "/feedback?cursor=bm90LWEtY3Vyc29y",
            None,
            Some(&token),
        ),
    )
    .await
    .unwrap();
    let json = json_of(&response);
    assert_eq!(response.status(), 400, "{json}");
    assert_eq!(json["error"]["code"], "invalid_cursor");
    let entries = audited(&entries_of(&json)).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].0.as_str(), entries[0].1.as_str()),
        ("feedback_viewed", "error")
    );
}

/// A request as API Gateway delivers it for a matched route: `routeKey` names the
/// route, the path may carry a stage prefix, and the gateway extracted the parameters.
fn gateway_request(
    method: &str,
    route_key: &str,
    path: &str,
    params: &[(&str, &str)],
    token: &str,
) -> Request {
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    let params: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    request(method, path, None, Some(token))
        .with_request_context(RequestContext::ApiGatewayV2(context))
        .with_path_parameters(params)
}

#[tokio::test]
async fn the_gateways_route_key_picks_the_route() {
    let app = login_app().await;
    let admin = create_account(Role::Admin).await;
    let token = login_token(&app, &admin).await;
    let ghost = unique_username("ghost");
    // A stage prefix the templates do not have: the route key and the gateway's own
    // parameters decide.
    let req = gateway_request(
        "DELETE",
        "DELETE /users/{username}",
        &format!("/prod/users/{ghost}"),
        &[("username", &ghost)],
        &token,
    );
    let (status, body, _) = call(&app, req).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&ghost),
        "the handler saw the gateway's parameter: {body}"
    );
    // `$default` (what cargo lambda watch sends) leaves it to the path.
    let req = gateway_request(
        "DELETE",
        "$default",
        &format!("/users/{ghost}"),
        &[],
        &token,
    );
    let (status, body, _) = call(&app, req).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&ghost));
    let req = gateway_request("DELETE", "$default", "/prod/users/x", &[], &token);
    let (status, _, _) = call(&app, req).await;
    assert_eq!(status, 404);
}
