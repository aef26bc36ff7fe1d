//! The Feedback table (DESIGN.md §5): one item per prediction, written in one
//! TransactWriteItems with its aggregate counters and, when the true digit is known,
//! the prediction's mark as labelled training data. A retry or a concurrent duplicate
//! can therefore neither lose nor double-count: either all of it lands once, or none.
//! Listings query the `by_day` and `by_user` indexes, never scan.

use super::aggregates::FeedbackCounts;
use super::cursor::Resumable;
use super::predictions::PredictionRecord;
use super::{Item, Refused, StoreError, get_s, n, s, sdk_error};
use crate::domain::{Username, VersionName};
use crate::time::day_of;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

pub const BY_DAY_INDEX: &str = "by_day";
pub const BY_USER_INDEX: &str = "by_user";
/// Feedback read per page by [`FeedbackStore::labelled`].
const LABELLED_PAGE: u32 = 500;

/// A feedback as submitted, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeedback {
    pub feedback_id: String,
    pub prediction_id: String,
    /// Who sent it (the prediction's owner, or an admin).
    pub submitted_by: String,
    /// RFC 3339, fixed width; its date is the aggregates' day.
    pub created_at: String,
    pub correct: bool,
    pub true_label: Option<u8>,
    pub comment: Option<String>,
}

impl NewFeedback {
    /// The true digit, when known: a correct prediction's own digit, or the one given.
    pub fn known_label(&self, predicted: u8) -> Option<u8> {
        if self.correct {
            Some(predicted)
        } else {
            self.true_label
        }
    }

    /// Whether `stored` says the same as this submission (an idempotent retry).
    pub fn same_content(&self, stored: &FeedbackItem) -> bool {
        self.correct == stored.correct
            && self.true_label == stored.true_label
            && self.comment == stored.comment
    }
}

/// A stored feedback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedbackItem {
    pub feedback_id: String,
    pub prediction_id: String,
    /// The prediction's owner.
    pub username: String,
    pub submitted_by: String,
    pub created_at: String,
    pub correct: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub true_label: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub predicted: u8,
    pub model_version: String,
    pub line: String,
    pub route: String,
    /// The prediction's A/B arm (`/api/ab/predict` only); `variant` in the listing.
    #[serde(rename = "variant", skip_serializing_if = "Option::is_none")]
    pub ab_arm: Option<String>,
    /// Where its audit entry is (`<chain>#<sequence>`), written in the same transaction;
    /// `None` for feedback stored before entries joined it.
    #[serde(skip)]
    pub audit_ref: Option<String>,
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    Created,
    /// A feedback for this prediction existed already: this one.
    Exists(Box<FeedbackItem>),
}

/// A listing's filters; `from`/`to` are stored-timestamp bounds (RFC 3339, fixed width,
/// as `TimeRange::from_key`/`to_key` give them), inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackFilter {
    pub username: Option<Username>,
    pub from: String,
    pub to: String,
    pub model_version: Option<VersionName>,
    pub correct: Option<bool>,
}

pub struct FeedbackPage {
    pub items: Vec<FeedbackItem>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<Position>,
}

pub struct FeedbackStore {
    client: Client,
    table: String,
    aggregates_table: String,
    predictions_table: String,
}

