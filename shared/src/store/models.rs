//! The model registry table (DESIGN.md §5 `Models`): one item per (model name,
//! version), and one pointer item per model name saying which version serves each
//! line and which line `/predict` serves.
//!
//! The pointer is one item on purpose: predict re-reads it (at most once a minute) with
//! a single GetItem, and a promotion changes it, the promoted version's stage, the
//! replaced version's stage and the history of changes (`models/history.rs`) in one transaction,
//! so no reader sees half a promotion and no promotion goes unrecorded.

use super::{Item, StoreError, get_s, n, s, sdk_error};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::BTreeMap;

mod history;
pub use history::{ChangeKind, PointerChange, Promotion, rollback_target};

/// The sort key of the pointer item. Version names start with a letter; `@` sorts
/// first and can never be one (see [`crate::domain::VersionName`]).
pub const POINTER_KEY: &str = "@production";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Production => "production",
            Self::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "staging" => Some(Self::Staging),
            "production" => Some(Self::Production),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// One registered model version.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    /// The model line (`v1`, `v2`) this version belongs to.
    pub line: String,
    pub stage: Stage,
    /// S3 key prefix of `model.onnx`, `model.nnef.tar`, `manifest.json` and `reference.json`.
    pub artifact_prefix: String,
    /// sha256 (hex) of `model.onnx`, the version's identity (its manifest names it).
    pub sha256: String,
    /// sha256 (hex) of `model.nnef.tar`, the form predict serves: a loader refuses a file
    /// that does not match. `None` for a version registered before predict served NNEF;
    /// publishing the same ONNX again adds it.
    pub serving_sha256: Option<String>,
    pub size_bytes: u64,
    pub preprocessing: String,
    /// Test-split accuracy and macro-F1 (what drift and promotion compare against).
    pub accuracy: f64,
    pub macro_f1: f64,
    pub parent: Option<String>,
    pub registered_at: String,
    /// The manifest as written next to the model (training parameters, full metrics).
    pub manifest_json: String,
}

/// Which version serves each line, and which line `/predict` serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductionPointer {
    pub lines: BTreeMap<String, String>,
    pub default_line: Option<String>,
    /// Bumped by every change; a change is conditional on the revision it read.
    pub revision: u64,
}

impl ProductionPointer {
    pub fn version_of(&self, line: &str) -> Option<&str> {
        self.lines.get(line).map(String::as_str)
    }
}

pub struct ModelStore {
    client: Client,
    table: String,
}

