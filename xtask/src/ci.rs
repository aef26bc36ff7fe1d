//! `cargo xtask test`: every check and test, against a stack of its own (moto on
//! 5001, watch on 9001) so it neither needs nor disturbs a running `dev`, and
//! leaves nothing running behind it, whether it passes, fails or is interrupted.

use crate::function_env::{self, DEFAULT_REGION, Env};
use crate::process::{self, Background};
use crate::services::{self, REDIS_PORT};
use crate::venv::Venv;
use crate::{bootstrap, bridge, local_aws, models, paths, venv, watch};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const MOTO_PORT: u16 = 5001;
/// The first request compiles the function: minutes on a cold 2-core machine.
const FIRST_ANSWER_LIMIT: Duration = Duration::from_secs(300);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Ctrl-C and SIGTERM set a flag instead of killing this process, so the guards
/// still stop moto and watch. The foreground step gets the terminal's Ctrl-C
/// itself, fails, and the run ends there.
fn catch_interrupts() {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        if let Ok(mut stream) = signal(kind) {
            tokio::spawn(async move {
                stream.recv().await;
                INTERRUPTED.store(true, Ordering::SeqCst);
                eprintln!("\ninterrupted: stopping after the current step");
            });
        }
    }
}

struct Run {
    total: usize,
    done: usize,
    results: Vec<(String, bool, Duration)>,
}

impl Run {
    fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            results: Vec::new(),
        }
    }

    /// Runs one step under a numbered header and records its outcome.
    async fn step<F, Fut>(&mut self, title: &str, body: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.done += 1;
        println!("\n==> [{}/{}] {title}", self.done, self.total);
        let started = Instant::now();
        let outcome = match interrupted() {
            Ok(()) => body().await,
            Err(e) => Err(e),
        };
        let elapsed = started.elapsed();
        match &outcome {
            Ok(()) => println!("==> ok: {title} ({elapsed:.1?})"),
            Err(e) => println!("==> FAILED: {title} ({elapsed:.1?}): {e:#}"),
        }
        self.results
            .push((title.to_owned(), outcome.is_ok(), elapsed));
        outcome.is_ok()
    }

    fn finish(self) -> Result<()> {
        println!("\n==> summary");
        for (title, ok, elapsed) in &self.results {
            let mark = if *ok { "ok    " } else { "FAILED" };
            println!("  {mark} {title} ({elapsed:.1?})");
        }
        let skipped = self.total - self.results.len();
        if skipped > 0 {
            println!("  {skipped} later step(s) not run");
        }
        let failed = self.results.iter().filter(|(_, ok, _)| !ok).count();
        if failed > 0 || skipped > 0 {
            bail!("{failed} step(s) failed, {skipped} not run");
        }
        Ok(())
    }
}

