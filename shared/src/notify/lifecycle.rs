//! What people do with an alert (issue 15, seed 003's interactions), as a state machine:
//! `active` → `acknowledged` → `resolved`; `snoozed` until a time, then `active` again;
//! `dismissed`, a false alarm. Pure: the alerts function reads an alert's lifecycle,
//! asks [`Lifecycle::apply`] for the next one and writes it conditionally on the one it
//! read, so two people acting at once cannot both win.
//!
//! The lifecycle is what people decided, beside the alert's own `firing | resolved`
//! state, which the check that raised it decides. A resolved or dismissed alert takes
//! no more interactions: if its condition fires again, the notifier opens it anew.

use crate::domain::InvalidValue;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The longest snooze: past a month an alert is better dismissed or fixed.
pub const MAX_SNOOZE: Duration = Duration::days(30);
/// A dismissal's reason and a comment, at most this many characters.
pub const MAX_TEXT_CHARS: usize = 1_000;

/// Where an alert stands with the people who act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Acknowledged,
    Snoozed,
    Resolved,
    Dismissed,
}

impl Status {
    pub const ALL: [Self; 5] = [
        Self::Active,
        Self::Acknowledged,
        Self::Snoozed,
        Self::Resolved,
        Self::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Acknowledged => "acknowledged",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Resolved and dismissed take no more interactions.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Resolved | Self::Dismissed)
    }
}

/// What a person did, by seed 003's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InteractionType {
    Acknowledged,
    Resolved,
    Snoozed,
    Dismissed,
}

impl InteractionType {
    pub const ALL: [Self; 4] = [
        Self::Acknowledged,
        Self::Resolved,
        Self::Snoozed,
        Self::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Snoozed => "snoozed",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw)
            .ok_or_else(|| {
                InvalidValue::new(
                    "interaction_type",
                    format!(
                        "must be one of acknowledged, resolved, snoozed, dismissed, got {raw:?}"
                    ),
                )
            })
    }

    /// The status the interaction leads to.
    fn target(self) -> Status {
        match self {
            Self::Acknowledged => Status::Acknowledged,
            Self::Resolved => Status::Resolved,
            Self::Snoozed => Status::Snoozed,
            Self::Dismissed => Status::Dismissed,
        }
    }
}

/// An interaction parsed at the edge: a snooze always has its end, in the future and
/// within [`MAX_SNOOZE`]; nothing else has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub kind: InteractionType,
    pub snooze_until: Option<OffsetDateTime>,
    /// A comment, or a dismissal's reason.
    pub comment: Option<String>,
}

impl Interaction {
    pub fn parse(
        kind: &str,
        snooze_until: Option<&str>,
        comment: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Self, InvalidValue> {
        let kind = InteractionType::parse(kind)?;
        let snooze_until = match (kind, snooze_until) {
            (InteractionType::Snoozed, None) => {
                return Err(InvalidValue::new(
                    "snooze_until",
                    "is required to snooze: the time the alert becomes active again",
                ));
            }
            (InteractionType::Snoozed, Some(raw)) => {
                let until = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
                    InvalidValue::new(
                        "snooze_until",
                        format!("must be an RFC 3339 time (2026-03-01T12:00:00Z), got {raw:?}"),
                    )
                })?;
                if until <= now {
                    return Err(InvalidValue::new("snooze_until", "must be in the future"));
                }
                if until - now > MAX_SNOOZE {
                    return Err(InvalidValue::new(
                        "snooze_until",
                        "must be at most 30 days ahead",
                    ));
                }
                Some(until)
            }
            (_, Some(_)) => {
                return Err(InvalidValue::new(
                    "snooze_until",
                    "is only for interaction_type snoozed",
                ));
            }
            (_, None) => None,
        };
        let comment = match comment.map(str::trim) {
            Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
                return Err(InvalidValue::new(
                    "comment",
                    format!("must be at most {MAX_TEXT_CHARS} characters"),
                ));
            }
            Some("") | None => None,
            Some(text) => Some(text.to_owned()),
        };
        Ok(Self {
            kind,
            snooze_until,
            comment,
        })
    }
}

/// A transition the machine does not allow, naming where the alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub current: Status,
    pub interaction: InteractionType,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the alert is {}: it cannot be {}",
            self.current.as_str(),
            self.interaction.as_str()
        )
    }
}

/// An alert's lifecycle as stored: its status and, while snoozed, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub status: Status,
    pub snoozed_until: Option<OffsetDateTime>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::active()
    }
}

