//! Checks that every function binary, and xtask, resolves each external dependency with
//! the features the workspace build gives it (shared/workspace-hack/Cargo.toml says why).
//! `cargo tree` prints what cargo resolved; comparing its lines is all this does.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `name version` → features, for every external crate in the graph `args` selects.
fn resolved(cargo: &str, root: &Path, args: &[&str]) -> Result<BTreeMap<String, String>> {
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
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (package, features) = line.trim_end_matches(" (*)").split_once('|')?;
            // Workspace members (a path after the version) may differ on purpose:
            // `inferloop`'s features are what each function links.
            (!package.contains(" (/")).then(|| (package.to_owned(), features.to_owned()))
        })
        .collect())
}

/// Each package's differences from the workspace build, as lines to print.
pub fn differences(cargo: &str, root: &Path, packages: &[String]) -> Result<Vec<String>> {
    let workspace = resolved(cargo, root, &["--workspace", "-e", "normal,build,dev"])?;
    let mut lines = Vec::new();
    for package in packages {
        let own = resolved(cargo, root, &["-p", package, "-e", "normal,build"])?;
        for (crate_version, features) in own {
            match workspace.get(&crate_version) {
                Some(wanted) if *wanted == features => {}
                wanted => {
                    let wanted: BTreeSet<&str> =
                        wanted.map(|w| w.split(',').collect()).unwrap_or_default();
                    let has: BTreeSet<&str> = features.split(',').collect();
                    let missing: Vec<&str> = wanted.difference(&has).copied().collect();
                    lines.push(format!(
                        "{package}: {crate_version} lacks [{}] (the workspace build has [{}])",
                        missing.join(","),
                        wanted.iter().copied().collect::<Vec<_>>().join(",")
                    ));
                }
            }
        }
    }
    Ok(lines)
}
