//! The audit trail: the writer every function calls (`audit.record(meta, actor, action,
//! outcome, details)`), and for the audit-logs function the reading side ([`query`]) and
//! the integrity check ([`verify`]).
//!
//! # Chains
//!
//! Entries form per-instance hash chains (DESIGN.md §5), the scheme of CloudTrail's log
//! file integrity validation without its coordinator: each running function instance
//! makes a random chain id (a ULID) at cold start and numbers its entries from 0, and
//! every entry stores
//!
//! ```text
//! content_hash = SHA-256(canonical(entry))
//! mac          = HMAC-SHA256(key, prev_mac ‖ canonical(entry))
//! ```
//!
//! where `prev_mac` is the MAC of the previous entry of the same chain ("" for the first).
//! Each entry is written with a condition that its (chain, sequence) slot is empty, so
//! nothing is overwritten. One Lambda instance serves one request at a time, so a mutex
//! around the chain head costs nothing and instances never need to coordinate.
//!
//! The canonical form covers every field of the entry except its sequence number: an
//! entry's place in its chain is fixed by `prev_mac`, which the MAC covers. Keeping the
//! number out is what lets [`verify`] tell an entry that was moved (`reordered`: intact,
//! but chained after some other entry than the one before its slot) from one whose
//! content was changed (`modified`).
//!
//! `content_hash` is unkeyed on purpose: it separates an edit made without updating the
//! hash (`modified`) from one whose maker recomputed the hash but could not recompute the
//! MAC without the key (`bad_mac`, a forgery).
//!
//! # What the chains cannot show
//!
//! Deleting the *tail* of a chain (its last entries, or a whole chain) leaves a shorter
//! chain that is still perfectly consistent: nothing after the cut refers to what was
//! removed. The same holds for entries hidden from the range by editing their
//! unauthenticated `day` index attribute across a whole chain. CloudTrail closes this
//! with digest files: every hour it signs the latest hash of every log stream and
//! delivers that to a separate, write-once store, so a truncated stream no longer matches
//! its last digest. The equivalent here would be a scheduled function that writes each
//! chain's head `(chain_id, seq, mac)` to an S3 bucket with Object Lock (or to CloudWatch
//! Logs, which the audit writers' roles cannot delete), and a verify that compares every
//! chain's last entry with its latest anchored head. Until then, tail deletion is only
//! limited by IAM: no function's role may delete from the Audit table.
//!
//! Entries also leave by design: DynamoDB's TTL removes them `retention` after they were
//! written. Expiry takes a chain's oldest entries first, so [`verify`] excuses a missing
//! *head* of a chain only when the chain (whose ULID says when it began) is old enough
//! for its first entries to have expired.

pub mod query;
pub mod verify;

use crate::config::AuditSettings;
use crate::http::RequestMeta;
use crate::store::{StoreError, n, s, sdk_error};
use crate::time::format_timestamp;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use time::OffsetDateTime;
use tokio::sync::Mutex;

pub use query::AuditReader;

/// The global secondary index keyed by `actor`, sorted by `ts`.
pub const BY_ACTOR_INDEX: &str = "by_actor";
/// The global secondary index keyed by `day` (`YYYY-MM-DD`), sorted by `ts`.
pub const BY_DAY_INDEX: &str = "by_day";
/// Actors that are not people (a schedule, a background job) are named `system:<what>`;
/// their entries are not user activity.
pub const SYSTEM_ACTOR_PREFIX: &str = "system:";
/// The actor stored when a caller has none: the actor is an index key and cannot be empty.
pub const ANONYMOUS_ACTOR: &str = "anonymous";

