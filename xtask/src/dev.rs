//! `cargo xtask dev`: the whole service on this machine. Safe to run again: a
//! running moto and Redis are reused, and a second API server is refused rather
//! than fought over.

use crate::function_env::{self, DEFAULT_REGION};
use crate::services::{self, REDIS_PORT};
use crate::{bootstrap, local_aws, models, paths, venv, watch};
use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::Path;

pub const MOTO_PORT: u16 = 5000;

pub async fn run(root: &Path) -> Result<()> {
    // Checked before anything starts, so a refused second run changes nothing.
    ensure_api_port_free()?;
    let venv = venv::ensure(root)?;
    services::ensure_redis()?;
    services::ensure_dev_moto(root, &venv, MOTO_PORT)?;
    let endpoint = services::moto_url(MOTO_PORT);
    bootstrap::run(root, &endpoint, DEFAULT_REGION).await?;
    models::publish_shipped(root, &endpoint, DEFAULT_REGION).await?;

    let mut env = function_env::local_union_env(root, DEFAULT_REGION)?;
    env.extend(local_aws::env(&endpoint));
    let env_path = paths::functions_env(root);
    let mut watch = watch::command(
        root,
        &venv,
        (watch::DEV_ADDRESS, watch::DEV_PORT),
        &env,
        &env_path,
    )?;

    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    println!();
    println!("inferloop dev stack");
    println!("  moto    {endpoint}   stays up after Ctrl-C; `cargo xtask stop` stops it");
    println!("  redis   redis://127.0.0.1:{REDIS_PORT}");
    println!(
        "  api     {}   cargo lambda watch; Ctrl-C stops it",
        watch::api_url(watch::DEV_PORT)
    );
    println!(
        "  secrets {}   generated once, reused",
        rel(&paths::dev_env(root))
    );
    println!(
        "  env     {}   every function's environment (`set -a; . {0}` to use it in a shell)",
        rel(&env_path)
    );
    println!(
        "  try     PATH=.inferloop/venv/bin:$PATH cargo lambda invoke login --data-file events/login.json"
    );
    println!();

    ensure_api_port_free()?;
    // exec, so Ctrl-C reaches watch directly and its shutdown stops the functions.
    let error = watch.exec();
    Err(error).context("starting cargo lambda watch")
}

fn ensure_api_port_free() -> Result<()> {
    if services::port_in_use(watch::DEV_PORT) {
        bail!(
            "127.0.0.1:{} is already in use (another `cargo xtask dev`?); leaving it alone",
            watch::DEV_PORT
        );
    }
    Ok(())
}
