//! The sealed secrets of recoverable keys (issue 27): one row per key in
//! `key_secrets`, always read and destroyed with the workspace id. The
//! plaintext never reaches this module: only what
//! [`crate::domain::recovery`] sealed.

use super::DbConn;
use super::schema::{api_keys, key_secrets};
use crate::domain::recovery::{OperatorKeys, Sealed};
use diesel::prelude::*;

/// Keep `sealed` as the secret of `key_id` (replacing an older one), inside
/// the caller's transaction, and mark the key recoverable.
pub fn store(
    conn: &mut DbConn,
    workspace_id: &str,
    key_id: &str,
    sealed: &Sealed,
) -> QueryResult<()> {
    diesel::delete(
        key_secrets::table
            .filter(key_secrets::workspace_id.eq(workspace_id))
            .filter(key_secrets::key_id.eq(key_id)),
    )
    .execute(conn)?;
    diesel::insert_into(key_secrets::table)
        .values((
            key_secrets::key_id.eq(key_id),
            key_secrets::workspace_id.eq(workspace_id),
            key_secrets::enc_key_id.eq(&sealed.enc_key_id),
            key_secrets::nonce.eq(&sealed.nonce),
            key_secrets::ciphertext.eq(&sealed.ciphertext),
            key_secrets::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    diesel::update(
        api_keys::table
            .filter(api_keys::workspace_id.eq(workspace_id))
            .filter(api_keys::id.eq(key_id)),
    )
    .set(api_keys::recoverable.eq(true))
    .execute(conn)?;
    Ok(())
}

/// The sealed secret of a key of the workspace, if it has one.
pub fn get(conn: &mut DbConn, workspace_id: &str, key_id: &str) -> QueryResult<Option<Sealed>> {
    key_secrets::table
        .filter(key_secrets::workspace_id.eq(workspace_id))
        .filter(key_secrets::key_id.eq(key_id))
        .select((
            key_secrets::enc_key_id,
            key_secrets::nonce,
            key_secrets::ciphertext,
        ))
        .first::<(String, String, String)>(conn)
        .optional()
        .map(|row| {
            row.map(|(enc_key_id, nonce, ciphertext)| Sealed {
                enc_key_id,
                nonce,
                ciphertext,
            })
        })
}

/// Destroy a key's sealed secret (revoke, delete, a regeneration that can
/// no longer seal), inside the caller's transaction: the key is no longer
/// recoverable. Returns whether there was one.
pub fn destroy(conn: &mut DbConn, workspace_id: &str, key_id: &str) -> QueryResult<bool> {
    let gone = diesel::delete(
        key_secrets::table
            .filter(key_secrets::workspace_id.eq(workspace_id))
            .filter(key_secrets::key_id.eq(key_id)),
    )
    .execute(conn)?;
    diesel::update(
        api_keys::table
            .filter(api_keys::workspace_id.eq(workspace_id))
            .filter(api_keys::id.eq(key_id))
            .filter(api_keys::recoverable.eq(true)),
    )
    .set(api_keys::recoverable.eq(false))
    .execute(conn)?;
    Ok(gone > 0)
}

/// Destroy every sealed secret of the workspace (recoverable keys turned
/// off), inside the caller's transaction. Returns how many there were.
pub fn destroy_all(conn: &mut DbConn, workspace_id: &str) -> QueryResult<usize> {
    let gone =
        diesel::delete(key_secrets::table.filter(key_secrets::workspace_id.eq(workspace_id)))
            .execute(conn)?;
    diesel::update(
        api_keys::table
            .filter(api_keys::workspace_id.eq(workspace_id))
            .filter(api_keys::recoverable.eq(true)),
    )
    .set(api_keys::recoverable.eq(false))
    .execute(conn)?;
    Ok(gone)
}

/// Why `keyward recovery rewrap` changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    #[error("{0}")]
    Open(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// What `keyward recovery rewrap` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrapped {
    /// Secrets sealed again under the current operator key.
    pub rewrapped: usize,
    /// Secrets already under it.
    pub current: usize,
}

/// Seal every stored secret (of every workspace: the operator's command)
/// again under the current operator key, in one write transaction: all or
/// nothing. A secret no operator key opens stops it, naming the key, so
/// the operator can put the old key back before removing it.
pub fn rewrap_all(conn: &mut DbConn, keys: &OperatorKeys) -> Result<Rewrapped, RewrapError> {
    super::write_transaction(conn, |conn| {
        let rows: Vec<(String, String, String, String, String)> = key_secrets::table
            .select((
                key_secrets::key_id,
                key_secrets::workspace_id,
                key_secrets::enc_key_id,
                key_secrets::nonce,
                key_secrets::ciphertext,
            ))
            .order(key_secrets::key_id.asc())
            .load(conn)?;
        let mut done = Rewrapped {
            rewrapped: 0,
            current: 0,
        };
        for (key_id, workspace_id, enc_key_id, nonce, ciphertext) in rows {
            if enc_key_id == keys.current_id() {
                done.current += 1;
                continue;
            }
            let sealed = Sealed {
                enc_key_id,
                nonce,
                ciphertext,
            };
            let secret = keys.open(&workspace_id, &key_id, &sealed).map_err(|e| {
                RewrapError::Open(format!(
                    "the secret of key {key_id}: {e}; nothing was changed"
                ))
            })?;
            let again = keys.seal(&workspace_id, &key_id, &secret);
            diesel::update(
                key_secrets::table
                    .filter(key_secrets::workspace_id.eq(&workspace_id))
                    .filter(key_secrets::key_id.eq(&key_id)),
            )
            .set((
                key_secrets::enc_key_id.eq(&again.enc_key_id),
                key_secrets::nonce.eq(&again.nonce),
                key_secrets::ciphertext.eq(&again.ciphertext),
            ))
            .execute(conn)?;
            done.rewrapped += 1;
        }
        Ok(done)
    })
}
