//! Alerts that reach people (DESIGN.md §10): a typed alert, written to the Alerts table
//! and published on the one alerts topic, which slack-alert turns into Slack messages
//! and e-mails.
//!
//! Publishing is best effort for the caller: an alert is about work already done (a
//! drift verdict stored, a 5xx answered), so a failure to publish it is logged and
//! counted (`AlertPublishFailed`), never the caller's error, and never waited for
//! longer than [`PUBLISH_DEADLINE`] (a caller not answering a request may allow more:
//! [`Notifier::with_publish_deadline`]).

pub mod alarm;
#[cfg(feature = "stats")]
pub mod analytics;
pub mod deliveries;
pub mod email;
pub mod lifecycle;
pub mod slack;
pub mod store;

use crate::coalesce::{Coalescer, Verdict};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a caller's answer may wait for its alert to be published.
pub const PUBLISH_DEADLINE: Duration = Duration::from_millis(500);
/// Critical-error alerts: at most one per function instance and error code in this
/// window; the next one says how many were folded.
pub const CRITICAL_WINDOW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Self; 3] = [Self::Info, Self::Warning, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Drift,
    Retrain,
    Promotion,
    CriticalError,
    Alarm,
    Manual,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::Retrain => "retrain",
            Self::Promotion => "promotion",
            Self::CriticalError => "critical_error",
            Self::Alarm => "alarm",
            Self::Manual => "manual",
        }
    }
}

/// Whether the problem an alert names is going on or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Firing,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One alert, as published and as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub kind: Kind,
    pub severity: Severity,
    pub state: State,
    pub title: String,
    /// Ordered facts: what a person needs to act (feature scores, the version, …).
    pub details: Vec<(String, String)>,
    /// The function that raised it.
    pub source: String,
    /// What makes two alerts the same ongoing problem (kind + line + version, say).
    pub fingerprint: String,
    /// The drift run, retrain job or request it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// RFC 3339, fixed width.
    pub created_at: String,
    /// 0 for the first message of a firing alert; n for its n-th reminder while the
    /// problem goes on (a drift still drifting after `alert_repeat_hours`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Alert {
    /// A firing alert with a fresh id, created now.
    pub fn firing(
        kind: Kind,
        severity: Severity,
        title: impl Into<String>,
        source: impl Into<String>,
        fingerprint: impl Into<String>,
    ) -> Self {
        Self {
            alert_id: ulid::Ulid::new().to_string(),
            kind,
            severity,
            state: State::Firing,
            title: title.into(),
            details: Vec::new(),
            source: source.into(),
            fingerprint: fingerprint.into(),
            run_id: None,
            request_id: None,
            created_at: crate::time::now_rfc3339(),
            repeat: 0,
        }
    }

    /// What one delivery of this alert is (the Deliveries key's state part): each state,
    /// and each reminder of a firing alert, is delivered exactly once.
    pub fn delivery_state(&self) -> String {
        match (self.state, self.repeat) {
            (State::Firing, n) if n > 0 => format!("firing-repeat-{n}"),
            (state, _) => state.as_str().to_owned(),
        }
    }

    pub fn detail(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.details.push((name.into(), value.to_string()));
        self
    }
}

/// Publishes alerts: the Alerts table first (the record people act on), then the topic
/// (what reaches them), with the message attributes subscriptions filter on.
pub struct Notifier {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    store: store::AlertStore,
    source: String,
    critical: Coalescer,
    deadline: Duration,
}

impl Notifier {
    pub fn new(
        sns: aws_sdk_sns::Client,
        topic_arn: impl Into<String>,
        store: store::AlertStore,
        source: impl Into<String>,
    ) -> Self {
        Self {
            sns,
            topic_arn: topic_arn.into(),
            store,
            source: source.into(),
            critical: Coalescer::new(CRITICAL_WINDOW),
            deadline: PUBLISH_DEADLINE,
        }
    }

