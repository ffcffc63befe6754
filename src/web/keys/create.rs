//! The create dialog and the one-time "Save your key" view.

use super::{Call, ListKind, Message, SecretView, check_nonce, parse_form};
use crate::app::Error;
use crate::app::keys::{self as uc, CreateFacts, ListInput, NewKeyInput, Once};
use crate::db::permissions;
use crate::domain::ids;
use crate::domain::keys::{Environment, Expiry};
use crate::domain::policy::management;
use crate::error::AppError;
use crate::web::FormErrors;
use crate::web::session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

/// The create form's values and errors.
#[derive(Template)]
#[template(path = "keys/new.html")]
pub struct NewKeyForm {
    pub csrf: String,
    pub kind: ListKind,
    pub catalog: Vec<permissions::Permission>,
    pub environments: [Environment; 3],
    /// The installation's key prefix (`KEYWARD_KEY_PREFIX`).
    pub key_prefix: String,
    /// Expiry presets within the workspace maximum.
    pub presets: Vec<i64>,
    /// The workspace's maximum expiry in days, if any ("never" is then not offered).
    pub max_expiry_days: Option<i32>,
    pub nonce: String,
    pub name: String,
    pub description: String,
    pub tags: String,
    pub environment: String,
    pub permissions: Vec<String>,
    pub expiry: String,
    pub expiry_date: String,
    pub rate_limit: String,
    /// What the dialog prefilled the rate limit with (the workspace's
    /// default), sent back hidden: on a plan, left as it was, it follows
    /// the plan's.
    pub rate_limit_prefill: String,
    /// Whether the limit holds across instances.
    pub rate_hint: &'static str,
    pub resources: String,
    /// The IP allowlist as typed.
    pub allowed_ips: String,
    /// The usage quota as typed.
    pub usage_quota: crate::domain::quota::QuotaInput,
    pub errors: FormErrors,
    /// Personal keys: how many count against the limit, and the limit.
    pub quota: Option<Quota>,
    /// The management permissions this user may give this kind of key.
    pub management: &'static [&'static str],
    /// Whether the workspace offers recoverable keys (issue 27).
    pub offer_recoverable: bool,
    pub recoverable: bool,
    /// The plans a key may be put on: (id, name, what it sets).
    pub plans: Vec<PlanChoice>,
    /// The chosen plan's id; empty: none.
    pub plan: String,
}

/// A plan as the create and edit dialogs offer it.
#[derive(Debug, Clone)]
pub struct PlanChoice {
    pub id: String,
    pub name: String,
    /// What it sets, in words ("600/min; 10,000 a day; 2 IP ranges").
    pub summary: String,
}

impl PlanChoice {
    pub fn of(p: &crate::db::plans::Plan) -> Self {
        PlanChoice {
            id: p.id.clone(),
            name: p.name.clone(),
            summary: plan_summary(p),
        }
    }
}

/// A plan's settings in a few words.
pub fn plan_summary(p: &crate::db::plans::Plan) -> String {
    let mut parts = Vec::new();
    if let Some(r) = p.rate_limit {
        parts.push(format!("{r} requests a minute"));
    }
    if let Some(q) = p.quota() {
        parts.push(q.describe());
    }
    let ips = p.allowed_ip_list().len();
    if ips > 0 {
        parts.push(format!(
            "{ips} IP allowlist entr{}",
            if ips == 1 { "y" } else { "ies" }
        ));
    }
    if let Some(list) = p.permission_list() {
        parts.push(format!(
            "at most {} permission{}",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        "no limits".to_owned()
    } else {
        parts.join("; ")
    }
}

/// "2 of 3 personal keys used".
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub used: i64,
    pub limit: i64,
}

impl Quota {
    pub fn full(&self) -> bool {
        self.used >= self.limit
    }
}

impl NewKeyForm {
    fn action(&self) -> &'static str {
        self.kind.base()
    }

    fn heading(&self) -> &'static str {
        match self.kind {
            ListKind::Personal => "Create a personal API key",
            _ => "Create a workspace API key",
        }
    }

    fn checked(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// At the limit, the dialog explains instead of offering a form that
    /// would fail.
    fn at_limit(&self) -> bool {
        self.quota.is_some_and(|q| q.full())
    }

    fn limit(&self) -> i64 {
        self.quota.map_or(0, |q| q.limit)
    }

    fn management_text(&self, permission: &str) -> &'static str {
        management_text(permission)
    }

    fn preset_selected(&self, days: &i64) -> bool {
        self.expiry == days.to_string()
    }
}

