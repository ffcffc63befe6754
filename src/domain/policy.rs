//! Who may do what: the one place role checks live (PRODUCT.md, "People and
//! roles"). Every handler asks [`authorize`] before touching data.
//!
//! A target outside the actor's workspace, or a key the actor may not even
//! see, is reported as [`Decision::NotFound`] rather than `Forbidden`, so ids
//! guessed from another workspace or another user reveal nothing.

use super::Role;

/// The signed-in user performing an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The membership (`users` row) acting: one person in one workspace.
    pub user_id: String,
    /// The person behind it, the same in all their workspaces.
    pub person_id: String,
    pub workspace_id: String,
    pub role: Role,
}

/// Who owns a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner<'a> {
    /// A personal key of the user with this id.
    Personal(&'a str),
    /// A workspace (organization) key.
    Workspace,
    /// A key of the service account with this (membership) id.
    Service(&'a str),
}

/// The facts about a key that authorization needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub workspace_id: &'a str,
    pub owner: KeyOwner<'a>,
}

/// The facts about a user (as the target of an action) that authorization
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRef<'a> {
    pub workspace_id: &'a str,
    pub user_id: &'a str,
}

/// A service account (as the target of an action): its membership id in
/// its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAccountRef<'a> {
    pub workspace_id: &'a str,
    pub user_id: &'a str,
}

/// One of a person's memberships (another workspace they belong to or are
/// invited to), as the target of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipRef<'a> {
    pub person_id: &'a str,
}

