//! Keys: list, read, create, edit, switch off and on, regenerate, revoke,
//! delete, review and bulk revoke — the one set of rules for the pages and
//! the management API.

use super::plans::Choice;
use super::{Ctx, Error, Result, run};
use crate::db::keys::{self, ApiKey, Cursor, KeyWithOwner, NewKey, Scope};
use crate::db::{idempotency, permissions, workspaces};
use crate::domain::ceiling::{self, Grant};
use crate::domain::input::FieldError;
use crate::domain::keys::{self as dk, Environment, Expiry, Secret};
use crate::domain::policy::{self, Action, management};
use crate::domain::role::Role;
use crate::state::AppState;

/// Days within which an expiry counts as "soon".
pub const EXPIRING_DAYS: i64 = 7;

/// The most keys one bulk revoke takes.
pub const BULK_MAX: usize = 500;

/// A personal key (owned by the acting member) or a workspace key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Personal,
    Workspace,
}

impl Kind {
    /// The policy action that creates this kind of key.
    pub fn create_action(self) -> Action<'static> {
        match self {
            Kind::Personal => Action::CreatePersonalKey,
            Kind::Workspace => Action::CreateWorkspaceKey,
        }
    }
}

/// What is about to be done to one key, for the policy check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    View,
    /// Edit, regenerate, delete.
    Manage,
    /// Disable, enable, revoke.
    Revoke,
    /// Clear the "creator removed" flag.
    Review,
}

impl Act {
    fn action(self, key: policy::KeyRef<'_>) -> Action<'_> {
        match self {
            Act::View => Action::ViewKey(key),
            Act::Manage => Action::ManageKey(key),
            Act::Revoke => Action::RevokeKey(key),
            Act::Review => Action::ReviewKey(key),
        }
    }
}

/// The key with this id in the actor's workspace, once the policy allows
/// `act` on it; any other id is not found. The only way use cases reach a
/// key by id, so none can touch a key it forgot to authorize.
pub async fn load(state: &AppState, ctx: &Ctx, id: &str, act: Act) -> Result<ApiKey> {
    let ws = ctx.workspace_id().to_owned();
    let id = id.to_owned();
    let key = run(state, move |c| Ok(keys::get(c, &ws, &id)?))
        .await?
        .ok_or(Error::NotFound)?;
    ctx.authorize(act.action(key.key_ref()))?;
    Ok(key)
}

/// A revoked key can no longer be changed: the one refusal for editing,
/// regenerating, switching or revoking it (also before showing a form).
pub fn refuse_revoked(key: &ApiKey) -> Result<()> {
    if key.revoked_at.is_some() {
        Err(keys::KeyError::Revoked.into())
    } else {
        Ok(())
    }
}

/// A key that cannot be revoked (already revoked, or expired).
pub fn refuse_unrevocable(key: &ApiKey) -> Result<()> {
    if key.status(crate::db::now()).can_revoke() {
        Ok(())
    } else {
        Err(keys::KeyError::NotRevocable.into())
    }
}

// ---- lists ------------------------------------------------------------------

/// The list a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The actor's personal keys.
    Own,
    /// Workspace-owned keys.
    Workspace,
    /// Every key of the workspace with its owner.
    All,
}

impl Listing {
    fn action(self) -> Action<'static> {
        match self {
            Listing::Own => Action::ListOwnKeys,
            Listing::Workspace => Action::ListWorkspaceKeys,
            Listing::All => Action::ListAllKeys,
        }
    }
}

/// Which keys the actor may see in `listing`.
pub fn scope_of(ctx: &Ctx, listing: Listing) -> Result<Scope> {
    ctx.authorize(listing.action())?;
    Ok(match listing {
        Listing::Own => Scope::Owner(ctx.actor.user_id.clone()),
        Listing::Workspace => Scope::Workspace,
        Listing::All => Scope::All,
    })
}

/// Which keys the actor may see when asking by owner and kind (the
/// management API's filters): an admin any of the workspace's, anyone else
/// only their own personal keys. `None`: the filters ask for nothing the
/// actor may see (an empty list, not a refusal).
pub fn scope_filtered(
    ctx: &Ctx,
    owner: Option<&str>,
    workspace_only: bool,
) -> Result<Option<Scope>> {
    let me = ctx.actor.user_id.as_str();
    let owner = owner.map(|o| if o == "me" { me } else { o });
    if ctx.may(Action::ListAllKeys) {
        return Ok(Some(match (owner, workspace_only) {
            (Some(o), _) => Scope::Owner(o.to_owned()),
            (None, true) => Scope::Workspace,
            (None, false) => Scope::All,
        }));
    }
    ctx.authorize(Action::ListOwnKeys)?;
    let others = owner.is_some_and(|o| o != me);
    Ok((!workspace_only && !others).then(|| Scope::Owner(me.to_owned())))
}

/// One page of a key list and the cursor of the next.
pub struct Page {
    pub keys: Vec<KeyWithOwner>,
    pub next: Option<Cursor>,
}

