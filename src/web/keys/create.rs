//! The create dialog and the one-time "Save your key" view.

use super::{Call, ListKind, Message, SecretView, check_nonce, create_action, parse_form};
use crate::db::keys::{self, KeyError, NewKey};
use crate::db::{permissions, workspaces};
use crate::domain::ids;
use crate::domain::input::FieldError;
use crate::domain::keys::{self as dk, Environment, Expiry};
use crate::domain::policy::{self, management};
use crate::domain::role::Role;
use crate::error::AppError;
use crate::web::session;
use crate::web::{FormErrors, authorize, db};
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
    /// Whether the limit holds across instances.
    pub rate_hint: &'static str,
    pub resources: String,
    pub errors: FormErrors,
    /// Personal keys: how many count against the limit, and the limit.
    pub quota: Option<Quota>,
    /// The management permissions this user may give this kind of key.
    pub management: &'static [&'static str],
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

/// The permissions a new key may get and the workspace's limits; refused
/// while API keys are switched off for the workspace.
async fn catalog_and_workspace(
    call: &Call,
) -> Result<(Vec<permissions::Permission>, workspaces::Workspace), AppError> {
    let ws = call.user.actor.workspace_id.clone();
    let (catalog, workspace) = db(&call.state, move |c| {
        Ok((permissions::active(c, &ws)?, workspaces::get(c, &ws)?))
    })
    .await?;
    if workspace.api_keys_disabled_at.is_some() {
        return Err(api_keys_off());
    }
    Ok((catalog, workspace))
}

/// The actor's personal keys against the workspace limit (personal keys
/// only; active and inactive keys count, as on creation).
async fn quota(
    call: &Call,
    kind: ListKind,
    workspace: &workspaces::Workspace,
) -> Result<Option<Quota>, AppError> {
    if kind != ListKind::Personal {
        return Ok(None);
    }
    let ws = call.user.actor.workspace_id.clone();
    let me = call.user.user.id.clone();
    let used = db(&call.state, move |c| {
        Ok(keys::count_live_personal(c, &ws, &me)?)
    })
    .await?;
    Ok(Some(Quota {
        used,
        limit: i64::from(workspace.max_keys_per_user),
    }))
}

async fn new_form(call: Call, kind: ListKind) -> Result<HttpResponse, AppError> {
    authorize(&call.user, create_action(kind))?;
    let (catalog, workspace) = catalog_and_workspace(&call).await?;
    let quota = quota(&call, kind, &workspace).await?;
    let max = workspace.max_expiry_days;
    let form = NewKeyForm {
        rate_hint: super::rate_limit_hint(&call.state),
        csrf: session::csrf_token(&call.session)?,
        kind,
        catalog,
        environments: Environment::ALL,
        presets: presets_within(max),
        max_expiry_days: max,
        nonce: ids::new_token(),
        name: String::new(),
        description: String::new(),
        tags: String::new(),
        environment: Environment::Live.as_str().to_owned(),
        permissions: Vec::new(),
        expiry: default_expiry_days(max).to_string(),
        expiry_date: String::new(),
        rate_limit: workspace
            .default_rate_limit
            .map(|r| r.to_string())
            .unwrap_or_default(),
        resources: String::new(),
        errors: FormErrors::default(),
        quota,
        management: grantable(call.user.actor.role, kind),
    };
    call.fragment_or_page("Create API key", kind.nav(), &form, StatusCode::OK)
}

/// Expiry presets no longer than the workspace maximum.
fn presets_within(max: Option<i32>) -> Vec<i64> {
    dk::EXPIRY_PRESETS
        .into_iter()
        .filter(|d| max.is_none_or(|m| *d <= i64::from(m)))
        .collect()
}

fn api_keys_off() -> AppError {
    AppError::Conflict(
        "API keys are switched off for this workspace, so no key can be created. An admin can turn them back on in Settings."
            .into(),
    )
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
    resources: String,
}

