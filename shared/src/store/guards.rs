//! The LoginGuards table: the failed-login windows (shared/src/auth/lockout.rs), keyed
//! by the name tried — `account#<username>`, whether or not such an account exists, so
//! unknown names behave as known ones — and the per-source throttle, keyed
//! `source#<address>#<window>`. Items expire by TTL (`expires_at`) once nothing in them
//! matters any more.

use super::{
    Item, Refused, StoreError, get_n_opt, is_conditional_failure, n, s, sdk_error, transact_audited,
};
use crate::audit::Pending;
use crate::auth::lockout::{LOCK_SECS, LoginGuard, MAX_FAILURES, WINDOW_SECS};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, TransactWriteItem, Update,
};
use rand_core::{OsRng, RngCore};
use std::collections::HashSet;

/// Failed logins one source address may make per window, over all the names it tries
/// (credential stuffing), before it is throttled.
pub const SOURCE_MAX_FAILURES: u64 = 50;
/// The source throttle's windows are fixed, this long.
pub const SOURCE_WINDOW_SECS: u64 = 15 * 60;
/// Reads and conditional writes one reservation may take when other attempts race it:
/// each round another racer takes a slot, so one more round than there are slots.
const RESERVE_ROUNDS: usize = MAX_FAILURES + 1;

/// What an attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// A slot is held for this attempt; `guard` is the window as the reservation left it.
    Granted { guard: LoginGuard },
    /// Locked, or every slot holds a failure inside the window: refused before the
    /// password is looked at.
    Refused { retry_after_secs: u64, locked: bool },
}

fn account_key(username: &str) -> String {
    format!("account#{username}")
}

fn slot_name(slot: usize) -> String {
    format!("s{slot}")
}

#[derive(Clone)]
pub struct GuardStore {
    client: Client,
    table: String,
}

