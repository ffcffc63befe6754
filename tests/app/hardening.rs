//! Attacks that once worked: bursts beating throttles, unsafe redirects,
//! secrets in addresses, hostile characters, racing setups.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::StatusCode;

/// Send `n` copies of a form at once from one browser (one session, one
/// CSRF token), as a script would.
async fn burst(b: &Browser, path: &str, fields: &[(&str, &str)], n: usize) -> Vec<StatusCode> {
    let token = b.csrf().await;
    let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
    all.extend_from_slice(fields);
    let sends = (0..n).map(|_| b.post_raw(path, &all));
    join_all(sends).await.iter().map(|r| r.status()).collect()
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_evaluates_at_most_five() {
    let (app, _admin) = spawn_ready().await;
    let attacker = app.browser();
    let statuses = burst(
        &attacker,
        "/login",
        &[("email", ADMIN_EMAIL), ("password", "wrong password!")],
        40,
    )
    .await;
    let refused = count(&statuses, StatusCode::UNAUTHORIZED);
    let throttled = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused <= 5, "{refused} wrong passwords were evaluated");
    assert_eq!(refused + throttled, 40, "{statuses:?}");
    let failures = app
        .event_actions()
        .await
        .iter()
        .filter(|a| *a == "login.failed")
        .count();
    assert_eq!(failures, refused, "each evaluated guess is audited");

    // The right password is refused too until the window ends.
    let res = app.browser().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_burst_of_wrong_current_passwords_is_throttled() {
    let (app, admin) = spawn_ready().await;
    let statuses = burst(
        &admin,
        "/account/password",
        &[
            ("current_password", "not my password"),
            ("password", "brand new password"),
            ("password_confirm", "brand new password"),
        ],
        30,
    )
    .await;
    let evaluated = count(&statuses, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(evaluated <= 5, "{evaluated} current passwords were checked");
    assert_eq!(
        evaluated + count(&statuses, StatusCode::TOO_MANY_REQUESTS),
        30,
        "{statuses:?}"
    );
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
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = res.text().await.unwrap();
    assert!(body.contains("Too many wrong current passwords"), "{body}");
    assert!(
        !app.event_actions()
            .await
            .contains(&"user.password_changed".to_owned()),
        "the password did not change"
    );
    // The old password still signs in (the sign-in throttle is separate).
    assert_eq!(
        app.browser()
            .login(ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn next_after_sign_in_never_leaves_the_site() {
    let (app, _admin) = spawn_ready().await;
    for next in [
        "/\t/evil.example",
        "/\r\nSet-Cookie: a=b",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let b = app.browser();
        let res = b
            .post_form(
                "/login",
                &[
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "next={next:?}");
        assert_eq!(location(&res), "/", "next={next:?}");
        assert!(!res.headers().contains_key("a"));
    }
    // The sign-in page does not carry a hostile value into its form either.
    let (_, page) = app.browser().page("/login?next=//evil.example").await;
    assert!(page.contains("name=\"next\" value=\"/\""), "{page}");
    // With a control character, the address itself is refused.
    let (status, page) = app.browser().page("/login?next=/%09/evil.example").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!page.contains("evil.example"));
    // A real path survives.
    let b = app.browser();
    let res = b
        .post_form(
            "/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/workspace/keys?view=all"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/workspace/keys?view=all");
}

#[tokio::test]
async fn a_pasted_key_is_searched_by_post_and_never_in_an_address() {
    let (_app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "Grafana dashboards")])
        .await;
    let secret_part = &key.secret[8..];

    // The search form posts, with and without htmx.
    let (_, page) = admin.page("/workspace/keys").await;
    let form = &page[page.find("role=\"search\"").unwrap() - 80..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(
        form.contains("method=\"post\" action=\"/workspace/keys/search\""),
        "{form}"
    );
    assert!(
        form.contains("hx-post=\"/workspace/keys/search\""),
        "{form}"
    );
    assert!(!form.contains("hx-get"), "{form}");

    // Without JavaScript: the post answers with a redirect to the key's id.
    let res = admin
        .post_form(
            "/workspace/keys/search",
            &[("q", &key.secret), ("view", "all")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(to.contains(&key.id), "{to}");
    assert!(to.contains("view=all"), "{to}");
    assert!(!to.contains(secret_part), "{to}");
    let (_, found) = admin.page(&to).await;
    assert!(found.contains("Grafana dashboards"));

    // Ordinary text is redirected to a shareable address.
    let res = admin
        .post_form("/workspace/keys/search", &[("q", "grafana")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/workspace/keys?q=grafana");

    // With htmx: the results, and the address to show, without the secret.
    let res = admin
        .post_htmx("/workspace/keys/search", &[("q", &key.secret)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let pushed = res.headers()["hx-push-url"].to_str().unwrap().to_owned();
    assert!(pushed.contains(&key.id) && !pushed.contains(secret_part));
    let body = res.text().await.unwrap();
    assert!(body.contains("Grafana dashboards"));
    assert!(!body.contains(secret_part), "the secret is not echoed");

    let res = admin
        .post_htmx("/workspace/keys/search", &[("q", "graf")])
        .await;
    assert_eq!(res.headers()["hx-push-url"], "/workspace/keys?q=graf");

    // A search without the CSRF token is refused like any other post.
    let res = admin
        .post_raw("/workspace/keys/search", &[("q", &key.secret)])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn control_characters_get_a_clear_answer_and_change_nothing() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "kept")])
        .await;
    let before = app.events().await.len();
    let anonymous = app.browser();
    // Anonymous sign-in with a NUL byte.
    let res = anonymous
        .post_form(
            "/login",
            &[("email", "ada\0@example.com"), ("password", "x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("control character"));
    // Forms, searches, filters and ids.
    for (path, fields) in [
        ("/workspace/keys/search", vec![("q", "a\0b")]),
        (
            "/workspace/users",
            vec![
                ("email", "x@example.com"),
                ("name", "N\0"),
                ("role", "normal"),
            ],
        ),
        (
            &*format!("/keys/{}/edit", key.id),
            vec![("name", "new\0name")],
        ),
        (
            "/workspace/settings/permissions",
            vec![("perm_name", "a:b"), ("perm_description", "x\0")],
        ),
    ] {
        let res = admin.post_form(path, &fields).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "POST {path}");
    }
    for path in [
        "/workspace/keys?q=%00",
        "/account/keys?q=a%00b",
        "/workspace/events?action=%00",
        "/workspace/events?key=key_%00",
    ] {
        let (status, body) = admin.page(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "GET {path}");
        assert!(body.contains("control character"), "GET {path}");
    }
    for path in ["/keys/%00", "/keys/key_%00/edit", "/invite/%00abc"] {
        assert_eq!(
            admin.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    assert_eq!(app.events().await.len(), before, "nothing changed");
    // Line breaks stay allowed where text is multi-line.
    let res = admin
        .post_form(
            &format!("/keys/{}/edit", key.id),
            &[("name", "kept"), ("description", "line one\r\nline two")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn invisible_or_direction_changing_names_are_refused() {
    let (_app, admin) = spawn_ready().await;
    for name in ["\u{200B}", "\u{200B}\u{FEFF}", "invoice\u{202E}fdp.exe"] {
        let res = admin
            .submit_new_key("/workspace/keys", &[("name", name)])
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let res = admin
            .post_form(
                "/workspace/users",
                &[
                    ("email", "x@example.com"),
                    ("name", name),
                    ("role", "normal"),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
    }
    let res = admin
        .submit_new_key("/workspace/keys", &[("name", "Zoë's 👩‍💻 key")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Names of only invisible characters the old hand-kept list missed, on
/// each surface that takes a name or an email: the create-key form, the
/// management API and the admin's "add user" form.
#[tokio::test]
async fn blank_names_and_direction_changing_emails_are_refused_on_every_surface() {
    let (app, admin) = spawn_ready().await;
    for name in [
        "\u{2800}",
        "\u{0301}",
        "\u{2800}\u{2028}\u{2800}",
        "\u{E0041}",
        "\u{FFFF}",
    ] {
        let res = admin
            .submit_new_key("/workspace/keys", &[("name", name)])
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains("id=\"f-name-error\""), "{name:?}: {body}");
    }
    let mut fields = vec![("name", "Provisioning")];
    fields.extend_from_slice(&[("permissions", "keyward:keys:write")]);
    let manager = admin.create_key("/workspace/keys", &fields).await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/keys", app.base))
        .bearer_auth(&manager.secret)
        .json(&serde_json::json!({ "name": "\u{2800}" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "VALIDATION_FAILED", "{problem}");
    assert_eq!(problem["errors"][0]["field"], "name", "{problem}");

    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "moc.elpmaxe\u{202E}@example.com"),
                ("name", "Mallory"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(body.contains("id=\"f-email-error\""), "{body}");
    assert!(!app.event_actions().await.contains(&"user.added".to_owned()));
}

#[tokio::test]
async fn a_non_ascii_authorization_header_is_a_malformed_key() {
    let (app, _admin) = spawn_ready().await;
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/me", app.base))
        .header(
            "Authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer sk_live_\xc3\xa9\xc3\xa9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"]["code"], "MALFORMED");
}

#[tokio::test]
async fn operators_get_the_same_404_for_existing_and_made_up_keys() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "hidden")])
        .await;
    let op = app
        .add_user(
            &admin,
            "otto@example.com",
            "operator",
            "otto's long password",
        )
        .await;
    for id in [key.id.as_str(), "key_madeup0000000000000000"] {
        let (status, body) = op.page(&format!("/keys/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET /keys/{id}");
        assert!(body.contains("Not found"));
        let res = op.post_form(&format!("/keys/{id}/disable"), &[]).await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "POST /keys/{id}/disable"
        );
    }
    assert_eq!(
        me(&app.base, &key.secret).await.0,
        StatusCode::OK,
        "untouched"
    );
}

/// The IP recorded for a sign-in, as the audit trail shows it.
async fn last_sign_in_ip(app: &TestApp) -> Option<String> {
    app.events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.action == "login.succeeded")
        .and_then(|e| e.ip)
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    for (trusted, expected) in [(false, "127.0.0.1"), (true, "198.51.100.7")] {
        let (app, _admin) = spawn_ready_with(move |c| {
            if trusted {
                c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            }
        })
        .await;
        let b = app.browser();
        let token = b.csrf().await;
        let res = b
            .client
            .post(b.url("/login"))
            .header("X-Forwarded-For", "6.6.6.6, 198.51.100.7")
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(last_sign_in_ip(&app).await.as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn invitation_links_never_follow_a_forged_host() {
    for public in [None, Some("https://keys.example.com")] {
        let (app, admin) =
            spawn_ready_with(move |c| c.public_url = public.map(str::to_owned)).await;
        let token = admin.csrf().await;
        let res = admin
            .client
            .post(admin.url("/workspace/users"))
            .header("Host", "evil.example")
            .header("X-Forwarded-Host", "evil.example")
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", "bob@example.com"),
                ("name", "Bob"),
                ("role", "normal"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let link = invite_link(&res.text().await.unwrap()).unwrap();
        let base = public.map_or_else(|| app.base.clone(), str::to_owned);
        assert!(link.starts_with(&format!("{base}/invite/")), "{link}");
        assert!(!link.contains("evil"), "{link}");
    }
}

#[tokio::test]
async fn hsts_is_sent_behind_https_only() {
    let app = spawn_app_with(|c| c.cookie_secure = true).await;
    let res = app.browser().get("/login").await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let app = spawn_app().await;
    let res = app.browser().get("/login").await;
    assert!(!res.headers().contains_key("strict-transport-security"));
}
