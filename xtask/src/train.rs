//! `cargo xtask train --line v1|v2 [--seed N]`: train a line, write
//! `models/<line>/{model.onnx, manifest.json, reference.json}`.
//!
//! `cargo xtask` builds the workspace unoptimised, where the trainer is ~30×
//! slower; rather than make every debug build of the shared crate slower, this
//! task re-runs itself once with the shared crate optimised (a `--config`
//! profile override: its own artifacts in target/, nothing in Cargo.toml).

use anyhow::{Context, Result, bail};
use inferloop::domain::Line;
use inferloop::model::dataset;
use inferloop::model::train;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const OPTIMISE: [&str; 6] = [
    "--config",
    "profile.dev.package.inferloop.opt-level=3",
    "--config",
    "profile.dev.package.inferloop.debug-assertions=false",
    "--config",
    "profile.dev.package.inferloop.overflow-checks=false",
];

pub fn run(
    root: &Path,
    line: &str,
    seed: u64,
    version: Option<String>,
    out: Option<PathBuf>,
) -> Result<()> {
    let line = Line::parse(line)?;
    // Absolute before the re-run, which starts in the workspace root.
    let out = match out {
        Some(dir) if dir.is_relative() => Some(std::env::current_dir()?.join(dir)),
        other => other,
    };
    if !train::OPTIMISED {
        println!("re-running with the shared crate optimised (training is ~30× slower without)");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .arg("run")
            .arg("--quiet")
            .args(OPTIMISE)
            .args(["--package", "xtask", "--", "train", "--line", line.as_str()])
            .args(["--seed", &seed.to_string()])
            .current_dir(root);
        if let Some(v) = &version {
            command.args(["--version", v]);
        }
        if let Some(dir) = &out {
            command.arg("--out").arg(dir);
        }
        let status = command.status().context("running cargo")?;
        if !status.success() {
            bail!("optimised training run failed ({status})");
        }
        return Ok(());
    }

    let data = dataset::ensure(&dataset::default_dir(root))?;
    println!("dataset sha256 {}", data.sha256);
    let version = version.unwrap_or_else(|| format!("{}.0", line.as_str()));
    let params = line.default_params(seed);
    println!(
        "training {} {version}: {} ({params:?})",
        line.as_str(),
        line.description()
    );
    let started = Instant::now();
    let artifacts = train::build(line, &params, &version, &data, |msg| println!("  {msg}"))?;
    let elapsed = started.elapsed();
    let m = &artifacts.manifest.metrics;
    println!(
        "{} {version}: test accuracy {:.2} %, macro-F1 {:.4}, {} parameters, model.onnx {} bytes, trained in {:.1} s",
        line.as_str(),
        100.0 * m.accuracy,
        m.macro_f1,
        artifacts.manifest.parameters,
        artifacts.onnx.len(),
        elapsed.as_secs_f64()
    );
    if m.accuracy < line.target_accuracy() {
        bail!(
            "test accuracy {:.2} % is below the line's target {:.1} %: nothing written",
            100.0 * m.accuracy,
            100.0 * line.target_accuracy()
        );
    }
    let dir = out.unwrap_or_else(|| root.join("models").join(line.as_str()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("model.onnx"), &artifacts.onnx)?;
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&artifacts.manifest)? + "\n",
    )?;
    std::fs::write(
        dir.join("reference.json"),
        serde_json::to_string(&artifacts.reference)? + "\n",
    )?;
    println!("wrote {}", dir.display());
    Ok(())
}
