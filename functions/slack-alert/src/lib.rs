//! The slack-alert function: the alerts topic's subscriber, and three admin routes.
//!
//! - SNS: every alert on the topic (an inferloop alert, or a CloudWatch alarm's
//!   notification) becomes a Slack message, and an SES e-mail to `ALERT_EMAILS` at or
//!   above `EMAIL_MIN_SEVERITY`; exactly once per (alert, state, channel)
//!   (inferloop::notify::deliveries). A delivery that still fails after its retries
//!   fails the invocation, so Lambda retries it, then sends it to the dead-letter queue.
//! - `POST /admin/slack_alert` `{message, severity?}`: a manual alert straight to Slack.
//! - `POST /admin/test-email`, `POST /drift/test-email`: a test e-mail through SES.

pub mod webhook;

use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::config::{self, ConfigError, Env};
use inferloop::dispatch::{Invocation, SnsNotification, http_response};
use inferloop::http::{Admin, Ctx, HandlerResult, Router, json_response, parse_json};
use inferloop::notify::deliveries::{self, Channel, Claim, DeliveryStore};
use inferloop::notify::store::AlertStore;
use inferloop::notify::{Alert, Kind, Severity, alarm, email, slack};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::time::now_secs;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::LazyLock;
use webhook::{SendError, Webhook};

/// A manual alert's message: one Slack section's worth.
pub const MAX_MESSAGE_CHARS: usize = 3000;
const MAX_BODY_BYTES: usize = 32 * 1024;
/// What `SLACK_WEBHOOK_SECRET`'s secret holds when no webhook is configured (a secret
/// cannot be empty).
pub const NO_WEBHOOK: &str = "none";

/// Who gets e-mail, from whom, from which severity on.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub recipients: Vec<String>,
    pub sender: String,
    pub min_severity: Severity,
}

impl EmailSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let min = env
            .optional("EMAIL_MIN_SEVERITY")
            .unwrap_or_else(|| "critical".into());
        Ok(Self {
            recipients: env
                .optional("ALERT_EMAILS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            sender: env.required("ALERT_SENDER")?,
            min_severity: Severity::parse(min.trim()).ok_or(ConfigError::Invalid {
                name: "EMAIL_MIN_SEVERITY",
                reason: format!("{min:?} is not one of info, warning, critical"),
            })?,
        })
    }

    pub fn wants(&self, severity: Severity) -> bool {
        !self.recipients.is_empty() && severity >= self.min_severity
    }
}

pub struct App {
    pub common: Common,
    pub alerts: AlertStore,
    pub deliveries: DeliveryStore,
    /// `None` when no webhook is configured.
    pub slack: Option<Webhook>,
    pub ses: aws_sdk_sesv2::Client,
    pub email: EmailSettings,
}

impl App {
    /// Settings, clients and the webhook URL (read from its secret, never from the
    /// configuration), once per container.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        ROUTES.check()?;
        let env = config::process_env();
        let alerts_table = env.required("ALERTS_TABLE")?;
        let deliveries_table = env.required("DELIVERIES_TABLE")?;
        let email = EmailSettings::from_env(&env)?;
        let start = ColdStart::from_env(&env).await?;
        let url = env
            .secret_string_from_manager("SLACK_WEBHOOK_SECRET", &start.sdk)
            .await?;
        let slack = (url.trim() != NO_WEBHOOK && !url.trim().is_empty())
            .then(|| Webhook::new(url.trim().to_owned(), webhook::RETRIES));
        Ok(Self {
            alerts: AlertStore::new(start.dynamodb.clone(), alerts_table),
            deliveries: DeliveryStore::new(start.dynamodb.clone(), deliveries_table),
            ses: aws_sdk_sesv2::Client::new(&start.sdk),
            common: start.common,
            slack,
            email,
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
        .admin(
            Method::POST,
            "/admin/slack_alert",
            Action::SlackAlert,
            slack_alert,
        )
        .admin(
            Method::POST,
            "/admin/test-email",
            Action::TestEmail,
            test_email,
        )
        .admin(
            Method::POST,
            "/drift/test-email",
            Action::TestEmail,
            test_email,
        )
});

/// This function's route table.
pub fn routes() -> &'static Router<App> {
    &ROUTES
}

/// An HTTP request (the admin routes), as the router answers it.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(ROUTES.handle(app, req).await)
}

