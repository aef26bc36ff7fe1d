//! Sticky A/B assignment between the v1 and v2 lines (issue 3): a user's arm is a
//! function of (experiment id, username) alone, so the same user always sees the same
//! model for the life of an experiment, with no state to store. A new experiment id
//! reshuffles everyone. (The seeds flipped a coin per request: one user saw both models
//! and nothing could be measured.)

use inferloop::domain::Line;
use sha2::{Digest, Sha256};

pub const DEFAULT_EXPERIMENT: &str = "lines-v1-v2";
pub const DEFAULT_V2_PERCENT: u64 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbSplit {
    pub experiment: String,
    /// Share of users sent to v2, in percent (0..=100).
    pub v2_percent: u64,
}

impl AbSplit {
    /// The line `username` is assigned to.
    pub fn assign(&self, username: &str) -> Line {
        if self.bucket(username) < self.v2_percent * 100 {
            Line::V2
        } else {
            Line::V1
        }
    }

    /// A uniform bucket in 0..10 000 (basis points) from sha256(experiment ‖ 0 ‖ username);
    /// the zero byte keeps ("ab", "c") and ("a", "bc") apart.
    fn bucket(&self, username: &str) -> u64 {
        let digest = Sha256::new()
            .chain_update(self.experiment.as_bytes())
            .chain_update([0u8])
            .chain_update(username.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % 10_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(v2_percent: u64) -> AbSplit {
        AbSplit {
            experiment: DEFAULT_EXPERIMENT.into(),
            v2_percent,
        }
    }

    #[test]
    fn a_user_always_gets_the_same_line() {
        let ab = split(50);
        for user in ["alice", "bob", "carol", "dave"] {
            let first = ab.assign(user);
            assert!((0..100).all(|_| ab.assign(user) == first), "{user}");
        }
    }

    #[test]
    fn the_split_is_honoured() {
        let users: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        for percent in [10, 50, 80] {
            let ab = split(percent);
            let v2 = users.iter().filter(|u| ab.assign(u) == Line::V2).count();
            let expected = percent as usize * 100;
            // 10 000 users: three standard deviations are at most 150.
            assert!(v2.abs_diff(expected) < 150, "{percent} %: {v2} of 10 000");
        }
        assert!(users.iter().all(|u| split(0).assign(u) == Line::V1));
        assert!(users.iter().all(|u| split(100).assign(u) == Line::V2));
    }

    #[test]
    fn a_new_experiment_reshuffles() {
        let a = split(50);
        let b = AbSplit {
            experiment: "next".into(),
            v2_percent: 50,
        };
        let moved = (0..1000)
            .map(|i| format!("u{i}"))
            .filter(|u| a.assign(u) != b.assign(u))
            .count();
        assert!((350..650).contains(&moved), "{moved} of 1000 moved");
    }
}
