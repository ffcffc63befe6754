//! The management API: keys, events and usage over JSON, for scripts and
//! provisioning tools.
//!
//! A request is authenticated by a key holding one of the built-in
//! management permissions (`keyward:keys:read`, `keyward:keys:write`,
//! `keyward:events:read`). The key acts with the role of the person behind
//! it (its owner, or for a workspace key its creator), and every handler
//! asks the same policy module as the web pages with that role; every
//! change is recorded with the acting key as the actor. Validation and
//! limits are the create dialog's own functions, so the rules cannot drift.

use super::problem::{ApiError, Problem};
use crate::db::events::AuditContext;
use crate::db::keys::{self, ApiKey, Cursor, KeyError, Scope};
use crate::db::users::User;
use crate::db::{idempotency, permissions, workspaces};
use crate::domain::input::FieldError;
use crate::domain::keys::{self as dk, Expiry, Status, ValueQuery};
use crate::domain::policy::{self, Action, Actor, Decision, KeyRef, management};
use crate::state::AppState;
use crate::web::keys::ListKind;
use crate::web::keys::actions;
use crate::web::keys::create::{self as create_rules, Creator, KeyRequest};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, delete, get, patch, post, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::marker::PhantomData;
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// Register the management routes (inside the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_keys)
        .service(create_key)
        .service(get_key)
        .service(update_key)
        .service(delete_key)
        .service(disable_key)
        .service(enable_key)
        .service(revoke_key)
        .service(regenerate_key)
        .service(key_usage)
        .service(list_events);
}

/// Whether a path belongs to the management API (whose errors are
/// problems), as opposed to `/api/v1/keys/verify` and the other
/// integration endpoints with their own error bodies.
pub fn is_management_path(path: &str) -> bool {
    let keys = path == "/api/v1/keys" || path.starts_with("/api/v1/keys/");
    let events = path == "/api/v1/events" || path.starts_with("/api/v1/events/");
    (keys && path != "/api/v1/keys/verify") || events
}

// ---- authentication ---------------------------------------------------------

/// The management permission an endpoint needs.
pub trait Need {
    const PERMISSION: &'static str;
}

/// `keyward:keys:read`.
pub struct KeysRead;
/// `keyward:keys:write`.
pub struct KeysWrite;
/// `keyward:events:read`.
pub struct EventsRead;

impl Need for KeysRead {
    const PERMISSION: &'static str = management::KEYS_READ;
}
impl Need for KeysWrite {
    const PERMISSION: &'static str = management::KEYS_WRITE;
}
impl Need for EventsRead {
    const PERMISSION: &'static str = management::EVENTS_READ;
}

/// A request authenticated by a key holding the management permission `N`:
/// the key, the person it acts for and the policy actor with their role.
pub struct Manager<N> {
    state: web::Data<AppState>,
    /// The acting key.
    key: ApiKey,
    /// Its owner (personal key) or creator (workspace key).
    person: User,
    actor: Actor,
    audit: AuditContext,
    need: PhantomData<N>,
}

impl<N: Need + 'static> FromRequest for Manager<N> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = super::bearer(req).map(str::to_owned);
        // PostgreSQL refuses a NUL in text, and no id, filter or search
        // holds a control character: refuse them before any query.
        let has_control = |raw: &str| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .chars()
                .any(char::is_control)
        };
        let control = has_control(req.query_string()) || has_control(req.path());
        let ip = crate::web::client_ip(req);
        let user_agent = crate::web::user_agent(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::from(crate::error::AppError::Internal("no state".into()))
            })?;
            let token = token.inspect_err(|outcome| {
                state.verifier.metrics.count_refusal(outcome.code);
            });
            let token = token.map_err(ApiError::refused)?;
            let requirements = crate::verify::Requirements {
                environment: None,
                permission: Some(N::PERMISSION.to_owned()),
                resource: None,
                // A management key acts in its own workspace.
                workspace: crate::verify::WorkspaceRequirement::Any,
            };
            let verified = state
                .verifier
                .verify(&state.pool, &token, &requirements)
                .await
                .map_err(ApiError::refused)?;
            if control {
                return Err(ApiError::bad_request(
                    "The address contains a control character (such as a NUL byte), which no id, filter or search holds.",
                ));
            }
            let key = verified.record.key.clone();
            let ws = key.workspace_id.clone();
            let person_id = key
                .owner_id
                .clone()
                .unwrap_or_else(|| key.created_by.clone());
            let person = crate::web::db(&state, move |c| {
                Ok(crate::db::users::get(c, &ws, &person_id)?)
            })
            .await?
            // An active member who has joined (not one still invited).
            .filter(|u| u.is_active() && !u.invite_pending())
            .ok_or_else(|| {
                ApiError::forbidden(
                    "The person this key acts for is no longer a member of the workspace, so the key cannot manage anything. An admin can create a new management key.",
                )
            })?;
            let role = person.role();
            if !policy::management_key_may_act(role, !key.is_personal()) {
                return Err(ApiError::forbidden(format!(
                    "This key acts for {} ({}), whose role may not manage keyward through the API with this kind of key.",
                    person.email,
                    role.label()
                )));
            }
            let actor = Actor {
                user_id: person.id.clone(),
                person_id: person.person_id.clone(),
                workspace_id: key.workspace_id.clone(),
                role,
            };
            let audit = AuditContext {
                workspace_id: key.workspace_id.clone(),
                actor_id: Some(key.id.clone()),
                actor_label: format!("API key “{}” ({})", key.name, key.id),
                ip,
                user_agent,
            };
            Ok(Manager {
                state,
                key,
                person,
                actor,
                audit,
                need: PhantomData,
            })
        })
    }
}

