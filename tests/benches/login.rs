//! `cargo xtask bench login`: how long `POST /login` takes through the login function's
//! handler against the local stack, and whether an unknown username answers in the same
//! time as a wrong password (it must not tell which usernames exist).
//!
//! The three kinds of attempt are interleaved round by round, so drift in the machine's
//! load affects them alike.

use inferloop::domain::Role;
use integration_tests::{PASSWORD, call, create_account, login_app, request, unique_username};
use std::time::{Duration, Instant};

const ROUNDS: usize = 60;

fn body(username: &str, password: &str) -> String {
    serde_json::json!({"username": username, "password": password}).to_string()
}

async fn timed(app: &login::App, username: &str, password: &str, expect: u16) -> Duration {
    let started = Instant::now();
    let (status, json, _) = call(
        app,
        request("POST", "/login", Some(&body(username, password)), None),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(status, expect, "{json}");
    elapsed
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
        "{name:<16} n={:<4} p50 {:>7.2} ms   p95 {:>7.2} ms   mean {:>7.2} ms",
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

    let (mut unknown, mut wrong, mut success) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        unknown.push(timed(&app, &unique_username("ghost"), PASSWORD, 401).await);
        wrong.push(timed(&app, &account, "not the password", 401).await);
        // Every third round a success clears the failures before a lockout could start.
        if round % 3 == 2 {
            success.push(timed(&app, &account, PASSWORD, 200).await);
        }
    }

    println!("POST /login through login::handle against moto, {ROUNDS} rounds");
    let unknown_p50 = report("unknown user", unknown);
    let wrong_p50 = report("wrong password", wrong);
    report("success", success);
    let gap = unknown_p50.as_secs_f64() - wrong_p50.as_secs_f64();
    println!(
        "unknown − wrong password at p50: {:+.2} ms ({:+.1} %)",
        gap * 1e3,
        gap / wrong_p50.as_secs_f64() * 100.0
    );
}
