//! What the pages say and offer (issue 14): row menus for every status,
//! events as sentences, times people read, the key limit up front, the
//! users page and error pages; and the REVOKED answer for a revoked key's
//! old secret.

use crate::helpers::*;
use reqwest::StatusCode;

/// Regenerate `id` with a grace period; returns the new secret.
async fn regenerate_with_grace(admin: &Browser, id: &str) -> String {
    let (_, confirm) = admin.page(&format!("/keys/{id}/regenerate")).await;
    let nonce = hidden(&confirm, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{id}/regenerate"),
            &[("grace", "24h"), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    shown_secret(&res.text().await.unwrap()).expect("new secret shown")
}

#[tokio::test]
async fn a_revoked_keys_old_secret_answers_revoked_not_not_found() {
    // Cached answers live ten minutes: a refusal can only come from the
    // revoke itself reaching the cache, never from an entry expiring.
    let (app, admin) = spawn_ready_with(|c| {
        c.verifier.cache_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "ERP connector")])
        .await;
    let new = regenerate_with_grace(&admin, &k.id).await;
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK, "grace");
    assert_eq!(me(&app.base, &new).await.0, StatusCode::OK);

    let res = admin
        .post_form(&format!("/keys/{}/revoke", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for secret in [&k.secret, &new] {
        assert_eq!(
            me_code(&app.base, secret).await,
            (StatusCode::UNAUTHORIZED, "REVOKED".into())
        );
    }
    // The key page no longer promises that the old secret works.
    let (_, page) = admin.page(&format!("/keys/{}", k.id)).await;
    assert!(!page.contains("previous secret works until"), "{page}");

    // Deleted after revoking: both secrets still answer REVOKED.
    let res = admin
        .post_form(&format!("/keys/{}/delete", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for secret in [&k.secret, &new] {
        assert_eq!(me_code(&app.base, secret).await.1, "REVOKED");
    }
}

/// The labels offered in the row menu of key `id` on a list page.
pub fn row_menu(body: &str, id: &str) -> Vec<String> {
    let start = body
        .find(&format!("id=\"row-{id}\""))
        .unwrap_or_else(|| panic!("row {id} listed"));
    let rest = &body[start..];
    let end = rest[1..]
        .find("id=\"row-")
        .or_else(|| rest.find("</tbody>"))
        .unwrap_or(rest.len());
    let row = &rest[..end];
    let menu = &row[row.find("menu-items").expect("row has a menu")..];
    let mut labels = Vec::new();
    let mut at = 0;
    while let Some(i) = menu[at..].find("class=\"menu-item") {
        let from = at + i;
        let gt = from + menu[from..].find('>').unwrap() + 1;
        let lt = gt + menu[gt..].find('<').unwrap();
        labels.push(menu[gt..lt].trim().to_owned());
        at = lt;
    }
    labels
}

/// The text of the status badge in row `id`.
fn row_status(body: &str, id: &str) -> String {
    let start = body.find(&format!("id=\"row-{id}\"")).unwrap();
    let rest = &body[start..];
    let s = rest.find("class=\"status ").unwrap();
    let gt = s + rest[s..].find('>').unwrap() + 1;
    let lt = gt + rest[gt..].find('<').unwrap();
    rest[gt..lt].to_owned()
}

#[tokio::test]
async fn every_status_gets_the_actions_that_still_apply_and_no_menu_is_empty() {
    let (app, admin) = spawn_ready().await;
    let mut made = Vec::new();
    for name in ["active", "inactive", "expired", "revoked"] {
        made.push(admin.create_key("/workspace/keys", &[("name", name)]).await);
    }
    let [active, inactive, expired, revoked] = <[CreatedKey; 4]>::try_from(made).unwrap();
    admin
        .post_form(&format!("/keys/{}/disable", inactive.id), &[])
        .await;
    admin
        .post_form(&format!("/keys/{}/revoke", revoked.id), &[])
        .await;
    let id = expired.id.clone();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::hours(1);
        diesel::update(api_keys::table.find(id))
            .set(api_keys::expires_at.eq(past))
            .execute(c)
            .unwrap();
    })
    .await;

    let (_, list) = admin.page("/workspace/keys").await;
    assert_eq!(
        row_menu(&list, &active.id),
        [
            "View details",
            "Disable",
            "Edit",
            "Regenerate",
            "Revoke",
            "Delete"
        ]
    );
    assert_eq!(
        row_menu(&list, &inactive.id),
        [
            "View details",
            "Enable",
            "Edit",
            "Regenerate",
            "Revoke",
            "Delete"
        ]
    );
    assert_eq!(
        row_menu(&list, &expired.id),
        ["View details", "Edit", "Delete"]
    );
    assert_eq!(row_menu(&list, &revoked.id), ["View details", "Delete"]);

    // A normal user's revoked key, seen by an admin in "All keys": the
    // admin may look at it but not delete someone else's key.
    let normal = app
        .add_user(&admin, "nora@example.com", "normal", "nora's long password")
        .await;
    let personal = normal
        .create_key("/account/keys", &[("name", "nora's script")])
        .await;
    normal
        .post_form(&format!("/keys/{}/revoke", personal.id), &[])
        .await;
    let (_, all) = admin.page("/workspace/keys?view=all").await;
    assert_eq!(row_menu(&all, &personal.id), ["View details"]);
    let (_, own) = normal.page("/account/keys").await;
    assert_eq!(row_menu(&own, &personal.id), ["View details", "Delete"]);

    // The revoked key is deleted from its row menu: the menu's link opens
    // the confirmation, whose form deletes it; its history stays.
    let (status, confirm) = admin
        .page(&format!(
            "/keys/{}/delete?return_to=%2Fworkspace%2Fkeys",
            revoked.id
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains(&format!("action=\"/keys/{}/delete\"", revoked.id)));
    let res = admin
        .post_form(
            &format!("/keys/{}/delete", revoked.id),
            &[("return_to", &hidden(&confirm, "return_to").unwrap())],
        )
        .await;
    assert_eq!(location(&res), "/workspace/keys");
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("was deleted. Its events stay in the audit trail."));
    assert!(!list.contains(&format!("id=\"row-{}\"", revoked.id)));
    let actions: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.target_id.as_deref() == Some(&revoked.id))
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["key.created", "key.revoked", "key.deleted"]);
}