/// Everything that is audited, by the name stored in the `action` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    LoginFailed,
    AccountLocked,
    UserCreated,
    UserDeleted,
    UsersListed,
    Predict,
    Feedback,
    FeedbackViewed,
    TrendsViewed,
    ReportViewed,
    AuditViewed,
    AuditVerified,
    DriftCheck,
    DriftConfigChanged,
    DriftReferenceSet,
    DriftViewed,
    RetrainRequested,
    RetrainStarted,
    RetrainFinished,
    RetrainFailed,
    ModelPromoted,
    ModelRolledBack,
    RetrainViewed,
    ModelsViewed,
    AutoRetrainConfigChanged,
    RetrainCancelled,
    AlertSent,
    SlackAlert,
    AccountUnlocked,
    TestEmail,
}

impl Action {
    pub const ALL: [Self; 31] = [
        Self::Login,
        Self::LoginFailed,
        Self::AccountLocked,
        Self::UserCreated,
        Self::UserDeleted,
        Self::UsersListed,
        Self::Predict,
        Self::Feedback,
        Self::FeedbackViewed,
        Self::TrendsViewed,
        Self::ReportViewed,
        Self::AuditViewed,
        Self::AuditVerified,
        Self::DriftCheck,
        Self::DriftConfigChanged,
        Self::DriftReferenceSet,
        Self::DriftViewed,
        Self::RetrainRequested,
        Self::RetrainStarted,
        Self::RetrainFinished,
        Self::RetrainFailed,
        Self::ModelPromoted,
        Self::ModelRolledBack,
        Self::RetrainViewed,
        Self::ModelsViewed,
        Self::AutoRetrainConfigChanged,
        Self::RetrainCancelled,
        Self::AlertSent,
        Self::SlackAlert,
        Self::AccountUnlocked,
        Self::TestEmail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::AccountLocked => "account_locked",
            Self::UserCreated => "user_created",
            Self::UserDeleted => "user_deleted",
            Self::UsersListed => "users_listed",
            Self::Predict => "predict",
            Self::Feedback => "feedback",
            Self::FeedbackViewed => "feedback_viewed",
            Self::TrendsViewed => "trends_viewed",
            Self::ReportViewed => "report_viewed",
            Self::AuditViewed => "audit_viewed",
            Self::AuditVerified => "audit_verified",
            Self::DriftCheck => "drift_check",
            Self::DriftConfigChanged => "drift_config_changed",
            Self::DriftReferenceSet => "drift_reference_set",
            Self::DriftViewed => "drift_viewed",
            Self::RetrainRequested => "retrain_requested",
            Self::RetrainStarted => "retrain_started",
            Self::RetrainFinished => "retrain_finished",
            Self::RetrainFailed => "retrain_failed",
            Self::ModelPromoted => "model_promoted",
            Self::ModelRolledBack => "model_rolled_back",
            Self::RetrainViewed => "retrain_viewed",
            Self::ModelsViewed => "models_viewed",
            Self::AutoRetrainConfigChanged => "auto_retrain_config_changed",
            Self::RetrainCancelled => "retrain_cancelled",
            Self::AlertSent => "alert_sent",
            Self::SlackAlert => "slack_alert",
            Self::AccountUnlocked => "account_unlocked",
            Self::TestEmail => "test_email",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether a person's request does this, as opposed to the service reacting on its
    /// own (a lockout, a retrain job's progress, an alert). A drift check is both: an
    /// admin may ask for one, the schedule runs one as `system:schedule`, so activity
    /// listings also leave out [`SYSTEM_ACTOR_PREFIX`] actors.
    pub fn is_user_initiated(self) -> bool {
        !matches!(
            self,
            Self::AccountLocked
                | Self::RetrainStarted
                | Self::RetrainFinished
                | Self::RetrainFailed
                | Self::AlertSent
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Error,
}

impl Outcome {
    pub const ALL: [Self; 3] = [Self::Success, Self::Denied, Self::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// One audit entry. Its canonical form — every field but `seq`, in declaration order —
/// is what the content hash and the MAC cover (see the module documentation for why the
/// sequence number is left out).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub chain_id: String,
    #[serde(skip)]
    pub seq: u64,
    pub timestamp: String,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub details: String,
    pub source_ip: String,
    pub user_agent: String,
    pub request_id: String,
}

impl AuditEntry {
    pub fn canonical(&self) -> Vec<u8> {
        // serde_json writes struct fields in declaration order and escapes strings one
        // way only: a stable byte form. Serialising strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// SHA-256 of the canonical form, hex.
    pub fn content_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical()))
    }

    /// HMAC-SHA256(key, prev_mac ‖ canonical(entry)), hex.
    pub fn mac(&self, key: &[u8], prev_mac: &str) -> String {
        // HMAC accepts keys of any length; the error arm cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return String::new();
        };
        mac.update(prev_mac.as_bytes());
        mac.update(&self.canonical());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The entry as it is stored: chained after `prev_mac`, with its hash and MAC.
    pub fn seal(self, key: &[u8], prev_mac: &str, expires_at: u64) -> SealedEntry {
        SealedEntry {
            content_hash: self.content_hash(),
            mac: self.mac(key, prev_mac),
            prev_mac: prev_mac.to_owned(),
            expires_at,
            entry: self,
        }
    }
}

/// An entry with its chain link, hash and MAC: one item of the Audit table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    pub entry: AuditEntry,
    pub prev_mac: String,
    pub content_hash: String,
    pub mac: String,
    /// Unix seconds after which DynamoDB's TTL may delete the item.
    pub expires_at: u64,
}

impl SealedEntry {
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let e = &self.entry;
        // `day` is derived from `ts` for the by-day index; verify checks they agree.
        let day = e.timestamp.get(..10).unwrap_or_default();
        HashMap::from([
            ("chain_id".to_owned(), s(&e.chain_id)),
            ("seq".to_owned(), n(e.seq)),
            ("ts".to_owned(), s(&e.timestamp)),
            ("day".to_owned(), s(day)),
            ("actor".to_owned(), s(&e.actor)),
            ("action".to_owned(), s(&e.action)),
            ("outcome".to_owned(), s(&e.outcome)),
            ("details".to_owned(), s(&e.details)),
            ("source_ip".to_owned(), s(&e.source_ip)),
            ("user_agent".to_owned(), s(&e.user_agent)),
            ("request_id".to_owned(), s(&e.request_id)),
            ("prev_mac".to_owned(), s(&self.prev_mac)),
            ("content_hash".to_owned(), s(&self.content_hash)),
            ("mac".to_owned(), s(&self.mac)),
            ("expires_at".to_owned(), n(self.expires_at)),
        ])
    }