/// A list query as a person or script sends it.
pub struct ListQuery {
    pub q: String,
    pub filter: keys::Filter,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// Refuse a full key in a search: a secret must never travel in a URL.
pub fn refuse_full_key(q: &str) -> Result<()> {
    if matches!(dk::value_query(q), Some(dk::ValueQuery::Full(_))) {
        return Err(Error::BadRequest(
            "The search holds a full key: a secret must never be put in a URL. Check a key with POST /api/v1/keys/verify instead.".into(),
        ));
    }
    Ok(())
}

/// One page of the keys in `scope` (from [`scope_of`] or
/// [`scope_filtered`]), newest first.
pub async fn list(state: &AppState, ctx: &Ctx, scope: Scope, query: ListQuery) -> Result<Page> {
    let ws = ctx.workspace_id().to_owned();
    let ListQuery {
        q,
        filter,
        after,
        limit,
    } = query;
    let q = q.trim().to_owned();
    refuse_full_key(&q)?;
    let (keys, next) = run(state, move |c| {
        Ok(keys::list(
            c,
            &ws,
            &scope,
            &q,
            &filter,
            after.as_ref(),
            limit,
        )?)
    })
    .await?;
    Ok(Page { keys, next })
}

/// "Expiring soon" as a filter bound: now plus [`EXPIRING_DAYS`].
pub fn expiring_until() -> chrono::NaiveDateTime {
    crate::db::now() + chrono::TimeDelta::days(EXPIRING_DAYS)
}

// ---- create -------------------------------------------------------------------

/// A list field as sent: one text split on commas and line breaks (a
/// form), or separate items (JSON).
#[derive(Debug, Clone)]
pub enum ListInput {
    Text(String),
    Items(Vec<String>),
}

impl Default for ListInput {
    fn default() -> Self {
        ListInput::Text(String::new())
    }
}

impl ListInput {
    /// The text the parsers split; an item holding a comma or line break
    /// would silently become two, so it is refused for `field`.
    pub(crate) fn text(&self, field: &'static str, errors: &mut Vec<FieldError>) -> String {
        match self {
            ListInput::Text(t) => t.clone(),
            ListInput::Items(items) => {
                if items.iter().any(|i| i.contains([',', '\n', '\r'])) {
                    errors.push(FieldError::new(
                        field,
                        format!("Items of {field} cannot contain commas or line breaks."),
                    ));
                }
                items.join("\n")
            }
        }
    }
}

/// A new key's fields as sent (by the create form or the management API),
/// before any check.
#[derive(Debug, Clone, Default)]
pub struct NewKeyInput {
    pub name: String,
    pub description: String,
    pub tags: ListInput,
    /// `live`, `test` or `dev`.
    pub environment: String,
    pub permissions: Vec<String>,
    /// The expiry as the sender chose it, already read from its own
    /// format; `None`: the default (90 days, or the longest the workspace
    /// allows). The workspace maximum is applied by [`validate`].
    pub expiry: Option<std::result::Result<Expiry, FieldError>>,
    /// Requests per minute; empty for none.
    pub rate_limit: String,
    pub resources: ListInput,
    /// The IP allowlist: addresses and CIDR ranges; nothing for none.
    pub allowed_ips: ListInput,
    /// The usage quota; a blank limit for none.
    pub quota: crate::domain::quota::QuotaInput,
    /// Keep the secret, encrypted, so it can be shown again (issue 27):
    /// only where the workspace turned recoverable keys on.
    pub recoverable: bool,
    /// The id of the plan to put the key on; empty: none. Its rate limit,
    /// quota and IP allowlist apply where the sender chose none.
    pub plan: String,
}

/// A new key's fields, checked against the workspace's rules.
#[derive(Debug, Clone)]
pub struct ValidKey {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub environment: Environment,
    pub expiry: Expiry,
    pub rate_limit: Option<i32>,
    pub resources: Vec<String>,
    pub permissions: Vec<String>,
    /// The stored form of the IP allowlist; `None`: none.
    pub allowed_ips: Option<String>,
    pub quota: Option<crate::domain::quota::Quota>,
}

/// The grant of an existing key, for the ceiling.
pub(super) fn grant_of<'a>(
    key: &'a ApiKey,
    permissions: &'a [String],
    resources: &'a [String],
) -> Grant<'a> {
    Grant {
        permissions,
        environment: dk_environment(key),
        expires_at: key.expires_at,
        resources,
        rate_limit: key.rate_limit,
        allowed_ips: key.allowed_ips.as_deref(),
        quota_limit: key.quota_limit,
    }
}

fn dk_environment(key: &ApiKey) -> &'static str {
    key.environment().as_str()
}

/// Through the management API, the acting key is the ceiling of every key
/// it creates, edits or regenerates: refused, naming each field that would
/// be broader than the acting key (pages act for a person, not a key, and
/// have no ceiling but the role).
pub(super) fn within_ceiling(ctx: &Ctx, wanted: &Grant<'_>) -> Result<()> {
    let Some(acting) = &ctx.via_key else {
        return Ok(());
    };
    let (permissions, resources) = (acting.permission_list(), acting.resource_list());
    let exceeding = ceiling::exceeding(&grant_of(acting, &permissions, &resources), wanted);
    if exceeding.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(exceeding))
    }
}

/// [`within_ceiling`] for an existing key as it is.
fn key_within_ceiling(ctx: &Ctx, key: &ApiKey) -> Result<()> {
    let (permissions, resources) = (key.permission_list(), key.resource_list());
    within_ceiling(ctx, &grant_of(key, &permissions, &resources))
}

/// The one reading of an IP allowlist as sent (a form's text or the API's
/// items): its stored form, `None` for no allowlist.
pub(super) fn parse_allowlist(
    input: &ListInput,
    errors: &mut Vec<FieldError>,
) -> std::result::Result<Option<String>, FieldError> {
    // A JSON list is held to its documented `maxItems` as sent: a blank or
    // repeated item is dropped once counted, not before.
    if let ListInput::Items(items) = input
        && items.len() > crate::domain::allowlist::MAX_ENTRIES
    {
        return Err(crate::domain::allowlist::too_many(items.len()));
    }
    let text = input.text(crate::domain::allowlist::FIELD, errors);
    crate::domain::allowlist::parse(&text)
        .map(|list| crate::domain::allowlist::stored(list.as_ref()))
}

/// A new key's setting on a plan: a value chosen overrides the plan's
/// (unless equal to it); none chosen follows the plan.
fn chosen<T>(value: Option<T>) -> Choice<Option<T>> {
    match value {
        Some(v) => Choice::Choose(Some(v)),
        None => Choice::Follow,
    }
}

/// Keep a value, or remember its field's error.
pub(super) fn keep<T>(
    r: std::result::Result<T, FieldError>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// The management permissions a member of `role` may give a key of `kind`.
pub fn grantable(role: Role, kind: Kind) -> &'static [&'static str] {
    policy::grantable_management(role, kind == Kind::Workspace)
}

