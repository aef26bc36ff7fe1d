//! The audit-logs function, for admins: `GET /admin/audit_logs` and
//! `GET /admin/activity_logs` list the trail newest first (the second only what people
//! did), `GET /admin/audit_logs/verify` recomputes its hash chains. Every read is itself
//! an audit entry.
//!
//! Its role is the only one that may read the Audit table (template.yaml).

use inferloop::ApiError;
use inferloop::audit::query::{Cursor, ListFilter};
use inferloop::audit::{Action, AuditReader, Outcome};
use inferloop::config;
use inferloop::http::{Admin, Ctx, HandlerResult, PageRequest, Router, json_response, query_param};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::cursor::{fingerprint, page_range};
use inferloop::time::TimeRange;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;
use time::OffsetDateTime;

/// The window a listing or check covers when `from` is not given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// Twice the longest username (64): audit actors also include `system:<what>` names
/// and the names of failed logins, which need not be valid usernames, so the filter
/// is not a `Username`; a longer one is a mistake.
const MAX_USERNAME_CHARS: usize = 128;

pub struct App {
    pub common: Common,
    pub reader: AuditReader,
}

impl App {
    /// Reads the settings and builds the clients once per container; a missing variable
    /// stops the cold start with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        ROUTES.check()?;
        let env = config::process_env();
        let start = ColdStart::from_env(&env).await?;
        let reader = AuditReader::new(start.dynamodb, &start.audit_settings);
        Ok(Self::new(start.common, reader))
    }

    pub fn new(common: Common, reader: AuditReader) -> Self {
        Self { common, reader }
    }
}

impl Service for App {
    fn common(&self) -> &Common {
        &self.common
    }
}

static ROUTES: LazyLock<Router<App>> = LazyLock::new(|| {
    Router::new()
        .admin(
            Method::GET,
            "/admin/audit_logs",
            Action::AuditViewed,
            list_audit,
        )
        .admin(
            Method::GET,
            "/admin/activity_logs",
            Action::AuditViewed,
            list_activity,
        )
        .admin(
            Method::GET,
            "/admin/audit_logs/verify",
            Action::AuditVerified,
            verify,
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

async fn list_audit(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    list(app, cx, Listing::Audit).await
}

async fn list_activity(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    list(app, cx, Listing::Activity).await
}

/// The window of `from`..=`to`: without `to`, up to `now`; without `from`, the
/// [`DEFAULT_WINDOW`] before `to`.
pub fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
    now: OffsetDateTime,
) -> Result<TimeRange, ApiError> {
    inferloop::time::resolve_range(from, to, now, DEFAULT_WINDOW)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every entry.
    Audit,
    /// What people did: user-initiated actions by actors that are not `system:`.
    Activity,
}

impl Listing {
    fn name(self) -> &'static str {
        match self {
            Self::Audit => "audit_logs",
            Self::Activity => "activity_logs",
        }
    }
}

/// The filters of a listing, as given and as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub listing: Listing,
    pub username: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl ListParams {
    pub fn from_request(req: &Request, listing: Listing) -> Self {
        Self {
            listing,
            username: query_param(req, "username"),
            action: query_param(req, "action"),
            outcome: query_param(req, "outcome"),
            from: query_param(req, "from"),
            to: query_param(req, "to"),
        }
    }

    pub fn filter(&self) -> Result<ListFilter, ApiError> {
        if let Some(username) = &self.username
            && (username.chars().count() > MAX_USERNAME_CHARS
                || username.chars().any(char::is_control))
        {
            return Err(ApiError::invalid_parameter(format!(
                "username must be at most {MAX_USERNAME_CHARS} printable characters"
            )));
        }
        let action = self
            .action
            .as_deref()
            .map(|raw| {
                Action::parse(raw).ok_or_else(|| {
                    let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                    ApiError::invalid_parameter(format!(
                        "action {raw:?} is not one of {}",
                        known.join(", ")
                    ))
                })
            })
            .transpose()?;
        let user_initiated_only = self.listing == Listing::Activity;
        if let Some(action) = action
            && user_initiated_only
            && !action.is_user_initiated()
        {
            return Err(ApiError::invalid_parameter(format!(
                "{} is not a user action; /admin/audit_logs lists it",
                action.as_str()
            )));
        }
        let outcome = self
            .outcome
            .as_deref()
            .map(|raw| {
                Outcome::parse(raw).ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "outcome {raw:?} is not one of success, denied, error"
                    ))
                })
            })
            .transpose()?;
        Ok(ListFilter {
            actor: self.username.clone(),
            action,
            outcome,
            user_initiated_only,
        })
    }

    /// What a cursor is bound to: the parameters exactly as given, so that a cursor is
    /// refused by any other listing, and by the same one with other filters.
    pub fn fingerprint(&self) -> String {
        fingerprint(&json!([
            self.listing.name(),
            self.username,
            self.action,
            self.outcome,
            self.from,
            self.to
        ]))
    }
}

async fn list(app: &App, cx: Ctx<'_, Admin>, listing: Listing) -> HandlerResult {
    let params = ListParams::from_request(&cx.req, listing);
    let filter = params.filter()?;
    let page = PageRequest::from_request(&cx.req)?;
    let query = params.fingerprint();
    let (range, start) = page_range(
        page.cursor.as_deref(),
        &query,
        filter.actor.is_none(),
        params.from.as_deref(),
        params.to.as_deref(),
        DEFAULT_WINDOW,
    )?;
    let result = app.reader.list(&filter, &range, page.limit, start).await;
    let details = json!({
        "listing": listing.name(),
        "username": params.username,
        "action": params.action,
        "outcome": params.outcome,
        "from": range.from_key(),
        "to": range.to_key(),
        "page": page.cursor.is_some(),
        "returned": result.as_ref().map_or(0, |r| r.entries.len()),
    });
    let result = cx.audit.read(Action::AuditViewed, details, result).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "entries": result.entries,
            "next_cursor": result
                .next
                .map(|position| Cursor::new(&query, &range, position).encode()),
            "from": range.from_key(),
            "to": range.to_key(),
        }),
    ))
}

