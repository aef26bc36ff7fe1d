//! Whether a drift verdict on a line asks for a retrain now (DESIGN.md §11): pure, over
//! the settings, the verdict's two figures, the labelled feedback there is to train on
//! and the line's earlier automatic requests. The drift check's schedule and `POST
//! /auto-retrain/check-drift/{line}` both decide here; [`super::requester`] writes what
//! was decided.

use super::AutoRetrainSettings;
use crate::domain::Line;
use serde::Serialize;
use time::OffsetDateTime;

/// The figures of one drift verdict that can ask for a retrain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Verdict {
    /// The share of drifted features (the data check's overall score).
    pub drift_score: f64,
    /// How far the accuracy measured from labels fell below the version's test accuracy;
    /// `None` when the window had too few labels to judge.
    pub accuracy_drop: Option<f64>,
}

impl Verdict {
    /// The verdict of a line's stored check: its overall score and, when the window had
    /// enough labels to be judged, its accuracy drop (`report.model_drift`).
    pub fn of_check(drift_score: f64, report: &serde_json::Value) -> Self {
        let model_drift = &report["model_drift"];
        let judged = model_drift["status"].as_str() == Some("tested");
        Self {
            drift_score,
            accuracy_drop: model_drift["accuracy_drop"].as_f64().filter(|_| judged),
        }
    }
}

/// What crossed its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Crossing {
    /// `drift` (the data) or `performance` (the accuracy from labels): the job's trigger.
    pub cause: Cause,
    pub value: f64,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    Drift,
    Performance,
}

impl Cause {
    pub const ALL: [Self; 2] = [Self::Drift, Self::Performance];

    /// The trigger recorded on the job.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::Performance => "performance",
        }
    }

    /// Whether a job's trigger is an automatic request (what cooldown and daily limits
    /// count; an admin's request is `manual`).
    pub fn is_automatic(trigger: &str) -> bool {
        Self::ALL.iter().any(|cause| cause.as_str() == trigger)
    }
}

/// Why a crossing did not become a retrain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// Auto-retrain is off for the model.
    Disabled,
    /// The settings' `lines` leave this line out.
    LineNotCovered,
    /// Too little labelled feedback to be worth a run.
    TooFewLabels { labelled: usize, required: usize },
    /// The line's last automatic request was too recent.
    Cooldown { last_request: String, until: String },
    /// The line had its automatic requests for the UTC day.
    DailyLimit { made: usize, max: usize },
    /// A job is queued or running for the line.
    Busy { job_id: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::LineNotCovered => "line_not_covered",
            Self::TooFewLabels { .. } => "too_few_labels",
            Self::Cooldown { .. } => "cooldown",
            Self::DailyLimit { .. } => "daily_limit",
            Self::Busy { .. } => "busy",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disabled => write!(f, "auto-retrain is disabled"),
            Self::LineNotCovered => write!(f, "the auto-retrain settings leave this line out"),
            Self::TooFewLabels { labelled, required } => write!(
                f,
                "{labelled} labelled feedback samples, {required} required"
            ),
            Self::Cooldown {
                last_request,
                until,
            } => write!(
                f,
                "in cooldown until {until} (last automatic request {last_request})"
            ),
            Self::DailyLimit { made, max } => {
                write!(f, "{made} automatic requests today, at most {max} a day")
            }
            Self::Busy { job_id } => write!(f, "job {job_id} is queued or running"),
        }
    }
}

/// What a verdict comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing crossed a threshold: nothing to do, nothing to record.
    Quiet,
    Retrain(Crossing),
    Refuse(Crossing, Refusal),
}

/// The crossing a verdict makes, if any: the data's score first (it needs no labels), then
/// the accuracy drop.
pub fn crossing(settings: &AutoRetrainSettings, verdict: &Verdict) -> Option<Crossing> {
    if verdict.drift_score >= settings.drift_score_threshold {
        return Some(Crossing {
            cause: Cause::Drift,
            value: verdict.drift_score,
            threshold: settings.drift_score_threshold,
        });
    }
    let drop = verdict.accuracy_drop?;
    (drop >= settings.accuracy_drop_threshold).then_some(Crossing {
        cause: Cause::Performance,
        value: drop,
        threshold: settings.accuracy_drop_threshold,
    })
}

