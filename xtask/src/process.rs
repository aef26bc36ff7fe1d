//! Background processes that must not outlive the task that started them (or, for
//! `dev`'s moto, must outlive it on purpose). Each runs in its own process group so
//! the whole tree can be stopped; `cargo lambda watch` starts each function with
//! `cargo run` in a process group of its own, so descendants are found through /proc
//! as well.

use anyhow::{Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const GRACE: Duration = Duration::from_secs(10);

/// A child that is stopped, with everything it started, when dropped: on success,
/// on error and on early return alike.
pub struct Background {
    name: String,
    child: Child,
    pid_file: Option<PathBuf>,
    stopped: bool,
}

impl Background {
    /// Starts `command` in a new process group, output appended to `log`. The pid
    /// goes to `pid_file` so a later run can clean up after a crashed one.
    pub fn spawn(
        name: &str,
        command: &mut Command,
        log: &Path,
        pid_file: Option<PathBuf>,
    ) -> Result<Self> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        if let Some(path) = &pid_file {
            std::fs::write(path, child.id().to_string())?;
        }
        Ok(Self {
            name: name.to_owned(),
            child,
            pid_file,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has already ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        if self.exited().is_none() {
            println!("stopping {} (pid {})", self.name, self.pid());
            terminate_tree(self.pid());
        }
        let _ = self.child.wait();
        if let Some(path) = &self.pid_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `program args…` so that it outlives this process: through a shell that
/// exits at once, so the program is re-parented to init and never left a zombie
/// of whatever this process execs into next; in its own process group, so the
/// terminal's Ctrl-C does not reach it. Returns its pid.
pub fn spawn_detached(program: &Path, args: &[&str], log: &Path) -> Result<u32> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!"#)
        .arg("sh")
        .arg(log)
        .arg(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = String::from_utf8_lossy(&output.stdout);
    pid.trim()
        .parse()
        .with_context(|| format!("starting {}: no pid ({pid:?})", program.display()))
}

/// SIGTERM to the process group and every descendant; SIGKILL to whatever is left
/// after a grace period.
pub fn terminate_tree(pid: u32) {
    let mut targets = descendants(pid);
    targets.push(pid);
    signal(&format!("-{pid}"), "TERM");
    for &p in &targets {
        signal(&p.to_string(), "TERM");
    }
    let deadline = Instant::now() + GRACE;
    while targets.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Late children (a function restarted mid-shutdown) are caught here too.
    targets.extend(descendants(pid));
    signal(&format!("-{pid}"), "KILL");
    for &p in &targets {
        if alive(p) {
            signal(&p.to_string(), "KILL");
        }
    }
}

fn signal(target: &str, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Running, not merely a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// (state, parent pid) from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

pub fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?.1)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// Stops the process recorded in `pid_file` if it is still alive and still the
/// program we started (pids are reused), then removes the file. Returns whether
/// something was stopped.
pub fn stop_recorded(pid_file: &Path, program_hint: &str) -> Result<bool> {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return Ok(false);
    };
    let stopped = match text.trim().parse::<u32>() {
        Ok(pid) if alive(pid) && cmdline(pid).is_some_and(|c| c.contains(program_hint)) => {
            terminate_tree(pid);
            true
        }
        _ => false,
    };
    std::fs::remove_file(pid_file).with_context(|| format!("removing {}", pid_file.display()))?;
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_background_process_stops_its_whole_tree() {
        let dir = std::env::temp_dir().join(format!("xtask-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("sleep.pid");
        // A child that starts a grandchild in a new session, as watch's functions do.
        let mut bg = Background::spawn(
            "sleeper",
            Command::new("sh").args(["-c", "setsid sleep 300 & sleep 300"]),
            &dir.join("sleep.log"),
            Some(pid_file.clone()),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while descendants(bg.pid()).len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let tree = descendants(bg.pid());
        assert_eq!(tree.len(), 2, "{tree:?}");
        assert!(bg.exited().is_none());
        drop(bg);
        for pid in tree {
            assert!(!alive(pid), "{pid} survived");
        }
        assert!(!pid_file.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
