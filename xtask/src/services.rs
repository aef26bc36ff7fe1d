//! The local stand-ins for AWS's managed services: Redis for ElastiCache, moto's
//! server for DynamoDB, S3 and SNS.

use crate::paths;
use crate::process::{self, Background};
use crate::venv::Venv;
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const REDIS_PORT: u16 = 6379;
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Something accepts connections on 127.0.0.1:`port`.
pub fn port_in_use(port: u16) -> bool {
    TcpStream::connect_timeout(&local(port), PROBE_TIMEOUT).is_ok()
}

/// One request/response over a fresh connection, without an HTTP or Redis client.
fn exchange(port: u16, request: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&local(port), PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(request).ok()?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

pub fn redis_answers() -> bool {
    exchange(REDIS_PORT, b"PING\r\n").is_some_and(|r| r.starts_with("+PONG"))
}

/// moto's dashboard answers 200; anything else on the port is not moto.
pub fn moto_answers(port: u16) -> bool {
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    exchange(port, request.as_bytes()).is_some_and(|r| r.split_whitespace().nth(1) == Some("200"))
}

pub fn moto_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Redis on 127.0.0.1:6379: the one already running, else redis-server started
/// (and installed from Debian first if there is none).
pub fn ensure_redis() -> Result<()> {
    if redis_answers() {
        println!("redis: answering on 127.0.0.1:{REDIS_PORT}");
        return Ok(());
    }
    if port_in_use(REDIS_PORT) {
        bail!("127.0.0.1:{REDIS_PORT} is taken by something that does not answer PING");
    }
    let server = match find_program("redis-server") {
        Some(path) => path,
        None => {
            println!("redis: redis-server not found; installing it from Debian");
            let status = Command::new("sh")
                .args(["-c", "apt-get update && apt-get install -y redis-server"])
                .status()
                .context("running apt-get")?;
            if !status.success() {
                bail!("apt-get install redis-server failed ({status}); install Redis and retry");
            }
            find_program("redis-server").context("redis-server still not found after install")?
        }
    };
    println!("redis: starting {}", server.display());
    let status = Command::new(&server)
        .args(["--daemonize", "yes", "--bind", "127.0.0.1"])
        .args(["--port", &REDIS_PORT.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .status()
        .context("starting redis-server")?;
    if !status.success() {
        bail!("redis-server failed to start ({status})");
    }
    wait_for("redis", Duration::from_secs(10), redis_answers, || Ok(()))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// moto's server through xtask/moto_server_serial.py (one request at a time; the
/// script says why), on 127.0.0.1:`port`: the program and its arguments.
fn moto_command(root: &Path, venv: &Venv, port: u16) -> (PathBuf, Vec<String>) {
    let script = root.join("xtask").join("moto_server_serial.py");
    (
        venv.bin("python"),
        vec![
            script.display().to_string(),
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ],
    )
}

fn moto_pid_file(root: &Path) -> PathBuf {
    paths::state_dir(root).join("moto.pid")
}

/// `dev`'s moto: reused if one answers, else started detached so it outlives
/// `cargo lambda watch` and keeps its data between dev sessions.
pub fn ensure_dev_moto(root: &Path, venv: &Venv, port: u16) -> Result<()> {
    if moto_answers(port) {
        println!("moto: reusing the server on {}", moto_url(port));
        return Ok(());
    }
    if port_in_use(port) {
        bail!("127.0.0.1:{port} is taken by something that is not moto");
    }
    let log = paths::ensure_state_dir(root)?.join("moto.log");
    let (program, args) = moto_command(root, venv, port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pid = process::spawn_detached(&program, &args, &log)?;
    std::fs::write(moto_pid_file(root), pid.to_string())?;
    println!(
        "moto: started pid {pid} on {} (log {})",
        moto_url(port),
        log.display()
    );
    wait_for(
        "moto",
        Duration::from_secs(60),
        || moto_answers(port),
        || {
            if process::alive(pid) {
                Ok(())
            } else {
                bail!("moto exited; see {}", log.display())
            }
        },
    )
}

/// A moto of `test`'s or `bench`'s own (`name` keeps their pid and log files apart):
/// always fresh, stopped when the returned guard drops.
pub fn start_own_moto(root: &Path, venv: &Venv, port: u16, name: &str) -> Result<Background> {
    let dir = paths::ensure_state_dir(root)?;
    let pid_file = dir.join(format!("{name}.pid"));
    // A previous run that was killed outright could not clean up after itself.
    if process::stop_recorded(&pid_file, "moto_server")? {
        println!("moto: stopped a test moto left behind by an earlier run");
    }
    if port_in_use(port) {
        bail!("127.0.0.1:{port} is taken; the test run needs its own moto there");
    }
    let log = dir.join(format!("{name}.log"));
    let _ = std::fs::remove_file(&log);
    let (program, args) = moto_command(root, venv, port);
    let mut moto = Background::spawn(
        "moto",
        Command::new(program).args(args),
        &log,
        Some(pid_file),
    )?;
    let started = Instant::now();
    wait_for(
        "moto",
        Duration::from_secs(60),
        || moto_answers(port),
        || match moto.exited() {
            Some(status) => bail!("moto exited ({status}); see {}", log.display()),
            None => Ok(()),
        },
    )?;
    println!(
        "moto: pid {} on {} ready in {:.1?}",
        moto.pid(),
        moto_url(port),
        started.elapsed()
    );
    Ok(moto)
}

/// Stops the moto `dev` started (its pid file), not anyone else's.
pub fn stop_dev_moto(root: &Path) -> Result<()> {
    if process::stop_recorded(&moto_pid_file(root), "moto_server")? {
        println!("moto: stopped");
    } else {
        println!("moto: no moto started by `cargo xtask dev` is running");
    }
    Ok(())
}

/// Polls `ready` until it holds, failing early if `check` reports the process died.
fn wait_for(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !ready() {
        check()?;
        if Instant::now() > deadline {
            bail!("{what} did not answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
