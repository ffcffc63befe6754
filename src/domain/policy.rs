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
    pub user_id: String,
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
}

/// The facts about a key that authorization needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub workspace_id: &'a str,
    pub owner: KeyOwner<'a>,
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
    /// Workspace → Settings.
    ManageSettings,
    /// Workspace → Events.
    ViewEvents,
    /// Change one's own password.
    ChangeOwnPassword,
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
        Action::ListOwnKeys | Action::CreatePersonalKey => {
            allow_if(matches!(role, Role::Admin | Role::Normal))
        }
        Action::ListWorkspaceKeys
        | Action::ListAllKeys
        | Action::CreateWorkspaceKey
        | Action::ManageUsers
        | Action::ManageSettings
        | Action::ViewEvents => allow_if(role == Role::Admin),
        Action::ReviewKey(key) => {
            if key.workspace_id != actor.workspace_id {
                NotFound
            } else if role == Role::Admin {
                Allow
            } else if role == Role::Normal && key.owner != KeyOwner::Personal(&actor.user_id) {
                // Keys a normal user cannot see stay invisible.
                NotFound
            } else {
                Forbidden
            }
        }
        Action::ViewKey(key) | Action::ManageKey(key) | Action::RevokeKey(key) => {
            if key.workspace_id != actor.workspace_id {
                return NotFound;
            }
            if role == Role::Operator {
                return Forbidden;
            }
            let own = key.owner == KeyOwner::Personal(&actor.user_id);
            match (role, key.owner) {
                _ if own => Allow,
                (Role::Admin, KeyOwner::Workspace) => Allow,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole policy as a table: role, action, whose target, expected.
    /// Targets: `own` (the actor's personal key), `other` (another user's
    /// personal key in the same workspace), `ws` (a workspace key), `foreign-*`
    /// (the same in another workspace), `-` (no target).
    const TABLE: &str = "
        admin    list-own      -           allow
        admin    create-own    -           allow
        admin    list-ws       -           allow
        admin    list-all      -           allow
        admin    create-ws     -           allow
        admin    users         -           allow
        admin    settings      -           allow
        admin    events        -           allow
        admin    password      -           allow
        admin    view          own         allow
        admin    manage        own         allow
        admin    revoke        own         allow
        admin    view          other       allow
        admin    manage        other       forbidden
        admin    revoke        other       allow
        admin    view          ws          allow
        admin    manage        ws          allow
        admin    revoke        ws          allow
        admin    view          foreign-own notfound
        admin    manage        foreign-ws  notfound
        admin    revoke        foreign-ws  notfound
        admin    revoke        foreign-own notfound
        admin    review        ws          allow
        admin    review        other       allow
        admin    review        foreign-ws  notfound
        normal   list-own      -           allow
        normal   create-own    -           allow
        normal   list-ws       -           forbidden
        normal   list-all      -           forbidden
        normal   create-ws     -           forbidden
        normal   users         -           forbidden
        normal   settings      -           forbidden
        normal   events        -           forbidden
        normal   password      -           allow
        normal   view          own         allow
        normal   manage        own         allow
        normal   revoke        own         allow
        normal   view          other       notfound
        normal   manage        other       notfound
        normal   revoke        other       notfound
        normal   view          ws          notfound
        normal   manage        ws          notfound
        normal   revoke        ws          notfound
        normal   view          foreign-own notfound
        normal   manage        foreign-ws  notfound
        normal   revoke        foreign-own notfound
        normal   review        own         forbidden
        normal   review        ws          notfound
        normal   review        foreign-ws  notfound
        operator list-own      -           forbidden
        operator create-own    -           forbidden
        operator list-ws       -           forbidden
        operator list-all      -           forbidden
        operator create-ws     -           forbidden
        operator users         -           forbidden
        operator settings      -           forbidden
        operator events        -           forbidden
        operator password      -           allow
        operator view          own         forbidden
        operator manage        own         forbidden
        operator revoke        own         forbidden
        operator view          other       forbidden
        operator manage        ws          forbidden
        operator revoke        ws          forbidden
        operator view          foreign-own notfound
        operator manage        foreign-ws  notfound
        operator review        ws          forbidden
        operator review        foreign-ws  notfound
    ";

    #[test]
    fn policy_table() {
        let mut checked = 0;
        for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [role, action, target, expected] = cols[..] else {
                panic!("bad row {line:?}");
            };
            let actor = Actor {
                user_id: "usr_me".into(),
                workspace_id: "wsp_mine".into(),
                role: role.parse().unwrap(),
            };
            let key = match target {
                "own" => Some(KeyRef {
                    workspace_id: "wsp_mine",
                    owner: KeyOwner::Personal("usr_me"),
                }),
                "other" => Some(KeyRef {
                    workspace_id: "wsp_mine",
                    owner: KeyOwner::Personal("usr_other"),
                }),
                "ws" => Some(KeyRef {
                    workspace_id: "wsp_mine",
                    owner: KeyOwner::Workspace,
                }),
                // A user of another workspace can share our user id only in a
                // forged request; it must still not match.
                "foreign-own" => Some(KeyRef {
                    workspace_id: "wsp_theirs",
                    owner: KeyOwner::Personal("usr_me"),
                }),
                "foreign-ws" => Some(KeyRef {
                    workspace_id: "wsp_theirs",
                    owner: KeyOwner::Workspace,
                }),
                "-" => None,
                other => panic!("unknown target {other}"),
            };
            let action = match (action, key) {
                ("list-own", None) => Action::ListOwnKeys,
                ("create-own", None) => Action::CreatePersonalKey,
                ("list-ws", None) => Action::ListWorkspaceKeys,
                ("list-all", None) => Action::ListAllKeys,
                ("create-ws", None) => Action::CreateWorkspaceKey,
                ("users", None) => Action::ManageUsers,
                ("settings", None) => Action::ManageSettings,
                ("events", None) => Action::ViewEvents,
                ("password", None) => Action::ChangeOwnPassword,
                ("view", Some(k)) => Action::ViewKey(k),
                ("manage", Some(k)) => Action::ManageKey(k),
                ("revoke", Some(k)) => Action::RevokeKey(k),
                ("review", Some(k)) => Action::ReviewKey(k),
                other => panic!("bad action/target {other:?}"),
            };
            let expected = match expected {
                "allow" => Decision::Allow,
                "forbidden" => Decision::Forbidden,
                "notfound" => Decision::NotFound,
                other => panic!("bad decision {other}"),
            };
            assert_eq!(authorize(&actor, action), expected, "row: {line}");
            checked += 1;
        }
        assert_eq!(checked, 68);
    }

    #[test]
    fn every_role_and_action_appears_in_the_table() {
        for role in Role::ALL {
            for action in [
                "list-own",
                "create-own",
                "list-ws",
                "list-all",
                "create-ws",
                "users",
                "settings",
                "events",
                "password",
                "view",
                "manage",
                "revoke",
                "review",
            ] {
                let needle = format!("{} {action} ", role.as_str());
                let found = TABLE.lines().any(|l| {
                    l.split_whitespace().take(2).collect::<Vec<_>>().join(" ") + " " == needle
                });
                assert!(found, "missing row for {needle}");
            }
        }
    }
}