    /// Reads an item back exactly as stored; the error names the first attribute that is
    /// missing or of the wrong type (which, in the Audit table, means someone edited it).
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, String> {
        let text = |name: &str| -> Result<String, String> {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| format!("attribute {name} is missing or not a string"))
        };
        let number = |name: &str| -> Result<u64, String> {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("attribute {name} is missing or not a whole number"))
        };
        let entry = AuditEntry {
            chain_id: text("chain_id")?,
            seq: number("seq")?,
            timestamp: text("ts")?,
            actor: text("actor")?,
            action: text("action")?,
            outcome: text("outcome")?,
            details: text("details")?,
            source_ip: text("source_ip")?,
            user_agent: text("user_agent")?,
            request_id: text("request_id")?,
        };
        if item
            .get("day")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            != entry.timestamp.get(..10)
        {
            return Err("attribute day does not match ts".to_owned());
        }
        Ok(Self {
            entry,
            prev_mac: text("prev_mac")?,
            content_hash: text("content_hash")?,
            mac: text("mac")?,
            expires_at: number("expires_at").unwrap_or(0),
        })
    }
}

/// Keys whose values never belong in an audit entry, at any depth of `details`.
const SECRET_KEYS: &[&str] = &[
    "password",
    "new_password",
    "old_password",
    "secret",
    "access_token",
    "refresh_token",
    "authorization",
    "image",
    "file",
];
/// Details are a few facts about a request; anything larger is a mistake (a body, an
/// image) and is replaced by its size rather than stored.
pub const MAX_DETAILS_BYTES: usize = 4096;

