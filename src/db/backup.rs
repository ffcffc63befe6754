//! `keyward backup`: a consistent copy of a SQLite database while it
//! serves.
//!
//! `VACUUM INTO` reads one snapshot (a read transaction): in WAL mode
//! writers and key checks go on while it runs, and the copy holds every
//! commit made before it started and none after. It is written under a
//! temporary name, checked (`PRAGMA integrity_check`) and renamed into
//! place, so a backup file that exists is complete.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use std::path::{Path, PathBuf};

/// What a backup wrote.
#[derive(Debug)]
pub struct Written {
    pub file: PathBuf,
    /// The session secret copied beside the backup (`<file>.secret`), when
    /// the database had one beside it.
    pub secret: Option<PathBuf>,
    pub keys: i64,
    pub events: i64,
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn count(conn: &mut SqliteConnection, table: &str) -> Result<i64, String> {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<Count>(conn)
        .map(|c| c.n)
        .map_err(|e| format!("cannot read the backup: {e}"))
}

/// Copy the SQLite database at `db` into `to` (which must not exist), and
/// its session secret file beside it.
pub fn sqlite(db: &Path, to: &Path) -> Result<Written, String> {
    if to.exists() {
        return Err(format!(
            "{} exists already; choose a new file name (a backup never overwrites)",
            to.display()
        ));
    }
    if !db.exists() {
        return Err(format!("no database at {}", db.display()));
    }
    let source = db.to_str().ok_or("the database path is not UTF-8")?;
    let mut conn = SqliteConnection::establish(source)
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    // Wait for a writer's commit rather than fail (as the server does).
    diesel::sql_query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    let partial = beside(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let target = partial.to_str().ok_or("the backup path is not UTF-8")?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(target)
        .execute(&mut conn)
        .map_err(|e| format!("backup failed: {e}"))?;
    drop(conn);
    let mut copy =
        SqliteConnection::establish(target).map_err(|e| format!("cannot open the backup: {e}"))?;
    let check = diesel::sql_query("PRAGMA integrity_check")
        .get_result::<Check>(&mut copy)
        .map_err(|e| format!("cannot check the backup: {e}"))?;
    if check.integrity_check != "ok" {
        let _ = std::fs::remove_file(&partial);
        return Err(format!(
            "the backup failed its integrity check: {}",
            check.integrity_check
        ));
    }
    let keys = count(&mut copy, "api_keys")?;
    let events = count(&mut copy, "events")?;
    drop(copy);
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot write the backup: {e}"))?;
    std::fs::rename(&partial, to).map_err(|e| format!("cannot write the backup: {e}"))?;
    let secret_file = beside(db, ".secret");
    let secret = if secret_file.exists() {
        let copied = beside(to, ".secret");
        std::fs::copy(&secret_file, &copied)
            .map_err(|e| format!("cannot copy {}: {e}", secret_file.display()))?;
        Some(copied)
    } else {
        None
    };
    Ok(Written {
        file: to.to_owned(),
        secret,
        keys,
        events,
    })
}
