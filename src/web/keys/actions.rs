//! What is done to one key from its row or page (disable, enable, review,
//! edit, regenerate, revoke, delete and their confirmation), and bulk revoke.

use super::{
    Call, KeyTarget, Message, ReturnForm, ReturnQuery, SecretView, check_nonce, parse_form,
    safe_return, when,
};
use crate::app::Error;
use crate::app::keys::{self as uc, Act, Edit, ListInput, Once, Switch};
use crate::db::keys::ApiKey;
use crate::domain::ids;
use crate::domain::quota::QuotaInput;
use crate::error::AppError;
use crate::web::FormErrors;
use crate::web::session::{self, Flash};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

// ---- row actions -------------------------------------------------------------

/// What a row action says it did.
fn message(action: Switch, name: &str) -> String {
    match action {
        Switch::Disable => format!(
            "\"{name}\" is disabled: requests with it are refused until you enable it again."
        ),
        Switch::Enable => format!("\"{name}\" is enabled again."),
        Switch::Review => format!("\"{name}\" was marked as reviewed."),
        Switch::Revoke => {
            format!("\"{name}\" was revoked. Requests with it are refused from now on.")
        }
        Switch::Delete => {
            format!("\"{name}\" was deleted. Its events stay in the audit trail.")
        }
    }
}

/// Apply, flash and go back: the whole of a row action.
async fn key_action(
    target: KeyTarget,
    action: Switch,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    let KeyTarget { call, id } = target;
    let key = uc::switch(&call.state, &call.ctx(), &id, action).await?;
    session::set_flash(&call.session, Flash::success(message(action, &key.name)))?;
    let back = safe_return(form.return_to.as_deref(), Some(&key));
    // A deleted key's own page is gone: go back to its list instead.
    let back = if action == Switch::Delete && back.starts_with("/keys/") {
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
    key_action(target, Switch::Disable, form).await
}

#[post("/keys/{id}/enable")]
pub async fn enable(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, Switch::Enable, form).await
}

/// Clear the "creator removed" flag (admins).
#[post("/keys/{id}/review")]
pub async fn review(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, Switch::Review, form).await
}

#[post("/keys/{id}/revoke")]
pub async fn revoke(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, Switch::Revoke, form).await
}

#[post("/keys/{id}/delete")]
pub async fn delete(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    key_action(target, Switch::Delete, form).await
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
    /// One entry a line.
    allowed_ips: String,
    usage_quota: QuotaInput,
    errors: FormErrors,
    /// The plans the key may be put on.
    plans: Vec<super::create::PlanChoice>,
    /// The chosen plan's id; empty: none.
    plan: String,
}

/// The plans the edit dialog offers.
async fn plan_choices(call: &Call) -> Result<Vec<super::create::PlanChoice>, AppError> {
    Ok(crate::app::plans::choices(&call.state, &call.ctx())
        .await?
        .iter()
        .map(super::create::PlanChoice::of)
        .collect())
}

