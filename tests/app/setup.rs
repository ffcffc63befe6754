//! First-run setup.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn setup_needs_the_printed_token() {
    let app = spawn_app().await;
    let url = app
        .setup_url
        .clone()
        .expect("a fresh instance prints a setup link");
    assert!(url.contains("/setup?token="));
    let b = app.browser();

    let (status, body) = b.page("/setup").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("setup link is not valid"), "{body}");
    let (status, _) = b.page("/setup?token=guessed").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A stranger who posts the form with a wrong token creates nothing.
    let res = b
        .post_form(
            "/setup",
            &[
                ("token", "guessed"),
                ("workspace", "Mine now"),
                ("name", "Mallory"),
                ("email", "mallory@example.com"),
                ("password", "mallory password"),
                ("password_confirm", "mallory password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        !app.with_db(|c| keyward::db::workspaces::any_exists(c).unwrap())
            .await
    );

    // The login page explains what to do before setup.
    let (_, body) = b.page("/login").await;
    assert!(body.contains("not set up yet"));
}

#[tokio::test]
async fn setup_creates_workspace_and_admin_once() {
    let app = spawn_app().await;
    let admin = app.browser();
    let res = admin
        .complete_setup(
            &app,
            "Acme Plant",
            "Ada Admin",
            "Ada@Example.com",
            ADMIN_PASSWORD,
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/");

    // Signed in straight away, as an admin.
    let res = admin.get("/").await;
    assert_eq!(location(&res), "/workspace/keys");
    let (status, body) = admin.page("/workspace/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("ada@example.com"), "email is normalised");
    assert!(body.contains("Ada Admin"));

    // The setup page is gone, with the same token or any other.
    let b = app.browser();
    let res = b
        .client
        .get(app.setup_url.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let token = app
        .setup_url
        .as_ref()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let res = b
        .post_form(
            "/setup",
            &[
                ("token", &token),
                ("workspace", "Second"),
                ("name", "Eve"),
                ("email", "eve@example.com"),
                ("password", "another password"),
                ("password_confirm", "another password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let actions = app.event_actions().await;
    assert_eq!(actions, vec!["workspace.setup"]);
    let workspaces = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::workspaces::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(workspaces, 1);
}

#[tokio::test]
async fn setup_rejects_bad_input_and_changes_nothing() {
    let app = spawn_app().await;
    let b = app.browser();
    let url = app.setup_url.clone().unwrap();
    let token = url.split("token=").nth(1).unwrap().to_owned();
    b.client.get(&url).send().await.unwrap();
    let res = b
        .post_form(
            "/setup",
            &[
                ("token", &token),
                ("workspace", "   "),
                ("name", "Ada"),
                ("email", "not-an-email"),
                ("password", "short"),
                ("password_confirm", "short"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(body.contains("Workspace name is required."));
    assert!(body.contains("Enter an email address like name@example.com."));
    assert!(body.contains("Password must be at least 12 characters."));
    assert!(body.contains("aria-invalid=\"true\""));
    assert!(body.contains("value=\"Ada\""), "valid input is kept");

    let res = b
        .post_form(
            "/setup",
            &[
                ("token", &token),
                ("workspace", "Acme"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", "long enough password"),
                ("password_confirm", "long enough passw0rd"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The two passwords do not match.")
    );

    assert!(
        !app.with_db(|c| keyward::db::workspaces::any_exists(c).unwrap())
            .await
    );
    assert!(app.events().await.is_empty());
    // The token still works after mistakes.
    let res = b
        .complete_setup(&app, "Acme", "Ada", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}