/// Expiry presets no longer than the workspace maximum.
pub fn presets_within(max: Option<i32>) -> Vec<i64> {
    dk::EXPIRY_PRESETS
        .into_iter()
        .filter(|d| max.is_none_or(|m| *d <= i64::from(m)))
        .collect()
}

/// The default expiry offered for new keys: 90 days, or the longest preset
/// the workspace allows.
pub fn default_expiry_days(max: Option<i32>) -> i64 {
    presets_within(max)
        .into_iter()
        .rfind(|d| *d <= 90)
        .unwrap_or(7)
}

/// Check a new key's fields: names, tags, the workspace's maximum expiry,
/// its permission catalog, who may grant management permissions.
pub fn validate(
    input: &NewKeyInput,
    catalog: &[permissions::Permission],
    workspace: &workspaces::Workspace,
    role: Role,
    kind: Kind,
) -> std::result::Result<ValidKey, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = keep(dk::parse_name(&input.name), &mut errors);
    let description = keep(dk::parse_description(&input.description), &mut errors);
    let tags_text = input.tags.text("tags", &mut errors);
    let tags = keep(dk::parse_tags(&tags_text), &mut errors);
    let environment = input.environment.parse::<Environment>().ok();
    if environment.is_none() {
        errors.push(FieldError::new(
            "environment",
            "Choose an environment: production, staging or development.",
        ));
    }
    let today = crate::db::now().date();
    let expiry = input
        .expiry
        .clone()
        .unwrap_or(Ok(Expiry::Days(default_expiry_days(
            workspace.max_expiry_days,
        ))))
        .and_then(|e| dk::within_max(e, workspace.max_expiry_days, today));
    let expiry = keep(expiry, &mut errors);
    let rate_limit = keep(dk::parse_rate_limit(&input.rate_limit), &mut errors);
    let resources_text = input.resources.text("resources", &mut errors);
    let resources = keep(dk::parse_resources(&resources_text), &mut errors);
    let allowed_ips = keep(
        parse_allowlist(&input.allowed_ips, &mut errors),
        &mut errors,
    );
    let quota = input
        .quota
        .parse()
        .map_err(|mut e| errors.append(&mut e))
        .ok();
    let management = grantable(role, kind);
    let mut chosen: Vec<String> = Vec::new();
    for p in &input.permissions {
        if management::is_management(p) {
            if !management.contains(&p.as_str()) {
                errors.push(FieldError::new(
                    "permissions",
                    if management::ALL.contains(&p.as_str()) {
                        format!("Your role cannot give \"{p}\" to this kind of key.")
                    } else {
                        format!("\"{p}\" is not a permission of keyward.")
                    },
                ));
                continue;
            }
        } else if !catalog.iter().any(|c| &c.name == p) {
            errors.push(FieldError::new(
                "permissions",
                format!("\"{p}\" is not a permission of this workspace."),
            ));
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
        allowed_ips,
        quota,
    ) {
        (
            Some(name),
            Some(description),
            Some(tags),
            Some(environment),
            Some(expiry),
            Some(rate_limit),
            Some(resources),
            Some(allowed_ips),
            Some(quota),
        ) if errors.is_empty() => Ok(ValidKey {
            name,
            description,
            tags,
            environment,
            expiry,
            rate_limit,
            resources,
            permissions: chosen,
            allowed_ips,
            quota,
        }),
        _ => Err(errors),
    }
}

/// What the create dialog needs to offer: the workspace's permissions and
/// limits, and for personal keys how many count against the limit.
pub struct CreateFacts {
    pub catalog: Vec<permissions::Permission>,
    /// The plans a key may be put on.
    pub plans: Vec<crate::db::plans::Plan>,
    pub workspace: workspaces::Workspace,
    /// Personal keys: (used, limit).
    pub personal: Option<(i64, i64)>,
}

/// The facts a new key is checked against; refused while API keys are
/// switched off for the workspace.
pub async fn create_facts(state: &AppState, ctx: &Ctx, kind: Kind) -> Result<CreateFacts> {
    ctx.authorize(kind.create_action())?;
    facts_for(state, ctx, kind, ctx.actor.user_id.clone()).await
}

/// [`create_facts`] for keys owned by `me` (the actor, or the service
/// account an admin creates a key for), authorized by the caller.
async fn facts_for(state: &AppState, ctx: &Ctx, kind: Kind, me: String) -> Result<CreateFacts> {
    let ws = ctx.workspace_id().to_owned();
    let facts = run(state, move |c| {
        let workspace = workspaces::get(c, &ws)?;
        let personal = if kind == Kind::Personal {
            let used = keys::count_live_personal(c, &ws, &me)?;
            Some((used, i64::from(workspace.max_keys_per_user)))
        } else {
            None
        };
        Ok(CreateFacts {
            catalog: permissions::active(c, &ws)?,
            plans: crate::db::plans::all(c, &ws)?,
            workspace,
            personal,
        })
    })
    .await?;
    if facts.workspace.api_keys_disabled_at.is_some() {
        return Err(Error::conflict(
            "API_KEYS_DISABLED",
            "API keys are switched off for this workspace, so no key can be created. An admin can turn them back on in Settings.",
        ));
    }
    Ok(facts)
}

/// What makes a repeated request do nothing the second time.
#[derive(Debug, Clone)]
pub enum Once {
    /// The form's one-time nonce: a repeat is refused (`DUPLICATE_REQUEST`).
    Nonce(String),
    /// The API's `Idempotency-Key` with a fingerprint of the request: a
    /// repeat answers the key made the first time, without its secret.
    Idempotency { key: String, fingerprint: String },
    /// Nothing: every request acts.
    Never,
}

impl Once {
    fn nonce(&self) -> String {
        match self {
            Once::Nonce(n) => n.clone(),
            _ => crate::domain::ids::new_token(),
        }
    }
}

/// A key made (with its secret, shown this once) or, for a repeated
/// request with the same `Idempotency-Key`, the key made the first time.
pub struct Made {
    pub key: ApiKey,
    /// `None` for a repeat: a secret is never shown twice.
    pub secret: Option<Secret>,
}

