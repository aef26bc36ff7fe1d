//! The Predictions table (DESIGN.md §5): every answer predict gives, with the
//! preprocessed 28×28 input (784 bytes, so feedback can label it for retraining) and
//! the §6a drift features. Items expire after the retention (TTL, 90 days by default).
//! The `by_hour` index (hour bucket, time) serves the drift windows.

use super::{Item, StoreError, get_n_opt, get_s, n, s, sdk_error};
use crate::domain::CLASSES;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use inferloop_preprocess::{INPUT_LEN, InputFeatures};
use std::collections::HashMap;

pub const INPUT_BYTES: usize = INPUT_LEN;
/// The index over hour buckets: a drift window is a handful of Query calls.
pub const BY_HOUR_INDEX: &str = "by_hour";

/// The numbers DESIGN.md §6a keeps about each input and output: the input half as
/// preprocessing measured it, and the model's side of the answer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriftFeatures {
    #[serde(flatten)]
    pub input: InputFeatures,
    pub top_probability: f32,
    pub entropy: f32,
    pub predicted_digit: u8,
}

impl DriftFeatures {
    /// The names of [`DriftFeatures::numeric`], in its order.
    pub const NUMERIC_NAMES: [&'static str; 9] = [
        "raw_width",
        "raw_height",
        "mean_brightness",
        "ink_aspect_ratio",
        "ink_box_share",
        "input_mean",
        "input_ink_ratio",
        "top_probability",
        "entropy",
    ];

    /// The numeric features by name, in a fixed order (the categorical digit is apart).
    pub fn numeric(&self) -> [(&'static str, f64); 9] {
        let i = &self.input;
        let values = [
            f64::from(i.raw_width),
            f64::from(i.raw_height),
            f64::from(i.mean_brightness),
            f64::from(i.ink_aspect_ratio),
            f64::from(i.ink_box_share),
            f64::from(i.input_mean),
            f64::from(i.input_ink_ratio),
            f64::from(self.top_probability),
            f64::from(self.entropy),
        ];
        std::array::from_fn(|k| (Self::NUMERIC_NAMES[k], values[k]))
    }
}

/// One prediction of a drift window, as the `by_hour` index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRecord {
    pub prediction_id: String,
    pub created_at: String,
    pub model_version: String,
    pub line: String,
    pub features: DriftFeatures,
    /// The preprocessed input (the multivariate check's data); `None` when the item's
    /// is missing or damaged.
    pub input: Option<[u8; INPUT_BYTES]>,
}

/// One stored prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRecord {
    pub prediction_id: String,
    pub username: String,
    /// The owner's account id (`None` for predictions stored before accounts had ids):
    /// what feedback checks ownership by, so a name taken again owns none of these.
    pub user_id: Option<String>,
    /// RFC 3339, fixed width (sorts as time).
    pub created_at: String,
    pub model_name: String,
    pub model_version: String,
    /// The model line that answered (`v1`, `v2`).
    pub line: String,
    /// The route asked: `v1`, `v2`, `ab` or `production`.
    pub route: String,
    /// The A/B arm (a line) and experiment, for `/api/ab/predict` only. Stored as
    /// `variant`, the attribute the `by_hour` index projects.
    pub ab_arm: Option<String>,
    pub experiment: Option<String>,
    pub digit: u8,
    pub probability: f32,
    pub probabilities: [f32; CLASSES],
    /// sha256 (hex) of the uploaded image bytes.
    pub input_sha256: String,
    /// Time spent producing the answer (decode + preprocess + infer, or the cache lookup).
    pub latency_ms: f64,
    pub cached: bool,
    pub features: DriftFeatures,
    pub input: [u8; INPUT_BYTES],
    pub expires_at: u64,
}

impl PredictionRecord {
    /// The hour bucket of `created_at` (`2026-11-23T14`), the index's partition key.
    pub fn hour(&self) -> &str {
        hour_bucket(&self.created_at)
    }
}

/// `2026-11-23T14` from `2026-11-23T14:05:06.000000Z`.
pub fn hour_bucket(timestamp: &str) -> &str {
    timestamp.get(..13).unwrap_or(timestamp)
}

pub struct PredictionStore {
    client: Client,
    table: String,
}

