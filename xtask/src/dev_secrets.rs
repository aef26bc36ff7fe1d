//! Local values for NoEcho parameters without a default, for key pairs (the token keys:
//! JwtSigningKey and JwtPublicKey, an Ed25519 pair), and for the
//! secrets the template has Secrets Manager generate (AuditKeySecret, …). In production
//! the deployer supplies the first and CloudFormation makes the second; locally we
//! generate one per checkout and keep it in `.inferloop/dev.env` (git-ignored) so
//! tokens and audit chains survive restarts.

use crate::env_file;
use anyhow::Result;
use rand_core::{OsRng, RngCore};
use std::collections::BTreeMap;
use std::path::Path;

/// 48 bytes: comfortably above the templates' 32-character minimum even before hex.
const SECRET_BYTES: usize = 48;

/// The values for `names`, generating (and persisting) those not yet in the file.
pub fn load_or_create(path: &Path, names: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut values = env_file::read(path)?;
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !values.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        for name in missing {
            values.insert(name.to_owned(), generate());
        }
        env_file::write(path, &values)?;
    }
    Ok(values
        .into_iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .collect())
}

/// The key pair stored under `private` and `public`, generated (an Ed25519 pair) and
/// persisted the first time.
pub fn load_or_create_pair(path: &Path, private: &str, public: &str) -> Result<(String, String)> {
    let mut values = env_file::read(path)?;
    if let (Some(private_key), Some(public_key)) = (values.get(private), values.get(public)) {
        return Ok((private_key.clone(), public_key.clone()));
    }
    let (private_key, public_key) =
        inferloop::auth::token::new_key_pair().map_err(|e| anyhow::anyhow!("{e}"))?;
    values.insert(private.to_owned(), private_key.clone());
    values.insert(public.to_owned(), public_key.clone());
    env_file::write(path, &values)?;
    Ok((private_key, public_key))
}

fn generate() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("xtask-dev-secrets-{}", std::process::id()));
        let path = dir.join("dev.env");
        let first = load_or_create(&path, &["JwtSecret"]).unwrap();
        assert_eq!(first["JwtSecret"].len(), SECRET_BYTES * 2);
        let second = load_or_create(&path, &["JwtSecret", "AuditKey"]).unwrap();
        assert_eq!(first["JwtSecret"], second["JwtSecret"]);
        assert_ne!(second["JwtSecret"], second["AuditKey"]);
        assert_eq!(env_file::read(&path).unwrap().len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
