//! Retries with exponential backoff, full jitter and an overall budget, honouring a
//! server's `Retry-After` (DESIGN.md §9): the one retry loop of the service.
//!
//! "Full jitter" is the AWS Architecture Blog's scheme: before attempt k+1 wait a
//! uniformly random time in `[0, min(cap, base · 2^k))`, which spreads racing clients
//! out best. A `Retry-After` is a floor: the next attempt never starts before it, and
//! when it would land beyond the budget the loop stops at once instead of waiting.
//!
//! Written here rather than taken from a crate: the well-kept ones (`backoff`,
//! `tokio-retry`) have no notion of a server-given floor inside a total budget, which is
//! what Slack's 429s and DynamoDB's conflicts both need.

use rand_core::{OsRng, RngCore};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How often and how long to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's upper bound.
    pub base: Duration,
    /// No delay's upper bound exceeds this.
    pub cap: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Time from the first attempt after which no new attempt starts.
    pub budget: Duration,
}

/// What one attempt says.
#[derive(Debug)]
pub enum Step<T, E> {
    Done(T),
    /// A transient failure: try again after the backoff.
    Retry(E),
    /// A transient failure whose server said when to come back.
    RetryAfter(E, Duration),
    /// A failure that another attempt would not mend.
    Fail(E),
}

/// Why the loop gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// The attempt said the failure is permanent.
    NotRetryable,
    /// `max_attempts` were made.
    Attempts,
    /// The next attempt would start after the budget (or before a `Retry-After`
    /// that the budget cannot wait for).
    Budget,
}

#[derive(Debug)]
pub struct Stopped<E> {
    pub error: E,
    pub reason: GaveUp,
    pub attempts: u32,
}

impl Backoff {
    /// The upper bound of the delay after the `failures`-th failure (1-based).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay after the `failures`-th failure: uniform in `[0, ceiling)` from
    /// `random`, but never less than `floor` (a `Retry-After`).
    pub fn delay(&self, failures: u32, random: u64, floor: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(failures).as_nanos().min(u128::from(u64::MAX)) as u64;
        let jitter = if ceiling == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(random % ceiling)
        };
        floor.map_or(jitter, |floor| jitter.max(floor))
    }

    /// The waits of one operation, for loops that keep state between attempts.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            policy: *self,
            started: Instant::now(),
            attempts: 1,
        }
    }

    /// Runs `attempt` (given its 1-based number) until it is done, fails for good, or
    /// the attempts or the budget run out.
    pub async fn run<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, Stopped<E>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Step<T, E>>,
    {
        let mut schedule = self.schedule();
        loop {
            let (error, floor) = match attempt(schedule.attempts).await {
                Step::Done(value) => return Ok(value),
                Step::Fail(error) => {
                    return Err(Stopped {
                        error,
                        reason: GaveUp::NotRetryable,
                        attempts: schedule.attempts,
                    });
                }
                Step::Retry(error) => (error, None),
                Step::RetryAfter(error, after) => (error, Some(after)),
            };
            if let Err(reason) = schedule.wait(floor).await {
                return Err(Stopped {
                    error,
                    reason,
                    attempts: schedule.attempts,
                });
            }
        }
    }
}

/// The attempts of one operation so far: [`Schedule::wait`] after each failure.
#[derive(Debug)]
pub struct Schedule {
    policy: Backoff,
    started: Instant,
    attempts: u32,
}

impl Schedule {
    /// Attempts made so far, the current one included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: sleeps for the backoff (at least `floor`, a
    /// `Retry-After`) and counts the next attempt, or says why there is none.
    pub async fn wait(&mut self, floor: Option<Duration>) -> Result<(), GaveUp> {
        if self.attempts >= self.policy.max_attempts {
            return Err(GaveUp::Attempts);
        }
        let delay = self.policy.delay(self.attempts, OsRng.next_u64(), floor);
        if self.started.elapsed() + delay > self.policy.budget {
            return Err(GaveUp::Budget);
        }
        tokio::time::sleep(delay).await;
        self.attempts += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const POLICY: Backoff = Backoff {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
        max_attempts: 5,
        budget: Duration::from_secs(10),
    };

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let ceilings: Vec<u64> = (1..=6)
            .map(|k| POLICY.ceiling(k).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
        assert_eq!(POLICY.ceiling(200), POLICY.cap, "no overflow");
    }

    #[test]
    fn delays_are_jittered_below_the_ceiling_and_floored_by_retry_after() {
        for random in [0, 1, 7_777_777, u64::MAX] {
            assert!(POLICY.delay(3, random, None) < POLICY.ceiling(3));
        }
        assert_eq!(POLICY.delay(1, 0, None), Duration::ZERO);
        let floor = Duration::from_secs(3);
        assert_eq!(POLICY.delay(1, u64::MAX, Some(floor)), floor);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done() {
        let calls = Cell::new(0);
        let result: Result<u32, Stopped<&str>> = POLICY
            .run(|n| {
                calls.set(n);
                async move {
                    if n < 3 {
                        Step::Retry("busy")
                    } else {
                        Step::Done(n)
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.get(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_and_exhaustion_say_why() {
        let fail = POLICY
            .run(|_| async { Step::<(), _>::Fail("bad request") })
            .await
            .unwrap_err();
        assert_eq!((fail.reason, fail.attempts), (GaveUp::NotRetryable, 1));
        let spent = POLICY
            .run(|_| async { Step::<(), _>::Retry("busy") })
            .await
            .unwrap_err();
        assert_eq!((spent.reason, spent.attempts), (GaveUp::Attempts, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for_and_never_beyond_the_budget() {
        let started = Instant::now();
        let result = POLICY
            .run(|n| async move {
                if n == 1 {
                    Step::RetryAfter("429", Duration::from_secs(2))
                } else {
                    Step::Done(())
                }
            })
            .await;
        assert!(result.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(2));

        let started = Instant::now();
        let beyond = POLICY
            .run(|_| async { Step::<(), _>::RetryAfter("429", Duration::from_secs(60)) })
            .await
            .unwrap_err();
        assert_eq!((beyond.reason, beyond.attempts), (GaveUp::Budget, 1));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "gave up without waiting"
        );
    }
}
