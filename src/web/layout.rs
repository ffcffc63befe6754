//! What every page's layout needs: the navigation for the user's role, the
//! CSRF token and any flash message.

use super::session::{self, CurrentUser, Flash};
use crate::domain::Role;
use crate::domain::policy::{self, Action};
use crate::error::AppError;
use actix_session::Session;

/// Navigation entries, shown per role.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub name: String,
    pub email: String,
    pub role: Role,
    pub personal_keys: bool,
    pub workspace_admin: bool,
}

/// Data for `base.html`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// Which navigation entry is current (`aria-current="page"`).
    pub active: &'static str,
    pub user: Option<NavUser>,
    pub csrf: String,
    pub flash: Option<Flash>,
}

impl Layout {
    /// Layout for a signed-in page.
    pub fn new(
        session: &Session,
        user: &CurrentUser,
        title: impl Into<String>,
        active: &'static str,
    ) -> Result<Self, AppError> {
        let actor = &user.actor;
        Ok(Layout {
            title: title.into(),
            active,
            user: Some(NavUser {
                name: user.user.name.clone(),
                email: user.user.email.clone(),
                role: actor.role,
                personal_keys: policy::authorize(actor, Action::ListOwnKeys).is_allowed(),
                workspace_admin: policy::authorize(actor, Action::ManageUsers).is_allowed(),
            }),
            csrf: session::csrf_token(session)?,
            flash: session::take_flash(session),
        })
    }

    /// Layout for a page seen before signing in.
    pub fn anonymous(session: &Session, title: impl Into<String>) -> Result<Self, AppError> {
        Ok(Layout {
            title: title.into(),
            active: "",
            user: None,
            csrf: session::csrf_token(session)?,
            flash: session::take_flash(session),
        })
    }

    /// Layout for error pages, rendered without the session.
    pub fn bare(title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            active: "",
            user: None,
            csrf: String::new(),
            flash: None,
        }
    }

    /// Whether `entry` is the current page.
    pub fn is_active(&self, entry: &str) -> bool {
        self.active == entry
    }
}
