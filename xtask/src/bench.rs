//! `cargo xtask bench <name>`: a figure-producing program (`tests/benches/<name>.rs`,
//! release build) run against a local stack of its own (moto on :5002, stopped after).
//! Benchmarks print numbers; they never fail on one, and CI does not run them.
//!
//! `predict` also measures a Python service's predict path
//! (`../shared/bench/baseline_predict.py`): for it a venv of its own,
//! `.inferloop/bench-venv`, holds pinned numpy, Pillow and onnxruntime, and the
//! bench finds its python in `INFERLOOP_BENCH_PYTHON`.

use crate::function_env::{self, DEFAULT_REGION, Env};
use crate::process::Background;
use crate::services::{self, REDIS_PORT};
use crate::{bootstrap, bridge, local_aws, models, paths, venv, watch};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const MOTO_PORT: u16 = 5002;
/// `alerts` only: the watch and the SNS bridge of the bench's stack.
const WATCH_PORT: u16 = 9002;
const BRIDGE_PORT: u16 = 9012;

/// The Python baseline's libraries, exact versions (with what they pull in), so a
/// ratio measured today and one measured next month compare the same baseline.
/// Kept apart from the project venv: the tools there must not share numpy's fate.
pub const BENCH_PINS: &[&str] = &[
    "numpy==2.4.6",
    "pillow==13.0.0",
    "onnxruntime==1.32.0",
    "flatbuffers==25.12.19",
    "packaging==26.3",
    "protobuf==7.36.2",
];

pub async fn run(root: &Path, name: &str, sections: &[String]) -> Result<()> {
    let bench = root.join("tests/benches").join(format!("{name}.rs"));
    if !bench.exists() {
        let known: Vec<String> = std::fs::read_dir(root.join("tests/benches"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".rs")
                    .map(str::to_owned)
            })
            .collect();
        bail!(
            "no benchmark named {name:?}; there are: {}",
            known.join(", ")
        );
    }
    let venv = venv::ensure(root)?;
    // Before the stack starts: a failed install then leaves nothing running.
    let bench_python = match name {
        "predict" => Some(venv::ensure_pinned(root, "bench-venv", BENCH_PINS)?.bin("python")),
        _ => None,
    };
    // drift times ks_2samp against SciPy's, in the stats venv's pinned SciPy.
    let stats_python = match name {
        "drift" => Some(venv::ensure_pinned(root, "stats-venv", venv::STATS_PINS)?.bin("python")),
        _ => None,
    };
    services::ensure_redis()?;
    let _moto = services::start_own_moto(root, &venv, MOTO_PORT, "bench-moto")?;
    let endpoint = services::moto_url(MOTO_PORT);
    let webhook = bridge::standin_webhook_url(BRIDGE_PORT);
    bootstrap::run(
        root,
        &endpoint,
        DEFAULT_REGION,
        &[("SlackWebhookUrl", webhook)],
    )
    .await?;
    models::publish_shipped(root, &endpoint, DEFAULT_REGION).await?;

    let mut env: Env = local_aws::env(&endpoint);
    env.extend(function_env::local_union_env(root, DEFAULT_REGION)?);
    env.extend(function_env::local_tool_env(root, DEFAULT_REGION)?);
    env.insert(
        "INFERLOOP_REDIS_URL".into(),
        format!("redis://127.0.0.1:{REDIS_PORT}"),
    );
    // Benchmark numbers go to stdout; the functions' own logs would drown them.
    env.insert("RUST_LOG".into(), "warn".into());
    if let Some(python) = bench_python {
        env.insert(
            "INFERLOOP_BENCH_PYTHON".into(),
            python.to_string_lossy().into_owned(),
        );
    }
    if let Some(python) = stats_python {
        env.insert(
            "INFERLOOP_STATS_PYTHON".into(),
            python.to_string_lossy().into_owned(),
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // `alerts` also times the whole local path: SNS in moto, the bridge, slack-alert
    // under watch, the stand-in webhook. Declared here, so both stop when this returns.
    let mut _watch = None;
    let mut _bridge = None;
    if name == "alerts" {
        let mut functions_env = local_aws::env(&endpoint);
        functions_env.extend(function_env::local_union_env(root, DEFAULT_REGION)?);
        let api = watch::api_url(WATCH_PORT);
        let log = paths::state_dir(root).join("bench-watch.log");
        let _ = std::fs::remove_file(&log);
        let server = _watch.insert(Background::spawn(
            "cargo lambda watch",
            &mut watch::command(
                root,
                &venv,
                (watch::TEST_ADDRESS, WATCH_PORT),
                &functions_env,
                &paths::state_dir(root).join("bench-functions.env"),
            )?,
            &log,
            Some(paths::state_dir(root).join("bench-watch.pid")),
        )?);
        watch::wait_until_serving(&api, Duration::from_secs(300), || match server.exited() {
            Some(status) => bail!(
                "cargo lambda watch exited ({status}); see {}",
                log.display()
            ),
            None => Ok(()),
        })
        .await?;
        _bridge =
            Some(bridge::wire(root, &endpoint, DEFAULT_REGION, BRIDGE_PORT, api, false).await?);
        env.extend(bridge::env(BRIDGE_PORT));
    }
    // `alerts` waits on moto (Python) in every step it times, so optimising our code
    // moves none of its figures; the dev profile spares it the release build of the
    // whole tree (fat LTO: a quarter of an hour here). docs/benchmarks.md says so.
    // `gate` counts decisions, it times nothing.
    // drift and loop measure our own code (statistics, preprocessing, the trainer), so
    // they are optimised, but in the `measure` profile: release without fat LTO
    // (Cargo.toml says why); loop builds the retrain binary it runs in it too.
    let profile: &[&str] = match name {
        "alerts" | "gate" => &["--profile", "dev"],
        "drift" | "loop" => &["--profile", "measure"],
        _ => &[],
    };
    let status = Command::new(cargo)
        .args(["bench", "-p", "integration-tests", "--bench", name])
        .args(profile)
        .arg("--")
        .args(sections)
        .current_dir(root)
        .envs(&env)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("the {name} benchmark exited with {status}");
    }
    Ok(())
}
