//! Drift alerts of a line (DESIGN.md §6a): fire once per ongoing drift (fingerprint
//! `drift:<model>:<line>:<version>`), remind no sooner than `alert_repeat_hours` (the
//! same alert, its `repeat` counted, so it stays one alert with one resolution), resolve
//! when the line is back to no drift. A line that drifts again under a new version first
//! resolves the old version's alert, so no alert is left firing with nothing to end it. The state lives in Config
//! (`drift-state#<model>#<line>`), written conditionally on its revision, so two
//! overlapping checks cannot both fire.

use crate::App;
use crate::check::LineCheck;
use inferloop::drift::data::{Severity as DataSeverity, Verdict};
use inferloop::notify::{Alert, Kind, Severity, State};
use inferloop::time::{format_timestamp, parse_timestamp};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the line's alert state says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub drifting: bool,
    pub alert_id: Option<String>,
    pub fingerprint: Option<String>,
    /// When the current alert was last sent (RFC 3339).
    pub sent_at: Option<String>,
    /// Reminders sent of the current alert.
    #[serde(default)]
    pub repeats: u32,
}

/// What a check did about alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Fired,
    Repeated,
    /// Still drifting, inside `alert_repeat_hours`: nothing sent.
    Suppressed,
    Resolved,
    None,
}

pub fn fingerprint(model: &str, line: &str, version: &str) -> String {
    format!("drift:{model}:{line}:{version}")
}

/// The transition a check makes, without doing it.
pub fn decide(
    state: &AlertState,
    check: &LineCheck,
    repeat_hours: u32,
    now: OffsetDateTime,
) -> Action {
    let print = fingerprint(&check.model_name, &check.line, &check.version);
    if check.drifting() {
        let same = state.drifting && state.fingerprint.as_deref() == Some(print.as_str());
        if !same {
            return Action::Fired;
        }
        let sent = state.sent_at.as_deref().and_then(parse_timestamp);
        match sent {
            Some(sent) if now - sent < time::Duration::hours(i64::from(repeat_hours)) => {
                Action::Suppressed
            }
            _ => Action::Repeated,
        }
    } else if state.drifting && check.data.verdict == Verdict::NoDrift {
        Action::Resolved
    } else {
        // insufficient_data or no_reference say nothing about whether it is over.
        Action::None
    }
}

fn alert_of(check: &LineCheck, run_id: &str, alert_id: Option<&str>, state: State) -> Alert {
    let severity = match (check.data.severity, check.model_drift.drift_detected) {
        (Some(DataSeverity::Severe), _) => Severity::Critical,
        (_, true) => Severity::Critical,
        _ => Severity::Warning,
    };
    let title = match state {
        State::Firing => format!(
            "Drift on {} {} ({})",
            check.model_name, check.line, check.version
        ),
        State::Resolved => format!(
            "Drift over on {} {} ({})",
            check.model_name, check.line, check.version
        ),
    };
    let mut alert = Alert::firing(
        Kind::Drift,
        if state == State::Resolved {
            Severity::Info
        } else {
            severity
        },
        title,
        "drift",
        fingerprint(&check.model_name, &check.line, &check.version),
    )
    .detail("verdict", check.data.verdict.as_str())
    .detail(
        "window",
        format!("{} – {}", check.window.from, check.window.to),
    )
    .detail("predictions", check.window.sampled);
    if let Some(id) = alert_id {
        alert.alert_id = id.to_owned();
    }
    alert.state = state;
    alert.run_id = Some(run_id.to_owned());
    for name in &check.data.drifted_features {
        if let Some(test) = check.data.statistical_tests.get(name) {
            alert = alert.detail(
                name.clone(),
                format!(
                    "{:?}, PSI {:.3}, p {:.2e}",
                    test.drift_severity.unwrap_or(DataSeverity::Minor),
                    test.psi_value.unwrap_or(0.0),
                    test.p_value.unwrap_or(1.0)
                )
                .to_lowercase(),
            );
        }
    }
    let multivariate = &check.data.multivariate;
    if multivariate.is_drifted {
        alert = alert.detail(
            "inputs (PCA reconstruction error)",
            format!(
                "{:.4}, outside {:.4} – {:.4}",
                multivariate.reconstruction_error.unwrap_or(0.0),
                multivariate.lower_threshold.unwrap_or(0.0),
                multivariate.upper_threshold.unwrap_or(0.0)
            ),
        );
    }
    if check.model_drift.drift_detected {
        alert = alert.detail(
            "accuracy from labels",
            format!(
                "{:.3} (test split {:.3}, {} labels)",
                check.model_drift.accuracy.unwrap_or(0.0),
                check.model_drift.baseline_accuracy,
                check.model_drift.n_labels
            ),
        );
    }
    alert
}