impl GuardStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The window of `username` (consistent: a reservation must see every other).
    pub async fn account(&self, username: &str) -> Result<LoginGuard, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("subject", s(account_key(username)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item
            .as_ref()
            .map_or(Ok(LoginGuard::default()), guard_from_item)
    }

    /// Takes a free slot of `username`'s window for an attempt at `now`, or says why
    /// not. Each take is a conditional write on the slot as it was read, so racing
    /// attempts can never take more slots than there are; one that keeps losing the race
    /// is refused (briefly), never answered with an error.
    pub async fn reserve(&self, username: &str, now: u64) -> Result<Reservation, StoreError> {
        let mut guard = self.account(username).await?;
        for _ in 0..RESERVE_ROUNDS {
            if guard.locked_for(now).is_some() {
                break;
            }
            let free = guard.free_slots(now);
            if free.is_empty() {
                break;
            }
            // A random free slot, so racers spread over the slots instead of all
            // contending for the first.
            let slot = free[(OsRng.next_u32() as usize) % free.len()];
            let name = slot_name(slot);
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("subject", s(account_key(username)))
                .update_expression("SET #slot = :now, expires_at = :expires")
                .expression_attribute_names("#slot", &name)
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":expires", n(now + WINDOW_SECS + LOCK_SECS))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
            let unlocked = "(attribute_not_exists(locked_until) OR locked_until <= :now)";
            update = match guard.slots[slot] {
                None => update
                    .condition_expression(format!("attribute_not_exists(#slot) AND {unlocked}")),
                Some(seen) => update
                    .condition_expression(format!("#slot = :seen AND {unlocked}"))
                    .expression_attribute_values(":seen", n(seen)),
            };
            match update.send().await {
                Ok(out) => {
                    let guard = out
                        .attributes
                        .as_ref()
                        .map_or(Ok(LoginGuard::default()), guard_from_item)?;
                    return Ok(Reservation::Granted { guard });
                }
                Err(err) if is_conditional_failure(&err) => {
                    guard = self.account(username).await?;
                }
                Err(err) => return Err(sdk_error(err)),
            }
        }
        Ok(Reservation::Refused {
            retry_after_secs: guard.retry_after(now),
            locked: guard.locked_for(now).is_some(),
        })
    }

    /// The lock that a window full of failures sets — `locked_until`, the slots emptied
    /// (the count starts again after it) — and its audit entry, in one transaction.
    pub async fn lock(
        &self,
        username: &str,
        now: u64,
        audit: Pending<'_>,
    ) -> Result<(), StoreError> {
        let slots: Vec<String> = (0..MAX_FAILURES).map(slot_name).collect();
        let update = Update::builder()
            .table_name(&self.table)
            .key("subject", s(account_key(username)))
            .update_expression(format!(
                "SET locked_until = :until, expires_at = :expires REMOVE {}",
                slots.join(", ")
            ))
            .expression_attribute_values(":until", n(now + LOCK_SECS))
            .expression_attribute_values(":expires", n(now + LOCK_SECS + WINDOW_SECS))
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let items = vec![TransactWriteItem::builder().update(update).build()];
        transact_audited(&self.client, items, audit)
            .await
            .map_err(Refused::into_store_error)
    }

    /// A successful login clears the window (best effort for the caller: a window that
    /// stays only costs the next attempts a slot).
    pub async fn clear(&self, username: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("subject", s(account_key(username)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    /// An admin's unlock — the window deleted — and its audit entry, in one transaction.
    pub async fn unlock(&self, username: &str, audit: Pending<'_>) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("subject", s(account_key(username)))
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let items = vec![TransactWriteItem::builder().delete(delete).build()];
        transact_audited(&self.client, items, audit)
            .await
            .map_err(Refused::into_store_error)
    }

    /// Counts one failed attempt from `source` in its current window; `Err(retry_after)`
    /// when the source has used up [`SOURCE_MAX_FAILURES`]. One conditional `ADD`, so
    /// racing attempts cannot exceed it.
    pub async fn take_source(&self, source: &str, now: u64) -> Result<Result<(), u64>, StoreError> {
        let window = now / SOURCE_WINDOW_SECS;
        let retry_after = (window + 1) * SOURCE_WINDOW_SECS - now;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("subject", s(source_key(source, window)))
            .update_expression("ADD failures :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(failures) OR failures < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(SOURCE_MAX_FAILURES))
            .expression_attribute_values(":expires", n(now + 2 * SOURCE_WINDOW_SECS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(err) if is_conditional_failure(&err) => Ok(Err(retry_after)),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Gives back a source's count for an attempt that succeeded.
    pub async fn release_source(&self, source: &str, now: u64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("subject", s(source_key(source, now / SOURCE_WINDOW_SECS)))
            .update_expression("ADD failures :minus_one")
            .condition_expression("failures > :zero")
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", n(0))
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

    /// Which of `usernames` are locked at `now` (for the admin's account listing).
    pub async fn locked_among(
        &self,
        usernames: &[String],
        now: u64,
    ) -> Result<HashSet<String>, StoreError> {
        let mut locked = HashSet::new();
        for chunk in usernames.chunks(100) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|u| Item::from([("subject".to_owned(), s(account_key(u)))]))
                .collect();
            let mut rounds = 0;
            while !pending.is_empty() && rounds < 10 {
                rounds += 1;
                let keys = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .build()
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for item in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let guard = guard_from_item(item)?;
                    let subject = item.get("subject").and_then(|v| v.as_s().ok());
                    if let Some(name) = subject.and_then(|k| k.strip_prefix("account#"))
                        && guard.locked_for(now).is_some()
                    {
                        locked.insert(name.to_owned());
                    }
                }
                if let Some(left) = out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    pending = left.keys().to_vec();
                }
            }
        }
        Ok(locked)
    }
}

fn source_key(source: &str, window: u64) -> String {
    format!("source#{source}#{window}")
}

fn guard_from_item(item: &Item) -> Result<LoginGuard, StoreError> {
    let mut guard = LoginGuard {
        locked_until: get_n_opt(item, "locked_until")?,
        ..LoginGuard::default()
    };
    for (i, slot) in guard.slots.iter_mut().enumerate() {
        *slot = get_n_opt(item, &slot_name(i))?;
    }
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_back_as_windows() {
        let item = Item::from([
            ("subject".to_owned(), s("account#bob")),
            ("s0".to_owned(), n(100)),
            ("s3".to_owned(), n(200)),
            ("locked_until".to_owned(), n(999)),
        ]);
        let guard = guard_from_item(&item).unwrap();
        assert_eq!(guard.slots, [Some(100), None, None, Some(200), None]);
        assert_eq!(guard.locked_until, Some(999));
        let broken = Item::from([("s1".to_owned(), s("soon"))]);
        assert!(matches!(
            guard_from_item(&broken),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn keys_cannot_collide() {
        // Usernames have no '#', so an account's key never looks like a source's.
        assert_eq!(account_key("bob"), "account#bob");
        assert_eq!(source_key("203.0.113.7", 7), "source#203.0.113.7#7");
    }
}
