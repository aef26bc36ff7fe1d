//! Posting to a Slack Incoming Webhook, with Slack's delivery rules: about one message a
//! second, 429 with `Retry-After` when posted faster, 4xx with an error text for a
//! payload it rejects. Retries go through the shared backoff (inferloop::retry): up to
//! three attempts, never before a `Retry-After` runs out, inside a budget shorter than
//! the function's timeout; a 4xx other than 429 is not retried (it would be refused
//! again), and its error text is logged.

use inferloop::retry::{Backoff, GaveUp, Step};
use std::time::Duration;

/// One attempt's own deadline: Slack answers in well under a second.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default policy: three attempts within 20 s (the function's timeout is 30 s).
pub const RETRIES: Backoff = Backoff {
    base: Duration::from_millis(500),
    cap: Duration::from_secs(4),
    max_attempts: 3,
    budget: Duration::from_secs(20),
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Slack refused the payload (a 4xx other than 429): sending it again will not help.
    Refused { status: u16, body: String },
    /// Slack did not take it within the attempts and budget (429s, 5xx, no answer).
    Unavailable(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { status, body } => {
                write!(f, "Slack refused the message ({status}): {body}")
            }
            Self::Unavailable(why) => write!(f, "Slack did not take the message: {why}"),
        }
    }
}

pub struct Webhook {
    /// Never logged: whoever has it can post to the channel.
    url: String,
    http: reqwest::Client,
    policy: Backoff,
    /// Set on each request, so it holds whatever client the builder gave.
    attempt_timeout: Duration,
}

impl Webhook {
    pub fn new(url: String, policy: Backoff) -> Self {
        Self {
            url,
            // Building fails only without a TLS backend; the default client then still
            // gets each attempt's deadline from the request.
            http: reqwest::Client::builder().build().unwrap_or_default(),
            policy,
            attempt_timeout: ATTEMPT_TIMEOUT,
        }
    }

    /// The same webhook with another deadline per attempt than [`ATTEMPT_TIMEOUT`]
    /// (tests of a webhook that never answers, which cannot wait 5 s an attempt).
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Posts `payload`; Slack's answer text on success.
    pub async fn post(&self, payload: &serde_json::Value) -> Result<String, SendError> {
        let result = self
            .policy
            .run(|attempt| async move {
                let request = self
                    .http
                    .post(&self.url)
                    .timeout(self.attempt_timeout)
                    .json(payload);
                let response = match request.send().await {
                    Ok(response) => response,
                    // Without the URL: reqwest's error text would carry it.
                    Err(err) => {
                        let why = if err.is_timeout() {
                            "timed out"
                        } else {
                            "no answer"
                        };
                        return Step::Retry(SendError::Unavailable(format!(
                            "attempt {attempt}: {why}"
                        )));
                    }
                };
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let body = response.text().await.unwrap_or_default();
                match status {
                    200..=299 => Step::Done(body),
                    429 => Step::RetryAfter(
                        SendError::Unavailable(format!("attempt {attempt}: 429")),
                        Duration::from_secs(retry_after.unwrap_or(1)),
                    ),
                    400..=499 => Step::Fail(SendError::Refused { status, body }),
                    _ => Step::Retry(SendError::Unavailable(format!(
                        "attempt {attempt}: {status}"
                    ))),
                }
            })
            .await;
        result.map_err(|stopped| {
            match stopped.reason {
                GaveUp::NotRetryable => {
                    tracing::error!(error = %stopped.error, "Slack refused an alert")
                }
                GaveUp::Attempts | GaveUp::Budget => tracing::warn!(
                    error = %stopped.error,
                    attempts = stopped.attempts,
                    gave_up = ?stopped.reason,
                    "Slack did not take an alert"
                ),
            }
            stopped.error
        })
    }
}
