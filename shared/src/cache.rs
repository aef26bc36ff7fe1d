//! Redis (DESIGN.md §5): the prediction cache and per-user rate limits.
//!
//! Redis is an optimisation, never a dependency: every call has a hard deadline
//! (50 ms by default), and a failure reads as "nothing cached" or "allowed". After a
//! failure the connection is dropped and not retried for [`RECONNECT_BACKOFF`], so a
//! dead or hanging Redis costs one deadline per second, not one per request.

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The default deadline of one Redis call (issue 3: at most 50 ms).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// How long a failed Redis is left alone before the next connection attempt.
pub const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {0}")]
pub struct CacheConfigError(String);

/// What `/health` reports for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Available,
    Unavailable,
    NotConfigured,
}

enum Connection {
    Idle,
    Ready(MultiplexedConnection),
    FailedAt(Instant),
}

pub struct Cache {
    client: Option<redis::Client>,
    connection: Mutex<Connection>,
    timeout: Duration,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("configured", &self.client.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Cache {
    /// A cache at `url` (`redis://host:port[/db]`). Nothing connects yet: the first call does.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, CacheConfigError> {
        let client = redis::Client::open(url).map_err(|e| CacheConfigError(e.to_string()))?;
        Ok(Self {
            client: Some(client),
            connection: Mutex::new(Connection::Idle),
            timeout,
        })
    }

    /// No Redis configured: every lookup misses, every limit allows.
    pub fn disabled() -> Self {
        Self {
            client: None,
            connection: Mutex::new(Connection::Idle),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// Connects now rather than on the first call (a cold start does it beside loading
    /// the model); whether Redis is reachable. A failure starts the usual back-off.
    pub async fn connect(&self) -> bool {
        self.connection().await.is_some()
    }

    /// A connection, or `None` while Redis is unconfigured or in its back-off.
    async fn connection(&self) -> Option<MultiplexedConnection> {
        let client = self.client.as_ref()?;
        let mut state = self.connection.lock().await;
        match &*state {
            Connection::Ready(conn) => return Some(conn.clone()),
            Connection::FailedAt(at) if at.elapsed() < RECONNECT_BACKOFF => return None,
            _ => {}
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let attempt = tokio::time::timeout(
            self.timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await;
        match attempt {
            Ok(Ok(conn)) => {
                *state = Connection::Ready(conn.clone());
                Some(conn)
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "redis: cannot connect; continuing without cache");
                *state = Connection::FailedAt(Instant::now());
                None
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    "redis: connect timed out; continuing without cache"
                );
                *state = Connection::FailedAt(Instant::now());
                None
            }
        }
    }

    /// Runs one Redis call under the deadline; any failure is logged, counted and `None`.
    async fn call<T, F, Fut>(&self, what: &'static str, op: F) -> Option<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        let error = match tokio::time::timeout(self.timeout, op(conn)).await {
            Ok(Ok(value)) => return Some(value),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        tracing::warn!(
            operation = what,
            error,
            "redis call failed; continuing without it"
        );
        crate::telemetry::emit_metric("inferloop", "CacheFailure", 1.0, "Count");
        *self.connection.lock().await = Connection::FailedAt(Instant::now());
        None
    }

    /// The value at `key`, if Redis answers in time and has it.
    pub async fn get(&self, key: &str) -> Option<String> {
        self.call("get", |mut conn| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<String>>(&mut conn)
                .await
        })
        .await
        .flatten()
    }

    /// Stores `value` at `key` for `ttl`; returns whether Redis took it.
    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> bool {
        self.call("set", |mut conn| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async::<()>(&mut conn)
                .await
        })
        .await
        .is_some()
    }

    /// Adds one to the counter at `key`, which expires `ttl` after its first use; the new count.
    /// Marks `key` (for `ttl`) and says whether it was marked already: `Some(true)` when
    /// it was, `None` when Redis did not answer.
    pub async fn seen_before(&self, key: &str, ttl: Duration) -> Option<bool> {
        self.call("set nx", |mut conn| async move {
            // SET NX answers OK when it set the key, nil when the key existed.
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async(&mut conn)
                .await?;
            Ok(set.is_none())
        })
        .await
    }

    pub async fn increment(&self, key: &str, ttl: Duration) -> Option<u64> {
        self.call("increment", |mut conn| async move {
            // SET NX EX then INCR, in one MULTI: the expiry is set exactly once, by the
            // request that creates the counter, on every Redis version.
            let (count,): (u64,) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(key)
                .arg(0)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .arg("NX")
                .ignore()
                .cmd("INCR")
                .arg(key)
                .query_async(&mut conn)
                .await?;
            Ok(count)
        })
        .await
    }

    /// For `/health`: does Redis answer a PING within the deadline?
    pub async fn status(&self) -> CacheStatus {
        if !self.is_configured() {
            return CacheStatus::NotConfigured;
        }
        let pong = self
            .call("ping", |mut conn| async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .await;
        match pong {
            Some(_) => CacheStatus::Available,
            None => CacheStatus::Unavailable,
        }
    }
}

/// A fixed-window limit: at most `limit` calls per `window` for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub window: Duration,
}

impl RateLimit {
    pub fn per_hour(limit: u64) -> Self {
        Self {
            limit,
            window: Duration::from_secs(3600),
        }
    }