impl ModelStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn get_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<ModelVersion>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("name", s(name))
            .key("version", s(version))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(version_from_item).transpose()
    }

    /// Registers a new version; `Conflict` if that version already exists.
    pub async fn put_version(&self, version: &ModelVersion) -> Result<(), StoreError> {
        super::put_new(&self.client, &self.table, version_to_item(version), "name").await
    }

    /// Records the sha256 of a version's served form, only if the version is still the
    /// ONNX file `onnx_sha256` (`Conflict` otherwise).
    pub async fn set_serving_sha256(
        &self,
        name: &str,
        version: &str,
        onnx_sha256: &str,
        serving_sha256: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("name", s(name))
            .key("version", s(version))
            .update_expression("SET serving_sha256 = :serving")
            .condition_expression("sha256 = :onnx")
            .expression_attribute_values(":serving", s(serving_sha256))
            .expression_attribute_values(":onnx", s(onnx_sha256))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if super::is_conditional_failure(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// The production pointer of `name`, if any version was ever promoted.
    pub async fn production(&self, name: &str) -> Result<Option<ProductionPointer>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("name", s(name))
            .key("version", s(POINTER_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item().map(pointer_from_item).transpose()
    }

    /// Makes `version` (already registered) the production version of its line, and, with
    /// `make_default`, the line `/predict` serves. The pointer, the version's stage, the
    /// replaced version's stage and the change's history item are written in one
    /// transaction, conditional on the pointer's revision as read: `Conflict` if someone
    /// else changed it in between. `None` (and nothing written) when the version already
    /// serves its line.
    pub async fn promote(
        &self,
        name: &str,
        version: &ModelVersion,
        make_default: bool,
        promotion: &Promotion,
    ) -> Result<Option<(ProductionPointer, PointerChange)>, StoreError> {
        let Some(planned) = self.plan(name, version, make_default, promotion).await? else {
            return Ok(None);
        };
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(planned.items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some((planned.pointer, planned.change))),
            Err(err) if super::is_cancelled(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// [`Self::promote`] with its audit entry in the same transaction (DESIGN.md §13):
    /// what the registry routes change the pointer with.
    pub async fn promote_audited(
        &self,
        name: &str,
        version: &ModelVersion,
        make_default: bool,
        promotion: &Promotion,
        audit: crate::audit::Pending<'_>,
    ) -> Result<Option<(ProductionPointer, PointerChange)>, StoreError> {
        let Some(planned) = self.plan(name, version, make_default, promotion).await? else {
            audit.not_written();
            return Ok(None);
        };
        match super::transact_audited(&self.client, planned.items, audit).await {
            Ok(()) => Ok(Some((planned.pointer, planned.change))),
            // The pointer moved (or the version vanished) since it was read.
            Err(super::Refused::Condition(_)) => Err(StoreError::Conflict),
            Err(super::Refused::Failed(err)) => Err(err),
        }
    }

    /// The writes of a promotion against the pointer as it is now.
    async fn plan(
        &self,
        name: &str,
        version: &ModelVersion,
        make_default: bool,
        promotion: &Promotion,
    ) -> Result<Option<Planned>, StoreError> {
        let current = self.production(name).await?;
        let mut next = current.clone().unwrap_or_default();
        let replaced = next
            .lines
            .insert(version.line.clone(), version.version.clone());
        if replaced.as_deref() == Some(version.version.as_str())
            && (!make_default || next.default_line.as_deref() == Some(version.line.as_str()))
        {
            return Ok(None);
        }
        if make_default || next.default_line.is_none() {
            next.default_line = Some(version.line.clone());
        }
        next.revision = current.as_ref().map_or(0, |p| p.revision) + 1;
        let change = PointerChange {
            line: version.line.clone(),
            // The same version as `to` when only the default line changed.
            from: replaced.clone(),
            to: version.version.clone(),
            actor: promotion.actor.clone(),
            reason: promotion.reason.clone(),
            kind: promotion.kind,
            gate_report_sha256: promotion.gate_report_sha256.clone(),
            at: promotion.at.clone(),
            revision: next.revision,
        };

        let build_error =
            |e: aws_sdk_dynamodb::error::BuildError| StoreError::Dynamo(e.to_string());
        let mut pointer = Put::builder()
            .table_name(&self.table)
            .set_item(Some(pointer_to_item(name, &next, &promotion.at)));
        pointer = match &current {
            None => pointer
                .condition_expression("attribute_not_exists(#n)")
                .expression_attribute_names("#n", "name"),
            Some(p) => pointer
                .condition_expression("revision = :read")
                .expression_attribute_values(":read", n(p.revision)),
        };
        let stage = |v: &str, stage: Stage| {
            Update::builder()
                .table_name(&self.table)
                .key("name", s(name))
                .key("version", s(v))
                .update_expression("SET stage = :stage")
                .condition_expression("attribute_exists(#n)")
                .expression_attribute_names("#n", "name")
                .expression_attribute_values(":stage", s(stage.as_str()))
                .build()
                .map_err(build_error)
        };
        let history = Put::builder()
            .table_name(&self.table)
            .set_item(Some(change.to_item(name)))
            .condition_expression("attribute_not_exists(#n)")
            .expression_attribute_names("#n", "name")
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            TransactWriteItem::builder()
                .put(pointer.build().map_err(build_error)?)
                .build(),
            TransactWriteItem::builder()
                .update(stage(&version.version, Stage::Production)?)
                .build(),
            TransactWriteItem::builder().put(history).build(),
        ];
        if let Some(old) = replaced.filter(|old| old != &version.version) {
            items.push(
                TransactWriteItem::builder()
                    .update(stage(&old, Stage::Archived)?)
                    .build(),
            );
        }
        Ok(Some(Planned {
            items,
            pointer: next,
            change,
        }))
    }

    /// The versions of `name`, oldest name first (the pointer and history items, whose
    /// keys start with `@`, sort before every version name and are left out).
    pub async fn versions(&self, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        let mut versions = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#n = :n AND #v > :after")
                .expression_attribute_names("#n", "name")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":n", s(name))
                // Every key that is not a version starts with `@`.
                .expression_attribute_values(":after", s("@~"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items() {
                versions.push(version_from_item(item)?);
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        Ok(versions)
    }

    /// Every change of `name`'s pointer (of one line, or of all), newest first.
    pub async fn history(
        &self,
        name: &str,
        line: Option<&str>,
    ) -> Result<Vec<PointerChange>, StoreError> {
        let (low, high) = history::range(line);
        let mut changes =
            history::query(&self.client, &self.table, name, &low, &high, None).await?;
        // One line's range is in time order already; all lines' is by line, then time.
        changes.sort_by(|a, b| (&b.at, b.revision).cmp(&(&a.at, a.revision)));
        Ok(changes)
    }

    /// The change that made the version serving `line` at `at` (a stored timestamp) its
    /// production version; `None` before the line's first.
    pub async fn served_at(
        &self,
        name: &str,
        line: &str,
        at: &str,
    ) -> Result<Option<PointerChange>, StoreError> {
        let (low, high) = history::range_until(line, at);
        let changes = history::query(&self.client, &self.table, name, &low, &high, Some(1)).await?;
        Ok(changes.into_iter().next())
    }
}

struct Planned {
    items: Vec<TransactWriteItem>,
    pointer: ProductionPointer,
    change: PointerChange,
}

fn version_to_item(v: &ModelVersion) -> Item {
    let mut item = Item::from([
        ("name".to_owned(), s(&v.name)),
        ("version".to_owned(), s(&v.version)),
        ("line".to_owned(), s(&v.line)),
        ("stage".to_owned(), s(v.stage.as_str())),
        ("artifact_prefix".to_owned(), s(&v.artifact_prefix)),
        ("sha256".to_owned(), s(&v.sha256)),
        ("size_bytes".to_owned(), n(v.size_bytes)),
        ("preprocessing".to_owned(), s(&v.preprocessing)),
        (
            "accuracy".to_owned(),
            AttributeValue::N(v.accuracy.to_string()),
        ),
        (
            "macro_f1".to_owned(),
            AttributeValue::N(v.macro_f1.to_string()),
        ),
        ("registered_at".to_owned(), s(&v.registered_at)),
        ("manifest".to_owned(), s(&v.manifest_json)),
    ]);
    if let Some(parent) = &v.parent {
        item.insert("parent".to_owned(), s(parent));
    }
    if let Some(serving) = &v.serving_sha256 {
        item.insert("serving_sha256".to_owned(), s(serving));
    }
    item
}

fn get_f64(item: &Item, name: &str) -> Result<f64, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|x| x.is_finite())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is not a number")))
}

fn version_from_item(item: &Item) -> Result<ModelVersion, StoreError> {
    let stage = get_s(item, "stage")?;
    Ok(ModelVersion {
        name: get_s(item, "name")?.to_owned(),
        version: get_s(item, "version")?.to_owned(),
        line: get_s(item, "line")?.to_owned(),
        stage: Stage::parse(stage)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown stage {stage:?}")))?,
        artifact_prefix: get_s(item, "artifact_prefix")?.to_owned(),
        sha256: get_s(item, "sha256")?.to_owned(),
        serving_sha256: item
            .get("serving_sha256")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        size_bytes: super::get_n_opt(item, "size_bytes")?.unwrap_or(0),
        preprocessing: get_s(item, "preprocessing")?.to_owned(),
        accuracy: get_f64(item, "accuracy")?,
        macro_f1: get_f64(item, "macro_f1")?,
        parent: item.get("parent").and_then(|v| v.as_s().ok()).cloned(),
        registered_at: get_s(item, "registered_at")?.to_owned(),
        manifest_json: get_s(item, "manifest")?.to_owned(),
    })
}

fn pointer_to_item(name: &str, p: &ProductionPointer, updated_at: &str) -> Item {
    let lines = p
        .lines
        .iter()
        .map(|(line, version)| (line.clone(), s(version)))
        .collect();
    let mut item = Item::from([
        ("name".to_owned(), s(name)),
        ("version".to_owned(), s(POINTER_KEY)),
        ("lines".to_owned(), AttributeValue::M(lines)),
        ("revision".to_owned(), n(p.revision)),
        ("updated_at".to_owned(), s(updated_at)),
    ]);
    if let Some(line) = &p.default_line {
        item.insert("default_line".to_owned(), s(line));
    }
    item
}

fn pointer_from_item(item: &Item) -> Result<ProductionPointer, StoreError> {
    let lines = item
        .get("lines")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| StoreError::Corrupt("pointer without lines".into()))?
        .iter()
        .map(|(line, v)| {
            v.as_s()
                .map(|version| (line.clone(), version.clone()))
                .map_err(|_| StoreError::Corrupt(format!("pointer line {line} is not a string")))
        })
        .collect::<Result<_, _>>()?;
    Ok(ProductionPointer {
        lines,
        default_line: item
            .get("default_line")
            .and_then(|v| v.as_s().ok())
            .cloned(),
        revision: super::get_n_opt(item, "revision")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_key_is_never_a_version_name() {
        assert!(crate::domain::VersionName::parse(POINTER_KEY).is_err());
        for ok in ["v1.0", "v2.3", "v2.0-retrain-01J", "mnist_v3"] {
            assert!(crate::domain::VersionName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn items_round_trip() {
        let v = ModelVersion {
            name: "mnist".into(),
            version: "v2.0".into(),
            line: "v2".into(),
            stage: Stage::Staging,
            artifact_prefix: "models/mnist/v2.0/".into(),
            sha256: "ab".repeat(32),
            serving_sha256: Some("cd".repeat(32)),
            size_bytes: 829_715,
            preprocessing: "p".into(),
            accuracy: 0.9835,
            macro_f1: 0.98,
            parent: Some("v2.0".into()),
            registered_at: "2026-11-23T00:00:00.000000Z".into(),
            manifest_json: "{}".into(),
        };
        assert_eq!(version_from_item(&version_to_item(&v)).unwrap(), v);
        let older = ModelVersion {
            serving_sha256: None,
            ..v.clone()
        };
        assert_eq!(version_from_item(&version_to_item(&older)).unwrap(), older);
        let p = ProductionPointer {
            lines: BTreeMap::from([("v1".into(), "v1.0".into()), ("v2".into(), "v2.0".into())]),
            default_line: Some("v2".into()),
            revision: 3,
        };
        assert_eq!(
            pointer_from_item(&pointer_to_item("mnist", &p, "t")).unwrap(),
            p
        );
        assert_eq!(p.version_of("v1"), Some("v1.0"));
    }
}
