//! Repeats folded into one: the first occurrence of a key in a window goes through, the
//! rest of that window are only counted, and the next one after it goes through carrying
//! that count. Per function instance and in memory: what it saves is the cost of
//! repeats (an audit write for every refused login on a locked account, an alert for
//! every 5xx of a storm), not their record — the count says how many there were.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Distinct keys remembered; past it the memory starts over (each key's next
/// occurrence then goes through, so nothing is hidden, only folded less).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let this one through; `folded` earlier occurrences were counted but not passed.
    Pass { folded: u64 },
    /// Counted, not passed.
    Fold,
}

struct Seen {
    window_start: Instant,
    folded: u64,
}

pub struct Coalescer {
    window: Duration,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Coalescer {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// What to do with one more occurrence of `key`.
    pub fn check(&self, key: &str) -> Verdict {
        let now = Instant::now();
        // A poisoned lock only means another thread panicked mid-update of a counter;
        // the map is still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.get_mut(key) {
            if now.duration_since(entry.window_start) < self.window {
                entry.folded += 1;
                return Verdict::Fold;
            }
            let folded = entry.folded;
            *entry = Seen {
                window_start: now,
                folded: 0,
            };
            return Verdict::Pass { folded };
        }
        if seen.len() >= MAX_KEYS {
            seen.clear();
        }
        seen.insert(
            key.to_owned(),
            Seen {
                window_start: now,
                folded: 0,
            },
        );
        Verdict::Pass { folded: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn repeats_in_a_window_are_folded_into_the_next_one_after_it() {
        let c = Coalescer::new(Duration::from_secs(60));
        assert_eq!(c.check("locked:bob"), Verdict::Pass { folded: 0 });
        for _ in 0..49 {
            assert_eq!(c.check("locked:bob"), Verdict::Fold);
        }
        assert_eq!(c.check("locked:alice"), Verdict::Pass { folded: 0 });
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(c.check("locked:bob"), Verdict::Pass { folded: 49 });
        assert_eq!(c.check("locked:bob"), Verdict::Fold);
    }
}
