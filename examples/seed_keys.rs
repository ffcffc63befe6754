//! Benchmark seeding: create N workspace keys in the first workspace of a
//! database, through the same `db::keys::create` the web form uses (event
//! included), in batches of 1,000 per transaction.
//!
//!     DATABASE_URL=… cargo run --release --example seed_keys -- N SECRETS_FILE K [MADE_UP_FILE M]
//!
//! Writes the secrets of the first K keys, one per line, to SECRETS_FILE so
//! that a load generator can present them; with MADE_UP_FILE, also M keys
//! that are well-formed (valid checksum) but exist nowhere, for floods. This is for throwaway benchmark
//! databases only: keyward itself never stores or writes a secret.

use keyward::config::DatabaseUrl;
use keyward::db::events::AuditContext;
use keyward::db::keys::{self, NewKey};
use keyward::domain::keys::{Environment, generate};
use std::io::Write;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (n, file, k) = match &args[..] {
        [_, n, file, k] | [_, n, file, k, _, _] => (n, file, k),
        _ => return Err("usage: seed_keys N SECRETS_FILE K [MADE_UP_FILE M]".into()),
    };
    if let [_, _, _, _, made_up, m] = &args[..] {
        let m: usize = m.parse().map_err(|_| "M must be a number")?;
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(made_up).map_err(|e| e.to_string())?);
        for _ in 0..m {
            writeln!(out, "{}", generate(Environment::Live).0.expose())
                .map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    let n: usize = n.parse().map_err(|_| "N must be a number")?;
    let k: usize = k.parse().map_err(|_| "K must be a number")?;
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "keyward.db".into());
    let url = DatabaseUrl::parse(&url).map_err(|e| e.to_string())?;
    let pool = keyward::db::pool(&url, 1).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    keyward::db::migrate(&mut conn).map_err(|e| e.to_string())?;
    let admin: (String, String) = {
        use diesel::prelude::*;
        use keyward::db::schema::users;
        users::table
            .filter(users::role.eq("admin"))
            .select((users::id, users::workspace_id))
            .first(&mut conn)
            .map_err(|e| format!("no admin to create keys as (run keyward setup first): {e}"))?
    };
    let ctx = AuditContext {
        workspace_id: admin.1,
        actor_id: Some(admin.0),
        actor_label: "seed_keys".into(),
        ip: None,
        user_agent: Some("seed_keys".into()),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(|e| e.to_string())?);
    let started = std::time::Instant::now();
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(1000);
        diesel::Connection::transaction(&mut *conn, |c| {
            for i in made..made + batch {
                let (secret, facts) = generate(Environment::Live);
                let name = format!("Seeded key {i}");
                let nonce = format!("seed-{i}-{}", facts.tail);
                keys::create(c, &ctx, NewKey::plain_workspace_key(&name, &facts, &nonce))
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
                if i < k {
                    writeln!(out, "{}", secret.expose())
                        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
                }
            }
            Ok::<_, diesel::result::Error>(())
        })
        .map_err(|e| e.to_string())?;
        made += batch;
        // Keep PostgreSQL's statistics current while the table grows from
        // nothing: with the estimates of an empty table, the lookup by id
        // after each insert was planned as a scan and seeding slowed to
        // ~100 keys/s past 40k keys.
        if matches!(*conn, keyward::db::DbConn::Pg(_)) {
            diesel::connection::SimpleConnection::batch_execute(&mut *conn, "ANALYZE api_keys")
                .map_err(|e| e.to_string())?;
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "created {n} keys in {:.1} s; {} secrets written",
        started.elapsed().as_secs_f64(),
        k.min(n)
    );
    Ok(())
}
