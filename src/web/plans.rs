//! Settings → Plans (issue 23): the workspace's plans, a form to add one,
//! each plan's edit form and its deletion (with confirmation). The rules
//! are `app::plans`, the ones the management API calls.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, render, see_other};
use crate::app::Error;
use crate::app::keys::ListInput;
use crate::app::plans::{self as uc, Listed, PlanInput};
use crate::db::permissions::Permission;
use crate::domain::policy::{Action, management};
use crate::domain::quota::QuotaInput;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

const BASE: &str = "/workspace/settings/plans";

/// A plan's fields as the form shows them.
struct Fields {
    name: String,
    description: String,
    rate_limit: String,
    usage_quota: QuotaInput,
    allowed_ips: String,
    /// `false`: keys on the plan may hold any permission.
    limit_permissions: bool,
    permissions: Vec<String>,
}

impl Fields {
    fn of(input: &PlanInput) -> Self {
        Fields {
            name: input.name.clone(),
            description: input.description.clone(),
            rate_limit: input.rate_limit.clone(),
            usage_quota: input.quota.clone(),
            allowed_ips: match &input.allowed_ips {
                ListInput::Text(t) => t.clone(),
                ListInput::Items(i) => i.join("\n"),
            },
            limit_permissions: input.permissions.is_some(),
            permissions: input.permissions.clone().unwrap_or_default(),
        }
    }

    fn checked(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// One plan in the list.
struct Row {
    id: String,
    name: String,
    description: String,
    summary: String,
    keys: i64,
}

impl Row {
    fn of(l: &Listed) -> Self {
        Row {
            id: l.plan.id.clone(),
            name: l.plan.name.clone(),
            description: l.plan.description.clone(),
            summary: super::keys::create::plan_summary(&l.plan),
            keys: l.keys,
        }
    }
}

#[derive(Template)]
#[template(path = "settings/plans.html")]
struct PlansPage {
    layout: Layout,
    plans: Vec<Row>,
    form: Fields,
    catalog: Vec<Permission>,
    management: &'static [&'static str],
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "settings/plan.html")]
struct PlanPage {
    layout: Layout,
    id: String,
    keys: i64,
    form: Fields,
    catalog: Vec<Permission>,
    management: &'static [&'static str],
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "settings/plan_delete.html")]
struct DeletePage {
    layout: Layout,
    id: String,
    name: String,
    keys: i64,
}

impl PlansPage {
    fn management_text(&self, p: &str) -> &'static str {
        super::keys::create::management_text(p)
    }
}

impl PlanPage {
    fn management_text(&self, p: &str) -> &'static str {
        super::keys::create::management_text(p)
    }
}

/// The workspace's permission catalog, for the permissions fieldset.
async fn catalog(
    state: &web::Data<AppState>,
    user: &CurrentUser,
) -> Result<Vec<Permission>, AppError> {
    let ws = user.ctx().workspace_id().to_owned();
    super::db(state, move |c| Ok(crate::db::permissions::active(c, &ws)?)).await
}

async fn list_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    form: Fields,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let plans = uc::list(state, &user.ctx()).await?;
    let page = PlansPage {
        layout: Layout::new(session, user, "Plans", "settings")?,
        plans: plans.iter().map(Row::of).collect(),
        form,
        catalog: catalog(state, user).await?,
        management: &management::ALL,
        errors,
    };
    render(&page, status)
}

#[get("/workspace/settings/plans")]
pub async fn plans_page(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    user.ctx().authorize(Action::ManageSettings)?;
    list_page(
        &state,
        &session,
        &user,
        Fields::of(&PlanInput::default()),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct PlanForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    rate_limit: String,
    #[serde(default)]
    quota_limit: String,
    #[serde(default)]
    quota_period: String,
    #[serde(default)]
    quota_refill: String,
    #[serde(default)]
    quota_refill_period: String,
    #[serde(default)]
    allowed_ips: String,
    /// `only`: keys may hold only the ticked permissions; else any.
    #[serde(default)]
    permission_limit: String,
    #[serde(default)]
    permissions: Vec<String>,
}

impl PlanForm {
    fn input(self) -> PlanInput {
        PlanInput {
            name: self.name,
            description: self.description,
            rate_limit: self.rate_limit,
            quota: super::keys::actions::quota_input(
                &self.quota_limit,
                &self.quota_period,
                &self.quota_refill,
                &self.quota_refill_period,
            ),
            allowed_ips: ListInput::Text(self.allowed_ips),
            permissions: (self.permission_limit == "only").then_some(self.permissions),
        }
    }
}

#[post("/workspace/settings/plans")]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    user.ctx().authorize(Action::ManageSettings)?;
    let input = super::keys::parse_form::<PlanForm>(&body)?.input();
    match uc::create(&state, &user.ctx(), input.clone()).await {
        Ok(made) => {
            session::set_flash(
                &session,
                Flash::success(format!(
                    "The plan \u{201c}{}\u{201d} was created. Choose it when you create or edit a key.",
                    made.name
                )),
            )?;
            Ok(see_other(BASE))
        }
        Err(Error::Invalid(errors)) => {
            list_page(
                &state,
                &session,
                &user,
                Fields::of(&input),
                FormErrors::from(errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn plan_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    current: &Listed,
    form: Fields,
    errors: FormErrors,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let page = PlanPage {
        layout: Layout::new(session, user, current.plan.name.clone(), "settings")?,
        id: current.plan.id.clone(),
        keys: current.keys,
        form,
        catalog: catalog(state, user).await?,
        management: &management::ALL,
        errors,
    };
    render(&page, status)
}

#[get("/workspace/settings/plans/{id}")]
pub async fn plan_detail(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let current = uc::get(&state, &user.ctx(), &id).await?;
    let form = Fields::of(&uc::input_of(&current.plan));
    plan_page(
        &state,
        &session,
        &user,
        &current,
        form,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[post("/workspace/settings/plans/{id}")]
pub async fn save(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let current = uc::get(&state, &user.ctx(), &id).await?;
    let input = super::keys::parse_form::<PlanForm>(&body)?.input();
    match uc::update(&state, &user.ctx(), &id, input.clone()).await {
        Ok(saved) => {
            session::set_flash(
                &session,
                Flash::success(format!(
                    "The plan \u{201c}{}\u{201d} was saved; its {} key(s) follow it from now on.",
                    saved.plan.name, saved.keys
                )),
            )?;
            Ok(see_other(BASE))
        }
        Err(Error::Invalid(errors)) => {
            plan_page(
                &state,
                &session,
                &user,
                &current,
                Fields::of(&input),
                FormErrors::from(errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/workspace/settings/plans/{id}/delete")]
pub async fn delete_confirm(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let current = uc::get(&state, &user.ctx(), &id).await?;
    let page = DeletePage {
        layout: Layout::new(&session, &user, "Delete plan", "settings")?,
        id: current.plan.id,
        name: current.plan.name,
        keys: current.keys,
    };
    render(&page, StatusCode::OK)
}

#[post("/workspace/settings/plans/{id}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let gone = uc::delete(&state, &user.ctx(), &id).await?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "The plan \u{201c}{}\u{201d} was deleted; its {} key(s) keep its settings as their own.",
            gone.plan.name, gone.keys
        )),
    )?;
    Ok(see_other(BASE))
}