impl<N> Manager<N> {
    /// Ask the policy module, as the web pages do.
    fn authorize(&self, action: Action<'_>) -> Result<(), ApiError> {
        match policy::authorize(&self.actor, action) {
            Decision::Allow => Ok(()),
            Decision::Forbidden => Err(ApiError::forbidden(
                "The role of the person this key acts for does not allow this.",
            )),
            Decision::NotFound => Err(ApiError::not_found()),
        }
    }

    /// The key with this id in the acting key's workspace, once the policy
    /// allows `act` on it; any other id is not found.
    async fn load(&self, id: String, act: Act) -> Result<ApiKey, ApiError> {
        let ws = self.actor.workspace_id.clone();
        let key = run(&self.state, move |c| Ok(keys::get(c, &ws, &id)?))
            .await?
            .ok_or_else(ApiError::not_found)?;
        self.authorize(act.action(key.key_ref()))?;
        Ok(key)
    }
}

/// What is about to be done to one key, for the policy check.
#[derive(Debug, Clone, Copy)]
enum Act {
    View,
    Manage,
    Revoke,
}

impl Act {
    fn action(self, key: KeyRef<'_>) -> Action<'_> {
        match self {
            Act::View => Action::ViewKey(key),
            Act::Manage => Action::ManageKey(key),
            Act::Revoke => Action::RevokeKey(key),
        }
    }
}

/// Keep a value, or remember its field's error.
fn keep<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// Database work off the event loop, with the API's errors: a refusal
/// decided inside (a limit, a revoked key) comes back as it was.
async fn run<F, T>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    crate::web::db(state, move |c| Ok(f(c))).await?
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::from(crate::error::AppError::Db(e))
    }
}

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::NotFound => ApiError::not_found(),
        KeyError::Revoked => ApiError::conflict("KEY_REVOKED", e.to_string()),
        KeyError::NotRevocable => ApiError::conflict("KEY_NOT_REVOCABLE", e.to_string()),
        KeyError::LimitReached(_) => ApiError::conflict("KEY_LIMIT_REACHED", e.to_string()),
        KeyError::DuplicateRequest => ApiError::conflict("DUPLICATE_REQUEST", e.to_string()),
        KeyError::Db(e) => e.into(),
    }
}

// ---- shapes -----------------------------------------------------------------

/// Who owns a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Belongs to one person; revoked when they leave the workspace.
    Personal,
    /// Belongs to the workspace (integrations that outlive staff changes).
    Workspace,
}

/// A key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    /// Switched off (reversible).
    Inactive,
    /// Past its expiry.
    Expired,
    /// Revoked for good.
    Revoked,
}

impl From<KeyStatus> for Status {
    fn from(s: KeyStatus) -> Self {
        match s {
            KeyStatus::Active => Status::Active,
            KeyStatus::Inactive => Status::Inactive,
            KeyStatus::Expired => Status::Expired,
            KeyStatus::Revoked => Status::Revoked,
        }
    }
}

impl From<Status> for KeyStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => KeyStatus::Active,
            Status::Inactive => KeyStatus::Inactive,
            Status::Expired => KeyStatus::Expired,
            Status::Revoked => KeyStatus::Revoked,
        }
    }
}

/// A key's environment: `live` (production), `test` (staging), `dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnvironment {
    Live,
    Test,
    Dev,
}

impl KeyEnvironment {
    fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "live",
            KeyEnvironment::Test => "test",
            KeyEnvironment::Dev => "dev",
        }
    }
}

fn environment_of(e: dk::Environment) -> KeyEnvironment {
    match e {
        dk::Environment::Live => KeyEnvironment::Live,
        dk::Environment::Test => KeyEnvironment::Test,
        dk::Environment::Dev => KeyEnvironment::Dev,
    }
}

fn time(t: chrono::NaiveDateTime) -> String {
    crate::domain::time::rfc3339(t)
}

