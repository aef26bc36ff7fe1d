//! The login function: `POST /login`, and for admins `POST /users`, `GET /users`,
//! `DELETE /users/{username}`, `POST /users/{username}/unlock`.
//!
//! A login attempt, whatever the name: the source's throttle, then a slot of the name's
//! failure window is reserved (shared/src/auth/lockout.rs) — refused, it is a 429 at the
//! cost of a verification, without one being made — then the account is read and the
//! password verified against its hash, or against a dummy hash when there is no such
//! account, so the answer, its time and the writes it makes do not tell which names
//! exist.

use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::auth::TokenKeys;
use inferloop::auth::lockout::LOCK_SECS;
use inferloop::auth::password;
use inferloop::coalesce::{Coalescer, Verdict};
use inferloop::config::{self, AuthSettings};
use inferloop::domain::{Password, Role, Username};
use inferloop::http::{
    Admin, Anyone, AuditScope, Ctx, HandlerResult, PageRequest, Router, empty_response,
    encode_cursor, json_response, parse_json,
};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::StoreError;
use inferloop::store::guards::{GuardStore, Reservation};
use inferloop::store::users::{NewUser, UserStore};
use inferloop::time::now_secs;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Login bodies are two short strings; anything larger is not a login.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Refusals that cost no verification (a locked name, a throttled source) are recorded
/// once per name, reason and source in this window; the next entry counts the rest.
const DENIAL_WINDOW: Duration = Duration::from_secs(60);

pub struct App {
    pub common: Common,
    pub users: UserStore,
    pub guards: GuardStore,
    /// Verified against when the username is unknown or the attempt is refused, so
    /// those paths cost what a real verification costs.
    dummy_hash: String,
    denials: Coalescer,
    /// Passwords verified against an account's real hash since cold start: what the
    /// lockout bounds (five per name and window), counted so tests can hold it to that.
    verified: AtomicU64,
}

impl App {
    /// Reads the settings and builds the clients once per container; a missing variable
    /// stops the cold start with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let env = config::process_env();
        let users_table = env.required("USERS_TABLE")?;
        let guards_table = env.required("LOGIN_GUARDS_TABLE")?;
        let mut start = ColdStart::from_env(&env).await?;
        // Login alone holds the key that signs tokens; it is read from its secret here.
        let signing_key = env
            .secret_from_manager("JWT_SIGNING_KEY_SECRET", &start.sdk)
            .await?;
        start.common.tokens = TokenKeys::with_signing_key(
            AuthSettings::from_env(&env)?,
            &String::from_utf8_lossy(&signing_key),
        )?;
        Ok(Self::new(
            start.common,
            UserStore::new(start.dynamodb.clone(), users_table),
            GuardStore::new(start.dynamodb, guards_table),
        )?)
    }

    pub fn new(common: Common, users: UserStore, guards: GuardStore) -> Result<Self, ApiError> {
        ROUTES.check().map_err(ApiError::Internal)?;
        Ok(Self {
            common,
            users,
            guards,
            dummy_hash: password::dummy_hash()?,
            denials: Coalescer::new(DENIAL_WINDOW),
            verified: AtomicU64::new(0),
        })
    }
}

