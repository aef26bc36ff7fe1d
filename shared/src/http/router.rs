//! The route table every function declares, and the one router that serves it
//! (DESIGN.md §9).
//!
//! A function lists its routes once, as data, in the template's own path syntax:
//!
//! ```ignore
//! Router::new()
//!     .anyone(Method::POST, "/login", login)
//!     .admin(Method::DELETE, "/users/{username}", Action::UserDeleted, delete_user)
//! ```
//!
//! The router picks the route (API Gateway's `routeKey` when the event names one, else
//! the path, most specific template first, as API Gateway chooses), answers 404 and
//! 405 (with `Allow`) in the one error shape, authenticates the caller once for the
//! route's [`Access`] and hands the handler a typed caller: an admin handler takes an
//! [`Admin`], which only this module can make.
//!
//! Every admin read (GET) leaves exactly one audit entry of the route's action, whatever
//! its outcome: the handler's own, or, when the handler recorded none (it was refused
//! before it read, or forgot), one the router writes with the error. State changes
//! record what they did themselves; a refused non-admin is recorded for every route.

use super::{RequestMeta, error_response, percent_decode};
use crate::audit::{Action, AuditTrail, Outcome};
use crate::auth::accounts::Freshness;
use crate::auth::{Principal, authenticate};
use crate::error::ApiError;
use crate::service::Service;
use http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Instrument;

pub type HandlerResult = Result<Response<Body>, ApiError>;
type BoxFuture<'a> = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'a>>;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// No token needed.
    Anyone,
    /// Any valid token.
    User,
    /// A valid token with the admin role.
    Admin,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anyone => "anyone",
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// The caller of an [`Access::Anyone`] route: nobody in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anyone;

/// The caller of an [`Access::Admin`] route. Only the router makes one, after checking
/// the token's role, so a handler that takes it cannot be reached without an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(Principal);

impl std::ops::Deref for Admin {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// The audit trail bound to one request: its metadata, its actor, and whether anything
/// was recorded for it yet.
pub struct AuditScope<'a> {
    trail: &'a AuditTrail,
    meta: RequestMeta,
    actor: String,
    recorded: &'a AtomicBool,
}

/// What a system scope's `recorded` points at: no router reads it.
static SYSTEM_SCOPE_RECORDED: AtomicBool = AtomicBool::new(false);

impl<'a> AuditScope<'a> {
    /// The trail bound to work no request asked for (a schedule's check, a queue's job):
    /// `actor` is a system actor (`crate::audit::SYSTEM_ACTOR_PREFIX`), `request_id`
    /// names the work.
    pub fn system(trail: &'a AuditTrail, request_id: &str, actor: &str) -> Self {
        AuditScope {
            trail,
            meta: RequestMeta {
                request_id: request_id.to_owned(),
                source_ip: None,
                user_agent: None,
            },
            actor: actor.to_owned(),
            recorded: &SYSTEM_SCOPE_RECORDED,
        }
    }

    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The same request with another actor: a login attempt is the attempted account's.
    pub fn as_actor(&self, actor: &str) -> AuditScope<'a> {
        AuditScope {
            trail: self.trail,
            meta: self.meta.clone(),
            actor: actor.to_owned(),
            recorded: self.recorded,
        }
    }

    /// Records a state change (or a refusal). The error is for the caller to propagate:
    /// a change whose entry cannot be written answers 503.
    pub async fn record(
        &self,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Result<(), crate::audit::AuditError> {
        self.recorded.store(true, Ordering::SeqCst);
        self.trail
            .record(&self.meta, &self.actor, action, outcome, details)
            .await
    }

    /// The entry of a state change, to be written in the same transaction as the change
    /// (see [`AuditTrail::prepare`]).
    pub async fn prepare(
        &self,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> crate::audit::Pending<'a> {
        self.recorded.store(true, Ordering::SeqCst);
        self.trail
            .prepare(&self.meta, &self.actor, action, outcome, details)
            .await
    }

    /// Records without failing the request: the answer is given, a lost entry is logged.
    pub async fn record_best_effort(
        &self,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
    ) {
        self.recorded.store(true, Ordering::SeqCst);
        self.trail
            .record_best_effort(&self.meta, &self.actor, action, outcome, details)
            .await;
    }

    /// Records a read together with its result (`success`, or `error` with the error's
    /// code), then hands the result back: one call per read, whatever its outcome.
    pub async fn read<T, E: Into<ApiError>>(
        &self,
        action: Action,
        details: serde_json::Value,
        result: Result<T, E>,
    ) -> Result<T, ApiError> {
        let result = result.map_err(Into::into);
        self.record_result(action, details, result.as_ref().err())
            .await;
        result
    }

    async fn record_result(
        &self,
        action: Action,
        mut details: serde_json::Value,
        error: Option<&ApiError>,
    ) {
        let outcome = match error {
            None => Outcome::Success,
            Some(err) => {
                if let Some(map) = details.as_object_mut() {
                    map.insert("error".into(), json!(err.code()));
                    map.insert("status".into(), json!(err.status_code().as_u16()));
                }
                Outcome::Error
            }
        };
        self.record_best_effort(action, outcome, details).await;
    }
}

