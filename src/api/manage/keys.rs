//! The management API's key operations: each reads its JSON, calls the
//! use case in `app::keys`, and answers JSON.

use super::auth::{KeysRead, KeysWrite, Manager};
use super::body::{Body, Parsed, once};
use super::shapes::*;
use crate::api::problem::ApiError;
use crate::app::keys::{self as uc, Edit, ListInput, ListQuery, Made, NewKeyInput, Switch};
use crate::db::keys::{self, Cursor};
use crate::domain::input::FieldError;
use crate::domain::keys::{self as dk, Expiry, Status};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

/// List keys: an admin's key sees every key of the workspace, a normal
/// user's key only that user's personal keys. Newest first.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of keys, newest first", body = KeyPage),
        Refusals,
    )
)]
pub async fn list_keys(
    m: Manager<KeysRead>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 100."));
    }
    let after = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            ApiError::bad_request("cursor is not valid: use next_cursor of the previous page.")
        })?),
        None => None,
    };
    let workspace_only = p.kind == Some(KeyKind::Workspace);
    let Some(scope) = uc::scope_filtered(&m.ctx, p.owner.as_deref(), workspace_only)? else {
        return Ok(HttpResponse::Ok().json(KeyPage {
            keys: Vec::new(),
            next_cursor: None,
        }));
    };
    // Every filter is part of the query, so a page is full whenever another
    // follows.
    let filter = keys::Filter {
        expiring_until: p.expiring.unwrap_or(false).then(uc::expiring_until),
        status: p.status.map(Status::from),
        environment: p.environment.map(KeyEnvironment::environment),
        owner: p.kind.map(KeyKind::owner_kind),
    };
    let query = ListQuery {
        q: p.q.unwrap_or_default(),
        filter,
        after,
        limit,
    };
    let page = uc::list(&m.state, &m.ctx, scope, query).await?;
    Ok(HttpResponse::Ok().json(KeyPage {
        keys: page.keys.iter().map(|k| KeyView::of(&k.key)).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// The create dialog's field names, as the API calls them.
fn api_field(field: &'static str, expiry_field: &'static str) -> &'static str {
    match field {
        "expiry" => expiry_field,
        "expiry_date" => "expires_at",
        "rate_limit" => "rate_limit_per_minute",
        other => other,
    }
}

/// Field errors under the API's names.
pub(crate) fn renamed(e: crate::app::Error, expiry_field: &'static str) -> ApiError {
    match e {
        crate::app::Error::Invalid(errors) => ApiError::validation(
            &errors
                .into_iter()
                .map(|e| FieldError::new(api_field(e.field, expiry_field), e.message))
                .collect::<Vec<_>>(),
        ),
        other => other.into(),
    }
}

/// A key made or regenerated: 201 (create) or 200 with its secret, or 200
/// without one for a repeat.
pub(crate) fn made(made: Made, created: bool) -> HttpResponse {
    let key = made.key;
    let body = KeyWithSecret {
        id: key.id.clone(),
        idempotent_replay: made.secret.is_none(),
        secret: made.secret.map(|s| s.expose().to_owned()),
        key: KeyView::of(&key),
    };
    if created && !body.idempotent_replay {
        HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/keys/{}", key.id)))
            .json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// Create a key. Answers 201 with its secret, the only time it is sent.
/// With an `Idempotency-Key`, a repeat within 24 hours answers 200 with the
/// same key and no secret.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    request_body = CreateKeyRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first one's key (24 hours): 1 to 255 visible ASCII characters, sent once; the same JSON (members in any order) is the same request", min_length = 1, max_length = 255, pattern = "^[!-~]+$", nullable = false),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = KeyWithSecret),
        (status = 200, description = "A repeat of an earlier request with this Idempotency-Key: the same key, no secret", body = KeyWithSecret),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn create_key(
    m: Manager<KeysWrite>,
    req: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let Parsed {
        value: input,
        canonical,
    } = body.json::<CreateKeyRequest>(false)?;
    let kind = match input.kind.unwrap_or(KeyKind::Personal) {
        KeyKind::Personal => uc::Kind::Personal,
        KeyKind::Workspace => uc::Kind::Workspace,
        KeyKind::Service => {
            return Err(ApiError::from(crate::app::Error::invalid(
                "kind",
                "A service account's keys are created at /api/v1/service-accounts/{id}/keys.",
            )));
        }
    };
    let once = once(&req, &[b"create", canonical.as_bytes()])?;
    let (input, expiry_field) = new_key_input(input);
    let key = uc::create(&m.state, &m.ctx, kind, input, once)
        .await
        .map_err(|e| renamed(e, expiry_field))?;
    Ok(made(key, true))
}

/// A create request's fields as the use case takes them, and the name of
/// the expiry field the sender used (errors name it).
pub(crate) fn new_key_input(input: CreateKeyRequest) -> (NewKeyInput, &'static str) {
    let today = crate::db::now().date();
    let never = input.never.unwrap_or(false);
    let chosen = [
        input.expires_in_days.is_some(),
        input.expires_at.is_some(),
        never,
    ];
    let expiry_field = match () {
        _ if input.expires_at.is_some() => "expires_at",
        _ if never => "never",
        _ => "expires_in_days",
    };
    let expiry = match (input.expires_in_days, input.expires_at.as_deref(), never) {
        _ if chosen.iter().filter(|c| **c).count() > 1 => Some(Err(FieldError::new(
            "expiry",
            "Give at most one of expires_in_days, expires_at and never.",
        ))),
        (Some(d), _, _) if (1..=3650).contains(&d) => Some(Ok(Expiry::Days(d))),
        (Some(_), _, _) => Some(Err(FieldError::new(
            "expiry",
            "expires_in_days must be from 1 to 3650.",
        ))),
        (None, Some(date), _) => Some(Expiry::parse("custom", date, today)),
        (None, None, true) => Some(Ok(Expiry::Never)),
        (None, None, false) => None,
    };
    let input = NewKeyInput {
        name: input.name,
        description: input.description.unwrap_or_default(),
        tags: ListInput::Items(input.tags.unwrap_or_default()),
        environment: input
            .environment
            .unwrap_or(KeyEnvironment::Live)
            .as_str()
            .to_owned(),
        permissions: input.permissions.unwrap_or_default(),
        expiry,
        rate_limit: input
            .rate_limit_per_minute
            .map(|r| r.to_string())
            .unwrap_or_default(),
        resources: ListInput::Items(input.resources.unwrap_or_default()),
        allowed_ips: ListInput::Items(input.allowed_ips.unwrap_or_default()),
        quota: QuotaSpec::input(input.quota.as_ref()),
        recoverable: input.recoverable.unwrap_or(false),
        plan: input.plan.unwrap_or_default(),
    };
    (input, expiry_field)
}

// ---- one key ----------------------------------------------------------------

/// Read one key (never its secret).
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id, e.g. key_…", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key", body = KeyView),
        Refusals,
        KeyRefusals,
    )
)]
pub async fn get_key(
    m: Manager<KeysRead>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = uc::load(&m.state, &m.ctx, &id, uc::Act::View).await?;
    Ok(HttpResponse::Ok().json(KeyView::of(&key)))
}

