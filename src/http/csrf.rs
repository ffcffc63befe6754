//! CSRF tokens: one per session, presented by every state-changing request
//! of the web application (checked by [`super::middleware::csrf_guard`]).
//!
//! A signed-in session's token names the membership (workspace) it was
//! issued in, and switching workspaces issues a new one: a form loaded in
//! one workspace and posted after switching to another (in another tab) is
//! refused, with a page that says why, instead of acting in the workspace
//! switched to.

use crate::domain::ids::new_token;
use crate::error::AppError;
use actix_session::Session;

const CSRF: &str = "csrf";
/// The membership the session's token was issued for.
const WORKSPACE: &str = "csrf_ws";

/// The session's CSRF token, created on first use: `<random>.<membership>`
/// once the session works in a workspace, else `<random>`.
pub fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF)? {
        return Ok(token);
    }
    let token = match session.get::<String>(WORKSPACE)? {
        Some(ws) => format!("{}.{ws}", new_token()),
        None => new_token(),
    };
    session.insert(CSRF, &token)?;
    Ok(token)
}

/// The token a state-changing request must present, if the session has one.
pub fn expected_csrf(session: &Session) -> Option<String> {
    session.get::<String>(CSRF).ok().flatten()
}

/// The membership the session works in now, as its tokens name it.
pub fn bound_workspace(session: &Session) -> Option<String> {
    session.get::<String>(WORKSPACE).ok().flatten()
}

/// The membership a presented token was issued for.
pub fn token_workspace(token: &str) -> Option<&str> {
    token.split_once('.').map(|(_, ws)| ws)
}

/// Name the membership this signed-in session works in, once (tokens
/// issued from then on carry it). A session that already names one keeps
/// it: [`rebind`] is what changes it.
pub fn bind_once(session: &Session, membership_id: &str) -> Result<(), AppError> {
    if bound_workspace(session).is_none() {
        session.insert(WORKSPACE, membership_id)?;
        forget(session);
    }
    Ok(())
}

/// The session moved to another membership: forms issued before are
/// refused from now on.
pub fn rebind(session: &Session, membership_id: &str) -> Result<(), AppError> {
    session.insert(WORKSPACE, membership_id)?;
    forget(session);
    Ok(())
}

/// Forget the token (a new one is issued on next use).
pub fn forget(session: &Session) {
    session.remove(CSRF);
}

/// Forget the token and the membership it names (signing in or out).
pub fn reset(session: &Session) {
    session.remove(CSRF);
    session.remove(WORKSPACE);
}
