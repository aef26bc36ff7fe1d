//! The Deliveries table (DESIGN.md §5): exactly one message per (alert, state, channel).
//!
//! SNS and Lambda's asynchronous retries may hand the same alert over more than once,
//! even without errors. Before sending, a delivery *claims* its key with a conditional
//! write: the key must be new, or its earlier claim must have expired unfinished (a
//! crash between sending and recording). After the message is accepted the claim is
//! marked `delivered`, and a delivered key is never claimed again. So concurrent
//! duplicates send once, and a crash mid-send is sent again after the lease, not lost.

use crate::store::{StoreError, is_conditional_failure, n, s, sdk_error};
use aws_sdk_dynamodb::Client;

/// How long a claim holds before another delivery may take it over: just over
/// slack-alert's timeout (30 s), so no live sender outlasts it (never doubled), and a
/// dead one's claim is free again before Lambda's first retry (about a minute later).
pub const LEASE_SECS: u64 = 45;
/// Delivered records are kept this long (by TTL): past SNS's and Lambda's retry horizon.
pub const KEEP_SECS: u64 = 7 * 86_400;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Slack,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Email => "email",
        }
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This delivery may send.
    Granted,
    /// Sent already: nothing to do.
    Delivered,
    /// Another delivery holds a live claim: it sends (or its invocation fails and is
    /// retried).
    Busy,
}

pub fn key(alert_id: &str, state: &str, channel: Channel) -> String {
    format!("{alert_id}#{state}#{}", channel.as_str())
}

#[derive(Clone)]
pub struct DeliveryStore {
    client: Client,
    table: String,
}

impl DeliveryStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Claims `key` at `now` for [`LEASE_SECS`].
    pub async fn claim(&self, key: &str, now: u64) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("delivery", s(key))
            .item("status", s("in_progress"))
            .item("lease_until", n(now + LEASE_SECS))
            .item("claimed_at", n(now))
            .item("expires_at", n(now + KEEP_SECS))
            .condition_expression(
                "attribute_not_exists(delivery) OR (#st = :busy AND lease_until <= :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":busy", s("in_progress"))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Granted),
            Err(err) if is_conditional_failure(&err) => {
                Ok(match self.status(key).await?.as_deref() {
                    Some("delivered") => Claim::Delivered,
                    _ => Claim::Busy,
                })
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Records that the message of `key` was accepted (`detail`: Slack's answer or the
    /// SES message id).
    pub async fn delivered(&self, key: &str, now: u64, detail: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("delivery", s(key))
            // A record written without a claim (a manual alert's) gets its expiry here.
            .update_expression(
                "SET #st = :done, delivered_at = :now, detail = :detail, \
                 expires_at = if_not_exists(expires_at, :expires) REMOVE lease_until",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":done", s("delivered"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":detail", s(detail))
            .expression_attribute_values(":expires", n(now + KEEP_SECS))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    /// Gives a claim back after a failed send, so the next delivery need not wait out
    /// the lease.
    pub async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("delivery", s(key))
            .condition_expression("#st = :busy")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":busy", s("in_progress"))
            .send()
            .await
            .map(|_| ())
            .or_else(|err| {
                if is_conditional_failure(&err) {
                    Ok(())
                } else {
                    Err(sdk_error(err))
                }
            })
    }

    /// The status of `key`: `in_progress`, `delivered`, or none.
    pub async fn status(&self, key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("delivery", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .item
            .and_then(|item| item.get("status").and_then(|v| v.as_s().ok()).cloned()))
    }
}
