//! Sign-in, sign-out, throttling, sessions and passwords.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_clear_answer() {
    let (app, _admin) = spawn_ready().await;
    let b = app.browser();
    let res = b.login(ADMIN_EMAIL, "wrong password!").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let wrong = res.text().await.unwrap();
    assert!(wrong.contains("The email or password is incorrect."));
    assert!(
        wrong.contains(&format!("value=\"{ADMIN_EMAIL}\"")),
        "email is kept in the form"
    );

    let res = b.login("nobody@example.com", "wrong password!").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The email or password is incorrect.")
    );

    let res = b.login("", "").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Enter your email and password.")
    );

    assert!(!b.signed_in().await);
    let events = app.events().await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.action == "login.failed")
        .collect();
    assert_eq!(failed.len(), 1, "a failure on a known account is audited");
    assert_eq!(failed[0].target_label.as_deref(), Some(ADMIN_EMAIL));
    assert_eq!(failed[0].ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn sign_in_and_out() {
    let (app, _admin) = spawn_ready().await;
    let b = app.browser();
    assert!(!b.signed_in().await);
    let res = b.get("/workspace/users").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?next=%2Fworkspace%2Fusers");

    let res = b
        .post_form(
            "/login",
            &[
                ("email", "ADA@example.com "),
                ("password", ADMIN_PASSWORD),
                ("next", "/workspace/users"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        "/workspace/users",
        "back to where the user was going"
    );
    assert!(b.signed_in().await);

    // Only same-site destinations are followed.
    let c = app.browser();
    let res = c
        .post_form(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/");

    let res = b.post_form("/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?signed_out=1");
    assert!(!b.signed_in().await);
    assert!(c.signed_in().await, "other sessions stay");
    let actions = app.event_actions().await;
    assert!(actions.contains(&"login.succeeded".to_owned()));
    assert!(actions.contains(&"logout".to_owned()));
}

#[tokio::test]
async fn session_cookie_is_renewed_at_sign_in_and_hardened() {
    let (app, _admin) = spawn_ready().await;
    let b = app.browser();
    let res = b.get("/login").await;
    let before = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(before.contains("HttpOnly"));
    assert!(before.contains("SameSite=Strict"));
    let res = b.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let after = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_ne!(
        before.split(';').next(),
        after.split(';').next(),
        "new cookie at sign-in"
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account() {
    let (app, _admin) = spawn_ready().await;
    let b = app.browser();
    for _ in 0..5 {
        let res = b.login(ADMIN_EMAIL, "wrong password!").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while throttled.
    let res = b.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("Too many failed sign-in attempts. Wait 15 minutes and try again."),
        "{body}"
    );
    assert!(!b.signed_in().await);

    // Another account is not affected.
    let other = app.browser();
    let res = other.login("someone@example.com", "wrong password!").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn state_changing_requests_need_the_csrf_token() {
    let (app, admin) = spawn_ready().await;

    let res = admin.post_raw("/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("This form has expired"));
    assert!(admin.signed_in().await, "nothing changed");

    let res = admin
        .post_raw(
            "/workspace/users",
            &[
                ("csrf_token", "forged"),
                ("email", "x@example.com"),
                ("name", "X"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // htmx requests carry it in a header; a wrong one is refused with a fragment.
    let res = admin
        .client
        .post(admin.url("/workspace/users"))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", "forged")
        .form(&[
            ("email", "x@example.com"),
            ("name", "X"),
            ("role", "normal"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["hx-retarget"], "#flash");
    let body = res.text().await.unwrap();
    assert!(!body.contains("<html"), "a fragment, not a page");
    assert!(body.contains("This form has expired"));

    // A token from another session does not work either.
    let other = app.browser();
    let foreign = other.csrf().await;
    let res = admin
        .post_raw(
            "/workspace/users",
            &[
                ("csrf_token", &foreign),
                ("email", "x@example.com"),
                ("name", "X"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let (_, body) = admin.page("/workspace/users").await;
    assert!(!body.contains("x@example.com"), "no user was added");

    // A sign-in form without a token is refused too.
    let b = app.browser();
    b.get("/login").await;
    let res = b
        .post_raw(
            "/login",
            &[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!b.signed_in().await);
}

#[tokio::test]
async fn changing_password_ends_other_sessions() {
    let (app, admin) = spawn_ready().await;
    let laptop = app.browser();
    laptop.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(laptop.signed_in().await);

    let res = admin
        .post_form(
            "/account/password",
            &[
                ("current_password", "not my password"),
                ("password", "brand new password"),
                ("password_confirm", "brand new password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Your current password is not correct.")
    );
    assert!(laptop.signed_in().await, "a failed change ends nothing");

    let res = admin
        .post_form(
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("password", "brand new password"),
                ("password_confirm", "brand new password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, body) = admin.page("/account").await;
    assert!(body.contains("other session was signed out"), "{body}");
    assert!(!laptop.signed_in().await, "the other session ended at once");

    let b = app.browser();
    assert_eq!(
        b.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.login(ADMIN_EMAIL, "brand new password").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(
        app.event_actions()
            .await
            .contains(&"user.password_changed".to_owned())
    );
}

#[tokio::test]
async fn idle_sessions_expire() {
    let (app, admin) = spawn_ready().await;
    assert!(admin.signed_in().await);
    // Let 31 minutes pass for the session (idle timeout is 30).
    app.with_db(|c| {
        use diesel::prelude::*;
        use keyward::db::schema::sessions;
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::minutes(31);
        diesel::update(sessions::table)
            .set(sessions::last_seen_at.eq(past))
            .execute(c)
            .unwrap();
    })
    .await;
    assert!(!admin.signed_in().await);

    // And sessions older than the absolute limit end even when active.
    let b = app.browser();
    b.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(b.signed_in().await);
    app.with_db(|c| {
        use diesel::prelude::*;
        use keyward::db::schema::sessions;
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::hours(13);
        diesel::update(sessions::table)
            .set(sessions::created_at.eq(past))
            .execute(c)
            .unwrap();
    })
    .await;
    assert!(!b.signed_in().await);
}