impl PredictionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Stores a new prediction; its id is fresh, so an existing item is a bug (`Conflict`).
    /// With `audit`, the prediction and its audit entry are one transaction.
    pub async fn put(
        &self,
        record: &PredictionRecord,
        audit: Option<crate::audit::Pending<'_>>,
    ) -> Result<(), StoreError> {
        let Some(audit) = audit else {
            return super::put_new(&self.client, &self.table, to_item(record), "prediction_id")
                .await;
        };
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .condition_expression("attribute_not_exists(prediction_id)")
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build(),
        ];
        super::transact_audited(&self.client, items, audit)
            .await
            .map_err(|refused| match refused {
                super::Refused::Condition(0) => StoreError::Conflict,
                other => other.into_store_error(),
            })
    }

    pub async fn get(&self, prediction_id: &str) -> Result<Option<PredictionRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("prediction_id", s(prediction_id))
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(from_item).transpose()
    }

    /// The preprocessed inputs of `prediction_ids` (those that exist and read), by id.
    pub async fn inputs(
        &self,
        prediction_ids: &[String],
    ) -> Result<HashMap<String, [u8; INPUT_BYTES]>, StoreError> {
        let items = super::batch_get(
            &self.client,
            &self.table,
            "prediction_id",
            prediction_ids,
            &["prediction_id", "input"],
        )
        .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let id = get_s(item, "prediction_id").ok()?.to_owned();
                Some((id, input_of(item).ok()?))
            })
            .collect())
    }

    /// The predictions of `model_name`'s `model_version` made in the hour buckets
    /// `hours` (`2026-11-23T14`, …) between `from` and `to` (RFC 3339 keys, inclusive),
    /// oldest first, through the `by_hour` index: one paginated Query per hour. A
    /// damaged item is skipped and logged, not the whole window's failure.
    pub async fn window(
        &self,
        model_name: &str,
        model_version: &str,
        hours: &[String],
        from: &str,
        to: &str,
    ) -> Result<Vec<WindowRecord>, StoreError> {
        let mut records = Vec::new();
        for hour in hours {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_HOUR_INDEX)
                    .key_condition_expression("#h = :h AND created_at BETWEEN :from AND :to")
                    .filter_expression("model_name = :m AND model_version = :v")
                    .expression_attribute_names("#h", "hour")
                    .expression_attribute_values(":h", s(hour))
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":to", s(to))
                    .expression_attribute_values(":m", s(model_name))
                    .expression_attribute_values(":v", s(model_version))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for item in out.items() {
                    match window_record(item) {
                        Ok(record) => records.push(record),
                        Err(err) => {
                            tracing::warn!(error = %err, "a prediction the drift window cannot read")
                        }
                    }
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(records)
    }
}

fn window_record(item: &Item) -> Result<WindowRecord, StoreError> {
    Ok(WindowRecord {
        prediction_id: get_s(item, "prediction_id")?.to_owned(),
        created_at: get_s(item, "created_at")?.to_owned(),
        model_version: get_s(item, "model_version")?.to_owned(),
        line: get_s(item, "line")?.to_owned(),
        features: features_of(item)?,
        input: input_of(item).ok(),
    })
}

fn input_of(item: &Item) -> Result<[u8; INPUT_BYTES], StoreError> {
    let input = item
        .get("input")
        .and_then(|v| v.as_b().ok())
        .ok_or_else(|| StoreError::Corrupt("input missing".into()))?;
    input
        .as_ref()
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("input is {} bytes", input.as_ref().len())))
}

/// The hour buckets (`2026-11-23T14`) from `from`'s to `to`'s, oldest first; at most
/// `max` (the newest are dropped beyond it).
pub fn hours_between(
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
    max: usize,
) -> Vec<String> {
    let utc = |t: time::OffsetDateTime| t.to_offset(time::UtcOffset::UTC);
    let (from, to) = (utc(from), utc(to));
    let Ok(mut at) = from.replace_minute(0).and_then(|t| t.replace_second(0)) else {
        return Vec::new();
    };
    at = at.replace_nanosecond(0).unwrap_or(at);
    let mut hours = Vec::new();
    while at <= to && hours.len() < max {
        hours.push(hour_bucket(&crate::time::format_timestamp(at)).to_owned());
        at += time::Duration::hours(1);
    }
    hours
}