    /// The counter key of `subject` in the window holding `now_secs`, and the seconds
    /// until that window ends.
    pub fn window_key(&self, subject: &str, now_secs: u64) -> (String, u64) {
        let window = self.window.as_secs().max(1);
        let index = now_secs / window;
        let ends_in = (index + 1) * window - now_secs;
        (format!("rate:{subject}:{window}:{index}"), ends_in)
    }

    /// `Ok` while under the limit, or when Redis cannot say (the limit fails open);
    /// `Err(seconds until the window ends)` once over it.
    pub async fn check(&self, cache: &Cache, subject: &str, now_secs: u64) -> Result<(), u64> {
        let (key, ends_in) = self.window_key(subject, now_secs);
        match cache.increment(&key, Duration::from_secs(ends_in)).await {
            Some(count) if count > self.limit => Err(ends_in.max(1)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_say_when_they_end() {
        let limit = RateLimit::per_hour(10);
        let (key, ends_in) = limit.window_key("alice:v2", 7200);
        assert_eq!(key, "rate:alice:v2:3600:2");
        assert_eq!(ends_in, 3600);
        let (same, ends_in) = limit.window_key("alice:v2", 10_799);
        assert_eq!(same, key);
        assert_eq!(ends_in, 1);
        assert_ne!(limit.window_key("alice:v2", 10_800).0, key);
    }

    #[test]
    fn a_bad_url_is_refused_at_start() {
        assert!(Cache::new("not a url", DEFAULT_TIMEOUT).is_err());
        assert!(Cache::new("redis://127.0.0.1:6379", DEFAULT_TIMEOUT).is_ok());
    }

    #[tokio::test]
    async fn a_disabled_cache_misses_and_allows() {
        let cache = Cache::disabled();
        assert_eq!(cache.get("k").await, None);
        assert!(!cache.set("k", "v", Duration::from_secs(1)).await);
        assert_eq!(cache.status().await, CacheStatus::NotConfigured);
        assert_eq!(
            RateLimit::per_hour(0).check(&cache, "u", 0).await,
            Ok(()),
            "fails open"
        );
    }

    /// A server that accepts connections and never answers: every call must give up
    /// at its deadline instead of hanging the request.
    #[tokio::test]
    async fn a_silent_redis_is_given_up_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let cache = Cache::new(&format!("redis://{addr}"), DEFAULT_TIMEOUT).unwrap();
        // A guard against hanging, not a timing assertion.
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            (
                cache.get("k").await,
                RateLimit::per_hour(0).check(&cache, "u", 0).await,
                cache.status().await,
            )
        })
        .await
        .expect("redis calls must not hang");
        assert_eq!(outcome, (None, Ok(()), CacheStatus::Unavailable));
    }
}
