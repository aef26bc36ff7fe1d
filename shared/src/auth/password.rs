//! Argon2id password hashing (19 MiB, t=2, p=1: DESIGN.md §4, OWASP's minimum).
//!
//! Hashing takes tens of milliseconds of CPU, so the async helpers run it on the blocking
//! pool rather than stall the runtime's worker.

use crate::domain::Password;
use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::OsRng;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn hasher() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| ApiError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) stored for a password.
pub fn hash(password: &Password) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing a password failed: {e}")))
}

/// True when `password` matches `stored`. A stored value that is not a PHC string never
/// matches (and is logged: it means the Users table holds something it should not).
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is not a PHC string");
        return false;
    };
    match hasher() {
        Ok(h) => h.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

pub async fn hash_async(password: Password) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task failed: {e}")))?
}

pub async fn verify_async(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .map_err(|e| ApiError::Internal(format!("verifying task failed: {e}")))
}

/// A hash of a random password with the same parameters as real ones. Logging in as an
/// unknown user verifies against it, so that path costs what a wrong password costs and
/// the answer time does not tell which usernames exist.
pub fn dummy_hash() -> Result<String, ApiError> {
    let random = SaltString::generate(&mut OsRng);
    let password = Password::parse(random.as_str().to_owned())
        .map_err(|e| ApiError::Internal(format!("dummy password: {e}")))?;
    hash(&password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_designed_cost_and_verify() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        let stored = hash(&password).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterz", &stored));
        assert!(!verify("", &stored));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert_ne!(hash(&password).unwrap(), hash(&password).unwrap());
    }

    #[test]
    fn a_corrupt_stored_hash_never_matches() {
        assert!(!verify("anything", "not-a-hash"));
        assert!(!verify("anything", ""));
        assert!(!verify("anything", "$argon2id$v=19$m=19456,t=2,p=1$$"));
    }

    #[test]
    fn the_dummy_hash_has_the_real_cost() {
        let dummy = dummy_hash().unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!verify("password1", &dummy));
    }
}