impl FeedbackStore {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        aggregates_table: impl Into<String>,
        predictions_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            aggregates_table: aggregates_table.into(),
            predictions_table: predictions_table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn get(&self, prediction_id: &str) -> Result<Option<FeedbackItem>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("prediction_id", s(prediction_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(from_item).transpose()
    }

    /// The feedback of each of `prediction_ids` that has one (`batch_get`).
    pub async fn get_many(
        &self,
        prediction_ids: &[String],
    ) -> Result<Vec<FeedbackItem>, StoreError> {
        let items = super::batch_get(
            &self.client,
            &self.table,
            "prediction_id",
            prediction_ids,
            &[],
        )
        .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                // One damaged item costs its label, not the whole window's.
                from_item(item)
                    .inspect_err(
                        |err| tracing::warn!(error = %err, "a feedback item that does not read"),
                    )
                    .ok()
            })
            .collect())
    }

    /// Writes the feedback, its counters and the label mark in one transaction.
    /// `Exists` when this prediction already has feedback (nothing is written then).
    pub async fn submit(
        &self,
        feedback: &NewFeedback,
        prediction: &PredictionRecord,
        audit: crate::audit::Pending<'_>,
    ) -> Result<Submission, StoreError> {
        let item = FeedbackItem {
            feedback_id: feedback.feedback_id.clone(),
            prediction_id: feedback.prediction_id.clone(),
            username: prediction.username.clone(),
            submitted_by: feedback.submitted_by.clone(),
            created_at: feedback.created_at.clone(),
            correct: feedback.correct,
            true_label: feedback.true_label,
            comment: feedback.comment.clone(),
            predicted: prediction.digit,
            model_version: prediction.model_version.clone(),
            line: prediction.line.clone(),
            route: prediction.route.clone(),
            ab_arm: prediction.ab_arm.clone(),
            audit_ref: Some(audit.reference()),
        };
        let label = feedback.known_label(prediction.digit);
        let counts = FeedbackCounts {
            model_version: prediction.model_version.clone(),
            line: prediction.line.clone(),
            route: prediction.route.clone(),
            day: day_of(&feedback.created_at).to_owned(),
            predicted: prediction.digit,
            correct: feedback.correct,
            true_label: label,
        };
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Dynamo(e.to_string());
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&item)))
            .condition_expression("attribute_not_exists(prediction_id)")
            .build()
            .map_err(built)?;
        let [version_counts, day_counts] = counts.updates(&self.aggregates_table)?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(version_counts).build(),
            TransactWriteItem::builder().update(day_counts).build(),
        ];
        if let Some(label) = label {
            // The stored 28×28 input becomes labelled training data for retraining.
            let mark = Update::builder()
                .table_name(&self.predictions_table)
                .key("prediction_id", s(&feedback.prediction_id))
                .update_expression("SET true_label = :t, labelled_at = :at")
                .condition_expression("attribute_exists(prediction_id)")
                .expression_attribute_values(":t", n(u64::from(label)))
                .expression_attribute_values(":at", s(&feedback.created_at))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().update(mark).build());
        }

        // Indexes of the writes whose conditions matter: the feedback put (one per
        // prediction), and the mark on the prediction (it must still exist).
        const FEEDBACK: usize = 0;
        const MARK: usize = 3;
        match super::transact_audited(&self.client, items, audit).await {
            Ok(()) => Ok(Submission::Created),
            Err(Refused::Condition(FEEDBACK)) => match self.get(&feedback.prediction_id).await? {
                Some(existing) => Ok(Submission::Exists(Box::new(existing))),
                // Deleted in between: treat as a conflict the client can retry.
                None => Err(StoreError::Conflict),
            },
            Err(Refused::Condition(MARK)) if label.is_some() => Err(StoreError::NotFound),
            Err(other) => Err(other.into_store_error()),
        }
    }

    /// For feedback stored before entries joined its transaction: writes the entry it
    /// never had and records where it is, in one transaction (conditional on the mark
    /// still missing, so two retries at once write one entry).
    pub async fn mark_audited_with(
        &self,
        prediction_id: &str,
        audit_ref: &str,
        audit: crate::audit::Pending<'_>,
    ) -> Result<(), StoreError> {
        let mark = Update::builder()
            .table_name(&self.table)
            .key("prediction_id", s(prediction_id))
            .update_expression("SET audit_ref = :r")
            .condition_expression(
                "attribute_exists(prediction_id) AND attribute_not_exists(audit_ref)",
            )
            .expression_attribute_values(":r", s(audit_ref))
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let items = vec![TransactWriteItem::builder().update(mark).build()];
        match super::transact_audited(&self.client, items, audit).await {
            // Marked meanwhile by another retry: its entry is the one.
            Ok(()) | Err(Refused::Condition(0)) => Ok(()),
            Err(other) => Err(other.into_store_error()),
        }
    }

    /// Every feedback in `[from, to]` whose true digit is known (a correct prediction's
    /// own digit, or the one given), as (prediction id, digit), ordered by id: what a
    /// retrain trains on, and what auto-retrain counts before asking for one.
    pub async fn labelled(&self, from: &str, to: &str) -> Result<Vec<(String, u8)>, StoreError> {
        let filter = FeedbackFilter {
            from: from.to_owned(),
            to: to.to_owned(),
            ..FeedbackFilter::default()
        };
        let mut labelled = Vec::new();
        let mut start = None;
        loop {
            let page = self.list(&filter, LABELLED_PAGE, start).await?;
            for item in page.items {
                let label = if item.correct {
                    Some(item.predicted)
                } else {
                    item.true_label
                };
                if let Some(label) = label {
                    labelled.push((item.prediction_id, label));
                }
            }
            start = page.next;
            if start.is_none() {
                break;
            }
        }
        // The listing is newest first; a fixed order keeps a retrain deterministic.
        labelled.sort();
        Ok(labelled)
    }

    /// Feedback in the filter's range, newest first, `limit` at most, from `start` (a
    /// position from an earlier page's [`FeedbackCursor`]). Served by `by_user` when a
    /// username is given, else by `by_day`, one day partition after the other.
    pub async fn list(
        &self,
        filter: &FeedbackFilter,
        limit: u32,
        start: Option<Position>,
    ) -> Result<FeedbackPage, StoreError> {
        let mut items = Vec::new();
        if let Some(username) = &filter.username {
            let start_key = start.and_then(|p| p.start_key(("username", username.as_str())));
            let (found, next) = self
                .query(
                    BY_USER_INDEX,
                    ("username", username.as_str()),
                    filter,
                    limit,
                    start_key,
                )
                .await?;
            return Ok(FeedbackPage {
                items: found,
                next: next.map(|after| Position {
                    day: None,
                    after: Some(after),
                }),
            });
        }
        let first_day = day_of(&filter.from).to_owned();
        let mut position = start.unwrap_or_else(|| Position {
            day: Some(day_of(&filter.to).to_owned()),
            after: None,
        });
        while let Some(day) = position.day.clone().filter(|d| *d >= first_day) {
            let want = limit.saturating_sub(items.len() as u32);
            let start_key = position.start_key(("day", day.as_str()));
            let (found, next) = self
                .query(BY_DAY_INDEX, ("day", &day), filter, want, start_key)
                .await?;
            items.extend(found);
            if let Some(after) = next {
                return Ok(FeedbackPage {
                    items,
                    next: Some(Position {
                        day: Some(day),
                        after: Some(after),
                    }),
                });
            }
            position = Position {
                day: previous_day(&day).filter(|d| *d >= first_day),
                after: None,
            };
            if items.len() as u32 >= limit {
                // The page is full exactly at a day's end: resume at the next day.
                return Ok(FeedbackPage {
                    items,
                    next: position.day.is_some().then_some(position),
                });
            }
        }
        Ok(FeedbackPage { items, next: None })
    }

    /// Up to `limit` matching items of one index partition within the filter's time
    /// range; and where to resume, if the partition may hold more.
    async fn query(
        &self,
        index: &str,
        (key_name, key_value): (&str, &str),
        filter: &FeedbackFilter,
        limit: u32,
        mut start: Option<Item>,
    ) -> Result<(Vec<FeedbackItem>, Option<FeedbackKey>), StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok((out, None));
        }
        let mut conditions = Vec::new();
        if filter.model_version.is_some() {
            conditions.push("model_version = :mv");
        }
        if filter.correct.is_some() {
            conditions.push("correct = :c");
        }
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :k AND created_at BETWEEN :from AND :to")
                .expression_attribute_names("#k", key_name)
                .expression_attribute_values(":k", s(key_value))
                .expression_attribute_values(":from", s(&filter.from))
                .expression_attribute_values(":to", s(&filter.to))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - out.len() as u32).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            if let Some(version) = &filter.model_version {
                q = q.expression_attribute_values(":mv", s(version.as_str()));
            }
            if let Some(correct) = filter.correct {
                q = q.expression_attribute_values(":c", AttributeValue::Bool(correct));
            }
            if !conditions.is_empty() {
                q = q.filter_expression(conditions.join(" AND "));
            }
            let page = q.send().await.map_err(sdk_error)?;
            for item in page.items() {
                out.push(from_item(item)?);
            }
            let last = page.last_evaluated_key().cloned();
            match last {
                None => return Ok((out, None)),
                Some(last) if out.len() as u32 >= limit => {
                    let key = FeedbackKey {
                        prediction_id: get_s(&last, "prediction_id")?.to_owned(),
                        created_at: get_s(&last, "created_at")?.to_owned(),
                    };
                    return Ok((out, Some(key)));
                }
                Some(last) => start = Some(last),
            }
        }
    }
}

