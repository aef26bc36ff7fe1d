//! The model registry as predict sees it (DESIGN.md §6): the production pointer in the
//! Models table, artifacts in S3 under `models/<name>/<version>/`. A version is its ONNX
//! file; predict serves the NNEF form [`publish`] derives from it (see
//! [`super::infer`]), checked against the sha256 it was registered with before tract
//! ever parses it.
//!
//! A container loads a version once and keeps it; the pointer is re-read at most once per
//! `pointer_ttl` (a minute in production), so a promotion reaches every running container
//! within that time, without a redeploy. Versions no line points to any more are dropped.

use super::infer::{InferError, Model};
#[cfg(feature = "train")]
use crate::domain::VersionName;
use crate::store::StoreError;
use crate::store::models::{ModelStore, ProductionPointer};
#[cfg(feature = "train")]
use crate::store::models::{ModelVersion, Stage};
#[cfg(feature = "train")]
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The model as trained and shipped (the version's identity).
pub const ONNX_FILE: &str = "model.onnx";
/// The model as predict loads it: tract's NNEF form of the ONNX file.
pub const SERVING_FILE: &str = "model.nnef.tar";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const REFERENCE_FILE: &str = "reference.json";
/// How often a container re-reads the production pointer by default.
pub const DEFAULT_POINTER_TTL: Duration = Duration::from_secs(60);
/// A model file larger than this is not one of ours (ours are < 1 MB).
const MAX_MODEL_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no production version is registered for line {line} of model {name}")]
    NoProduction { name: String, line: String },
    #[error("model {name} {version} is not in the registry")]
    UnknownVersion { name: String, version: String },
    #[error("model {name} {version}: the file's sha256 {actual} is not the registered {expected}")]
    Integrity {
        name: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error("model {version} was refused recently ({reason}); not retried before {retry_in:?}")]
    RecentlyRefused {
        version: String,
        reason: String,
        retry_in: Duration,
    },
    #[error("registry table: {0}")]
    Store(#[from] StoreError),
    #[error("s3: {0}")]
    S3(String),
    #[error(transparent)]
    Load(#[from] InferError),
    #[error("invalid artifacts: {0}")]
    InvalidArtifacts(String),
}

/// A loaded, checked model version.
#[derive(Debug)]
pub struct LoadedModel {
    pub name: String,
    pub version: String,
    pub line: String,
    pub sha256: String,
    pub model: Model,
}

struct State {
    pointer: Option<(ProductionPointer, Instant)>,
    loaded: HashMap<String, Arc<LoadedModel>>,
    /// Versions that failed to load, with when and why: not retried before the next
    /// pointer refresh, so a bad artifact costs one download a minute, not one per request.
    refused: HashMap<String, (Instant, String)>,
}

pub struct Registry {
    store: ModelStore,
    s3: aws_sdk_s3::Client,
    bucket: String,
    name: String,
    pointer_ttl: Duration,
    state: Mutex<State>,
}

impl Registry {
    pub fn new(
        store: ModelStore,
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        name: impl Into<String>,
        pointer_ttl: Duration,
    ) -> Self {
        Self {
            store,
            s3,
            bucket: bucket.into(),
            name: name.into(),
            pointer_ttl,
            state: Mutex::new(State {
                pointer: None,
                loaded: HashMap::new(),
                refused: HashMap::new(),
            }),
        }
    }

    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The production pointer, re-read when older than the TTL. A failed re-read keeps
    /// serving the pointer already known (logged); with none known it is an error.
    pub async fn pointer(&self) -> Result<ProductionPointer, RegistryError> {
        let mut state = self.state.lock().await;
        self.pointer_locked(&mut state).await
    }

    async fn pointer_locked(&self, state: &mut State) -> Result<ProductionPointer, RegistryError> {
        if let Some((pointer, read_at)) = &state.pointer
            && read_at.elapsed() < self.pointer_ttl
        {
            return Ok(pointer.clone());
        }
        match self.store.production(&self.name).await {
            Ok(Some(pointer)) => {
                let live: Vec<&String> = pointer.lines.values().collect();
                state.loaded.retain(|version, _| live.contains(&version));
                state.refused.clear();
                state.pointer = Some((pointer.clone(), Instant::now()));
                Ok(pointer)
            }
            Ok(None) => Err(RegistryError::NoProduction {
                name: self.name.clone(),
                line: "any".into(),
            }),
            Err(err) => match &state.pointer {
                Some((pointer, _)) => {
                    tracing::warn!(error = %err, "registry pointer re-read failed; serving the last one read");
                    Ok(pointer.clone())
                }
                None => Err(err.into()),
            },
        }
    }

    /// Reads the pointer from the table now, bypassing the TTL: `/health`'s database check.
    pub async fn read_pointer_now(&self) -> Result<Option<ProductionPointer>, RegistryError> {
        Ok(self.store.production(&self.name).await?)
    }

    /// The line `/predict` serves.
    pub async fn default_line(&self) -> Result<String, RegistryError> {
        self.pointer()
            .await?
            .default_line
            .ok_or_else(|| RegistryError::NoProduction {
                name: self.name.clone(),
                line: "default".into(),
            })
    }

    /// The production model of `line`, loading (and checking) it on first use.
    pub async fn model_for_line(&self, line: &str) -> Result<Arc<LoadedModel>, RegistryError> {
        // One lock for pointer and load: concurrent first requests wait for one download.
        let mut state = self.state.lock().await;
        let pointer = self.pointer_locked(&mut state).await?;
        let version = pointer
            .version_of(line)
            .ok_or_else(|| RegistryError::NoProduction {
                name: self.name.clone(),
                line: line.to_owned(),
            })?
            .to_owned();
        if let Some(model) = state.loaded.get(&version) {
            return Ok(model.clone());
        }
        if let Some((at, reason)) = state.refused.get(&version)
            && at.elapsed() < self.pointer_ttl
        {
            return Err(RegistryError::RecentlyRefused {
                version,
                reason: reason.clone(),
                retry_in: self.pointer_ttl.saturating_sub(at.elapsed()),
            });
        }
        match self.load(&version).await {
            Ok(model) => {
                let model = Arc::new(model);
                state.loaded.insert(version, model.clone());
                Ok(model)
            }
            Err(err) => {
                state
                    .refused
                    .insert(version, (Instant::now(), err.to_string()));
                Err(err)
            }
        }
    }

    /// Loads the default line's model (what `/predict` serves) before the first request,
    /// so a cold start pays for one model, not for every line; other lines load on their
    /// first request. Failures are logged; requests retry them.
    ///
    /// tract's NNEF reader is built on a blocking thread meanwhile, while the pointer and
    /// the model are fetched (it is CPU work of several milliseconds, the fetches are
    /// waiting on the network).
    pub async fn preload(&self) {
        let reader = tokio::task::spawn_blocking(super::infer::prepare_reader);
        match self.default_line().await {
            Ok(line) => {
                if let Err(err) = self.model_for_line(&line).await {
                    tracing::error!(line, error = %err, "model not loaded at start");
                }
            }
            Err(err) => tracing::warn!(error = %err, "no production pointer at start"),
        }
        if let Ok(took) = reader.await {
            tracing::info!(
                reader_ms = crate::telemetry::millis(took),
                "NNEF reader built"
            );
        }
    }

    async fn load(&self, version: &str) -> Result<LoadedModel, RegistryError> {
        let started = Instant::now();
        // The registry item and the served file are fetched together: the file is where
        // publishing puts every version's, and the item says so (if it ever names
        // another prefix, that file is fetched after). Its sha256 is checked either way.
        let usual_key = format!("{}{SERVING_FILE}", artifact_prefix(&self.name, version));
        let (entry, fetched) = tokio::join!(
            async {
                let entry = self.store.get_version(&self.name, version).await;
                (entry, started.elapsed())
            },
            async {
                let bytes = get_object(&self.s3, &self.bucket, &usual_key).await;
                (bytes, started.elapsed())
            },
        );
        let (entry, looked_up) = entry;
        let entry = entry?.ok_or_else(|| RegistryError::UnknownVersion {
            name: self.name.clone(),
            version: version.to_owned(),
        })?;
        let expected = entry.serving_sha256.clone().ok_or_else(|| {
            RegistryError::InvalidArtifacts(format!(
                "model {} {version} was registered without its {SERVING_FILE}; publish it again",
                self.name
            ))
        })?;
        let key = format!("{}{SERVING_FILE}", entry.artifact_prefix);
        let (bytes, downloaded) = match fetched {
            (fetched, at) if key == usual_key => (fetched?, at),
            _ => (
                get_object(&self.s3, &self.bucket, &key).await?,
                started.elapsed(),
            ),
        };
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(&expected) {
            // Someone changed the artifact after registration, or the upload broke: never
            // serve it. This is an alert, not a routine failure.
            tracing::error!(
                alert = "model_integrity",
                model = self.name,
                version,
                expected,
                actual,
                "model artifact does not match its registered sha256; refusing to serve it"
            );
            crate::telemetry::emit_metric("inferloop", "ModelIntegrityFailure", 1.0, "Count");
            return Err(RegistryError::Integrity {
                name: self.name.clone(),
                version: version.to_owned(),
                expected,
                actual,
            });
        }
        // Optimising is CPU work of a few milliseconds; keep it off the async workers.
        let bytes_len = bytes.len();
        let model = tokio::task::spawn_blocking(move || Model::load(&bytes))
            .await
            .map_err(|e| InferError::Load(e.to_string()))??;
        // The phases of a load, in ms: what a cold start spends on the model (the
        // cold-start benchmark reads them from this line).
        let timings = model.load_timings();
        tracing::info!(
            model = self.name,
            version,
            line = entry.line,
            bytes = bytes_len,
            total_ms = crate::telemetry::millis(started.elapsed()),
            // Both from the start of the load: they run side by side.
            lookup_ms = crate::telemetry::millis(looked_up),
            download_ms = crate::telemetry::millis(downloaded),
            read_ms = crate::telemetry::millis(timings.read),
            optimise_ms = crate::telemetry::millis(timings.optimise),
            "model loaded"
        );
        Ok(LoadedModel {
            name: entry.name,
            version: entry.version,
            line: entry.line,
            sha256: expected,
            model,
        })
    }

    /// What is loaded now, by line (for `/health`), without touching the network.
    pub async fn loaded_versions(&self) -> Vec<(String, String)> {
        let state = self.state.lock().await;
        let mut out: Vec<(String, String)> = state
            .loaded
            .values()
            .map(|m| (m.line.clone(), m.version.clone()))
            .collect();
        out.sort();
        out
    }
}

/// The hex sha256 of a file: a version's identity.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where publishing puts a version's files in the models bucket (DESIGN.md §6).
pub fn artifact_prefix(name: &str, version: &str) -> String {
    format!("models/{name}/{version}/")
}

async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, RegistryError> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| RegistryError::S3(crate::error::error_chain(&e)))?;
    if out
        .content_length()
        .is_some_and(|len| len < 0 || len as usize > MAX_MODEL_BYTES)
    {
        return Err(RegistryError::S3(format!(
            "{key} is too large to be a model"
        )));
    }
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| RegistryError::S3(format!("reading {key}: {e}")))?;
    Ok(bytes.into_bytes().to_vec())
}