/// The details as stored: secrets redacted, size bounded. A second line of defence: callers
/// are expected to pass only what an auditor should read.
fn details_text(details: serde_json::Value) -> String {
    fn redact(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| {
                    if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                        (k, serde_json::Value::from("[redacted]"))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
            serde_json::Value::Array(items) => items.into_iter().map(redact).collect(),
            other => other,
        }
    }
    let text = redact(details).to_string();
    if text.len() > MAX_DETAILS_BYTES {
        serde_json::json!({"truncated": true, "bytes": text.len()}).to_string()
    } else {
        text
    }
}

struct ChainHead {
    chain_id: String,
    next_seq: u64,
    prev_mac: String,
}

impl ChainHead {
    fn new() -> Self {
        Self {
            chain_id: ulid::Ulid::new().to_string(),
            next_seq: 0,
            prev_mac: String::new(),
        }
    }
}

/// An entry's slot must be empty: nothing is ever overwritten.
const SLOT_IS_EMPTY: &str = "attribute_not_exists(chain_id) AND attribute_not_exists(seq)";

/// Free-text fields of an entry come from the request (a header, a claimed username);
/// each is cut to a length no honest client exceeds, so no request can make its own
/// entry too large to write (DynamoDB items stop at 400 KB). `details` is bounded by
/// [`MAX_DETAILS_BYTES`].
pub const MAX_USER_AGENT_CHARS: usize = 512;
pub const MAX_IP_CHARS: usize = 64;
pub const MAX_REQUEST_ID_CHARS: usize = 128;
pub const MAX_ACTOR_CHARS: usize = 128;

/// `text` cut to `max` characters, the cut marked with how many were left out.
fn capped(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}…[+{} chars]", total - max)
}

/// An entry prepared for a transaction (see [`AuditTrail::prepare`]), holding this
/// instance's chain until its fate is known.
pub struct Pending<'a> {
    head: Option<tokio::sync::MutexGuard<'a, ChainHead>>,
    sealed: SealedEntry,
    table: String,
}

impl Pending<'_> {
    /// The conditional put of the entry, for the caller's `TransactWriteItems`.
    pub fn put(&self) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, AuditError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.sealed.to_item()))
            .condition_expression(SLOT_IS_EMPTY)
            .build()
            .map_err(|e| AuditError(StoreError::Dynamo(e.to_string())))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build())
    }

    /// Where the entry lands: `<chain id>#<sequence>`, so a change can name its entry.
    pub fn reference(&self) -> String {
        format!("{}#{}", self.sealed.entry.chain_id, self.sealed.entry.seq)
    }

    /// The transaction committed: the chain moves on past this entry.
    pub fn written(mut self) {
        if let Some(mut head) = self.head.take() {
            head.next_seq += 1;
            head.prev_mac = self.sealed.mac.clone();
        }
    }

    /// The transaction was cancelled (a condition failed): nothing was written, and the
    /// chain stays where it was.
    pub fn not_written(mut self) {
        self.head.take();
    }

    /// The outcome is unknown (a timeout, a network error): the entry may have landed.
    /// Continuing this chain could fork it, so the instance starts a fresh one.
    pub fn unknown(mut self) {
        if let Some(mut head) = self.head.take() {
            *head = ChainHead::new();
            crate::telemetry::emit_metric("inferloop", "AuditWriteFailed", 1.0, "Count");
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(mut head) = self.head.take() {
            *head = ChainHead::new();
        }
    }
}

pub struct AuditTrail {
    client: Client,
    settings: AuditSettings,
    head: Mutex<ChainHead>,
}

