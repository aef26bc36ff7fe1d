//! `cargo xtask bench <name>`: a figure-producing program (`tests/benches/<name>.rs`,
//! release build) run against a local stack of its own (moto on :5002, stopped after).
//! Benchmarks print numbers; they never fail on one, and CI does not run them.
//!
//! `predict` also measures a Python service's predict path
//! (`../shared/bench/baseline_predict.py`): for it a venv of its own,
//! `.inferloop/bench-venv`, holds pinned numpy, Pillow and onnxruntime, and the
//! bench finds its python in `INFERLOOP_BENCH_PYTHON`.

use crate::function_env::{self, DEFAULT_REGION, Env};
use crate::services::{self, REDIS_PORT};
use crate::{bootstrap, local_aws, models, venv};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MOTO_PORT: u16 = 5002;

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

pub async fn run(root: &Path, name: &str) -> Result<()> {
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
        "predict" => Some(ensure_bench_venv(root)?),
        _ => None,
    };
    services::ensure_redis()?;
    let _moto = services::start_own_moto(root, &venv, MOTO_PORT, "bench-moto")?;
    let endpoint = services::moto_url(MOTO_PORT);
    bootstrap::run(root, &endpoint, DEFAULT_REGION).await?;
    models::publish_shipped(root, &endpoint, DEFAULT_REGION).await?;

    let mut env: Env = local_aws::env(&endpoint);
    env.extend(function_env::local_union_env(root, DEFAULT_REGION)?);
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["bench", "-p", "integration-tests", "--bench", name])
        .current_dir(root)
        .envs(&env)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("the {name} benchmark exited with {status}");
    }
    Ok(())
}

/// `.inferloop/bench-venv` with [`BENCH_PINS`], made once and re-installed only when
/// the pins change (the same stamp scheme as the project venv); returns its python.
fn ensure_bench_venv(root: &Path) -> Result<PathBuf> {
    let dir = crate::paths::ensure_state_dir(root)?.join("bench-venv");
    let python = dir.join("bin").join("python");
    let stamp = dir.join("inferloop-pins.txt");
    let wanted = BENCH_PINS.join("\n");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    if !python.exists() {
        println!("bench venv: creating {}", dir.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .context("running python3 -m venv (is python3 installed?)")?;
        if !status.success() {
            bail!("python3 -m venv failed ({status}); on Debian install python3-venv, then retry");
        }
    }
    println!("bench venv: installing {}", BENCH_PINS.join(" "));
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(BENCH_PINS)
        .status()
        .context("running pip in the bench venv")?;
    if !status.success() {
        bail!("pip install in {} failed ({status})", dir.display());
    }
    // Written last: an interrupted install is retried on the next run.
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}