#[get("/keys/{id}/edit")]
pub async fn edit_form(
    target: KeyTarget,
    query: web::Query<ReturnQuery>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    uc::refuse_revoked(&key)?;
    let view = EditForm {
        rate_hint: super::rate_limit_hint(&call.state),
        csrf: session::csrf_token(&call.session)?,
        return_to: safe_return(query.return_to.as_deref(), Some(&key)),
        name: key.name.clone(),
        description: key.description.clone(),
        tags: key.tag_list().join(", "),
        rate_limit: key.rate_limit.map(|r| r.to_string()).unwrap_or_default(),
        allowed_ips: key.allowed_ip_list().join("\n"),
        usage_quota: QuotaInput::of(key.quota().as_ref()),
        plans: plan_choices(&call).await?,
        plan: key.plan_id.clone().unwrap_or_default(),
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
    return_to: Option<String>,
    /// Sent only where the dialog offers plans.
    plan: Option<String>,
}

/// The quota a create or edit form sent.
pub fn quota_input(limit: &str, period: &str, refill: &str, refill_period: &str) -> QuotaInput {
    QuotaInput {
        limit: limit.to_owned(),
        period: period.to_owned(),
        refill: refill.to_owned(),
        refill_period: refill_period.to_owned(),
    }
}

#[post("/keys/{id}/edit")]
pub async fn edit(target: KeyTarget, form: web::Form<EditBody>) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    let form = form.into_inner();
    let return_to = safe_return(form.return_to.as_deref(), Some(&key));
    let edit = Edit {
        name: Some(form.name.clone()),
        description: Some(form.description.clone()),
        tags: Some(ListInput::Text(form.tags.clone())),
        rate_limit: Some(form.rate_limit.clone()),
        allowed_ips: Some(ListInput::Text(form.allowed_ips.clone())),
        quota: Some(quota_input(
            &form.quota_limit,
            &form.quota_period,
            &form.quota_refill,
            &form.quota_refill_period,
        )),
        plan: form.plan.clone(),
    };
    let saved = match uc::update(&call.state, &call.ctx(), &key.id, edit).await {
        Ok(saved) => saved,
        Err(Error::Invalid(errors)) => {
            let view = EditForm {
                rate_hint: super::rate_limit_hint(&call.state),
                csrf: session::csrf_token(&call.session)?,
                key,
                return_to,
                name: form.name,
                description: form.description,
                tags: form.tags,
                rate_limit: form.rate_limit,
                allowed_ips: form.allowed_ips,
                usage_quota: quota_input(
                    &form.quota_limit,
                    &form.quota_period,
                    &form.quota_refill,
                    &form.quota_refill_period,
                ),
                errors: FormErrors::from(errors),
                plans: plan_choices(&call).await?,
                plan: form.plan.unwrap_or_default(),
            };
            return call.fragment_or_page(
                "Edit API key",
                "",
                &view,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(e) => return Err(e.into()),
    };
    session::set_flash(
        &call.session,
        Flash::success(format!("\"{}\" was saved.", saved.name)),
    )?;
    Ok(call.done(&return_to))
}

// ---- quota top-up ------------------------------------------------------------

#[derive(Deserialize)]
pub struct TopUpBody {
    /// `add` (the default) or `set`.
    #[serde(default)]
    how: String,
    #[serde(default)]
    amount: String,
}

/// Top a key's quota up from its page: add uses, or set what is left.
#[post("/keys/{id}/quota")]
pub async fn top_up(
    target: KeyTarget,
    form: web::Form<TopUpBody>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    let form = form.into_inner();
    let input = if form.how == "set" {
        uc::TopUp {
            set: Some(form.amount),
            add: None,
        }
    } else {
        uc::TopUp {
            set: None,
            add: Some(form.amount),
        }
    };
    let back = format!("/keys/{}", key.id);
    let flash = match uc::top_up(&call.state, &call.ctx(), &key.id, input).await {
        Ok(left) => Flash::success(format!(
            "\"{}\" was topped up: {} uses left.",
            key.name,
            crate::domain::quota::thousands(left.remaining)
        )),
        Err(Error::Invalid(errors)) => Flash::error(format!(
            "Nothing was changed: {}",
            errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        Err(e) => return Err(e.into()),
    };
    session::set_flash(&call.session, flash)?;
    Ok(call.done(&back))
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
        "regenerate" => (Act::Manage, "regenerate"),
        "revoke" => (Act::Revoke, "revoke"),
        "delete" => (Act::Manage, "delete"),
        _ => return Err(AppError::NotFound),
    };
    let (call, key) = target.load(act).await?;
    // The same refusals as the change itself, before asking to confirm it.
    match what {
        "revoke" => uc::refuse_unrevocable(&key)?,
        "regenerate" => uc::refuse_revoked(&key)?,
        _ => {}
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
    let (call, key) = target.load(Act::Manage).await?;
    let form = form.into_inner();
    let return_to = safe_return(form.return_to.as_deref(), Some(&key));
    check_nonce(&form.nonce)?;
    let once = Once::Nonce(form.nonce.clone());
    let made = match uc::regenerate(&call.state, &call.ctx(), &key.id, &form.grace, once).await {
        Ok(made) => made,
        Err(Error::Invalid(errors)) => {
            let view = Confirm {
                csrf: session::csrf_token(&call.session)?,
                key,
                what: "regenerate",
                return_to,
                nonce: form.nonce,
                errors: FormErrors::from(errors),
            };
            return call.fragment_or_page("Confirm", "", &view, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) if e.conflict_code() == Some("DUPLICATE_REQUEST") => {
            let view = Message {
                title: "Already regenerated",
                text: "This form was already submitted and the key was regenerated then. The new secret was shown once and cannot be shown again; if you did not save it, regenerate the key again.",
                back: &return_to,
            };
            return call.fragment_or_page("Already regenerated", "", &view, StatusCode::CONFLICT);
        }
        Err(e) => return Err(e.into()),
    };
    let fresh = made.key;
    let Some(secret) = made.secret else {
        return Err(AppError::Internal("a new secret went missing".into()));
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
        recoverable: fresh.recoverable,
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

#[post("/keys/bulk-revoke")]
pub async fn bulk_confirm(call: Call, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let form: BulkBody = parse_form(&body)?;
    let selected = uc::selected(&call.state, &call.ctx(), form.ids).await?;
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
    let (selected, revoked, skipped) = uc::bulk_revoke(&call.state, &call.ctx(), form.ids).await?;
    let return_to = safe_return(form.return_to.as_deref(), selected.first());
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