/// The Lambda entry point for every kind of event this function gets.
pub async fn invoke(
    app: &App,
    invocation: Invocation,
) -> Result<serde_json::Value, lambda_http::Error> {
    match invocation {
        Invocation::Http(req) => Ok(http_response(ROUTES.handle(app, req).await)),
        Invocation::Sns(notifications) => {
            let mut failed = Vec::new();
            for notification in &notifications {
                if let Err(why) = deliver_notification(app, notification).await {
                    failed.push(format!("{}: {why}", notification.message_id));
                }
            }
            if failed.is_empty() {
                Ok(json!({"delivered": notifications.len()}))
            } else {
                // Lambda retries the invocation; deliveries already made are not repeated.
                Err(failed.join("; ").into())
            }
        }
        Invocation::Other(event) => {
            tracing::warn!(event = %event, "an event this function does not take");
            Err("slack-alert takes SNS notifications and its HTTP routes".into())
        }
    }
}

/// The alert a notification carries: ours, or a CloudWatch alarm's state change
/// (recorded in the Alerts table as it arrives, since no function published it).
async fn alert_of(app: &App, notification: &SnsNotification) -> Result<Alert, String> {
    if alarm::is_alarm(&notification.message) {
        let alert = alarm::to_alert(&notification.message)?;
        app.alerts.put(&alert).await.map_err(|e| e.to_string())?;
        return Ok(alert);
    }
    serde_json::from_str(&notification.message).map_err(|e| format!("not an alert: {e}"))
}

async fn deliver_notification(app: &App, notification: &SnsNotification) -> Result<(), String> {
    let alert = match alert_of(app, notification).await {
        Ok(alert) => alert,
        Err(why) => {
            // Retrying cannot make it readable: logged, and taken as done.
            tracing::error!(message_id = %notification.message_id, error = %why, "an unreadable notification");
            return Ok(());
        }
    };
    deliver(app, &alert).await
}