#[tokio::test]
async fn with_api_keys_off_every_active_row_says_it_is_paused() {
    let (_app, admin) = spawn_ready().await;
    let a = admin.create_key("/workspace/keys", &[("name", "a")]).await;
    let b = admin.create_key("/workspace/keys", &[("name", "b")]).await;
    let mine = admin.create_key("/account/keys", &[("name", "mine")]).await;
    admin
        .post_form(&format!("/keys/{}/disable", b.id), &[])
        .await;
    let (_, list) = admin.page("/workspace/keys").await;
    assert_eq!(row_status(&list, &a.id), "Active");

    admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "off")])
        .await;
    let paused = "Active — paused: API keys are off";
    let (_, list) = admin.page("/workspace/keys").await;
    assert_eq!(row_status(&list, &a.id), paused);
    assert_eq!(row_status(&list, &b.id), "Inactive");
    let (_, all) = admin.page("/workspace/keys?view=all").await;
    assert_eq!(row_status(&all, &mine.id), paused);
    let (_, own) = admin.page("/account/keys").await;
    assert_eq!(row_status(&own, &mine.id), paused);
    let (_, page) = admin.page(&format!("/keys/{}", a.id)).await;
    assert!(page.contains(paused));

    admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "on")])
        .await;
    let (_, list) = admin.page("/workspace/keys").await;
    assert_eq!(row_status(&list, &a.id), "Active");
}

const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.79 Safari/537.36";

