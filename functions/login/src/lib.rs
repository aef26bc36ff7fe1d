//! The login function: `POST /login`, and for admins `POST /users`, `GET /users`,
//! `DELETE /users/{username}`.

use inferloop::ApiError;
use inferloop::audit::{Action, AuditTrail, Outcome};
use inferloop::auth::lockout::LoginGuard;
use inferloop::auth::token::now_secs;
use inferloop::auth::{TokenKeys, password};
use inferloop::config::{self, AuditSettings, AuthSettings};
use inferloop::domain::{Password, Role, Username};
use inferloop::http::{
    PageRequest, RequestMeta, empty_response, encode_cursor, json_response, parse_json,
    path_segments, serve,
};
use inferloop::store::StoreError;
use inferloop::store::users::{NewUser, User, UserStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;

/// Login bodies are two short strings; anything larger is not a login.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Concurrent failed logins on one account race on its failure list; each retry re-reads.
/// Each round lets at least one writer through, so n concurrent failures need up to n
/// attempts; ten covers a burst of ten on one account.
const GUARD_WRITE_ATTEMPTS: u32 = 10;

pub struct App {
    pub users: UserStore,
    pub audit: AuditTrail,
    pub tokens: TokenKeys,
    /// Verified against when the username is unknown, so that path costs the same.
    dummy_hash: String,
}

impl App {
    /// Reads the settings and builds the clients once per container; a missing variable
    /// stops the cold start with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let env = config::process_env();
        let auth = AuthSettings::from_env(&env)?;
        let audit = AuditSettings::from_env(&env)?;
        let users_table = env.required("USERS_TABLE")?;
        let sdk = inferloop::aws::sdk_config().await;
        let dynamodb = inferloop::aws::dynamodb(&sdk);
        Ok(Self::new(
            UserStore::new(dynamodb.clone(), users_table),
            AuditTrail::new(dynamodb, audit),
            TokenKeys::new(auth),
        )?)
    }

    pub fn new(users: UserStore, audit: AuditTrail, tokens: TokenKeys) -> Result<Self, ApiError> {
        Ok(Self {
            users,
            audit,
            tokens,
            dummy_hash: password::dummy_hash()?,
        })
    }
}

/// The Lambda entry point: every request gets an answer, errors in the one shape.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(serve(req, |meta, req| route(app, meta, req)).await)
}

async fn route(app: &App, meta: RequestMeta, req: Request) -> Result<Response<Body>, ApiError> {
    let segments = path_segments(&req);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    match (segments.as_slice(), &method) {
        (["login"], &Method::POST) => login(app, &meta, &req).await,
        (["users"], &Method::POST) => create_user(app, &meta, &req).await,
        (["users"], &Method::GET) => list_users(app, &meta, &req).await,
        (["users", username], &Method::DELETE) => delete_user(app, &meta, &req, username).await,
        (["login"] | ["users"] | ["users", _], _) => Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: req.uri().path().to_owned(),
        }),
        _ => Err(ApiError::NotFound(format!(
            "no route for {}",
            req.uri().path()
        ))),
    }
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    role: Role,
}

fn invalid_field(err: inferloop::domain::InvalidValue) -> ApiError {
    ApiError::unprocessable("invalid_field", err.to_string())
}

fn wrong_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong username or password")
}

fn locked(retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "account_locked",
        message: format!(
            "too many failed logins; this account is locked for {retry_after_secs} more seconds"
        ),
        retry_after_secs,
    }
}

async fn login(app: &App, meta: &RequestMeta, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: LoginRequest = parse_json(req, MAX_BODY_BYTES)?;
    let username = Username::parse(&body.username).map_err(invalid_field)?;
    let password = Password::parse(body.password).map_err(invalid_field)?;
    let now = now_secs();

    let Some(user) = app.users.get(&username).await? else {
        password::verify_async(password.expose().to_owned(), app.dummy_hash.clone()).await?;
        // The same conditional write a wrong password makes, failing on the missing item,
        // so both paths make the same round trips.
        let _ = app
            .users
            .save_guard(&username, 0, &LoginGuard::default())
            .await;
        app.audit
            .record(
                meta,
                username.as_str(),
                Action::LoginFailed,
                Outcome::Denied,
                json!({"reason": "unknown_user"}),
            )
            .await?;
        return Err(wrong_credentials());
    };

    if let Some(remaining) = user.guard.locked_for(now) {
        app.audit
            .record(
                meta,
                username.as_str(),
                Action::LoginFailed,
                Outcome::Denied,
                json!({"reason": "locked"}),
            )
            .await?;
        return Err(locked(remaining));
    }

    let matches =
        password::verify_async(password.expose().to_owned(), user.password_hash.clone()).await?;
    if !matches {
        let guard = record_failure(app, user, now).await?;
        app.audit
            .record(
                meta,
                username.as_str(),
                Action::LoginFailed,
                Outcome::Denied,
                json!({"reason": "wrong_password"}),
            )
            .await?;
        if let Some(remaining) = guard.locked_for(now) {
            app.audit
                .record(
                    meta,
                    username.as_str(),
                    Action::AccountLocked,
                    Outcome::Success,
                    json!({"locked_for_secs": remaining}),
                )
                .await?;
            return Err(locked(remaining));
        }
        return Err(wrong_credentials());
    }

    if !user.guard.is_clear() {
        // A stale version only means another login changed the list; clearing is best effort.
        match app
            .users
            .save_guard(&username, user.version, &LoginGuard::default())
            .await
        {
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let issued = app.tokens.issue(&username, user.role)?;
    app.audit
        .record(
            meta,
            username.as_str(),
            Action::Login,
            Outcome::Success,
            json!({"role": user.role, "token_id": issued.claims.jti}),
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &LoginResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            role: user.role,
        },
    ))
}