pub async fn run(root: &Path, filters: &[String]) -> Result<()> {
    catch_interrupts();
    let venv = venv::ensure(root)?;
    services::ensure_redis()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let nextest = has_nextest(&cargo);
    let endpoint = services::moto_url(MOTO_PORT);
    let api = watch::api_url(watch::TEST_PORT);

    let mut env: Env = local_aws::env(&endpoint);
    env.extend(function_env::local_union_env(root, DEFAULT_REGION)?);
    // The functions under watch get their own environment only; the tests also hold
    // what tools do (a signing key, the audit key as a value).
    let mut test_env = env.clone();
    test_env.extend(function_env::local_tool_env(root, DEFAULT_REGION)?);
    test_env.insert("INFERLOOP_API_URL".into(), api.clone());
    test_env.extend(bridge::env(bridge::TEST_PORT));
    test_env.insert(
        "INFERLOOP_REDIS_URL".into(),
        format!("redis://127.0.0.1:{REDIS_PORT}"),
    );

    let focused = !filters.is_empty();
    let mut run = Run::new(if focused { 4 } else { 8 });
    if !focused {
        lint(&mut run, root, &venv, &cargo).await;
    }

    let build_title = if nextest {
        "cargo nextest run --workspace --no-run"
    } else {
        "cargo test --workspace --no-run (cargo-nextest not installed)"
    };
    let built = run
        .step(build_title, || async {
            check(test_command(&cargo, nextest, root, &test_env).arg("--no-run"))?;
            // The functions' own binaries too, each as `cargo lambda watch` builds it on
            // its first request (`cargo run --bin <name>`, which unifies features over
            // that one package, so a workspace build would not do): built there, while
            // the tests run on the same two cores, they took longer than an end-to-end
            // test waits.
            for function in function_binaries(root)? {
                check(
                    Command::new(&cargo)
                        .args(["build", "--bin", &function])
                        .current_dir(root)
                        .envs(&test_env),
                )?;
            }
            Ok(())
        })
        .await;
    if !built {
        return run.finish();
    }

    // Declared before the steps that fill them: dropped (stopped) on every way out.
    let mut moto: Option<Background> = None;
    let mut lambda: Option<Background> = None;
    let started = run
        .step(
            &format!("start moto on :{MOTO_PORT}, bootstrap, watch on :{}", watch::TEST_PORT),
            || async {
                moto = Some(services::start_own_moto(root, &venv, MOTO_PORT, "test-moto")?);
                // Alerts go to the stand-in here, whatever webhook a developer has.
                let webhook = bridge::standin_webhook_url(bridge::TEST_PORT);
                bootstrap::run(root, &endpoint, DEFAULT_REGION, &[("SlackWebhookUrl", webhook)])
                    .await?;
                models::publish_shipped(root, &endpoint, DEFAULT_REGION).await?;
                bridge::wire(root, &endpoint, DEFAULT_REGION, bridge::TEST_PORT, api.clone(), false)
                    .await?;
                let server = start_watch(root, &venv, &env)?;
                let server = lambda.insert(server);
                println!(
                    "waiting for {api}/login to answer (the first request builds and starts the function)"
                );
                let status =
                    watch::wait_until_serving(&api, FIRST_ANSWER_LIMIT, || {
                        interrupted()?;
                        match server.exited() {
                            Some(status) => bail!("cargo lambda watch exited ({status})"),
                            None => Ok(()),
                        }
                    })
                    .await;
                let status = status.inspect_err(|_| print_tail(&watch_log(root)))?;
                println!("POST {api}/login answered {status}");
                Ok(())
            },
        )
        .await;
    if !started {
        drop(lambda);
        drop(moto);
        return run.finish();
    }

    let test_title = if nextest {
        "cargo nextest run --workspace"
    } else {
        "cargo test --workspace"
    };
    run.step(test_title, || async {
        // Every failure in one run: a CI log that stops at the first hides the rest.
        check(
            test_command(&cargo, nextest, root, &test_env)
                .arg("--no-fail-fast")
                .args(filters),
        )
    })
    .await;
    run.step(
        "cargo lambda invoke login --data-file events/login.json",
        || async {
            let result = invoke_login(root, &venv);
            if result.is_err() {
                print_tail(&watch_log(root));
            }
            result
        },
    )
    .await;

    drop(lambda);
    drop(moto);
    run.finish()
}

