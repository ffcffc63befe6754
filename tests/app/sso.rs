//! Single sign-on through OpenID Connect (issue 26, part 1), against a real
//! OpenID provider (npm `oidc-provider`, tests/peers/oidc) started by each
//! test: the whole redirect dance over HTTP, followed by hand with one
//! cookie jar per browser. Who gets in (joining with a role, the domain
//! limit, linking by verified email then by subject), what is refused (a
//! tampered state, a replayed code, a token for another client, an
//! unverified email, the provider's own error), and sign-in through SSO
//! only with its break-glass exception.

use crate::helpers::*;
use keyward::config::OidcProvider;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The provider id keyward knows the peer by.
const PROVIDER: &str = "corp";

/// A running `oidc-provider`: its issuer, and the control API of
/// tests/peers/oidc/server.mjs.
struct Peer {
    child: std::process::Child,
    issuer: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    async fn start() -> Peer {
        let node = std::env::var("KEYWARD_NODE").unwrap_or_else(|_| "node".into());
        let mut child = std::process::Command::new(node)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/oidc/server.mjs"
            ))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the OIDC peer starts (npm ci in tests/peers/oidc)");
        let issuer = printed_word(&mut child, |w| w.starts_with("http://")).await;
        Peer { child, issuer }
    }

    async fn control(&self, what: &str, body: Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/test/{what}", self.issuer))
            .json(&body)
            .send()
            .await
            .expect("peer control");
        assert!(res.status().is_success(), "peer {what}: {}", res.status());
    }

    /// Who signs in next at the provider.
    async fn user(&self, sub: &str, email: &str, verified: bool, groups: &[&str]) {
        self.control(
            "user",
            json!({"sub": sub, "email": email, "email_verified": verified, "groups": groups}),
        )
        .await;
    }
}

/// keyward set up (Ada is the admin) with the peer as provider `corp`,
/// keyward's client registered there, and a second client (`other`) too.
async fn sso_app(peer: &Peer, break_glass: &[&str]) -> (TestApp, Browser) {
    let issuer = peer.issuer.clone();
    let break_glass: Vec<String> = break_glass.iter().map(|s| s.to_string()).collect();
    let (app, admin) = spawn_ready_with(move |c| {
        c.oidc_providers = vec![OidcProvider {
            id: PROVIDER.into(),
            name: "Corp ID".into(),
            issuer,
            client_id: "keyward".into(),
            client_secret: "keyward-client-secret".into(),
            scopes: vec!["groups".into()],
        }];
        c.sso_break_glass = break_glass;
    })
    .await;
    peer.control(
        "setup",
        json!({
            "redirect_uri": format!("{}/auth/oidc/{PROVIDER}/callback", app.base),
            "clients": [
                {"client_id": "keyward", "client_secret": "keyward-client-secret"},
                {"client_id": "other", "client_secret": "other-client-secret"},
            ],
        }),
    )
    .await;
    (app, admin)
}

/// Save SSO settings as an admin would, through the settings form.
async fn set_sso(admin: &Browser, fields: &[(&str, &str)]) -> reqwest::Response {
    admin.post_form("/workspace/settings/sso", fields).await
}

/// Where the redirect dance reaches keyward's callback: the callback URL
/// (a path on keyward), after starting at keyward and walking through
/// the provider's redirects.
async fn to_callback(browser: &Browser) -> String {
    let res = browser
        .post_form(
            &format!("/auth/oidc/{PROVIDER}/start"),
            &[("next", "/account")],
        )
        .await;
    // A page that goes on to the provider (a form's redirect to another
    // site would break the pages' `form-action 'self'`).
    assert_eq!(res.status(), StatusCode::OK, "start answers a page");
    let mut url = provider_url(&res.text().await.unwrap());
    assert!(url.contains("code_challenge="), "PKCE is used: {url}");
    assert!(url.contains("nonce="), "a nonce is sent");
    for _ in 0..10 {
        if let Some(path) = url.strip_prefix(&browser.base) {
            return path.to_owned();
        }
        let res = browser.client.get(&url).send().await.expect("provider");
        assert!(
            res.status().is_redirection(),
            "the provider redirects: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
        let next = location(&res);
        url = if next.starts_with('/') {
            let origin = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}{next}")
        } else {
            next
        };
    }
    panic!("the provider never sent the browser back");
}

