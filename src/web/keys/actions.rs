//! What is done to one key from its row or page (disable, enable, review,
//! edit, regenerate, revoke, delete and their confirmation), and bulk revoke.

use super::{
    Call, KeyAct, KeyTarget, Message, ReturnForm, ReturnQuery, SecretView, check_nonce, key_error,
    parse_form, safe_return, when,
};
use crate::db::DbConn;
use crate::db::events::AuditContext;
use crate::db::keys::{self, ApiKey, KeyError};
use crate::db::workspaces;
use crate::domain::ids;
use crate::domain::keys as dk;
use crate::domain::policy::Action;
use crate::error::AppError;
use crate::web::session::{self, Flash};
use crate::web::{FormErrors, authorize, db};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

// ---- row actions -------------------------------------------------------------

/// The plain-form changes to one key: each writes, says what it did and
/// goes back to where it was asked from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowAction {
    Disable,
    Enable,
    Review,
    Revoke,
    Delete,
}

impl RowAction {
    /// What the policy is asked before the change.
    fn act(self) -> KeyAct {
        match self {
            RowAction::Disable | RowAction::Enable | RowAction::Revoke => KeyAct::Revoke,
            RowAction::Review => KeyAct::Review,
            RowAction::Delete => KeyAct::Manage,
        }
    }

    fn apply(self, c: &mut DbConn, ctx: &AuditContext, key: &ApiKey) -> Result<(), KeyError> {
        match self {
            RowAction::Disable => keys::set_disabled(c, ctx, key, true).map(drop),
            RowAction::Enable => keys::set_disabled(c, ctx, key, false).map(drop),
            RowAction::Review => keys::mark_reviewed(c, ctx, key),
            RowAction::Revoke => keys::revoke(c, ctx, key),
            RowAction::Delete => keys::delete(c, ctx, key),
        }
    }

    fn message(self, name: &str) -> String {
        match self {
            RowAction::Disable => format!(
                "\"{name}\" is disabled: requests with it are refused until you enable it again."
            ),
            RowAction::Enable => format!("\"{name}\" is enabled again."),
            RowAction::Review => format!("\"{name}\" was marked as reviewed."),
            RowAction::Revoke => {
                format!("\"{name}\" was revoked. Requests with it are refused from now on.")
            }
            RowAction::Delete => {
                format!("\"{name}\" was deleted. Its events stay in the audit trail.")
            }
        }
    }
}

/// Authorize, apply, flash and go back: the whole of a row action.
async fn key_action(
    target: KeyTarget,
    action: RowAction,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(action.act()).await?;
    let ctx = call.user.audit();
    let k = key.clone();
    db(&call.state, move |c| {
        action.apply(c, &ctx, &k).map_err(key_error)
    })
    .await?;
    session::set_flash(&call.session, Flash::success(action.message(&key.name)))?;
    let back = safe_return(form.return_to.as_deref(), Some(&key));
    // A deleted key's own page is gone: go back to its list instead.
    let back = if action == RowAction::Delete && back.starts_with("/keys/") {
        safe_return(None, Some(&key))
    } else {
        back
    };
    Ok(call.done(&back))
}

#[post("/keys/{id}/disable")]
pub async fn disable(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, RowAction::Disable, form).await
}

#[post("/keys/{id}/enable")]
pub async fn enable(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, RowAction::Enable, form).await
}

/// Clear the "creator removed" flag (admins).
#[post("/keys/{id}/review")]
pub async fn review(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, RowAction::Review, form).await
}

#[post("/keys/{id}/revoke")]
pub async fn revoke(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, RowAction::Revoke, form).await
}

#[post("/keys/{id}/delete")]
pub async fn delete(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, RowAction::Delete, form).await
}

// ---- shared with the management API ---------------------------------------

/// Save a key's editable details (name, description, tags, rate limit):
/// the edit dialog and the management API.
pub fn save_details(
    c: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    details: &keys::Details,
) -> Result<ApiKey, KeyError> {
    // The owner's email and name stay searchable under the new name.
    let owner = match &key.owner_id {
        Some(owner) => crate::db::users::get(c, &key.workspace_id, owner)?
            .map(|u| format!("{} {}", u.email, u.name)),
        None => None,
    };
    keys::update_details(c, ctx, key, owner.as_deref(), details)
}

/// Give a key a new secret, its expiry shortened to the workspace's
/// maximum (never extended): the regenerate dialog and the management API.
pub fn regenerate_within_limits(
    c: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    facts: &dk::SecretFacts,
    grace: chrono::TimeDelta,
    nonce: &str,
) -> Result<ApiKey, KeyError> {
    let ws = workspaces::get(c, &key.workspace_id)?;
    let cap = ws
        .max_expiry_days
        .map(|d| crate::db::now() + chrono::TimeDelta::days(i64::from(d)));
    keys::regenerate(c, ctx, key, facts, grace, nonce, cap)
}

