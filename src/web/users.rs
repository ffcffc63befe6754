//! Workspace → Users (admins): list, add with a one-time invitation link,
//! change role, remove.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, db, is_htmx, render, see_other};
use crate::db::users::{self, User, UserChangeError};
use crate::domain::input::{Email, PersonName};
use crate::domain::policy::{Action, UserRef};
use crate::domain::{Role, ids};
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
fn respond(
    req: &HttpRequest,
    session: &Session,
    user: &CurrentUser,
    panel: Panel,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        render(&UsersPartial { panel }, status)
    } else {
        let layout = Layout::new(session, user, "Users", "users")?;
        render(&UsersPage { layout, panel }, status)
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
    respond(&req, &session, &user, panel, StatusCode::OK)
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
    let mut errors = FormErrors::default();
    let email = errors.check(Email::parse(&form.email));
    let name = errors.check(PersonName::parse(&form.name));
    let role = form.role.parse::<Role>().ok();
    if role.is_none() {
        errors.add("role", "Choose a role: admin, normal user or operator.");
    }
    let outcome = match (email, name, role) {
        (Some(email), Some(name), Some(role)) => {
            let token = ids::new_token();
            let digest = ids::token_digest(&token);
            let ctx = user.audit();
            let added = db(&state, move |c| {
                match users::add(c, &ctx, email.as_str(), &name.into_inner(), role, &digest) {
                    Ok(u) => Ok(Some(u)),
                    // Only a person who is already a member here: someone
                    // with an account elsewhere is invited like anyone else,
                    // so this page never confirms another workspace's users.
                    Err(UserChangeError::EmailTaken) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
            match added {
                Some(added) => Some((added, token)),
                None => {
                    errors.add("email", "This person is already a user of this workspace.");
                    None
                }
            }
        }
        _ => None,
    };
    let mut panel = panel(&state, &session, &user).await?;
    match outcome {
        Some((added, token)) => {
            let link = format!("{}/invite/{token}", state.base_url);
            panel.notice = Some(Flash::success(format!("{} was added.", added.email)));
            panel.invite = Some(ShownInvite {
                email: added.email,
                link,
            });
            respond(&req, &session, &user, panel, StatusCode::OK)
        }
        None => {
            panel.email = form.email;
            panel.name = form.name;
            panel.role = form.role;
            panel.errors = errors;
            respond(
                &req,
                &session,
                &user,
                panel,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
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
        respond(req, session, user, panel, status)
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
    let Ok(role) = form.role.parse::<Role>() else {
        let notice = Flash::error("Choose a role: admin, normal user or operator.");
        return after_change(
            &req,
            &state,
            &session,
            &user,
            notice,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let ctx = user.audit();
    let id = id.into_inner();
    let result = db(&state, move |c| {
        match users::change_role(c, &ctx, &id, role) {
            Ok(u) => Ok(Ok(u)),
            Err(UserChangeError::NotFound) => Err(AppError::NotFound),
            Err(UserChangeError::LastAdmin) => Ok(Err(UserChangeError::LastAdmin.to_string())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match result {
        Ok(changed) => {
            let notice = Flash::success(format!("{} is now: {}.", changed.email, role.label()));
            after_change(&req, &state, &session, &user, notice, StatusCode::OK).await
        }
        Err(message) => {
            after_change(
                &req,
                &state,
                &session,
                &user,
                Flash::error(message),
                StatusCode::CONFLICT,
            )
            .await
        }
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
    let token = ids::new_token();
    let digest = ids::token_digest(&token);
    let ctx = user.audit();
    let id = id.into_inner();
    let renewed = db(&state, move |c| {
        match users::renew_invite(c, &ctx, &id, &digest) {
            Ok(u) => Ok(u),
            Err(UserChangeError::NotFound) => Err(AppError::NotFound),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let mut panel = panel(&state, &session, &user).await?;
    panel.notice = Some(Flash::success(format!(
        "{} has a new invitation link; the previous one no longer works.",
        renewed.email
    )));
    panel.invite = Some(ShownInvite {
        link: format!("{}/invite/{token}", state.base_url),
        email: renewed.email,
    });
    respond(&req, &session, &user, panel, StatusCode::OK)
}

/// The user `id` of the actor's own workspace, as the target of a removal
/// (the lookup itself is scoped to the workspace too).
fn removal<'a>(user: &'a CurrentUser, id: &'a str) -> UserRef<'a> {
    UserRef {
        workspace_id: &user.actor.workspace_id,
        user_id: id,
    }
}

/// The policy's answer on removing user `id`, saying why when it is the
/// actor themselves.
fn authorize_removal(user: &CurrentUser, id: &str) -> Result<(), AppError> {
    match authorize(user, Action::RemoveUser(removal(user, id))) {
        Err(AppError::Forbidden(_)) if id == user.user.id => Err(AppError::Forbidden(
            "You cannot remove yourself from the workspace; another admin can.".into(),
        )),
        other => other,
    }
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
    authorize(&user, Action::ManageUsers)?;
    let ws = user.actor.workspace_id.clone();
    let target = db(&state, move |c| Ok(users::get(c, &ws, &id)?))
        .await?
        .filter(User::is_active)
        .ok_or(AppError::NotFound)?;
    authorize_removal(&user, &target.id)?;
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
    authorize(&user, Action::ManageUsers)?;
    let id = id.into_inner();
    authorize_removal(&user, &id)?;
    let ctx = user.audit();
    let result = db(&state, move |c| {
        // Revoke their personal keys and flag the workspace keys they
        // created, in the same transaction as the removal.
        let keys_too = |c: &mut crate::db::DbConn, removed: &User| {
            crate::db::keys::on_user_removed(c, &ctx, &removed.id)?;
            Ok(())
        };
        match users::remove(c, &ctx, &id, keys_too) {
            Ok(u) => Ok(Ok(u)),
            Err(UserChangeError::NotFound) => Err(AppError::NotFound),
            Err(UserChangeError::LastAdmin) => Ok(Err(UserChangeError::LastAdmin.to_string())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match result {
        Ok(removed) => {
            let notice = Flash::success(format!("{} was removed and signed out.", removed.email));
            after_change(&req, &state, &session, &user, notice, StatusCode::OK).await
        }
        Err(message) => {
            after_change(
                &req,
                &state,
                &session,
                &user,
                Flash::error(message),
                StatusCode::CONFLICT,
            )
            .await
        }
    }
}
