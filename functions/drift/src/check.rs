//! The production check of one line (the schedule's, and `POST /drift/production-data`):
//! the version's window through the `by_hour` index, its production reference (captured
//! from its first predictions when it has none yet), the data verdict with the
//! multivariate check on the inputs, model drift from feedback labels, and the label-free
//! accuracy estimate.

use crate::App;
use crate::estimate;
use inferloop::ApiError;
use inferloop::drift::columns::{self, Column, UPLOAD_LEVEL};
use inferloop::drift::data::{self, DataDrift};
use inferloop::drift::model::{self as model_drift, ModelDrift};
use inferloop::drift::multivariate::{self, Multivariate};
use inferloop::drift::reference::{
    ProductionReference, ReferenceSummary, Source, TestSplitReference,
};
use inferloop::drift::{DriftSettings, sample_indices, seed_of};
use inferloop::store::models::ModelVersion;
use inferloop::store::predictions::{INPUT_BYTES, WindowRecord, hour_bucket, hours_between};
use inferloop::time::{TimeRange, format_timestamp, parse_timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Hour buckets one capture step scans at most: a version registered long before its
/// first traffic is caught up over a few runs, not in one.
pub const CAPTURE_HOURS_PER_RUN: usize = 168;

/// The most predictions of a window whose feedback is read for model drift.
pub const MAX_LABELLED: usize = 20_000;

/// A line's check, as stored and answered.
#[derive(Debug, Clone, Serialize)]
pub struct LineCheck {
    pub model_name: String,
    pub line: String,
    pub version: String,
    #[serde(flatten)]
    pub data: DataDrift,
    pub reference: ReferenceSummary,
    pub window: WindowSummary,
    pub model_drift: ModelDrift,
    pub label_free: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowSummary {
    pub from: String,
    pub to: String,
    pub hours: usize,
    /// Predictions of the version in the window.
    pub predictions: usize,
    /// How many of them were compared (uniformly sampled beyond `max_samples`).
    pub sampled: usize,
}

impl LineCheck {
    /// Whether the line is drifting: its data, or its accuracy from labels.
    pub fn drifting(&self) -> bool {
        self.data.drift_detected || self.model_drift.drift_detected
    }
}

/// The production version of `line`, as registered.
pub async fn serving(app: &App, line: &str) -> Result<Option<ModelVersion>, ApiError> {
    let pointer = app.models.production(&app.model_name).await?;
    let Some(version) = pointer.as_ref().and_then(|p| p.version_of(line)) else {
        return Ok(None);
    };
    Ok(app.models.get_version(&app.model_name, version).await?)
}

/// The version's predictions in `range`, oldest first.
pub async fn window(
    app: &App,
    version: &str,
    range: &TimeRange,
) -> Result<Vec<WindowRecord>, ApiError> {
    let (Some(from), Some(to)) = (
        parse_timestamp(&range.from_key()),
        parse_timestamp(&range.to_key()),
    ) else {
        return Err(ApiError::Internal("a window bound does not parse".into()));
    };
    let hours = hours_between(from, to, crate::params::MAX_HOURS as usize + 1);
    let mut records = app
        .predictions
        .window(
            &app.model_name,
            version,
            &hours,
            &range.from_key(),
            &range.to_key(),
        )
        .await?;
    // Time, then id: a total order, so pages of a window never lose or repeat a tie.
    records.sort_by(|a, b| {
        (a.created_at.as_str(), a.prediction_id.as_str())
            .cmp(&(b.created_at.as_str(), b.prediction_id.as_str()))
    });
    Ok(records)
}

/// The JSON object at `key` in the models bucket, if there is one.
async fn get_json<T: serde::de::DeserializeOwned>(
    app: &App,
    key: &str,
) -> Result<Option<T>, ApiError> {
    match app
        .s3
        .get_object()
        .bucket(&app.bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => {
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| ApiError::dependency(format!("s3 {key}: {e}")))?
                .into_bytes();
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ApiError::Internal(format!("s3 {key} is not a reference: {e}")))
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
        Err(err) => Err(ApiError::dependency(inferloop::error::error_chain(&err))),
    }
}

/// The stored production reference of a version, if it has one.
pub async fn production_reference(
    app: &App,
    version: &str,
) -> Result<Option<ProductionReference>, ApiError> {
    get_json(app, &ProductionReference::key(&app.model_name, version)).await
}

pub async fn put_production_reference(
    app: &App,
    reference: &ProductionReference,
) -> Result<(), ApiError> {
    let key = ProductionReference::key(&reference.model, &reference.version);
    let body = serde_json::to_vec(reference).map_err(|e| ApiError::Internal(e.to_string()))?;
    app.s3
        .put_object()
        .bucket(&app.bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .map_err(|e| ApiError::dependency(inferloop::error::error_chain(&e)))?;
    Ok(())
}

/// The version's test-split reference (`reference.json` beside its model).
pub async fn test_split_reference(
    app: &App,
    version: &ModelVersion,
) -> Result<Option<TestSplitReference>, ApiError> {
    let prefix = version.artifact_prefix.trim_end_matches('/');
    get_json(app, &format!("{prefix}/reference.json")).await
}

/// A reference built from predictions (the first ones of a version, or a window).
pub fn reference_of(
    app: &App,
    version: &ModelVersion,
    records: &[WindowRecord],
    source: Source,
    now: OffsetDateTime,
) -> ProductionReference {
    let features: Vec<_> = records.iter().map(|r| r.features).collect();
    let (numeric, categorical) =
        ProductionReference::split_columns(columns::from_features(&features));
    let inputs: Vec<&[u8; INPUT_BYTES]> = records.iter().filter_map(|r| r.input.as_ref()).collect();
    ProductionReference {
        model: app.model_name.clone(),
        version: version.version.clone(),
        line: version.line.clone(),
        source,
        captured_at: format_timestamp(now),
        n: records.len(),
        from: records.first().map(|r| r.created_at.clone()),
        to: records.last().map(|r| r.created_at.clone()),
        numeric,
        categorical,
        inputs: ProductionReference::encode_inputs(&inputs),
    }
}

/// How far a capture has got: the hour to scan next and what it has collected.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CaptureProgress {
    next_hour: Option<String>,
    /// Collected predictions, oldest first: (created_at, prediction_id, features).
    collected: Vec<(String, String, inferloop::store::predictions::DriftFeatures)>,
}

/// The version's production reference: the stored one, or, once the version has made
/// `reference_size` predictions, one captured from the first of them. Progress between
/// runs is kept in Config (`capture#<model>#<version>`), so sparse traffic is not
/// rescanned from the version's registration every hour.
pub async fn ensure_production_reference(
    app: &App,
    version: &ModelVersion,
    settings: &DriftSettings,
    now: OffsetDateTime,
) -> Result<Option<ProductionReference>, ApiError> {
    if let Some(reference) = production_reference(app, &version.version).await? {
        return Ok(Some(reference));
    }
    let name = format!("capture#{}#{}", app.model_name, version.version);
    let stored = app.config.get(&name).await?;
    let revision = stored.as_ref().map_or(0, |d| d.revision);
    let mut progress: CaptureProgress = stored
        .and_then(|d| serde_json::from_value(d.doc).ok())
        .unwrap_or_default();
    let start = match &progress.next_hour {
        Some(hour) => parse_timestamp(&format!("{hour}:00:00.000000Z")),
        None => parse_timestamp(&version.registered_at),
    }
    .unwrap_or(now);
    let hours = hours_between(start, now, CAPTURE_HOURS_PER_RUN);
    let current_hour = hour_bucket(&format_timestamp(now)).to_owned();
    let from = format_timestamp(start);
    let to = format_timestamp(now);
    let found = app
        .predictions
        .window(&app.model_name, &version.version, &hours, &from, &to)
        .await?;
    let known: std::collections::BTreeSet<String> =
        progress.collected.iter().map(|c| c.1.clone()).collect();
    // This scan's inputs, for a capture that completes now (progress keeps none).
    let mut inputs: std::collections::HashMap<String, [u8; INPUT_BYTES]> = found
        .iter()
        .filter_map(|r| Some((r.prediction_id.clone(), r.input?)))
        .collect();
    for record in found {
        if !known.contains(&record.prediction_id) {
            progress
                .collected
                .push((record.created_at, record.prediction_id, record.features));
        }
    }
    progress.collected.sort_by(|a, b| a.0.cmp(&b.0));
    if progress.collected.len() >= settings.reference_size {
        progress.collected.truncate(settings.reference_size);
        // Inputs of earlier runs' scans are read now, not kept with the progress: 784
        // bytes a prediction would not fit one Config item.
        let missing: Vec<String> = progress
            .collected
            .iter()
            .filter(|c| !inputs.contains_key(&c.1))
            .map(|c| c.1.clone())
            .collect();
        inputs.extend(app.predictions.inputs(&missing).await?);
        let records: Vec<WindowRecord> = progress
            .collected
            .iter()
            .map(|(created_at, id, features)| WindowRecord {
                prediction_id: id.clone(),
                created_at: created_at.clone(),
                model_version: version.version.clone(),
                line: version.line.clone(),
                features: *features,
                input: inputs.get(id).copied(),
            })
            .collect();
        let reference = reference_of(app, version, &records, Source::FirstPredictions, now);
        put_production_reference(app, &reference).await?;
        tracing::info!(version = %version.version, n = reference.n, "production reference captured");
        return Ok(Some(reference));
    }
    // The hour in progress is scanned again next time; the ones before it are done.
    progress.next_hour = match hours.last() {
        Some(last) if *last < current_hour => Some(next_hour(last)),
        Some(_) => Some(current_hour),
        None => progress.next_hour,
    };
    let doc = serde_json::to_value(&progress).map_err(|e| ApiError::Internal(e.to_string()))?;
    // A concurrent run that saved first wins; this one's scan is simply repeated later.
    if let Err(err) = app
        .config
        .put(&name, &doc, revision, &format_timestamp(now), "drift")
        .await
    {
        tracing::warn!(error = %err, "capture progress not saved");
    }
    Ok(None)
}

/// The hour bucket after `hour` (`2026-11-23T23` → `2026-11-24T00`).
fn next_hour(hour: &str) -> String {
    parse_timestamp(&format!("{hour}:00:00.000000Z"))
        .map(|t| hour_bucket(&format_timestamp(t + time::Duration::hours(1))).to_owned())
        .unwrap_or_else(|| hour.to_owned())
}

/// The multivariate check of `current_inputs` against the reference's, when both have
/// inputs (posted records have none; neither has a reference set from records).
fn multivariate_of(
    reference: &ProductionReference,
    current_inputs: &[&[u8; INPUT_BYTES]],
    n_current: usize,
    settings: &DriftSettings,
) -> Option<Multivariate> {
    if current_inputs.is_empty() {
        return None;
    }
    let reference_inputs = reference.inputs();
    if reference_inputs.is_empty() {
        return Some(Multivariate::not_comparable(
            "the reference has no inputs (it was set from records)",
            reference.n,
            n_current,
        ));
    }
    let reference_inputs: Vec<&[u8; INPUT_BYTES]> = reference_inputs.iter().collect();
    Some(multivariate::check(
        &reference_inputs,
        current_inputs,
        settings,
    ))
}

/// Compares `current` (`n_current` records, with their inputs when they have them)
/// with `version`'s production reference when it has one. Without one, with its test
/// split, judging only what the test split and production share, and the verdict stays
/// `no_reference` (§6a).
pub async fn against_stored(
    app: &App,
    version: &ModelVersion,
    reference: Option<&ProductionReference>,
    current: &[Column],
    current_inputs: &[&[u8; INPUT_BYTES]],
    n_current: usize,
    settings: &DriftSettings,
) -> Result<(DataDrift, ReferenceSummary), ApiError> {
    let mixed = |e: columns::ColumnError| ApiError::unprocessable("invalid_records", e.to_string());
    if let Some(reference) = reference {
        let reference_columns = reference.columns();
        let pairs = columns::pair(&reference_columns, current).map_err(mixed)?;
        let mut report = data::compare(&pairs, |_| Ok(()), reference.n, n_current, settings);
        if let Some(result) = multivariate_of(reference, current_inputs, n_current, settings) {
            report = data::with_multivariate(report, result);
        }
        let summary = ReferenceSummary {
            kind: "production",
            model: Some(reference.model.clone()),
            version: Some(reference.version.clone()),
            n: reference.n,
            captured_at: Some(reference.captured_at.clone()),
            source: Some(reference.source),
        };
        return Ok((report, summary));
    }
    let split = test_split_reference(app, version).await?;
    let report = match &split {
        Some(split) => {
            let reference_columns = split.columns();
            let pairs = columns::pair(&reference_columns, current).map_err(mixed)?;
            data::as_no_reference(data::compare(
                &pairs,
                |name| {
                    if UPLOAD_LEVEL.contains(&name) {
                        Err(
                            "an upload-level feature: the test split is 28×28 arrays, not photos"
                                .into(),
                        )
                    } else {
                        Ok(())
                    }
                },
                split.samples,
                n_current,
                settings,
            ))
        }
        None => data::without_reference(current, n_current, settings),
    };
    let report = DataDrift {
        multivariate: Multivariate::not_comparable(
            "the version has no production reference yet",
            0,
            n_current,
        ),
        ..report
    };
    let summary = ReferenceSummary {
        kind: "test_split",
        model: Some(app.model_name.clone()),
        version: Some(version.version.clone()),
        n: split.as_ref().map_or(0, |s| s.samples),
        captured_at: None,
        source: None,
    };
    Ok((report, summary))
}

/// Checks `version`'s predictions in `range` against its production reference.
pub async fn check_line(
    app: &App,
    version: &ModelVersion,
    range: &TimeRange,
    settings: &DriftSettings,
    seed_text: &str,
    now: OffsetDateTime,
) -> Result<LineCheck, ApiError> {
    let reference = ensure_production_reference(app, version, settings, now).await?;
    let records = window(app, &version.version, range).await?;
    let total = records.len();
    let chosen: Vec<&WindowRecord> =
        sample_indices(total, settings.max_samples, seed_of(seed_text))
            .into_iter()
            .map(|i| &records[i])
            .collect();
    let features: Vec<_> = chosen.iter().map(|r| r.features).collect();
    let inputs: Vec<&[u8; INPUT_BYTES]> = chosen.iter().filter_map(|r| r.input.as_ref()).collect();
    let current = columns::from_features(&features);
    let (data, summary) = against_stored(
        app,
        version,
        reference.as_ref(),
        &current,
        &inputs,
        chosen.len(),
        settings,
    )
    .await?;
    // Labels of the whole window, not only the sample: feedback is scarce. The newest
    // MAX_LABELLED predictions at most (200 BatchGetItem calls).
    let ids: Vec<String> = records
        .iter()
        .rev()
        .take(MAX_LABELLED)
        .map(|r| r.prediction_id.clone())
        .collect();
    let labelled = app.feedback.get_many(&ids).await?;
    let pairs: Vec<(u8, u8)> = labelled
        .iter()
        .filter_map(|f| {
            let label = if f.correct {
                Some(f.predicted)
            } else {
                f.true_label
            };
            label.map(|l| (l, f.predicted))
        })
        .collect();
    let model_drift =
        model_drift::from_labels(&pairs, version.accuracy, version.macro_f1, settings);
    let label_free = estimate::label_free(app, version, &features).await;
    Ok(LineCheck {
        model_name: app.model_name.clone(),
        line: version.line.clone(),
        version: version.version.clone(),
        data,
        reference: summary,
        window: WindowSummary {
            from: range.from_key(),
            to: range.to_key(),
            hours: hours_in(range),
            predictions: total,
            sampled: chosen.len(),
        },
        model_drift,
        label_free,
    })
}

fn hours_in(range: &TimeRange) -> usize {
    match (
        parse_timestamp(&range.from_key()),
        parse_timestamp(&range.to_key()),
    ) {
        (Some(from), Some(to)) => hours_between(from, to, usize::MAX).len(),
        _ => 0,
    }
}

/// The JSON a check answers with and stores.
pub fn to_json(check: &LineCheck) -> Value {
    serde_json::to_value(check).unwrap_or_else(|e| json!({"error": e.to_string()}))
}