/// The key an earlier request with this `Idempotency-Key` made, or a
/// refusal when the value was used for a different request.
async fn replay(
    state: &AppState,
    ctx: &Ctx,
    once: &Once,
    operation: &'static str,
) -> Result<Option<ApiKey>> {
    let (Once::Idempotency { key, fingerprint }, Some(actor_key)) = (once, &ctx.via_key) else {
        return Ok(None);
    };
    let ws = ctx.workspace_id().to_owned();
    let actor_key = actor_key.id.clone();
    let idem = key.clone();
    let Some(found) = run(state, move |c| {
        Ok(idempotency::find(c, &ws, &actor_key, &idem)?)
    })
    .await?
    else {
        return Ok(None);
    };
    if found.operation != operation || &found.fingerprint != fingerprint {
        return Err(Error::Unprocessable {
            code: "IDEMPOTENCY_KEY_REUSED",
            message: "This Idempotency-Key was already used for a different request in the last 24 hours. Use a new key for a new request.".into(),
        });
    }
    let ws = ctx.workspace_id().to_owned();
    let key = run(state, move |c| Ok(keys::get(c, &ws, &found.key_id)?))
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "IDEMPOTENT_KEY_GONE",
                "The key this Idempotency-Key made has since been deleted.",
            )
        })?;
    Ok(Some(key))
}

/// Record an `Idempotency-Key` in the transaction that acted on `key_id`.
fn remember(
    c: &mut crate::db::DbConn,
    ctx: &Ctx,
    once: &Once,
    operation: &str,
    key_id: &str,
) -> std::result::Result<(), keys::KeyError> {
    if let (Once::Idempotency { key, fingerprint }, Some(actor_key)) = (once, &ctx.via_key) {
        idempotency::record(
            c,
            ctx.workspace_id(),
            &actor_key.id,
            key,
            operation,
            fingerprint,
            key_id,
        )?;
    }
    Ok(())
}

/// Whether a failed write lost the race to a concurrent twin with the same
/// `Idempotency-Key` (its record's primary key was taken).
fn lost_idempotency_race(once: &Once, e: &keys::KeyError) -> bool {
    matches!(
        (once, e),
        (Once::Idempotency { .. }, keys::KeyError::Db(e)) if idempotency::is_duplicate(e)
    )
}

/// The answer to a repeat that lost the race to its twin: the twin's key.
async fn twin(state: &AppState, ctx: &Ctx, once: &Once, operation: &'static str) -> Result<Made> {
    let key = replay(state, ctx, once, operation)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Made { key, secret: None })
}

/// Create a key of `kind`: checked against the workspace's rules, stored
/// as a digest only, audited; its secret is returned this once.
pub async fn create(
    state: &AppState,
    ctx: &Ctx,
    kind: Kind,
    input: NewKeyInput,
    once: Once,
) -> Result<Made> {
    ctx.authorize(kind.create_action())?;
    create_owned(state, ctx, kind, None, input, once).await
}

/// Create a key owned by the service account `account` (loaded and
/// authorized by `app::service_accounts`): a personal key of its
/// membership, checked against what the account's role may hold and, when
/// a management key asks, against that key's ceiling, so a narrow key
/// never mints a broader one through an account it created.
pub async fn create_for_service_account(
    state: &AppState,
    ctx: &Ctx,
    account: crate::db::users::User,
    input: NewKeyInput,
    once: Once,
) -> Result<Made> {
    if account.disabled_at.is_some() {
        return Err(keys::KeyError::OwnerDisabled.into());
    }
    create_owned(state, ctx, Kind::Personal, Some(account), input, once).await
}

