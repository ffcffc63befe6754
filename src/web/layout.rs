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
    /// The membership acting, and its workspace's name.
    pub membership_id: String,
    pub workspace_name: String,
    /// Every workspace the person has joined (`(membership id, workspace
    /// name)`, the current one included): the switcher shows when there is
    /// more than one.
    pub workspaces: Vec<(String, String)>,
    /// Invitations to other workspaces waiting for an answer.
    pub invitations: usize,
}

impl NavUser {
    pub fn can_switch(&self) -> bool {
        self.workspaces.len() > 1
    }
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
                membership_id: actor.user_id.clone(),
                workspace_name: user.workspace_name().to_owned(),
                workspaces: user
                    .memberships
                    .iter()
                    .filter(|m| !m.is_pending())
                    .map(|m| (m.user_id.clone(), m.workspace_name.clone()))
                    .collect(),
                invitations: user.memberships.iter().filter(|m| m.is_pending()).count(),
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
