//! `cargo xtask bench audit`: how fast the audit trail is against the local stack.
//!
//! 1. Writing: entries a second that one `AuditTrail` (one function instance, one chain,
//!    one conditional PutItem per entry, one at a time as a Lambda instance writes them).
//! 2. Verifying: `GET /admin/audit_logs/verify`'s work (`AuditReader::verify`) over
//!    100,000 correctly chained entries, loaded in bulk with BatchWriteItem into a day of
//!    their own (many chains, as many instances would leave), in entries a second —
//!    and the same check over the same entries in memory, to show what the reading
//!    costs and what the hashing costs.

use aws_sdk_dynamodb::types::AttributeValue;
use inferloop::audit::verify::{StoredEntry, verify_chain};
use inferloop::audit::{Action, AuditEntry, AuditReader, AuditTrail, Outcome, SealedEntry};
use inferloop::config::{AuditSettings, Env};
use inferloop::http::RequestMeta;
use inferloop::time::TimeRange;
use inferloop::time::format_timestamp;
use integration_tests::{dynamodb, stack_var};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::macros::datetime;

const WRITES: usize = 2_000;
const WARM_UP: usize = 50;
const VERIFY_ENTRIES: u64 = 100_000;
const CHAINS: u64 = 100;
const LOADERS: usize = 8;

fn settings() -> AuditSettings {
    AuditSettings::from_env(&Env::new(|name| std::env::var(name).ok()))
        .expect("the stack's audit settings")
}

fn meta(i: usize) -> RequestMeta {
    RequestMeta {
        request_id: format!("bench-{i}"),
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("bench".into()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench_writes() {
    let trail = AuditTrail::new(dynamodb().await, settings());
    let details = || serde_json::json!({"model": "mnist", "version": "v2.3", "digit": 7});
    for i in 0..WARM_UP {
        trail
            .record(
                &meta(i),
                "bench-user",
                Action::Predict,
                Outcome::Success,
                details(),
            )
            .await
            .expect("audit write");
    }
    let mut latencies = Vec::with_capacity(WRITES);
    let started = Instant::now();
    for i in 0..WRITES {
        let one = Instant::now();
        trail
            .record(
                &meta(i),
                "bench-user",
                Action::Predict,
                Outcome::Success,
                details(),
            )
            .await
            .expect("audit write");
        latencies.push(one.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "write   one AuditTrail, {WRITES} sequential entries: {:.0} entries/s  \
         (p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms)",
        WRITES as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.95).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

/// `CHAINS` chains of `VERIFY_ENTRIES / CHAINS` entries, one second apart per chain,
/// inside one day, sealed exactly as the writer seals them.
fn chains(key: &[u8], day: OffsetDateTime) -> Vec<SealedEntry> {
    let per_chain = VERIFY_ENTRIES / CHAINS;
    let expires_at = (OffsetDateTime::now_utc().unix_timestamp() + 400 * 86_400) as u64;
    let mut all = Vec::with_capacity(VERIFY_ENTRIES as usize);
    for c in 0..CHAINS {
        let chain_id = ulid::Ulid::new().to_string();
        let mut prev = String::new();
        for seq in 0..per_chain {
            let at = day + time::Duration::seconds((seq * 60 + c) as i64 % 86_000);
            let sealed = AuditEntry {
                chain_id: chain_id.clone(),
                seq,
                timestamp: format_timestamp(at),
                actor: format!("user-{}", seq % 50),
                action: Action::Predict.as_str().into(),
                outcome: Outcome::Success.as_str().into(),
                details: format!(
                    r#"{{"model":"mnist","version":"v2.3","digit":{}}}"#,
                    seq % 10
                ),
                source_ip: "203.0.113.7".into(),
                user_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
                request_id: format!("{chain_id}-{seq}"),
            }
            .seal(key, &prev, expires_at);
            prev = sealed.mac.clone();
            all.push(sealed);
        }
    }
    all
}

async fn load(items: Vec<HashMap<String, AttributeValue>>) {
    integration_tests::bulk_put(&stack_var("AUDIT_TABLE"), items, LOADERS).await;
}

async fn bench_verify() {
    let settings = settings();
    // A random day far in the past: only these entries are in its range.
    let r = ulid::Ulid::new().random();
    let day = datetime!(1980-01-01 0:00 UTC) + time::Duration::days((r % 3650) as i64);
    let range = TimeRange::new(day, day + time::Duration::seconds(86_399)).unwrap();
    let entries = chains(&settings.hmac_key, day);

    let started = Instant::now();
    load(entries.iter().map(SealedEntry::to_item).collect()).await;
    let loaded = started.elapsed();
    println!(
        "load    {VERIFY_ENTRIES} entries in {CHAINS} chains, BatchWriteItem ×{LOADERS} in flight: \
         {:.1} s ({:.0} entries/s)",
        loaded.as_secs_f64(),
        VERIFY_ENTRIES as f64 / loaded.as_secs_f64()
    );

    let reader = AuditReader::new(dynamodb().await, &settings);
    let started = Instant::now();
    let report = reader.verify(&range).await.expect("verify");
    let elapsed = started.elapsed();
    assert!(
        report.verified,
        "{:?}",
        &report.problems[..report.problems.len().min(5)]
    );
    assert_eq!(report.entries_checked, VERIFY_ENTRIES);
    assert_eq!(report.chains, CHAINS);
    println!(
        "verify  AuditReader::verify over {} entries in {} chains against moto: {:.1} s ({:.0} entries/s)",
        report.entries_checked,
        report.chains,
        elapsed.as_secs_f64(),
        report.entries_checked as f64 / elapsed.as_secs_f64()
    );

    // The same check without the table: hashing, MACs and the link walk alone.
    let mut by_chain: HashMap<String, Vec<StoredEntry>> = HashMap::new();
    for sealed in entries {
        by_chain
            .entry(sealed.entry.chain_id.clone())
            .or_default()
            .push(sealed.into());
    }
    let started = Instant::now();
    let mut checked = 0;
    for (chain_id, stored) in by_chain {
        let check = verify_chain(&chain_id, stored, &settings.hmac_key, false);
        assert!(check.problems.is_empty());
        checked += check.entries_checked;
    }
    let elapsed = started.elapsed();
    println!(
        "verify  verify_chain in memory over {checked} entries, one thread: {:.2} s ({:.0} entries/s)",
        elapsed.as_secs_f64(),
        checked as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    stack_var("AWS_ENDPOINT_URL");
    bench_writes().await;
    bench_verify().await;
}
