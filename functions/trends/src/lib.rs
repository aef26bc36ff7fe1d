//! The trends function, for admins: feedback analytics computed from the Aggregates
//! table (shared/src/store/aggregates.rs), never from the Feedback rows, so a call costs
//! a few BatchGetItem calls per window of days whatever the number of feedback rows.
//!
//! - `GET /admin/trends?days=1..365&model_version=&line=&variant=`: the seed's totals
//!   and distribution, a daily series, the confusion matrix and per-class metrics, per
//!   version and per line, this window against the previous one, the busiest weekday,
//!   a forecast of the daily volume and the A/B test of v1 against v2 (default 30 days).
//! - `GET /admin/report?days=`: the seed's short summary (default 7 days).
//! - `GET /analytics/trends?period=7d|30d|90d&metric=`: accuracy, macro F1, precision
//!   and recall, each this period against the previous one.
//!
//! Every answer says how many DynamoDB read calls it took (`reads`), and every read is
//! an audit entry (best effort: an answer is not withheld for a lost entry).
//!
//! How it reads: the `*#<day>` items of every day of both windows (their counters are
//! every version's, and `versions` names the versions that had feedback that day); then,
//! when a breakdown or a filter needs them, the `<version>#<day>` items those sets name.
//! With `model_version` the version's items are read directly, in one round.
//!
//! Modules: [`params`] parses the query, this one reads the items, [`analysis`]
//! computes over them, [`report`] holds the bodies it answers with.

pub mod analysis;
pub mod params;
pub mod report;

use analysis::{Loaded, Tally, VersionDay};
use inferloop::ApiError;
use inferloop::audit::Action;
use inferloop::config;
use inferloop::http::{Admin, Ctx, HandlerResult, Router, json_response, query_param};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::aggregates::{ALL_VERSIONS, AggregateStore, Counters, key};
use inferloop::time::format_day;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use params::{DEFAULT_REPORT_DAYS, DEFAULT_TREND_DAYS, Filter, Metric, Window};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use time::{Date, OffsetDateTime};

/// BatchGetItem takes at most 100 keys; more are read in concurrent calls.
const KEYS_PER_CALL: usize = 100;

pub struct App {
    pub common: Common,
    pub aggregates: Arc<AggregateStore>,
    /// Pinned "today" (UTC); `None`: the date of each request.
    today: Option<Date>,
}

impl App {
    /// Reads the settings and builds the clients once per container; a missing variable
    /// stops the cold start with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        ROUTES.check()?;
        let env = config::process_env();
        let table = env.required("AGGREGATES_TABLE")?;
        let start = ColdStart::from_env(&env).await?;
        Ok(Self::new(
            start.common,
            AggregateStore::new(start.dynamodb, table),
        ))
    }

    pub fn new(common: Common, aggregates: AggregateStore) -> Self {
        Self {
            common,
            aggregates: Arc::new(aggregates),
            today: None,
        }
    }

    /// Answers as if today (UTC) were `today`: windows always end today, so this is how a
    /// test or a backfill looks at days of its own.
    pub fn with_today(mut self, today: Date) -> Self {
        self.today = Some(today);
        self
    }

    fn today(&self) -> Date {
        self.today
            .unwrap_or_else(|| OffsetDateTime::now_utc().date())
    }
}

impl Service for App {
    fn common(&self) -> &Common {
        &self.common
    }
}