/// The form with what the workspace allows, and the actor's personal
/// keys against the limit.
fn form(call: &Call, kind: ListKind, facts: CreateFacts) -> Result<NewKeyForm, AppError> {
    let max = facts.workspace.max_expiry_days;
    let prefill = facts
        .workspace
        .default_rate_limit
        .map(|r| r.to_string())
        .unwrap_or_default();
    Ok(NewKeyForm {
        rate_hint: super::rate_limit_hint(&call.state),
        csrf: session::csrf_token(&call.session)?,
        kind,
        catalog: facts.catalog,
        environments: Environment::ALL,
        key_prefix: call.state.config.leaks.key_prefix.clone(),
        presets: uc::presets_within(max),
        max_expiry_days: max,
        nonce: ids::new_token(),
        name: String::new(),
        description: String::new(),
        tags: String::new(),
        environment: Environment::Live.as_str().to_owned(),
        permissions: Vec::new(),
        expiry: uc::default_expiry_days(max).to_string(),
        expiry_date: String::new(),
        rate_limit: prefill.clone(),
        rate_limit_prefill: prefill,
        resources: String::new(),
        allowed_ips: String::new(),
        usage_quota: crate::domain::quota::QuotaInput::of(None),
        errors: FormErrors::default(),
        quota: facts.personal.map(|(used, limit)| Quota { used, limit }),
        management: uc::grantable(call.user.actor.role, kind.key_kind()),
        offer_recoverable: crate::app::recover::offered(&call.state, &facts.workspace),
        recoverable: false,
        plans: facts.plans.iter().map(PlanChoice::of).collect(),
        plan: String::new(),
    })
}

async fn new_form(call: Call, kind: ListKind) -> Result<HttpResponse, AppError> {
    let facts = uc::create_facts(&call.state, &call.ctx(), kind.key_kind()).await?;
    let form = form(&call, kind, facts)?;
    call.fragment_or_page("Create API key", kind.nav(), &form, StatusCode::OK)
}

#[get("/account/keys/new")]
pub async fn new_personal(call: Call) -> Result<HttpResponse, AppError> {
    new_form(call, ListKind::Personal).await
}

#[get("/workspace/keys/new")]
pub async fn new_workspace(call: Call) -> Result<HttpResponse, AppError> {
    new_form(call, ListKind::Workspace).await
}

#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    expiry_date: String,
    #[serde(default)]
    rate_limit: String,
    #[serde(default)]
    rate_limit_prefill: String,
    #[serde(default)]
    resources: String,
    #[serde(default)]
    allowed_ips: String,
    #[serde(default)]
    quota_limit: String,
    #[serde(default)]
    quota_period: String,
    #[serde(default)]
    quota_refill: String,
    #[serde(default)]
    quota_refill_period: String,
    /// The "recoverable" checkbox: present when ticked.
    #[serde(default)]
    recoverable: Option<String>,
    #[serde(default)]
    plan: String,
}

/// What a management permission lets a key do, for the create dialog.
pub fn management_text(permission: &str) -> &'static str {
    match permission {
        management::KEYS_READ => "List and read keys",
        management::KEYS_WRITE => "Create, edit, regenerate, switch off, revoke and delete keys",
        management::KEYS_REVEAL => "Show recoverable keys' secrets again",
        management::EVENTS_READ => "Read the audit trail",
        management::WEBHOOKS_READ => "List webhook endpoints and their delivery logs",
        management::WEBHOOKS_WRITE => "Add, edit and delete webhook endpoints",
        management::SERVICE_ACCOUNTS_READ => "List and read service accounts and their keys",
        management::SERVICE_ACCOUNTS_WRITE => {
            "Create, edit, disable and delete service accounts, and create their keys"
        }
        management::SETTINGS_READ => "Read workspace settings (single sign-on)",
        management::SETTINGS_WRITE => "Change workspace settings (single sign-on)",
        management::PLANS_READ => "List and read plans",
        management::PLANS_WRITE => {
            "Create, edit and delete plans (an edit changes every key on it)"
        }
        _ => "",
    }
}