/// The `<li class="event">` entries of a page, in order.
fn event_entries(body: &str) -> Vec<&str> {
    body.split("<li class=\"event\">").skip(1).collect()
}

#[tokio::test]
async fn events_and_key_history_read_like_sentences_with_details_one_click_away() {
    let (_app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "ERP connector"), ("tags", "erp, prod")],
        )
        .await;
    // Revoke from "Chrome on Linux".
    let token = admin.csrf().await;
    let res = admin
        .client
        .post(admin.url(&format!("/keys/{}/revoke", k.id)))
        .header("User-Agent", CHROME_UA)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (status, page) = admin.page("/workspace/events").await;
    assert_eq!(status, StatusCode::OK);
    let entries = event_entries(&page);
    let newest = entries[0];
    assert!(
        newest.contains("Ada Admin revoked the workspace key “ERP connector”"),
        "{newest}"
    );
    assert!(newest.contains("Chrome 156 on Linux"), "{newest}");
    assert!(newest.contains("IP 127.0.0.1"), "{newest}");
    assert!(newest.contains("<time datetime=\""), "{newest}");
    assert!(newest.contains(" UTC</time>"), "the time says its zone");
    // The whole record, one click away, as a definition list.
    let details = &newest[newest.find("<details").unwrap()..];
    assert!(details.contains("<span class=\"event-more\">Details</span></summary>"));
    assert!(details.contains("<dt>User-Agent</dt><dd>Mozilla/5.0 (X11; Linux x86_64)"));
    assert!(details.contains(&format!("<dt>Key ID</dt><dd>{}</dd>", k.id)));
    assert!(details.contains(&format!("<dt>Actor</dt><dd>{ADMIN_EMAIL}</dd>")));
    // No raw JSON, no full User-Agent outside the disclosure.
    let content = &page[page.find("<h1>").unwrap()..];
    for json in ["{&#34;", "{\"", "&#34;:"] {
        if let Some(i) = content.find(json) {
            panic!(
                "JSON in the page: {}",
                &content[i.saturating_sub(200)..i + 100]
            );
        }
    }
    assert!(!newest[..newest.find("<details").unwrap()].contains("Mozilla/5.0"));
    let created = entries
        .iter()
        .find(|e| e.contains("created the workspace key “ERP connector”"))
        .expect("creation event");
    assert!(created.contains("<dt>Tags</dt>") || created.contains("<dt>Permissions</dt>"));
    assert!(
        entries
            .iter()
            .any(|e| e.contains("Ada Admin set up the workspace “Acme”")),
        "every event is a sentence"
    );

    // The key's History renders the same way.
    let (_, key_page) = admin.page(&format!("/keys/{}", k.id)).await;
    let history = &key_page[key_page.find("id=\"history-title\"").unwrap()..];
    let entries = event_entries(history);
    assert_eq!(entries.len(), 2, "created and revoked, oldest first");
    assert!(entries[0].contains("Ada Admin created the workspace key “ERP connector”"));
    assert!(entries[1].contains("Ada Admin revoked the workspace key “ERP connector”"));
    assert!(entries[1].contains("Chrome 156 on Linux"));
    assert!(!history.contains("{&#34;"), "no JSON in the history");
}

#[tokio::test]
async fn the_events_page_shows_25_events_a_page() {
    let (_app, admin) = spawn_ready().await;
    for i in 0..14 {
        let name = format!("k{i}");
        let k = admin
            .create_key("/workspace/keys", &[("name", name.as_str())])
            .await;
        admin
            .post_form(&format!("/keys/{}/disable", k.id), &[])
            .await;
    }
    let (_, page) = admin.page("/workspace/events").await;
    assert_eq!(event_entries(&page).len(), 25);
    assert!(
        page.contains("rel=\"next\""),
        "older events on the next page"
    );
}

