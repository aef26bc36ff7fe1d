//! The Users table: one item per account, keyed by `username`.
//!
//! Attributes: `password_hash` (Argon2id PHC string), `role`, `created_at`,
//! `recent_failures` (list of unix seconds), `locked_until`, and `version`, which every
//! update checks and bumps so that concurrent logins cannot lose a failure.

use super::{Item, StoreError, get_n_opt, get_s, is_conditional_failure, n, s, sdk_error};
use crate::auth::lockout::LoginGuard;
use crate::domain::{Role, Username};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct User {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    pub created_at: String,
    pub guard: LoginGuard,
    pub version: u64,
}

/// What an admin sees of an account: never the hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserSummary {
    pub username: String,
    pub role: Role,
    pub created_at: String,
    pub locked: bool,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    /// The last username of this page, when there may be more.
    pub last_username: Option<String>,
}

#[derive(Clone)]
pub struct UserStore {
    client: Client,
    table: String,
}

impl UserStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A consistent read: lockout decisions must see the latest failures.
    pub async fn get(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("username", s(username.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.map(|item| user_from_item(&item)).transpose()
    }

    /// Creates the account; `Conflict` when the username is taken.
    pub async fn create(&self, user: &NewUser, created_at: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("username", s(user.username.as_str()))
            .item("password_hash", s(&user.password_hash))
            .item("role", s(user.role.as_str()))
            .item("created_at", s(created_at))
            .item("recent_failures", AttributeValue::L(Vec::new()))
            .item("version", n(0))
            .condition_expression("attribute_not_exists(username)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Deletes the account; `NotFound` when there was none.
    pub async fn delete(&self, username: &Username) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("username", s(username.as_str()))
            .condition_expression("attribute_exists(username)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Stores a new lockout state if the account is still at `expected_version`;
    /// `Conflict` if it changed (or does not exist), so the caller can re-read and retry.
    pub async fn save_guard(
        &self,
        username: &Username,
        expected_version: u64,
        guard: &LoginGuard,
    ) -> Result<(), StoreError> {
        let failures = guard.recent_failures.iter().map(|t| n(*t)).collect();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("username", s(username.as_str()))
            .condition_expression("attribute_exists(username) AND #v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":failures", AttributeValue::L(failures));
        update = match guard.locked_until {
            Some(until) => update
                .update_expression(
                    "SET recent_failures = :failures, locked_until = :until ADD #v :one",
                )
                .expression_attribute_values(":until", n(until)),
            None => update.update_expression(
                "SET recent_failures = :failures REMOVE locked_until ADD #v :one",
            ),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// One page of accounts in table order. Users is a small table read only by admins,
    /// so a paginated Scan is the right tool here.
    pub async fn list(&self, limit: u32, after: Option<&str>) -> Result<UserPage, StoreError> {
        let mut scan = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit as i32)
            .projection_expression("username, #r, created_at, locked_until")
            .expression_attribute_names("#r", "role");
        if let Some(after) = after {
            scan = scan.exclusive_start_key("username", s(after));
        }
        let out = scan.send().await.map_err(sdk_error)?;
        let now = crate::time::now_secs();
        let users = out
            .items()
            .iter()
            .map(|item| {
                Ok(UserSummary {
                    username: get_s(item, "username")?.to_owned(),
                    role: parse_role(item)?,
                    created_at: get_s(item, "created_at")?.to_owned(),
                    locked: get_n_opt(item, "locked_until")?.is_some_and(|t| t > now),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let last_username = out
            .last_evaluated_key()
            .and_then(|key| key.get("username"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(UserPage {
            users,
            last_username,
        })
    }
}

fn parse_role(item: &Item) -> Result<Role, StoreError> {
    Role::parse(get_s(item, "role")?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn user_from_item(item: &Item) -> Result<User, StoreError> {
    let username = Username::parse(get_s(item, "username")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let recent_failures = match item.get("recent_failures") {
        None => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| StoreError::Corrupt("recent_failures holds a non-number".into()))?,
        Some(_) => return Err(StoreError::Corrupt("recent_failures is not a list".into())),
    };
    Ok(User {
        username,
        password_hash: get_s(item, "password_hash")?.to_owned(),
        role: parse_role(item)?,
        created_at: get_s(item, "created_at")?.to_owned(),
        guard: LoginGuard {
            recent_failures,
            locked_until: get_n_opt(item, "locked_until")?,
        },
        version: get_n_opt(item, "version")?.unwrap_or(0),
    })
}
