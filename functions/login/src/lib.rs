//! The login function: `POST /login`, and for admins `POST /users`, `GET /users`,
//! `DELETE /users/{username}`.

use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::auth::lockout::LoginGuard;
use inferloop::auth::password;
use inferloop::config;
use inferloop::domain::{Password, Role, Username};
use inferloop::http::{
    Admin, Anyone, Ctx, HandlerResult, PageRequest, Router, empty_response, encode_cursor,
    json_response, parse_json,
};
use inferloop::retry::Backoff;
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::StoreError;
use inferloop::store::users::{NewUser, User, UserStore};
use inferloop::time::now_secs;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;

/// Login bodies are two short strings; anything larger is not a login.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Concurrent failed logins on one account race on its failure list; each retry re-reads.
/// Each round lets at least one writer through, so n concurrent failures need up to n
/// attempts; ten covers a burst of ten on one account.
const GUARD_WRITES: Backoff = Backoff {
    base: Duration::from_millis(5),
    cap: Duration::from_millis(50),
    max_attempts: 10,
    budget: Duration::from_secs(2),
};

pub struct App {
    pub common: Common,
    pub users: UserStore,
    /// Verified against when the username is unknown, so that path costs the same.
    dummy_hash: String,
}

impl App {
    /// Reads the settings and builds the clients once per container; a missing variable
    /// stops the cold start with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let env = config::process_env();
        let users_table = env.required("USERS_TABLE")?;
        let start = ColdStart::from_env(&env).await?;
        Ok(Self::new(
            start.common,
            UserStore::new(start.dynamodb, users_table),
        )?)
    }

    pub fn new(common: Common, users: UserStore) -> Result<Self, ApiError> {
        ROUTES.check().map_err(ApiError::Internal)?;
        Ok(Self {
            common,
            users,
            dummy_hash: password::dummy_hash()?,
        })
    }
}

impl Service for App {
    fn common(&self) -> &Common {
        &self.common
    }
}

static ROUTES: LazyLock<Router<App>> = LazyLock::new(|| {
    Router::new()
        .anyone(Method::POST, "/login", login)
        .admin(Method::POST, "/users", Action::UserCreated, create_user)
        .admin(Method::GET, "/users", Action::UsersListed, list_users)
        .admin(
            Method::DELETE,
            "/users/{username}",
            Action::UserDeleted,
            delete_user,
        )
});

/// This function's route table.
pub fn routes() -> &'static Router<App> {
    &ROUTES
}

/// The Lambda entry point: every request gets an answer, errors in the one shape.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(ROUTES.handle(app, req).await)
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

async fn login(app: &App, cx: Ctx<'_, Anyone>) -> HandlerResult {
    let body: LoginRequest = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let username = Username::parse(&body.username)?;
    let password = Password::parse(body.password)?;
    let audit = cx.audit.as_actor(username.as_str());
    let now = now_secs();

    let Some(user) = app.users.get(&username).await? else {
        password::verify_async(password.expose().to_owned(), app.dummy_hash.clone()).await?;
        // The same conditional write a wrong password makes, failing on the missing item,
        // so both paths make the same round trips.
        let _ = app
            .users
            .save_guard(&username, 0, &LoginGuard::default())
            .await;
        audit
            .record(
                Action::LoginFailed,
                Outcome::Denied,
                json!({"reason": "unknown_user"}),
            )
            .await?;
        return Err(wrong_credentials());
    };

    if let Some(remaining) = user.guard.locked_for(now) {
        audit
            .record(
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
        audit
            .record(
                Action::LoginFailed,
                Outcome::Denied,
                json!({"reason": "wrong_password"}),
            )
            .await?;
        if let Some(remaining) = guard.locked_for(now) {
            audit
                .record(
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
    let issued = app.common.tokens.issue(&username, user.role)?;
    audit
        .record(
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
    let mut schedule = GUARD_WRITES.schedule();
    loop {
        let guard = user.guard.after_failure(now);
        match app
            .users
            .save_guard(&user.username, user.version, &guard)
            .await
        {
            Ok(()) => return Ok(guard),
            Err(StoreError::Conflict) => {
                if schedule.wait(None).await.is_err() {
                    return Err(ApiError::dependency(
                        "the account's failure count kept changing under concurrent logins",
                    ));
                }
                user = app
                    .users
                    .get(&user.username)
                    .await?
                    .ok_or_else(wrong_credentials)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
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

async fn create_user(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: CreateUserRequest = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let username = Username::parse(&body.username)?;
    let password = Password::parse(body.password)?;
    let role = Role::parse(&body.role)?;
    let created_at = inferloop::time::now_rfc3339();
    let new_user = NewUser {
        password_hash: password::hash_async(password).await?,
        username,
        role,
    };
    match app.users.create(&new_user, &created_at).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            cx.audit
                .record(
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
    cx.audit
        .record(
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

async fn list_users(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let page = PageRequest::from_request(&cx.req)?;
    let result = app.users.list(page.limit, page.cursor.as_deref()).await;
    let details = json!({
        "limit": page.limit,
        "page": page.cursor.is_some(),
        "count": result.as_ref().map_or(0, |r| r.users.len()),
    });
    let result = cx.audit.read(Action::UsersListed, details, result).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "users": result.users,
            "next_cursor": result.last_username.as_deref().map(encode_cursor),
        }),
    ))
}

async fn delete_user(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let username = Username::parse(cx.param("username")?)?;
    if username == cx.caller.username {
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
    cx.audit
        .record(
            Action::UserDeleted,
            Outcome::Success,
            json!({"username": username}),
        )
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
