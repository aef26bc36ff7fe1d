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

    /// A secret key: at least 32 bytes, never defaulted.
    pub fn secret(&self, name: &'static str) -> Result<Vec<u8>, ConfigError> {
        let value = self.required(name)?;
        if value.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("must be at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        Ok(value.into_bytes())
    }
}

pub const MIN_SECRET_BYTES: usize = 32;

/// Token signing and checking (DESIGN.md §4).
#[derive(Clone)]
pub struct AuthSettings {
    pub jwt_secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub token_ttl: Duration,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}

impl AuthSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            jwt_secret: env.secret("JWT_SECRET")?,
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
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let days = env.number_or("AUDIT_RETENTION_DAYS", 400, 1..=3650)?;
        Ok(Self {
            table: env.required("AUDIT_TABLE")?,
            hmac_key: env.secret("AUDIT_HMAC_KEY")?,
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

    #[test]
    fn a_missing_variable_is_named() {
        let e = env(&[("JWT_ISSUER", "i"), ("JWT_AUDIENCE", "a")]);
        assert_eq!(
            AuthSettings::from_env(&e).unwrap_err(),
            ConfigError::Missing("JWT_SECRET")
        );
        assert!(
            ConfigError::Missing("JWT_SECRET")
                .to_string()
                .contains("JWT_SECRET")
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        let e = env(&[
            ("JWT_SECRET", "short"),
            ("JWT_ISSUER", "i"),
            ("JWT_AUDIENCE", "a"),
        ]);
        assert!(matches!(
            AuthSettings::from_env(&e),
            Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                ..
            })
        ));
    }

    #[test]
    fn defaults_apply_and_bad_numbers_are_refused() {
        let e = env(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ISSUER", "i"),
            ("JWT_AUDIENCE", "a"),
        ]);
        let auth = AuthSettings::from_env(&e).unwrap();
        assert_eq!(auth.token_ttl, Duration::from_secs(3600));
        assert!(!format!("{auth:?}").contains(SECRET));

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