impl Lifecycle {
    pub fn active() -> Self {
        Self {
            status: Status::Active,
            snoozed_until: None,
        }
    }

    /// The status at `now`: a snooze that has ended is active again.
    pub fn status_at(&self, now: OffsetDateTime) -> Status {
        match (self.status, self.snoozed_until) {
            (Status::Snoozed, Some(until)) if until <= now => Status::Active,
            (status, _) => status,
        }
    }

    /// The lifecycle after `interaction` at `now`, or why the machine refuses it.
    ///
    /// From active: any of the four. From acknowledged: resolved, snoozed or dismissed
    /// (acknowledging twice is no new fact). From snoozed: acknowledged, resolved,
    /// dismissed, or snoozed again to a new end. Resolved and dismissed are final.
    pub fn apply(
        &self,
        interaction: &Interaction,
        now: OffsetDateTime,
    ) -> Result<Lifecycle, Refused> {
        let current = self.status_at(now);
        let target = interaction.kind.target();
        // Acknowledging an acknowledged alert is no new fact.
        let refused = current.is_final()
            || (current == Status::Acknowledged && target == Status::Acknowledged);
        if refused {
            return Err(Refused {
                current,
                interaction: interaction.kind,
            });
        }
        Ok(Lifecycle {
            status: target,
            snoozed_until: interaction.snooze_until,
        })
    }

    /// Whether the notifier holds back a re-send of the still-firing alert at `now`:
    /// people acknowledged it, or snoozed it and the snooze runs.
    pub fn holds_resends(&self, now: OffsetDateTime) -> bool {
        matches!(self.status_at(now), Status::Acknowledged | Status::Snoozed)
    }

    /// Whether a still-firing alert is owed its one re-send at the end of a snooze: the
    /// snooze ended at or before `now` and no re-send went out since (`resent_after`,
    /// the end of the last snooze a re-send was made for).
    pub fn owes_snooze_resend(
        &self,
        now: OffsetDateTime,
        resent_after: Option<OffsetDateTime>,
    ) -> bool {
        match (self.status, self.snoozed_until) {
            (Status::Snoozed, Some(until)) => until <= now && resent_after != Some(until),
            _ => false,
        }
    }
}

