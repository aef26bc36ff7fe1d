//! Structured JSON logs. Each line carries the fields of its spans, so the `request_id`
//! set by `http::serve` appears on every line a request produces.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON log subscriber; `RUST_LOG` sets the level (default `info`).
///
/// `RUST_LOG` is read as levels per target (`info`, `warn,inferloop=debug`): what a
/// function's LogLevel needs. `EnvFilter`'s span and field filters are not offered on
/// purpose: they link a regex engine, ~0.2 MB of every deployment zip (docs/benchmarks.md).
/// A value that does not parse is reported on stderr and `info` is used.
pub fn init() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    // A second init (tests, or a function that calls it twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
}

/// The filter a `RUST_LOG` value asks for: `info` when unset, empty or malformed.
fn log_filter(rust_log: Option<&str>) -> Targets {
    let default = || Targets::new().with_default(LevelFilter::INFO);
    match rust_log.map(str::trim) {
        None | Some("") => default(),
        Some(directives) => directives.parse().unwrap_or_else(|err| {
            eprintln!(
                "RUST_LOG={directives:?} is not a list of target=level: {err}; logging at info"
            );
            default()
        }),
    }
}

/// A CloudWatch embedded-metric-format line: CloudWatch turns it into a metric, with no
/// API call from the function.
pub fn emit_metric(namespace: &str, name: &str, value: f64, unit: &str) {
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": crate::time::now_secs() * 1000,
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

/// A duration in milliseconds, to three decimals: the unit of every `*_ms` log field.
pub fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target_and_falls_back_to_info() {
        let unset = log_filter(None);
        assert!(unset.would_enable("inferloop", &Level::INFO));
        assert!(!unset.would_enable("inferloop", &Level::DEBUG));

        let warn = log_filter(Some("warn"));
        assert!(warn.would_enable("predict", &Level::WARN));
        assert!(!warn.would_enable("predict", &Level::INFO));

        let mixed = log_filter(Some("warn,inferloop::model=debug"));
        assert!(mixed.would_enable("inferloop::model::registry", &Level::DEBUG));
        assert!(!mixed.would_enable("inferloop::audit", &Level::INFO));

        for broken in ["", "  ", "inferloop=loud"] {
            let filter = log_filter(Some(broken));
            assert!(filter.would_enable("inferloop", &Level::INFO), "{broken:?}");
            assert!(
                !filter.would_enable("inferloop", &Level::DEBUG),
                "{broken:?}"
            );
        }
    }
}