/// Set a key's "last used" time directly (the API's buffered write would
/// make the test wait for a flush).
async fn set_last_used(app: &TestApp, id: &str, ago: chrono::TimeDelta) -> chrono::NaiveDateTime {
    let id = id.to_owned();
    let at = chrono::Utc::now().naive_utc() - ago;
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        diesel::update(api_keys::table.find(id))
            .set(api_keys::last_used_at.eq(Some(at)))
            .execute(c)
            .unwrap();
    })
    .await;
    at
}

#[tokio::test]
async fn times_are_relative_with_the_exact_utc_time_at_hand() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "Grafana"), ("expiry", "30")])
        .await;
    let at = set_last_used(&app, &k.id, chrono::TimeDelta::seconds(3 * 60 + 5)).await;
    let iso = at
        .and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let exact = at.format("%Y-%m-%d %H:%M UTC").to_string();

    let (_, list) = admin.page("/workspace/keys").await;
    let row = &list[list.find(&format!("id=\"row-{}\"", k.id)).unwrap()..];
    assert!(
        row.contains(&format!(
            "<time datetime=\"{iso}\" title=\"{exact}\">3 minutes ago</time>"
        )),
        "{row}"
    );
    assert!(row.contains(">in 29 days</time>") || row.contains(">in 30 days</time>"));

    let (_, page) = admin.page(&format!("/keys/{}", k.id)).await;
    assert!(page.contains(&format!(
        "title=\"{exact}\">3 minutes ago</time> <span class=\"muted\">({exact})</span>"
    )));
    // Every absolute time on the key page says its zone.
    let facts = &page[page.find("<dl class=\"facts\">").unwrap()..];
    let facts = &facts[..facts.find("</dl>").unwrap()];
    for dd in facts.split("<dd>").skip(1) {
        let text = &dd[..dd.find("</dd>").unwrap()];
        let has_date = text.contains("-11-") || text.contains("-12-") || text.contains(":");
        if has_date && text.chars().filter(|c| c.is_ascii_digit()).count() >= 8 {
            assert!(text.contains("UTC"), "a time without its zone: {text}");
        }
    }
}

#[tokio::test]
async fn the_create_dialog_says_how_many_keys_are_used_and_explains_the_limit() {
    let (_app, admin) = spawn_ready().await;
    let res = admin
        .post_form(
            "/workspace/settings/limits",
            &[
                ("max_expiry_days", ""),
                ("max_keys_per_user", "3"),
                ("default_rate_limit", ""),
            ],
        )
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    let first = admin.create_key("/account/keys", &[("name", "one")]).await;
    admin.create_key("/account/keys", &[("name", "two")]).await;
    let (status, form) = admin.page("/account/keys/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("2 of 3 personal keys used."), "{form}");
    assert!(form.contains("name=\"name\""), "the form is offered");

    admin
        .create_key("/account/keys", &[("name", "three")])
        .await;
    let (status, full) = admin.page("/account/keys/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(full.contains("3 of 3 personal keys used."));
    assert!(full.contains("You have reached this workspace's limit of 3 personal keys"));
    assert!(
        !full.contains("name=\"name\"") && !full.contains(">Create key</button>"),
        "no form that would fail"
    );

    // Revoking one frees a place: the form is back.
    admin
        .post_form(&format!("/keys/{}/revoke", first.id), &[])
        .await;
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(form.contains("2 of 3 personal keys used.") && form.contains(">Create key</button>"));
    // Workspace keys have no per-user limit, and say nothing about one.
    let (_, ws_form) = admin.page("/workspace/keys/new").await;
    assert!(!ws_form.contains("personal keys used"));
}

#[tokio::test]
async fn the_usage_chart_has_a_time_axis_totals_and_a_text_alternative() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "used")])
        .await;
    for _ in 0..3 {
        assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);
    }
    admin
        .post_form(&format!("/keys/{}/disable", k.id), &[])
        .await;
    assert_eq!(me_code(&app.base, &k.secret).await.1, "DISABLED");
    // Usage is counted in memory and written in the background.
    let mut page = String::new();
    for _ in 0..100 {
        page = admin.page(&format!("/keys/{}", k.id)).await.1;
        if page.contains("4 verifications: 3 accepted, 1 rejected.") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("4 verifications: 3 accepted, 1 rejected."),
        "totals"
    );
    assert!(page.contains("Busiest hour: "), "summary sentence");
    let today = chrono::Utc::now().date_naive();
    let axis = &page[page.find("class=\"chart-axis\"").unwrap()..];
    let axis = &axis[..axis.find("</ol>").unwrap()];
    assert_eq!(axis.matches("<li>").count(), 7, "one label per day");
    assert!(
        axis.ends_with(&format!("<li>{}</li>", today.format("%a %-d"))),
        "{axis}"
    );
    let table = &page[page.find("Verifications per day (UTC)").unwrap()..];
    assert!(table.contains(&format!(
        "<th scope=\"row\">{}</th><td>3</td><td>1</td>",
        today.format("%A %-d %B %Y")
    )));
}

