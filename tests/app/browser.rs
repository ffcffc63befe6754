//! Browser tests: headless Debian Chromium driven through chromedriver.
//! Opt-in (`cargo test -- --ignored`), since they need `chromium` and
//! `chromium-driver` installed; `.ci/run` installs them and runs these.

use crate::helpers::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod docs;
mod layout;

/// A headless Chromium session with its own chromedriver and profile.
pub struct Chrome {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub async fn start() -> Chrome {
        Chrome::start_with(serde_json::json!({})).await
    }

    /// A session with Chromium preferences set (e.g. JavaScript off).
    pub async fn start_with(prefs: serde_json::Value) -> Chrome {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver_bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            // Its own process group, so that Chromium goes with it even when
            // a failing test drops the session without closing it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver_bin} (install Debian's chromium-driver): {e}")
            });
        let profile = tempfile::tempdir().unwrap();
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": prefs,
            }
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last_error = None;
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    return Chrome {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last_error = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("chromedriver did not answer: {last_error:?}");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Wait until an element matching `css` exists, and return its text.
    pub async fn wait_text(&self, css: &str) -> String {
        let el = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        el.text().await.unwrap()
    }

    /// Wait until the browser has navigated to `path` (after a click that
    /// submits a form or follows a link), so what is read next is the new page.
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never reached {path}; still at {}", self.path().await);
    }

    /// Click, then wait until the browser shows a new document (a reload
    /// or navigation the click causes), so that what is read next is not
    /// the page being left.
    pub async fn click_and_wait_load(&self, css: &str) {
        self.client
            .execute("window.keywardOldPage = true;", vec![])
            .await
            .unwrap();
        self.click(css).await;
        for _ in 0..100 {
            let old = self
                .client
                .execute(
                    "return window.keywardOldPage === true && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .unwrap_or(serde_json::Value::Bool(true));
            if old == serde_json::Value::Bool(false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("clicking {css} loaded no new page");
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        url.path().to_owned()
    }

    /// Save a screenshot as `<name>.png` into `$KEYWARD_SCREENSHOTS`, or else
    /// `target/screenshots` (kept by CI as an artefact), so a person can look
    /// at what the test saw.
    pub async fn screenshot(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `$KEYWARD_SCREENSHOTS`, else `<target>/screenshots`.
pub fn screenshot_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("KEYWARD_SCREENSHOTS") {
        return dir.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.driver.try_wait() {
            return; // closed properly
        }
        // The whole group: chromedriver and the Chromium it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_completes_setup_signs_in_and_adds_a_user() {
    let app = spawn_app().await;
    let chrome = Chrome::start().await;
    let c = &chrome.client;

    c.goto(app.setup_url.as_deref().unwrap()).await.unwrap();
    assert_eq!(chrome.wait_text("h1").await, "Set up keyward");
    chrome.screenshot("setup").await;
    chrome.fill("#f-workspace", "Acme Plant").await;
    chrome.fill("#f-name", "Ada Admin").await;
    chrome.fill("#f-email", ADMIN_EMAIL).await;
    chrome.fill("#f-password", ADMIN_PASSWORD).await;
    chrome.fill("#f-password_confirm", ADMIN_PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome.wait_for_path("/workspace/keys").await;
    let flash = chrome.wait_text("#flash .alert-success").await;
    assert!(flash.contains("keyward is set up"), "{flash}");
    assert_eq!(chrome.path().await, "/workspace/keys");

    // Sign out and back in through the forms.
    chrome.click(".whoami button[type=submit]").await;
    chrome.wait_for_path("/login").await;
    assert_eq!(chrome.wait_text("h1").await, "Sign in to keyward");
    assert!(chrome.wait_text(".alert-info").await.contains("signed out"));
    chrome.fill("#f-email", ADMIN_EMAIL).await;
    chrome.fill("#f-password", "not the password").await;
    chrome.click("button[type=submit]").await;
    assert!(
        chrome
            .wait_text(".alert-error")
            .await
            .contains("The email or password is incorrect.")
    );
    chrome.fill("#f-password", ADMIN_PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome.wait_for_path("/workspace/keys").await;
    chrome.wait_text("nav[aria-label=Main]").await;
    assert_eq!(chrome.path().await, "/workspace/keys");

    // Adding a user goes through htmx (CSRF in a header) and swaps the panel in place.
    c.goto(&format!("{}/workspace/users", app.base))
        .await
        .unwrap();
    chrome.fill("#f-email", "bob@example.com").await;
    chrome.fill("#f-name", "Bob").await;
    chrome
        .click("#users-panel form.stack button[type=submit]")
        .await;
    let link = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#invite-link"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(link.starts_with(&format!("{}/invite/", app.base)), "{link}");
    // Its Copy button, hidden in the markup for browsers without JavaScript,
    // is shown in the panel htmx swapped in.
    assert!(
        c.find(Locator::Css("#users-panel button[data-copy]"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "the Copy link button is shown with JavaScript"
    );
    assert_eq!(chrome.path().await, "/workspace/users");
    chrome.screenshot("users-after-add").await;

    chrome.close().await;
}

/// Sign in through the login form.
async fn sign_in(chrome: &Chrome, base: &str, email: &str, password: &str) {
    chrome.client.goto(&format!("{base}/login")).await.unwrap();
    chrome.fill("#f-email", email).await;
    chrome.fill("#f-password", password).await;
    chrome.click("button[type=submit]").await;
    chrome.wait_text("nav[aria-label=Main]").await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_creates_uses_and_revokes_a_key() {
    let (app, _admin) = spawn_ready().await;
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    c.goto(&format!("{}/account/keys", app.base)).await.unwrap();
    assert!(
        chrome
            .wait_text(".empty-state")
            .await
            .contains("no personal API keys yet")
    );
    chrome.click(".page-head a.button-primary").await;
    chrome.wait_text("dialog[open] #f-name").await;
    chrome.fill("dialog #f-name", "Grafana in Chromium").await;
    chrome.click("dialog input[value='data:read']").await;
    chrome.click("dialog button[type=submit]").await;
    let secret = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("dialog[open] #new-key"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(secret.starts_with("sk_live_"), "{secret}");
    let id = chrome.wait_text("dialog[open] p code").await;
    assert!(id.starts_with("key_"));
    chrome.screenshot("save-your-key").await;
    assert_eq!(
        chrome.path().await,
        "/account/keys",
        "created in a dialog, no navigation"
    );

    let (status, _, json) = me(&app.base, &secret).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(json["name"], "Grafana in Chromium");

    // Closing the dialog reloads the list; the secret is gone from the page.
    chrome
        .click_and_wait_load("dialog[open] a[data-close-dialog]")
        .await;
    chrome.wait_text(&format!("#row-{id} .key-name")).await;
    let source = c.source().await.unwrap();
    assert!(
        !source.contains(&secret[8..]),
        "the secret is not in the page any more"
    );
    chrome.screenshot("key-list").await;

    // Revoke through the row menu and its confirmation dialog.
    chrome.click(&format!("#row-{id} summary")).await;
    chrome
        .click(&format!("#row-{id} a[href^='/keys/{id}/revoke']"))
        .await;
    assert!(chrome.wait_text("dialog[open] h2").await.contains("Revoke"));
    chrome
        .click_and_wait_load("dialog[open] .button-danger")
        .await;
    assert!(
        chrome
            .wait_text("#flash .alert-success")
            .await
            .contains("was revoked")
    );
    assert!(
        chrome
            .wait_text(&format!("#row-{id} .status"))
            .await
            .contains("Revoked")
    );

    let (status, _, json) = me(&app.base, &secret).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"]["code"], "REVOKED");
    chrome.close().await;
}

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_switches_api_keys_off_and_on() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[("name", "power bi"), ("permissions", "data:read")],
        )
        .await;
    for _ in 0..3 {
        me(&app.base, &key.secret).await;
    }
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(me(&app.base, &key.secret).await.0, reqwest::StatusCode::OK);

    c.goto(&format!("{}/workspace/settings", app.base))
        .await
        .unwrap();
    chrome.screenshot("settings").await;
    chrome
        .click("a[href='/workspace/settings/api-keys/off']")
        .await;
    chrome
        .wait_for_path("/workspace/settings/api-keys/off")
        .await;
    assert_eq!(chrome.wait_text("h1").await, "Switch all API keys off?");
    chrome.click("button.button-danger").await;
    chrome.wait_for_path("/workspace/settings").await;
    assert!(
        chrome
            .wait_text("#flash .alert-success")
            .await
            .contains("switched off")
    );
    let (status, _, json) = me(&app.base, &key.secret).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"]["code"], "API_KEYS_DISABLED");

    c.goto(&format!("{}/workspace/keys", app.base))
        .await
        .unwrap();
    assert!(
        chrome
            .wait_text(".alert-error")
            .await
            .contains("API keys are switched off")
    );

    c.goto(&format!("{}/workspace/settings", app.base))
        .await
        .unwrap();
    chrome
        .click("form[action='/workspace/settings/api-keys'] button")
        .await;
    assert!(
        chrome
            .wait_text("#flash .alert-success")
            .await
            .contains("on again")
    );
    assert_eq!(me(&app.base, &key.secret).await.0, reqwest::StatusCode::OK);

    // The key's page shows its usage.
    c.goto(&format!("{}/keys/{}", app.base, key.id))
        .await
        .unwrap();
    chrome.wait_text("svg.chart").await;
    chrome.screenshot("key-detail").await;
    chrome.close().await;
}

/// Pasting a whole key into the search box finds it as you type, and the
/// address bar then holds the key's id, never the secret (the search is
/// posted by htmx and the server names the address to show).
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_search_with_a_pasted_key_keeps_it_out_of_the_address() {
    let (app, admin) = spawn_ready().await;
    let wanted = admin
        .create_key("/workspace/keys", &[("name", "ERP connector")])
        .await;
    admin
        .create_key("/workspace/keys", &[("name", "Grafana dashboards")])
        .await;
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.goto(&format!("{}/workspace/keys", app.base))
        .await
        .unwrap();
    chrome
        .wait_text(&format!("#row-{} .key-name", wanted.id))
        .await;
    chrome.fill("#key-search", &wanted.secret).await;
    // The list narrows to the one key once the debounced search returns.
    let mut narrowed = false;
    for _ in 0..100 {
        let source = c.source().await.unwrap();
        if !source.contains("Grafana dashboards") && source.contains("ERP connector") {
            narrowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(narrowed, "search by pasted key narrowed the list");
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str().contains(&wanted.id),
        "the address names the key: {url}"
    );
    assert!(
        !url.as_str().contains(&wanted.secret[8..]),
        "the secret is not in the address: {url}"
    );
    // Nor in any address the page requested on the way (a GET search would
    // have put it in the XHR's URL, and so in proxy logs).
    let fetched = c
        .execute(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; });",
            vec![],
        )
        .await
        .unwrap();
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(
        fetched.iter().any(|u| u.contains("/workspace/keys/search")),
        "the search was sent: {fetched:?}"
    );
    assert!(
        fetched.iter().all(|u| !u.contains(&wanted.secret[8..])),
        "a requested address held the secret: {fetched:?}"
    );
    chrome.close().await;
}

/// A revoked key's row menu offers what still applies (its page, Delete),
/// and deleting it from there works in the dialog.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_deletes_a_revoked_key_from_its_row_menu() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "ERP connector")])
        .await;
    admin
        .post_form(&format!("/keys/{}/revoke", k.id), &[])
        .await;
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.goto(&format!("{}/workspace/keys", app.base))
        .await
        .unwrap();
    let id = &k.id;
    assert!(
        chrome
            .wait_text(&format!("#row-{id} .status"))
            .await
            .contains("Revoked")
    );
    chrome.click(&format!("#row-{id} summary")).await;
    let menu = chrome.wait_text(&format!("#row-{id} .menu-items")).await;
    assert!(
        menu.contains("View details") && menu.contains("Delete"),
        "the open menu offers what applies: {menu:?}"
    );
    chrome
        .click(&format!("#row-{id} a[href^='/keys/{id}/delete']"))
        .await;
    assert!(chrome.wait_text("dialog[open] h2").await.contains("Delete"));
    chrome.click("dialog[open] .button-danger").await;
    // The delete answers with a full navigation to the list: read the
    // message once the new page is there (a lookup during the navigation
    // is aborted by it, so try again).
    let mut flash = String::new();
    for _ in 0..100 {
        if let Ok(el) = c.find(Locator::Css("#flash .alert-success")).await
            && let Ok(text) = el.text().await
        {
            flash = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flash.contains("was deleted"), "{flash:?}");
    assert!(
        c.find(Locator::Css(&format!("#row-{id}"))).await.is_err(),
        "the deleted key left the list"
    );
    assert_eq!(me_code(&app.base, &k.secret).await.1, "REVOKED");
    chrome.close().await;
}

/// A page of 25 events is read at a glance: about two screens at
/// 1280×900, each event one sentence with its details folded away.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_a_page_of_25_events_fits_about_two_screens() {
    let (app, admin) = spawn_ready().await;
    for i in 0..13 {
        let name = format!("Integration with a long descriptive name number {i}");
        let k = admin
            .create_key("/workspace/keys", &[("name", name.as_str())])
            .await;
        admin
            .post_form(&format!("/keys/{}/revoke", k.id), &[])
            .await;
    }
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.goto(&format!("{}/workspace/events", app.base))
        .await
        .unwrap();
    chrome.wait_text(".event-list").await;
    let shown = c
        .execute(
            "return document.querySelectorAll('li.event').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, serde_json::json!(25));
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let screen = c
        .execute("return window.innerHeight", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    chrome.screenshot("events").await;
    assert!(
        height <= 2.2 * screen,
        "25 events take {height} px, more than about two screens of {screen} px"
    );
    // The details are one click away.
    let first = c
        .find(Locator::Css("li.event details summary"))
        .await
        .unwrap();
    first.click().await.unwrap();
    let dl = chrome.wait_text("li.event details[open] dl").await;
    assert!(dl.contains("User-Agent"), "{dl}");
    chrome.close().await;
}
