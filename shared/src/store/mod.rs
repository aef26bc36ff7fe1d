//! One module per DynamoDB table: typed items, queries and conditional writes.

pub mod aggregates;
pub mod config_docs;
pub mod cursor;
pub mod drift_runs;
pub mod feedback;
pub mod guards;
pub mod jobs;
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

/// Why a change and its audit entry were not written together.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The condition of the write at this index failed: nothing was written.
    Condition(usize),
    Failed(StoreError),
}

impl Refused {
    /// For a change whose writes carry no condition but the audit entry's own.
    pub(crate) fn into_store_error(self) -> StoreError {
        match self {
            Self::Condition(_) => StoreError::Dynamo("the audit entry's slot was taken".into()),
            Self::Failed(err) => err,
        }
    }
}

/// Concurrent transactions on the same items cancel each other (TransactionConflict);
/// a cancelled transaction wrote nothing, so it is simply tried again.
const TRANSACTION_RETRIES: crate::retry::Backoff = crate::retry::Backoff {
    base: std::time::Duration::from_millis(10),
    cap: std::time::Duration::from_millis(200),
    max_attempts: 8,
    budget: std::time::Duration::from_secs(3),
};

/// Writes `items` and the audit entry `audit` in one `TransactWriteItems` (the entry
/// last), so the change and its record land together or not at all (DESIGN.md §13).
/// The audit chain learns the outcome: written, cancelled (nothing landed), or unknown.
pub(crate) async fn transact_audited(
    client: &aws_sdk_dynamodb::Client,
    mut items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    audit: crate::audit::Pending<'_>,
) -> Result<(), Refused> {
    use crate::retry::Step;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

    /// How a failed attempt ended, as far as anyone can know.
    enum Ended {
        /// DynamoDB cancelled it (nothing was written): a condition failed at this index,
        /// or it lost to another transaction (`None`).
        Cancelled(Option<usize>),
        /// No answer, or another error: it may have been written.
        Unknown,
    }

    match audit.put() {
        Ok(put) => items.push(put),
        Err(err) => return Err(Refused::Failed(StoreError::Dynamo(err.to_string()))),
    }
    let attempt = TRANSACTION_RETRIES
        .run(|_| {
            let send = client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send();
            async move {
                let err = match send.await {
                    Ok(_) => return Step::Done(()),
                    Err(err) => err,
                };
                let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                    err.as_service_error()
                else {
                    return Step::Fail((Ended::Unknown, sdk_error(err)));
                };
                let reasons = cancelled.cancellation_reasons();
                let failed_condition = reasons
                    .iter()
                    .position(|r| r.code() == Some("ConditionalCheckFailed"));
                let lost_a_race = reasons
                    .iter()
                    .any(|r| r.code() == Some("TransactionConflict"));
                let error = sdk_error(err);
                match failed_condition {
                    Some(index) => Step::Fail((Ended::Cancelled(Some(index)), error)),
                    None if lost_a_race => Step::Retry((Ended::Cancelled(None), error)),
                    None => Step::Fail((Ended::Cancelled(None), error)),
                }
            }
        })
        .await;
    match attempt {
        Ok(()) => {
            audit.written();
            Ok(())
        }
        Err(stopped) => match stopped.error {
            (Ended::Cancelled(Some(index)), _) => {
                audit.not_written();
                Err(Refused::Condition(index))
            }
            (Ended::Cancelled(None), error) => {
                audit.not_written();
                Err(Refused::Failed(error))
            }
            (Ended::Unknown, error) => {
                audit.unknown();
                Err(Refused::Failed(error))
            }
        },
    }
}

/// The items of `table` whose key attribute `key` is each of `ids` (those that exist):
/// BatchGetItem, 100 keys a call, unprocessed keys asked again (at most a few rounds;
/// what is left is an error rather than a silently smaller answer). `projection` names
/// the attributes to read (through placeholders: `input` is a reserved word), all of
/// them when empty.
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    ids: &[String],
    projection: &[&str],
) -> Result<Vec<Item>, StoreError> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let mut found = Vec::new();
    for chunk in ids.chunks(100) {
        let keys: Vec<Item> = chunk
            .iter()
            .map(|id| Item::from([(key.to_owned(), s(id))]))
            .collect();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .set_projection_expression((!projection.is_empty()).then(|| {
                    (0..projection.len())
                        .map(|i| format!("#p{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }))
                .set_expression_attribute_names((!projection.is_empty()).then(|| {
                    projection
                        .iter()
                        .enumerate()
                        .map(|(i, name)| (format!("#p{i}"), (*name).to_owned()))
                        .collect()
                }))
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?,
        );
        for round in 0..5 {
            let Some(request) = pending.take() else {
                break;
            };
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
            }
            let out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(sdk_error)?;
            if let Some(items) = out.responses().and_then(|r| r.get(table)) {
                found.extend(items.iter().cloned());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .filter(|k| !k.keys().is_empty())
                .cloned();
        }
        if pending.is_some() {
            return Err(StoreError::Dynamo(format!(
                "{table}: keys left unprocessed after retries"
            )));
        }
    }
    Ok(found)
}

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

/// Whether a TransactWriteItems failed because DynamoDB cancelled it (a condition, or a
/// conflicting transaction): nothing was written.
pub(crate) fn is_cancelled<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_transaction_canceled_exception())
}
