//! Key search and pagination on a workspace with thousands of keys: the
//! same keys are found on both backends whichever plan answers (SQLite's
//! trigram index or its newest-first walk, PostgreSQL's pg_trgm index), and
//! cursor pages neither skip nor repeat a key while keys are being added.

use crate::helpers::*;
use keyward::db::keys::{self, NewKey, Scope};
use keyward::domain::keys::{Environment, generate};
use reqwest::StatusCode;

/// Names that make the search's edge cases: LIKE's wildcard and escape
/// characters, quotes (FTS5's string delimiter), non-ASCII case.
const SPECIAL: [&str; 8] = [
    "100% uptime_probe",
    "Zoë's Größe-Schlüssel",
    "КЛЮЧ склада",
    "under_score and 50%",
    "a \"quoted\" name",
    "back\\slash path",
    "MES line 7 — Lübeck",
    "grafana-prod",
];

/// `n` workspace keys named "Line {i % 7} press {i}" plus [`SPECIAL`],
/// created through the same code as the web form. Returns (id, name).
async fn many_keys(app: &TestApp, n: usize) -> Vec<(String, String)> {
    app.with_db(move |c| {
        let admin = keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
            .unwrap()
            .unwrap();
        let ctx = keyward::db::events::AuditContext {
            workspace_id: admin.workspace_id.clone(),
            actor_id: Some(admin.id.clone()),
            actor_label: admin.email.clone(),
            ip: None,
            user_agent: None,
        };
        let names: Vec<String> = (0..n)
            .map(|i| format!("Line {} press {i}", i % 7))
            .chain(SPECIAL.iter().map(|s| (*s).to_owned()))
            .collect();
        let mut made = Vec::new();
        diesel::Connection::transaction(c, |c| {
            for (i, name) in names.iter().enumerate() {
                let (_, facts) = generate(Environment::Live);
                let nonce = format!("search-test-{i}-{}", keyward::domain::ids::new_token());
                let key = keys::create(c, &ctx, NewKey::plain_workspace_key(name, &facts, &nonce))
                    .unwrap();
                made.push((key.id, name.clone()));
            }
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
        made
    })
    .await
}

/// Every key of the workspace matching `q`, through the list query itself.
async fn found(app: &TestApp, q: &str) -> Vec<String> {
    let q = q.to_owned();
    app.with_db(move |c| {
        let admin = keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
            .unwrap()
            .unwrap();
        let (rows, next) = keys::list(
            c,
            &admin.workspace_id,
            &Scope::All,
            &q,
            &keys::Filter::default(),
            None,
            100_000,
        )
        .unwrap();
        assert!(next.is_none());
        rows.into_iter().map(|r| r.key.id).collect()
    })
    .await
}

#[tokio::test]
async fn search_finds_exactly_the_keys_containing_the_text_whichever_plan_answers() {
    let (app, admin) = spawn_ready().await;
    let keys = many_keys(&app, 2600).await;
    let mine = admin
        .create_key("/account/keys", &[("name", "Ada's notebook")])
        .await;
    // What a user expects: the keys whose name, id or owner contains the
    // text, ignoring case, newest first.
    let expect = |q: &str| -> Vec<String> {
        let q = q.to_lowercase();
        let mut ids: Vec<String> = keys
            .iter()
            .filter(|(id, name)| {
                name.to_lowercase().contains(&q)
                    || id.to_lowercase().contains(&q)
                    || "workspace".contains(&q)
            })
            .map(|(id, _)| id.clone())
            .rev()
            .collect();
        if "ada's notebook".contains(&q)
            || mine.id.to_lowercase().contains(&q)
            || ADMIN_EMAIL.contains(&q)
        {
            ids.insert(0, mine.id.clone());
        }
        ids
    };
    for q in [
        "press",          // in 2,600 keys: the newest-first walk
        "press 12",       // a few dozen: the trigram index
        "Line 3 press 2", // more than one word
        "ss 259",
        "25",     // two characters: no trigram at all
        "100%",   // LIKE's wildcard, literally
        "_probe", // LIKE's other wildcard
        "50%",
        "größe", // non-ASCII, any case
        "ключ",
        "\"quoted\"",  // FTS5's string delimiter
        "back\\slash", // LIKE's escape character
        "— lübeck",
        "ada@example", // the owner
        "notebook",
        "no such text anywhere",
        "zz",
    ] {
        let got = found(&app, q).await;
        let want = expect(q);
        assert_eq!(got.len(), want.len(), "how many for {q:?}");
        assert_eq!(got, want, "which and in what order for {q:?}");
    }
    // A whole key id finds that key.
    let (id, _) = &keys[1234];
    assert_eq!(found(&app, id).await, vec![id.to_owned()]);

    // Unfiltered lists say how many keys they hold.
    let (_, all) = admin.page("/workspace/keys?view=all").await;
    assert!(all.contains("2,609 keys in all"), "2,600 + 8 + Ada's");
    let (_, ws) = admin.page("/workspace/keys").await;
    assert!(ws.contains("2,608 keys in all"));
    let (_, own) = admin.page("/account/keys").await;
    assert!(own.contains("1 key in all"));

    // The page itself, with a rare text.
    let (status, page) = admin.page("/workspace/keys?view=all&q=press%20259").await;
    assert_eq!(status, StatusCode::OK);
    let id_of = |name: &str| keys.iter().find(|(_, n)| n == name).unwrap().0.clone();
    for name in ["Line 0 press 259", "Line 0 press 2590", "Line 1 press 2591"] {
        assert!(page.contains(&format!("/keys/{}\"", id_of(name))), "{name}");
    }
    assert!(!page.contains(&format!("/keys/{}\"", id_of("Line 6 press 258"))));
}

/// Walk every page of "All keys" over HTTP, adding keys between pages: each
/// key that existed at the start is shown exactly once, in order.
#[tokio::test]
async fn cursor_pages_neither_skip_nor_repeat_while_keys_are_added() {
    let (app, admin) = spawn_ready().await;
    let before = many_keys(&app, 300).await;
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/workspace/keys?view=all".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = admin.page(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        pages += 1;
        let mut rest = page.as_str();
        while let Some(at) = rest.find("href=\"/keys/key_") {
            let id_start = at + "href=\"/keys/".len();
            let id_len = rest[id_start..].find('"').unwrap();
            let id = &rest[id_start..id_start + id_len];
            if !id.contains('/') && seen.last().map(String::as_str) != Some(id) {
                seen.push(id.to_owned());
            }
            rest = &rest[id_start + id_len..];
        }
        // New keys arrive while the admin reads.
        many_keys(&app, 3).await;
        let Some(at) = page.find("?after=") else {
            break;
        };
        let end = page[at..].find('"').unwrap();
        path = format!("/workspace/keys{}", &page[at..at + end]).replace("&amp;", "&");
    }
    assert!(pages >= 12, "{pages} pages of 25");
    let mut want: Vec<String> = before.iter().map(|(id, _)| id.clone()).collect();
    want.reverse();
    let dupes = seen.len() - seen.iter().collect::<std::collections::HashSet<_>>().len();
    assert_eq!(dupes, 0, "no key shown twice");
    // Keys added during the walk are newer than the first page and so
    // appear on none; every key that existed is there, newest first.
    assert_eq!(seen, want);
}