/// Edit a key's name, description, tags, rate limit or IP allowlist.
#[utoipa::path(
    patch,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    request_body = UpdateKeyRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key as saved", body = KeyView),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn update_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    // The key first: an unknown id is a 404 whatever the body.
    uc::load(&m.state, &m.ctx, &id, uc::Act::Manage).await?;
    let input = body.json::<UpdateKeyRequest>(false)?.value;
    let edit = Edit {
        name: input.name,
        description: input.description,
        tags: input.tags.map(ListInput::Items),
        rate_limit: input
            .rate_limit_per_minute
            .map(|r| r.map(|r| r.to_string()).unwrap_or_default()),
        allowed_ips: input
            .allowed_ips
            .map(|list| ListInput::Items(list.unwrap_or_default())),
        quota: input.quota.map(|q| QuotaSpec::input(q.as_ref())),
        plan: input.plan.map(Option::unwrap_or_default),
    };
    let saved = uc::update(&m.state, &m.ctx, &id, edit)
        .await
        .map_err(|e| renamed(e, "expires_in_days"))?;
    Ok(HttpResponse::Ok().json(KeyView::of(&saved)))
}

/// Delete a key: it leaves every list and stops working; its events stay.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        Refusals,
        KeyRefusals,
    )
)]
pub async fn delete_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    uc::switch(&m.state, &m.ctx, &id, Switch::Delete).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Switch a key off, on, or revoke it, then answer the key as it is now.
async fn switch(m: Manager<KeysWrite>, id: &str, what: Switch) -> Result<HttpResponse, ApiError> {
    uc::switch(&m.state, &m.ctx, id, what).await?;
    let now = uc::reread(&m.state, &m.ctx, id).await?;
    Ok(HttpResponse::Ok().json(KeyView::of(&now)))
}

