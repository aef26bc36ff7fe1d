//! KEY=VALUE files, as shells (`set -a; . file`) and dotenv readers take them.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub fn read(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), unquote(v.trim())))
        .collect())
}

/// Readable by the owner only: these files hold secrets.
pub fn write(path: &Path, values: &BTreeMap<String, String>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    for (k, v) in values {
        writeln!(file, "{k}={}", quote(v))?;
    }
    Ok(())
}

/// Single quotes unless the value is plainly safe, so a shell's `.` reads it back
/// unchanged (and dotenv parsers too, barring a quote inside the value).
fn quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.:/@+".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace(r"'\''", "'"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_source_in_a_shell() {
        let dir = std::env::temp_dir().join(format!("xtask-env-file-{}", std::process::id()));
        let path = dir.join("x.env");
        let values = BTreeMap::from([
            ("PLAIN".to_owned(), "http://127.0.0.1:5000".to_owned()),
            ("FILTER".to_owned(), "info,inferloop=debug".to_owned()),
            ("SPACED".to_owned(), "it's a b".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]);
        write(&path, &values).unwrap();
        assert_eq!(read(&path).unwrap(), values);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "set -a; . {}; printf %s \"$SPACED|$FILTER\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's a b|info,inferloop=debug"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