/// What a management permission lets a key do, for the create dialog.
pub fn management_text(permission: &str) -> &'static str {
    match permission {
        management::KEYS_READ => "List and read keys",
        management::KEYS_WRITE => "Create, edit, regenerate, switch off, revoke and delete keys",
        management::EVENTS_READ => "Read the audit trail",
        _ => "",
    }
}

/// The management permissions a user of `role` may give a key of `kind`.
pub fn grantable(role: Role, kind: ListKind) -> &'static [&'static str] {
    policy::grantable_management(role, kind != ListKind::Personal)
}

/// A new key's fields as sent (by the create form or the management API),
/// before any check.
pub struct KeyRequest<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub tags: &'a str,
    pub environment: &'a str,
    pub permissions: &'a [String],
    /// The expiry as the sender chose it, already read from its own
    /// format; the workspace maximum is applied by [`validate`].
    pub expiry: Result<Expiry, FieldError>,
    pub rate_limit: &'a str,
    pub resources: &'a str,
}

/// A new key's fields, checked against the workspace's rules.
pub struct ValidKey {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub environment: Environment,
    pub expiry: Expiry,
    pub rate_limit: Option<i32>,
    pub resources: Vec<String>,
    pub permissions: Vec<String>,
}

/// Check a new key's fields: the one set of rules for the create dialog
/// and the management API (names, tags, the workspace's maximum expiry,
/// its permission catalog, who may grant management permissions).
pub fn validate(
    req: KeyRequest<'_>,
    catalog: &[permissions::Permission],
    workspace: &workspaces::Workspace,
    role: Role,
    kind: ListKind,
) -> Result<ValidKey, FormErrors> {
    let mut errors = FormErrors::default();
    let name = errors.check(dk::parse_name(req.name));
    let description = errors.check(dk::parse_description(req.description));
    let tags = errors.check(dk::parse_tags(req.tags));
    let environment = req.environment.parse::<Environment>().ok();
    if environment.is_none() {
        errors.add(
            "environment",
            "Choose an environment: production, staging or development.",
        );
    }
    let today = crate::db::now().date();
    let expiry = errors.check(
        req.expiry
            .and_then(|e| dk::within_max(e, workspace.max_expiry_days, today)),
    );
    let rate_limit = errors.check(dk::parse_rate_limit(req.rate_limit));
    let resources = errors.check(dk::parse_resources(req.resources));
    let management = grantable(role, kind);
    let mut chosen: Vec<String> = Vec::new();
    for p in req.permissions {
        if management::is_management(p) {
            if !management.contains(&p.as_str()) {
                errors.add(
                    "permissions",
                    if management::ALL.contains(&p.as_str()) {
                        format!("Your role cannot give \"{p}\" to this kind of key.")
                    } else {
                        format!("\"{p}\" is not a permission of keyward.")
                    },
                );
                continue;
            }
        } else if !catalog.iter().any(|c| &c.name == p) {
            errors.add(
                "permissions",
                format!("\"{p}\" is not a permission of this workspace."),
            );
            continue;
        }
        if !chosen.contains(p) {
            chosen.push(p.clone());
        }
    }
    match (
        name,
        description,
        tags,
        environment,
        expiry,
        rate_limit,
        resources,
    ) {
        (
            Some(name),
            Some(description),
            Some(tags),
            Some(environment),
            Some(expiry),
            Some(rate_limit),
            Some(resources),
        ) if errors.is_empty() => Ok(ValidKey {
            name,
            description,
            tags,
            environment,
            expiry,
            rate_limit,
            resources,
            permissions: chosen,
        }),
        _ => Err(errors),
    }
}

/// The default expiry offered for new keys: 90 days, or the longest preset
/// the workspace allows.
pub fn default_expiry_days(max: Option<i32>) -> i64 {
    presets_within(max)
        .into_iter()
        .rfind(|d| *d <= 90)
        .unwrap_or(7)
}

/// Who a new key is for, and who made it.
pub struct Creator<'a> {
    /// For a personal key: the owner's id and their search label.
    pub owner: Option<(&'a str, &'a str)>,
    /// The person the key is created by (its creator's role decides what a
    /// workspace key with management permissions may do).
    pub created_by: &'a str,
}

