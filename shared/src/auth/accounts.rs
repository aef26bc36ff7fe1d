//! Is the account a token was issued to still the account it says? (DESIGN.md §13)
//!
//! A token is valid for its whole hour on its signature alone; deleting an account, or
//! deleting it and creating another with the same name and a lesser role, would not stop
//! it. So the router confirms, for every authenticated request, that an account with the
//! token's name still exists with the token's id (`uid`) and role:
//!
//! - for admin routes, with a consistent read every time: a removed or demoted admin's
//!   token stops working at once;
//! - for user routes, through a per-container cache at most `ttl` old (default 30 s,
//!   `ACCOUNT_CHECK_TTL_SECONDS`): a deleted user's token stops working within that bound,
//!   and a busy user costs one read per container per `ttl`, not one per request.
//!
//! A store failure refuses the request (503): the check fails closed.

use super::Principal;
use crate::error::ApiError;
use crate::store::users::{Account, UserStore};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Accounts remembered per container; past it the cache starts over (a container sees
/// few distinct users; this only bounds memory against a flood of names).
const MAX_CACHED: usize = 10_000;

/// How fresh the answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Read the table now, consistently.
    Now,
    /// An answer at most the cache's `ttl` old will do.
    Cached,
}

pub struct Accounts {
    store: UserStore,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<Account>)>>,
}

fn matches(account: &Account, principal: &Principal) -> bool {
    account.user_id.as_deref() == Some(principal.user_id.as_str()) && account.role == principal.role
}

fn revoked() -> ApiError {
    ApiError::unauthorized(
        "token_revoked",
        "the account this token was issued to no longer exists or has changed; log in again",
    )
}

impl Accounts {
    pub fn new(store: UserStore, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` if the account named by `principal` exists with its id and role. Only a
    /// matching answer is taken from the cache: a refusal is always read again first, so
    /// an account created a moment ago (a name taken again) is not refused for an old
    /// answer about its predecessor.
    pub async fn confirm(
        &self,
        principal: &Principal,
        freshness: Freshness,
    ) -> Result<(), ApiError> {
        let username = principal.username.as_str();
        if freshness == Freshness::Cached
            && self
                .cached(username)
                .await
                .is_some_and(|a| matches(&a, principal))
        {
            return Ok(());
        }
        match self.read(username, freshness).await? {
            Some(a) if matches(&a, principal) => Ok(()),
            _ => Err(revoked()),
        }
    }

    /// The cached answer for `username`, if one younger than `ttl` says it exists.
    async fn cached(&self, username: &str) -> Option<Account> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().await;
        let (read_at, account) = cache.get(username)?;
        if read_at.elapsed() < self.ttl {
            account.clone()
        } else {
            None
        }
    }

    async fn read(
        &self,
        username: &str,
        freshness: Freshness,
    ) -> Result<Option<Account>, ApiError> {
        let account = self
            .store
            .account(username, freshness == Freshness::Now)
            .await?;
        let mut cache = self.cache.lock().await;
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(username.to_owned(), (Instant::now(), account.clone()));
        Ok(account)
    }
}