/// A model version's three files, as `cargo xtask train` writes them.
#[cfg(feature = "train")]
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub onnx: Vec<u8>,
    pub manifest: Vec<u8>,
    pub reference: Vec<u8>,
}

#[cfg(feature = "train")]
impl Artifacts {
    /// Reads `model.onnx`, `manifest.json` and `reference.json` from `dir`.
    pub fn read_dir(dir: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self {
            onnx: std::fs::read(dir.join(ONNX_FILE))?,
            manifest: std::fs::read(dir.join(MANIFEST_FILE))?,
            reference: std::fs::read(dir.join(REFERENCE_FILE))?,
        })
    }
}

/// What [`publish`] did.
#[cfg(feature = "train")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    Registered,
    /// The same version with the same ONNX file and served form was already there:
    /// nothing changed.
    AlreadyRegistered,
    /// The same ONNX file was registered, but its served form was missing or made by
    /// another tract: the new form was uploaded and recorded.
    ServingUpdated,
}

/// Uploads a version's files to `models/<name>/<version>/` (the ONNX file, its NNEF
/// form, the manifest and the drift reference) and registers it (stage staging). The
/// files go first, so the registry never names a missing artifact. The manifest's
/// sha256 must match the ONNX file, and tract must be able to convert it. Registering
/// the same ONNX file again is a no-op (or refreshes its served form); other bytes
/// under an existing version are refused (`Conflict`).
#[cfg(feature = "train")]
pub async fn publish(
    store: &ModelStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    name: &str,
    artifacts: &Artifacts,
    registered_at: &str,
) -> Result<(ModelVersion, Published), RegistryError> {
    let manifest: serde_json::Value = serde_json::from_slice(&artifacts.manifest)
        .map_err(|e| RegistryError::InvalidArtifacts(format!("manifest.json: {e}")))?;
    let text = |field: &str| {
        manifest
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::InvalidArtifacts(format!("manifest has no {field}")))
    };
    let metric = |field: &str| {
        manifest
            .pointer(&format!("/metrics/{field}"))
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| {
                RegistryError::InvalidArtifacts(format!("manifest has no metrics.{field}"))
            })
    };
    let version = VersionName::parse(&text("version")?)
        .map_err(|e| RegistryError::InvalidArtifacts(e.to_string()))?
        .as_str()
        .to_owned();
    let sha256 = sha256_hex(&artifacts.onnx);
    if text("sha256")? != sha256 {
        return Err(RegistryError::InvalidArtifacts(
            "manifest sha256 does not match model.onnx".into(),
        ));
    }
    let onnx = artifacts.onnx.clone();
    // Converted, then loaded as predict will load it: a version predict could not serve
    // (an operation its NNEF reader does not know, say) is refused before any upload.
    let nnef = tokio::task::spawn_blocking(move || {
        let nnef = super::infer::onnx_to_nnef(&onnx)?;
        Model::load(&nnef)?;
        Ok::<_, InferError>(nnef)
    })
    .await
    .map_err(|e| InferError::Load(e.to_string()))??;
    let serving_sha256 = sha256_hex(&nnef);
    let entry = ModelVersion {
        name: name.to_owned(),
        version: version.clone(),
        line: text("line")?,
        stage: Stage::Staging,
        artifact_prefix: artifact_prefix(name, &version),
        sha256,
        serving_sha256: Some(serving_sha256.clone()),
        size_bytes: artifacts.onnx.len() as u64,
        preprocessing: text("preprocessing")?,
        accuracy: metric("accuracy")?,
        macro_f1: metric("macro_f1")?,
        parent: manifest
            .get("parent")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        registered_at: registered_at.to_owned(),
        manifest_json: String::from_utf8_lossy(&artifacts.manifest).into_owned(),
    };
    let put = |file: &'static str, bytes: &Vec<u8>, content_type: &'static str| {
        s3.put_object()
            .bucket(bucket)
            .key(format!("{}{file}", entry.artifact_prefix))
            .content_type(content_type)
            .body(ByteStream::from(bytes.clone()))
            .send()
    };
    const TAR: &str = "application/x-tar";
    if let Some(existing) = store.get_version(name, &version).await? {
        if existing.sha256 != entry.sha256 {
            return Err(StoreError::Conflict.into());
        }
        if existing.serving_sha256 == entry.serving_sha256 {
            return Ok((existing, Published::AlreadyRegistered));
        }
        put(SERVING_FILE, &nnef, TAR)
            .await
            .map_err(|e| RegistryError::S3(crate::error::error_chain(&e)))?;
        store
            .set_serving_sha256(name, &version, &entry.sha256, &serving_sha256)
            .await?;
        let updated = ModelVersion {
            serving_sha256: Some(serving_sha256),
            ..existing
        };
        return Ok((updated, Published::ServingUpdated));
    }
    for (file, bytes, content_type) in [
        (ONNX_FILE, &artifacts.onnx, "application/octet-stream"),
        (SERVING_FILE, &nnef, TAR),
        (MANIFEST_FILE, &artifacts.manifest, "application/json"),
        (REFERENCE_FILE, &artifacts.reference, "application/json"),
    ] {
        put(file, bytes, content_type)
            .await
            .map_err(|e| RegistryError::S3(crate::error::error_chain(&e)))?;
    }
    store.put_version(&entry).await?;
    Ok((entry, Published::Registered))
}
