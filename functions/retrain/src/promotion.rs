//! Promotions (DESIGN.md §11): judging a staging version against its line's production
//! version by the promotion gate, making it production (audited, in the pointer's
//! history as gated or forced), and the alert that says so. The promote route and the
//! worker's auto-promotion both come here.

use crate::App;
use crate::compare::{self, Stop};
use inferloop::audit::{Action, Outcome, Pending};
use inferloop::autoretrain::{AutoRetrainSettings, doc_name};
use inferloop::gate::{self, GateReport, GateSettings};
use inferloop::model::train::LabelledInput;
use inferloop::notify::{Alert, Kind, Severity};
use inferloop::store::StoreError;
use inferloop::store::models::{
    ChangeKind, ModelVersion, PointerChange, ProductionPointer, Promotion,
};

/// The audit actor of the worker's own promotions (a system actor: activity listings
/// leave it out).
pub const WORKER_ACTOR: &str = "system:retrain";

impl App {
    /// `model`'s auto-retrain settings (the defaults until an admin changes them) and
    /// their revision.
    pub async fn auto_retrain_settings(
        &self,
        model: &str,
    ) -> Result<(AutoRetrainSettings, u64), Stop> {
        self.config
            .load(&doc_name(model))
            .await
            .map_err(|e| match e {
                StoreError::Corrupt(what) => {
                    Stop::Job(format!("stored auto-retrain settings: {what}"))
                }
                other => Stop::Dependency(other.to_string()),
            })
    }
}

/// Judges `candidate` against `production` on the base test split and the feedback
/// hold-out, by `settings`.
pub async fn judge(
    app: &App,
    production: &ModelVersion,
    candidate: &ModelVersion,
    settings: &GateSettings,
) -> Result<GateReport, Stop> {
    let production_onnx = compare::version_onnx(app, production).await?;
    let candidate_onnx = compare::version_onnx(app, candidate).await?;
    let data = compare::base_dataset(app).await?;
    let feedback = compare::labelled_feedback(app).await?;
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || -> Result<GateReport, Stop> {
        let production = compare::load_model(&production_onnx)?;
        let candidate = compare::load_model(&candidate_onnx)?;
        let holdout: &[LabelledInput] = &feedback.holdout;
        let (base, holdout) = compare::paired(&production, &candidate, &data, holdout)?;
        Ok(gate::evaluate(&base, &holdout, &settings))
    })
    .await
    .map_err(|e| Stop::Job(format!("judging stopped: {e}")))?
}

/// Makes `candidate` production on its line, the pointer change and `audit` in one
/// transaction; then the alert. `None` when it already served its line.
pub async fn promote(
    app: &App,
    candidate: &ModelVersion,
    promotion: &Promotion,
    audit: Pending<'_>,
) -> Result<Option<(ProductionPointer, PointerChange)>, StoreError> {
    let changed = app
        .models
        .promote_audited(&candidate.name, candidate, false, promotion, audit)
        .await?;
    if let Some((_, change)) = &changed {
        let severity = match promotion.kind {
            ChangeKind::Forced | ChangeKind::Rollback => Severity::Warning,
            _ => Severity::Info,
        };
        let alert = Alert::firing(
            Kind::Promotion,
            severity,
            format!(
                "{} now serves line {} ({})",
                candidate.version,
                candidate.line,
                promotion.kind.as_str()
            ),
            notifier_source(app),
            format!("promotion:{}:{}", candidate.line, candidate.version),
        )
        .detail("line", &candidate.line)
        .detail("from", change.from.as_deref().unwrap_or("none"))
        .detail("to", &change.to)
        .detail("actor", &promotion.actor)
        .detail("reason", &promotion.reason)
        .detail(
            "gate report sha256",
            promotion
                .gate_report_sha256
                .as_deref()
                .unwrap_or("none (not judged)"),
        );
        publish(app, &alert).await;
    }
    Ok(changed)
}

/// The gate's verdict on a run's candidate, as an alert: the people who look after the
/// line hear of every outcome, passed or not.
pub async fn gate_alert(app: &App, candidate: &ModelVersion, report: &GateReport, job_id: &str) {
    let (severity, verdict) = if report.passed {
        (Severity::Info, "passed the promotion gate")
    } else {
        (Severity::Warning, "was refused by the promotion gate")
    };
    let mut alert = Alert::firing(
        Kind::Retrain,
        severity,
        format!("retrained {} {verdict}", candidate.version),
        notifier_source(app),
        format!("gate:{}:{}", candidate.line, candidate.version),
    )
    .detail("line", &candidate.line)
    .detail("parent", candidate.parent.as_deref().unwrap_or("none"))
    .detail(
        "base accuracy, production → candidate",
        format!(
            "{:.4} → {:.4}",
            report.base.production_accuracy, report.base.candidate_accuracy
        ),
    );
    if let Some(holdout) = &report.holdout {
        alert = alert.detail(
            "hold-out accuracy, production → candidate",
            format!(
                "{:.4} → {:.4} (n = {})",
                holdout.production_accuracy, holdout.candidate_accuracy, holdout.samples
            ),
        );
    }
    for reason in &report.reasons {
        alert = alert.detail("refused because", reason);
    }
    alert.run_id = Some(job_id.to_owned());
    publish(app, &alert).await;
}

fn notifier_source(app: &App) -> String {
    app.common
        .notifier
        .as_ref()
        .map(|n| n.source().to_owned())
        .unwrap_or_else(|| "retrain".into())
}

async fn publish(app: &App, alert: &Alert) {
    match &app.common.notifier {
        Some(notifier) => {
            notifier.publish(alert).await;
        }
        None => tracing::warn!(title = %alert.title, "no alerts topic configured: alert not sent"),
    }
}

/// The audit entry of a promotion by the worker (no request: the job's id stands in).
pub async fn worker_audit<'a>(
    app: &'a App,
    job_id: &str,
    details: serde_json::Value,
) -> Pending<'a> {
    let meta = inferloop::http::RequestMeta {
        request_id: job_id.to_owned(),
        source_ip: None,
        user_agent: None,
    };
    app.common
        .audit
        .prepare(
            &meta,
            WORKER_ACTOR,
            Action::ModelPromoted,
            Outcome::Success,
            details,
        )
        .await
}