/// Something an actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Account → Personal API keys: list one's own keys.
    ListOwnKeys,
    /// Create a personal key for oneself.
    CreatePersonalKey,
    /// Workspace → API keys: list workspace-owned keys.
    ListWorkspaceKeys,
    /// The "All keys" view: every key of the workspace with its owner.
    ListAllKeys,
    /// Create a workspace key.
    CreateWorkspaceKey,
    /// See one key's details.
    ViewKey(KeyRef<'a>),
    /// Edit, regenerate or delete a key.
    ManageKey(KeyRef<'a>),
    /// Disable, enable or revoke a key (admins may do this to any key of
    /// their workspace, for incident response).
    RevokeKey(KeyRef<'a>),
    /// Clear the "creator removed" flag after checking a workspace key.
    ReviewKey(KeyRef<'a>),
    /// Workspace → Users.
    ManageUsers,
    /// Remove a user from the workspace: an admin's job, and never one's
    /// own account (another admin does that), so nobody locks themselves
    /// out by a slip of the finger.
    RemoveUser(UserRef<'a>),
    /// Workspace → Users → Service accounts: list them and create one.
    ServiceAccounts,
    /// See, edit, disable or enable a service account, and create, rotate
    /// and revoke its keys.
    ManageServiceAccount(ServiceAccountRef<'a>),
    /// Delete a service account (its keys are revoked with it). Never
    /// itself: a service account's own management key cannot delete the
    /// account it acts as.
    RemoveServiceAccount(ServiceAccountRef<'a>),
    /// Workspace → Settings.
    ManageSettings,
    /// Workspace → Events.
    ViewEvents,
    /// Change one's own password.
    ChangeOwnPassword,
    /// Switch to another of one's workspaces, or accept or decline an
    /// invitation to one: only one's own memberships, whatever the role.
    UseMembership(MembershipRef<'a>),
}

/// The outcome of an authorization check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The actor's role does not permit this: a 403 page.
    Forbidden,
    /// The target is invisible to the actor: a 404 page.
    NotFound,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Decide whether `actor` may perform `action`.
pub fn authorize(actor: &Actor, action: Action<'_>) -> Decision {
    use Decision::{Allow, Forbidden, NotFound};
    let role = actor.role;
    let allow_if = |ok: bool| if ok { Allow } else { Forbidden };
    match action {
        Action::ChangeOwnPassword => Allow,
        Action::UseMembership(m) => {
            if m.person_id == actor.person_id {
                Allow
            } else {
                NotFound
            }
        }
        Action::ListOwnKeys | Action::CreatePersonalKey => {
            allow_if(matches!(role, Role::Admin | Role::Normal))
        }
        Action::ListWorkspaceKeys
        | Action::ListAllKeys
        | Action::CreateWorkspaceKey
        | Action::ManageUsers
        | Action::ServiceAccounts
        | Action::ManageSettings
        | Action::ViewEvents => allow_if(role == Role::Admin),
        Action::RemoveUser(target) => {
            if target.workspace_id != actor.workspace_id {
                NotFound
            } else {
                allow_if(role == Role::Admin && target.user_id != actor.user_id)
            }
        }
        Action::ManageServiceAccount(target) => {
            if target.workspace_id != actor.workspace_id {
                NotFound
            } else {
                allow_if(role == Role::Admin)
            }
        }
        Action::RemoveServiceAccount(target) => {
            if target.workspace_id != actor.workspace_id {
                NotFound
            } else {
                allow_if(role == Role::Admin && target.user_id != actor.user_id)
            }
        }
        Action::ReviewKey(key) => {
            if key.workspace_id != actor.workspace_id {
                NotFound
            } else if role == Role::Admin {
                Allow
            } else if role == Role::Normal && owned_by(key.owner, &actor.user_id) {
                // Their own key: they see it, but reviewing is an admin's job.
                Forbidden
            } else {
                // Keys a normal user or an operator cannot see stay invisible.
                NotFound
            }
        }
        Action::ViewKey(key) | Action::ManageKey(key) | Action::RevokeKey(key) => {
            if key.workspace_id != actor.workspace_id {
                return NotFound;
            }
            if role == Role::Operator {
                // Operators see no key at all: an existing id answers like a
                // made-up one, so ids cannot be probed.
                return NotFound;
            }
            let own = owned_by(key.owner, &actor.user_id);
            match (role, key.owner) {
                _ if own => Allow,
                // A service account's keys are the workspace's to run:
                // admins create, rotate and revoke them like workspace keys.
                (Role::Admin, KeyOwner::Workspace | KeyOwner::Service(_)) => Allow,
                // Admins see and can switch off anyone's key, but cannot edit,
                // regenerate (which would show them the new secret) or delete it.
                (Role::Admin, KeyOwner::Personal(_)) => match action {
                    Action::ManageKey(_) => Forbidden,
                    _ => Allow,
                },
                _ => NotFound,
            }
        }
    }
}

/// Whether `owner` is the member `user_id` (a person's own personal key,
/// or a service account's own key when its management key acts as it).
fn owned_by(owner: KeyOwner<'_>, user_id: &str) -> bool {
    match owner {
        KeyOwner::Personal(o) | KeyOwner::Service(o) => o == user_id,
        KeyOwner::Workspace => false,
    }
}

/// The built-in permissions that let a key manage keyward itself through
/// the management API. They are not part of any workspace's catalog.
pub mod management {
    /// List and read keys (`GET /api/v1/keys…`).
    pub const KEYS_READ: &str = "keyward:keys:read";
    /// Create, edit, switch off, regenerate, revoke and delete keys.
    pub const KEYS_WRITE: &str = "keyward:keys:write";
    /// Read the audit trail (`GET /api/v1/events`).
    pub const EVENTS_READ: &str = "keyward:events:read";
    /// List webhook endpoints and their delivery logs.
    pub const WEBHOOKS_READ: &str = "keyward:webhooks:read";
    /// Add, edit, delete webhook endpoints, roll secrets, test, resend.
    pub const WEBHOOKS_WRITE: &str = "keyward:webhooks:write";
    /// Show a recoverable key's secret again (issue 27): its own
    /// permission, never implied by `keyward:keys:write`.
    pub const KEYS_REVEAL: &str = "keyward:keys:reveal";
    /// List and read service accounts and their keys.
    pub const SERVICE_ACCOUNTS_READ: &str = "keyward:service-accounts:read";
    /// Create, edit, disable, enable and delete service accounts, and
    /// create keys for them (never broader than the acting key).
    pub const SERVICE_ACCOUNTS_WRITE: &str = "keyward:service-accounts:write";
    /// Read workspace settings (single sign-on).
    pub const SETTINGS_READ: &str = "keyward:settings:read";
    /// Change workspace settings (single sign-on).
    pub const SETTINGS_WRITE: &str = "keyward:settings:write";
    /// List and read plans.
    pub const PLANS_READ: &str = "keyward:plans:read";
    /// Create, edit and delete plans (an edit changes every key on the
    /// plan, never beyond the acting key's own settings).
    pub const PLANS_WRITE: &str = "keyward:plans:write";
    /// All of them, in the order the create dialog lists them.
    pub const ALL: [&str; 12] = [
        KEYS_READ,
        KEYS_WRITE,
        KEYS_REVEAL,
        EVENTS_READ,
        WEBHOOKS_READ,
        WEBHOOKS_WRITE,
        SERVICE_ACCOUNTS_READ,
        SERVICE_ACCOUNTS_WRITE,
        SETTINGS_READ,
        SETTINGS_WRITE,
        PLANS_READ,
        PLANS_WRITE,
    ];

    /// Whether `name` is one of the management permissions (the
    /// `keyward:` prefix is reserved for them).
    pub fn is_management(name: &str) -> bool {
        name.starts_with("keyward:")
    }
}

/// The management permissions a user of `role` may put on a new key. On
/// workspace keys only admins may grant them; a normal user may give their
/// own personal key `keyward:keys:*` (which then acts only on that user's
/// personal keys, since the key acts with its owner's role); operators
/// never hold them.
pub fn grantable_management(role: Role, workspace_key: bool) -> &'static [&'static str] {
    match (role, workspace_key) {
        (Role::Admin, _) => &management::ALL,
        (Role::Normal, false) => &[
            management::KEYS_READ,
            management::KEYS_WRITE,
            management::KEYS_REVEAL,
        ],
        _ => &[],
    }
}

/// Whether a key with management permissions may act, given the role of
/// the person it acts for (its owner, or for a workspace key its creator).
/// A workspace key acts only for an admin: with a normal creator's role it
/// would reach that person's personal keys, which a shared key must not.
pub fn management_key_may_act(role: Role, workspace_key: bool) -> bool {
    match role {
        Role::Admin => true,
        Role::Normal => !workspace_key,
        Role::Operator => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole policy as a table: role, action, whose target, expected.
    /// Targets: `own` (the actor's personal key), `other` (another user's
    /// personal key in the same workspace), `ws` (a workspace key),
    /// `foreign-*` (the same in another workspace), `-` (no target); users
    /// as targets: `self`, `other-user`, `foreign-user`; service-account
    /// keys: `svc` (another member's, here a service account's),
    /// `own-svc` (the actor is that service account, acting through its
    /// management key), `foreign-svc`; service accounts as targets:
    /// `self-sa` (the acting service account itself), `other-sa`,
    /// `foreign-sa`. Every
    /// role x action x target appears exactly once (checked below).
    const TABLE: &str = "
        admin    list-own    -             allow
        admin    create-own  -             allow
        admin    list-ws     -             allow
        admin    list-all    -             allow
        admin    create-ws   -             allow
        admin    users       -             allow
        admin    settings    -             allow
        admin    events      -             allow
        admin    password    -             allow
        admin    membership  mine          allow
        admin    membership  theirs        notfound
        admin    remove-user self          forbidden
        admin    remove-user other-user    allow
        admin    remove-user foreign-user  notfound
        admin    view        own           allow
        admin    view        other         allow
        admin    view        ws            allow
        admin    view        foreign-own   notfound
        admin    view        foreign-other notfound
        admin    view        foreign-ws    notfound
        admin    manage      own           allow
        admin    manage      other         forbidden
        admin    manage      ws            allow
        admin    manage      foreign-own   notfound
        admin    manage      foreign-other notfound
        admin    manage      foreign-ws    notfound
        admin    revoke      own           allow
        admin    revoke      other         allow
        admin    revoke      ws            allow
        admin    revoke      foreign-own   notfound
        admin    revoke      foreign-other notfound
        admin    revoke      foreign-ws    notfound
        admin    review      own           allow
        admin    review      other         allow
        admin    review      ws            allow
        admin    review      foreign-own   notfound
        admin    review      foreign-other notfound
        admin    review      foreign-ws    notfound
        admin    service-accounts -        allow
        admin    manage-sa   self-sa       allow
        admin    manage-sa   other-sa      allow
        admin    manage-sa   foreign-sa    notfound
        admin    remove-sa   self-sa       forbidden
        admin    remove-sa   other-sa      allow
        admin    remove-sa   foreign-sa    notfound
        admin    view        svc           allow
        admin    view        own-svc       allow
        admin    view        foreign-svc   notfound
        admin    manage      svc           allow
        admin    manage      own-svc       allow
        admin    manage      foreign-svc   notfound
        admin    revoke      svc           allow
        admin    revoke      own-svc       allow
        admin    revoke      foreign-svc   notfound
        admin    review      svc           allow
        admin    review      own-svc       allow
        admin    review      foreign-svc   notfound
        normal   list-own    -             allow
        normal   create-own  -             allow
        normal   list-ws     -             forbidden
        normal   list-all    -             forbidden
        normal   create-ws   -             forbidden
        normal   users       -             forbidden
        normal   settings    -             forbidden
        normal   events      -             forbidden
        normal   password    -             allow
        normal   membership  mine          allow
        normal   membership  theirs        notfound
        normal   remove-user self          forbidden
        normal   remove-user other-user    forbidden
        normal   remove-user foreign-user  notfound
        normal   view        own           allow
        normal   view        other         notfound
        normal   view        ws            notfound
        normal   view        foreign-own   notfound
        normal   view        foreign-other notfound
        normal   view        foreign-ws    notfound
        normal   manage      own           allow
        normal   manage      other         notfound
        normal   manage      ws            notfound
        normal   manage      foreign-own   notfound
        normal   manage      foreign-other notfound
        normal   manage      foreign-ws    notfound
        normal   revoke      own           allow
        normal   revoke      other         notfound
        normal   revoke      ws            notfound
        normal   revoke      foreign-own   notfound
        normal   revoke      foreign-other notfound
        normal   revoke      foreign-ws    notfound
        normal   review      own           forbidden
        normal   review      other         notfound
        normal   review      ws            notfound
        normal   review      foreign-own   notfound
        normal   review      foreign-other notfound
        normal   review      foreign-ws    notfound
        normal   service-accounts -        forbidden
        normal   manage-sa   self-sa       forbidden
        normal   manage-sa   other-sa      forbidden
        normal   manage-sa   foreign-sa    notfound
        normal   remove-sa   self-sa       forbidden
        normal   remove-sa   other-sa      forbidden
        normal   remove-sa   foreign-sa    notfound
        normal   view        svc           notfound
        normal   view        own-svc       allow
        normal   view        foreign-svc   notfound
        normal   manage      svc           notfound
        normal   manage      own-svc       allow
        normal   manage      foreign-svc   notfound
        normal   revoke      svc           notfound
        normal   revoke      own-svc       allow
        normal   revoke      foreign-svc   notfound
        normal   review      svc           notfound
        normal   review      own-svc       forbidden
        normal   review      foreign-svc   notfound
        operator list-own    -             forbidden
        operator create-own  -             forbidden
        operator list-ws     -             forbidden
        operator list-all    -             forbidden
        operator create-ws   -             forbidden
        operator users       -             forbidden
        operator settings    -             forbidden
        operator events      -             forbidden
        operator password    -             allow
        operator membership  mine          allow
        operator membership  theirs        notfound
        operator remove-user self          forbidden
        operator remove-user other-user    forbidden
        operator remove-user foreign-user  notfound
        operator view        own           notfound
        operator view        other         notfound
        operator view        ws            notfound
        operator view        foreign-own   notfound
        operator view        foreign-other notfound
        operator view        foreign-ws    notfound
        operator manage      own           notfound
        operator manage      other         notfound
        operator manage      ws            notfound
        operator manage      foreign-own   notfound
        operator manage      foreign-other notfound
        operator manage      foreign-ws    notfound
        operator revoke      own           notfound
        operator revoke      other         notfound
        operator revoke      ws            notfound
        operator revoke      foreign-own   notfound
        operator revoke      foreign-other notfound
        operator revoke      foreign-ws    notfound
        operator review      own           notfound
        operator review      other         notfound
        operator review      ws            notfound
        operator review      foreign-own   notfound
        operator review      foreign-other notfound
        operator review      foreign-ws    notfound
        operator service-accounts -        forbidden
        operator manage-sa   self-sa       forbidden
        operator manage-sa   other-sa      forbidden
        operator manage-sa   foreign-sa    notfound
        operator remove-sa   self-sa       forbidden
        operator remove-sa   other-sa      forbidden
        operator remove-sa   foreign-sa    notfound
        operator view        svc           notfound
        operator view        own-svc       notfound
        operator view        foreign-svc   notfound
        operator manage      svc           notfound
        operator manage      own-svc       notfound
        operator manage      foreign-svc   notfound
        operator revoke      svc           notfound
        operator revoke      own-svc       notfound
        operator revoke      foreign-svc   notfound
        operator review      svc           notfound
        operator review      own-svc       notfound
        operator review      foreign-svc   notfound
    ";

    const TARGETS: [&str; 9] = [
        "own",
        "other",
        "ws",
        "foreign-own",
        "foreign-other",
        "foreign-ws",
        "svc",
        "own-svc",
        "foreign-svc",
    ];

    fn key_ref(target: &str) -> KeyRef<'static> {
        match target {
            "own" => KeyRef {
                workspace_id: "wsp_mine",
                owner: KeyOwner::Personal("usr_me"),
            },
            "other" => KeyRef {
                workspace_id: "wsp_mine",
                owner: KeyOwner::Personal("usr_other"),
            },
            "ws" => KeyRef {
                workspace_id: "wsp_mine",
                owner: KeyOwner::Workspace,
            },
            // A user of another workspace can share our user id only in a
            // forged request; it must still not match.
            "foreign-own" => KeyRef {
                workspace_id: "wsp_theirs",
                owner: KeyOwner::Personal("usr_me"),
            },
            "foreign-other" => KeyRef {
                workspace_id: "wsp_theirs",
                owner: KeyOwner::Personal("usr_other"),
            },
            "foreign-ws" => KeyRef {
                workspace_id: "wsp_theirs",
                owner: KeyOwner::Workspace,
            },
            "svc" => KeyRef {
                workspace_id: "wsp_mine",
                owner: KeyOwner::Service("usr_svc"),
            },
            // The actor is the service account (its management key acts
            // as it): its own key.
            "own-svc" => KeyRef {
                workspace_id: "wsp_mine",
                owner: KeyOwner::Service("usr_me"),
            },
            "foreign-svc" => KeyRef {
                workspace_id: "wsp_theirs",
                owner: KeyOwner::Service("usr_svc"),
            },
            other => panic!("unknown target {other}"),
        }
    }

    #[test]
    fn management_permissions_follow_the_role_table() {
        use management::*;
        assert_eq!(grantable_management(Role::Admin, true), ALL);
        assert_eq!(grantable_management(Role::Admin, false), ALL);
        assert_eq!(
            grantable_management(Role::Normal, false),
            [KEYS_READ, KEYS_WRITE, KEYS_REVEAL]
        );
        assert!(grantable_management(Role::Normal, true).is_empty());
        assert!(grantable_management(Role::Operator, false).is_empty());
        assert!(grantable_management(Role::Operator, true).is_empty());
        assert!(management_key_may_act(Role::Admin, true));
        assert!(management_key_may_act(Role::Admin, false));
        assert!(management_key_may_act(Role::Normal, false));
        assert!(!management_key_may_act(Role::Normal, true));
        assert!(!management_key_may_act(Role::Operator, false));
        assert!(!management_key_may_act(Role::Operator, true));
        assert!(ALL.iter().all(|p| is_management(p)));
        assert!(!is_management("data:read"));
    }

    /// The table's name of an action. The match has no wildcard: a new
    /// `Action` variant does not compile until it is named here, added to
    /// [`every_action`], and so must get its rows in the table.
    fn name(action: Action<'_>) -> &'static str {
        match action {
            Action::ListOwnKeys => "list-own",
            Action::CreatePersonalKey => "create-own",
            Action::ListWorkspaceKeys => "list-ws",
            Action::ListAllKeys => "list-all",
            Action::CreateWorkspaceKey => "create-ws",
            Action::ManageUsers => "users",
            Action::ManageSettings => "settings",
            Action::ServiceAccounts => "service-accounts",
            Action::ManageServiceAccount(_) => "manage-sa",
            Action::RemoveServiceAccount(_) => "remove-sa",
            Action::ViewEvents => "events",
            Action::ChangeOwnPassword => "password",
            Action::ViewKey(_) => "view",
            Action::ManageKey(_) => "manage",
            Action::RevokeKey(_) => "revoke",
            Action::ReviewKey(_) => "review",
            Action::RemoveUser(_) => "remove-user",
            Action::UseMembership(_) => "membership",
        }
    }

    /// Every action with every target it takes.
    fn every_action() -> Vec<(Action<'static>, &'static str)> {
        let mut all: Vec<(Action<'static>, &'static str)> = [
            Action::ListOwnKeys,
            Action::CreatePersonalKey,
            Action::ListWorkspaceKeys,
            Action::ListAllKeys,
            Action::CreateWorkspaceKey,
            Action::ManageUsers,
            Action::ServiceAccounts,
            Action::ManageSettings,
            Action::ViewEvents,
            Action::ChangeOwnPassword,
        ]
        .into_iter()
        .map(|a| (a, "-"))
        .collect();
        for (target, workspace_id, user_id) in [
            ("self", "wsp_mine", "usr_me"),
            ("other-user", "wsp_mine", "usr_other"),
            // Another workspace's user with our id, as in a forged request.
            ("foreign-user", "wsp_theirs", "usr_me"),
        ] {
            all.push((
                Action::RemoveUser(UserRef {
                    workspace_id,
                    user_id,
                }),
                target,
            ));
        }
        for (target, workspace_id, user_id) in [
            ("self-sa", "wsp_mine", "usr_me"),
            ("other-sa", "wsp_mine", "usr_svc"),
            ("foreign-sa", "wsp_theirs", "usr_svc"),
        ] {
            let t = ServiceAccountRef {
                workspace_id,
                user_id,
            };
            all.push((Action::ManageServiceAccount(t), target));
            all.push((Action::RemoveServiceAccount(t), target));
        }
        for (target, person_id) in [("mine", "per_me"), ("theirs", "per_other")] {
            all.push((Action::UseMembership(MembershipRef { person_id }), target));
        }
        for target in TARGETS {
            let k = key_ref(target);
            for a in [
                Action::ViewKey(k),
                Action::ManageKey(k),
                Action::RevokeKey(k),
                Action::ReviewKey(k),
            ] {
                all.push((a, target));
            }
        }
        all
    }

    #[test]
    fn policy_table_covers_every_role_action_and_target_once() {
        let rows: Vec<Vec<&str>> = TABLE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.split_whitespace().collect())
            .collect();
        let mut checked = 0;
        for role in Role::ALL {
            let actor = Actor {
                user_id: "usr_me".into(),
                person_id: "per_me".into(),
                workspace_id: "wsp_mine".into(),
                role,
            };
            for (action, target) in every_action() {
                let matching: Vec<_> = rows
                    .iter()
                    .filter(|r| r[..3] == [role.as_str(), name(action), target])
                    .collect();
                assert_eq!(
                    matching.len(),
                    1,
                    "need exactly one row for {} {} {target}",
                    role.as_str(),
                    name(action)
                );
                let expected = match matching[0][3] {
                    "allow" => Decision::Allow,
                    "forbidden" => Decision::Forbidden,
                    "notfound" => Decision::NotFound,
                    other => panic!("bad decision {other}"),
                };
                assert_eq!(
                    authorize(&actor, action),
                    expected,
                    "row: {}",
                    matching[0].join(" ")
                );
                checked += 1;
            }
        }
        assert_eq!(checked, rows.len(), "no row is left unchecked");
        assert_eq!(checked, Role::ALL.len() * every_action().len());
    }
}
