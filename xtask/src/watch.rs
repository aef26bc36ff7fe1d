//! `cargo lambda watch`: the local API Gateway + Lambda, routing the API's own
//! paths (Cargo.toml's `[workspace.metadata.lambda.watch.router]`) to functions it
//! starts with `cargo run` on their first request.
//!
//! The functions' environment goes in through `--env-file`. cargo-lambda 1.9.2 also
//! lets each function inherit watch's own environment (checked with a probe
//! binary), but watch reads RUST_LOG itself and at `info` dumps its whole
//! configuration on every shutdown; the file keeps the functions' RUST_LOG theirs.
//! Its parser splits unquoted values on commas (as RUST_LOG filters have), which
//! `env_file::write`'s quoting avoids.

use crate::env_file;
use crate::function_env::Env;
use crate::venv::Venv;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const DEV_PORT: u16 = 9000;
pub const TEST_PORT: u16 = 9001;

pub fn api_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// `--target-dir` breaks watch's `cargo run`; CARGO_TARGET_DIR shares the build
/// with every other cargo command of the workspace.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Where `cargo xtask dev` listens: every address, IPv4 and IPv6, as cargo-lambda does by
/// default, so that both `curl 127.0.0.1:9000` and a plain `cargo lambda invoke` (which
/// calls [::1]) reach it.
pub const DEV_ADDRESS: &str = "::";
/// Where `cargo xtask test` listens: loopback only.
pub const TEST_ADDRESS: &str = "127.0.0.1";

/// Writes the functions' environment to `env_path` and returns the command that
/// serves them on `address`:`port`.
pub fn command(
    root: &Path,
    venv: &Venv,
    (address, port): (&str, u16),
    env: &Env,
    env_path: &Path,
) -> Result<Command> {
    env_file::write(env_path, env)?;
    let mut cmd = Command::new(venv.bin("cargo-lambda"));
    cmd.args(["lambda", "watch", "--invoke-address", address])
        .args(["--invoke-port", &port.to_string()])
        .arg("--env-file")
        .arg(env_path)
        .current_dir(root)
        .env("PATH", venv.path_env())
        .env("CARGO_TARGET_DIR", target_dir(root));
    Ok(cmd)
}

pub fn invoke_command(root: &Path, venv: &Venv, port: u16, function: &str, data: &Path) -> Command {
    let mut cmd = Command::new(venv.bin("cargo-lambda"));
    cmd.args(["lambda", "invoke", function, "--data-file"])
        .arg(data)
        // invoke defaults to [::1]; watch listens on 127.0.0.1 only.
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .args(["--output-format", "json"])
        .current_dir(root)
        .env("PATH", venv.path_env());
    cmd
}

/// Waits until `POST {api}/login` gets any HTTP answer. The first request makes
/// watch compile and start the function, so this can take minutes; it stops early
/// if `still_running` says watch died or the user interrupted.
pub async fn wait_until_serving(
    api: &str,
    limit: Duration,
    mut still_running: impl FnMut() -> Result<()>,
) -> Result<u16> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    loop {
        still_running()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{api} gave no HTTP answer within {limit:?}");
        }
        let request = client
            .post(format!("{api}/login"))
            .header("content-type", "application/json")
            .body("{}")
            .timeout(left)
            .send();
        // Race the request against the liveness check, so a dead watch or a
        // Ctrl-C is noticed while the request hangs on a compile.
        let mut request = std::pin::pin!(request);
        loop {
            tokio::select! {
                answer = &mut request => {
                    match answer {
                        Ok(response) => return Ok(response.status().as_u16()),
                        Err(_) => break,
                    }
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => still_running()?,
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
