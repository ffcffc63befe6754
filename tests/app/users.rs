//! Workspace → Users, roles and isolation between workspaces.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn invited_user_sets_password_once_and_signs_in() {
    let (app, admin) = spawn_ready().await;
    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "Bob@Example.com"),
                ("name", "Bob"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    let link = invite_link(&body).expect("link shown once");
    assert!(link.starts_with(&app.base));
    // The list afterwards shows Bob as invited, but not the link again.
    let (_, list) = admin.page("/workspace/users").await;
    assert!(list.contains("bob@example.com"));
    assert!(list.contains("Invited"));
    assert!(invite_link(&list).is_none());

    let path = format!("/invite/{}", link.rsplit('/').next().unwrap());
    let bob = app.browser();
    let (status, page) = bob.page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("bob@example.com"));
    let res = bob
        .post_form(
            &path,
            &[("password", "bob's password"), ("password_confirm", "nope")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = bob
        .post_form(
            &path,
            &[
                ("password", "bob's long password"),
                ("password_confirm", "bob's long password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");

    // The link works once.
    let (status, page) = bob.page(&path).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("already used, has expired"));
    let res = bob
        .post_form(
            &path,
            &[
                ("password", "hijacked password"),
                ("password_confirm", "hijacked password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::GONE);

    assert_eq!(
        bob.login("bob@example.com", "bob's long password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let res = bob.get("/").await;
    assert_eq!(
        location(&res),
        "/account/keys",
        "normal users land on their keys"
    );
    let actions = app.event_actions().await;
    assert!(actions.contains(&"user.added".to_owned()));
    assert!(actions.contains(&"user.password_set".to_owned()));
}

#[tokio::test]
async fn adding_a_user_with_bad_input_changes_nothing() {
    let (app, admin) = spawn_ready().await;
    for (fields, message) in [
        (
            [("email", "not an email"), ("name", "X"), ("role", "normal")],
            "Enter an email address like name@example.com.",
        ),
        (
            [
                ("email", "x@example.com"),
                ("name", " "),
                ("role", "normal"),
            ],
            "Name is required.",
        ),
        (
            [
                ("email", "x@example.com"),
                ("name", "X"),
                ("role", "superuser"),
            ],
            "Choose a role",
        ),
        (
            [("email", ADMIN_EMAIL), ("name", "Dup"), ("role", "normal")],
            "This person is already a user of this workspace.",
        ),
    ] {
        let res = admin.post_form("/workspace/users", &fields).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains(message),
            "{message} in response to {fields:?}"
        );
        assert!(invite_link(&body).is_none());
    }
    let users = app
        .with_db(|c| {
            let ws = first_workspace(c);
            keyward::db::users::list(c, &ws).unwrap()
        })
        .await;
    assert_eq!(users.len(), 1);
    assert_eq!(
        app.event_actions().await,
        vec!["workspace.setup"],
        "no event for refused input"
    );
}

fn first_workspace(c: &mut keyward::db::DbConn) -> String {
    use diesel::prelude::*;
    keyward::db::schema::workspaces::table
        .select(keyward::db::schema::workspaces::id)
        .first::<String>(c)
        .unwrap()
}

fn user_id(c: &mut keyward::db::DbConn, email: &str) -> String {
    keyward::db::users::find_active_by_email(c, email)
        .unwrap()
        .expect("user")
        .id
}

#[tokio::test]
async fn htmx_posts_get_the_panel_back() {
    let (_app, admin) = spawn_ready().await;
    let res = admin
        .post_htmx(
            "/workspace/users",
            &[
                ("email", "carol@example.com"),
                ("name", "Carol"),
                ("role", "operator"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(!body.contains("<html"), "only the panel is sent");
    assert!(body.trim_start().starts_with("<div id=\"users-panel\">"));
    assert!(invite_link(&body).is_some());

    let res = admin
        .post_htmx(
            "/workspace/users",
            &[("email", "bad"), ("name", "Carol"), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(body.contains("field-error"));
    assert!(body.contains("value=\"Carol\""));
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_removed() {
    let (app, admin) = spawn_ready().await;
    let ada = app.with_db(|c| user_id(c, ADMIN_EMAIL)).await;

    let res = admin
        .post_form(
            &format!("/workspace/users/{ada}/role"),
            &[("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, body) = admin.page("/workspace/users").await;
    assert!(
        body.contains("A workspace needs at least one admin"),
        "{body}"
    );
    // Nobody removes themselves (another admin does), so neither can the
    // last admin.
    let res = admin
        .post_htmx(&format!("/workspace/users/{ada}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("You cannot remove yourself from the workspace")
    );
    assert!(admin.signed_in().await);

    // With a second admin, the first may step down.
    let _bob = app
        .add_user(&admin, "bob@example.com", "admin", "bob's long password")
        .await;
    let res = admin
        .post_htmx(
            &format!("/workspace/users/{ada}/role"),
            &[("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("ada@example.com is now: Normal user.")
    );
    assert_eq!(
        admin.get("/workspace/users").await.status(),
        StatusCode::FORBIDDEN,
        "no longer an admin"
    );
    let changed = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "user.role_changed")
        .unwrap();
    assert!(
        changed.details.contains("\"old\":\"admin\"")
            && changed.details.contains("\"new\":\"normal\"")
    );
}

#[tokio::test]
async fn removing_a_user_ends_their_sessions_at_once() {
    let (app, admin) = spawn_ready().await;
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    assert!(bob.signed_in().await);
    let bob_id = app.with_db(|c| user_id(c, "bob@example.com")).await;

    let (status, confirm) = admin
        .page(&format!("/workspace/users/{bob_id}/remove"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Remove user"));
    let res = admin
        .post_form(&format!("/workspace/users/{bob_id}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, body) = admin.page("/workspace/users").await;
    assert!(body.contains("bob@example.com was removed and signed out."));
    assert!(body.contains("Removed"));

    assert!(!bob.signed_in().await);
    // Their password still proves who they are, and they learn (only they
    // can) that they belong to no workspace any more.
    let again = app.browser();
    let res = again.login("bob@example.com", "bob's long password").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("You are not a member of any workspace.")
    );
    assert!(!again.signed_in().await);
    // Removing twice is "not found"; the address can be invited again.
    let res = admin
        .post_form(&format!("/workspace/users/{bob_id}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "bob@example.com"),
                ("name", "Bob again"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        app.event_actions()
            .await
            .contains(&"user.removed".to_owned())
    );
}

#[tokio::test]
async fn each_role_sees_only_its_pages() {
    let (app, admin) = spawn_ready().await;
    let normal = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    let operator = app
        .add_user(
            &admin,
            "otto@example.com",
            "operator",
            "otto's long password",
        )
        .await;

    for path in [
        "/account/keys",
        "/workspace/keys",
        "/workspace/users",
        "/workspace/settings",
        "/workspace/events",
    ] {
        assert_eq!(
            admin.get(path).await.status(),
            StatusCode::OK,
            "admin {path}"
        );
    }
    assert_eq!(normal.get("/account/keys").await.status(), StatusCode::OK);
    for path in [
        "/workspace/keys",
        "/workspace/users",
        "/workspace/settings",
        "/workspace/events",
    ] {
        assert_eq!(
            normal.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "normal {path}"
        );
    }
    for path in [
        "/account/keys",
        "/workspace/keys",
        "/workspace/users",
        "/workspace/settings",
        "/workspace/events",
    ] {
        let (status, body) = operator.page(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "operator {path}");
        assert!(body.contains("Your role does not give you access to this page."));
    }
    let res = operator.get("/").await;
    assert_eq!(location(&res), "/account");
    let (_, body) = operator.page("/account").await;
    assert!(body.contains("Operators have no access to API keys"));
    assert!(
        !body.contains("href=\"/account/keys\""),
        "operators get no key navigation"
    );
    let (_, body) = normal.page("/account").await;
    assert!(body.contains("href=\"/account/keys\""));
    assert!(!body.contains("href=\"/workspace/users\""));

    // Non-admins cannot change users, whatever they post.
    let ada = app.with_db(|c| user_id(c, ADMIN_EMAIL)).await;
    let res = normal
        .post_form(
            &format!("/workspace/users/{ada}/role"),
            &[("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = operator
        .post_form(&format!("/workspace/users/{ada}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(admin.signed_in().await);
}

#[tokio::test]
async fn workspaces_are_isolated() {
    let (app, admin) = spawn_ready().await;
    let _bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    let bob_id = app.with_db(|c| user_id(c, "bob@example.com")).await;
    let ada_id = app.with_db(|c| user_id(c, ADMIN_EMAIL)).await;
    // A second tenant on the same instance.
    let zed = app.other_workspace_admin().await;

    let (status, body) = zed.page("/workspace/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("zed@other.example"));
    assert!(!body.contains("bob@example.com") && !body.contains(ADMIN_EMAIL));
    let (_, body) = zed.page("/workspace/events").await;
    assert!(
        !body.contains(ADMIN_EMAIL),
        "events of the other workspace are invisible"
    );

    // Ids of the other workspace are simply not found.
    assert_eq!(
        zed.get(&format!("/workspace/users/{bob_id}/remove"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let res = zed
        .post_form(&format!("/workspace/users/{bob_id}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = zed
        .post_form(
            &format!("/workspace/users/{ada_id}/role"),
            &[("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, body) = admin.page("/workspace/users").await;
    assert!(body.contains("bob@example.com") && !body.contains("Removed"));
    assert!(admin.signed_in().await);
}

#[tokio::test]
async fn a_new_invitation_link_replaces_the_old_one() {
    let (app, admin) = spawn_ready().await;
    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "late@example.com"),
                ("name", "Late"),
                ("role", "normal"),
            ],
        )
        .await;
    let first = invite_link(&res.text().await.unwrap()).unwrap();
    let late_id = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, "late@example.com")
                .unwrap()
                .unwrap()
                .id
        })
        .await;

    let res = admin
        .post_htmx(&format!("/workspace/users/{late_id}/invite"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains("has a new invitation link; the previous one no longer works."));
    let second = invite_link(&body).unwrap();
    assert_ne!(first, second);

    let late = app.browser();
    let path = |link: &str| format!("/invite/{}", link.rsplit('/').next().unwrap());
    assert_eq!(
        late.get(&path(&first)).await.status(),
        StatusCode::GONE,
        "the old link is dead"
    );
    let res = late
        .post_form(
            &path(&second),
            &[
                ("password", "late but long pw"),
                ("password_confirm", "late but long pw"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // Once a password is set, no new link can be issued (that would be a reset).
    let res = admin
        .post_form(&format!("/workspace/users/{late_id}/invite"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let ada = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    assert_eq!(
        admin
            .post_form(&format!("/workspace/users/{ada}/invite"), &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        app.event_actions()
            .await
            .contains(&"user.invite_renewed".to_owned())
    );
}
