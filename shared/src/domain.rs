//! Values parsed once at the edge into types that cannot be invalid.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// 3–64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(InvalidValue::new(
                "username",
                format!(
                    "must be {}–{} characters, got {len}",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(InvalidValue::new(
                "username",
                "may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 8–128 characters. Never printed: Debug and Display are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    /// Also bounds the Argon2 work an attacker can ask for.
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: String) -> Result<Self, InvalidValue> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(InvalidValue::new(
                "password",
                format!(
                    "must be {}–{} characters, got {len}",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err(InvalidValue::new("role", "must be \"admin\" or \"user\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Digits 0–9: the classes of every model, metric and counter.
pub const CLASSES: usize = 10;

/// A model line: the architecture a version belongs to, and a route of the API
/// (`/api/v1/predict`), an A/B arm and a trends filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Line {
    V1,
    V2,
}

impl Line {
    pub const ALL: [Self; 2] = [Self::V1, Self::V2];

    /// `field` names the parameter or field in the error.
    pub fn parse_named(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|line| line.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|l| l.as_str()).collect();
                InvalidValue::new(
                    field,
                    format!("must be one of {}, got {raw:?}", names.join(", ")),
                )
            })
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::parse_named("line", raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model version's name (`v2.0`): a letter, then letters, digits, `.`, `-` or `_`, at
/// most 64 bytes, so it is safe in an S3 key, a cache key and an aggregate key (which
/// uses `#` and `*`, neither allowed here).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct VersionName(String);

impl VersionName {
    pub const MAX_LEN: usize = 64;

    pub fn parse_named(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let valid = raw.len() <= Self::MAX_LEN
            && raw.starts_with(|c: char| c.is_ascii_alphabetic())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue::new(
                field,
                format!(
                    "must be a version name (a letter, then letters, digits, '.', '-' or '_', \
                     at most {} bytes, e.g. v2.0), got {raw:?}",
                    Self::MAX_LEN
                ),
            ))
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Self::parse_named("model_version", raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VersionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A prediction's id, as predict issues them: a ULID (26 characters of Crockford
/// base32).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PredictionId(String);

impl PredictionId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        ulid::Ulid::from_string(raw)
            .ok()
            .filter(|_| raw.len() == ulid::ULID_LEN)
            .map(|_| Self(raw.to_owned()))
            .ok_or_else(|| {
                InvalidValue::new(
                    "prediction_id",
                    "must be the 26-character id a prediction returned",
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for PredictionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        for ok in ["bob", "alice.smith", "a_b-c.9", &"x".repeat(64)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            &"x".repeat(65),
            "bob smith",
            "bob/../x",
            "émile",
            "bob\n",
            "a@b.c",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.field, "username");
        }
    }

    #[test]
    fn passwords_are_bounded_by_characters_not_bytes() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("é".repeat(128)).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn passwords_never_print() {
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn roles_parse_exactly() {
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        assert_eq!(Role::parse("user"), Ok(Role::User));
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn lines_parse_exactly_and_name_the_field() {
        assert_eq!(Line::parse("v1"), Ok(Line::V1));
        assert_eq!(Line::parse("v2").unwrap().to_string(), "v2");
        let err = Line::parse_named("variant", "v3").unwrap_err();
        assert_eq!(err.field, "variant");
        assert!(err.reason.contains("v1, v2"), "{err}");
        assert!(Line::parse("V1").is_err());
    }

    #[test]
    fn version_names_are_safe_in_keys() {
        for ok in ["v2.0", "v1", "a", "v2.0-rc_1", &"v".repeat(64)] {
            assert!(VersionName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2.0",
            "v2#x",
            "v2*",
            "v2/x",
            "v 2",
            &"v".repeat(65),
            "@production",
        ] {
            let err = VersionName::parse(bad).unwrap_err();
            assert_eq!(err.field, "model_version", "{bad}");
        }
    }

    #[test]
    fn prediction_ids_are_ulids() {
        let id = PredictionId::new();
        assert_eq!(PredictionId::parse(id.as_str()), Ok(id));
        for bad in [
            "",
            "short",
            "01KAAAAAAAAAAAAAAAAAAAAAA!",
            "01KAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(PredictionId::parse(bad).is_err(), "{bad}");
        }
        // Crockford base32 is case-insensitive, as ULIDs are.
        assert!(PredictionId::parse("01kaaaaaaaaaaaaaaaaaaaaaaa").is_ok());
    }
}