/// One request as a handler receives it.
pub struct Ctx<'a, C> {
    pub req: Request,
    pub caller: C,
    pub audit: AuditScope<'a>,
    params: Params,
}

impl<C> Ctx<'_, C> {
    /// A path parameter of the route's template (`{username}`), percent-decoded.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ApiError::Internal(format!("the route has no parameter {name}")))
    }

    pub fn meta(&self) -> &RequestMeta {
        self.audit.meta()
    }
}

/// An async handler `fn(&App, Ctx<'_, C>) -> HandlerResult`. The trait exists only to
/// name the future's lifetime, which plain `Fn` bounds cannot do for async fns.
pub trait Handler<'a, A: 'a, C: 'a>: Send + Sync + 'static {
    type Future: Future<Output = HandlerResult> + Send + 'a;
    fn call(&self, app: &'a A, cx: Ctx<'a, C>) -> Self::Future;
}

impl<'a, A: 'a, C: 'a, F, Fut> Handler<'a, A, C> for F
where
    F: Fn(&'a A, Ctx<'a, C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, app: &'a A, cx: Ctx<'a, C>) -> Fut {
        self(app, cx)
    }
}

type Boxed<A, C> = Box<dyn for<'a> Fn(&'a A, Ctx<'a, C>) -> BoxFuture<'a> + Send + Sync>;

enum Dispatch<A> {
    Anyone(Boxed<A, Anyone>),
    User(Boxed<A, Principal>),
    Admin(Action, Boxed<A, Admin>),
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(&'static str),
}

/// A route's method and path template: what API Gateway's `routeKey` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    pub method: Method,
    pub path: &'static str,
    segments: Vec<Segment>,
}

type Params = Vec<(&'static str, String)>;

impl RouteKey {
    /// `Err` names what is wrong with the template.
    pub fn new(method: Method, path: &'static str) -> Result<Self, String> {
        Ok(Self {
            segments: parse_template(path)?,
            method,
            path,
        })
    }

    /// API Gateway's name for this route: `"DELETE /users/{username}"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters if `segments` (decoded) fit this template.
    fn matches(&self, segments: &[String]) -> Option<Params> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (template, actual) in self.segments.iter().zip(segments) {
            match template {
                Segment::Literal(text) if text == actual => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((*name, actual.clone())),
            }
        }
        Some(params)
    }

    /// Whether both templates fit exactly the same paths (parameter names aside):
    /// `/a/{id}` and `/a/{other}` would be one route declared twice.
    fn same_paths(&self, other: &Self) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }

    /// Literal segments outrank parameters, leftmost first: `/alerts/analytics` is
    /// chosen over `/alerts/{alert_id}` for the path `/alerts/analytics`.
    fn specificity(&self) -> Vec<bool> {
        self.segments
            .iter()
            .map(|s| matches!(s, Segment::Literal(_)))
            .collect()
    }
}

