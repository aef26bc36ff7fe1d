//! One module per DynamoDB table: typed items, queries and conditional writes.

pub mod aggregates;
pub mod cursor;
pub mod feedback;
pub mod models;
pub mod predictions;
pub mod users;

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item already there (or changed under us).
    #[error("the item already exists or was changed concurrently")]
    Conflict,
    #[error("the item does not exist")]
    NotFound,
    /// DynamoDB failed after the SDK's retries.
    #[error("dynamodb: {0}")]
    Dynamo(String),
    /// An item in the table does not have the shape this code writes.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// A listing's cursor that this store did not issue (or issued for other filters).
    #[error("the cursor is not one this listing issued")]
    InvalidCursor,
}

/// The SDK's error with its full chain.
pub(crate) fn sdk_error<E: std::error::Error>(err: E) -> StoreError {
    StoreError::Dynamo(crate::error::error_chain(&err))
}

/// Writes a new item: `Conflict` if an item with its key (`key_attribute`) exists.
pub(crate) async fn put_new(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    item: Item,
    key_attribute: &str,
) -> Result<(), StoreError> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#key)")
        .expression_attribute_names("#key", key_attribute)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_conditional_failure(&err) => Err(StoreError::Conflict),
        Err(err) => Err(sdk_error(err)),
    }
}

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is missing or not a string")))
}

pub(crate) fn get_n_opt(item: &Item, name: &str) -> Result<Option<u64>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is not a whole number"))),
    }
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Whether an SDK error is DynamoDB's ConditionalCheckFailedException.
pub(crate) fn is_conditional_failure<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}