/// Where the start page sends the browser: its link to the provider,
/// which its refresh follows by itself.
fn provider_url(page: &str) -> String {
    let href = page
        .split("id=\"sso-go\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|h| h.split('"').next())
        .expect("a link to the provider");
    assert!(
        page.contains(&format!("url={href}")),
        "the page goes on by itself"
    );
    let url = href
        .replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x26;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/");
    assert!(!url.contains("&#"), "an entity left in {url}");
    url
}

/// The whole sign-in: the callback's status and page.
async fn sso_sign_in(browser: &Browser) -> (StatusCode, String) {
    let callback = to_callback(browser).await;
    browser.page(&callback).await
}

/// The (workspace name, role) of a person's memberships, by email.
async fn memberships_of(app: &TestApp, email: &'static str) -> Vec<(String, String)> {
    app.with_db(move |c| {
        let Some(person) = keyward::db::people::find_by_email(c, email).unwrap() else {
            return Vec::new();
        };
        keyward::db::people::memberships(c, &person.id)
            .unwrap()
            .into_iter()
            .map(|m| (m.workspace_name.clone(), m.role))
            .collect()
    })
    .await
}

async fn people_count(app: &TestApp) -> i64 {
    app.with_db(|c| {
        use diesel::prelude::*;
        keyward::db::schema::people::table
            .count()
            .get_result::<i64>(c)
            .unwrap()
    })
    .await
}

fn joining(role: &str) -> Vec<(&'static str, String)> {
    vec![
        ("join_provider", PROVIDER.into()),
        ("default_role", role.into()),
        ("email_domains", "example.com".into()),
        ("group_roles", "kw-admins=admin".into()),
    ]
}

async fn allow_joining(admin: &Browser, role: &str) {
    let fields = joining(role);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = set_sso(admin, &fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "settings saved");
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_first_sign_in_joins_then_the_subject_is_what_matches() {
    let peer = Peer::start().await;
    let (app, admin) = sso_app(&peer, &[]).await;

    // The sign-in page offers the provider beside the password form.
    let (_, login) = app.browser().page("/login").await;
    assert!(login.contains("Sign in with Corp ID"), "{login}");
    assert!(login.contains(&format!("action=\"/auth/oidc/{PROVIDER}/start\"")));

    // Nobody may join yet: a new person is refused, and nothing is made.
    peer.user("sub-new", "new@example.com", true, &[]).await;
    let before = people_count(&app).await;
    let (status, page) = sso_sign_in(&app.browser()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("lets new@example.com join"), "{page}");
    assert_eq!(people_count(&app).await, before);

    allow_joining(&admin, "operator").await;
    let newcomer = app.browser();
    let (status, page) = sso_sign_in(&newcomer).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("url=/account"), "the page carries on to next");
    assert!(newcomer.signed_in().await, "a session like a password's");
    assert_eq!(
        memberships_of(&app, "new@example.com").await,
        [("Acme".to_owned(), "operator".to_owned())],
        "joined with the default role"
    );
    let actions = app.event_actions().await;
    assert!(
        actions.contains(&"user.sso_joined".to_owned()),
        "{actions:?}"
    );
    let (_, events) = admin.page("/workspace/events").await;
    assert!(
        events.contains("joined the workspace through single sign-on (corp) as operator"),
        "the event reads as a sentence"
    );

    // Later the email changes at the provider: the subject still finds
    // the same person, and no one new is made.
    let people = people_count(&app).await;
    peer.user("sub-new", "renamed@example.com", true, &[]).await;
    let again = app.browser();
    let (status, _) = sso_sign_in(&again).await;
    assert_eq!(status, StatusCode::OK);
    let (_, account) = again.page("/account").await;
    assert!(
        account.contains("new@example.com"),
        "same person: {account}"
    );
    assert_eq!(people_count(&app).await, people);
    assert_eq!(memberships_of(&app, "renamed@example.com").await, []);

    // Sign-out works as for any session.
    let res = again.post_form("/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!again.signed_in().await);
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_groups_give_a_role_and_other_domains_cannot_join() {
    let peer = Peer::start().await;
    let (app, admin) = sso_app(&peer, &[]).await;
    allow_joining(&admin, "normal").await;

    peer.user(
        "sub-boss",
        "boss@example.com",
        true,
        &["staff", "kw-admins"],
    )
    .await;
    let (status, page) = sso_sign_in(&app.browser()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        memberships_of(&app, "boss@example.com").await,
        [("Acme".to_owned(), "admin".to_owned())],
        "the group mapping wins over the default role"
    );

    peer.user("sub-plain", "plain@example.com", true, &["staff"])
        .await;
    let (status, _) = sso_sign_in(&app.browser()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        memberships_of(&app, "plain@example.com").await,
        [("Acme".to_owned(), "normal".to_owned())]
    );

    let people = people_count(&app).await;
    peer.user("sub-out", "eve@elsewhere.example", true, &["kw-admins"])
        .await;
    let outsider = app.browser();
    let (status, page) = sso_sign_in(&outsider).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!outsider.signed_in().await);
    assert_eq!(people_count(&app).await, people, "no one was made");
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_a_member_is_linked_by_verified_email_only() {
    let peer = Peer::start().await;
    let (app, admin) = sso_app(&peer, &[]).await;

    // An unverified email finds nobody, even an existing member's.
    peer.user("sub-ada", ADMIN_EMAIL, false, &[]).await;
    let b = app.browser();
    let (status, page) = sso_sign_in(&b).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("has not confirmed"), "{page}");
    assert!(!b.signed_in().await);

    // Verified: Ada is linked, and signed in as herself.
    peer.user("sub-ada", ADMIN_EMAIL, true, &[]).await;
    let b = app.browser();
    let (status, _) = sso_sign_in(&b).await;
    assert_eq!(status, StatusCode::OK);
    let (_, account) = b.page("/account").await;
    assert!(account.contains(ADMIN_EMAIL));
    let actions = app.event_actions().await;
    assert!(
        actions.contains(&"user.sso_linked".to_owned()),
        "{actions:?}"
    );
    let (_, events) = admin.page("/workspace/events").await;
    assert!(events.contains("linked their account to single sign-on through corp"));

    // Another account at the provider claiming Ada's email later cannot
    // take hers over: once linked, the subject is what matches.
    peer.user("sub-mallory", ADMIN_EMAIL, true, &[]).await;
    let m = app.browser();
    let (status, page) = sso_sign_in(&m).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!m.signed_in().await);
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_a_tampered_state_and_a_replayed_code_are_refused() {
    let peer = Peer::start().await;
    let (app, _admin) = sso_app(&peer, &[]).await;
    peer.user("sub-ada", ADMIN_EMAIL, true, &[]).await;

    let b = app.browser();
    let callback = to_callback(&b).await;
    let tampered = {
        let (path, query) = callback.split_once('?').unwrap();
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("state", v)) => format!("state={}x", &v[..v.len() - 1]),
                _ => kv.to_owned(),
            })
            .collect();
        format!("{path}?{}", query.join("&"))
    };
    let (status, page) = b.page(&tampered).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("Start again from the sign-in page"), "{page}");
    assert!(!b.signed_in().await);

    // The real return still works once…
    let (status, _) = b.page(&callback).await;
    assert_eq!(status, StatusCode::OK);
    assert!(b.signed_in().await);
    // …and only once: replayed, the sign-in it belonged to is over.
    let (status, page) = b.page(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");

    // A replay that brings the old pending cookie along: the provider
    // refuses a code it already exchanged.
    let c = app.browser();
    let start = c
        .post_form(&format!("/auth/oidc/{PROVIDER}/start"), &[("next", "/")])
        .await;
    let cookie = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("keyward_oidc="))
        .expect("the pending sign-in cookie");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let mut url = provider_url(&start.text().await.unwrap());
    while !url.starts_with(&c.base) {
        let res = c.client.get(&url).send().await.unwrap();
        let next = location(&res);
        url = if next.starts_with('/') {
            format!("{}{next}", peer.issuer)
        } else {
            next
        };
    }
    let first = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = first
        .get(&url)
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the first use signs in");
    let res = first
        .get(&url)
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the code is used up");
    let page = res.text().await.unwrap();
    assert!(page.contains("did not accept this sign-in"), "{page}");
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_a_rotated_signing_key_is_followed() {
    let peer = Peer::start().await;
    let (app, _admin) = sso_app(&peer, &[]).await;
    peer.user("sub-ada", ADMIN_EMAIL, true, &[]).await;
    let (status, _) = sso_sign_in(&app.browser()).await;
    assert_eq!(status, StatusCode::OK);
    // The provider signs with a new key (a new kid) from now on: keyward
    // fetches the key set again and follows.
    peer.control("rotate", json!({})).await;
    let b = app.browser();
    let (status, page) = sso_sign_in(&b).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(b.signed_in().await);
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_an_id_token_for_another_client_is_refused() {
    let peer = Peer::start().await;
    let (app, _admin) = sso_app(&peer, &[]).await;
    peer.user("sub-ada", ADMIN_EMAIL, true, &[]).await;
    // Properly signed by the provider's key, but for the other client.
    peer.control("mode", json!({"audience": "other"})).await;
    let b = app.browser();
    let callback = to_callback(&b).await;
    let res = b.get(&callback).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let ended = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("keyward_oidc=;"));
    assert!(ended, "the refused sign-in is over: its cookie goes");
    let page = res.text().await.unwrap();
    assert!(page.contains("could not be verified"), "{page}");
    assert!(!b.signed_in().await);
    assert!(
        !app.event_actions()
            .await
            .contains(&"user.sso_linked".to_owned())
    );
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_the_providers_error_lands_on_a_clear_page() {
    let peer = Peer::start().await;
    let (app, _admin) = sso_app(&peer, &[]).await;
    peer.control("mode", json!({"deny": true})).await;
    let b = app.browser();
    let callback = to_callback(&b).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let (status, page) = b.page(&callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("cancelled or refused"), "{page}");
    assert!(!b.signed_in().await);
}

#[tokio::test]
#[ignore = "needs the OIDC peer: npm ci in tests/peers/oidc; run with --ignored"]
async fn peer_sso_only_refuses_passwords_except_break_glass() {
    let peer = Peer::start().await;
    let (app, admin) = sso_app(&peer, &[ADMIN_EMAIL]).await;
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    drop(bob);
    let res = set_sso(
        &admin,
        &[
            ("join_provider", ""),
            ("default_role", "normal"),
            ("sso_only", "on"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let res = app
        .browser()
        .login("bob@example.com", "bob's long password")
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = res.text().await.unwrap();
    assert!(page.contains("single sign-on only"), "{page}");
    assert!(
        page.contains("Sign in with Corp ID"),
        "the way in is offered"
    );

    // Nor does an invitation to another workspace open a password session.
    let zed = app.other_workspace_admin().await;
    let res = zed
        .post_form(
            "/workspace/users",
            &[
                ("email", "bob@example.com"),
                ("name", "Bob"),
                ("role", "normal"),
            ],
        )
        .await;
    let link = invite_link(&res.text().await.unwrap()).expect("invitation link");
    let path = format!("/invite/{}", link.split_once("/invite/").unwrap().1);
    let invited = app.browser();
    let res = invited
        .post_form(
            &path,
            &[
                ("password", "bob's long password"),
                ("password_confirm", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!invited.signed_in().await);

    // The break-glass admin still signs in with her password…
    let res = app.browser().login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // …and Bob through the provider.
    peer.user("sub-bob", "bob@example.com", true, &[]).await;
    let b = app.browser();
    let (status, _) = sso_sign_in(&b).await;
    assert_eq!(status, StatusCode::OK);
    assert!(b.signed_in().await);
}

/// Settings → Single sign-on: admins only; bad input gets a message per
/// field and changes nothing. No provider process is needed.
#[tokio::test]
async fn sso_settings_refuse_bad_input_per_field() {
    let (app, admin) = spawn_ready_with(|c| {
        c.oidc_providers = vec![OidcProvider {
            id: PROVIDER.into(),
            name: "Corp ID".into(),
            issuer: "http://127.0.0.1:9".into(),
            client_id: "keyward".into(),
            client_secret: "unused".into(),
            scopes: Vec::new(),
        }];
    })
    .await;
    let (status, page) = admin.page("/workspace/settings/sso").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<label for=\"f-email_domains\">"),
        "real labels"
    );
    assert!(page.contains("People from Corp ID"));

    let res = set_sso(
        &admin,
        &[
            ("join_provider", "nope"),
            ("default_role", "owner"),
            ("email_domains", "example.com, not a domain"),
            ("group_roles", "admins=root"),
            ("sso_only", "on"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    for field in [
        "join_provider",
        "default_role",
        "email_domains",
        "group_roles",
    ] {
        assert!(
            page.contains(&format!("id=\"f-{field}-error\"")),
            "{field} has its error"
        );
    }
    assert!(
        !app.event_actions()
            .await
            .contains(&"workspace.sso_settings_changed".to_owned()),
        "nothing changed"
    );
    let (_, page) = admin.page("/workspace/settings/sso").await;
    assert!(!page.contains("not a domain"), "nothing was saved");

    // Without the CSRF token, nothing either.
    let res = admin
        .post_raw("/workspace/settings/sso", &[("sso_only", "on")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Good input is saved once, and says so in the trail.
    let fields = joining("operator");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        set_sso(&admin, &fields).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, page) = admin.page("/workspace/settings/sso").await;
    assert!(page.contains("kw-admins=admin"), "{page}");
    let (_, events) = admin.page("/workspace/events").await;
    assert!(
        events.contains(
            "single sign-on settings (join provider, default role, email domains, group roles)"
        ),
        "the event says what changed: {events}"
    );

    // Not for a normal member.
    let normal = app
        .add_user(&admin, "nora@example.com", "normal", "nora's long password")
        .await;
    let (status, _) = normal.page("/workspace/settings/sso").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let res = set_sso(&normal, &[("join_provider", ""), ("default_role", "admin")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A provider that cannot be reached ends on a clear page, not a 500.
    let res = app
        .browser()
        .post_form(&format!("/auth/oidc/{PROVIDER}/start"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("could not be reached"));
    // And a return without a sign-in in progress too.
    let (status, page) = app
        .browser()
        .page(&format!("/auth/oidc/{PROVIDER}/callback?code=x&state=y"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
}

/// The same settings through the management API: `keyward:settings:read`
/// / `keyward:settings:write`, the same checks and the same trail.
#[tokio::test]
async fn sso_settings_through_the_management_api() {
    let (app, admin) = spawn_ready_with(|c| {
        c.oidc_providers = vec![OidcProvider {
            id: PROVIDER.into(),
            name: "Corp ID".into(),
            issuer: "http://127.0.0.1:9".into(),
            client_id: "keyward".into(),
            client_secret: "unused".into(),
            scopes: Vec::new(),
        }];
    })
    .await;
    let manager = |permissions: &'static [&'static str]| {
        let admin = &admin;
        async move {
            let mut fields = vec![("name", "sso settings"), ("expiry", "never")];
            for p in permissions {
                fields.push(("permissions", *p));
            }
            admin.create_key("/workspace/keys", &fields).await.secret
        }
    };
    let reader = manager(&["keyward:settings:read"]).await;
    let writer = manager(&["keyward:settings:read", "keyward:settings:write"]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/settings/sso", app.base);

    let res = http.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["join_provider"], Value::Null);
    assert_eq!(body["providers"][0]["id"], PROVIDER);

    let put = |key: String, body: Value| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.put(&url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let good = json!({
        "join_provider": PROVIDER,
        "default_role": "operator",
        "email_domains": ["Example.com"],
        "group_roles": [{"group": "kw-admins", "role": "admin"}],
        "sso_only": true,
    });
    let res = put(reader.clone(), good.clone()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "read is not write");

    let res = put(
        writer.clone(),
        json!({"join_provider": "nope", "email_domains": ["bad domain"]}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = res.text().await.unwrap();
    assert!(problem.contains("join_provider"), "{problem}");
    assert!(problem.contains("email_domains"), "{problem}");
    assert!(
        !app.event_actions()
            .await
            .contains(&"workspace.sso_settings_changed".to_owned())
    );

    let res = put(writer.clone(), good).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["default_role"], "operator");
    assert_eq!(body["email_domains"], json!(["example.com"]));
    assert_eq!(body["group_roles"][0]["role"], "admin");
    assert_eq!(body["sso_only"], true);
    let (_, page) = admin.page("/workspace/settings/sso").await;
    assert!(page.contains("kw-admins=admin"), "the page shows the same");
    assert!(
        app.event_actions()
            .await
            .contains(&"workspace.sso_settings_changed".to_owned())
    );

    // Listed in the OpenAPI document, with its body refusals.
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let put_doc = &doc["paths"]["/api/v1/settings/sso"]["put"];
    for status in ["200", "413", "415", "422"] {
        assert!(put_doc["responses"][status].is_object(), "{status}");
    }
}

/// A providers file that is wrong stops keyward at start-up: exit 1, one
/// line naming the variable, and never the client secret.
#[tokio::test]
async fn sso_invalid_providers_file_names_the_variable_and_exits_1() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let url = match &db {
        keyward::config::DatabaseUrl::Sqlite(path) => path.display().to_string(),
        keyward::config::DatabaseUrl::Postgres(url) => url.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "very-secret-client-secret").unwrap();
    let file = dir.path().join("providers.json");
    let run = |json: String| {
        std::fs::write(&file, json).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .arg("migrate")
            .env_clear()
            .env("DATABASE_URL", &url)
            .env(
                "KEYWARD_SECRET",
                "cli-test-secret-cli-test-secret-cli-test-secret",
            )
            .env("KEYWARD_OIDC_PROVIDERS_FILE", &file)
            .output()
            .unwrap()
    };
    for bad in [
        "not json".to_owned(),
        format!(
            r#"[{{"id":"Corp ID","name":"Corp","issuer":"https://login.example.com","client_id":"kw","client_secret_file":{:?}}}]"#,
            secret.display().to_string()
        ),
        r#"[{"id":"corp","name":"Corp","issuer":"https://login.example.com","client_id":"kw","client_secret_file":"/nonexistent/secret"}]"#.to_owned(),
    ] {
        let out = run(bad.clone());
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("KEYWARD_OIDC_PROVIDERS_FILE"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        assert!(!stderr.contains("very-secret"), "{stderr}");
    }
    let out = run(format!(
        r#"[{{"id":"corp","name":"Corp","issuer":"https://login.example.com","client_id":"kw","client_secret_file":{:?}}}]"#,
        secret.display().to_string()
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole dance in a real browser: the sign-in page's button, the
/// provider's redirects, keyward's callback (the session cookie is
/// SameSite=Strict, so the callback's page carries on to `next` itself),
/// and a signed-in page at the end.
#[tokio::test]
#[ignore = "needs the OIDC peer (npm ci in tests/peers/oidc) and chromium with chromium-driver; run with --ignored"]
async fn peer_browser_signs_in_through_the_providers_button() {
    let peer = Peer::start().await;
    let (app, admin) = sso_app(&peer, &[]).await;
    allow_joining(&admin, "normal").await;
    peer.user("sub-cleo", "cleo@example.com", true, &[]).await;
    let chrome = crate::browser::Chrome::start().await;
    chrome
        .client
        .goto(&format!("{}/login?next=/account", app.base))
        .await
        .unwrap();
    assert_eq!(
        chrome.wait_text("#sso-heading").await,
        "Or sign in through your organisation"
    );
    chrome.screenshot("sso-login").await;
    chrome
        .click("form[action='/auth/oidc/corp/start'] button")
        .await;
    chrome.wait_for_path("/account").await;
    let nav = chrome.wait_text("nav[aria-label=Main]").await;
    assert!(!nav.is_empty(), "signed in: the main navigation is shown");
    assert!(
        chrome.wait_text("main").await.contains("cleo@example.com"),
        "the account page is Cleo's"
    );
    chrome.close().await;
    assert_eq!(
        memberships_of(&app, "cleo@example.com").await,
        vec![("Acme".to_owned(), "normal".to_owned())]
    );
}
