//! Service accounts (issue 26): members that are not people, owning keys
//! that no person's departure takes down. The one set of rules for the
//! Users page and the management API: admins only (the policy's
//! `ServiceAccounts`, `ManageServiceAccount`, `RemoveServiceAccount`),
//! every lookup scoped to the actor's workspace.

use super::keys::{self as key_uc, Made, NewKeyInput, Once};
use super::{Ctx, Error, Result, run};
use crate::db::keys::{self, ApiKey, Filter, Scope};
use crate::db::service_accounts::{self as db, ServiceAccountError};
use crate::db::users::User;
use crate::domain::input::{FieldError, PersonName};
use crate::domain::keys as dk;
use crate::domain::policy::{Action, ServiceAccountRef};
use crate::domain::role::Role;
use crate::state::AppState;

impl From<ServiceAccountError> for Error {
    fn from(e: ServiceAccountError) -> Self {
        match e {
            ServiceAccountError::NotFound => Error::NotFound,
            ServiceAccountError::Db(e) => Error::Db(e),
        }
    }
}

/// A service account's fields as sent (form or API), before any check.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub name: String,
    pub description: String,
    /// `admin` or `normal`.
    pub role: String,
}

/// [`Input`], checked.
struct Valid {
    name: String,
    description: String,
    role: Role,
}

/// A service account acts as an admin or a normal user; an operator role
/// would give it nothing to do with keys, so it is refused.
fn parse_role(raw: &str) -> std::result::Result<Role, FieldError> {
    match raw.parse::<Role>() {
        Ok(role @ (Role::Admin | Role::Normal)) => Ok(role),
        _ => Err(FieldError::new(
            "role",
            "Choose a role for the service account: admin or normal user.",
        )),
    }
}

fn validate(input: &Input) -> Result<Valid> {
    let mut errors = Vec::new();
    let name = PersonName::parse(&input.name)
        .map_err(|e| errors.push(e))
        .ok();
    let description = dk::parse_description(&input.description)
        .map_err(|e| errors.push(e))
        .ok();
    let role = parse_role(&input.role).map_err(|e| errors.push(e)).ok();
    match (name, description, role) {
        (Some(name), Some(description), Some(role)) => Ok(Valid {
            name: name.into_inner(),
            description,
            role,
        }),
        _ => Err(Error::Invalid(errors)),
    }
}

fn target<'a>(ctx: &'a Ctx, id: &'a str) -> ServiceAccountRef<'a> {
    ServiceAccountRef {
        workspace_id: ctx.workspace_id(),
        user_id: id,
    }
}

/// The workspace's service accounts.
pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<User>> {
    ctx.authorize(Action::ServiceAccounts)?;
    let ws = ctx.workspace_id().to_owned();
    run(state, move |c| Ok(db::list(c, &ws)?)).await
}

/// The service account `id` of the actor's workspace, once the policy
/// allows managing it; any other id (another workspace's, a person's, a
/// deleted account's) is not found.
pub async fn get(state: &AppState, ctx: &Ctx, id: &str) -> Result<User> {
    ctx.authorize(Action::ServiceAccounts)?;
    let ws = ctx.workspace_id().to_owned();
    let wanted = id.to_owned();
    let account = run(state, move |c| Ok(db::get(c, &ws, &wanted)?))
        .await?
        .ok_or(Error::NotFound)?;
    ctx.authorize(Action::ManageServiceAccount(target(ctx, &account.id)))?;
    Ok(account)
}

/// Create a service account.
pub async fn create(state: &AppState, ctx: &Ctx, input: Input) -> Result<User> {
    ctx.authorize(Action::ServiceAccounts)?;
    let valid = validate(&input)?;
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(db::create(
            c,
            &audit,
            &valid.name,
            &valid.description,
            valid.role,
        )?)
    })
    .await
}

/// Change a service account's name, description and role.
pub async fn update(state: &AppState, ctx: &Ctx, id: &str, input: Input) -> Result<User> {
    let account = get(state, ctx, id).await?;
    let valid = validate(&input)?;
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(db::update(
            c,
            &audit,
            &account.id,
            &valid.name,
            &valid.description,
            valid.role,
        )?)
    })
    .await
}

/// Disable (`true`) or enable a service account: all its keys stop, or
/// work again, as this returns (and on other instances through the change
/// feed).
pub async fn set_disabled(state: &AppState, ctx: &Ctx, id: &str, disabled: bool) -> Result<User> {
    let account = get(state, ctx, id).await?;
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(db::set_disabled(c, &audit, &account.id, disabled)?)
    })
    .await
}

/// The account `id`, once the policy allows deleting it (never the
/// account a management key acts as).
pub async fn removable(state: &AppState, ctx: &Ctx, id: &str) -> Result<User> {
    let account = get(state, ctx, id).await?;
    match ctx.authorize(Action::RemoveServiceAccount(target(ctx, &account.id))) {
        Err(Error::RoleForbids) if account.id == ctx.actor.user_id => Err(Error::Forbidden(
            "A service account's key cannot delete the service account it acts as.".into(),
        )),
        other => other,
    }?;
    Ok(account)
}

/// Delete a service account and revoke all its keys, in one transaction.
/// Returns the account and how many keys were revoked.
pub async fn delete(state: &AppState, ctx: &Ctx, id: &str) -> Result<(User, usize)> {
    let account = removable(state, ctx, id).await?;
    let audit = ctx.audit.clone();
    run(state, move |c| Ok(db::delete(c, &audit, &account.id)?)).await
}

/// The account's keys (revoked ones included, deleted ones not), newest
/// first.
pub async fn keys(state: &AppState, ctx: &Ctx, id: &str) -> Result<(User, Vec<ApiKey>)> {
    let account = get(state, ctx, id).await?;
    let ws = ctx.workspace_id().to_owned();
    let owner = account.id.clone();
    let rows = run(state, move |c| {
        let (rows, _) = keys::list(
            c,
            &ws,
            &Scope::Owner(owner),
            "",
            &Filter::default(),
            None,
            key_uc::BULK_MAX as i64,
        )?;
        Ok(rows)
    })
    .await?;
    Ok((account, rows.into_iter().map(|r| r.key).collect()))
}

/// Create a key owned by the service account `id`.
pub async fn create_key(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    input: NewKeyInput,
    once: Once,
) -> Result<Made> {
    let account = get(state, ctx, id).await?;
    key_uc::create_for_service_account(state, ctx, account, input, once).await
}