/// The line's automatic-request history as the limits read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    /// The last automatic request, if any.
    pub last_request: Option<String>,
    /// When the next automatic request may be made (`None`: now).
    pub cooldown_until: Option<String>,
    /// Automatic requests in `now`'s UTC day.
    pub made_today: usize,
    pub max_per_day: usize,
}

/// What cooldown and the daily limit say at `now`, given the line's automatic requests'
/// times (any order; refusals are not requests and must not be among them).
pub fn limits(
    settings: &AutoRetrainSettings,
    requests: &[OffsetDateTime],
    now: OffsetDateTime,
) -> Limits {
    let last = requests.iter().copied().max();
    let cooldown = time::Duration::seconds_f64(settings.cooldown_hours * 3600.0);
    let until = last.map(|at| at + cooldown).filter(|until| *until > now);
    Limits {
        last_request: last.map(crate::time::format_timestamp),
        cooldown_until: until.map(crate::time::format_timestamp),
        made_today: requests.iter().filter(|at| at.date() == now.date()).count(),
        max_per_day: settings.max_attempts_per_day,
    }
}

/// The decision for `line`: `Quiet` unless the verdict crosses a threshold; then the
/// first limit it meets, in the order an admin would look for it.
pub fn decide(
    settings: &AutoRetrainSettings,
    line: Line,
    verdict: &Verdict,
    labelled: usize,
    limits: &Limits,
) -> Decision {
    let Some(crossing) = crossing(settings, verdict) else {
        return Decision::Quiet;
    };
    let refusal = if !settings.enabled {
        Some(Refusal::Disabled)
    } else if !settings.covers(line) {
        Some(Refusal::LineNotCovered)
    } else if labelled < settings.min_labelled_samples {
        Some(Refusal::TooFewLabels {
            labelled,
            required: settings.min_labelled_samples,
        })
    } else if let (Some(last), Some(until)) = (&limits.last_request, &limits.cooldown_until) {
        Some(Refusal::Cooldown {
            last_request: last.clone(),
            until: until.clone(),
        })
    } else if limits.made_today >= settings.max_attempts_per_day {
        Some(Refusal::DailyLimit {
            made: limits.made_today,
            max: settings.max_attempts_per_day,
        })
    } else {
        None
    };
    match refusal {
        Some(refusal) => Decision::Refuse(crossing, refusal),
        None => Decision::Retrain(crossing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-03 18:00 UTC);

    fn drifted() -> Verdict {
        Verdict {
            drift_score: 0.8,
            accuracy_drop: None,
        }
    }

    fn decided(
        settings: &AutoRetrainSettings,
        requests: &[OffsetDateTime],
        labelled: usize,
    ) -> Decision {
        let limits = limits(settings, requests, NOW);
        decide(settings, Line::V1, &drifted(), labelled, &limits)
    }

    #[test]
    fn a_verdict_below_both_thresholds_is_quiet() {
        let settings = AutoRetrainSettings::default();
        let calm = Verdict {
            drift_score: 0.49,
            accuracy_drop: Some(0.049),
        };
        assert_eq!(crossing(&settings, &calm), None);
        assert_eq!(
            decide(&settings, Line::V1, &calm, 10_000, &Limits::default()),
            Decision::Quiet
        );
    }

    #[test]
    fn a_stored_check_judges_the_accuracy_drop_only_with_enough_labels() {
        let tested = serde_json::json!({"model_drift": {"status": "tested", "accuracy_drop": 0.2}});
        assert_eq!(Verdict::of_check(0.1, &tested).accuracy_drop, Some(0.2));
        let few = serde_json::json!({"model_drift": {"status": "insufficient_labels", "accuracy_drop": 0.2}});
        assert_eq!(Verdict::of_check(0.1, &few).accuracy_drop, None);
        assert_eq!(
            Verdict::of_check(0.7, &serde_json::json!({})).drift_score,
            0.7
        );
    }

    #[test]
    fn data_drift_comes_first_then_the_accuracy_drop() {
        let settings = AutoRetrainSettings::default();
        let both = Verdict {
            drift_score: 0.5,
            accuracy_drop: Some(0.2),
        };
        assert_eq!(crossing(&settings, &both).unwrap().cause, Cause::Drift);
        let labels_only = Verdict {
            drift_score: 0.1,
            accuracy_drop: Some(0.05),
        };
        let crossed = crossing(&settings, &labels_only).unwrap();
        assert_eq!((crossed.cause, crossed.value), (Cause::Performance, 0.05));
        assert!(Cause::is_automatic("drift") && !Cause::is_automatic("manual"));
    }

    #[test]
    fn a_crossing_with_room_retrains() {
        let settings = AutoRetrainSettings::default();
        let long_ago = NOW - time::Duration::hours(25);
        assert!(matches!(
            decided(&settings, &[long_ago], 100),
            Decision::Retrain(Crossing {
                cause: Cause::Drift,
                ..
            })
        ));
    }

    #[test]
    fn each_limit_refuses_with_its_reason() {
        let defaults = AutoRetrainSettings::default();
        let refusal =
            |settings: &AutoRetrainSettings, requests: &[OffsetDateTime], labelled| match decided(
                settings, requests, labelled,
            ) {
                Decision::Refuse(_, refusal) => refusal,
                other => panic!("expected a refusal, got {other:?}"),
            };
        let off = AutoRetrainSettings {
            enabled: false,
            ..defaults.clone()
        };
        assert_eq!(refusal(&off, &[], 1000), Refusal::Disabled);
        let v2_only = AutoRetrainSettings {
            lines: vec!["v2".into()],
            ..defaults.clone()
        };
        assert_eq!(refusal(&v2_only, &[], 1000), Refusal::LineNotCovered);
        assert_eq!(
            refusal(&defaults, &[], 99),
            Refusal::TooFewLabels {
                labelled: 99,
                required: 100
            }
        );
        let an_hour_ago = NOW - time::Duration::hours(1);
        let Refusal::Cooldown { until, .. } = refusal(&defaults, &[an_hour_ago], 100) else {
            panic!("expected the cooldown");
        };
        assert_eq!(until, "2026-12-04T17:00:00.000000Z");
        // No cooldown, three requests earlier today: the daily limit.
        let no_cooldown = AutoRetrainSettings {
            cooldown_hours: 0.0,
            ..defaults.clone()
        };
        let today: Vec<_> = (1..=3).map(|h| NOW - time::Duration::hours(h)).collect();
        assert_eq!(
            refusal(&no_cooldown, &today, 100),
            Refusal::DailyLimit { made: 3, max: 3 }
        );
        // Yesterday's requests do not count against today.
        let yesterday: Vec<_> = (19..=21).map(|h| NOW - time::Duration::hours(h)).collect();
        assert!(matches!(
            decided(&no_cooldown, &yesterday, 100),
            Decision::Retrain(_)
        ));
        for refusal in [
            Refusal::Disabled,
            Refusal::Busy {
                job_id: "01J".into(),
            },
        ] {
            assert!(!refusal.to_string().is_empty() && !refusal.code().is_empty());
        }
    }

    #[test]
    fn the_cooldown_ends_exactly_after_its_hours() {
        let settings = AutoRetrainSettings::default();
        let last = NOW - time::Duration::hours(24);
        let limits = limits(&settings, &[last], NOW);
        assert_eq!(
            limits.cooldown_until, None,
            "24 h after: the cooldown is over"
        );
        assert_eq!(limits.made_today, 0);
        let limits = super::limits(&settings, &[last + time::Duration::seconds(1)], NOW);
        assert!(limits.cooldown_until.is_some());
    }
}