fn f(value: f32) -> AttributeValue {
    // f32 → shortest decimal that reads back as the same f32; never NaN here (the
    // softmax and the features are finite by construction, and from_item checks).
    AttributeValue::N(if value.is_finite() {
        value.to_string()
    } else {
        "0".to_owned()
    })
}

fn to_item(r: &PredictionRecord) -> Item {
    let features = &r.features;
    let mut stored: HashMap<String, AttributeValue> = features
        .numeric()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), f(value as f32)))
        .collect();
    // The sizes are whole numbers: stored as such, not as floats.
    stored.insert("raw_width".into(), n(u64::from(features.input.raw_width)));
    stored.insert("raw_height".into(), n(u64::from(features.input.raw_height)));
    stored.insert(
        "predicted_digit".into(),
        n(u64::from(features.predicted_digit)),
    );
    let features = stored;
    let mut item = Item::from([
        ("prediction_id".to_owned(), s(&r.prediction_id)),
        ("username".to_owned(), s(&r.username)),
        ("created_at".to_owned(), s(&r.created_at)),
        ("hour".to_owned(), s(r.hour())),
        ("model_name".to_owned(), s(&r.model_name)),
        ("model_version".to_owned(), s(&r.model_version)),
        ("line".to_owned(), s(&r.line)),
        ("route".to_owned(), s(&r.route)),
        ("digit".to_owned(), n(u64::from(r.digit))),
        ("probability".to_owned(), f(r.probability)),
        (
            "probabilities".to_owned(),
            AttributeValue::L(r.probabilities.iter().map(|&p| f(p)).collect()),
        ),
        ("input_sha256".to_owned(), s(&r.input_sha256)),
        (
            "latency_ms".to_owned(),
            AttributeValue::N(format!("{:.3}", r.latency_ms.max(0.0))),
        ),
        ("cached".to_owned(), AttributeValue::Bool(r.cached)),
        ("features".to_owned(), AttributeValue::M(features)),
        (
            "input".to_owned(),
            AttributeValue::B(Blob::new(r.input.to_vec())),
        ),
        ("expires_at".to_owned(), n(r.expires_at)),
    ]);
    if let Some(user_id) = &r.user_id {
        item.insert("user_id".to_owned(), s(user_id));
    }
    if let Some(arm) = &r.ab_arm {
        item.insert("variant".to_owned(), s(arm));
    }
    if let Some(experiment) = &r.experiment {
        item.insert("experiment".to_owned(), s(experiment));
    }
    item
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is missing or not a number")))
}

fn finite(item: &Item, name: &str) -> Result<f32, StoreError> {
    let value: f32 = number(item, name)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(StoreError::Corrupt(format!(
            "attribute {name} is not finite"
        )))
    }
}

fn features_of(item: &Item) -> Result<DriftFeatures, StoreError> {
    let features = item
        .get("features")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| StoreError::Corrupt("features missing".into()))?;
    Ok(DriftFeatures {
        input: InputFeatures {
            raw_width: number(features, "raw_width")?,
            raw_height: number(features, "raw_height")?,
            mean_brightness: finite(features, "mean_brightness")?,
            ink_aspect_ratio: finite(features, "ink_aspect_ratio")?,
            ink_box_share: finite(features, "ink_box_share")?,
            input_mean: finite(features, "input_mean")?,
            input_ink_ratio: finite(features, "input_ink_ratio")?,
        },
        top_probability: finite(features, "top_probability")?,
        entropy: finite(features, "entropy")?,
        predicted_digit: number(features, "predicted_digit")?,
    })
}