/// A key as the API shows it: everything but its secret, which keyward
/// does not have (only a digest and a masked excerpt).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B",
    "name": "CI deploy",
    "description": "Deploys from the main branch",
    "tags": ["ci"],
    "kind": "workspace",
    "owner_id": null,
    "created_by": "usr_01JD3X1Z8Q2W7Y4N6P9R0T1V3B",
    "environment": "live",
    "permissions": ["data:read"],
    "resources": [],
    "status": "active",
    "masked": "sk_live_…5G08",
    "expires_at": "2027-02-21T10:00:00Z",
    "rate_limit_per_minute": 600,
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
    "last_used_at": null,
    "old_secret_valid_until": null,
    "creator_removed": false
}))]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub kind: KeyKind,
    /// The owner's user id (personal keys).
    pub owner_id: Option<String>,
    /// Who created the key (a user id).
    pub created_by: String,
    pub environment: KeyEnvironment,
    pub permissions: Vec<String>,
    /// Resources the key is limited to; empty: the whole workspace.
    pub resources: Vec<String>,
    pub status: KeyStatus,
    /// The masked excerpt, e.g. `sk_live_…5G08`.
    pub masked: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i32>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// After a regeneration with a grace period: until when the previous
    /// secret still works.
    #[schema(format = DateTime)]
    pub old_secret_valid_until: Option<String>,
    /// A workspace key whose creator left the workspace (for review).
    pub creator_removed: bool,
}

impl KeyView {
    fn of(key: &ApiKey) -> KeyView {
        let now = crate::db::now();
        KeyView {
            id: key.id.clone(),
            name: key.name.clone(),
            description: key.description.clone(),
            tags: key.tag_list(),
            kind: if key.is_personal() {
                KeyKind::Personal
            } else {
                KeyKind::Workspace
            },
            owner_id: key.owner_id.clone(),
            created_by: key.created_by.clone(),
            environment: environment_of(key.environment()),
            permissions: key.permission_list(),
            resources: key.resource_list(),
            status: key.status(now).into(),
            masked: key.excerpt(),
            expires_at: key.expires_at.map(time),
            rate_limit_per_minute: key.rate_limit,
            created_at: time(key.created_at),
            updated_at: time(key.updated_at),
            last_used_at: key.last_used_at.map(time),
            old_secret_valid_until: key.grace_until(now).map(time),
            creator_removed: key.creator_removed_at.is_some(),
        }
    }
}

/// One page of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPage {
    pub keys: Vec<KeyView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A key with its secret: the only time the secret is ever sent.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B",
    "secret": "sk_live_…(49 characters, shown once)",
    "idempotent_replay": false,
    "key": {"id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B", "name": "CI deploy"}
}))]
pub struct KeyWithSecret {
    pub id: String,
    /// The full key. Sent once; absent when an `Idempotency-Key` repeat is
    /// answered with the key made the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
    /// Whether this answer repeats an earlier request with the same
    /// `Idempotency-Key` (no secret then).
    pub idempotent_replay: bool,
    pub key: KeyView,
}

/// Refusals every management endpoint may answer.
#[derive(IntoResponses)]
pub enum Refusals {
    /// Malformed JSON, an invalid parameter or cursor.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No key, or a key that is unknown, revoked, inactive or expired.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The key lacks the management permission, or its person's role does
    /// not allow the action.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The key's rate limit is exceeded; see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Problem),
    /// The database is unreachable.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Refusals about one key.
#[derive(IntoResponses)]
pub enum KeyRefusals {
    /// No such key in the workspace, or not visible to this key.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The key's state does not allow this (revoked, already expired), or a
    /// limit of the workspace.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// Invalid fields, one message each.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Parse a JSON body; anything that is not the expected JSON is a 400
/// problem saying what is wrong (an empty body reads as `{}` where
/// `empty_ok`).
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], empty_ok: bool) -> Result<T, ApiError> {
    let body: &[u8] = if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))?;
    // serde would read a struct from an array too: only an object is one.
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request(format!(
            "The request body does not fit this operation: {e}."
        ))
    })
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID.",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The answer to a repeated request: the key it made the first time, or a
/// refusal when the header value was used for a different request.
async fn replay<N>(
    m: &Manager<N>,
    idem: &str,
    operation: &'static str,
    print: &str,
) -> Result<Option<ApiKey>, ApiError> {
    let ws = m.actor.workspace_id.clone();
    let actor_key = m.key.id.clone();
    let idem = idem.to_owned();
    let Some(found) = run(&m.state, move |c| {
        Ok(idempotency::find(c, &ws, &actor_key, &idem)?)
    })
    .await?
    else {
        return Ok(None);
    };
    if found.operation != operation || found.fingerprint != print {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was already used for a different request in the last 24 hours. Use a new key for a new request.",
        ));
    }
    let ws = m.actor.workspace_id.clone();
    let key = run(&m.state, move |c| Ok(keys::get(c, &ws, &found.key_id)?))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "IDEMPOTENT_KEY_GONE",
                "The key this Idempotency-Key made has since been deleted.",
            )
        })?;
    Ok(Some(key))
}

// ---- list -------------------------------------------------------------------

