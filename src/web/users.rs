//! Workspace → Users (admins): list, add with a one-time invitation link,
//! change role, remove.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, db, is_htmx, render, see_other};
use crate::app::Error;
use crate::app::users as uc;
use crate::db::users::{self, User};
use crate::domain::Role;
use crate::domain::policy::Action;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

/// An invitation link, shown once right after the user was added.
pub struct ShownInvite {
    pub email: String,
    pub link: String,
}

/// The users panel: what both the full page and the htmx partial show.
pub struct Panel {
    pub csrf: String,
    pub me: String,
    pub users: Vec<User>,
    pub roles: [Role; 3],
    pub email: String,
    pub name: String,
    pub role: String,
    pub errors: FormErrors,
    pub invite: Option<ShownInvite>,
    pub notice: Option<Flash>,
}

impl Panel {
    /// Users who have joined (invited people who have not joined yet are
    /// counted apart).
    pub fn active_count(&self) -> usize {
        self.users
            .iter()
            .filter(|u| u.is_active() && !u.invite_pending())
            .count()
    }

    pub fn invited_count(&self) -> usize {
        self.users.iter().filter(|u| u.invite_pending()).count()
    }
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct UsersPage {
    layout: Layout,
    panel: Panel,
    /// Shown apart from people, in their own table.
    service_accounts: Vec<User>,
}

#[derive(Template)]
#[template(path = "users/panel.html")]
struct UsersPartial {
    panel: Panel,
}

async fn panel(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
) -> Result<Panel, AppError> {
    let ws = user.actor.workspace_id.clone();
    let all = db(state, move |c| Ok(users::list(c, &ws)?)).await?;
    Ok(Panel {
        csrf: session::csrf_token(session)?,
        me: user.user.id.clone(),
        users: all,
        roles: Role::ALL,
        email: String::new(),
        name: String::new(),
        role: Role::Normal.as_str().to_owned(),
        errors: FormErrors::default(),
        invite: None,
        notice: None,
    })
}

/// The full page, or only the panel for htmx.
async fn respond(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    panel: Panel,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        render(&UsersPartial { panel }, status)
    } else {
        let layout = Layout::new(session, user, "Users", "users")?;
        let ws = user.actor.workspace_id.clone();
        let service_accounts = db(state, move |c| {
            Ok(crate::db::service_accounts::list(c, &ws)?)
        })
        .await?;
        render(
            &UsersPage {
                layout,
                panel,
                service_accounts,
            },
            status,
        )
    }
}

#[get("/workspace/users")]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageUsers)?;
    let panel = panel(&state, &session, &user).await?;
    respond(&req, &state, &session, &user, panel, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// Add a user. The answer shows their one-time "set your password" link.
#[post("/workspace/users")]
pub async fn add(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<AddForm>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageUsers)?;
    let form = form.into_inner();
    let invited = uc::invite(&state, &user.ctx(), &form.email, &form.name, &form.role).await;
    let mut panel = panel(&state, &session, &user).await?;
    match invited {
        Ok(invited) => {
            panel.notice = Some(Flash::success(format!("{} was added.", invited.user.email)));
            panel.invite = Some(ShownInvite {
                email: invited.user.email,
                link: invited.link,
            });
            respond(&req, &state, &session, &user, panel, StatusCode::OK).await
        }
        Err(Error::Invalid(errors)) => {
            panel.email = form.email;
            panel.name = form.name;
            panel.role = form.role;
            panel.errors = FormErrors::from(errors);
            respond(
                &req,
                &state,
                &session,
                &user,
                panel,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// After a change: the panel with a message for htmx, or a redirect with a
/// flash for plain forms.
async fn after_change(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    notice: Flash,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        let mut panel = panel(state, session, user).await?;
        panel.notice = Some(notice);
        respond(req, state, session, user, panel, status).await
    } else {
        session::set_flash(session, notice)?;
        Ok(see_other("/workspace/users"))
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

#[post("/workspace/users/{id}/role")]
pub async fn change_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageUsers)?;
    let (notice, status) = match uc::change_role(&state, &user.ctx(), &id, &form.role).await {
        Ok(changed) => (
            Flash::success(format!(
                "{} is now: {}.",
                changed.email,
                changed.role().label()
            )),
            StatusCode::OK,
        ),
        Err(e) => refusal(e)?,
    };
    after_change(&req, &state, &session, &user, notice, status).await
}

/// A refusal the users panel shows as its message (a missing role, the
/// last admin); anything else is an error page.
fn refusal(e: Error) -> Result<(Flash, StatusCode), AppError> {
    match e {
        Error::Invalid(errors) => Ok((
            Flash::error(
                errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Error::Conflict { message, .. } => Ok((Flash::error(message), StatusCode::CONFLICT)),
        other => Err(other.into()),
    }
}

/// Issue a new invitation link to a user who has not set a password yet
/// (the link expires after 7 days); the link is shown once in the panel.
#[post("/workspace/users/{id}/invite")]
pub async fn renew_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageUsers)?;
    let renewed = uc::renew_invite(&state, &user.ctx(), &id).await?;
    let mut panel = panel(&state, &session, &user).await?;
    panel.notice = Some(Flash::success(format!(
        "{} has a new invitation link; the previous one no longer works.",
        renewed.user.email
    )));
    panel.invite = Some(ShownInvite {
        link: renewed.link,
        email: renewed.user.email,
    });
    respond(&req, &state, &session, &user, panel, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "users/remove.html")]
struct RemovePage {
    layout: Layout,
    target: User,
}

/// Confirmation before removing a user (works without JavaScript).
#[get("/workspace/users/{id}/remove")]
pub async fn remove_confirm(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let target = uc::removable(&state, &user.ctx(), &id).await?;
    let page = RemovePage {
        layout: Layout::new(&session, &user, "Remove user", "users")?,
        target,
    };
    render(&page, StatusCode::OK)
}

#[post("/workspace/users/{id}/remove")]
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (notice, status) = match uc::remove(&state, &user.ctx(), &id).await {
        Ok(removed) => (
            Flash::success(format!("{} was removed and signed out.", removed.email)),
            StatusCode::OK,
        ),
        Err(e) => refusal(e)?,
    };
    after_change(&req, &state, &session, &user, notice, status).await
}