/// [`create`] of a key owned by the actor (`service` `None`), the
/// workspace, or a service account, once authorized.
async fn create_owned(
    state: &AppState,
    ctx: &Ctx,
    kind: Kind,
    service: Option<crate::db::users::User>,
    input: NewKeyInput,
    once: Once,
) -> Result<Made> {
    if let Some(key) = replay(state, ctx, &once, "create").await? {
        return Ok(Made { key, secret: None });
    }
    let owner_id = service
        .as_ref()
        .map_or_else(|| ctx.actor.user_id.clone(), |a| a.id.clone());
    let facts = facts_for(state, ctx, kind, owner_id).await?;
    // A service account's key may hold what the account's role may.
    let role = service.as_ref().map_or(ctx.actor.role, |a| a.role());
    let mut valid =
        validate(&input, &facts.catalog, &facts.workspace, role, kind).map_err(Error::Invalid)?;
    // On a plan, what the sender left unset is the plan's.
    let on_plan = match input.plan.trim() {
        "" => None,
        id => {
            let plan = super::plans::for_key(state, ctx, id).await?;
            super::plans::allows_permissions(&plan, &valid.permissions)?;
            let on = super::plans::resolve(
                &plan,
                chosen(valid.rate_limit),
                chosen(valid.allowed_ips.clone()),
                chosen(valid.quota),
            );
            valid.rate_limit = on.rate_limit;
            valid.allowed_ips = on.allowed_ips;
            valid.quota = on.quota;
            Some((plan.id, crate::domain::plans::stored(&on.overrides)))
        }
    };
    let mut expires_at = valid.expiry.expires_at(crate::db::now());
    // Without an expiry chosen, a key made by a management key gets the
    // default or the acting key's own expiry, whichever comes first; an
    // expiry chosen later than the acting key's is refused below.
    if input.expiry.is_none()
        && let Some(limit) = ctx.via_key.as_ref().and_then(|k| k.expires_at)
    {
        expires_at = Some(expires_at.map_or(limit, |at| at.min(limit)));
    }
    within_ceiling(
        ctx,
        &Grant {
            permissions: &valid.permissions,
            environment: valid.environment.as_str(),
            expires_at,
            resources: &valid.resources,
            rate_limit: valid.rate_limit,
            allowed_ips: valid.allowed_ips.as_deref(),
            quota_limit: valid.quota.map(|q| q.limit),
        },
    )?;
    let sealer = super::recover::sealer(state, &facts.workspace, input.recoverable)?;
    let (secret, secret_facts) =
        dk::generate_with(&state.config.leaks.key_prefix, valid.environment);
    let digest = secret_facts.digest.clone();
    // The secret is sealed with the key's id, known only once it is made:
    // in the same transaction, so a key is never recoverable without it.
    let to_seal = sealer.map(|keys| (keys, secret.duplicate()));
    let max_personal = i64::from(facts.workspace.max_keys_per_user);
    let personal = kind == Kind::Personal;
    let write = move |c: &mut crate::db::DbConn, ctx: &Ctx, nonce: &str| {
        let user = service.as_ref().unwrap_or(&ctx.user);
        if personal {
            // The workspace's limit on personal keys: creations in this
            // workspace are serialised so concurrent requests cannot
            // both pass the count.
            workspaces::lock(c, ctx.workspace_id())?;
            // A service account as it is now, under the lock its disabling
            // and deletion take too: one disabled or deleted since it was
            // loaded gets no key (which would be born unmarked).
            if service.is_some() {
                match crate::db::service_accounts::get(c, ctx.workspace_id(), &user.id)? {
                    None => return Err(keys::KeyError::NotFound),
                    Some(a) if a.disabled_at.is_some() => {
                        return Err(keys::KeyError::OwnerDisabled);
                    }
                    Some(_) => {}
                }
            }
            if keys::count_live_personal(c, ctx.workspace_id(), &user.id)? >= max_personal {
                return Err(keys::KeyError::LimitReached(max_personal));
            }
        }
        let owner_label = format!("{} {}", user.email, user.name);
        let mut key = keys::create(
            c,
            &ctx.audit,
            NewKey {
                owner: personal.then_some((user.id.as_str(), owner_label.as_str())),
                created_by: Some(&ctx.user.id),
                name: &valid.name,
                description: &valid.description,
                tags: &valid.tags,
                permissions: &valid.permissions,
                resources: &valid.resources,
                facts: &secret_facts,
                expires_at,
                rate_limit: valid.rate_limit,
                allowed_ips: valid.allowed_ips.as_deref(),
                quota: valid.quota,
                plan: on_plan
                    .as_ref()
                    .map(|(id, own)| (id.as_str(), own.as_str())),
                request_nonce: nonce,
                recoverable: to_seal.is_some(),
            },
        )?;
        if let Some((operator, secret)) = &to_seal {
            let sealed = operator.seal(&key.workspace_id, &key.id, secret.expose());
            crate::db::secrets::store(c, &key.workspace_id, &key.id, &sealed)?;
            key.recoverable = true;
        }
        Ok(key)
    };
    act_once(state, ctx, &once, "create", (secret, digest), write).await
}