/// Filters and page of `GET /api/v1/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Search by name, key id, owner, tag, or a masked excerpt / prefix
    /// (`sk_live_…5G08`). Never a full key: check one with
    /// `POST /api/v1/keys/verify`.
    q: Option<String>,
    status: Option<KeyStatus>,
    kind: Option<KeyKind>,
    /// An owner's user id, or `me` (the person the calling key acts for).
    owner: Option<String>,
    environment: Option<KeyEnvironment>,
    /// Only active keys that expire within 7 days.
    expiring: Option<bool>,
    /// Keys per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

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
#[get("/keys")]
pub async fn list_keys(
    m: Manager<KeysRead>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 100."));
    }
    let q = p.q.unwrap_or_default().trim().to_owned();
    if matches!(dk::value_query(&q), Some(ValueQuery::Full(_))) {
        return Err(ApiError::bad_request(
            "q holds a full key: a secret must never be put in a URL. Check a key with POST /api/v1/keys/verify instead.",
        ));
    }
    let after = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            ApiError::bad_request("cursor is not valid: use next_cursor of the previous page.")
        })?),
        None => None,
    };
    let me = m.actor.user_id.clone();
    let owner = p
        .owner
        .as_deref()
        .map(|o| if o == "me" { me.clone() } else { o.to_owned() });
    // Which list, as on the web pages: a normal user's key only ever reads
    // that user's own list.
    let scope = if m.authorize(Action::ListAllKeys).is_ok() {
        match (&owner, p.kind) {
            (Some(o), _) => Some(Scope::Owner(o.clone())),
            (None, Some(KeyKind::Workspace)) => Some(Scope::Workspace),
            (None, _) => Some(Scope::All),
        }
    } else {
        m.authorize(Action::ListOwnKeys)?;
        let others = owner.as_ref().is_some_and(|o| *o != me);
        (p.kind != Some(KeyKind::Workspace) && !others).then(|| Scope::Owner(me.clone()))
    };
    let Some(scope) = scope else {
        return Ok(HttpResponse::Ok().json(KeyPage {
            keys: Vec::new(),
            next_cursor: None,
        }));
    };
    let now = crate::db::now();
    let expiring = p
        .expiring
        .unwrap_or(false)
        .then(|| now + chrono::TimeDelta::days(crate::web::keys::EXPIRING_DAYS));
    let ws = m.actor.workspace_id.clone();
    // Every filter is part of the query, so a page is full whenever another
    // follows.
    let filter = keys::Filter {
        expiring_until: expiring,
        status: p.status.map(Status::from),
        environment: p.environment.map(|e| match e {
            KeyEnvironment::Live => dk::Environment::Live,
            KeyEnvironment::Test => dk::Environment::Test,
            KeyEnvironment::Dev => dk::Environment::Dev,
        }),
        personal: p.kind.map(|k| k == KeyKind::Personal),
    };
    let (rows, next) = run(&m.state, move |c| {
        let (page, next) = keys::list(c, &ws, &scope, &q, &filter, after.as_ref(), limit)?;
        Ok((
            page.into_iter().map(|k| k.key).collect::<Vec<ApiKey>>(),
            next,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(KeyPage {
        keys: rows.iter().map(KeyView::of).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

// ---- create -----------------------------------------------------------------

/// A new key. Expiry: at most one of `expires_in_days`, `expires_at` and
/// `never`; none gives the create dialog's default (90 days, or the
/// longest the workspace allows).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "CI deploy",
    "kind": "workspace",
    "environment": "live",
    "permissions": ["data:read"],
    "expires_in_days": 90,
    "rate_limit_per_minute": 600
}))]
pub struct CreateKeyRequest {
    /// 1 to 100 characters.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Up to 10 tags of `a-z 0-9 - _ : .`.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `personal` (default: a key of the person the calling key acts for)
    /// or `workspace` (admins).
    #[serde(default)]
    pub kind: Option<KeyKind>,
    /// Default `live`.
    #[serde(default)]
    pub environment: Option<KeyEnvironment>,
    /// From the workspace's catalog, plus the management permissions the
    /// person's role may grant.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
    /// A date (`YYYY-MM-DD`): the key works until the end of that day, UTC.
    #[serde(default)]
    #[schema(format = Date)]
    pub expires_at: Option<String>,
    /// `true`: the key never expires (if the workspace allows it).
    #[serde(default)]
    pub never: Option<bool>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i32>,
    /// Resource identifiers the key is limited to (up to 50).
    #[serde(default)]
    pub resources: Option<Vec<String>>,
}

/// A list field joined for the dialog's parsers, which split on commas
/// and new lines: an item holding one would silently become two.
fn joined(field: &'static str, items: &[String], errors: &mut Vec<FieldError>) -> String {
    if items.iter().any(|i| i.contains([',', '\n', '\r'])) {
        errors.push(FieldError::new(
            field,
            format!("Items of {field} cannot contain commas or line breaks."),
        ));
    }
    items.join("\n")
}

/// The dialog's field names, as the API calls them.
fn api_field(field: &'static str, expiry_field: &'static str) -> &'static str {
    match field {
        "expiry" => expiry_field,
        "expiry_date" => "expires_at",
        "rate_limit" => "rate_limit_per_minute",
        other => other,
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
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first one's key (24 hours)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = KeyWithSecret),
        (status = 200, description = "A repeat of an earlier request with this Idempotency-Key: the same key, no secret", body = KeyWithSecret),
        Refusals,
        KeyRefusals,
    )
)]
#[post("/keys")]
pub async fn create_key(
    m: Manager<KeysWrite>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: CreateKeyRequest = parse_json(&body, false)?;
    let kind = input.kind.unwrap_or(KeyKind::Personal);
    let list_kind = match kind {
        KeyKind::Personal => ListKind::Personal,
        KeyKind::Workspace => ListKind::Workspace,
    };
    m.authorize(match kind {
        KeyKind::Personal => Action::CreatePersonalKey,
        KeyKind::Workspace => Action::CreateWorkspaceKey,
    })?;
    let idem = idempotency_key(&req)?;
    let print = fingerprint(&[b"create", &body]);
    let print_again = print.clone();
    if let Some(idem) = &idem
        && let Some(key) = replay(&m, idem, "create", &print).await?
    {
        return Ok(HttpResponse::Ok().json(KeyWithSecret {
            id: key.id.clone(),
            secret: None,
            idempotent_replay: true,
            key: KeyView::of(&key),
        }));
    }
    let ws = m.actor.workspace_id.clone();
    let (catalog, workspace) = run(&m.state, move |c| {
        Ok((permissions::active(c, &ws)?, workspaces::get(c, &ws)?))
    })
    .await?;
    if workspace.api_keys_disabled_at.is_some() {
        return Err(ApiError::conflict(
            "API_KEYS_DISABLED",
            "API keys are switched off for this workspace, so no key can be created. An admin can turn them back on in Settings.",
        ));
    }

    // The API's own shapes, read into the dialog's: the same checks follow.
    let mut shape_errors = Vec::new();
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
        _ if chosen.iter().filter(|c| **c).count() > 1 => Err(FieldError::new(
            "expiry",
            "Give at most one of expires_in_days, expires_at and never.",
        )),
        (Some(d), _, _) if (1..=3650).contains(&d) => Ok(Expiry::Days(d)),
        (Some(_), _, _) => Err(FieldError::new(
            "expiry",
            "expires_in_days must be from 1 to 3650.",
        )),
        (None, Some(date), _) => Expiry::parse("custom", date, today),
        (None, None, true) => Ok(Expiry::Never),
        (None, None, false) => Ok(Expiry::Days(create_rules::default_expiry_days(
            workspace.max_expiry_days,
        ))),
    };
    let tags = joined(
        "tags",
        input.tags.as_deref().unwrap_or_default(),
        &mut shape_errors,
    );
    let resources = joined(
        "resources",
        input.resources.as_deref().unwrap_or_default(),
        &mut shape_errors,
    );
    let permissions = input.permissions.unwrap_or_default();
    let rate_limit = input
        .rate_limit_per_minute
        .map(|r| r.to_string())
        .unwrap_or_default();
    let checked = create_rules::validate(
        KeyRequest {
            name: &input.name,
            description: input.description.as_deref().unwrap_or_default(),
            tags: &tags,
            environment: input.environment.unwrap_or(KeyEnvironment::Live).as_str(),
            permissions: &permissions,
            expiry,
            rate_limit: &rate_limit,
            resources: &resources,
        },
        &catalog,
        &workspace,
        m.actor.role,
        list_kind,
    );
    let valid =
        match checked {
            Ok(valid) if shape_errors.is_empty() => valid,
            other => {
                let mut all = shape_errors;
                if let Err(errors) = other {
                    all.extend(errors.all().iter().map(|e| {
                        FieldError::new(api_field(e.field, expiry_field), e.message.clone())
                    }));
                }
                return Err(ApiError::validation(&all));
            }
        };

    let (secret, facts) = dk::generate(valid.environment);
    let ctx = m.audit.clone();
    let person = m.person.clone();
    let actor_key = m.key.id.clone();
    let idem_row = idem.clone();
    let created = run(&m.state, move |c| {
        let owner_label = format!("{} {}", person.email, person.name);
        let nonce = crate::domain::ids::new_token();
        let result = crate::db::write_transaction::<_, KeyError, _>(c, |c| {
            let key = create_rules::insert(
                c,
                &ctx,
                Creator {
                    owner: (kind == KeyKind::Personal)
                        .then_some((person.id.as_str(), owner_label.as_str())),
                    created_by: &person.id,
                },
                &valid,
                &facts,
                &workspace,
                &nonce,
            )?;
            if let Some(idem) = &idem_row {
                idempotency::record(
                    c,
                    &ctx.workspace_id,
                    &actor_key,
                    idem,
                    "create",
                    &print,
                    &key.id,
                )?;
            }
            Ok(key)
        });
        match result {
            Ok(key) => Ok(Some(key)),
            // A concurrent twin with the same Idempotency-Key won.
            Err(KeyError::Db(e)) if idem_row.is_some() && idempotency::is_duplicate(&e) => Ok(None),
            Err(e) => Err(key_error(e)),
        }
    })
    .await?;
    let Some(key) = created else {
        // A concurrent twin with the same Idempotency-Key won.
        let idem = idem.unwrap_or_default();
        let key = replay(&m, &idem, "create", &print_again)
            .await?
            .ok_or_else(ApiError::not_found)?;
        return Ok(HttpResponse::Ok().json(KeyWithSecret {
            id: key.id.clone(),
            secret: None,
            idempotent_replay: true,
            key: KeyView::of(&key),
        }));
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/keys/{}", key.id)))
        .json(KeyWithSecret {
            id: key.id.clone(),
            secret: Some(secret.expose().to_owned()),
            idempotent_replay: false,
            key: KeyView::of(&key),
        }))
}

