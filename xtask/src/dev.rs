//! `cargo xtask dev`: the whole service on this machine. Safe to run again: a
//! running moto and Redis are reused, and a second API server is refused rather
//! than fought over.

use crate::function_env::{self, DEFAULT_REGION};
use crate::services::{self, REDIS_PORT};
use crate::{bootstrap, bridge, local_aws, models, paths, process, venv, watch};
use anyhow::{Context, Result, bail};
use std::path::Path;
use tokio::signal::unix::{SignalKind, signal};

pub const MOTO_PORT: u16 = 5000;

pub async fn run(root: &Path) -> Result<()> {
    // Checked before anything starts, so a refused second run changes nothing.
    ensure_api_port_free()?;
    let venv = venv::ensure(root)?;
    services::ensure_redis()?;
    services::ensure_dev_moto(root, &venv, MOTO_PORT)?;
    let endpoint = services::moto_url(MOTO_PORT);
    let webhook = bridge::webhook_url(bridge::DEV_PORT);
    let own_webhook = webhook != bridge::standin_webhook_url(bridge::DEV_PORT);
    bootstrap::run(
        root,
        &endpoint,
        DEFAULT_REGION,
        &[("SlackWebhookUrl", webhook)],
    )
    .await?;
    models::publish_shipped(root, &endpoint, DEFAULT_REGION).await?;
    let _bridge = bridge::wire(
        root,
        &endpoint,
        DEFAULT_REGION,
        bridge::DEV_PORT,
        watch::api_url(watch::DEV_PORT),
        true,
    )
    .await?;

    let mut env = function_env::local_union_env(root, DEFAULT_REGION)?;
    env.extend(local_aws::env(&endpoint));
    let env_path = paths::functions_env(root);
    let watch = watch::command(
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
    if own_webhook {
        println!("  slack   your webhook ({})", bridge::WEBHOOK_URL_VARIABLE);
    } else {
        println!(
            "  slack   {}   a stand-in webhook: each alert prints a `slack ←` line here",
            bridge::standin_webhook_url(bridge::DEV_PORT)
        );
    }
    println!("  mail    {endpoint}/moto-api/data.json   what SES received (README: Alerts)");
    println!(
        "  try     PATH=.inferloop/venv/bin:$PATH cargo lambda invoke login --data-file events/login.json"
    );
    println!();

    ensure_api_port_free()?;
    serve(watch).await
}

/// Runs watch until it stops, with the bridge serving beside it in this process. The
/// terminal's Ctrl-C reaches watch itself (one process group), whose shutdown stops the
/// functions; a SIGTERM sent to this process alone is passed on.
async fn serve(watch: std::process::Command) -> Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut child = tokio::process::Command::from(watch)
        .spawn()
        .context("starting cargo lambda watch")?;
    let mut interrupted = false;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for cargo lambda watch")?;
                if status.success() || interrupted {
                    return Ok(());
                }
                bail!("cargo lambda watch exited ({status})");
            }
            _ = interrupt.recv() => interrupted = true,
            _ = terminate.recv() => {
                interrupted = true;
                if let Some(pid) = child.id() {
                    process::terminate_tree(pid);
                }
            }
        }
    }
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