/// Where a listing resumes: the `day` partition (by_day listings) and the last item
/// returned, exclusive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<FeedbackKey>,
}

/// An item's key in the listing indexes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedbackKey {
    pub prediction_id: String,
    pub created_at: String,
}

impl Resumable for Position {
    fn day(&self) -> Option<&str> {
        self.day.as_deref()
    }
    fn last_timestamp(&self) -> Option<&str> {
        self.after.as_ref().map(|a| a.created_at.as_str())
    }
}

/// A feedback listing's cursor (see [`super::cursor`]).
pub type FeedbackCursor = super::cursor::Cursor<Position>;

impl Position {
    /// The ExclusiveStartKey within `partition`, or none to start it from its top.
    fn start_key(&self, (name, value): (&str, &str)) -> Option<Item> {
        self.after.as_ref().map(|after| {
            Item::from([
                ("prediction_id".to_owned(), s(&after.prediction_id)),
                ("created_at".to_owned(), s(&after.created_at)),
                (name.to_owned(), s(value)),
            ])
        })
    }
}

fn previous_day(day: &str) -> Option<String> {
    crate::time::parse_day(day)?
        .previous_day()
        .map(crate::time::format_day)
}

fn to_item(f: &FeedbackItem) -> Item {
    let mut item = Item::from([
        ("prediction_id".to_owned(), s(&f.prediction_id)),
        ("feedback_id".to_owned(), s(&f.feedback_id)),
        ("username".to_owned(), s(&f.username)),
        ("submitted_by".to_owned(), s(&f.submitted_by)),
        ("created_at".to_owned(), s(&f.created_at)),
        ("day".to_owned(), s(day_of(&f.created_at))),
        ("correct".to_owned(), AttributeValue::Bool(f.correct)),
        ("predicted".to_owned(), n(u64::from(f.predicted))),
        ("model_version".to_owned(), s(&f.model_version)),
        ("line".to_owned(), s(&f.line)),
        ("route".to_owned(), s(&f.route)),
    ]);
    if let Some(label) = f.true_label {
        item.insert("true_label".to_owned(), n(u64::from(label)));
    }
    if let Some(comment) = &f.comment {
        item.insert("comment".to_owned(), s(comment));
    }
    if let Some(reference) = &f.audit_ref {
        item.insert("audit_ref".to_owned(), s(reference));
    }
    if let Some(arm) = &f.ab_arm {
        item.insert("variant".to_owned(), s(arm));
    }
    item
}