// ---- one key ----------------------------------------------------------------

/// Read one key (never its secret).
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id, e.g. key_…")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key", body = KeyView),
        Refusals,
        KeyRefusals,
    )
)]
#[get("/keys/{id}")]
pub async fn get_key(
    m: Manager<KeysRead>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = m.load(id.into_inner(), Act::View).await?;
    Ok(HttpResponse::Ok().json(KeyView::of(&key)))
}

/// Fields to change; absent ones stay as they are. Permissions, environment
/// and expiry are fixed at creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CI deploy (main)", "rate_limit_per_minute": null}))]
pub struct UpdateKeyRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<Option<i32>>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Edit a key's name, description, tags or rate limit.
#[utoipa::path(
    patch,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    request_body = UpdateKeyRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key as saved", body = KeyView),
        Refusals,
        KeyRefusals,
    )
)]
#[patch("/keys/{id}")]
pub async fn update_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let key = m.load(id.into_inner(), Act::Manage).await?;
    let input: UpdateKeyRequest = parse_json(&body, false)?;
    let mut errors = Vec::new();
    let name = input
        .name
        .map_or_else(|| Ok(key.name.clone()), |n| dk::parse_name(&n));
    let name = keep(&mut errors, name);
    let description = input.description.map_or_else(
        || Ok(key.description.clone()),
        |d| dk::parse_description(&d),
    );
    let description = keep(&mut errors, description);
    let mut shape = Vec::new();
    let tags = match &input.tags {
        Some(t) => {
            let joined = joined("tags", t, &mut shape);
            keep(&mut errors, dk::parse_tags(&joined))
        }
        None => Some(key.tag_list()),
    };
    let rate_limit = match input.rate_limit_per_minute {
        Some(r) => keep(
            &mut errors,
            dk::parse_rate_limit(&r.map(|r| r.to_string()).unwrap_or_default())
                .map_err(|e| FieldError::new("rate_limit_per_minute", e.message)),
        ),
        None => Some(key.rate_limit),
    };
    errors.extend(shape);
    let (Some(name), Some(description), Some(tags), Some(rate_limit)) =
        (name, description, tags, rate_limit)
    else {
        return Err(ApiError::validation(&errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(&errors));
    }
    let ctx = m.audit.clone();
    let saved = run(&m.state, move |c| {
        actions::save_details(
            c,
            &ctx,
            &key,
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
    Ok(HttpResponse::Ok().json(KeyView::of(&saved)))
}

/// Delete a key: it leaves every list and stops working; its events stay.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        Refusals,
        KeyRefusals,
    )
)]
#[delete("/keys/{id}")]
pub async fn delete_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = m.load(id.into_inner(), Act::Manage).await?;
    let ctx = m.audit.clone();
    run(&m.state, move |c| {
        keys::delete(c, &ctx, &key).map_err(key_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Switch a key off, on, or revoke it, then answer the key as it is now.
async fn switch(
    m: Manager<KeysWrite>,
    id: String,
    what: &'static str,
) -> Result<HttpResponse, ApiError> {
    let key = m.load(id, Act::Revoke).await?;
    let ctx = m.audit.clone();
    let now = run(&m.state, move |c| {
        match what {
            "disable" => keys::set_disabled(c, &ctx, &key, true).map(drop),
            "enable" => keys::set_disabled(c, &ctx, &key, false).map(drop),
            _ => keys::revoke(c, &ctx, &key),
        }
        .map_err(key_error)?;
        keys::get(c, &ctx.workspace_id, &key.id)?.ok_or_else(ApiError::not_found)
    })
    .await?;
    Ok(HttpResponse::Ok().json(KeyView::of(&now)))
}

/// Switch a key off: requests with it are refused until it is enabled.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/disable",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, now inactive", body = KeyView), Refusals, KeyRefusals)
)]
#[post("/keys/{id}/disable")]
pub async fn disable_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    switch(m, id.into_inner(), "disable").await
}