/// Sends `alert` on each channel it is for, once per (alert, state, channel).
pub async fn deliver(app: &App, alert: &Alert) -> Result<(), String> {
    let mut failures = Vec::new();
    if let Some(webhook) = &app.slack {
        let message = slack::message(alert);
        if let Err(why) = once(app, alert, Channel::Slack, || async {
            webhook.post(&message).await.map_err(|e| e.to_string())
        })
        .await
        {
            failures.push(why);
        }
    }
    if app.email.wants(alert.severity) {
        let mail = email::email(alert);
        if let Err(why) = once(app, alert, Channel::Email, || send_email(app, &mail)).await {
            failures.push(why);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Runs `send` unless this (alert, state, channel) was sent or is being sent.
async fn once<F, Fut>(app: &App, alert: &Alert, channel: Channel, send: F) -> Result<(), String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let key = deliveries::key(&alert.alert_id, &alert.delivery_state(), channel);
    match app
        .deliveries
        .claim(&key, now_secs())
        .await
        .map_err(|e| e.to_string())?
    {
        Claim::Delivered => return Ok(()),
        // Another delivery holds it. Not done: that holder may die before it sends, so
        // this invocation fails and Lambda retries it, which then finds the message
        // delivered, or the claim expired and takes it.
        Claim::Busy => {
            return Err(format!(
                "{}: another delivery is sending it; retried later",
                channel.as_str()
            ));
        }
        Claim::Granted => {}
    }
    match send().await {
        Ok(detail) => {
            let detail: String = detail.chars().take(200).collect();
            app.deliveries
                .delivered(&key, now_secs(), &detail)
                .await
                .map_err(|e| format!("sent, but not recorded: {e}"))?;
            inferloop::telemetry::emit_metric("inferloop", "AlertDelivered", 1.0, "Count");
            Ok(())
        }
        Err(why) => {
            if let Err(err) = app.deliveries.release(&key).await {
                tracing::warn!(error = %err, "a failed delivery's claim was not released; it expires");
            }
            inferloop::telemetry::emit_metric("inferloop", "AlertDeliveryFailed", 1.0, "Count");
            Err(format!("{}: {why}", channel.as_str()))
        }
    }
}

/// Sends `mail` to the configured recipients; the SES message id.
async fn send_email(app: &App, mail: &email::Email) -> Result<String, String> {
    use aws_sdk_sesv2::types::{Body as MailBody, Content, Destination, EmailContent, Message};
    let content = |text: &str| {
        Content::builder()
            .data(text)
            .charset("UTF-8")
            .build()
            .map_err(|e| e.to_string())
    };
    let message = Message::builder()
        .subject(content(&mail.subject)?)
        .body(
            MailBody::builder()
                .text(content(&mail.text)?)
                .html(content(&mail.html)?)
                .build(),
        )
        .build();
    let out = app
        .ses
        .send_email()
        .from_email_address(&app.email.sender)
        .destination(
            Destination::builder()
                .set_to_addresses(Some(app.email.recipients.clone()))
                .build(),
        )
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map_err(|e| inferloop::error::error_chain(&e))?;
    Ok(out.message_id.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackAlertRequest {
    message: String,
    #[serde(default)]
    severity: Option<String>,
}

async fn slack_alert(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    let body: SlackAlertRequest = parse_json(&cx.req, MAX_BODY_BYTES)?;
    // Counted as Slack counts a section's text (UTF-16 units, `&` `<` `>` escaped), so
    // a message this route takes is shown whole.
    let chars = slack::mrkdwn_len(&body.message);
    if body.message.trim().is_empty() || chars > MAX_MESSAGE_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!(
                "message must be 1–{MAX_MESSAGE_CHARS} characters as Slack counts them \
                 (UTF-16 units; & < > count 5, 4, 4), got {chars}"
            ),
        ));
    }
    let severity = match body.severity.as_deref() {
        None => Severity::Info,
        Some(raw) => Severity::parse(raw).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_field",
                format!("severity must be one of info, warning, critical, got {raw:?}"),
            )
        })?,
    };
    let Some(webhook) = &app.slack else {
        cx.audit
            .record_best_effort(
                Action::SlackAlert,
                Outcome::Error,
                json!({"reason": "not_configured"}),
            )
            .await;
        return Err(ApiError::NotConfigured(
            "no Slack webhook is configured (SlackWebhookUrl)".into(),
        ));
    };
    let mut alert = Alert::firing(
        Kind::Manual,
        severity,
        body.message.clone(),
        "slack-alert",
        format!("manual:{}", cx.caller.username),
    )
    .detail("sent by", cx.caller.username.as_str());
    alert.request_id = Some(cx.meta().request_id.clone());
    if let Err(err) = app.alerts.put(&alert).await {
        tracing::warn!(error = %err, "a manual alert was not stored");
    }
    let sent = webhook.post(&slack::message(&alert)).await;
    let key = deliveries::key(&alert.alert_id, &alert.delivery_state(), Channel::Slack);
    let details = json!({
        "alert_id": alert.alert_id,
        "severity": severity.as_str(),
        "characters": chars,
        "delivered": sent.is_ok(),
    });
    match sent {
        Ok(answer) => {
            if let Err(err) = app.deliveries.delivered(&key, now_secs(), &answer).await {
                tracing::warn!(error = %err, "a manual alert's delivery was not recorded");
            }
            cx.audit
                .record(Action::SlackAlert, Outcome::Success, details)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"delivered": true, "alert_id": alert.alert_id}),
            ))
        }
        Err(err) => {
            cx.audit
                .record_best_effort(Action::SlackAlert, Outcome::Error, details)
                .await;
            let message = match err {
                SendError::Refused { status, .. } => {
                    format!("Slack refused the message ({status})")
                }
                SendError::Unavailable(_) => "Slack did not take the message; try again".into(),
            };
            Err(ApiError::BadGateway {
                code: "slack_unavailable",
                message,
            })
        }
    }
}

async fn test_email(app: &App, cx: Ctx<'_, Admin>) -> HandlerResult {
    if app.email.recipients.is_empty() {
        cx.audit
            .record_best_effort(
                Action::TestEmail,
                Outcome::Error,
                json!({"reason": "not_configured"}),
            )
            .await;
        return Err(ApiError::NotConfigured(
            "no alert recipients are configured (AlertEmails)".into(),
        ));
    }
    let mail = email::test_email(&app.email.recipients.join(", "));
    let sent = send_email(app, &mail).await;
    let details = json!({"recipients": app.email.recipients.len(), "sent": sent.is_ok()});
    match sent {
        Ok(message_id) => {
            cx.audit
                .record(Action::TestEmail, Outcome::Success, details)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"sent": true, "message_id": message_id, "recipients": app.email.recipients}),
            ))
        }
        Err(why) => {
            cx.audit
                .record_best_effort(Action::TestEmail, Outcome::Error, details)
                .await;
            Err(ApiError::dependency(format!("SES: {why}")))
        }
    }
}
