//! The signed-in user, CSRF tokens and one-shot flash messages, all kept in
//! the (encrypted, HttpOnly, SameSite=Strict) session cookie.

use super::{AppState, db};
use crate::db::events::AuditContext;
use crate::db::people::{self, Membership};
use crate::db::sessions;
use crate::db::users::User;
use crate::domain::policy::Actor;
use crate::error::AppError;
use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

const SESSION_SECRET: &str = "sid";
const FLASH: &str = "flash";

/// The user behind the current request's session. Extracting it fails with
/// [`AppError::Unauthenticated`] (a redirect to sign-in) when there is no
/// live session.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub actor: Actor,
    /// The membership acting (with the person's email and name).
    pub user: User,
    /// All the person's active memberships (the current one included),
    /// joined and pending, for the workspace switcher.
    pub memberships: Vec<Membership>,
    /// The session's secret from the cookie (its digest is the row id).
    pub session_secret: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl CurrentUser {
    /// The name of the workspace being worked in.
    pub fn workspace_name(&self) -> &str {
        self.workspace_name_of(&self.user.id).unwrap_or_default()
    }

    /// The name of the workspace of one of the person's memberships.
    pub fn workspace_name_of(&self, membership_id: &str) -> Option<&str> {
        self.memberships
            .iter()
            .find(|m| m.user_id == membership_id)
            .map(|m| m.workspace_name.as_str())
    }

    /// Who and where, for events written on this user's behalf.
    pub fn audit(&self) -> AuditContext {
        AuditContext {
            workspace_id: self.actor.workspace_id.clone(),
            actor_id: Some(self.user.id.clone()),
            actor_label: self.user.email.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let ip = super::client_ip(req);
        let user_agent = super::user_agent(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Internal("app state missing".into()))?;
            let Some(secret) = session.get::<String>(SESSION_SECRET)? else {
                return Err(AppError::Unauthenticated);
            };
            let lifetime = state.session_lifetime();
            let lookup = secret.clone();
            let found = db(&state, move |c| {
                let Some((session, user)) = sessions::load(c, &lookup, lifetime)? else {
                    return Ok(None);
                };
                let memberships = people::memberships(c, &session.person_id)?;
                Ok(Some((user, memberships)))
            })
            .await?;
            let Some((user, memberships)) = found else {
                // Ended elsewhere (logout, removal, password change) or expired.
                session.remove(SESSION_SECRET);
                return Err(AppError::Unauthenticated);
            };
            // Forms issued from now on name this workspace.
            crate::http::csrf::bind_once(&session, &user.id)?;
            Ok(CurrentUser {
                actor: Actor {
                    user_id: user.id.clone(),
                    person_id: user.person_id.clone(),
                    workspace_id: user.workspace_id.clone(),
                    role: user.role(),
                },
                user,
                memberships,
                session_secret: secret,
                ip,
                user_agent,
            })
        })
    }
}

/// Bind a new server-side session to the cookie after sign-in. The cookie
/// is renewed (a fresh session id, against fixation) and gets a new CSRF
/// token.
pub fn sign_in(session: &Session, secret: String) -> Result<(), AppError> {
    session.renew();
    crate::http::csrf::reset(session);
    session.insert(SESSION_SECRET, secret)?;
    Ok(())
}

/// The session moved to another of the person's memberships (the
/// switcher, an accepted invitation): a new session id and secret, against
/// fixation, and a new CSRF token naming the workspace, so forms loaded in
/// the workspace left behind are refused.
pub fn entered(session: &Session, secret: String, membership_id: &str) -> Result<(), AppError> {
    session.renew();
    session.insert(SESSION_SECRET, secret)?;
    crate::http::csrf::rebind(session, membership_id)
}

/// Forget everything the cookie holds.
pub fn sign_out(session: &Session) {
    session.purge();
}

/// The session's secret, if signed in.
pub fn session_secret(session: &Session) -> Option<String> {
    session.get::<String>(SESSION_SECRET).ok().flatten()
}

pub use crate::http::csrf::{csrf_token, expected_csrf};

/// A one-shot message shown on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum FlashKind {
    Success,
    Error,
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Self {
        Flash {
            kind: FlashKind::Success,
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Flash {
            kind: FlashKind::Error,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.kind == FlashKind::Error
    }
}

/// Keep a message for the next page (after a redirect).
pub fn set_flash(session: &Session, flash: Flash) -> Result<(), AppError> {
    session.insert(FLASH, flash)?;
    Ok(())
}

/// Take the pending message, if any.
pub fn take_flash(session: &Session) -> Option<Flash> {
    session.remove_as::<Flash>(FLASH).and_then(Result::ok)
}

impl CurrentUser {
    /// The use-case context of this signed-in membership.
    pub fn ctx(&self) -> crate::app::Ctx {
        crate::app::Ctx {
            actor: self.actor.clone(),
            user: self.user.clone(),
            audit: self.audit(),
            via_key: None,
        }
    }
}