// ---- edit -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "keys/edit.html")]
struct EditForm {
    csrf: String,
    key: ApiKey,
    return_to: String,
    name: String,
    description: String,
    tags: String,
    rate_limit: String,
    /// Whether the limit holds across instances.
    rate_hint: &'static str,
    errors: FormErrors,
}

#[get("/keys/{id}/edit")]
pub async fn edit_form(
    target: KeyTarget,
    query: web::Query<ReturnQuery>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(KeyAct::Manage).await?;
    let view = EditForm {
        rate_hint: super::rate_limit_hint(&call.state),
        csrf: session::csrf_token(&call.session)?,
        return_to: safe_return(query.return_to.as_deref(), Some(&key)),
        name: key.name.clone(),
        description: key.description.clone(),
        tags: key.tag_list().join(", "),
        rate_limit: key.rate_limit.map(|r| r.to_string()).unwrap_or_default(),
        key,
        errors: FormErrors::default(),
    };
    call.fragment_or_page("Edit API key", "", &view, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct EditBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    rate_limit: String,
    return_to: Option<String>,
}

#[post("/keys/{id}/edit")]
pub async fn edit(target: KeyTarget, form: web::Form<EditBody>) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(KeyAct::Manage).await?;
    let form = form.into_inner();
    let return_to = safe_return(form.return_to.as_deref(), Some(&key));
    let mut errors = FormErrors::default();
    let name = errors.check(dk::parse_name(&form.name));
    let description = errors.check(dk::parse_description(&form.description));
    let tags = errors.check(dk::parse_tags(&form.tags));
    let rate_limit = errors.check(dk::parse_rate_limit(&form.rate_limit));
    let (Some(name), Some(description), Some(tags), Some(rate_limit)) =
        (name, description, tags, rate_limit)
    else {
        let view = EditForm {
            rate_hint: super::rate_limit_hint(&call.state),
            csrf: session::csrf_token(&call.session)?,
            key,
            return_to,
            name: form.name,
            description: form.description,
            tags: form.tags,
            rate_limit: form.rate_limit,
            errors,
        };
        return call.fragment_or_page("Edit API key", "", &view, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let ctx = call.user.audit();
    let k = key.clone();
    let saved_name = name.clone();
    db(&call.state, move |c| {
        save_details(
            c,
            &ctx,
            &k,
            &keys::Details {
                name,
                description,
                tags,
                rate_limit,
            },
        )
        .map_err(key_error)
    })
    .await?;
    session::set_flash(
        &call.session,
        Flash::success(format!("\"{saved_name}\" was saved.")),
    )?;
    Ok(call.done(&return_to))
}

// ---- regenerate, revoke, delete --------------------------------------------

/// The confirmation shown before regenerate, revoke and delete.
#[derive(Template)]
#[template(path = "keys/confirm.html")]
struct Confirm {
    csrf: String,
    key: ApiKey,
    what: &'static str,
    return_to: String,
    nonce: String,
    errors: FormErrors,
}

impl Confirm {
    fn action(&self) -> String {
        format!("/keys/{}/{}", self.key.id, self.what)
    }
}

/// The confirmation before regenerate, revoke or delete.
#[get("/keys/{id}/{what}")]
pub async fn confirm_form(
    target: KeyTarget,
    path: web::Path<(String, String)>,
    query: web::Query<ReturnQuery>,
) -> Result<HttpResponse, AppError> {
    let (act, what) = match path.1.as_str() {
        "regenerate" => (KeyAct::Manage, "regenerate"),
        "revoke" => (KeyAct::Revoke, "revoke"),
        "delete" => (KeyAct::Manage, "delete"),
        _ => return Err(AppError::NotFound),
    };
    let (call, key) = target.load(act).await?;
    let now = crate::db::now();
    if what == "revoke" && !key.status(now).can_revoke() {
        return Err(AppError::BadRequest(
            "Only active or inactive keys can be revoked.".into(),
        ));
    }
    if what == "regenerate" && key.revoked_at.is_some() {
        return Err(AppError::BadRequest(
            "A revoked key cannot be regenerated. Create a new key instead.".into(),
        ));
    }
    let view = Confirm {
        csrf: session::csrf_token(&call.session)?,
        return_to: safe_return(query.return_to.as_deref(), Some(&key)),
        key,
        what,
        nonce: ids::new_token(),
        errors: FormErrors::default(),
    };
    call.fragment_or_page("Confirm", "", &view, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RegenerateBody {
    #[serde(default)]
    grace: String,
    #[serde(default)]
    nonce: String,
    return_to: Option<String>,
}

#[post("/keys/{id}/regenerate")]
pub async fn regenerate(
    target: KeyTarget,
    form: web::Form<RegenerateBody>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(KeyAct::Manage).await?;
    let form = form.into_inner();
    let return_to = safe_return(form.return_to.as_deref(), Some(&key));
    let mut errors = FormErrors::default();
    let Some(grace) = errors.check(dk::parse_grace(&form.grace)) else {
        let view = Confirm {
            csrf: session::csrf_token(&call.session)?,
            key,
            what: "regenerate",
            return_to,
            nonce: form.nonce,
            errors,
        };
        return call.fragment_or_page("Confirm", "", &view, StatusCode::UNPROCESSABLE_ENTITY);
    };
    check_nonce(&form.nonce)?;
    let (secret, facts) = dk::generate(key.environment());
    let ctx = call.user.audit();
    let k = key.clone();
    let nonce = form.nonce.clone();
    let fresh = db(&call.state, move |c| {
        match regenerate_within_limits(c, &ctx, &k, &facts, grace, &nonce) {
            Ok(k) => Ok(Some(k)),
            Err(KeyError::DuplicateRequest) => Ok(None),
            Err(e) => Err(key_error(e)),
        }
    })
    .await?;
    let Some(fresh) = fresh else {
        let view = Message {
            title: "Already regenerated",
            text: "This form was already submitted and the key was regenerated then. The new secret was shown once and cannot be shown again; if you did not save it, regenerate the key again.",
            back: &return_to,
        };
        return call.fragment_or_page("Already regenerated", "", &view, StatusCode::CONFLICT);
    };
    let now = crate::db::now();
    let view = SecretView {
        name: &fresh.name,
        id: &fresh.id,
        secret: secret.expose(),
        environment: fresh.environment(),
        back: return_to.clone(),
        regenerated: true,
        grace_until: fresh.grace_until(now).map(|t| when(Some(t), "")),
        shortened_to: (fresh.expires_at != key.expires_at).then(|| when(fresh.expires_at, "")),
        api_base: call.public_base(),
    };
    session::set_flash(
        &call.session,
        Flash::success(format!("\"{}\" has a new secret.", fresh.name)),
    )?;
    call.fragment_or_page("Save your key", "", &view, StatusCode::OK)
}

// ---- bulk revoke -------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct BulkBody {
    #[serde(default)]
    ids: Vec<String>,
    return_to: Option<String>,
}

#[derive(Template)]
#[template(path = "keys/bulk.html")]
struct BulkConfirm {
    csrf: String,
    keys: Vec<ApiKey>,
    return_to: String,
}

/// Load the selected keys, all of which the actor must be allowed to
/// revoke; any unknown or foreign id fails the whole request.
async fn load_selected(call: &Call, ids: Vec<String>) -> Result<Vec<ApiKey>, AppError> {
    if ids.is_empty() {
        return Err(AppError::BadRequest(
            "Select at least one key to revoke.".into(),
        ));
    }
    if ids.len() > 500 {
        return Err(AppError::BadRequest(
            "Select at most 500 keys at a time.".into(),
        ));
    }
    let ws = call.user.actor.workspace_id.clone();
    let wanted = ids.clone();
    let found = db(&call.state, move |c| Ok(keys::get_many(c, &ws, &wanted)?)).await?;
    let mut unique = ids;
    unique.sort();
    unique.dedup();
    if found.len() != unique.len() {
        return Err(AppError::NotFound);
    }
    for key in &found {
        authorize(&call.user, Action::RevokeKey(key.key_ref()))?;
    }
    Ok(found)
}

#[post("/keys/bulk-revoke")]
pub async fn bulk_confirm(call: Call, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let form: BulkBody = parse_form(&body)?;
    let selected = load_selected(&call, form.ids).await?;
    let view = BulkConfirm {
        csrf: session::csrf_token(&call.session)?,
        return_to: safe_return(form.return_to.as_deref(), selected.first()),
        keys: selected,
    };
    call.fragment_or_page("Revoke selected keys", "", &view, StatusCode::OK)
}

#[post("/keys/bulk-revoke/confirm")]
pub async fn bulk_revoke(call: Call, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let form: BulkBody = parse_form(&body)?;
    let selected = load_selected(&call, form.ids).await?;
    let return_to = safe_return(form.return_to.as_deref(), selected.first());
    let ctx = call.user.audit();
    let (revoked, skipped) = db(&call.state, move |c| {
        keys::revoke_many(c, &ctx, &selected).map_err(key_error)
    })
    .await?;
    let mut message = format!(
        "{revoked} key{} revoked.",
        if revoked == 1 { "" } else { "s" }
    );
    if !skipped.is_empty() {
        message.push_str(&format!(
            " Skipped (already revoked or expired): {}.",
            skipped.join(", ")
        ));
    }
    session::set_flash(&call.session, Flash::success(message))?;
    Ok(call.done(&return_to))
}
