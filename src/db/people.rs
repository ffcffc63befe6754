//! People: who signs in. A person has one email, name and password, and a
//! membership (`users` row) in each workspace they belong to.

use super::DbConn;
use super::schema::{people, users, workspaces};
use super::users::{STATUS_ACTIVE, User, with_person};
use crate::domain::Role;
use crate::domain::ids::new_id;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A person row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = people)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub last_workspace_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The person with this (normalised) email. Sign-in and invitations are the
/// only lookups not scoped by workspace.
pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<Person>> {
    people::table
        .filter(people::email.eq(email))
        .select(Person::as_select())
        .first(conn)
        .optional()
}

/// Add a person. `password_hash` is `None` for someone invited who has not
/// chosen a password yet.
pub fn insert(
    conn: &mut DbConn,
    email: &str,
    name: &str,
    password_hash: Option<&str>,
) -> QueryResult<Person> {
    let id = new_id("per");
    let now = super::now();
    diesel::insert_into(people::table)
        .values((
            people::id.eq(&id),
            people::email.eq(email),
            people::name.eq(name),
            people::password_hash.eq(password_hash),
            people::created_at.eq(now),
            people::updated_at.eq(now),
        ))
        .execute(conn)?;
    people::table
        .find(&id)
        .select(Person::as_select())
        .first(conn)
}

/// The person with this email, added (without a password) if new.
pub fn find_or_insert(conn: &mut DbConn, email: &str, name: &str) -> QueryResult<Person> {
    match find_by_email(conn, email)? {
        Some(person) => Ok(person),
        None => insert(conn, email, name, None),
    }
}

/// One of a person's workspaces, as the switcher and the workspaces page
/// show it.
#[derive(Debug, Clone, Queryable)]
pub struct Membership {
    /// The membership (`users` row) id.
    pub user_id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub role: String,
    /// `None` while the invitation is pending.
    pub accepted_at: Option<NaiveDateTime>,
}

impl Membership {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Operator)
    }

    pub fn is_pending(&self) -> bool {
        self.accepted_at.is_none()
    }
}

/// The person's active memberships (joined and pending), by workspace name.
pub fn memberships(conn: &mut DbConn, person_id: &str) -> QueryResult<Vec<Membership>> {
    users::table
        .inner_join(workspaces::table)
        .filter(users::person_id.eq(person_id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select((
            users::id,
            users::workspace_id,
            workspaces::name,
            users::role,
            users::accepted_at,
        ))
        .order((workspaces::name.asc(), workspaces::id.asc()))
        .load(conn)
}

/// The membership a sign-in lands in: the workspace the person last
/// switched to, if they still belong to it, else the one they joined first.
/// `None` when they belong to no workspace (removed from all, or only
/// invited).
pub fn sign_in_membership(conn: &mut DbConn, person: &Person) -> QueryResult<Option<User>> {
    let joined = || {
        with_person()
            .filter(users::person_id.eq(&person.id))
            .filter(users::status.eq(STATUS_ACTIVE))
            .filter(users::accepted_at.is_not_null())
            .select(User::as_select())
    };
    if let Some(last) = &person.last_workspace_id
        && let Some(user) = joined()
            .filter(users::workspace_id.eq(last))
            .first(conn)
            .optional()?
    {
        return Ok(Some(user));
    }
    joined()
        .order((users::accepted_at.asc(), users::id.asc()))
        .first(conn)
        .optional()
}

/// Remember the workspace a person is working in, for their next sign-in.
pub fn set_last_workspace(
    conn: &mut DbConn,
    person_id: &str,
    workspace_id: &str,
) -> QueryResult<()> {
    diesel::update(people::table.find(person_id))
        .set(people::last_workspace_id.eq(workspace_id))
        .execute(conn)?;
    Ok(())
}