/// Applies the transition for `check`: publishes what it calls for and records the new
/// state. Returns what was done and the alert id concerned.
pub async fn apply(
    app: &App,
    check: &LineCheck,
    run_id: &str,
    repeat_hours: u32,
    now: OffsetDateTime,
) -> (Action, Option<String>) {
    let name = format!("drift-state#{}#{}", check.model_name, check.line);
    let stored = match app.config.get(&name).await {
        Ok(stored) => stored,
        Err(err) => {
            tracing::error!(error = %err, "drift alert state unreadable; no alert this run");
            return (Action::None, None);
        }
    };
    let revision = stored.as_ref().map_or(0, |d| d.revision);
    let state: AlertState = stored
        .and_then(|d| serde_json::from_value(d.doc).ok())
        .unwrap_or_default();
    let action = decide(&state, check, repeat_hours, now);
    let sent_at = Some(format_timestamp(now));
    // A drift under another version ends the old version's alert first.
    let superseded = match (action, &state.alert_id, &state.fingerprint) {
        (Action::Fired, Some(id), Some(print)) if state.drifting => {
            let mut old = alert_of(check, run_id, Some(id), State::Resolved);
            old.fingerprint = print.clone();
            old.title = format!(
                "Drift alert on {} {} ended: the line now serves {}",
                check.model_name, check.line, check.version
            );
            Some(old)
        }
        _ => None,
    };
    let (alert, next) = match action {
        Action::None | Action::Suppressed => return (action, state.alert_id),
        Action::Fired => {
            let alert = alert_of(check, run_id, None, State::Firing);
            let next = AlertState {
                drifting: true,
                alert_id: Some(alert.alert_id.clone()),
                fingerprint: Some(alert.fingerprint.clone()),
                sent_at,
                repeats: 0,
            };
            (alert, next)
        }
        Action::Repeated => {
            let mut alert = alert_of(check, run_id, state.alert_id.as_deref(), State::Firing);
            alert.repeat = state.repeats + 1;
            let next = AlertState {
                drifting: true,
                alert_id: Some(alert.alert_id.clone()),
                fingerprint: Some(alert.fingerprint.clone()),
                sent_at,
                repeats: alert.repeat,
            };
            (alert, next)
        }
        Action::Resolved => {
            let mut alert = alert_of(check, run_id, state.alert_id.as_deref(), State::Resolved);
            // The resolved alert names the drift it ends (its fingerprint's version).
            if let Some(print) = &state.fingerprint {
                alert.fingerprint = print.clone();
            }
            (alert, AlertState::default())
        }
    };
    let doc = serde_json::to_value(&next).unwrap_or_default();
    // Claim the transition first: a concurrent check that got there first wins, and this
    // one sends nothing.
    let claimed = app
        .config
        .put(&name, &doc, revision, &format_timestamp(now), "drift")
        .await;
    if let Err(err) = claimed {
        tracing::warn!(error = %err, "drift alert state changed concurrently; nothing sent");
        return (Action::None, state.alert_id);
    }
    let published = match &app.common.notifier {
        Some(notifier) => {
            if let Some(old) = &superseded {
                // Best effort: the new alert matters more than the old one's ending.
                notifier.publish(old).await;
            }
            notifier.publish(&alert).await
        }
        None => false,
    };
    if !published {
        // Put the state back, so the next check tries again.
        let back = serde_json::to_value(&state).unwrap_or_default();
        if let Err(err) = app
            .config
            .put(&name, &back, revision + 1, &format_timestamp(now), "drift")
            .await
        {
            tracing::error!(error = %err, "drift alert not sent and its state not restored");
        }
        return (Action::None, state.alert_id);
    }
    (action, Some(alert.alert_id))
}