async fn verify(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let range = resolve_range(
        query_param(&cx.req, "from").as_deref(),
        query_param(&cx.req, "to").as_deref(),
        OffsetDateTime::now_utc(),
    )?;
    let result = app.reader.verify(&range).await;
    let mut details = json!({"from": range.from_key(), "to": range.to_key()});
    if let Ok(report) = &result {
        details["verified"] = json!(report.verified);
        details["chains"] = json!(report.chains);
        details["entries_checked"] = json!(report.entries_checked);
        details["problems"] = json!(report.problems.len());
        if !report.verified {
            tracing::warn!(
                problems = report.problems.len(),
                from = %range.from_key(),
                to = %range.to_key(),
                "the audit trail failed verification"
            );
            inferloop::telemetry::emit_metric(
                "inferloop",
                "AuditIntegrityProblems",
                report.problems.len() as f64,
                "Count",
            );
        }
    }
    let report = cx
        .audit
        .read(Action::AuditVerified, details, result)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "verified": report.verified,
            "chains": report.chains,
            "entries_checked": report.entries_checked,
            "problems": report.problems,
            "problems_truncated": report.problems_truncated,
            "from": range.from_key(),
            "to": range.to_key(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferloop::time::parse_instant;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn status(err: ApiError) -> u16 {
        err.status_code().as_u16()
    }

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert_eq!(
            parse_instant("from", "2026-03-01T12:00:00+02:00", false).unwrap(),
            at("2026-03-01T10:00:00Z")
        );
        assert_eq!(
            parse_instant("from", "2026-03-01", false).unwrap(),
            at("2026-03-01T00:00:00Z")
        );
        assert_eq!(
            parse_instant("to", "2026-03-01", true).unwrap(),
            at("2026-03-01T23:59:59.999999Z")
        );
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "1772000000",
            "2026-03-01 12:00",
        ] {
            let err = parse_instant("from", bad, false).unwrap_err();
            assert_eq!(status(err), 422, "{bad}");
        }
    }

    #[test]
    fn ranges_default_to_the_last_week_and_are_checked() {
        let now = at("2026-03-10T12:00:00Z");
        let r = resolve_range(None, None, now).unwrap();
        assert_eq!(r.from_key(), "2026-03-03T12:00:00.000000Z");
        assert_eq!(r.to_key(), "2026-03-10T12:00:00.000000Z");
        let r = resolve_range(None, Some("2026-03-01"), now).unwrap();
        assert_eq!(r.from_key(), "2026-02-22T23:59:59.999999Z");
        let r = resolve_range(Some("2026-03-09"), None, now).unwrap();
        assert_eq!(r.to_key(), "2026-03-10T12:00:00.000000Z");
        let r = resolve_range(Some("2026-03-01"), Some("2026-03-01"), now).unwrap();
        assert_eq!(r.days_newest_first(), ["2026-03-01"]);

        let inverted = resolve_range(Some("2026-03-02"), Some("2026-03-01"), now).unwrap_err();
        assert_eq!(status(inverted), 422);
        let too_long = resolve_range(Some("2024-01-01"), Some("2026-01-01"), now).unwrap_err();
        assert_eq!(status(too_long), 422);
        assert!(resolve_range(Some("2025-01-01"), Some("2025-12-31"), now).is_ok());
    }

    fn params(listing: Listing, pairs: &[(&str, &str)]) -> ListParams {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        ListParams {
            listing,
            username: get("username"),
            action: get("action"),
            outcome: get("outcome"),
            from: get("from"),
            to: get("to"),
        }
    }

    #[test]
    fn filters_are_parsed_once_and_refused_with_422() {
        let ok = params(
            Listing::Audit,
            &[
                ("username", "bob"),
                ("action", "login"),
                ("outcome", "denied"),
            ],
        )
        .filter()
        .unwrap();
        assert_eq!(ok.actor.as_deref(), Some("bob"));
        assert_eq!(ok.action, Some(Action::Login));
        assert_eq!(ok.outcome, Some(Outcome::Denied));
        assert!(!ok.user_initiated_only);
        assert!(
            params(Listing::Activity, &[])
                .filter()
                .unwrap()
                .user_initiated_only
        );

        for bad in [
            params(Listing::Audit, &[("action", "dance")]),
            params(Listing::Audit, &[("outcome", "ok")]),
            params(Listing::Audit, &[("username", &"x".repeat(129))]),
            params(Listing::Audit, &[("username", "bob\n")]),
            params(Listing::Activity, &[("action", "retrain_started")]),
        ] {
            assert_eq!(status(bad.filter().unwrap_err()), 422, "{bad:?}");
        }
        assert!(
            params(Listing::Audit, &[("action", "retrain_started")])
                .filter()
                .is_ok()
        );
    }

    #[test]
    fn fingerprints_tell_listings_and_filters_apart() {
        let base = params(Listing::Audit, &[("username", "bob")]);
        assert_eq!(base.fingerprint(), base.clone().fingerprint());
        assert_ne!(
            base.fingerprint(),
            params(Listing::Activity, &[("username", "bob")]).fingerprint()
        );
        assert_ne!(
            base.fingerprint(),
            params(Listing::Audit, &[("username", "bob"), ("outcome", "error")]).fingerprint()
        );
        assert_ne!(
            params(Listing::Audit, &[("from", "a")]).fingerprint(),
            params(Listing::Audit, &[("to", "a")]).fingerprint()
        );
    }
}