/// Switch a key back on.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/enable",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, enabled", body = KeyView), Refusals, KeyRefusals)
)]
#[post("/keys/{id}/enable")]
pub async fn enable_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    switch(m, id.into_inner(), "enable").await
}

/// Revoke a key, for good. Only active or inactive keys can be revoked.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/revoke",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, revoked", body = KeyView), Refusals, KeyRefusals)
)]
#[post("/keys/{id}/revoke")]
pub async fn revoke_key(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    switch(m, id.into_inner(), "revoke").await
}

/// When the old secret stops working after a regeneration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace": "24h"}))]
pub struct RegenerateRequest {
    /// `0` (now, the default), `1h`, `24h` or `7d`.
    #[serde(default)]
    #[schema(pattern = "^(0|1h|24h|7d)$")]
    pub grace: Option<String>,
}

/// Give a key a new secret, shown once; same name, permissions and
/// settings. The old secret stops working now or after the grace period.
/// Honours `Idempotency-Key` like create (a repeat: the key, no secret).
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/regenerate",
    tag = "keys",
    params(
        ("id" = String, Path, description = "The key's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried regenerate return the key without making another secret (24 hours)"),
    ),
    request_body(content = Option<RegenerateRequest>, description = "Optional; an empty body means grace 0"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new secret (shown this once), or the key for a repeated request", body = KeyWithSecret),
        Refusals,
        KeyRefusals,
    )
)]
#[post("/keys/{id}/regenerate")]
pub async fn regenerate_key(
    m: Manager<KeysWrite>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let key = m.load(id.into_inner(), Act::Manage).await?;
    let input: RegenerateRequest = parse_json(&body, true)?;
    let idem = idempotency_key(&req)?;
    let print = fingerprint(&[b"regenerate", key.id.as_bytes(), &body]);
    let print_again = print.clone();
    if let Some(idem) = &idem
        && let Some(key) = replay(&m, idem, "regenerate", &print).await?
    {
        return Ok(HttpResponse::Ok().json(KeyWithSecret {
            id: key.id.clone(),
            secret: None,
            idempotent_replay: true,
            key: KeyView::of(&key),
        }));
    }
    let grace = dk::parse_grace(input.grace.as_deref().unwrap_or("0"))
        .map_err(|e| ApiError::validation(&[e]))?;
    let (secret, facts) = dk::generate(key.environment());
    let ctx = m.audit.clone();
    let actor_key = m.key.id.clone();
    let idem_row = idem.clone();
    let fresh = run(&m.state, move |c| {
        let nonce = crate::domain::ids::new_token();
        let result = crate::db::write_transaction::<_, KeyError, _>(c, |c| {
            // The write lock first, as keys::create takes it (SQLite).
            workspaces::lock(c, &ctx.workspace_id)?;
            let fresh = actions::regenerate_within_limits(c, &ctx, &key, &facts, grace, &nonce)?;
            if let Some(idem) = &idem_row {
                idempotency::record(
                    c,
                    &ctx.workspace_id,
                    &actor_key,
                    idem,
                    "regenerate",
                    &print,
                    &key.id,
                )?;
            }
            Ok(fresh)
        });
        match result {
            Ok(fresh) => Ok(Some(fresh)),
            Err(KeyError::Db(e)) if idem_row.is_some() && idempotency::is_duplicate(&e) => Ok(None),
            Err(e) => Err(key_error(e)),
        }
    })
    .await?;
    let (fresh, secret) = match fresh {
        Some(fresh) => (fresh, Some(secret.expose().to_owned())),
        None => {
            // A concurrent twin with the same Idempotency-Key won.
            let idem = idem.unwrap_or_default();
            let key = replay(&m, &idem, "regenerate", &print_again)
                .await?
                .ok_or_else(ApiError::not_found)?;
            (key, None)
        }
    };
    Ok(HttpResponse::Ok().json(KeyWithSecret {
        id: fresh.id.clone(),
        idempotent_replay: secret.is_none(),
        secret,
        key: KeyView::of(&fresh),
    }))
}

