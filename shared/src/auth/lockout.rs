//! Five failed logins within fifteen minutes lock an account for fifteen minutes.
//!
//! Pure policy over the account's recent failure times, so it is tested without a clock
//! or a table; the Users store persists its result with a conditional write.

pub const MAX_FAILURES: usize = 5;
pub const WINDOW_SECS: u64 = 15 * 60;
pub const LOCK_SECS: u64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginGuard {
    /// Unix seconds of failed attempts inside the window, oldest first.
    pub recent_failures: Vec<u64>,
    /// Unix seconds until which logins are refused.
    pub locked_until: Option<u64>,
}

impl LoginGuard {
    /// Seconds until the lock ends, if the account is locked at `now`.
    pub fn locked_for(&self, now: u64) -> Option<u64> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// The state after a failed attempt at `now`: a sliding window of failures, and a lock
    /// once the window holds `MAX_FAILURES`.
    pub fn after_failure(&self, now: u64) -> LoginGuard {
        let mut recent: Vec<u64> = self
            .recent_failures
            .iter()
            .copied()
            .filter(|t| now.saturating_sub(*t) < WINDOW_SECS)
            .collect();
        recent.push(now);
        if recent.len() >= MAX_FAILURES {
            LoginGuard {
                recent_failures: Vec::new(),
                locked_until: Some(now + LOCK_SECS),
            }
        } else {
            LoginGuard {
                recent_failures: recent,
                locked_until: None,
            }
        }
    }

    /// Whether a successful login has anything to clear.
    pub fn is_clear(&self) -> bool {
        self.recent_failures.is_empty() && self.locked_until.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_times(times: &[u64]) -> LoginGuard {
        times
            .iter()
            .fold(LoginGuard::default(), |g, t| g.after_failure(*t))
    }

    #[test]
    fn five_failures_in_the_window_lock_for_fifteen_minutes() {
        let g = fail_times(&[0, 10, 20, 30]);
        assert_eq!(g.locked_for(40), None);
        let g = g.after_failure(40);
        assert_eq!(g.locked_for(40), Some(900));
        assert_eq!(g.locked_for(939), Some(1));
        assert_eq!(g.locked_for(940), None);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        // Four at the start, one more 15 minutes later: only one is in the window.
        let g = fail_times(&[0, 1, 2, 3, 903]);
        assert_eq!(g.locked_for(903), None);
        assert_eq!(g.recent_failures, vec![903]);
    }

    #[test]
    fn the_window_slides() {
        // 0, 600, 700, 800 and 1000: the one at 0 has left the window at 1000 (> 900 s),
        // 600..1000 holds four; one more at 1100 makes five within 900 s.
        let g = fail_times(&[0, 600, 700, 800, 1000]);
        assert_eq!(g.locked_for(1000), None);
        assert_eq!(g.after_failure(1100).locked_for(1100), Some(900));
    }

    #[test]
    fn after_a_lock_the_count_starts_again() {
        let g = fail_times(&[0, 1, 2, 3, 4]);
        assert!(g.locked_until.is_some());
        let g = g.after_failure(1000);
        assert_eq!(g.locked_for(1000), None);
        assert_eq!(g.recent_failures, vec![1000]);
    }
}
