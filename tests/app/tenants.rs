//! Tenants: one person in several workspaces, each with its own role; the
//! switcher; invitations of people who already have an account; removal
//! from one workspace only.

use crate::helpers::*;
use reqwest::StatusCode;

const OTHER: &str = "Other Corp";

/// Post the users form and return the invitation path it shows.
async fn invite(admin: &Browser, email: &str, name: &str, role: &str) -> (String, String) {
    let res = admin
        .post_form(
            "/workspace/users",
            &[("email", email), ("name", name), ("role", role)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{email} invited");
    let body = res.text().await.unwrap();
    let link = invite_link(&body).expect("invitation link shown");
    let path = format!("/invite/{}", link.rsplit('/').next().unwrap());
    (path, body)
}

/// The membership id of `email` in the workspace named `workspace`.
async fn membership(app: &TestApp, email: &'static str, workspace: &'static str) -> String {
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::{people, users, workspaces};
        users::table
            .inner_join(people::table)
            .inner_join(workspaces::table)
            .filter(people::email.eq(email))
            .filter(workspaces::name.eq(workspace))
            .filter(users::status.eq("active"))
            .select(users::id)
            .first::<String>(c)
            .unwrap()
    })
    .await
}

/// Ada (admin of the first workspace) also joins Other Corp, as `role`,
/// by accepting in the app. Returns Zed, Other Corp's admin.
async fn ada_joins_other(app: &TestApp, ada: &Browser, role: &str) -> Browser {
    let zed = app.other_workspace_admin().await;
    invite(&zed, ADMIN_EMAIL, "Ada (as Zed typed it)", role).await;
    let (_, page) = ada.page("/account").await;
    assert!(page.contains("1 invitation"), "the header tells Ada");
    let (status, page) = ada.page("/workspaces").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<strong>Other Corp</strong> invited you as"));
    let id = membership(app, ADMIN_EMAIL, OTHER).await;
    let res = ada
        .post_form(&format!("/workspaces/invitations/{id}/accept"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = ada.page("/account").await;
    assert!(page.contains("You joined Other Corp and are now working in it."));
    zed
}

async fn switch(ada: &Browser, app: &TestApp, workspace: &'static str) {
    let id = membership(app, ADMIN_EMAIL, workspace).await;
    let res = ada
        .post_form("/workspaces/switch", &[("workspace", &id)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "switch to {workspace}");
    assert_eq!(location(&res), "/");
}

#[tokio::test]
async fn a_person_in_two_workspaces_sees_only_the_one_they_work_in() {
    let (app, ada) = spawn_ready().await;
    // In her first workspace Ada is an admin, with a workspace key, a
    // personal key and some history.
    let home_ws = ada
        .create_key("/workspace/keys", &[("name", "Home ERP connector")])
        .await;
    let home_own = ada
        .create_key("/account/keys", &[("name", "Home personal script")])
        .await;
    assert_eq!(me_code(&app.base, &home_ws.secret).await.0, StatusCode::OK);
    let home_users = app
        .with_db(|c| {
            let ws = first_ws(c);
            keyward::db::users::list(c, &ws).unwrap()
        })
        .await;

    let zed = ada_joins_other(&app, &ada, "normal").await;
    // Now working in Other Corp, as a normal user: its name in the header,
    // a switcher listing both, and nothing of the first workspace.
    let (status, page) = ada.page("/account/keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<select id=\"workspace-switch\""));
    assert!(page.contains(">Other Corp</option>") && page.contains(">Acme</option>"));
    let (_, account) = ada.page("/account").await;
    assert!(
        account.contains("<dt>Workspace</dt><dd>Other Corp</dd>"),
        "{account}"
    );
    assert!(account.contains("<dt>Role in this workspace</dt><dd>Normal user</dd>"));
    assert!(!page.contains("Home personal script"));
    for path in [
        format!("/keys/{}", home_ws.id),
        format!("/keys/{}", home_own.id),
        format!("/keys/{}/edit", home_own.id),
    ] {
        assert_eq!(
            ada.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Her role here is the one Other Corp gave her.
    for path in [
        "/workspace/users",
        "/workspace/settings",
        "/workspace/events",
    ] {
        assert_eq!(
            ada.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let res = ada
        .post_form(&format!("/keys/{}/revoke", home_own.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let there = ada
        .create_key("/account/keys", &[("name", "Other personal script")])
        .await;

    // Zed, Other Corp's admin, sees Ada's key there and nothing from home.
    let (_, all) = zed.page("/workspace/keys?view=all&q=script").await;
    assert!(all.contains("Other personal script") && !all.contains("Home personal script"));
    let (_, all) = zed.page("/workspace/keys?view=all&q=Home").await;
    assert!(!all.contains("Home ERP connector"));
    let (_, events) = zed.page("/workspace/events").await;
    assert!(!events.contains("Home ERP connector") && !events.contains("Home personal script"));
    assert_eq!(
        zed.get(&format!("/workspace/events?key={}", home_ws.id))
            .await
            .status(),
        StatusCode::OK
    );
    let (_, filtered) = zed
        .page(&format!("/workspace/events?key={}", home_ws.id))
        .await;
    assert!(!filtered.contains("Home ERP connector"));

    // Back home, as an admin again; Other Corp's ids are not found.
    switch(&ada, &app, "Acme").await;
    let (status, page) = ada.page("/workspace/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("You are now working in Acme."));
    assert!(
        !page.contains("zed@other.example"),
        "users of Other Corp stay there"
    );
    assert_eq!(
        ada.get(&format!("/keys/{}", there.id)).await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, all) = ada.page("/workspace/keys?view=all&q=Other").await;
    assert!(!all.contains("Other personal script"));
    let (_, events) = ada.page("/workspace/events").await;
    assert!(!events.contains("Other personal script"));
    let (_, mine) = ada.page("/account/keys").await;
    assert!(mine.contains("Home personal script") && !mine.contains("Other personal script"));
    // The first workspace's users did not change.
    let now = app
        .with_db(|c| {
            let ws = first_ws(c);
            keyward::db::users::list(c, &ws).unwrap()
        })
        .await;
    assert_eq!(now.len(), home_users.len());

    // Another person's membership, or a made-up one, cannot be switched to.
    let zeds = membership(&app, "zed@other.example", OTHER).await;
    for id in [zeds.as_str(), "usr_madeupmadeupmadeup12"] {
        let res = ada
            .post_form("/workspaces/switch", &[("workspace", id)])
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{id}");
    }
    let (_, page) = ada.page("/account").await;
    assert!(page.contains("Acme"), "still working in Acme");
    // Sign-in returns to the last workspace she switched to.
    let again = app.browser();
    assert_eq!(
        again.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(again.get("/workspace/users").await.status(), StatusCode::OK);
}

/// The first workspace's id.
fn first_ws(c: &mut keyward::db::DbConn) -> String {
    keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
        .unwrap()
        .unwrap()
        .workspace_id
}

#[tokio::test]
async fn adding_someone_with_an_account_elsewhere_looks_like_adding_anyone() {
    let (app, ada) = spawn_ready().await;
    let _zed = app.other_workspace_admin().await;
    let (_, new_body) = invite(&ada, "newcomer@example.com", "New Comer", "normal").await;
    let (path, known_body) = invite(&ada, "zed@other.example", "Zed Typed", "normal").await;
    for (body, email) in [
        (&new_body, "newcomer@example.com"),
        (&known_body, "zed@other.example"),
    ] {
        assert!(body.contains(&format!("{email} was added.")), "{body}");
        assert!(body.contains("so they can join this workspace"));
    }
    // Nothing of Zed's own account or workspace shows: the list has the
    // name Ada typed, until Zed joins.
    assert!(known_body.contains("Zed Typed"));
    assert!(!known_body.contains(">Zed<") && !known_body.contains(OTHER));
    assert!(known_body.contains("2 invited (not joined yet)"));
    // A person already here is named as such.
    let res = ada
        .post_form(
            "/workspace/users",
            &[("email", ADMIN_EMAIL), ("name", "Ada"), ("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("already a user of this workspace")
    );

    // Zed's link asks for his existing password, not a new one.
    let zed2 = app.browser();
    let (status, page) = zed2.page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Join Acme") && page.contains("You already have a keyward account"));
    assert!(!page.contains("password_confirm"));
    let res = zed2
        .post_form(&path, &[("password", "not zed's password at all")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The password is not correct.")
    );
    let res = zed2
        .post_form(&path, &[("password", "zed's long password")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = zed2.page("/account").await;
    assert!(page.contains("You joined Acme."), "{page}");
    assert!(page.contains("Normal user"));
    // The link worked once; his own workspace is still his.
    assert_eq!(zed2.get(&path).await.status(), StatusCode::GONE);
    let (_, users) = ada.page("/workspace/users").await;
    assert!(users.contains("<td>Zed</td>"), "{users}");
    assert!(!users.contains("Zed Typed"), "his own name once he joined");
    let actions = app.event_actions().await;
    assert!(actions.contains(&"user.joined".to_owned()));
}

#[tokio::test]
async fn removal_from_one_workspace_revokes_keys_there_only() {
    let (app, ada) = spawn_ready().await;
    let home = ada
        .create_key("/account/keys", &[("name", "Home script")])
        .await;
    let zed = ada_joins_other(&app, &ada, "normal").await;
    let there = ada
        .create_key("/account/keys", &[("name", "Other script")])
        .await;
    switch(&ada, &app, "Acme").await;
    assert_eq!(me_code(&app.base, &there.secret).await.0, StatusCode::OK);

    let ada_there = membership(&app, ADMIN_EMAIL, OTHER).await;
    let res = zed
        .post_form(&format!("/workspace/users/{ada_there}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Her key in Other Corp is revoked; her key at home still works, and so
    // does her session there.
    let (status, body) = me_code(&app.base, &there.secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(me_code(&app.base, &home.secret).await.0, StatusCode::OK);
    assert!(ada.signed_in().await);
    let (_, page) = ada.page("/account/keys").await;
    assert!(
        !page.contains("workspace-switch"),
        "one workspace left: no switcher"
    );
    let res = ada
        .post_form("/workspaces/switch", &[("workspace", &ada_there)])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_removed_membership_ends_sessions_acting_in_it_only() {
    let (app, ada) = spawn_ready().await;
    let zed = ada_joins_other(&app, &ada, "admin").await;
    // Ada works in Other Corp in this browser, and at home in another.
    let home = app.browser();
    assert_eq!(
        home.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    switch(&home, &app, "Acme").await;
    let ada_there = membership(&app, ADMIN_EMAIL, OTHER).await;
    let res = zed
        .post_form(&format!("/workspace/users/{ada_there}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!ada.signed_in().await, "the session in Other Corp ended");
    assert!(home.signed_in().await, "the one at home goes on");
}

#[tokio::test]
async fn an_invitation_can_be_declined() {
    let (app, ada) = spawn_ready().await;
    let zed = app.other_workspace_admin().await;
    invite(&zed, ADMIN_EMAIL, "Ada", "operator").await;
    let id = membership(&app, ADMIN_EMAIL, OTHER).await;
    // Zed cannot answer Ada's invitation for her.
    let res = zed
        .post_form(&format!("/workspaces/invitations/{id}/accept"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = ada
        .post_form(&format!("/workspaces/invitations/{id}/decline"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = ada.page("/workspaces").await;
    assert!(page.contains("You declined the invitation to Other Corp."));
    assert!(!page.contains("invited you as"));
    let (_, users) = zed.page("/workspace/users").await;
    assert!(users.contains("Removed"));
    let res = ada
        .post_form(&format!("/workspaces/invitations/{id}/accept"), &[])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "a declined invitation is over"
    );
}

/// Run the migrations that sort before `before`, as an older keyward would
/// have left the database.
fn migrate_before(conn: &mut keyward::db::DbConn, before: &str) {
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
    fn run<C, B>(c: &mut C, source: EmbeddedMigrations, before: &str)
    where
        C: MigrationHarness<B>,
        B: diesel::backend::Backend,
    {
        for m in c.pending_migrations(source).unwrap() {
            if m.name().to_string().as_str() < before {
                c.run_migration(&*m).unwrap();
            }
        }
    }
    match conn {
        keyward::db::DbConn::Pg(pg) => run(pg, keyward::db::PG_MIGRATIONS, before),
        keyward::db::DbConn::Sqlite(l) => run(l, keyward::db::SQLITE_MIGRATIONS, before),
    }
}

/// Data written by the keyward before people and memberships (one account
/// per email and workspace) comes through the migration whole: people
/// merged by email, passwords, roles, a removed account, a pending
/// invitation, sessions, keys and events.
#[tokio::test]
async fn existing_accounts_keys_and_invitations_survive_the_people_migration() {
    use diesel::connection::SimpleConnection;
    let (url, _guard) = tokio::task::spawn_blocking(empty_database).await.unwrap();
    let ada_hash = keyward::domain::password::hash(ADMIN_PASSWORD).unwrap();
    let bob_hash = keyward::domain::password::hash("bob's long password").unwrap();
    let old_hash = keyward::domain::password::hash("bob's old password").unwrap();
    let invite_token = "catInviteToken0123456789abcdefghijklmnopqrs";
    let invite = keyward::domain::ids::token_digest(invite_token);
    let session = keyward::domain::ids::token_digest("a session from before");
    let seed = format!(
        "
        INSERT INTO workspaces (id, name, created_at, updated_at) VALUES
          ('wsp_acme', 'Acme', '2026-11-01 09:00:00', '2026-11-01 09:00:00'),
          ('wsp_beta', 'Beta', '2026-11-02 09:00:00', '2026-11-02 09:00:00');
        INSERT INTO instance_setup (id, workspace_id, completed_at)
          VALUES (1, 'wsp_acme', '2026-11-01 09:00:00');
        INSERT INTO users (id, workspace_id, email, name, role, password_hash, status,
                           invite_digest, invite_expires_at, created_at, updated_at, removed_at) VALUES
          ('usr_ada', 'wsp_acme', 'ada@example.com', 'Ada Admin', 'admin', '{ada_hash}', 'active',
           NULL, NULL, '2026-11-01 09:00:00', '2026-11-01 09:00:00', NULL),
          ('usr_bob_old', 'wsp_acme', 'bob@example.com', 'Bob Old', 'normal', '{old_hash}', 'removed',
           NULL, NULL, '2026-11-01 10:00:00', '2026-11-03 10:00:00', '2026-11-03 10:00:00'),
          ('usr_bob', 'wsp_beta', 'bob@example.com', 'Bob', 'admin', '{bob_hash}', 'active',
           NULL, NULL, '2026-11-04 09:00:00', '2026-11-04 09:00:00', NULL),
          ('usr_cat', 'wsp_acme', 'cat@example.com', 'Cat', 'normal', NULL, 'active',
           '{invite}', '2099-01-01 00:00:00', '2026-11-05 09:00:00', '2026-11-05 09:00:00', NULL);
        INSERT INTO sessions (id, workspace_id, user_id, created_at, last_seen_at)
          VALUES ('{session}', 'wsp_acme', 'usr_ada', '2026-11-06 09:00:00', '2026-11-06 09:00:00');
        INSERT INTO api_keys (id, workspace_id, kind, owner_id, created_by, name, description, tags,
                              environment, permissions, resources, digest, head, tail, request_nonce,
                              search, created_at, updated_at) VALUES
          ('key_ada', 'wsp_acme', 'personal', 'usr_ada', 'usr_ada', 'Ada''s script', '', '[]',
           'live', '[]', '[]', 'digest-ada', 'abcd', 'wxyz', 'n1', 'ada''s script key_ada ada@example.com',
           '2026-11-06 10:00:00', '2026-11-06 10:00:00'),
          ('key_bob', 'wsp_beta', 'workspace', NULL, 'usr_bob', 'Beta ERP', '', '[]',
           'live', '[]', '[]', 'digest-bob', 'efgh', 'stuv', 'n2', 'beta erp key_bob',
           '2026-11-06 11:00:00', '2026-11-06 11:00:00');
        INSERT INTO events (workspace_id, actor_id, actor_label, action, details, created_at) VALUES
          ('wsp_acme', 'usr_ada', 'ada@example.com', 'key.created', '{{}}', '2026-11-06 10:00:00'),
          ('wsp_beta', 'usr_bob', 'bob@example.com', 'key.created', '{{}}', '2026-11-06 11:00:00');
        "
    );
    let migrate_url = url.clone();
    tokio::task::spawn_blocking(move || {
        let pool = keyward::db::pool(&migrate_url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        migrate_before(&mut conn, "2026-11-23-000004");
        conn.batch_execute(&seed).unwrap();
    })
    .await
    .unwrap();

    // The current keyward starts on it and migrates the rest.
    let app = spawn_app_on(url).await;
    let (people, sessions) = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::{people, sessions};
            let people: Vec<(String, String)> = people::table
                .select((people::email, people::name))
                .order(people::email)
                .load(c)
                .unwrap();
            let sessions: Vec<(String, String)> = sessions::table
                .inner_join(people::table)
                .select((sessions::user_id, people::email))
                .load(c)
                .unwrap();
            (people, sessions)
        })
        .await;
    assert_eq!(
        people,
        [
            ("ada@example.com".to_owned(), "Ada Admin".to_owned()),
            ("bob@example.com".to_owned(), "Bob".to_owned()),
            ("cat@example.com".to_owned(), "Cat".to_owned()),
        ],
        "one person per email; the active account's name"
    );
    assert_eq!(
        sessions,
        [("usr_ada".to_owned(), "ada@example.com".to_owned())]
    );

    // Ada signs in with her password, to Acme, as its admin, and finds her
    // key, her users (Bob's old account removed, Cat invited) and history.
    let ada = app.browser();
    assert_eq!(
        ada.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, keys) = ada.page("/workspace/keys?view=all").await;
    assert!(
        keys.contains("Ada&#39;s script") || keys.contains("Ada's script"),
        "{keys}"
    );
    assert!(!keys.contains("Beta ERP"));
    assert_eq!(ada.get("/keys/key_ada").await.status(), StatusCode::OK);
    assert_eq!(
        ada.get("/keys/key_bob").await.status(),
        StatusCode::NOT_FOUND
    );
    let (_, users) = ada.page("/workspace/users").await;
    assert!(users.contains("bob@example.com") && users.contains("Removed"));
    assert!(users.contains("1 invited (not joined yet)"), "{users}");
    let (_, events) = ada.page("/workspace/events").await;
    assert!(events.contains("Ada Admin"), "{events}");

    // Bob: the password of his active account, in Beta; the removed one's
    // password is gone with it.
    let bob = app.browser();
    assert_eq!(
        bob.login("bob@example.com", "bob's old password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bob.login("bob@example.com", "bob's long password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(bob.get("/keys/key_bob").await.status(), StatusCode::OK);
    assert_eq!(
        bob.get("/keys/key_ada").await.status(),
        StatusCode::NOT_FOUND
    );

    // Cat's pending invitation still works, once.
    let cat = app.browser();
    let path = format!("/invite/{invite_token}");
    let (status, page) = cat.page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Choose your password"));
    let password = "cat's new long password";
    cat.choose_password_and_sign_in(&path, "cat@example.com", password)
        .await;
    assert_eq!(cat.get("/account/keys").await.status(), StatusCode::OK);
}

/// An admin of two workspaces changes settings, the permission catalog and
/// the API-keys switch in one: the other's stay as they were.
#[tokio::test]
async fn settings_catalog_and_switch_stay_in_their_workspace() {
    let (app, ada) = spawn_ready().await;
    let zed = ada_joins_other(&app, &ada, "admin").await;
    let there = zed
        .create_key("/workspace/keys", &[("name", "Other ERP")])
        .await;
    // Ada now works in Other Corp: she changes things at home instead.
    switch(&ada, &app, "Acme").await;
    let res = ada
        .post_form(
            "/workspace/settings/limits",
            &[
                ("max_expiry_days", "30"),
                ("max_keys_per_user", "7"),
                ("default_rate_limit", "120"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = ada
        .post_form(
            "/workspace/settings/permissions",
            &[("name", "acme:secret-plant"), ("description", "Acme only")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = ada
        .post_form("/workspace/settings/api-keys", &[("enabled", "off")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, home) = ada.page("/workspace/settings").await;
    assert!(home.contains("acme:secret-plant"));
    assert!(home.contains("API keys are switched off."));
    assert!(home.contains("value=\"7\""), "the home limit took");

    // Other Corp: its catalog, limits and keys are untouched.
    let (_, settings) = zed.page("/workspace/settings").await;
    assert!(!settings.contains("acme:secret-plant"));
    assert!(!settings.contains("API keys are switched off."));
    assert!(!settings.contains("value=\"7\"") && settings.contains("value=\"100\""));
    let (_, form) = zed.page("/workspace/keys/new").await;
    assert!(!form.contains("acme:secret-plant"));
    assert_eq!(me_code(&app.base, &there.secret).await.0, StatusCode::OK);
    let (_, events) = zed.page("/workspace/events").await;
    assert!(!events.contains("acme:secret-plant") && !events.contains("Ada Admin switched"));
}

/// Answering an invitation while another write is under way waits its turn
/// (on SQLite a transaction that read first could not, and answered 503).
#[tokio::test]
async fn accepting_an_invitation_waits_for_another_writer() {
    let (app, ada) = spawn_ready().await;
    let zed = app.other_workspace_admin().await;
    invite(&zed, ADMIN_EMAIL, "Ada", "normal").await;
    let id = membership(&app, ADMIN_EMAIL, OTHER).await;
    // Another writer holds the database (SQLite) or a row (PostgreSQL) for
    // a moment, and changes something, as a usage flush would.
    let pool = app.pool.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let blocker = std::thread::spawn(move || {
        use diesel::prelude::*;
        let mut conn = pool.get().unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::sql_query("UPDATE workspaces SET updated_at = updated_at").execute(c)?;
            held_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(600));
            Ok(())
        })
        .unwrap();
    });
    held_rx.recv().unwrap();
    let res = ada
        .post_form(&format!("/workspaces/invitations/{id}/accept"), &[])
        .await;
    blocker.join().unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = ada.page("/account").await;
    assert!(page.contains("You joined Other Corp"));
}

/// All session ids, to see one change.
async fn session_ids(app: &TestApp) -> std::collections::BTreeSet<String> {
    use diesel::prelude::*;
    use keyward::db::schema::sessions;
    app.with_db(|c| {
        sessions::table
            .select(sessions::id)
            .load::<String>(c)
            .unwrap()
            .into_iter()
            .collect()
    })
    .await
}

/// A form loaded in one workspace and posted after switching to another
/// (in another tab) acts nowhere and says why; switching gives the session
/// a new id, so a copy of the old cookie acts nowhere either.
#[tokio::test]
async fn a_form_of_the_workspace_left_behind_is_refused_after_switching() {
    let (app, ada) = spawn_ready().await;
    ada_joins_other(&app, &ada, "normal").await;
    // Tab 1: the create dialog, loaded while working in Other Corp.
    let (status, form) = ada.page("/account/keys/new").await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf_from(&form).unwrap();
    let nonce = hidden(&form, "nonce").unwrap();
    // Tab 2: switch back to Acme.
    let before = session_ids(&app).await;
    switch(&ada, &app, "Acme").await;
    let after = session_ids(&app).await;
    assert_eq!(
        before.difference(&after).count(),
        1,
        "switching replaced the session's id"
    );
    // Tab 1 posts its form.
    let res = ada
        .post_raw(
            "/account/keys",
            &[
                ("csrf_token", &token),
                ("nonce", &nonce),
                ("name", "Tab one key"),
                ("environment", "live"),
                ("expiry", "30"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("loaded while you worked in another workspace"),
        "{page}"
    );
    let made = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::api_keys;
            api_keys::table
                .filter(api_keys::name.eq("Tab one key"))
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(made, 0, "no key in either workspace");
    // A form loaded after the switch works.
    let key = ada
        .create_key("/account/keys", &[("name", "Tab two key")])
        .await;
    assert!(key.secret.starts_with("sk_live_"));
}