/// Which of `keys` serves `method` on `path`, with its parameters, as API Gateway
/// chooses: among the templates that fit the path and have the method, the most
/// specific. None fits: 404; some fit, none with this method: 405 naming theirs.
fn pick<'k>(
    keys: impl Iterator<Item = &'k RouteKey>,
    method: &Method,
    path: &str,
) -> Result<(usize, Params), ApiError> {
    let segments = path_segments(path);
    let fitting: Vec<(usize, &RouteKey, Params)> = keys
        .enumerate()
        .filter_map(|(i, k)| k.matches(&segments).map(|p| (i, k, p)))
        .collect();
    if fitting.is_empty() {
        return Err(ApiError::NotFound(format!("no route for {path}")));
    }
    let best = fitting
        .iter()
        .filter(|(_, k, _)| k.method == method)
        .max_by_key(|(_, k, _)| k.specificity());
    match best {
        Some((index, _, params)) => Ok((*index, params.clone())),
        None => {
            let mut allow: Vec<Method> = fitting.iter().map(|(_, k, _)| k.method.clone()).collect();
            allow.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            allow.dedup();
            Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                path: path.to_owned(),
                allow,
            })
        }
    }
}

/// The routes of the whole API without their handlers: what the gateway's `$default`
/// route answers for a request no route took (404, or 405 with `Allow`).
#[derive(Debug, Clone, Default)]
pub struct RouteSet {
    keys: Vec<RouteKey>,
}

impl RouteSet {
    /// `Err` names the first malformed template.
    pub fn new(routes: &[(&'static str, &'static str)]) -> Result<Self, String> {
        let keys = routes
            .iter()
            .map(|(method, path)| {
                let method = Method::from_bytes(method.as_bytes())
                    .map_err(|_| format!("{method:?} is not a method"))?;
                RouteKey::new(method, path)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The error a request that no route took gets.
    pub fn unmatched(&self, req: &Request) -> ApiError {
        match pick(self.keys.iter(), req.method(), req.uri().path()) {
            Err(err) => err,
            // A route the gateway should have taken itself: say so rather than guess.
            Ok((index, _)) => ApiError::NotFound(format!(
                "{} is not served here",
                self.keys.get(index).map_or(String::new(), RouteKey::key)
            )),
        }
    }
}

/// One route of a table.
pub struct Route<A> {
    pub key: RouteKey,
    pub access: Access,
    /// What an admin route's audit entries record (`None` for others).
    pub action: Option<Action>,
    dispatch: Dispatch<A>,
}

impl<A> Route<A> {
    pub fn method(&self) -> &Method {
        &self.key.method
    }

    pub fn path(&self) -> &'static str {
        self.key.path
    }
}

/// Splits a template into segments; `Err` names what is wrong with it.
fn parse_template(path: &'static str) -> Result<Vec<Segment>, String> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("{path:?} does not start with '/'"))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                valid
                    .then_some(Segment::Param(name))
                    .ok_or_else(|| format!("{path:?}: {segment:?} is not a parameter name"))
            } else if segment.is_empty() || segment.contains(['{', '}']) {
                Err(format!("{path:?}: segment {segment:?} is not allowed"))
            } else {
                Ok(Segment::Literal(segment.to_owned()))
            }
        })
        .collect()
}

/// A function's route table.
pub struct Router<A> {
    routes: Vec<Route<A>>,
    /// Mistakes in the table (a malformed template, a route declared twice), found as it
    /// is built; [`Router::check`] reports them at cold start and in the tests.
    problems: Vec<String>,
}

impl<A: Service> Default for Router<A> {
    fn default() -> Self {
        Self::new()
    }
}