/// Store a validated new key (its digest only) with the workspace's limit
/// on personal keys: the one way the dialog and the API create keys.
pub fn insert(
    c: &mut crate::db::DbConn,
    ctx: &crate::db::events::AuditContext,
    creator: Creator<'_>,
    key: &ValidKey,
    facts: &dk::SecretFacts,
    workspace: &workspaces::Workspace,
    nonce: &str,
) -> Result<keys::ApiKey, KeyError> {
    let personal = creator.owner.is_some();
    keys::create(
        c,
        ctx,
        NewKey {
            owner: creator.owner,
            created_by: Some(creator.created_by),
            name: &key.name,
            description: &key.description,
            tags: &key.tags,
            permissions: &key.permissions,
            resources: &key.resources,
            facts,
            expires_at: key.expiry.expires_at(crate::db::now()),
            rate_limit: key.rate_limit,
            request_nonce: nonce,
            max_personal: personal.then_some(i64::from(workspace.max_keys_per_user)),
        },
    )
}

async fn create(call: Call, kind: ListKind, body: web::Bytes) -> Result<HttpResponse, AppError> {
    authorize(&call.user, create_action(kind))?;
    let form: CreateForm = parse_form(&body)?;
    let (catalog, workspace) = catalog_and_workspace(&call).await?;
    let today = crate::db::now().date();
    let checked = validate(
        KeyRequest {
            name: &form.name,
            description: &form.description,
            tags: &form.tags,
            environment: &form.environment,
            permissions: &form.permissions,
            expiry: Expiry::parse(&form.expiry, &form.expiry_date, today),
            rate_limit: &form.rate_limit,
            resources: &form.resources,
        },
        &catalog,
        &workspace,
        call.user.actor.role,
        kind,
    );
    check_nonce(&form.nonce)?;
    let valid = match checked {
        Ok(valid) => valid,
        Err(errors) => {
            let max_days = workspace.max_expiry_days;
            let view = NewKeyForm {
                rate_hint: super::rate_limit_hint(&call.state),
                csrf: session::csrf_token(&call.session)?,
                kind,
                catalog,
                environments: Environment::ALL,
                presets: presets_within(max_days),
                max_expiry_days: max_days,
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
                errors,
                quota: quota(&call, kind, &workspace).await?,
                management: grantable(call.user.actor.role, kind),
            };
            return call.fragment_or_page(
                "Create API key",
                kind.nav(),
                &view,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };

    let environment = valid.environment;
    let (secret, facts) = dk::generate(environment);
    let ctx = call.user.audit();
    let owner = (kind == ListKind::Personal).then(|| {
        (
            call.user.user.id.clone(),
            format!("{} {}", call.user.user.email, call.user.user.name),
        )
    });
    let me = call.user.user.id.clone();
    let nonce = form.nonce.clone();
    let created = db(&call.state, move |c| {
        let creator = Creator {
            owner: owner
                .as_ref()
                .map(|(id, label)| (id.as_str(), label.as_str())),
            created_by: &me,
        };
        match insert(c, &ctx, creator, &valid, &facts, &workspace, &nonce) {
            Ok(k) => Ok(Some(k)),
            Err(KeyError::DuplicateRequest) => Ok(None),
            Err(e @ KeyError::LimitReached(_)) => Err(AppError::Conflict(e.to_string())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let back = kind.url("");
    let Some(key) = created else {
        let view = Message {
            title: "Already created",
            text: "This form was already submitted and the key was created then. Its secret was shown once and cannot be shown again; if you did not save it, regenerate the key.",
            back: &back,
        };
        return call.fragment_or_page("Already created", kind.nav(), &view, StatusCode::CONFLICT);
    };
    let view = SecretView {
        name: &key.name,
        id: &key.id,
        secret: secret.expose(),
        environment,
        back,
        regenerated: false,
        grace_until: None,
        shortened_to: None,
        api_base: call.public_base(),
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