fn from_item(item: &Item) -> Result<PredictionRecord, StoreError> {
    let features = features_of(item)?;
    let probabilities: Vec<f32> = item
        .get("probabilities")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| StoreError::Corrupt("probabilities missing".into()))?
        .iter()
        .map(|v| v.as_n().ok().and_then(|t| t.parse::<f32>().ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| StoreError::Corrupt("a probability is not a number".into()))?;
    let optional = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Ok(PredictionRecord {
        prediction_id: get_s(item, "prediction_id")?.to_owned(),
        username: get_s(item, "username")?.to_owned(),
        user_id: optional("user_id"),
        created_at: get_s(item, "created_at")?.to_owned(),
        model_name: get_s(item, "model_name")?.to_owned(),
        model_version: get_s(item, "model_version")?.to_owned(),
        line: get_s(item, "line")?.to_owned(),
        route: get_s(item, "route")?.to_owned(),
        ab_arm: optional("variant"),
        experiment: optional("experiment"),
        digit: number(item, "digit")?,
        probability: finite(item, "probability")?,
        probabilities: probabilities
            .try_into()
            .map_err(|_| StoreError::Corrupt("probabilities is not 10 numbers".into()))?,
        input_sha256: get_s(item, "input_sha256")?.to_owned(),
        latency_ms: number(item, "latency_ms")?,
        cached: item
            .get("cached")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        features,
        input: input_of(item)?,
        expires_at: get_n_opt(item, "expires_at")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record() -> PredictionRecord {
        let mut input = [0u8; INPUT_BYTES];
        input[400] = 255;
        PredictionRecord {
            prediction_id: "01JPRED".into(),
            username: "alice".into(),
            user_id: Some("01JALICE".into()),
            created_at: "2026-11-23T14:05:06.123456Z".into(),
            model_name: "mnist".into(),
            model_version: "v2.0".into(),
            line: "v2".into(),
            route: "ab".into(),
            ab_arm: Some("v2".into()),
            experiment: Some("lines-v1-v2".into()),
            digit: 7,
            probability: 0.991,
            probabilities: [0.001, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.991, 0.008, 0.0],
            input_sha256: "ab".repeat(32),
            latency_ms: 1.234,
            cached: false,
            features: DriftFeatures {
                input: InputFeatures {
                    raw_width: 280,
                    raw_height: 280,
                    mean_brightness: 0.93,
                    ink_aspect_ratio: 0.61,
                    ink_box_share: 0.2,
                    input_mean: 0.13,
                    input_ink_ratio: 0.12,
                },
                top_probability: 0.991,
                entropy: 0.05,
                predicted_digit: 7,
            },
            input,
            expires_at: 1_790_000_000,
        }
    }

    #[test]
    fn items_round_trip_and_carry_their_hour() {
        let r = record();
        let item = to_item(&r);
        assert_eq!(item["hour"].as_s().unwrap(), "2026-11-23T14");
        assert_eq!(item["input"].as_b().unwrap().as_ref().len(), INPUT_BYTES);
        assert_eq!(from_item(&item).unwrap(), r);
        let mut direct = r.clone();
        direct.ab_arm = None;
        direct.experiment = None;
        let item = to_item(&direct);
        assert!(!item.contains_key("variant"));
        assert_eq!(from_item(&item).unwrap(), direct);
    }

    #[test]
    fn drift_features_are_one_flat_object() {
        let json = serde_json::to_value(record().features).unwrap();
        assert_eq!(json["raw_width"], 280);
        assert_eq!(json["predicted_digit"], 7);
        assert_eq!(json.as_object().unwrap().len(), 10);
        let back: DriftFeatures = serde_json::from_value(json).unwrap();
        assert_eq!(back, record().features);
    }

    #[test]
    fn hour_buckets_cover_a_window() {
        let at = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let hours = hours_between(at("2026-11-23T22:30:00Z"), at("2026-11-24T01:05:00Z"), 100);
        assert_eq!(
            hours,
            [
                "2026-11-23T22",
                "2026-11-23T23",
                "2026-11-24T00",
                "2026-11-24T01"
            ]
        );
        assert_eq!(
            hours_between(at("2026-11-23T22:30:00Z"), at("2026-11-23T22:31:00Z"), 9).len(),
            1
        );
        assert_eq!(
            hours_between(at("2026-11-23T22:30:00Z"), at("2026-11-23T21:00:00Z"), 9).len(),
            0
        );
        assert_eq!(
            hours_between(at("2026-11-01T00:00:00Z"), at("2026-11-30T00:00:00Z"), 24).len(),
            24
        );
        let item = to_item(&record());
        let window = window_record(&item).unwrap();
        assert_eq!(window.features, record().features);
    }

    #[test]
    fn a_damaged_item_is_corrupt_not_a_panic() {
        let mut item = to_item(&record());
        item.insert("input".into(), AttributeValue::B(Blob::new(vec![1, 2, 3])));
        assert!(matches!(from_item(&item), Err(StoreError::Corrupt(_))));
        let mut item = to_item(&record());
        item.insert("probabilities".into(), AttributeValue::L(vec![]));
        assert!(matches!(from_item(&item), Err(StoreError::Corrupt(_))));
    }
}
