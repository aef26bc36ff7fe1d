//! Checks that every function binary, and xtask, resolves each external dependency with
//! the features the workspace build gives it (shared/workspace-hack/Cargo.toml says why).
//! `cargo tree` prints what cargo resolved; comparing its lines is all this does.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `name version` → its feature sets, for every external crate in the graph `args`
/// selects. A crate can appear with two: one built for the target, one for the host
/// (a build script's or a proc macro's dependency).
fn resolved(cargo: &str, root: &Path, args: &[&str]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let output = Command::new(cargo)
        .args(["tree", "--prefix", "none", "--format", "{p}|{f}"])
        .args(args)
        .current_dir(root)
        .output()
        .context("running cargo tree")?;
    if !output.status.success() {
        bail!(
            "cargo tree {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut crates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((package, features)) = line.trim_end_matches(" (*)").split_once('|') else {
            continue;
        };
        // Workspace members (a path after the version) may differ on purpose:
        // `inferloop`'s features are what each function links.
        if !package.contains(" (/") {
            crates
                .entry(package.to_owned())
                .or_default()
                .insert(features.to_owned());
        }
    }
    Ok(crates)
}

/// Each package's differences from the workspace build, as lines to print.
pub fn differences(cargo: &str, root: &Path, packages: &[String]) -> Result<Vec<String>> {
    let workspace = resolved(cargo, root, &["--workspace", "-e", "normal,build,dev"])?;
    let mut lines = Vec::new();
    for package in packages {
        let own = resolved(cargo, root, &["-p", package, "-e", "normal,build"])?;
        for (crate_version, feature_sets) in own {
            let wanted = workspace.get(&crate_version).cloned().unwrap_or_default();
            for features in feature_sets.difference(&wanted) {
                lines.push(format!(
                    "{package}: {crate_version} with [{features}], which the workspace build \
                     never has (it has {})",
                    wanted
                        .iter()
                        .map(|w| format!("[{w}]"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
        }
    }
    Ok(lines)
}
