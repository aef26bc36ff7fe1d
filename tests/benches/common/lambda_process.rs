//! A function as Lambda runs it: its release binary, started fresh, fed events through a
//! stand-in Runtime API. Measures cold start (process start to first answer, predict's
//! model fetch and optimisation included) and peak RSS (predict under load, a retrain).

use super::runtime_api::{Answer, RuntimeApi};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where cargo puts the binaries: `CARGO_TARGET_DIR`, or the workspace's `target/`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// What Lambda's host sets for a function, besides the function's own environment.
fn lambda_host_env(runtime_api: &str, function: &str) -> BTreeMap<String, String> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/predict"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub struct Started {
    child: std::process::Child,
    api: RuntimeApi,
    pub spawned_at: Instant,
}

impl Started {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn invoke(&self, request_id: &str, event: String) {
        self.api.invoke(request_id, event);
    }

    pub async fn answer(&mut self) -> Answer {
        self.answer_within(Duration::from_secs(60)).await
    }

    pub async fn answer_within(&mut self, limit: Duration) -> Answer {
        tokio::time::timeout(limit, self.api.answers.recv())
            .await
            .unwrap_or_else(|_| panic!("the function answers within {limit:?}"))
            .expect("the runtime API is up")
    }

    /// Peak and current resident set of the process, KiB (from /proc).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` with `env` as a Lambda host would; the clock starts just before exec.
/// Its log (stdout, as Lambda captures it) goes to `log`, or nowhere.
pub async fn start(binary: &Path, env: &BTreeMap<String, String>, log: Option<&Path>) -> Started {
    start_on(binary, env, log, None).await
}

/// [`start`], on the CPUs `cores` names (`taskset -c`; all when `None`): one core is
/// what a function gets at 1,769 MB.
pub async fn start_on(
    binary: &Path,
    env: &BTreeMap<String, String>,
    log: Option<&Path>,
    cores: Option<&str>,
) -> Started {
    let api = RuntimeApi::start().await.expect("runtime API");
    let stdout = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("the log file")),
        None => Stdio::null(),
    };
    let function = binary
        .file_name()
        .and_then(|n| n.to_str())
        .expect("the binary's name");
    // taskset execs the binary: the pid, and so /proc's figures, are the function's.
    let mut command = match cores {
        Some(cores) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cores]).arg(binary);
            taskset
        }
        None => Command::new(binary),
    };
    command
        .env_clear()
        .envs(env)
        .envs(lambda_host_env(&api.address, function))
        .stdout(stdout)
        .stderr(Stdio::inherit());
    let spawned_at = Instant::now();
    let child = command.spawn().expect("start the function's binary");
    Started {
        child,
        api,
        spawned_at,
    }
}

/// One cold start, in ms: its whole span and where it went.
pub struct ColdStart {
    pub status: u16,
    /// Process start → the answer to the first event.
    pub total: f64,
    /// Process start → the function's first `next` call (Lambda's "Init Duration").
    pub init: f64,
    /// The first `next` call → the answer (the first invocation, as Lambda bills it).
    pub first_request: f64,
    /// The `*_ms` fields of the function's "initialised", "model loaded" and "NNEF reader
    /// built" log lines.
    pub phases: BTreeMap<String, f64>,
}

/// One cold start: process start → the answer to `event`; the function's log is
/// written to `log` and read back for its phases.
pub async fn cold_start(
    binary: &Path,
    env: &BTreeMap<String, String>,
    event: String,
    log: &Path,
) -> ColdStart {
    let mut process = start(binary, env, Some(log)).await;
    process.invoke("cold-1", event);
    let answer = process.answer().await;
    assert_eq!(
        answer.request_id, "cold-1",
        "the answer is to the event sent"
    );
    let ms = |from: Instant, to: Instant| to.duration_since(from).as_secs_f64() * 1000.0;
    let ready = process
        .api
        .first_next()
        .expect("the function asked for its event before answering it");
    let spawned_at = process.spawned_at;
    // Stopped before its log is read, so the log is whole.
    drop(process);
    ColdStart {
        status: status_of(&answer),
        total: ms(spawned_at, answer.at),
        init: ms(spawned_at, ready),
        first_request: ms(ready, answer.at),
        phases: logged_phases(&std::fs::read_to_string(log).unwrap_or_default()),
    }
}

/// `<message>.<field>` → ms for every `*_ms` field of the "initialised", "model loaded"
/// and "NNEF reader built" lines of a function's JSON log.
fn logged_phases(log: &str) -> BTreeMap<String, f64> {
    let mut phases = BTreeMap::new();
    for line in log.lines() {
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(line) else {
            continue;
        };
        let Some(message) = fields.get("message").and_then(|m| m.as_str()) else {
            continue;
        };
        if !matches!(
            message,
            "initialised" | "model loaded" | "NNEF reader built"
        ) {
            continue;
        }
        for (name, value) in &fields {
            if let (Some(phase), Some(ms)) = (name.strip_suffix("_ms"), value.as_f64()) {
                phases.insert(format!("{message}.{phase}"), ms);
            }
        }
    }
    phases
}

/// The HTTP status of a function's answer (API Gateway v2 response JSON).
pub fn status_of(answer: &Answer) -> u16 {
    if !answer.ok {
        return 0;
    }
    serde_json::from_str::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .unwrap_or(0) as u16
}
