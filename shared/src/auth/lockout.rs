//! Five failed logins within fifteen minutes lock an account for fifteen minutes.
//!
//! The window is five slots, each holding the time of one failure. A login attempt must
//! first *reserve* a slot — an empty one, or one whose failure has left the window — with
//! a conditional write (shared/src/store/guards.rs), and only then is its password
//! verified; a failure keeps its slot, a success clears them all. So however many
//! attempts arrive at once, at most five passwords are verified per window: the sixth
//! finds no slot and is refused before any hashing. Once five slots hold failures inside
//! the window, the account is locked for fifteen minutes and the slots are emptied.
//!
//! This module is the policy over those slots, pure, so it is tested without a clock or
//! a table. Unknown usernames have a window too (the store keys windows by the name
//! tried, whether or not an account has it), so a name's answers do not tell whether it
//! exists.

pub const MAX_FAILURES: usize = 5;
pub const WINDOW_SECS: u64 = 15 * 60;
pub const LOCK_SECS: u64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginGuard {
    /// Unix seconds of the failures (or attempts in flight) holding each slot.
    pub slots: [Option<u64>; MAX_FAILURES],
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

    fn in_window(at: u64, now: u64) -> bool {
        now.saturating_sub(at) < WINDOW_SECS
    }

    /// The slots an attempt at `now` may take: empty, or holding a failure that has left
    /// the window.
    pub fn free_slots(&self, now: u64) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_none_or(|at| !Self::in_window(at, now)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Failures inside the window at `now`.
    pub fn recent_failures(&self, now: u64) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|at| Self::in_window(**at, now))
            .count()
    }

    /// Seconds until an attempt may be made again: the lock's end, or when the oldest
    /// failure leaves the window.
    pub fn retry_after(&self, now: u64) -> u64 {
        if let Some(locked) = self.locked_for(now) {
            return locked;
        }
        self.slots
            .iter()
            .flatten()
            .filter(|at| Self::in_window(**at, now))
            .map(|at| at + WINDOW_SECS - now)
            .min()
            .unwrap_or(0)
            .max(1)
    }

    /// Whether the failure that holds a slot at `now` locks the account: the window is
    /// then full.
    pub fn locks_at(&self, now: u64) -> bool {
        self.recent_failures(now) >= MAX_FAILURES
    }

    /// The state after one failed attempt at `now`, made alone: what the reservations
    /// amount to when attempts do not overlap. `None` when the attempt would have been
    /// refused (locked, or no free slot).
    pub fn after_failure(&self, now: u64) -> Option<LoginGuard> {
        if self.locked_for(now).is_some() {
            return None;
        }
        let slot = *self.free_slots(now).first()?;
        let mut next = self.clone();
        next.slots[slot] = Some(now);
        if next.locks_at(now) {
            next = LoginGuard {
                slots: [None; MAX_FAILURES],
                locked_until: Some(now + LOCK_SECS),
            };
        }
        Some(next)
    }

    /// Whether a successful login has anything to clear.
    pub fn is_clear(&self) -> bool {
        self.slots.iter().all(Option::is_none) && self.locked_until.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_times(times: &[u64]) -> LoginGuard {
        times.iter().fold(LoginGuard::default(), |g, t| {
            g.after_failure(*t).expect("a slot was free")
        })
    }

    #[test]
    fn five_failures_in_the_window_lock_for_fifteen_minutes() {
        let g = fail_times(&[0, 10, 20, 30]);
        assert_eq!(g.locked_for(40), None);
        let g = g.after_failure(40).unwrap();
        assert_eq!(g.locked_for(40), Some(900));
        assert_eq!(g.locked_for(939), Some(1));
        assert_eq!(g.locked_for(940), None);
        assert_eq!(g.retry_after(100), 840);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        // Four at the start, one more 15 minutes later: only one is in the window.
        let g = fail_times(&[0, 1, 2, 3, 903]);
        assert_eq!(g.locked_for(903), None);
        assert_eq!(g.recent_failures(903), 1);
    }

    #[test]
    fn the_window_slides() {
        // 0, 600, 700, 800 and 1000: the one at 0 has left the window at 1000 (> 900 s),
        // 600..1000 holds four; one more at 1100 makes five within 900 s.
        let g = fail_times(&[0, 600, 700, 800, 1000]);
        assert_eq!(g.locked_for(1000), None);
        assert_eq!(g.recent_failures(1000), 4);
        assert_eq!(g.after_failure(1100).unwrap().locked_for(1100), Some(900));
    }

    #[test]
    fn after_a_lock_the_count_starts_again() {
        let g = fail_times(&[0, 1, 2, 3, 4]);
        assert!(g.locked_until.is_some());
        assert!(g.after_failure(500).is_none(), "locked: refused");
        let g = g.after_failure(1000).unwrap();
        assert_eq!(g.locked_for(1000), None);
        assert_eq!(g.recent_failures(1000), 1);
    }

    #[test]
    fn five_attempts_in_flight_leave_no_slot_for_a_sixth() {
        // Five reservations at once, none verified yet: the window is full.
        let busy = LoginGuard {
            slots: [Some(100); MAX_FAILURES],
            locked_until: None,
        };
        assert!(busy.free_slots(101).is_empty());
        assert_eq!(busy.retry_after(101), 899);
        assert_eq!(busy.free_slots(100 + WINDOW_SECS).len(), MAX_FAILURES);
    }
}