/// Switch a key off: requests with it are refused until it is enabled.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/disable",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, now inactive", body = KeyView), Refusals, KeyRefusals)
)]
pub async fn disable_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    switch(m, &id, Switch::Disable).await
}

/// Switch a key back on.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/enable",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, enabled", body = KeyView), Refusals, KeyRefusals)
)]
pub async fn enable_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    switch(m, &id, Switch::Enable).await
}

/// Revoke a key, for good. Only active or inactive keys can be revoked.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/revoke",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, revoked", body = KeyView), Refusals, KeyRefusals)
)]
pub async fn revoke_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    switch(m, &id, Switch::Revoke).await
}

/// Give a key a new secret, shown once; same name, permissions and
/// settings. The old secret stops working now or after the grace period.
/// Honours `Idempotency-Key` like create (a repeat: the key, no secret).
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/regenerate",
    tag = "keys",
    params(
        ("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried regenerate return the key without making another secret (24 hours): 1 to 255 visible ASCII characters, sent once", min_length = 1, max_length = 255, pattern = "^[!-~]+$", nullable = false),
    ),
    request_body(content = Option<RegenerateRequest>, description = "Optional: no body (no content type needed) is grace 0, like `{}`"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new secret (shown this once), or the key for a repeated request", body = KeyWithSecret),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn regenerate_key(
    m: Manager<KeysWrite>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    uc::load(&m.state, &m.ctx, &id, uc::Act::Manage).await?;
    let Parsed {
        value: input,
        canonical,
    } = body.json::<RegenerateRequest>(true)?;
    // Exactly the values the document declares: the pages' parser is
    // forgiving (an empty choice, "now", spaces), and an API caller who
    // sends `""` has made a mistake that must not end the old secret at
    // once.
    let grace = match input.grace.as_deref() {
        None => "0",
        Some(g @ ("0" | "1h" | "24h" | "7d")) => g,
        Some(_) => {
            return Err(ApiError::validation(&[FieldError::new(
                "grace",
                "grace must be \"0\" (now), \"1h\", \"24h\" or \"7d\".",
            )]));
        }
    };
    let once = once(&req, &[b"regenerate", id.as_bytes(), canonical.as_bytes()])?;
    let fresh = uc::regenerate(&m.state, &m.ctx, &id, grace, once).await?;
    Ok(made(fresh, false))
}

/// What is left of a key's usage quota.
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}/quota",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The quota and what is left", body = QuotaStateView),
        (status = 409, description = "The key has no quota (NO_QUOTA)", body = crate::api::problem::Problem),
        Refusals,
        KeyRefusals,
    )
)]
pub async fn get_quota(
    m: Manager<KeysRead>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let state = uc::quota_state(&m.state, &m.ctx, &id)
        .await?
        .ok_or_else(|| crate::app::Error::from(keys::KeyError::NoQuota))?;
    Ok(HttpResponse::Ok().json(quota_view(&id, &state)))
}