/// Seconds from the alert's first firing to an interaction with it (seed 003's response
/// time), never negative: a clock behind the alert's writer reads as zero.
pub fn response_time_seconds(created_at: OffsetDateTime, interacted_at: OffsetDateTime) -> f64 {
    (interacted_at - created_at).as_seconds_f64().max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-12-04T12:00:00Z", &Rfc3339).unwrap()
    }

    fn interaction(kind: InteractionType) -> Interaction {
        let until = (kind == InteractionType::Snoozed).then(|| now() + Duration::hours(2));
        Interaction {
            kind,
            snooze_until: until,
            comment: None,
        }
    }

    fn at(status: Status) -> Lifecycle {
        Lifecycle {
            status,
            snoozed_until: (status == Status::Snoozed).then(|| now() + Duration::hours(1)),
        }
    }

    #[test]
    fn every_transition_is_allowed_or_refused_as_the_table_says() {
        use InteractionType as I;
        use Status as S;
        // (from, interaction, allowed)
        let table = [
            (S::Active, I::Acknowledged, true),
            (S::Active, I::Resolved, true),
            (S::Active, I::Snoozed, true),
            (S::Active, I::Dismissed, true),
            (S::Acknowledged, I::Acknowledged, false),
            (S::Acknowledged, I::Resolved, true),
            (S::Acknowledged, I::Snoozed, true),
            (S::Acknowledged, I::Dismissed, true),
            (S::Snoozed, I::Acknowledged, true),
            (S::Snoozed, I::Resolved, true),
            (S::Snoozed, I::Snoozed, true),
            (S::Snoozed, I::Dismissed, true),
            (S::Resolved, I::Acknowledged, false),
            (S::Resolved, I::Resolved, false),
            (S::Resolved, I::Snoozed, false),
            (S::Resolved, I::Dismissed, false),
            (S::Dismissed, I::Acknowledged, false),
            (S::Dismissed, I::Resolved, false),
            (S::Dismissed, I::Snoozed, false),
            (S::Dismissed, I::Dismissed, false),
        ];
        assert_eq!(table.len(), S::ALL.len() * I::ALL.len(), "every pair");
        for (from, kind, allowed) in table {
            let result = at(from).apply(&interaction(kind), now());
            match result {
                Ok(next) => {
                    assert!(allowed, "{from:?} + {kind:?} was allowed");
                    assert_eq!(next.status, kind.target());
                    assert_eq!(next.snoozed_until.is_some(), kind == I::Snoozed);
                }
                Err(refused) => {
                    assert!(!allowed, "{from:?} + {kind:?} was refused");
                    assert_eq!(refused.current, from);
                    assert!(refused.to_string().contains(from.as_str()), "{refused}");
                }
            }
        }
    }

    #[test]
    fn a_snooze_ends_active_again_and_is_owed_one_resend() {
        let snoozed = at(Status::Active)
            .apply(&interaction(InteractionType::Snoozed), now())
            .unwrap();
        let end = now() + Duration::hours(2);
        assert_eq!(snoozed.status_at(now()), Status::Snoozed);
        assert!(snoozed.holds_resends(now()));
        assert!(
            !snoozed.owes_snooze_resend(now(), None),
            "not before its end"
        );
        assert_eq!(snoozed.status_at(end), Status::Active);
        assert!(!snoozed.holds_resends(end));
        assert!(snoozed.owes_snooze_resend(end, None));
        assert!(
            !snoozed.owes_snooze_resend(end + Duration::hours(1), Some(end)),
            "once"
        );
        // Acknowledged after the snooze ended: active, so it may be.
        let acknowledged = snoozed
            .apply(&interaction(InteractionType::Acknowledged), end)
            .unwrap();
        assert_eq!(acknowledged.status, Status::Acknowledged);
        assert!(acknowledged.holds_resends(end));
        assert!(!acknowledged.owes_snooze_resend(end, None));
    }

    #[test]
    fn a_snooze_needs_its_end_in_the_next_thirty_days_and_nothing_else_has_one() {
        let parse = |kind, until: Option<String>| {
            Interaction::parse(kind, until.as_deref(), None, now()).map_err(|e| e.field)
        };
        let rfc = |d: Duration| crate::time::format_timestamp(now() + d);
        assert_eq!(parse("snoozed", None), Err("snooze_until"));
        assert_eq!(
            parse("snoozed", Some("tomorrow".into())),
            Err("snooze_until")
        );
        assert_eq!(
            parse("snoozed", Some(rfc(-Duration::minutes(1)))),
            Err("snooze_until")
        );
        assert_eq!(
            parse("snoozed", Some(rfc(Duration::ZERO))),
            Err("snooze_until")
        );
        assert_eq!(
            parse("snoozed", Some(rfc(MAX_SNOOZE + Duration::seconds(1)))),
            Err("snooze_until")
        );
        // Any offset: 14:00 at +02:00 is noon UTC, now, so not in the future.
        assert_eq!(
            parse("snoozed", Some("2026-12-04T14:00:00+02:00".into())),
            Err("snooze_until")
        );
        assert!(parse("snoozed", Some("2026-12-04T15:00:00+02:00".into())).is_ok());
        let ok = parse("snoozed", Some(rfc(MAX_SNOOZE))).unwrap();
        assert_eq!(ok.snooze_until, Some(now() + MAX_SNOOZE));
        assert_eq!(
            parse("acknowledged", Some(rfc(Duration::hours(1)))),
            Err("snooze_until")
        );
        assert_eq!(parse("ack", None), Err("interaction_type"));
        assert_eq!(parse("Resolved", None), Err("interaction_type"));
        assert!(parse("dismissed", None).is_ok());
    }

    #[test]
    fn comments_are_trimmed_and_bounded() {
        let with = |text: &str| Interaction::parse("dismissed", None, Some(text), now());
        assert_eq!(
            with("  a false alarm ").unwrap().comment.as_deref(),
            Some("a false alarm")
        );
        assert_eq!(with("   ").unwrap().comment, None);
        assert!(
            with(&"é".repeat(MAX_TEXT_CHARS)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            with(&"x".repeat(MAX_TEXT_CHARS + 1)).unwrap_err().field,
            "comment"
        );
    }

    #[test]
    fn response_times_are_seconds_since_the_first_firing_never_negative() {
        assert_eq!(
            response_time_seconds(now(), now() + Duration::minutes(5)),
            300.0
        );
        assert_eq!(
            response_time_seconds(now(), now() - Duration::seconds(3)),
            0.0
        );
    }
}