impl App {
    /// Passwords verified against a real hash so far (see the field).
    pub fn verifications(&self) -> u64 {
        self.verified.load(Ordering::SeqCst)
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
        .admin(
            Method::POST,
            "/users/{username}/unlock",
            Action::AccountUnlocked,
            unlock_user,
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

fn throttled(retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_attempts",
        message: format!(
            "too many failed logins from this address; try again in {retry_after_secs} seconds"
        ),
        retry_after_secs,
    }
}

/// Records a refusal that cost no verification, folding repeats (see [`DENIAL_WINDOW`]).
async fn record_denial(app: &App, audit: &AuditScope<'_>, reason: &str) -> Result<(), ApiError> {
    let key = format!(
        "{}|{reason}|{}",
        audit.actor(),
        audit.meta().source_ip.as_deref().unwrap_or("")
    );
    if let Verdict::Pass { folded } = app.denials.check(&key) {
        let mut details = json!({"reason": reason});
        if folded > 0 {
            details["repeated"] = json!(folded);
        }
        audit
            .record(Action::LoginFailed, Outcome::Denied, details)
            .await?;
    }
    Ok(())
}

/// The answer a login gets; the `Cache-Control: no-store` of a token response.
fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn login(app: &App, cx: Ctx<'_, Anyone>) -> HandlerResult {
    let body: LoginRequest = parse_json(&cx.req, MAX_BODY_BYTES)?;
    let username = Username::parse(&body.username)?;
    let password = Password::parse(body.password)?;
    let audit = cx.audit.as_actor(username.as_str());
    let source = audit.meta().source_ip.clone().unwrap_or_default();
    let now = now_secs();
    let dummy = || password::verify_async(password.expose().to_owned(), app.dummy_hash.clone());

    // One address trying many names (credential stuffing) is stopped before any name's
    // window is touched, so it cannot lock out accounts beyond its own budget.
    if let Err(retry_after) = app.guards.take_source(&source, now).await? {
        record_denial(app, &audit, "source_throttled").await?;
        return Err(throttled(retry_after));
    }
    let guard = match app.guards.reserve(username.as_str(), now).await? {
        Reservation::Granted { guard } => guard,
        Reservation::Refused {
            retry_after_secs,
            locked: is_locked,
        } => {
            // The same work a verification costs (the account read, the hash), so a
            // refusal is told apart only by what its 429 says.
            app.users.get(&username).await?;
            dummy().await?;
            let reason = if is_locked { "locked" } else { "window_full" };
            record_denial(app, &audit, reason).await?;
            return Err(locked(retry_after_secs));
        }
    };

    let user = match app.users.get(&username).await? {
        Some(user) => {
            app.verified.fetch_add(1, Ordering::SeqCst);
            let hash = user.password_hash.clone();
            let matches = password::verify_async(password.expose().to_owned(), hash).await?;
            matches.then_some(user).ok_or("wrong_password")
        }
        None => {
            dummy().await?;
            Err("unknown_user")
        }
    };
    let user = match user {
        Ok(user) => user,
        Err(reason) => {
            audit
                .record(
                    Action::LoginFailed,
                    Outcome::Denied,
                    json!({"reason": reason}),
                )
                .await?;
            // This failure holds its slot; the one that fills the window locks the name.
            if guard.locks_at(now) {
                let entry = audit
                    .prepare(
                        Action::AccountLocked,
                        Outcome::Success,
                        json!({"locked_for_secs": LOCK_SECS}),
                    )
                    .await;
                app.guards.lock(username.as_str(), now, entry).await?;
                return Err(locked(LOCK_SECS));
            }
            return Err(wrong_credentials());
        }
    };

    // A successful login clears the name's failures and gives its source its attempt back;
    // both best effort (what stays only costs later attempts a slot).
    if let Err(err) = app.guards.clear(username.as_str()).await {
        tracing::warn!(error = %err, "could not clear a login window");
    }
    if let Err(err) = app.guards.release_source(&source, now).await {
        tracing::warn!(error = %err, "could not release a source's attempt");
    }
    let user_id = match user.user_id {
        Some(id) => id,
        None => app.users.assign_id(&username).await?,
    };
    let issued = app.common.tokens.issue(&username, &user_id, user.role)?;
    audit
        .record(
            Action::Login,
            Outcome::Success,
            json!({"role": user.role, "token_id": issued.claims.jti}),
        )
        .await?;
    Ok(no_store(json_response(
        StatusCode::OK,
        &LoginResponse {
            access_token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            role: user.role,
        },
    )))
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
    let entry = cx
        .audit
        .prepare(
            Action::UserCreated,
            Outcome::Success,
            json!({"username": new_user.username, "role": role}),
        )
        .await;
    match app.users.create(&new_user, &created_at, Some(entry)).await {
        Ok(_) => {}
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
    Ok(json_response(
        StatusCode::CREATED,
        &UserCreated {
            username: new_user.username.to_string(),
            role,
            created_at,
        },
    ))
}

/// A page of accounts, each with whether its name is locked now.
async fn list_with_locks(
    app: &App,
    limit: u32,
    after: Option<&str>,
) -> Result<inferloop::store::users::UserPage, StoreError> {
    let mut page = app.users.list(limit, after).await?;
    let names: Vec<String> = page.users.iter().map(|u| u.username.clone()).collect();
    let locked = app.guards.locked_among(&names, now_secs()).await?;
    for user in &mut page.users {
        user.locked = locked.contains(&user.username);
    }
    Ok(page)
}

async fn list_users(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let page = PageRequest::from_request(&cx.req)?;
    let result = list_with_locks(app, page.limit, page.cursor.as_deref()).await;
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
    let entry = cx
        .audit
        .prepare(
            Action::UserDeleted,
            Outcome::Success,
            json!({"username": username}),
        )
        .await;
    match app.users.delete(&username, entry).await {
        Ok(()) => Ok(empty_response(StatusCode::NO_CONTENT)),
        Err(StoreError::NotFound) => Err(ApiError::NotFound(format!("no user named {username}"))),
        Err(err) => Err(err.into()),
    }
}

/// Ends a lock (and forgets the failures) before it runs out: the answer to a lockout
/// used to keep someone out (README, "Logins and lockouts").
async fn unlock_user(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let username = Username::parse(cx.param("username")?)?;
    let guard = app.guards.account(username.as_str()).await?;
    let now = now_secs();
    let entry = cx
        .audit
        .prepare(
            Action::AccountUnlocked,
            Outcome::Success,
            json!({
                "username": username,
                "was_locked": guard.locked_for(now).is_some(),
                "recent_failures": guard.recent_failures(now),
            }),
        )
        .await;
    app.guards.unlock(username.as_str(), entry).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
