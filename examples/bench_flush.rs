//! Benchmark the buffered writes of key checks: one flush of "last used"
//! times and hourly usage counts for K keys of a seeded database (see
//! `seed_keys`), as the verifier writes them every few seconds.
//!
//!     DATABASE_URL=… cargo run --release --example bench_flush -- K [ROUNDS]
//!
//! Each round writes a newer "last used" time for K keys and two counters
//! (VALID and one refusal) per key, then prints how long each half took;
//! the median of the rounds is printed last. Throwaway databases only: it
//! adds made-up usage.

use chrono::{TimeDelta, Timelike, Utc};
use diesel::prelude::*;
use keyward::config::DatabaseUrl;
use keyward::db::schema::api_keys;
use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let k: i64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .ok_or("usage: bench_flush K [ROUNDS]")?;
    let rounds: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "keyward.db".into());
    let url = DatabaseUrl::parse(&url).map_err(|e| e.to_string())?;
    let pool = keyward::db::pool(&url, 1).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let keys: Vec<(String, String)> = api_keys::table
        .select((api_keys::id, api_keys::workspace_id))
        .order(api_keys::id)
        .limit(k)
        .load(&mut conn)
        .map_err(|e| e.to_string())?;
    if keys.is_empty() {
        return Err("no keys: seed the database first (seed_keys)".into());
    }
    let mut totals = Vec::new();
    for round in 0..rounds {
        let now = Utc::now().naive_utc() + TimeDelta::seconds(i64::from(round));
        let hour = now.date().and_hms_opt(now.hour(), 0, 0).unwrap_or(now);
        let used: Vec<(String, chrono::NaiveDateTime)> =
            keys.iter().map(|(id, _)| (id.clone(), now)).collect();
        let counts: Vec<keyward::db::usage::Increment> = keys
            .iter()
            .flat_map(|(id, ws)| {
                [("VALID", 7), ("RATE_LIMITED", 1)]
                    .map(|(o, n)| (id.as_str(), ws.as_str(), hour, o, n))
            })
            .collect();
        let started = Instant::now();
        keyward::db::keys::write_last_used(&mut conn, &used).map_err(|e| e.to_string())?;
        let last_used = started.elapsed();
        let started = Instant::now();
        keyward::db::usage::add(&mut conn, &counts).map_err(|e| e.to_string())?;
        let usage = started.elapsed();
        println!(
            "round {round}: {} keys: last used {:.0} ms, {} counters {:.0} ms",
            keys.len(),
            last_used.as_secs_f64() * 1e3,
            counts.len(),
            usage.as_secs_f64() * 1e3
        );
        totals.push((last_used + usage).as_secs_f64() * 1e3);
    }
    totals.sort_by(f64::total_cmp);
    println!("median flush: {:.0} ms", totals[totals.len() / 2]);
    Ok(())
}