/// cfn-lint, rustfmt, the feature-set check and clippy: what a focused run leaves out.
async fn lint(run: &mut Run, root: &Path, venv: &Venv, cargo: &str) {
    run.step("cfn-lint template.yaml", || async {
        let status = Command::new(venv.bin("cfn-lint"))
            .arg("template.yaml")
            .current_dir(root)
            .status()?;
        // cfn-lint's exit code is a bit set: 2 errors, 4 warnings, 8 informational.
        match status.code() {
            Some(code) if code & 0b11 == 0 && code < 16 => Ok(()),
            _ => bail!("cfn-lint reported errors ({status})"),
        }
    })
    .await;
    run.step("cargo fmt --all -- --check", || async {
        check(
            Command::new(cargo)
                .args(["fmt", "--all", "--", "--check"])
                .current_dir(root),
        )
    })
    .await;
    run.step(
        "one feature set per dependency (shared/workspace-hack)",
        || async {
            let mut packages = function_binaries(root)?;
            packages.push("xtask".into());
            let differences = crate::unified::differences(cargo, root, &packages)?;
            if differences.is_empty() {
                return Ok(());
            }
            for line in &differences {
                println!("  {line}");
            }
            bail!(
                "{} crate(s) would be rebuilt for a function alone: add the workspace's \
                 features to shared/workspace-hack/Cargo.toml",
                differences.len()
            )
        },
    )
    .await;
    run.step(
        "cargo clippy --workspace --all-targets -- -D warnings",
        || async {
            check(
                Command::new(cargo)
                    .args([
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ])
                    .current_dir(root),
            )
        },
    )
    .await;
}

/// The function crates (`functions/<name>`, whose binary is `<name>`).
fn function_binaries(root: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("functions"))
        .context("listing functions/")?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

fn has_nextest(cargo: &str) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn test_command(cargo: &str, nextest: bool, root: &Path, env: &Env) -> Command {
    let mut cmd = Command::new(cargo);
    if nextest {
        cmd.args(["nextest", "run", "--workspace"]);
    } else {
        cmd.args(["test", "--workspace"]);
    }
    cmd.current_dir(root).envs(env);
    cmd
}

fn check(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("exited with {status}");
    }
    Ok(())
}

fn watch_log(root: &Path) -> std::path::PathBuf {
    paths::state_dir(root).join("test-watch.log")
}

fn start_watch(root: &Path, venv: &Venv, env: &Env) -> Result<Background> {
    let pid_file = paths::state_dir(root).join("test-watch.pid");
    if process::stop_recorded(&pid_file, "cargo-lambda")? {
        println!("watch: stopped a test watch left behind by an earlier run");
    }
    if services::port_in_use(watch::TEST_PORT) {
        bail!(
            "127.0.0.1:{} is taken; the test run needs its own watch there",
            watch::TEST_PORT
        );
    }
    let log = watch_log(root);
    let _ = std::fs::remove_file(&log);
    let env_path = paths::state_dir(root).join("test-functions.env");
    let server = Background::spawn(
        "cargo lambda watch",
        &mut watch::command(
            root,
            venv,
            (watch::TEST_ADDRESS, watch::TEST_PORT),
            env,
            &env_path,
        )?,
        &log,
        Some(pid_file),
    )?;
    println!(
        "watch: pid {} on {} (log {})",
        server.pid(),
        watch::api_url(watch::TEST_PORT),
        log.display()
    );
    Ok(server)
}

/// The sample event through the real runtime path: any well-formed API Gateway
/// response will do (401 is expected: the sample user does not exist), a crash
/// or a 5xx will not.
fn invoke_login(root: &Path, venv: &Venv) -> Result<()> {
    let output = watch::invoke_command(
        root,
        venv,
        watch::TEST_PORT,
        "login",
        Path::new("events/login.json"),
    )
    .stderr(Stdio::inherit())
    .output()
    .context("running cargo lambda invoke")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{}", stdout.trim());
    if !output.status.success() {
        bail!("cargo lambda invoke exited with {}", output.status);
    }
    let response: serde_json::Value =
        serde_json::from_str(stdout.trim()).context("the response is not JSON")?;
    let status = response
        .get("statusCode")
        .and_then(serde_json::Value::as_u64)
        .context("the response has no statusCode")?;
    if status >= 500 {
        bail!("login answered {status}");
    }
    println!("login answered {status}");
    Ok(())
}

fn print_tail(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    println!("--- last lines of {} ---", log.display());
    for line in &lines[from..] {
        println!("{line}");
    }
    println!("---");
}
