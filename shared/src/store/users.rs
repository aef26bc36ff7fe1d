//! The Users table: one item per account, keyed by `username`.
//!
//! Attributes: `user_id` (a ULID given at creation: the account's identity, carried in
//! its tokens and stored with what it owns, so a name deleted and taken again is another
//! account), `password_hash` (Argon2id PHC string), `role`, `created_at`. Failed-login
//! windows live in the LoginGuards table (shared/src/store/guards.rs).

use super::{Item, Refused, StoreError, get_s, is_conditional_failure, s, sdk_error};
use crate::audit::Pending;
use crate::domain::{Role, Username};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct User {
    pub username: Username,
    /// `None` only for an account created before accounts had ids (see
    /// [`UserStore::assign_id`]).
    pub user_id: Option<String>,
    pub password_hash: String,
    pub role: Role,
    pub created_at: String,
}

/// What a token's account check needs: who the account is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: Option<String>,
    pub role: Role,
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

/// The attributes anyone but login may read of an account (the IAM policy of the
/// other functions allows these alone): never the hash.
pub const ACCOUNT_ATTRIBUTES: &str = "username, user_id, #r";

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

    /// The whole account, hash included (login only).
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

    /// Who the account named `username` is now, reading only [`ACCOUNT_ATTRIBUTES`];
    /// `consistent` for a decision that must see a deletion made a moment ago.
    pub async fn account(
        &self,
        username: &str,
        consistent: bool,
    ) -> Result<Option<Account>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("username", s(username))
            .projection_expression(ACCOUNT_ATTRIBUTES)
            .expression_attribute_names("#r", "role")
            .consistent_read(consistent)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item
            .map(|item| {
                Ok(Account {
                    user_id: optional_s(&item, "user_id"),
                    role: parse_role(&item)?,
                })
            })
            .transpose()
    }

    /// Creates the account with a fresh id (returned); `Conflict` when the username is
    /// taken. With `audit`, the account and its audit entry are one transaction.
    pub async fn create(
        &self,
        user: &NewUser,
        created_at: &str,
        audit: Option<Pending<'_>>,
    ) -> Result<String, StoreError> {
        let user_id = ulid::Ulid::new().to_string();
        let item = Item::from([
            ("username".to_owned(), s(user.username.as_str())),
            ("user_id".to_owned(), s(&user_id)),
            ("password_hash".to_owned(), s(&user.password_hash)),
            ("role".to_owned(), s(user.role.as_str())),
            ("created_at".to_owned(), s(created_at)),
        ]);
        let new_name = "attribute_not_exists(username)";
        let Some(audit) = audit else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(new_name)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(user_id),
                Err(e) if is_conditional_failure(&e) => Err(StoreError::Conflict),
                Err(e) => Err(sdk_error(e)),
            };
        };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(new_name)
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let items = vec![TransactWriteItem::builder().put(put).build()];
        super::transact_audited(&self.client, items, audit)
            .await
            .map_err(|refused| match refused {
                Refused::Condition(0) => StoreError::Conflict,
                Refused::Condition(_) => {
                    StoreError::Dynamo("the audit entry's slot was taken".into())
                }
                Refused::Failed(err) => err,
            })?;
        Ok(user_id)
    }

    /// Deletes the account and writes its audit entry, in one transaction; `NotFound`
    /// when there was none (nothing is written then).
    pub async fn delete(&self, username: &Username, audit: Pending<'_>) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("username", s(username.as_str()))
            .condition_expression("attribute_exists(username)")
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let items = vec![TransactWriteItem::builder().delete(delete).build()];
        super::transact_audited(&self.client, items, audit)
            .await
            .map_err(|refused| match refused {
                Refused::Condition(0) => StoreError::NotFound,
                Refused::Condition(_) => {
                    StoreError::Dynamo("the audit entry's slot was taken".into())
                }
                Refused::Failed(err) => err,
            })
    }

    /// Gives an account made before accounts had ids its id (once: conditional), and
    /// returns the id it has.
    pub async fn assign_id(&self, username: &Username) -> Result<String, StoreError> {
        let fresh = ulid::Ulid::new().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("username", s(username.as_str()))
            .update_expression("SET user_id = :id")
            .condition_expression("attribute_exists(username) AND attribute_not_exists(user_id)")
            .expression_attribute_values(":id", s(&fresh))
            .send()
            .await;
        match result {
            Ok(_) => Ok(fresh),
            Err(e) if is_conditional_failure(&e) => self
                .get(username)
                .await?
                .and_then(|u| u.user_id)
                .ok_or(StoreError::NotFound),
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
            .projection_expression("username, #r, created_at")
            .expression_attribute_names("#r", "role");
        if let Some(after) = after {
            scan = scan.exclusive_start_key("username", s(after));
        }
        let out = scan.send().await.map_err(sdk_error)?;
        let users = out
            .items()
            .iter()
            .map(|item| {
                Ok(UserSummary {
                    username: get_s(item, "username")?.to_owned(),
                    role: parse_role(item)?,
                    created_at: get_s(item, "created_at")?.to_owned(),
                    // The lock lives in LoginGuards; the caller fills it in.
                    locked: false,
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

fn optional_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn user_from_item(item: &Item) -> Result<User, StoreError> {
    let username = Username::parse(get_s(item, "username")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(User {
        username,
        user_id: optional_s(item, "user_id"),
        password_hash: get_s(item, "password_hash")?.to_owned(),
        role: parse_role(item)?,
        created_at: get_s(item, "created_at")?.to_owned(),
    })
}