static ROUTES: LazyLock<Router<App>> = LazyLock::new(|| {
    Router::new()
        .admin(Method::GET, "/admin/trends", Action::TrendsViewed, trends)
        .admin(Method::GET, "/admin/report", Action::ReportViewed, report)
        .admin(
            Method::GET,
            "/analytics/trends",
            Action::TrendsViewed,
            analytics,
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

fn filter_of(req: &Request) -> Result<Filter, ApiError> {
    Filter::parse(
        query_param(req, "model_version").as_deref(),
        query_param(req, "line").as_deref(),
        query_param(req, "variant").as_deref(),
    )
}

async fn trends(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let days = params::parse_days(query_param(&cx.req, "days").as_deref(), DEFAULT_TREND_DAYS)?;
    let filter = filter_of(&cx.req)?;
    let window = Window::new(days, app.today());
    let result = load(app, &window, &filter, Need::everything()).await;
    let report = result.map(|loaded| analysis::trends(&window, &filter, &loaded));
    let details = json!({
        "route": "/admin/trends",
        "days": days,
        "model_version": filter.model_version,
        "line": filter.line,
        "variant": filter.variant,
        "total_feedback": report.as_ref().ok().map(|r| r.total_feedback),
        "reads": report.as_ref().ok().map(|r| r.reads),
    });
    let report = cx.audit.read(Action::TrendsViewed, details, report).await?;
    Ok(json_response(StatusCode::OK, &report))
}

async fn report(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let days = params::parse_days(query_param(&cx.req, "days").as_deref(), DEFAULT_REPORT_DAYS)?;
    let window = Window::new(days, app.today());
    let need = Need {
        previous_window: false,
        versions: false,
    };
    let result = load(app, &window, &Filter::default(), need).await;
    let summary = result.map(|loaded| analysis::summary(&window, &loaded));
    let details = json!({
        "route": "/admin/report",
        "days": days,
        "total_feedback": summary.as_ref().ok().map(|s| s.total_feedback),
        "reads": summary.as_ref().ok().map(|s| s.reads),
    });
    let summary = cx
        .audit
        .read(Action::ReportViewed, details, summary)
        .await?;
    Ok(json_response(StatusCode::OK, &summary))
}

async fn analytics(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let (period, days) = params::parse_period(query_param(&cx.req, "period").as_deref())?;
    let metric = query_param(&cx.req, "metric");
    let metrics = Metric::parse_list(metric.as_deref())?;
    let filter = filter_of(&cx.req)?;
    let window = Window::new(days, app.today());
    let need = Need {
        previous_window: true,
        versions: false,
    };
    let result = load(app, &window, &filter, need).await;
    let answer =
        result.map(|loaded| analysis::analytics(&window, period, &metrics, &filter, &loaded));
    let details = json!({
        "route": "/analytics/trends",
        "period": period,
        "metric": metric,
        "model_version": filter.model_version,
        "line": filter.line,
        "variant": filter.variant,
        "reads": answer.as_ref().ok().map(|a| a.reads),
    });
    let answer = cx.audit.read(Action::TrendsViewed, details, answer).await?;
    Ok(json_response(StatusCode::OK, &answer))
}

/// What a route needs read besides the current window's totals.
#[derive(Debug, Clone, Copy)]
struct Need {
    previous_window: bool,
    /// The version items of the current window (breakdowns, A/B test).
    versions: bool,
}

impl Need {
    fn everything() -> Self {
        Self {
            previous_window: true,
            versions: true,
        }
    }
}

/// Reads the aggregates a route needs and restricts them to `filter`.
async fn load(app: &App, window: &Window, filter: &Filter, need: Need) -> Result<Loaded, ApiError> {
    let mut all_days = if need.previous_window {
        window.previous_days()
    } else {
        Vec::new()
    };
    all_days.extend(window.current_days());
    let mut loaded = Loaded {
        days: all_days.iter().map(|d| (*d, Tally::default())).collect(),
        ..Loaded::default()
    };

    let version_keys: Vec<(String, Date)> = match &filter.model_version {
        // One version: its keys are known without asking the day items.
        Some(version) => all_days
            .iter()
            .map(|d| (key(version.as_str(), &format_day(*d)), *d))
            .collect(),
        None => {
            let keys: Vec<(String, Date)> = all_days
                .iter()
                .map(|d| (key(ALL_VERSIONS, &format_day(*d)), *d))
                .collect();
            let (items, reads) = read(app, &keys).await?;
            loaded.reads += reads;
            let mut wanted = Vec::new();
            for (item, day) in items {
                if filter.is_empty() {
                    loaded.days.insert(day, item.tally(false).into());
                }
                // Without a filter the totals are the day items' own; version items are
                // only read for the current window's breakdowns. With a line or an arm,
                // the day's versions are read to see which of them match.
                let versions_needed = if filter.is_empty() {
                    need.versions && window.is_current(day)
                } else {
                    true
                };
                if versions_needed {
                    wanted.extend(
                        item.versions
                            .iter()
                            .map(|v| (key(v, &format_day(day)), day)),
                    );
                }
            }
            wanted
        }
    };
    if version_keys.is_empty() {
        return Ok(loaded);
    }
    let (items, reads) = read(app, &version_keys).await?;
    loaded.reads += reads;
    for (item, day) in items {
        if !filter.admits(&item.model_version, &item.line) {
            continue;
        }
        let tally = Tally::from(item.tally(filter.ab_only()));
        if !filter.is_empty() {
            loaded.days.entry(day).or_default().add(&tally);
        }
        if need.versions && window.is_current(day) {
            loaded.versions.push(VersionDay {
                ab: item.tally(true).into(),
                model_version: item.model_version,
                line: item.line,
                day,
                tally,
            });
        }
    }
    Ok(loaded)
}

/// The items with these keys (absent ones are skipped), each with the day its key
/// names, and the number of BatchGetItem calls. Chunks of 100 keys are read
/// concurrently: a year's window is 730 keys, and its latency should be one call's.
async fn read(
    app: &App,
    keys: &[(String, Date)],
) -> Result<(Vec<(Counters, Date)>, u32), ApiError> {
    let day_of: HashMap<&str, Date> = keys.iter().map(|(k, d)| (k.as_str(), *d)).collect();
    let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
    let (items, calls) = if names.len() <= KEYS_PER_CALL {
        app.aggregates.get_many(&names).await?
    } else {
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in names.chunks(KEYS_PER_CALL) {
            let store = Arc::clone(&app.aggregates);
            let chunk = chunk.to_vec();
            tasks.spawn(async move { store.get_many(&chunk).await });
        }
        let mut items = Vec::new();
        let mut calls = 0u32;
        while let Some(joined) = tasks.join_next().await {
            let (mut got, n) =
                joined.map_err(|e| ApiError::Internal(format!("a read task failed: {e}")))??;
            items.append(&mut got);
            calls += n;
        }
        (items, calls)
    };
    Ok((
        items
            .into_iter()
            .filter_map(|item| {
                let day = day_of.get(item.key.as_str()).copied()?;
                Some((item, day))
            })
            .collect(),
        calls,
    ))
}
