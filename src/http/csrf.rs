//! CSRF tokens: one per session, presented by every state-changing request
//! of the web application (checked by [`super::middleware::csrf_guard`]).

use crate::domain::ids::new_token;
use crate::error::AppError;
use actix_session::Session;

const CSRF: &str = "csrf";

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(CSRF)? {
        return Ok(token);
    }
    let token = new_token();
    session.insert(CSRF, &token)?;
    Ok(token)
}

/// The token a state-changing request must present, if the session has one.
pub fn expected_csrf(session: &Session) -> Option<String> {
    session.get::<String>(CSRF).ok().flatten()
}

/// Forget the token (a new session gets a new one).
pub fn forget(session: &Session) {
    session.remove(CSRF);
}
