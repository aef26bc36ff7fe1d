//! Structured JSON logs. Each line carries the fields of its spans, so the `request_id`
//! set by `http::serve` appears on every line a request produces.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber; `RUST_LOG` sets the level (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, or a function that calls it twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}

/// A CloudWatch embedded-metric-format line: CloudWatch turns it into a metric, with no
/// API call from the function.
pub fn emit_metric(namespace: &str, name: &str, value: f64, unit: &str) {
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": crate::auth::token::now_secs() * 1000,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": name, "Unit": unit}],
            }],
        },
        name: value,
    });
    println!("{line}");
}
