//! `cargo xtask bench login`: how long `POST /login` takes through the login function's
//! handler against the local stack, and whether an unknown username answers in the same
//! time as a wrong password (it must not tell which usernames exist).
//!
//! The kinds of attempt are interleaved round by round, so drift in the machine's load
//! affects them alike. Each request comes from an address of its own, as distinct
//! clients would (the per-source throttle is not what is measured). Then the cost per
//! request of the account check every authenticated route makes (issue 19): a
//! consistent read (admin routes) and a cached answer (user routes).

use inferloop::domain::Role;
use integration_tests::{
    PASSWORD, call, create_account, dynamodb, login_app, login_token, request, stack_var,
    unique_username,
};
use std::time::{Duration, Instant};

const ROUNDS: usize = 60;

fn body(username: &str, password: &str) -> String {
    serde_json::json!({"username": username, "password": password}).to_string()
}

async fn timed(app: &login::App, username: &str, password: &str, expect: u16) -> Duration {
    let mut req = request("POST", "/login", Some(&body(username, password)), None);
    let source = format!("10.9.{}.{}", fastrand_u8(), fastrand_u8());
    req.headers_mut()
        .insert("x-forwarded-for", source.parse().expect("an address"));
    let started = Instant::now();
    let (status, json, _) = call(app, req).await;
    let elapsed = started.elapsed();
    assert_eq!(status, expect, "{json}");
    elapsed
}

/// A byte from the clock: distinct addresses need no cryptographic randomness.
fn fastrand_u8() -> u8 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        % 251) as u8
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let p50 = percentile(&samples, 0.5);
    println!(
        "{name:<16} n={:<4} p50 {:>8.3} ms   p95 {:>8.3} ms   mean {:>8.3} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        percentile(&samples, 0.95).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
    p50
}

#[tokio::main]
async fn main() {
    let app = login_app().await;
    let account = create_account(Role::User).await;
    // Warm-up: the first requests pay for connections and lazy initialisation.
    for _ in 0..5 {
        timed(&app, &unique_username("ghost"), PASSWORD, 401).await;
        timed(&app, &account, PASSWORD, 200).await;
    }

    // A name locked once, for the refused path (locked for 15 minutes: the whole run).
    let locked = create_account(Role::User).await;
    for _ in 0..4 {
        timed(&app, &locked, "not the password", 401).await;
    }
    timed(&app, &locked, "not the password", 429).await;
    let (mut unknown, mut wrong, mut success, mut refused) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        unknown.push(timed(&app, &unique_username("ghost"), PASSWORD, 401).await);
        wrong.push(timed(&app, &account, "not the password", 401).await);
        refused.push(timed(&app, &locked, PASSWORD, 429).await);
        // Every third round a success clears the failures before a lockout could start.
        if round % 3 == 2 {
            success.push(timed(&app, &account, PASSWORD, 200).await);
        }
    }

    println!("POST /login through login::handle against moto, {ROUNDS} rounds");
    let unknown_p50 = report("unknown user", unknown);
    let wrong_p50 = report("wrong password", wrong);
    let refused_p50 = report("locked (429)", refused);
    report("success", success);
    for (name, p50) in [("unknown", unknown_p50), ("locked", refused_p50)] {
        let gap = p50.as_secs_f64() - wrong_p50.as_secs_f64();
        println!(
            "{name} − wrong password at p50: {:+.2} ms ({:+.1} %)",
            gap * 1e3,
            gap / wrong_p50.as_secs_f64() * 100.0
        );
    }

    account_check(&app).await;
}

/// What the account check adds to a request: `Accounts::confirm` alone, against moto,
/// as admin routes make it (a consistent GetItem every time) and as user routes make
/// it (at most one read per `ACCOUNT_CHECK_TTL_SECONDS`, else the cache).
async fn account_check(app: &login::App) {
    use inferloop::auth::accounts::{Accounts, Freshness};
    const CHECKS: usize = 300;
    let admin = create_account(Role::Admin).await;
    let token = login_token(app, &admin).await;
    let principal = app.common.tokens.verify(&token).expect("a valid token");
    let accounts = Accounts::new(
        inferloop::store::users::UserStore::new(dynamodb().await, stack_var("USERS_TABLE")),
        inferloop::auth::accounts::DEFAULT_TTL,
    );
    for _ in 0..10 {
        accounts
            .confirm(&principal, Freshness::Now)
            .await
            .expect("warm-up");
    }
    let (mut fresh, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..CHECKS {
        let started = Instant::now();
        accounts
            .confirm(&principal, Freshness::Now)
            .await
            .expect("confirmed");
        fresh.push(started.elapsed());
        let started = Instant::now();
        accounts
            .confirm(&principal, Freshness::Cached)
            .await
            .expect("confirmed");
        cached.push(started.elapsed());
    }
    println!("account check (Accounts::confirm) against moto, {CHECKS} each");
    report("admin (read)", fresh);
    report("user (cached)", cached);
}