async fn create(call: Call, kind: ListKind, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let ctx = call.ctx();
    // Refused before the form is read, as every page does.
    ctx.authorize(kind.key_kind().create_action())?;
    let mut form: CreateForm = parse_form(&body)?;
    check_nonce(&form.nonce)?;
    // The dialog prefills the workspace's default rate limit. On a plan,
    // that prefill left as it was is not the key's own choice: it follows
    // the plan's (any other value, or an emptied field, is as typed).
    let prefill = form.rate_limit_prefill.trim();
    if !form.plan.trim().is_empty() && !prefill.is_empty() && form.rate_limit.trim() == prefill {
        form.rate_limit.clear();
    }
    let today = crate::db::now().date();
    let input = NewKeyInput {
        name: form.name.clone(),
        description: form.description.clone(),
        tags: ListInput::Text(form.tags.clone()),
        environment: form.environment.clone(),
        permissions: form.permissions.clone(),
        expiry: Some(Expiry::parse(&form.expiry, &form.expiry_date, today)),
        rate_limit: form.rate_limit.clone(),
        resources: ListInput::Text(form.resources.clone()),
        allowed_ips: ListInput::Text(form.allowed_ips.clone()),
        quota: super::actions::quota_input(
            &form.quota_limit,
            &form.quota_period,
            &form.quota_refill,
            &form.quota_refill_period,
        ),
        recoverable: form.recoverable.is_some(),
        plan: form.plan.clone(),
    };
    let once = Once::Nonce(form.nonce.clone());
    let back = kind.url("");
    let made = match uc::create(&call.state, &ctx, kind.key_kind(), input, once).await {
        Ok(made) => made,
        Err(Error::Invalid(errors)) => {
            // The form again, as sent, with each message next to its field.
            let facts = uc::create_facts(&call.state, &ctx, kind.key_kind()).await?;
            let view = NewKeyForm {
                nonce: form.nonce,
                name: form.name,
                description: form.description,
                tags: form.tags,
                environment: form.environment,
                permissions: form.permissions,
                expiry: form.expiry,
                expiry_date: form.expiry_date,
                rate_limit: form.rate_limit,
                resources: form.resources,
                allowed_ips: form.allowed_ips,
                usage_quota: super::actions::quota_input(
                    &form.quota_limit,
                    &form.quota_period,
                    &form.quota_refill,
                    &form.quota_refill_period,
                ),
                recoverable: form.recoverable.is_some(),
                plan: form.plan,
                errors: FormErrors::from(errors),
                ..self::form(&call, kind, facts)?
            };
            return call.fragment_or_page(
                "Create API key",
                kind.nav(),
                &view,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(e) if e.conflict_code() == Some("DUPLICATE_REQUEST") => {
            let view = Message {
                title: "Already created",
                text: "This form was already submitted and the key was created then. Its secret was shown once and cannot be shown again; if you did not save it, regenerate the key.",
                back: &back,
            };
            return call.fragment_or_page(
                "Already created",
                kind.nav(),
                &view,
                StatusCode::CONFLICT,
            );
        }
        Err(e) => return Err(e.into()),
    };
    let key = made.key;
    let Some(secret) = made.secret else {
        return Err(AppError::Internal("a new key without its secret".into()));
    };
    let view = SecretView {
        name: &key.name,
        id: &key.id,
        secret: secret.expose(),
        environment: key.environment(),
        back,
        regenerated: false,
        grace_until: None,
        shortened_to: None,
        api_base: call.public_base(),
        recoverable: key.recoverable,
    };
    // Shown (and announced) on the list the user returns to.
    session::set_flash(
        &call.session,
        session::Flash::success(format!("\"{}\" was created.", key.name)),
    )?;
    call.fragment_or_page("Save your key", kind.nav(), &view, StatusCode::OK)
}

#[post("/account/keys")]
pub async fn create_personal(call: Call, body: web::Bytes) -> Result<HttpResponse, AppError> {
    create(call, ListKind::Personal, body).await
}

#[post("/workspace/keys")]
pub async fn create_workspace(call: Call, body: web::Bytes) -> Result<HttpResponse, AppError> {
    create(call, ListKind::Workspace, body).await
}