/// Run `write` in one write transaction with the record of the request's
/// `Idempotency-Key`: the key it made is answered with `secret` (shown this
/// once); a concurrent twin that won the race answers for both, without it.
/// `digest` is the new secret's: a commit in doubt is settled by looking
/// for it, and when the key is there the secret is shown after all (this
/// request made it, and is still the one time it is shown).
async fn act_once<W>(
    state: &AppState,
    ctx: &Ctx,
    once: &Once,
    operation: &'static str,
    (secret, digest): (Secret, String),
    write: W,
) -> Result<Made>
where
    W: FnOnce(&mut crate::db::DbConn, &Ctx, &str) -> std::result::Result<ApiKey, keys::KeyError>
        + Send
        + 'static,
{
    let (c_ctx, c_once) = (ctx.clone(), once.clone());
    let done = run(state, move |c| {
        let nonce = c_once.nonce();
        let result = crate::db::write_transaction::<_, keys::KeyError, _>(c, |c| {
            let key = write(c, &c_ctx, &nonce)?;
            remember(c, &c_ctx, &c_once, operation, &key.id)?;
            Ok(key)
        });
        match result {
            Ok(key) => Ok(Some(key)),
            Err(e) if lost_idempotency_race(&c_once, &e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await;
    let ws = ctx.workspace_id().to_owned();
    let done = super::settle(state, done, move |c| {
        Ok(keys::get_by_digest(c, &ws, &digest)?.map(Some))
    })
    .await?;
    match done {
        Some(key) => Ok(Made {
            key,
            secret: Some(secret),
        }),
        None => twin(state, ctx, once, operation).await,
    }
}

// ---- one key ------------------------------------------------------------------

/// Changes to a key's editable details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<ListInput>,
    /// Requests per minute; empty removes the limit.
    pub rate_limit: Option<String>,
    /// The IP allowlist; empty removes it.
    pub allowed_ips: Option<ListInput>,
    /// The usage quota; a blank limit removes it.
    pub quota: Option<crate::domain::quota::QuotaInput>,
    /// Put the key on the plan with this id; empty: take it off its plan
    /// (it keeps its settings as its own).
    pub plan: Option<String>,
}

/// A key's settings after an edit, on the plan it ends up on. A setting
/// the edit changes is the key's own unless it equals the plan's; one it
/// leaves as it was stays overridden if it was, else follows the plan
/// (so a key joining a plan takes the plan's settings).
fn settle_plan(
    key: &ApiKey,
    plan: Option<&crate::db::plans::Plan>,
    (rate_limit, allowed_ips, quota): (
        Option<i32>,
        Option<String>,
        Option<crate::domain::quota::Quota>,
    ),
) -> (
    Option<i32>,
    Option<String>,
    Option<crate::domain::quota::Quota>,
    Option<String>,
    String,
) {
    use crate::domain::plans::{Field, overrides, stored};
    let Some(plan) = plan else {
        return (rate_limit, allowed_ips, quota, None, String::new());
    };
    let own = overrides(&key.plan_overrides);
    let kept = |f: Field| key.plan_id.is_some() && own.contains(&f);
    fn choice<T: PartialEq>(new: T, current: T, kept: bool) -> Choice<T> {
        if new != current {
            Choice::Choose(new)
        } else if kept {
            Choice::Keep(new)
        } else {
            Choice::Follow
        }
    }
    let on = super::plans::resolve(
        plan,
        choice(rate_limit, key.rate_limit, kept(Field::RateLimit)),
        choice(
            allowed_ips,
            key.allowed_ips.clone(),
            kept(Field::AllowedIps),
        ),
        choice(quota, key.quota(), kept(Field::Quota)),
    );
    (
        on.rate_limit,
        on.allowed_ips,
        on.quota,
        Some(plan.id.clone()),
        stored(&on.overrides),
    )
}

/// Edit a key's name, description, tags, rate limit, IP allowlist, quota
/// or plan.
pub async fn update(state: &AppState, ctx: &Ctx, id: &str, edit: Edit) -> Result<ApiKey> {
    let key = load(state, ctx, id, Act::Manage).await?;
    refuse_revoked(&key)?;
    let mut errors = Vec::new();
    let name = match &edit.name {
        Some(n) => keep(dk::parse_name(n), &mut errors),
        None => Some(key.name.clone()),
    };
    let description = match &edit.description {
        Some(d) => keep(dk::parse_description(d), &mut errors),
        None => Some(key.description.clone()),
    };
    let tags = match &edit.tags {
        Some(t) => {
            let text = t.text("tags", &mut errors);
            keep(dk::parse_tags(&text), &mut errors)
        }
        None => Some(key.tag_list()),
    };
    let rate_limit = match &edit.rate_limit {
        Some(r) => keep(dk::parse_rate_limit(r), &mut errors),
        None => Some(key.rate_limit),
    };
    let allowed_ips = match &edit.allowed_ips {
        Some(list) => keep(parse_allowlist(list, &mut errors), &mut errors),
        None => Some(key.allowed_ips.clone()),
    };
    let quota = match &edit.quota {
        Some(q) => q.parse().map_err(|mut e| errors.append(&mut e)).ok(),
        None => Some(key.quota()),
    };
    let (
        Some(name),
        Some(description),
        Some(tags),
        Some(rate_limit),
        Some(allowed_ips),
        Some(quota),
    ) = (name, description, tags, rate_limit, allowed_ips, quota)
    else {
        return Err(Error::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let plan = match edit.plan.as_deref().map(str::trim) {
        Some("") => None,
        Some(id) => Some(super::plans::for_key(state, ctx, id).await?),
        None => match &key.plan_id {
            Some(id) => {
                let (ws, id) = (key.workspace_id.clone(), id.clone());
                run(state, move |c| Ok(crate::db::plans::get(c, &ws, &id)?)).await?
            }
            None => None,
        },
    };
    if let Some(p) = &plan
        && key.plan_id.as_deref() != Some(p.id.as_str())
    {
        super::plans::allows_permissions(p, &key.permission_list())?;
    }
    let (rate_limit, allowed_ips, quota, plan_id, plan_overrides) =
        settle_plan(&key, plan.as_ref(), (rate_limit, allowed_ips, quota));
    let (permissions, resources) = (key.permission_list(), key.resource_list());
    within_ceiling(
        ctx,
        &Grant {
            rate_limit,
            allowed_ips: allowed_ips.as_deref(),
            quota_limit: quota.map(|q| q.limit),
            ..grant_of(&key, &permissions, &resources)
        },
    )?;
    let audit = ctx.audit.clone();
    let (ws, id) = (key.workspace_id.clone(), key.id.clone());
    let wanted = keys::Details {
        name: name.clone(),
        description: description.clone(),
        tags: tags.clone(),
        rate_limit,
        allowed_ips: allowed_ips.clone(),
        quota,
        plan_id: plan_id.clone(),
        plan_overrides: plan_overrides.clone(),
    };
    let written = run(state, move |c| {
        // The owner's email and name stay searchable under the new name.
        let owner = match &key.owner_id {
            Some(owner) => crate::db::users::get(c, &key.workspace_id, owner)?
                .map(|u| format!("{} {}", u.email, u.name)),
            None => None,
        };
        let details = keys::Details {
            name,
            description,
            tags,
            rate_limit,
            allowed_ips,
            quota,
            plan_id,
            plan_overrides,
        };
        Ok(keys::update_details(
            c,
            &audit,
            &key,
            owner.as_deref(),
            &details,
        )?)
    })
    .await;
    // The details read back as sent settle a commit in doubt.
    super::settle(state, written, move |c| {
        Ok(keys::get(c, &ws, &id)?.filter(|k| {
            k.name == wanted.name
                && k.description == wanted.description
                && k.tag_list() == wanted.tags
                && k.rate_limit == wanted.rate_limit
                && k.allowed_ips == wanted.allowed_ips
                && k.quota() == wanted.quota
                && k.plan_id == wanted.plan_id
                && k.plan_overrides == wanted.plan_overrides
        }))
    })
    .await
}

/// What is left of a key's quota.
#[derive(Debug, Clone)]
pub struct QuotaState {
    pub quota: crate::domain::quota::Quota,
    /// The database's balance plus this instance's unspent reserve (other
    /// instances may hold up to 64 uses each in reserve).
    pub remaining: i64,
    pub resets_at: Option<chrono::NaiveDateTime>,
}

/// A key's quota and what is left of it (`None`: the key has none).
pub async fn quota_state(state: &AppState, ctx: &Ctx, id: &str) -> Result<Option<QuotaState>> {
    let key = load(state, ctx, id, Act::View).await?;
    read_quota(state, &key).await
}

/// Checks of a key in one period of its quota: accepted (each spent its
/// cost, 1 unless the caller said otherwise) and refused for the quota.
#[derive(Debug, Clone)]
pub struct PeriodUse {
    pub period: crate::domain::quota::Period,
    pub start: chrono::NaiveDateTime,
    pub accepted: i64,
    pub refused: i64,
}

/// How many periods of a quota's history its key's page shows.
pub const QUOTA_PERIODS: usize = 4;

/// A metered key's checks in its quota's last [`QUOTA_PERIODS`] periods
/// (the current one first), from the usage counts; empty for a key whose
/// quota has no period (credits that never refill) or no quota.
pub async fn quota_periods(state: &AppState, ctx: &Ctx, id: &str) -> Result<Vec<PeriodUse>> {
    let key = load(state, ctx, id, Act::View).await?;
    let Some((_, period)) = key.quota().and_then(|q| q.refill) else {
        return Ok(Vec::new());
    };
    let mut starts = vec![period.start_of(crate::db::now())];
    while starts.len() < QUOTA_PERIODS {
        let earlier = period.previous(starts[starts.len() - 1]);
        starts.push(earlier);
    }
    let oldest = starts[starts.len() - 1];
    let (ws, ids) = (key.workspace_id.clone(), vec![key.id.clone()]);
    let rows = run(state, move |c| {
        Ok(crate::db::usage::since(c, &ws, Some(&ids), oldest)?)
    })
    .await?;
    Ok(starts
        .iter()
        .map(|start| {
            let end = period.next(*start);
            let in_period = rows.iter().filter(|r| r.hour >= *start && r.hour < end);
            let (mut accepted, mut refused) = (0, 0);
            for r in in_period {
                match r.outcome.as_str() {
                    "VALID" => accepted += r.count,
                    "QUOTA_EXCEEDED" => refused += r.count,
                    _ => {}
                }
            }
            PeriodUse {
                period,
                start: *start,
                accepted,
                refused,
            }
        })
        .collect())
}

async fn read_quota(state: &AppState, key: &ApiKey) -> Result<Option<QuotaState>> {
    let Some(quota) = key.quota() else {
        return Ok(None);
    };
    let id = key.id.clone();
    let now = crate::db::now();
    let in_db = run(state, move |c| {
        Ok(crate::db::quotas::remaining(c, &id, &quota, now)?)
    })
    .await?;
    Ok(Some(QuotaState {
        quota,
        remaining: in_db + state.verifier.quotas.held(&key.id),
        resets_at: quota.refills_at(now),
    }))
}

/// What is left of the quotas of `keys` that have one (a page of a list
/// the actor was allowed to see): the database's balance plus this
/// instance's reserve, as on each key's page.
pub async fn quotas_left(
    state: &AppState,
    keys: &[&ApiKey],
) -> Result<std::collections::HashMap<String, i64>> {
    let metered: Vec<(String, crate::domain::quota::Quota)> = keys
        .iter()
        .filter_map(|k| k.quota().map(|q| (k.id.clone(), q)))
        .collect();
    if metered.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let now = crate::db::now();
    let left = run(state, move |c| {
        Ok(crate::db::quotas::remaining_of(c, &metered, now)?)
    })
    .await?;
    Ok(left
        .into_iter()
        .map(|(id, n)| {
            let held = state.verifier.quotas.held(&id);
            (id, n + held)
        })
        .collect())
}

/// A top-up as sent: set what is left, or add to it (text, as typed).
#[derive(Debug, Clone, Default)]
pub struct TopUp {
    pub set: Option<String>,
    pub add: Option<String>,
}

/// Top a key's quota up (who may edit the key may). Exactly one of set (0
/// or more) or add (1 or more), at most 1,000,000,000.
pub async fn top_up(state: &AppState, ctx: &Ctx, id: &str, input: TopUp) -> Result<QuotaState> {
    use crate::domain::quota::{MAX, thousands};
    let key = load(state, ctx, id, Act::Manage).await?;
    refuse_revoked(&key)?;
    if key.quota().is_none() {
        return Err(keys::KeyError::NoQuota.into());
    }
    let number = |text: &str, field: &'static str, min: i64| -> Result<i64> {
        match crate::domain::quota::uses(text) {
            Some(n) if (min..=MAX).contains(&n) => Ok(n),
            _ => Err(Error::Invalid(vec![FieldError::new(
                field,
                format!(
                    "Enter a whole number of uses from {min} to {}.",
                    thousands(MAX)
                ),
            )])),
        }
    };
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    let (set, add) = match (blank(&input.set), blank(&input.add)) {
        (false, true) => (
            Some(number(input.set.as_deref().unwrap_or(""), "set", 0)?),
            0,
        ),
        (true, false) => (None, number(input.add.as_deref().unwrap_or(""), "add", 1)?),
        _ => {
            return Err(Error::Invalid(vec![FieldError::new(
                "add",
                "Either add uses to what is left, or set what is left: one of the two.",
            )]));
        }
    };
    let audit = ctx.audit.clone();
    let k = key.clone();
    run(state, move |c| {
        Ok(keys::top_up_quota(c, &audit, &k, set, add)?)
    })
    .await?;
    read_quota(state, &key)
        .await?
        .ok_or_else(|| keys::KeyError::NoQuota.into())
}

/// A change of one key's state, from its row, its page or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    Disable,
    Enable,
    Revoke,
    Delete,
    Review,
}

impl Switch {
    fn act(self) -> Act {
        match self {
            Switch::Disable | Switch::Enable | Switch::Revoke => Act::Revoke,
            Switch::Review => Act::Review,
            Switch::Delete => Act::Manage,
        }
    }
}

/// Switch a key off or on, revoke, delete or review it. Returns the key as
/// it was before (a deleted key has no "after").
pub async fn switch(state: &AppState, ctx: &Ctx, id: &str, what: Switch) -> Result<ApiKey> {
    let key = load(state, ctx, id, what.act()).await?;
    match what {
        Switch::Disable | Switch::Enable => refuse_revoked(&key)?,
        Switch::Revoke => refuse_unrevocable(&key)?,
        Switch::Delete | Switch::Review => {}
    }
    let audit = ctx.audit.clone();
    let k = key.clone();
    let written = run(state, move |c| {
        match what {
            Switch::Disable => keys::set_disabled(c, &audit, &k, true).map(drop),
            Switch::Enable => keys::set_disabled(c, &audit, &k, false).map(drop),
            Switch::Revoke => keys::revoke(c, &audit, &k),
            Switch::Delete => keys::delete(c, &audit, &k),
            Switch::Review => keys::mark_reviewed(c, &audit, &k),
        }
        .map_err(Error::from)
    })
    .await;
    // Each switch sets a state that can be read back, so a commit in doubt
    // is settled by reading the key again.
    let (ws, id) = (key.workspace_id.clone(), key.id.clone());
    super::settle(state, written, move |c| {
        let now = keys::get(c, &ws, &id)?;
        let made = match (what, now) {
            (Switch::Delete, now) => now.is_none(),
            (_, None) => false,
            (Switch::Revoke, Some(k)) => k.revoked_at.is_some(),
            (Switch::Disable, Some(k)) => k.disabled_at.is_some(),
            (Switch::Enable, Some(k)) => k.disabled_at.is_none(),
            (Switch::Review, Some(k)) => k.creator_removed_at.is_none(),
        };
        Ok(made.then_some(()))
    })
    .await?;
    Ok(key)
}

/// Read a key as it is now (after a change).
pub async fn reread(state: &AppState, ctx: &Ctx, id: &str) -> Result<ApiKey> {
    let ws = ctx.workspace_id().to_owned();
    let id = id.to_owned();
    run(state, move |c| Ok(keys::get(c, &ws, &id)?))
        .await?
        .ok_or(Error::NotFound)
}

/// Give a key a new secret, shown once; the old one stops working now or
/// when `grace` ends. Its expiry is shortened to the workspace's maximum,
/// never extended.
pub async fn regenerate(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    grace: &str,
    once: Once,
) -> Result<Made> {
    let key = load(state, ctx, id, Act::Manage).await?;
    refuse_revoked(&key)?;
    // A new secret of a broader key would hand the caller that key.
    key_within_ceiling(ctx, &key)?;
    if let Some(key) = replay(state, ctx, &once, "regenerate").await? {
        return Ok(Made { key, secret: None });
    }
    let grace = dk::parse_grace(grace).map_err(|e| Error::Invalid(vec![e]))?;
    let (secret, facts) = dk::generate_with(&state.config.leaks.key_prefix, key.environment());
    let digest = facts.digest.clone();
    // A recoverable key stays recoverable with its new secret; without the
    // operator's keys (removed since) the old sealed secret is destroyed
    // and the key is no longer recoverable, rather than refusing a rotation.
    let reseal = key
        .recoverable
        .then(|| (state.config.recovery_keys.clone(), secret.duplicate()));
    let write = move |c: &mut crate::db::DbConn, ctx: &Ctx, nonce: &str| {
        // The write lock first, as creating a personal key takes it.
        workspaces::lock(c, ctx.workspace_id())?;
        let ws = workspaces::get(c, ctx.workspace_id())?;
        let cap = ws
            .max_expiry_days
            .map(|d| crate::db::now() + chrono::TimeDelta::days(i64::from(d)));
        let mut fresh = keys::regenerate(c, &ctx.audit, &key, &facts, grace, nonce, cap)?;
        match &reseal {
            Some((Some(operator), secret)) => {
                let sealed = operator.seal(&fresh.workspace_id, &fresh.id, secret.expose());
                crate::db::secrets::store(c, &fresh.workspace_id, &fresh.id, &sealed)?;
                fresh.recoverable = true;
            }
            Some((None, _)) => {
                crate::db::secrets::destroy(c, &fresh.workspace_id, &fresh.id)?;
                fresh.recoverable = false;
            }
            None => {}
        }
        Ok(fresh)
    };
    act_once(state, ctx, &once, "regenerate", (secret, digest), write).await
}

/// The keys selected for a bulk revoke, all of which the actor must be
/// allowed to revoke; any unknown or foreign id fails the whole request.
pub async fn selected(state: &AppState, ctx: &Ctx, ids: Vec<String>) -> Result<Vec<ApiKey>> {
    if ids.is_empty() {
        return Err(Error::BadRequest(
            "Select at least one key to revoke.".into(),
        ));
    }
    if ids.len() > BULK_MAX {
        return Err(Error::BadRequest(format!(
            "Select at most {BULK_MAX} keys at a time."
        )));
    }
    let ws = ctx.workspace_id().to_owned();
    let wanted = ids.clone();
    let found = run(state, move |c| Ok(keys::get_many(c, &ws, &wanted)?)).await?;
    let mut unique = ids;
    unique.sort();
    unique.dedup();
    if found.len() != unique.len() {
        return Err(Error::NotFound);
    }
    for key in &found {
        ctx.authorize(Action::RevokeKey(key.key_ref()))?;
    }
    Ok(found)
}

/// Revoke the selected keys in one transaction. Returns the keys selected,
/// how many were revoked and the names of those skipped (already revoked
/// or expired).
pub async fn bulk_revoke(
    state: &AppState,
    ctx: &Ctx,
    ids: Vec<String>,
) -> Result<(Vec<ApiKey>, usize, Vec<String>)> {
    let found = selected(state, ctx, ids).await?;
    let audit = ctx.audit.clone();
    let all = found.clone();
    let (revoked, skipped) = run(state, move |c| Ok(keys::revoke_many(c, &audit, &all)?)).await?;
    Ok((found, revoked, skipped))
}

/// Hourly verification counts of one key over the last `hours` hours.
pub async fn usage(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    hours: i64,
) -> Result<(
    ApiKey,
    chrono::NaiveDateTime,
    Vec<crate::db::usage::UsageRow>,
)> {
    if !(1..=720).contains(&hours) {
        return Err(Error::BadRequest("hours must be from 1 to 720.".into()));
    }
    let key = load(state, ctx, id, Act::View).await?;
    let since = crate::verify::hour_of(crate::db::now()) - chrono::TimeDelta::hours(hours - 1);
    let ws = key.workspace_id.clone();
    let ids = vec![key.id.clone()];
    let rows = run(state, move |c| {
        Ok(crate::db::usage::since(c, &ws, Some(&ids), since)?)
    })
    .await?;
    Ok((key, since, rows))
}
