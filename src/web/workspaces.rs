//! One's workspaces: the switcher (a plain form post in every page's
//! header) and the page listing the workspaces one belongs to and the
//! invitations waiting for an answer.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, authorize, client_ip, db, render, see_other, user_agent};
use crate::db::people::Membership;
use crate::db::{sessions, users};
use crate::domain::policy::{Action, MembershipRef};
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
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

/// Load one of the person's own memberships: another person's, or one that
/// does not exist or has ended, is a 404 (through the policy).
async fn own_membership(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    id: String,
) -> Result<users::User, AppError> {
    let found = db(state, move |c| Ok(users::membership(c, &id)?))
        .await?
        .ok_or(AppError::NotFound)?;
    authorize(
        user,
        Action::UseMembership(MembershipRef {
            person_id: &found.person_id,
        }),
    )?;
    Ok(found)
}

/// Move the session to the membership, remembered for the next sign-in.
async fn switch_to(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    to: users::User,
) -> Result<(), AppError> {
    let secret = user.session_secret.clone();
    db(state, move |c| Ok(sessions::switch(c, &secret, &to)?)).await
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    workspace: String,
}

/// The switcher: work in another of one's workspaces. Pages of the one left
/// behind answer 404 from now on, as any other workspace's do.
#[post("/workspaces/switch")]
pub async fn switch(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    let to = own_membership(&state, &user, form.into_inner().workspace).await?;
    if to.invite_pending() {
        return Err(AppError::NotFound);
    }
    let name = workspace_name(&user, &to.id);
    switch_to(&state, &user, to).await?;
    session::set_flash(
        &session,
        Flash::success(format!("You are now working in {name}.")),
    )?;
    Ok(see_other("/"))
}

fn workspace_name(user: &CurrentUser, membership_id: &str) -> String {
    user.workspace_name_of(membership_id)
        .unwrap_or("the workspace")
        .to_owned()
}

/// What answering an invitation does: [`users::accept_pending`] or
/// [`users::decline_pending`].
type Answer = fn(
    &mut crate::db::DbConn,
    &str,
    &str,
    Option<String>,
    Option<String>,
) -> diesel::QueryResult<Option<users::User>>;

/// Answer one of the person's own pending invitations; returns the
/// membership and its workspace's name.
async fn answer(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    user: &CurrentUser,
    id: String,
    how: Answer,
) -> Result<(users::User, String), AppError> {
    let pending = own_membership(state, user, id).await?;
    let name = workspace_name(user, &pending.id);
    let (person_id, ip, ua) = (
        user.actor.person_id.clone(),
        client_ip(req),
        user_agent(req),
    );
    let done = db(state, move |c| Ok(how(c, &person_id, &pending.id, ip, ua)?))
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((done, name))
}

/// Accept an invitation to another workspace, and go there.
#[post("/workspaces/invitations/{id}/accept")]
pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (joined, name) =
        answer(&req, &state, &user, id.into_inner(), users::accept_pending).await?;
    switch_to(&state, &user, joined).await?;
    session::set_flash(
        &session,
        Flash::success(format!("You joined {name} and are now working in it.")),
    )?;
    Ok(see_other("/"))
}

/// Decline an invitation: it ends, and the workspace's admins see that.
#[post("/workspaces/invitations/{id}/decline")]
pub async fn decline(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (_, name) = answer(&req, &state, &user, id.into_inner(), users::decline_pending).await?;
    session::set_flash(
        &session,
        Flash::success(format!("You declined the invitation to {name}.")),
    )?;
    Ok(see_other("/workspaces"))
}
