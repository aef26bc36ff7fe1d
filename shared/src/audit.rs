//! The audit writer every function calls: `audit.record(meta, actor, action, outcome, details)`.
//!
//! Entries form per-instance hash chains (DESIGN.md §5): a chain id made at cold start,
//! sequence numbers from 0, and `mac = HMAC-SHA256(key, prev_mac ‖ canonical(entry))`.
//! Each entry is written with a condition that its (chain, sequence) slot is empty, so
//! nothing is overwritten. One Lambda instance serves one request at a time, so a mutex
//! around the chain head costs nothing and needs no coordination between instances.

use crate::config::AuditSettings;
use crate::http::RequestMeta;
use crate::store::{StoreError, n, s, sdk_error};
use aws_sdk_dynamodb::Client;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

/// The current time as RFC 3339 UTC, the one format of every stored timestamp.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Everything that is audited, by the name stored in the `action` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    AccountLocked,
    UserCreated,
    UserDeleted,
    UsersListed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::AccountLocked => "account_locked",
            Self::UserCreated => "user_created",
            Self::UserDeleted => "user_deleted",
            Self::UsersListed => "users_listed",
        }
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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// The fields the MAC covers, in a fixed order: the canonical form of an entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub chain_id: String,
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
        // serde_json writes struct fields in declaration order: a stable byte form.
        serde_json::to_vec(self).unwrap_or_default()
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

pub struct AuditTrail {
    client: Client,
    settings: AuditSettings,
    head: Mutex<ChainHead>,
}

#[derive(Debug, thiserror::Error)]
#[error("audit entry not written: {0}")]
pub struct AuditError(#[from] StoreError);

impl From<AuditError> for crate::error::ApiError {
    fn from(err: AuditError) -> Self {
        // Nothing may happen that is not recorded: a state change whose entry could not be
        // written is reported as a dependency failure.
        Self::dependency(err)
    }
}

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
        let now = OffsetDateTime::now_utc();
        let mut head = self.head.lock().await;
        let entry = AuditEntry {
            chain_id: head.chain_id.clone(),
            seq: head.next_seq,
            timestamp: now.format(&Rfc3339).unwrap_or_default(),
            actor: actor.to_owned(),
            action: action.as_str().to_owned(),
            outcome: outcome.as_str().to_owned(),
            details: details.to_string(),
            source_ip: meta.source_ip.clone().unwrap_or_default(),
            user_agent: meta.user_agent.clone().unwrap_or_default(),
            request_id: meta.request_id.clone(),
        };
        let mac = entry.mac(&self.settings.hmac_key, &head.prev_mac);
        let expires_at = now.unix_timestamp().max(0) as u64 + self.settings.retention.as_secs();
        let day = entry.timestamp.get(..10).unwrap_or_default().to_owned();
        let result = self
            .client
            .put_item()
            .table_name(&self.settings.table)
            .item("chain_id", s(&entry.chain_id))
            .item("seq", n(entry.seq))
            .item("ts", s(&entry.timestamp))
            .item("day", s(day))
            .item("actor", s(&entry.actor))
            .item("action", s(&entry.action))
            .item("outcome", s(&entry.outcome))
            .item("details", s(&entry.details))
            .item("source_ip", s(&entry.source_ip))
            .item("user_agent", s(&entry.user_agent))
            .item("request_id", s(&entry.request_id))
            .item("prev_mac", s(&head.prev_mac))
            .item("mac", s(&mac))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(chain_id) AND attribute_not_exists(seq)")
            .send()
            .await;
        match result {
            Ok(_) => {
                head.next_seq += 1;
                head.prev_mac = mac;
                Ok(())
            }
            Err(err) => {
                // The write may or may not have landed (a timeout says nothing); continuing
                // this chain could fork it. A fresh chain keeps every chain verifiable.
                *head = ChainHead::new();
                crate::telemetry::emit_metric("inferloop", "AuditWriteFailed", 1.0, "Count");
                Err(AuditError(sdk_error(err)))
            }
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

    fn entry() -> AuditEntry {
        AuditEntry {
            chain_id: "c".into(),
            seq: 0,
            timestamp: "2026-11-23T00:00:00Z".into(),
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
        let edits: [fn(&mut AuditEntry); 10] = [
            |e| e.chain_id.push('x'),
            |e| e.seq += 1,
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
        }
    }
}
