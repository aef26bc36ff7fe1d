//! Settings, read from the environment once at cold start.
//!
//! A function that lacks a setting refuses to start and names the variable: a Lambda
//! that fails at init is visible at deploy time, one that fails per request is not.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("the secret named by {name} could not be read: {reason}")]
    Secret { name: &'static str, reason: String },
}

/// Reads variables through a lookup function so tests need not touch the process env.
pub struct Env<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

/// The process environment.
pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env::new(|name| std::env::var(name).ok())
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match (self.lookup)(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(ConfigError::Missing(name)),
        }
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A number with a default, refusing values outside `range`.
    pub fn number_or(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        let value: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("{raw:?} is not a whole number"),
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("{value} is outside {}..={}", range.start(), range.end()),
            });
        }
        Ok(value)
    }

    /// A secret key given as a value: at least 32 bytes, never defaulted. (Functions
    /// read theirs from Secrets Manager, [`Env::secret_from_manager`]; this is for tools
    /// and tests that are handed one.)
    pub fn secret(&self, name: &'static str) -> Result<Vec<u8>, ConfigError> {
        checked_secret(name, self.required(name)?)
    }

    /// The secret whose Secrets Manager id (name or ARN) is in `name`, read now; at least
    /// 32 bytes. The function's configuration holds only the id: reading the value
    /// needs `secretsmanager:GetSecretValue` on that secret, which IAM grants per function.
    pub async fn secret_from_manager(
        &self,
        name: &'static str,
        sdk: &crate::aws::SdkConfig,
    ) -> Result<Vec<u8>, ConfigError> {
        let id = self.required(name)?;
        let value = crate::aws::secret_string(sdk, &id)
            .await
            .map_err(|reason| ConfigError::Secret { name, reason })?;
        checked_secret(name, value)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The string in the Secrets Manager secret whose id is in `name` (a URL, say),
    /// read now, with no length rule.
    pub async fn secret_string_from_manager(
        &self,
        name: &'static str,
        sdk: &crate::aws::SdkConfig,
    ) -> Result<String, ConfigError> {
        let id = self.required(name)?;
        crate::aws::secret_string(sdk, &id)
            .await
            .map_err(|reason| ConfigError::Secret { name, reason })
    }
}

fn checked_secret(name: &'static str, value: String) -> Result<Vec<u8>, ConfigError> {
    if value.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
        });
    }
    Ok(value.into_bytes())
}

pub const MIN_SECRET_BYTES: usize = 32;

/// Token checking (DESIGN.md §4): tokens are EdDSA (Ed25519); every function verifies
/// them with the public key, and only login, which signs them, reads the private key
/// ([`TokenKeys::with_signing_key`](crate::auth::TokenKeys::with_signing_key)).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The Ed25519 public key, 32 bytes (`JWT_PUBLIC_KEY`: base64url, unpadded).
    pub public_key: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub token_ttl: Duration,
}

impl AuthSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        use base64::Engine;
        let raw = env.required("JWT_PUBLIC_KEY")?;
        let public_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim())
            .ok()
            .filter(|key| key.len() == 32)
            .ok_or(ConfigError::Invalid {
                name: "JWT_PUBLIC_KEY",
                reason: "must be an Ed25519 public key: 32 bytes, base64url without padding".into(),
            })?;
        Ok(Self {
            public_key,
            issuer: env.required("JWT_ISSUER")?,
            audience: env.required("JWT_AUDIENCE")?,
            token_ttl: Duration::from_secs(env.number_or("JWT_TTL_SECONDS", 3600, 60..=86_400)?),
        })
    }
}

/// Where and how audit entries are written.
#[derive(Clone)]
pub struct AuditSettings {
    pub table: String,
    pub hmac_key: Vec<u8>,
    pub retention: Duration,
}

impl std::fmt::Debug for AuditSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSettings")
            .field("table", &self.table)
            .field("hmac_key", &"<redacted>")
            .field("retention", &self.retention)
            .finish()
    }
}

impl AuditSettings {
    /// With the key given as a value (`AUDIT_HMAC_KEY`): for tools and tests.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Self::with_key(env, env.secret("AUDIT_HMAC_KEY")?)
    }

    /// With the key read from the Secrets Manager secret `AUDIT_KEY_SECRET` names: how
    /// a function gets it.
    pub async fn from_manager<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        sdk: &crate::aws::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let key = env.secret_from_manager("AUDIT_KEY_SECRET", sdk).await?;
        Self::with_key(env, key)
    }

    fn with_key<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hmac_key: Vec<u8>,
    ) -> Result<Self, ConfigError> {
        let days = env.number_or("AUDIT_RETENTION_DAYS", 400, 1..=3650)?;
        Ok(Self {
            table: env.required("AUDIT_TABLE")?,
            hmac_key,
            retention: Duration::from_secs(days * 86_400),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(move |name| map.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    /// 32 bytes, base64url.
    const PUBLIC_KEY: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn a_missing_variable_is_named() {
        let e = env(&[("JWT_ISSUER", "i"), ("JWT_AUDIENCE", "a")]);
        assert_eq!(
            AuthSettings::from_env(&e).unwrap_err(),
            ConfigError::Missing("JWT_PUBLIC_KEY")
        );
        assert!(
            ConfigError::Missing("JWT_PUBLIC_KEY")
                .to_string()
                .contains("JWT_PUBLIC_KEY")
        );
    }

    #[test]
    fn a_public_key_that_is_not_32_bytes_is_refused() {
        for bad in ["short", "!!!!", PUBLIC_KEY.get(..40).unwrap()] {
            let pairs = [
                ("JWT_PUBLIC_KEY", bad),
                ("JWT_ISSUER", "i"),
                ("JWT_AUDIENCE", "a"),
            ];
            let e = env(&pairs);
            assert!(
                matches!(
                    AuthSettings::from_env(&e),
                    Err(ConfigError::Invalid {
                        name: "JWT_PUBLIC_KEY",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_apply_and_bad_numbers_are_refused() {
        let e = env(&[
            ("JWT_PUBLIC_KEY", PUBLIC_KEY),
            ("JWT_ISSUER", "i"),
            ("JWT_AUDIENCE", "a"),
        ]);
        let auth = AuthSettings::from_env(&e).unwrap();
        assert_eq!(auth.token_ttl, Duration::from_secs(3600));
        assert_eq!(auth.public_key.len(), 32);
        let short = env(&[("AUDIT_TABLE", "t"), ("AUDIT_HMAC_KEY", "short")]);
        assert!(matches!(
            AuditSettings::from_env(&short),
            Err(ConfigError::Invalid {
                name: "AUDIT_HMAC_KEY",
                ..
            })
        ));

        let e = env(&[
            ("AUDIT_TABLE", "t"),
            ("AUDIT_HMAC_KEY", SECRET),
            ("AUDIT_RETENTION_DAYS", "forever"),
        ]);
        assert!(matches!(
            AuditSettings::from_env(&e),
            Err(ConfigError::Invalid {
                name: "AUDIT_RETENTION_DAYS",
                ..
            })
        ));
    }
}