/// Adds a failure to the account's window with optimistic concurrency: a concurrent
/// failure makes the write conflict, and the retry re-reads, so no failure is lost.
async fn record_failure(app: &App, mut user: User, now: u64) -> Result<LoginGuard, ApiError> {
    for attempt in 1..=GUARD_WRITE_ATTEMPTS {
        let guard = user.guard.after_failure(now);
        match app
            .users
            .save_guard(&user.username, user.version, &guard)
            .await
        {
            Ok(()) => return Ok(guard),
            Err(StoreError::Conflict) => {
                // A little jitter spreads the racers out, so the next round has fewer.
                tokio::time::sleep(retry_jitter(attempt)).await;
                user = app
                    .users
                    .get(&user.username)
                    .await?
                    .ok_or_else(wrong_credentials)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::dependency(
        "the account's failure count kept changing under concurrent logins",
    ))
}

/// Up to `attempt` × 5 ms, from the clock's nanoseconds: spreading retries needs no
/// cryptographic randomness.
fn retry_jitter(attempt: u32) -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::time::Duration::from_micros(u64::from(nanos % (attempt * 5_000)))
}

#[derive(Deserialize)]
struct CreateUserRequest {
    username: String,
    password: String,
    role: String,
}

#[derive(Serialize)]
struct UserCreated {
    username: String,
    role: Role,
    created_at: String,
}

async fn create_user(
    app: &App,
    meta: &RequestMeta,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let principal = app
        .audit
        .authorize_admin(meta, req, &app.tokens, Action::UserCreated)
        .await?;
    let body: CreateUserRequest = parse_json(req, MAX_BODY_BYTES)?;
    let username = Username::parse(&body.username).map_err(invalid_field)?;
    let password = Password::parse(body.password).map_err(invalid_field)?;
    let role = Role::parse(&body.role).map_err(invalid_field)?;
    let created_at = inferloop::audit::now_rfc3339();
    let new_user = NewUser {
        password_hash: password::hash_async(password).await?,
        username,
        role,
    };
    match app.users.create(&new_user, &created_at).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            app.audit
                .record(
                    meta,
                    principal.username.as_str(),
                    Action::UserCreated,
                    Outcome::Denied,
                    json!({"username": new_user.username, "reason": "exists"}),
                )
                .await?;
            return Err(ApiError::Conflict(format!(
                "a user named {} already exists",
                new_user.username
            )));
        }
        Err(err) => return Err(err.into()),
    }
    app.audit
        .record(
            meta,
            principal.username.as_str(),
            Action::UserCreated,
            Outcome::Success,
            json!({"username": new_user.username, "role": role}),
        )
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &UserCreated {
            username: new_user.username.to_string(),
            role,
            created_at,
        },
    ))
}

async fn list_users(
    app: &App,
    meta: &RequestMeta,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let principal = app
        .audit
        .authorize_admin(meta, req, &app.tokens, Action::UsersListed)
        .await?;
    let page = PageRequest::from_request(req)?;
    let result = app.users.list(page.limit, page.cursor.as_deref()).await?;
    app.audit
        .record_best_effort(
            meta,
            principal.username.as_str(),
            Action::UsersListed,
            Outcome::Success,
            json!({"count": result.users.len()}),
        )
        .await;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "users": result.users,
            "next_cursor": result.last_username.as_deref().map(encode_cursor),
        }),
    ))
}

async fn delete_user(
    app: &App,
    meta: &RequestMeta,
    req: &Request,
    username: &str,
) -> Result<Response<Body>, ApiError> {
    let principal = app
        .audit
        .authorize_admin(meta, req, &app.tokens, Action::UserDeleted)
        .await?;
    let username = Username::parse(username).map_err(invalid_field)?;
    if username == principal.username {
        return Err(ApiError::Conflict(
            "you cannot delete your own account; ask another admin".into(),
        ));
    }
    match app.users.delete(&username).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            return Err(ApiError::NotFound(format!("no user named {username}")));
        }
        Err(err) => return Err(err.into()),
    }
    app.audit
        .record(
            meta,
            principal.username.as_str(),
            Action::UserDeleted,
            Outcome::Success,
            json!({"username": username}),
        )
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