// ---- usage and events -------------------------------------------------------

/// How far back `GET /api/v1/keys/{id}/usage` reads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Hours back from now, 1 to 720 (default 168: seven days).
    #[param(minimum = 1, maximum = 720)]
    hours: Option<i64>,
}

/// Verifications of a key in one hour with one outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBucket {
    /// The hour's start, UTC.
    #[schema(format = DateTime)]
    pub hour: String,
    /// `VALID`, or the refusal code (`REVOKED`, `RATE_LIMITED`, …).
    pub outcome: String,
    pub count: i64,
}

/// A key's verifications per hour and outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub key_id: String,
    #[schema(format = DateTime)]
    pub since: String,
    /// Only hours and outcomes with at least one verification, oldest first.
    pub buckets: Vec<UsageBucket>,
    pub valid: i64,
    pub rejected: i64,
}

/// A key's usage: hourly counts of verifications by outcome.
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}/usage",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id"), UsageParams),
    security(("bearer" = [])),
    responses((status = 200, description = "Hourly counts", body = Usage), Refusals, KeyRefusals)
)]
#[get("/keys/{id}/usage")]
pub async fn key_usage(
    m: Manager<KeysRead>,
    id: web::Path<String>,
    params: web::Query<UsageParams>,
) -> Result<HttpResponse, ApiError> {
    let hours = params.hours.unwrap_or(168);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::bad_request("hours must be from 1 to 720."));
    }
    let key = m.load(id.into_inner(), Act::View).await?;
    let since = crate::verify::hour_of(crate::db::now()) - chrono::TimeDelta::hours(hours - 1);
    let ws = key.workspace_id.clone();
    let ids = vec![key.id.clone()];
    let rows = run(&m.state, move |c| {
        Ok(crate::db::usage::since(c, &ws, Some(&ids), since)?)
    })
    .await?;
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