/// Top a key's quota up: `{"add": n}` adds to what is left, `{"set": n}`
/// makes it n. Audited as `key.quota_topped_up`; every instance drops its
/// reserve of the key, so nothing spends an old reserve on top.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/quota",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    request_body = TopUpRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The quota and what is left after the top-up", body = QuotaStateView),
        (status = 409, description = "The key has no quota (NO_QUOTA), or is revoked", body = crate::api::problem::Problem),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn top_up_quota(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    uc::load(&m.state, &m.ctx, &id, uc::Act::Manage).await?;
    let input = body.json::<TopUpRequest>(false)?.value;
    let top_up = uc::TopUp {
        set: input.set.map(|n| n.to_string()),
        add: input.add.map(|n| n.to_string()),
    };
    let state = uc::top_up(&m.state, &m.ctx, &id, top_up).await?;
    Ok(HttpResponse::Ok().json(quota_view(&id, &state)))
}

fn quota_view(id: &str, state: &uc::QuotaState) -> QuotaStateView {
    QuotaStateView {
        key_id: id.to_owned(),
        quota: QuotaSpec::of(&state.quota),
        remaining: state.remaining,
        resets_at: state.resets_at.map(time),
    }
}

/// A key's usage: hourly counts of verifications by outcome.
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}/usage",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$"), UsageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "Hourly counts", body = Usage), Refusals, KeyRefusals)
)]
pub async fn key_usage(
    m: Manager<KeysRead>,
    id: web::Path<String>,
    params: web::Query<UsageParams>,
) -> Result<HttpResponse, ApiError> {
    let hours = params.hours.unwrap_or(168);
    let (key, since, rows) = uc::usage(&m.state, &m.ctx, &id, hours).await?;
    let mut bar = crate::domain::chart::Bar::default();
    for r in &rows {
        bar.add(&r.outcome, r.count);
    }
    Ok(HttpResponse::Ok().json(Usage {
        key_id: key.id,
        since: time(since),
        valid: bar.valid,
        rejected: bar.rejected,
        buckets: rows
            .into_iter()
            .map(|r| UsageBucket {
                hour: time(r.hour),
                outcome: r.outcome,
                count: r.count,
            })
            .collect(),
    }))
}

impl KeyEnvironment {
    /// The domain's environment.
    pub fn environment(self) -> dk::Environment {
        match self {
            KeyEnvironment::Live => dk::Environment::Live,
            KeyEnvironment::Test => dk::Environment::Test,
            KeyEnvironment::Dev => dk::Environment::Dev,
        }
    }
}

/// Show a recoverable key's secret again. Needs `keyward:keys:reveal`
/// (never implied by `keyward:keys:write`) and a role that may manage the
/// key; rate-limited per calling key and audited (`key.secret_shown`).
/// Answered with `Cache-Control: no-store`. 409 `KEY_NOT_RECOVERABLE` for a
/// key whose secret is not kept, `RECOVERY_FAILED` or
/// `RECOVERY_NOT_CONFIGURED` when the operator key cannot open it.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/reveal",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key's secret", body = RevealedSecret),
        Refusals,
        KeyRefusals,
    )
)]
pub async fn reveal_key(
    m: Manager<super::auth::KeysReveal>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (key, secret) = crate::app::recover::reveal(&m.state, &m.ctx, &id, None).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RevealedSecret {
            id: key.id.clone(),
            secret: secret.expose().to_owned(),
            key: KeyView::of(&key),
        }))
}

/// Turn recoverable keys on or off for the workspace (an admin's key with
/// `keyward:keys:write`). On needs the operator's `KEYWARD_RECOVERY_KEYS_FILE`
/// (409 `RECOVERY_NOT_CONFIGURED`); off destroys every stored secret of the
/// workspace at once, audited.
#[utoipa::path(
    put,
    path = "/api/v1/settings/recoverable-keys",
    tag = "keys",
    request_body = RecoverableKeysRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The setting as it now is", body = RecoverableKeysView),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn set_recoverable_keys(
    m: Manager<KeysWrite>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let Parsed { value, .. } = body.json::<RecoverableKeysRequest>(false)?;
    let (changed, destroyed) =
        crate::app::recover::set_enabled(&m.state, &m.ctx, value.enabled).await?;
    Ok(HttpResponse::Ok().json(RecoverableKeysView {
        enabled: value.enabled,
        changed,
        destroyed,
    }))
}