fn digit(item: &Item, name: &str) -> Result<Option<u8>, StoreError> {
    match super::get_n_opt(item, name)? {
        None => Ok(None),
        Some(d) if d < 10 => Ok(Some(d as u8)),
        Some(d) => Err(StoreError::Corrupt(format!("{name} is {d}"))),
    }
}

fn from_item(item: &Item) -> Result<FeedbackItem, StoreError> {
    let optional = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Ok(FeedbackItem {
        feedback_id: get_s(item, "feedback_id")?.to_owned(),
        prediction_id: get_s(item, "prediction_id")?.to_owned(),
        username: get_s(item, "username")?.to_owned(),
        submitted_by: get_s(item, "submitted_by")?.to_owned(),
        created_at: get_s(item, "created_at")?.to_owned(),
        correct: item
            .get("correct")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .ok_or_else(|| StoreError::Corrupt("correct is missing".into()))?,
        true_label: digit(item, "true_label")?,
        comment: optional("comment"),
        predicted: digit(item, "predicted")?
            .ok_or_else(|| StoreError::Corrupt("predicted is missing".into()))?,
        model_version: get_s(item, "model_version")?.to_owned(),
        line: get_s(item, "line")?.to_owned(),
        route: get_s(item, "route")?.to_owned(),
        ab_arm: optional("variant"),
        audit_ref: optional("audit_ref"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> FeedbackItem {
        FeedbackItem {
            feedback_id: "01F".into(),
            prediction_id: "01P".into(),
            username: "alice".into(),
            submitted_by: "alice".into(),
            created_at: "2026-11-24T10:00:00.000000Z".into(),
            correct: false,
            true_label: Some(3),
            comment: Some("looks like a 3".into()),
            predicted: 8,
            model_version: "v2.0".into(),
            line: "v2".into(),
            route: "ab".into(),
            ab_arm: Some("v2".into()),
            audit_ref: Some("01CHAIN#4".into()),
        }
    }

    #[test]
    fn items_round_trip_with_their_day() {
        let f = item();
        let stored = to_item(&f);
        assert_eq!(stored["day"].as_s().unwrap(), "2026-11-24");
        assert_eq!(from_item(&stored).unwrap(), f);
        let mut bare = f.clone();
        bare.true_label = None;
        bare.comment = None;
        bare.ab_arm = None;
        assert_eq!(from_item(&to_item(&bare)).unwrap(), bare);
    }

    #[test]
    fn the_known_label_and_sameness() {
        let new = NewFeedback {
            feedback_id: "x".into(),
            prediction_id: "01P".into(),
            submitted_by: "alice".into(),
            created_at: "t".into(),
            correct: false,
            true_label: Some(3),
            comment: Some("looks like a 3".into()),
        };
        assert_eq!(new.known_label(8), Some(3));
        assert!(new.same_content(&item()));
        let correct = NewFeedback {
            correct: true,
            true_label: None,
            ..new.clone()
        };
        assert_eq!(correct.known_label(8), Some(8));
        assert!(!correct.same_content(&item()));
    }

    #[test]
    fn cursors_resume_inside_their_range_and_days_step_back() {
        let at = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let range =
            crate::time::TimeRange::new(at("2026-11-20T00:00:00Z"), at("2026-11-24T23:00:00Z"))
                .unwrap();
        let p = Position {
            day: Some("2026-11-24".into()),
            after: Some(FeedbackKey {
                prediction_id: "01P".into(),
                created_at: "2026-11-24T10:00:00.000000Z".into(),
            }),
        };
        let text = serde_json::to_string(&FeedbackCursor::new("q", &range, p.clone())).unwrap();
        let (resumed_range, resumed) = FeedbackCursor::resume(&text, "q", true).unwrap();
        assert_eq!((resumed_range, resumed), (range.clone(), p.clone()));
        // A forged day far outside the range (one Query per day on the way) is refused.
        let forged = Position {
            day: Some("2020-01-01".into()),
            after: None,
        };
        let text = serde_json::to_string(&FeedbackCursor::new("q", &range, forged)).unwrap();
        assert!(matches!(
            FeedbackCursor::resume(&text, "q", true),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            FeedbackCursor::resume("2026-11-24|01P|x", "q", true),
            Err(StoreError::InvalidCursor)
        ));
        assert_eq!(previous_day("2026-03-01").as_deref(), Some("2026-02-28"));
        assert_eq!(previous_day("bad"), None);
    }
}