#[tokio::test]
async fn the_users_page_counts_invited_users_apart_and_offers_no_remove_on_ones_own_row() {
    let (app, admin) = spawn_ready().await;
    let _bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    // Invited, not signed in yet.
    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "ivy@example.com"),
                ("name", "Ivy"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let (_, page) = admin.page("/workspace/users").await;
    assert!(
        page.contains("2 active users, 1 invited (not joined yet)."),
        "{page}"
    );
    let row = |email: &str| {
        let at = page.find(&format!("<td>{email}</td>")).unwrap();
        let start = page[..at].rfind("<tr").unwrap();
        let end = at + page[at..].find("</tr>").unwrap();
        page[start..end].to_owned()
    };
    let own = row(ADMIN_EMAIL);
    assert!(
        !own.contains("/remove\""),
        "no Remove on one's own row: {own}"
    );
    assert!(own.contains("You cannot remove yourself; another admin can."));
    assert!(row("bob@example.com").contains("/remove\""));
    assert!(row("ivy@example.com").contains("Invited"));

    // Posted anyway, the policy refuses it and says why.
    let ada = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::{people, users};
            keyward::db::users::with_person()
                .filter(people::email.eq(ADMIN_EMAIL))
                .select(users::id)
                .first::<String>(c)
                .unwrap()
        })
        .await;
    let (status, body) = admin.page(&format!("/workspace/users/{ada}/remove")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("You cannot remove yourself from the workspace"));
    let res = admin
        .post_form(&format!("/workspace/users/{ada}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(admin.signed_in().await);
}

#[tokio::test]
async fn error_pages_keep_the_navigation_and_a_way_back() {
    let (app, admin) = spawn_ready().await;
    let (status, page) = admin.page("/keys/key_doesnotexist").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("<nav aria-label=\"Main\">"), "{page}");
    assert!(page.contains("href=\"/workspace/keys\""));
    assert!(page.contains("<a href=\"/\">go to your start page</a>"));
    let (status, page) = admin.page("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("<nav aria-label=\"Main\">"));

    let normal = app
        .add_user(&admin, "nora@example.com", "normal", "nora's long password")
        .await;
    let (status, page) = normal.page("/workspace/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("<nav aria-label=\"Main\">"));
    assert!(
        page.contains("href=\"/account/keys\""),
        "their own navigation"
    );
    assert!(
        !page.contains("href=\"/workspace/users\""),
        "not an admin's"
    );

    // Signed out: no navigation, a link to the start page; the API and
    // htmx answers are unchanged.
    let anonymous = app.browser();
    let (status, page) = anonymous.page("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("<nav aria-label=\"Main\">"));
    assert!(page.contains("<a href=\"/\">Go to the start page</a>"));
    let res = admin
        .client
        .get(admin.url("/keys/key_doesnotexist"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(!res.text().await.unwrap().contains("<nav"));
}