#[derive(Debug, thiserror::Error)]
#[error("audit entry not written: {0}")]
pub struct AuditError(#[from] StoreError);

impl AuditTrail {
    pub fn new(client: Client, settings: AuditSettings) -> Self {
        Self {
            client,
            settings,
            head: Mutex::new(ChainHead::new()),
        }
    }

    pub fn table(&self) -> &str {
        &self.settings.table
    }

    /// This instance's chain id: the chain the next entry goes to.
    pub async fn chain_id(&self) -> String {
        self.head.lock().await.chain_id.clone()
    }

    /// Writes one entry. Callers of state changes propagate the error (503); read-only
    /// callers use [`AuditTrail::record_best_effort`].
    pub async fn record(
        &self,
        meta: &RequestMeta,
        actor: &str,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Result<(), AuditError> {
        self.record_at(
            meta,
            actor,
            action,
            outcome,
            details,
            OffsetDateTime::now_utc(),
        )
        .await
    }

    /// [`AuditTrail::record`] with the entry's timestamp given: for backfills, and for
    /// tests and benchmarks that need entries in a time range of their own. The retention
    /// still runs from the moment of writing.
    pub async fn record_at(
        &self,
        meta: &RequestMeta,
        actor: &str,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<(), AuditError> {
        let pending = self
            .prepare_at(meta, actor, action, outcome, details, at)
            .await;
        let result = self
            .client
            .put_item()
            .table_name(&self.settings.table)
            .set_item(Some(pending.sealed.to_item()))
            .condition_expression(SLOT_IS_EMPTY)
            .send()
            .await;
        match result {
            Ok(_) => {
                pending.written();
                Ok(())
            }
            Err(err) => {
                // The write may or may not have landed (a timeout says nothing).
                pending.unknown();
                Err(AuditError(sdk_error(err)))
            }
        }
    }

    /// The next entry of this instance's chain, to be written inside the caller's own
    /// `TransactWriteItems` together with the change it records ([`Pending::put`]), so a
    /// change and its entry land together or not at all. The chain is held until the
    /// caller says how the transaction ended; dropping the entry unresolved counts as
    /// "unknown".
    pub async fn prepare(
        &self,
        meta: &RequestMeta,
        actor: &str,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Pending<'_> {
        self.prepare_at(
            meta,
            actor,
            action,
            outcome,
            details,
            OffsetDateTime::now_utc(),
        )
        .await
    }

    async fn prepare_at(
        &self,
        meta: &RequestMeta,
        actor: &str,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
        at: OffsetDateTime,
    ) -> Pending<'_> {
        let details = details_text(details);
        let actor = if actor.is_empty() {
            ANONYMOUS_ACTOR
        } else {
            actor
        };
        let written = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let expires_at = written + self.settings.retention.as_secs();
        let head = self.head.lock().await;
        let sealed = AuditEntry {
            chain_id: head.chain_id.clone(),
            seq: head.next_seq,
            timestamp: format_timestamp(at),
            actor: capped(actor, MAX_ACTOR_CHARS),
            action: action.as_str().to_owned(),
            outcome: outcome.as_str().to_owned(),
            details,
            source_ip: capped(meta.source_ip.as_deref().unwrap_or_default(), MAX_IP_CHARS),
            user_agent: capped(
                meta.user_agent.as_deref().unwrap_or_default(),
                MAX_USER_AGENT_CHARS,
            ),
            request_id: capped(&meta.request_id, MAX_REQUEST_ID_CHARS),
        }
        .seal(&self.settings.hmac_key, &head.prev_mac, expires_at);
        Pending {
            head: Some(head),
            sealed,
            table: self.settings.table.clone(),
        }
    }

    /// For read-only requests: the answer is still given; the failure is logged and counted.
    pub async fn record_best_effort(
        &self,
        meta: &RequestMeta,
        actor: &str,
        action: Action,
        outcome: Outcome,
        details: serde_json::Value,
    ) {
        if let Err(err) = self.record(meta, actor, action, outcome, details).await {
            tracing::error!(error = %err, action = action.as_str(), "audit entry lost for a read");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn entry() -> AuditEntry {
        AuditEntry {
            chain_id: "c".into(),
            seq: 0,
            timestamp: "2026-11-23T00:00:00.000000Z".into(),
            actor: "bob".into(),
            action: "login".into(),
            outcome: "success".into(),
            details: "{}".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: "curl".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn the_mac_covers_every_field_the_key_and_the_previous_mac() {
        let key = b"0123456789abcdef0123456789abcdef";
        let base = entry().mac(key, "");
        assert_eq!(base.len(), 64);
        assert_eq!(base, entry().mac(key, ""), "the MAC is deterministic");
        assert_ne!(base, entry().mac(b"another key, also 32 bytes long!", ""));
        assert_ne!(base, entry().mac(key, "prev"));
        let edits: [fn(&mut AuditEntry); 9] = [
            |e| e.chain_id.push('x'),
            |e| e.timestamp.push('x'),
            |e| e.actor.push('x'),
            |e| e.action.push('x'),
            |e| e.outcome.push('x'),
            |e| e.details.push('x'),
            |e| e.source_ip.push('x'),
            |e| e.user_agent.push('x'),
            |e| e.request_id.push('x'),
        ];
        for edit in edits {
            let mut changed = entry();
            edit(&mut changed);
            assert_ne!(changed.mac(key, ""), base, "{changed:?}");
            assert_ne!(
                changed.content_hash(),
                entry().content_hash(),
                "{changed:?}"
            );
        }
        // The position is the chain's business (prev_mac), not the content's.
        let mut moved = entry();
        moved.seq = 7;
        assert_eq!(moved.mac(key, ""), base);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = entry();
        a.actor = "bo".into();
        a.action = "blogin".into();
        let mut b = entry();
        b.actor = "bob".into();
        b.action = "login".into();
        assert_ne!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn sealed_entries_round_trip_through_items() {
        let sealed = entry().seal(b"k", "prev", 99);
        let item = sealed.to_item();
        assert_eq!(item["day"].as_s().unwrap(), "2026-11-23");
        assert_eq!(SealedEntry::from_item(&item).unwrap(), sealed);
        let mut broken = item.clone();
        broken.remove("outcome");
        assert!(
            SealedEntry::from_item(&broken)
                .unwrap_err()
                .contains("outcome")
        );
        let mut moved_day = item;
        moved_day.insert("day".into(), s("1999-01-01"));
        assert!(SealedEntry::from_item(&moved_day).is_err());
    }

    #[test]
    fn actions_and_outcomes_parse_by_their_stored_names() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("Login"), None);
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("ok"), None);
        assert!(Action::Login.is_user_initiated());
        assert!(!Action::RetrainStarted.is_user_initiated());
    }

    #[test]
    fn free_text_is_capped_and_says_how_much_was_cut() {
        assert_eq!(capped("curl/8.5", 512), "curl/8.5");
        let long = "é".repeat(410_000);
        let cut = capped(&long, MAX_USER_AGENT_CHARS);
        assert!(cut.starts_with(&"é".repeat(MAX_USER_AGENT_CHARS)));
        assert!(cut.ends_with(&format!("[+{} chars]", 410_000 - MAX_USER_AGENT_CHARS)));
        assert!(cut.len() < 2_000);
    }

    #[test]
    fn details_never_keep_secrets_or_bulk() {
        let text = details_text(json!({
            "username": "bob",
            "Password": "hunter2",
            "nested": [{"access_token": "eyJ"}, {"image": "iVBOR"}],
            "token_id": "01J",
        }));
        assert!(!text.contains("hunter2") && !text.contains("eyJ") && !text.contains("iVBOR"));
        assert!(text.contains("bob") && text.contains("01J"), "{text}");
        let big = details_text(json!({"blob": "x".repeat(MAX_DETAILS_BYTES)}));
        assert!(big.len() < 100 && big.contains("truncated"), "{big}");
    }
}
