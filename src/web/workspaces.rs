//! One's workspaces: the switcher (a plain form post in every page's
//! header) and the page listing the workspaces one belongs to and the
//! invitations waiting for an answer.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, render, see_other};
use crate::app::workspaces as uc;
use crate::db::people::Membership;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "workspaces/list.html")]
struct WorkspacesPage {
    layout: Layout,
    current: String,
    joined: Vec<Membership>,
    invitations: Vec<Membership>,
}

#[get("/workspaces")]
pub async fn list(session: Session, user: CurrentUser) -> Result<HttpResponse, AppError> {
    let (invitations, joined) = user
        .memberships
        .iter()
        .cloned()
        .partition(Membership::is_pending);
    let page = WorkspacesPage {
        layout: Layout::new(&session, &user, "Your workspaces", "workspaces")?,
        current: user.user.id.clone(),
        joined,
        invitations,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    workspace: String,
}

/// The switcher: work in another of one's workspaces. Pages of the one left
/// behind answer 404 from now on, as any other workspace's do, and forms
/// loaded there are refused.
#[post("/workspaces/switch")]
pub async fn switch(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    let (to, secret) =
        uc::switch(&state, &user.ctx(), &user.session_secret, &form.workspace).await?;
    session::entered(&session, secret, &to.id)?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "You are now working in {}.",
            workspace_name(&user, &to.id)
        )),
    )?;
    Ok(see_other("/"))
}

fn workspace_name(user: &CurrentUser, membership_id: &str) -> String {
    user.workspace_name_of(membership_id)
        .unwrap_or("the workspace")
        .to_owned()
}

/// Accept an invitation to another workspace, and go there.
#[post("/workspaces/invitations/{id}/accept")]
pub async fn accept(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (joined, secret) = uc::accept(&state, &user.ctx(), &user.session_secret, &id).await?;
    session::entered(&session, secret, &joined.id)?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "You joined {} and are now working in it.",
            workspace_name(&user, &joined.id)
        )),
    )?;
    Ok(see_other("/"))
}

/// Decline an invitation: it ends, and the workspace's admins see that.
#[post("/workspaces/invitations/{id}/decline")]
pub async fn decline(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let declined = uc::decline(&state, &user.ctx(), &id).await?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "You declined the invitation to {}.",
            workspace_name(&user, &declined.id)
        )),
    )?;
    Ok(see_other("/workspaces"))
}