/// Filters and page of `GET /api/v1/events`: the Events page's own.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// An exact action, e.g. `key.revoked`.
    action: Option<String>,
    /// Part of the actor's label (an email, or an API key's name).
    actor: Option<String>,
    /// A target's id: a key id or user id.
    key: Option<String>,
    /// Events per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(minimum = 1)]
    cursor: Option<i64>,
}

/// Who did it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventActor {
    /// A user id, an API key id (changes made through this API), or null.
    pub id: Option<String>,
    /// The actor's email or the key's name, as it was then.
    pub label: String,
}

/// What it was done to.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTargetView {
    /// `api_key`, `user`, `workspace` or `permission`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
    pub label: Option<String>,
}

/// One entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    #[schema(format = DateTime)]
    pub time: String,
    /// e.g. `key.created`, `key.revoked`.
    pub action: String,
    pub actor: EventActor,
    pub target: EventTargetView,
    /// The event in words, as on the Events page.
    pub sentence: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The action's recorded facts (never a secret).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// One page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    pub next_cursor: Option<i64>,
}

/// The audit trail, newest first, with the Events page's filters (admins).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventParams),
    security(("bearer" = [])),
    responses((status = 200, description = "One page of events", body = EventPage), Refusals)
)]
#[get("/events")]
pub async fn list_events(
    m: Manager<EventsRead>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    m.authorize(Action::ViewEvents)?;
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 100."));
    }
    if p.cursor.is_some_and(|c| c < 1) {
        return Err(ApiError::bad_request(
            "cursor is not valid: use next_cursor of the previous page.",
        ));
    }
    let query = crate::web::events::EventsQuery {
        action: p.action.unwrap_or_default(),
        actor: p.actor.unwrap_or_default(),
        key: p.key.unwrap_or_default(),
        before: p.cursor,
    };
    let filter = query.filter().map_err(ApiError::from)?;
    let ws = m.actor.workspace_id.clone();
    let before = p.cursor;
    let (events, next) = run(&m.state, move |c| {
        let mut found = crate::db::events::search(c, &ws, &filter, before, limit + 1)?;
        let next = if found.len() as i64 > limit {
            found.truncate(limit as usize);
            found.last().map(|e| e.id)
        } else {
            None
        };
        let words =
            crate::web::events::views(c, &ws, found.clone(), false).map_err(ApiError::from)?;
        let events = found
            .into_iter()
            .zip(words)
            .map(|(e, v)| EventView {
                id: e.id,
                time: time(e.created_at),
                action: e.action,
                actor: EventActor {
                    id: e.actor_id,
                    label: e.actor_label,
                },
                target: EventTargetView {
                    kind: e.target_type,
                    id: e.target_id,
                    label: e.target_label,
                },
                sentence: v.sentence,
                ip: e.ip,
                user_agent: e.user_agent,
                details: serde_json::from_str(&e.details).unwrap_or_else(|_| serde_json::json!({})),
            })
            .collect::<Vec<_>>();
        Ok((events, next))
    })
    .await?;
    Ok(HttpResponse::Ok().json(EventPage {
        events,
        next_cursor: next,
    }))
}

#[cfg(test)]
mod tests {
    use super::is_management_path;

    #[test]
    fn management_paths_are_keys_and_events_but_not_verify() {
        for p in [
            "/api/v1/keys",
            "/api/v1/keys/key_x",
            "/api/v1/keys/key_x/revoke",
            "/api/v1/events",
        ] {
            assert!(is_management_path(p), "{p}");
        }
        for p in [
            "/api/v1/keys/verify",
            "/api/v1/me",
            "/api/v1/forward-auth",
            "/api/v1/keysmith",
            "/workspace/keys",
        ] {
            assert!(!is_management_path(p), "{p}");
        }
    }
}