/// The decoded, non-empty segments of a request path. Empty segments are dropped, so
/// `/users/` and `//users` are `/users`; `%2F` inside a segment stays inside it.
fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

impl<A: Service> Router<A> {
    pub fn new() -> Self {
        Self {
            routes: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        action: Option<Action>,
        dispatch: Dispatch<A>,
    ) -> Self {
        let key = match RouteKey::new(method.clone(), path) {
            Ok(key) => key,
            Err(problem) => {
                self.problems.push(problem);
                return self;
            }
        };
        if self
            .routes
            .iter()
            .any(|r| r.key.method == key.method && r.key.same_paths(&key))
        {
            self.problems
                .push(format!("{method} {path} is declared twice"));
        }
        self.routes.push(Route {
            key,
            access,
            action,
            dispatch,
        });
        self
    }

    /// A route anyone may call.
    pub fn anyone<H>(self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: for<'a> Handler<'a, A, Anyone>,
    {
        let boxed: Boxed<A, Anyone> = Box::new(move |app, cx| Box::pin(handler.call(app, cx)));
        self.add(method, path, Access::Anyone, None, Dispatch::Anyone(boxed))
    }

    /// A route for any signed-in caller.
    pub fn user<H>(self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: for<'a> Handler<'a, A, Principal>,
    {
        let boxed: Boxed<A, Principal> = Box::new(move |app, cx| Box::pin(handler.call(app, cx)));
        self.add(method, path, Access::User, None, Dispatch::User(boxed))
    }

    /// A route for admins; `action` is what its audit entries record, a refused
    /// non-admin included.
    pub fn admin<H>(self, method: Method, path: &'static str, action: Action, handler: H) -> Self
    where
        H: for<'a> Handler<'a, A, Admin>,
    {
        let boxed: Boxed<A, Admin> = Box::new(move |app, cx| Box::pin(handler.call(app, cx)));
        self.add(
            method,
            path,
            Access::Admin,
            Some(action),
            Dispatch::Admin(action, boxed),
        )
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route<A>> {
        self.routes.iter()
    }

    /// `Ok` when every template is well-formed and no route is declared twice.
    pub fn check(&self) -> Result<(), String> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(format!("bad route table: {}", self.problems.join("; ")))
        }
    }

    /// The route a request asks for and its path parameters: 404 when no template fits
    /// the path, 405 (naming the allowed methods) when one fits but not for this method.
    pub fn resolve(&self, req: &Request) -> Result<(&Route<A>, Params), ApiError> {
        if let Some(found) = self.by_route_key(req) {
            return Ok(found);
        }
        let (index, params) = pick(
            self.routes.iter().map(|r| &r.key),
            req.method(),
            req.uri().path(),
        )?;
        let route = self
            .routes
            .get(index)
            .ok_or_else(|| ApiError::Internal("route index out of range".into()))?;
        Ok((route, params))
    }

    /// The route API Gateway says it matched (`routeKey`, e.g. `DELETE /users/{username}`),
    /// with the parameters it extracted, or else those of the template on the path.
    /// `$default`, a key this table does not know, or no key at all: `None`, and the
    /// path decides, as it does under `cargo lambda watch` (whose events always say
    /// `$default`).
    fn by_route_key(&self, req: &Request) -> Option<(&Route<A>, Params)> {
        let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() else {
            return None;
        };
        let key = ctx.route_key.as_deref()?;
        let route = self.routes.iter().find(|r| r.key.key() == key)?;
        let given = req.path_parameters_ref();
        let params = match route.key.matches(&path_segments(req.uri().path())) {
            Some(params) => params,
            // The path as the function sees it may carry a stage prefix; the gateway's
            // own parameters are then the ones to trust.
            None => route
                .key
                .segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(name) => Some((*name, given?.first(name)?.to_owned())),
                    Segment::Literal(_) => None,
                })
                .collect(),
        };
        Some((route, params))
    }

    /// Serves one request: every request gets an answer, errors in the one shape, with
    /// the request id on every log line. 5xx detail is logged here, once.
    pub async fn handle(&self, app: &A, req: Request) -> Response<Body> {
        let meta = RequestMeta::from_request(&req);
        let span = tracing::info_span!(
            "request",
            request_id = %meta.request_id,
            method = %req.method(),
            path = %req.uri().path(),
        );
        let request_id = meta.request_id.clone();
        let path = req.uri().path().to_owned();
        async move {
            let response = match self.dispatch(app, meta, req).await {
                Ok(response) => response,
                Err(err) => {
                    // A 5xx reaches people (the seeds e-mailed every 500): one critical
                    // alert per instance and code in five minutes, the rest counted.
                    if err.is_fault()
                        && let Some(notifier) = &app.common().notifier
                    {
                        notifier
                            .critical_error(err.code(), &request_id, &path)
                            .await;
                    }
                    error_response(&err, &request_id)
                }
            };
            tracing::info!(status = response.status().as_u16(), "answered");
            response
        }
        .instrument(span)
        .await
    }

    async fn dispatch(&self, app: &A, meta: RequestMeta, req: Request) -> HandlerResult {
        let (route, params) = self.resolve(&req)?;
        let recorded = AtomicBool::new(false);
        let scope = |actor: &str| AuditScope {
            trail: &app.common().audit,
            meta: meta.clone(),
            actor: actor.to_owned(),
            recorded: &recorded,
        };
        match &route.dispatch {
            Dispatch::Anyone(handler) => {
                let cx = Ctx {
                    audit: scope(""),
                    req,
                    caller: Anyone,
                    params,
                };
                handler(app, cx).await
            }
            Dispatch::User(handler) => {
                let principal = authenticate(&req, &app.common().tokens)?;
                app.common()
                    .accounts
                    .confirm(&principal, Freshness::Cached)
                    .await?;
                let cx = Ctx {
                    audit: scope(principal.username.as_str()),
                    req,
                    caller: principal,
                    params,
                };
                handler(app, cx).await
            }
            Dispatch::Admin(action, handler) => {
                let action = *action;
                let principal = authenticate(&req, &app.common().tokens)?;
                // A removed or demoted admin's token stops at once: read the account now.
                app.common()
                    .accounts
                    .confirm(&principal, Freshness::Now)
                    .await?;
                let audit = scope(principal.username.as_str());
                if !principal.is_admin() {
                    audit
                        .record_best_effort(
                            action,
                            Outcome::Denied,
                            json!({"reason": "not_admin", "path": req.uri().path()}),
                        )
                        .await;
                    return Err(ApiError::admins_only());
                }
                let path = req.uri().path().to_owned();
                let is_read = req.method() == Method::GET;
                let cx = Ctx {
                    audit: scope(principal.username.as_str()),
                    req,
                    caller: Admin(principal),
                    params,
                };
                let result = handler(app, cx).await;
                // A read that recorded nothing (refused before it read, or a handler
                // that forgot) is recorded here. A state change records what it did
                // itself; one refused before it changed anything leaves no entry.
                if is_read && !recorded.load(Ordering::SeqCst) {
                    audit
                        .record_result(action, json!({"path": path}), result.as_ref().err())
                        .await;
                }
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        assert_eq!(parse_template("/").unwrap(), vec![]);
        assert_eq!(
            parse_template("/users/{username}").unwrap(),
            vec![Segment::Literal("users".into()), Segment::Param("username")]
        );
        for bad in [
            "users",
            "/users/",
            "/users//x",
            "/users/{}",
            "/users/{a-b}",
            "/a{b}",
        ] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }

    fn keys(routes: &[(&'static str, &'static str)]) -> Vec<RouteKey> {
        routes
            .iter()
            .map(|(m, p)| RouteKey::new(Method::from_bytes(m.as_bytes()).unwrap(), p).unwrap())
            .collect()
    }

    #[test]
    fn the_most_specific_template_with_the_method_wins() {
        let table = keys(&[
            ("GET", "/alerts/{alert_id}"),
            ("GET", "/alerts/analytics"),
            ("POST", "/alerts/{alert_id}"),
        ]);
        let (i, params) = pick(table.iter(), &Method::GET, "/alerts/analytics").unwrap();
        assert_eq!((i, params), (1, vec![]));
        let (i, params) = pick(table.iter(), &Method::GET, "/alerts/01J").unwrap();
        assert_eq!((i, params), (0, vec![("alert_id", "01J".to_owned())]));
        // As API Gateway: POST on the literal path falls to the template that has POST.
        let (i, params) = pick(table.iter(), &Method::POST, "/alerts/analytics").unwrap();
        assert_eq!((i, params), (2, vec![("alert_id", "analytics".to_owned())]));
        let (_, params) = pick(table.iter(), &Method::GET, "/alerts/a%20b%2Fc").unwrap();
        assert_eq!(params, vec![("alert_id", "a b/c".to_owned())]);
    }

    #[test]
    fn a_known_path_with_another_method_is_405_naming_every_fitting_method() {
        let table = keys(&[
            ("GET", "/alerts/{alert_id}"),
            ("GET", "/alerts/analytics"),
            ("POST", "/alerts/{alert_id}"),
            ("GET", "/users"),
        ]);
        let err = pick(table.iter(), &Method::DELETE, "/alerts/analytics").unwrap_err();
        assert_eq!(err.status_code(), http::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            err.allowed_methods().unwrap(),
            [Method::GET, Method::POST].as_slice()
        );
        let err = pick(table.iter(), &Method::GET, "/alerts").unwrap_err();
        assert_eq!(err.code(), "not_found");
        let err = pick(table.iter(), &Method::GET, "/users/x").unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    #[test]
    fn a_route_set_answers_what_no_route_took() {
        let set =
            RouteSet::new(&[("POST", "/login"), ("GET", "/users"), ("POST", "/users")]).unwrap();
        let req = |method: &str, path: &str| {
            http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::Empty)
                .unwrap()
        };
        let err = set.unmatched(&req("GET", "/login"));
        assert_eq!(err.allowed_methods().unwrap(), [Method::POST].as_slice());
        assert_eq!(set.unmatched(&req("GET", "/x")).code(), "not_found");
        assert_eq!(set.unmatched(&req("POST", "/login")).code(), "not_found");
        assert!(RouteSet::new(&[("GET", "no-slash")]).is_err());
        assert!(RouteSet::new(&[("G ET", "/x")]).is_err());
    }

    /// A state that is never built: the table is checked without one.
    struct Unbuilt(crate::service::Common);

    impl Service for Unbuilt {
        fn common(&self) -> &crate::service::Common {
            &self.0
        }
    }

    async fn nothing(_: &Unbuilt, _: Ctx<'_, Anyone>) -> HandlerResult {
        Err(ApiError::NotFound("nothing".into()))
    }

    #[test]
    fn a_table_with_a_bad_template_or_a_route_twice_is_refused() {
        let good = Router::<Unbuilt>::new()
            .anyone(Method::GET, "/a/{id}", nothing)
            .anyone(Method::POST, "/a/{id}", nothing);
        assert!(good.check().is_ok());
        assert_eq!(good.routes().count(), 2);
        let twice = Router::<Unbuilt>::new()
            .anyone(Method::GET, "/a/{id}", nothing)
            .anyone(Method::GET, "/a/{other}", nothing);
        let err = twice.check().unwrap_err();
        assert!(err.contains("declared twice"), "{err}");
        let malformed = Router::<Unbuilt>::new().anyone(Method::GET, "a", nothing);
        assert!(malformed.check().unwrap_err().contains("\"a\""));
    }

    #[test]
    fn paths_are_split_then_decoded() {
        assert_eq!(path_segments("//users/a%2Fb/"), vec!["users", "a/b"]);
        assert!(path_segments("/").is_empty());
    }
}
