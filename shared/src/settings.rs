//! What every settings document (drift's, the promotion gate's) checks its values
//! with: a range per key, and an error that names the key for a 422.

/// A setting that is out of its range: the key and why, for a 422 that names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub reason: String,
}

/// `ok`, or the key with `reason`.
pub fn check(key: &'static str, ok: bool, reason: impl Into<String>) -> Result<(), InvalidSetting> {
    if ok {
        Ok(())
    } else {
        Err(InvalidSetting {
            key,
            reason: reason.into(),
        })
    }
}

/// A finite value in `(low, high]`.
pub fn within(key: &'static str, value: f64, low: f64, high: f64) -> Result<(), InvalidSetting> {
    check(
        key,
        value.is_finite() && value > low && value <= high,
        format!("must be above {low} and at most {high}, got {value}"),
    )
}

/// A count in `low..=high`.
pub fn count(
    key: &'static str,
    value: usize,
    low: usize,
    high: usize,
) -> Result<(), InvalidSetting> {
    check(
        key,
        (low..=high).contains(&value),
        format!("must be a whole number from {low} to {high}, got {value}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_open_below_and_closed_above() {
        assert!(within("x", 0.0, 0.0, 1.0).is_err());
        assert!(within("x", 1.0, 0.0, 1.0).is_ok());
        assert!(within("x", f64::NAN, 0.0, 1.0).is_err());
        assert_eq!(within("x", 2.0, 0.0, 1.0).unwrap_err().key, "x");
        assert!(count("n", 10, 10, 20).is_ok() && count("n", 21, 10, 20).is_err());
    }
}