    /// The same notifier waiting up to `deadline` for a publish instead of
    /// [`PUBLISH_DEADLINE`]: for callers that are not answering a request (a retrain
    /// job of minutes, whose alert is the verdict's only notice) and for tests, which
    /// must not fail because a busy machine is slow.
    pub fn with_publish_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same notifier with another folding window for critical errors (tests, which
    /// cannot wait five minutes).
    pub fn with_critical_window(mut self, window: Duration) -> Self {
        self.critical = Coalescer::new(window);
        self
    }

    /// The function this notifier speaks for.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Stores and publishes `alert`; `false` (logged and counted) when either failed or
    /// took longer than its deadline ([`PUBLISH_DEADLINE`] unless set otherwise).
    pub async fn publish(&self, alert: &Alert) -> bool {
        match tokio::time::timeout(self.deadline, self.publish_now(alert)).await {
            Ok(Ok(())) => true,
            Ok(Err(reason)) => {
                tracing::error!(alert_id = %alert.alert_id, kind = alert.kind.as_str(), reason = %reason, "alert not published");
                crate::telemetry::emit_metric("inferloop", "AlertPublishFailed", 1.0, "Count");
                false
            }
            Err(_) => {
                tracing::error!(alert_id = %alert.alert_id, kind = alert.kind.as_str(), "alert not published within its deadline");
                crate::telemetry::emit_metric("inferloop", "AlertPublishFailed", 1.0, "Count");
                false
            }
        }
    }

    async fn publish_now(&self, alert: &Alert) -> Result<(), String> {
        self.store.put(alert).await.map_err(|e| e.to_string())?;
        let message = serde_json::to_string(alert).map_err(|e| e.to_string())?;
        let attribute = |value: &str| {
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| e.to_string())
        };
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject_line(alert))
            .message(message)
            .message_attributes("severity", attribute(alert.severity.as_str())?)
            .message_attributes("kind", attribute(alert.kind.as_str())?)
            .send()
            .await
            .map_err(|e| crate::error::error_chain(&e))?;
        Ok(())
    }

    /// After a 5xx answer: a critical alert, at most one per instance and error code in
    /// [`CRITICAL_WINDOW`]; the next one after it carries how many were folded.
    pub async fn critical_error(&self, code: &str, request_id: &str, path: &str) {
        let folded = match self.critical.check(code) {
            Verdict::Pass { folded } => folded,
            Verdict::Fold => return,
        };
        let mut alert = Alert::firing(
            Kind::CriticalError,
            Severity::Critical,
            format!("{} answered a 5xx: {code}", self.source),
            &self.source,
            format!("critical_error:{}:{code}", self.source),
        )
        .detail("code", code)
        .detail("path", path);
        if folded > 0 {
            alert = alert.detail("suppressed since the last alert", folded);
        }
        alert.request_id = Some(request_id.to_owned());
        self.publish(&alert).await;
    }
}

/// An e-mail subject or SNS subject: at most 100 characters, printable ASCII, as SNS
/// requires of `Subject`.
pub fn subject_line(alert: &Alert) -> String {
    let text = format!(
        "[{}] {} {}: {}",
        alert.severity.as_str(),
        alert.kind.as_str(),
        alert.state.as_str(),
        alert.title
    );
    let ascii: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    ascii.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_round_trip_as_the_topic_carries_them() {
        let alert = Alert::firing(
            Kind::Drift,
            Severity::Warning,
            "drift on v2",
            "drift",
            "drift:v2:v2.0",
        )
        .detail("psi", 0.31)
        .detail("feature", "mean_brightness");
        let text = serde_json::to_string(&alert).unwrap();
        assert!(text.contains(r#""kind":"drift""#) && text.contains(r#""state":"firing""#));
        let back: Alert = serde_json::from_str(&text).unwrap();
        assert_eq!(back, alert);
        assert_eq!(back.details[0], ("psi".to_owned(), "0.31".to_owned()));
    }

    #[test]
    fn subjects_fit_what_sns_takes() {
        let mut alert = Alert::firing(Kind::Manual, Severity::Info, "é".repeat(300), "x", "x");
        assert_eq!(alert.delivery_state(), "firing");
        alert.repeat = 2;
        assert_eq!(alert.delivery_state(), "firing-repeat-2");
        alert.state = State::Resolved;
        assert_eq!(alert.delivery_state(), "resolved");
        alert.state = State::Firing;
        alert.repeat = 0;
        alert.title.push('\n');
        let subject = subject_line(&alert);
        assert!(subject.len() <= 100);
        assert!(subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
        assert_eq!(Severity::parse("warning"), Some(Severity::Warning));
        assert_eq!(Severity::parse("loud"), None);
    }
}
