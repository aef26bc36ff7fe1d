//! The project's own Python venv: the local stack's tools come from PyPI (moto's
//! server, cargo-lambda, the zig it cross-compiles with, cfn-lint), pinned, so every
//! machine and CI runs the same versions and nothing is installed system-wide.

use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PINS: &[&str] = &[
    "moto[server]==5.2.5",
    "cargo-lambda==1.9.2",
    "ziglang==0.17.1",
    "cfn-lint==1.58.0",
];

/// The drift statistics' reference values (`cargo xtask stats-vectors`): exact versions,
/// so regenerated vectors change only when the definitions do.
pub const STATS_PINS: &[&str] = &["numpy==2.4.6", "scipy==1.17.1", "scikit-learn==1.9.1"];

pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// PATH with the venv first: cargo-lambda looks for `zig` on PATH, and finds
    /// the ziglang package's there.
    pub fn path_env(&self) -> OsString {
        let mut dirs = vec![self.dir.join("bin")];
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(dirs).unwrap_or_default()
    }
}

/// The venv at `.inferloop/venv`, created or re-installed only when it is missing
/// or the pins changed since the last install.
pub fn ensure(root: &Path) -> Result<Venv> {
    ensure_pinned(root, "venv", PINS)
}

/// A venv at `.inferloop/<name>` holding exactly `pins`, made once and re-installed
/// only when the pins change.
pub fn ensure_pinned(root: &Path, name: &str, pins: &[&str]) -> Result<Venv> {
    let venv = Venv {
        dir: crate::paths::ensure_state_dir(root)?.join(name),
    };
    let stamp = venv.dir.join("inferloop-pins.txt");
    let wanted = pins.join("\n");
    let python = venv.bin("python");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(venv);
    }

    if !python.exists() {
        println!("{name}: creating {}", venv.dir.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv.dir)
            .status()
            .context("running python3 -m venv (is python3 installed?)")?;
        if !status.success() {
            bail!("python3 -m venv failed ({status}); on Debian install python3-venv, then retry");
        }
    }
    println!("{name}: installing {}", pins.join(" "));
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(pins)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install in {} failed ({status})", venv.dir.display());
    }
    // Written last: an interrupted install is retried on the next run.
    std::fs::write(&stamp, wanted)?;
    Ok(venv)
}
