//! Where things live. Everything xtask makes at run time goes under `.inferloop/`,
//! which git ignores.

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    // xtask/ is a direct child of the workspace root; the path is fixed at compile time.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub fn state_dir(root: &Path) -> PathBuf {
    root.join(".inferloop")
}

pub fn template(root: &Path) -> PathBuf {
    root.join("template.yaml")
}

/// Generated secrets for NoEcho parameters; kept so tokens survive a restart.
pub fn dev_env(root: &Path) -> PathBuf {
    state_dir(root).join("dev.env")
}

/// The resolved environment every function gets, rewritten on each run.
pub fn functions_env(root: &Path) -> PathBuf {
    state_dir(root).join("functions.env")
}

pub fn ensure_state_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = state_dir(root);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
