//! Browser tests of layout, focus, the no-JavaScript fallbacks and an
//! accessibility audit (axe-core, vendored from its npm package in
//! tests/vendor), on pages filled with realistic data: long names, many
//! tags, keys of two owners, a regenerated key in its grace period, a
//! revoked key and many events. Run at a laptop width (1280 px) and a phone
//! width (390 px, touch), in the light and the dark theme.

use super::{Chrome, sign_in};
use crate::helpers::*;
use fantoccini::Locator;
use fantoccini::actions::{InputSource, MouseActions, PointerAction, TouchActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const AXE: &str = include_str!("../../vendor/axe-core-4.11.0/axe.min.js");
/// The WCAG 2.0–2.2 A and AA rules of axe-core.
const AXE_TAGS: [&str; 6] = [
    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa",
];

const LAPTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// A Chrome DevTools Protocol command sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}

/// What one axe run found.
struct Audit {
    /// Rules that applied to something on the page (passed, failed or need review).
    applied: BTreeSet<String>,
    /// Every rule that ran.
    ran: BTreeSet<String>,
    /// Serious and critical violations, described for a person.
    serious: Vec<String>,
}

impl Chrome {
    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Size the viewport; a phone also gets touch input and a mobile viewport.
    async fn viewport(&self, (width, height): (u32, u32)) {
        let mobile = width < 600;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            json!({ "enabled": mobile, "maxTouchPoints": if mobile { 5 } else { 1 } }),
        )
        .await;
    }

    /// Emulate the system's colour scheme (`prefers-color-scheme`).
    async fn theme(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        )
        .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn js_bool(&self, script: &str) -> bool {
        self.js(script).await.as_bool().unwrap_or(false)
    }

    /// Wait until `script` returns true.
    async fn wait_js(&self, script: &str, what: &str) {
        for _ in 0..100 {
            if self.js_bool(script).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never became true: {what}");
    }

    /// Run axe-core on the page as it is now.
    async fn audit(&self) -> Audit {
        self.js(&format!("{AXE}\n;window.axe = axe; return true;"))
            .await;
        let script = format!(
            "var done = arguments[arguments.length - 1];
             axe.run(document, {{ runOnly: {{ type: 'tag', values: {tags} }}, resultTypes: ['violations'] }})
               .then(function (r) {{
                 var ids = function (list) {{ return list.map(function (x) {{ return x.id; }}); }};
                 done({{
                   applied: ids(r.passes).concat(ids(r.violations), ids(r.incomplete)),
                   inapplicable: ids(r.inapplicable),
                   serious: r.violations.filter(function (v) {{ return v.impact === 'serious' || v.impact === 'critical'; }})
                     .map(function (v) {{ return v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
                       v.nodes.slice(0, 3).map(function (n) {{ return n.target.join(' ') + ' ' + (n.failureSummary || ''); }}).join(' | '); }})
                 }});
               }}, function (e) {{ done({{ error: String(e) }}); }});",
            tags = json!(AXE_TAGS)
        );
        let r = self
            .client
            .execute_async(&script, vec![])
            .await
            .expect("axe runs");
        assert!(r.get("error").is_none(), "axe failed: {r}");
        let strings = |k: &str| -> Vec<String> { serde_json::from_value(r[k].clone()).unwrap() };
        let applied: BTreeSet<String> = strings("applied").into_iter().collect();
        let mut ran = applied.clone();
        ran.extend(strings("inapplicable"));
        Audit {
            applied,
            ran,
            serious: strings("serious"),
        }
    }

    /// How the page overflows its window sideways, if it does: the page's
    /// width and the elements that stick out. Also checks that every box
    /// that scrolls sideways is a labelled, focusable region.
    async fn overflow(&self) -> Option<String> {
        let r = self
            .js(
                "var root = document.documentElement, w = root.clientWidth;
                 var out = [];
                 if (root.scrollWidth > w) {
                   out.push('page is ' + root.scrollWidth + ' px wide in a ' + w + ' px window');
                   document.querySelectorAll('body *').forEach(function (el) {
                     var r = el.getBoundingClientRect();
                     if (r.right > w + 1 && out.length < 6) out.push(el.tagName + '.' + el.className + ' ends at ' + Math.round(r.right));
                   });
                 }
                 document.querySelectorAll('body *').forEach(function (el) {
                   var s = getComputedStyle(el);
                   if ((s.overflowX === 'auto' || s.overflowX === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
                     var named = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
                     if (el.tagName !== 'DIALOG' && (el.getAttribute('role') !== 'region' || !named || el.getAttribute('tabindex') !== '0'))
                       out.push('a box scrolls sideways but is not a labelled, focusable region: ' + el.tagName + '.' + el.className);
                   }
                 });
                 return out.join('; ');",
            )
            .await;
        let r = r.as_str().unwrap_or_default().to_owned();
        (!r.is_empty()).then_some(r)
    }

    /// Elements matching `css` that are not wholly inside the window's width
    /// and the visible part of every box they scroll in (so a user would
    /// have to scroll sideways to reach them).
    async fn out_of_reach(&self, css: &str) -> Vec<String> {
        let r = self
            .client
            .execute(
                "var w = document.documentElement.clientWidth, out = [];
                 document.querySelectorAll(arguments[0]).forEach(function (el) {
                   var r = el.getBoundingClientRect(), left = 0, right = w;
                   for (var a = el.parentElement; a; a = a.parentElement) {
                     var s = getComputedStyle(a);
                     if (s.overflowX !== 'visible') { var b = a.getBoundingClientRect(); left = Math.max(left, b.left); right = Math.min(right, b.right); }
                   }
                   if (r.width === 0 || r.left < left - 1 || r.right > right + 1)
                     out.push((el.textContent || el.tagName).trim().slice(0, 40) + ' [' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + Math.round(left) + '..' + Math.round(right) + ']');
                 });
                 return out;",
                vec![json!(css)],
            )
            .await
            .unwrap();
        serde_json::from_value(r).unwrap()
    }

    /// Tap an element with a finger (touch pointer), after scrolling it
    /// into view as a user would.
    async fn tap(&self, css: &str) {
        let el = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to tap at {css}: {e}"));
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'});",
                vec![serde_json::to_value(&el).unwrap()],
            )
            .await
            .unwrap();
        let finger = TouchActions::new("finger".into())
            .then(PointerAction::MoveToElement {
                element: el,
                duration: None,
                x: 0.0,
                y: 0.0,
            })
            .then(PointerAction::Down { button: 0 })
            .then(PointerAction::Up { button: 0 });
        self.client.perform_actions(finger).await.unwrap();
        self.client.release_actions().await.unwrap();
    }

    /// Tap, then wait for the new document the tap loads.
    async fn tap_and_wait_load(&self, css: &str) {
        self.js("window.keywardOldPage = true;").await;
        self.tap(css).await;
        self.wait_js(
            "return window.keywardOldPage !== true && document.readyState === 'complete';",
            "a new page loaded",
        )
        .await;
    }

    async fn press(&self, key: Key) {
        let el = self.client.active_element().await.unwrap();
        el.send_keys(&char::from(key).to_string()).await.unwrap();
    }

    /// A short description of the focused element.
    async fn focused(&self) -> String {
        self.js(
            "var a = document.activeElement;
             return a ? a.tagName + '|' + (a.closest('tr') ? a.closest('tr').id : '') + '|' + a.textContent.trim() : '';",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn dialog_open(&self) -> bool {
        self.js_bool("var d = document.getElementById('dialog'); return !!(d && d.open);")
            .await
    }

    /// The open dialog fits the window: nothing cut off at the sides, and
    /// no taller than the window (it scrolls inside itself instead).
    async fn assert_dialog_fits(&self, what: &str) {
        let r = self
            .js(
                "var d = document.querySelector('dialog[open]'), r = d.getBoundingClientRect();
                 return { left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                          w: document.documentElement.clientWidth, h: window.innerHeight };",
            )
            .await;
        let f = |k: &str| r[k].as_f64().unwrap();
        assert!(
            f("left") >= 0.0 && f("right") <= f("w") && f("top") >= 0.0 && f("bottom") <= f("h"),
            "{what}: the dialog does not fit the window: {r}"
        );
    }
}

/// Open a page and wait until it has rendered.
async fn open(chrome: &Chrome, base: &str, path: &str) {
    chrome.client.goto(&format!("{base}{path}")).await.unwrap();
    chrome.wait_text("main").await;
}

/// What [`seed`] made.
struct Seeded {
    erp: String,
    grafana: String,
    revoked: String,
    /// A service account with a long name and a key; a webhook endpoint.
    account: String,
    account_key: String,
    webhook: String,
    bob_email: String,
    bob_password: String,
    bob_user: String,
}

/// Fill a workspace as it looks after some weeks of use.
async fn seed(app: &TestApp, admin: &Browser) -> Seeded {
    let erp = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "ERP connector — Lübeck plant, line 3 nightly production batch export to SAP"),
                ("description", "Pushes finished-goods counts and scrap rates to the ERP every night at 02:00; owned by the finance IT team, ask Maria before changing it."),
                ("tags", "erp, line-3, nightly, finance-reporting"),
                ("permissions", "data:read"),
                ("permissions", "data:write"),
                ("permissions", "devices:read"),
                ("permissions", "reports:export"),
                ("rate_limit", "600"),
            ],
        )
        .await;
    let grafana = admin
        .create_key(
            "/workspace/keys",
            &[
                (
                    "name",
                    "Grafana production dashboards (operations and maintenance teams)",
                ),
                ("tags", "grafana, operations, maintenance, dashboards"),
                ("permissions", "data:read"),
                ("permissions", "devices:read"),
                // The quota's facts and top-up form, the allowlist's list.
                ("quota_limit", "100000"),
                ("quota_period", "total"),
                ("quota_refill", "5000"),
                ("quota_refill_period", "week"),
                ("allowed_ips", "203.0.113.7\n198.51.100.0/24\n2001:db8::/32"),
            ],
        )
        .await;
    let revoked = admin
        .create_key(
            "/workspace/keys",
            &[
                (
                    "name",
                    "Power BI monthly finance report for the supervisory board",
                ),
                ("environment", "test"),
                ("tags", "powerbi, finance, monthly, board"),
                ("permissions", "reports:export"),
            ],
        )
        .await;
    let mes = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "MES line 3 — machine telemetry bridge (staging)"),
                ("environment", "dev"),
                ("expiry", "7"),
                ("tags", "mes, telemetry, line-3, staging"),
                ("permissions", "devices:read"),
                ("permissions", "devices:write"),
            ],
        )
        .await;
    admin
        .create_key(
            "/account/keys",
            &[
                (
                    "name",
                    "Ada's laptop scripts for the quarterly audit export",
                ),
                ("tags", "audit, laptop, quarterly, scripts"),
                ("permissions", "data:read"),
            ],
        )
        .await;
    admin
        .create_key(
            "/account/keys",
            &[
                ("name", "Ada's shell"),
                ("environment", "dev"),
                ("expiry", "never"),
            ],
        )
        .await;

    // Use some keys, and try a wrong one.
    for _ in 0..4 {
        assert_eq!(me(&app.base, &erp.secret).await.0, StatusCode::OK);
    }
    me(&app.base, "sk_live_not-a-real-key").await;

    // Regenerate with a grace period, revoke another, and make history.
    let (_, form) = admin
        .page(&format!("/keys/{}/regenerate", grafana.id))
        .await;
    let nonce = hidden(&form, "nonce").expect("regenerate nonce");
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", grafana.id),
            &[
                ("nonce", &nonce),
                ("grace", "24h"),
                ("return_to", "/workspace/keys"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "regenerated");
    let res = admin
        .post_form(
            &format!("/keys/{}/revoke", revoked.id),
            &[("return_to", "/workspace/keys")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "revoked");
    for _ in 0..6 {
        for what in ["disable", "enable"] {
            let res = admin
                .post_form(
                    &format!("/keys/{}/{what}", mes.id),
                    &[("return_to", "/workspace/keys")],
                )
                .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what}");
        }
    }

    // A second owner with personal keys, an operator and a pending invitation.
    let bob_email = "bob.bergstrom-lindqvist@production-engineering.example.com".to_owned();
    let bob_password = "bob's long password".to_owned();
    let bob = app
        .add_user(admin, &bob_email, "normal", &bob_password)
        .await;
    bob.create_key(
        "/account/keys",
        &[
            (
                "name",
                "Bob's Jupyter notebook for the vibration analysis of press 7",
            ),
            ("tags", "jupyter, vibration, press-7, analysis"),
            ("permissions", "data:read"),
        ],
    )
    .await;
    bob.create_key(
        "/account/keys",
        &[("name", "Bob's test harness"), ("environment", "test")],
    )
    .await;
    app.add_user(
        admin,
        "olga.operator@example.com",
        "operator",
        "olga's long password",
    )
    .await;
    let res = admin
        .post_form(
            "/workspace/users",
            &[
                (
                    "email",
                    "pending.person.with.a.long.address@subsidiary.example.org",
                ),
                ("name", "Pending Person"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "invited");
    // A service account that owns a key, and a webhook endpoint.
    let res = admin
        .post_form(
            "/workspace/service-accounts",
            &[
                (
                    "name",
                    "Nightly ERP reconciliation pipeline (GitLab CI, finance-platform group)",
                ),
                (
                    "description",
                    "Rotates the ERP connector's key every quarter; owned by the finance platform team.",
                ),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "service account created"
    );
    let account = location(&res)
        .strip_prefix("/workspace/service-accounts/")
        .expect("its page")
        .to_owned();
    let (_, page) = admin
        .page(&format!("/workspace/service-accounts/{account}"))
        .await;
    let nonce = hidden(&page, "nonce").expect("nonce");
    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/keys"),
            &[
                ("nonce", nonce.as_str()),
                (
                    "name",
                    "GitLab CI — quarterly rotation of the ERP connector key",
                ),
                ("environment", "live"),
                ("expiry", "90"),
                ("permissions", "data:read"),
            ],
        )
        .await;
    let body = res.text().await.unwrap();
    let start = body.find("<code>key_").expect("key id shown") + 6;
    let account_key = body[start..start + body[start..].find('<').unwrap()].to_owned();
    let res = admin
        .post_form(
            "/workspace/webhooks",
            &[
                ("url", "http://127.0.0.1:9/siem/keyward-events/production"),
                (
                    "description",
                    "SIEM (Splunk HEC bridge) — every key and user event",
                ),
                ("event_types", "key.*"),
                ("event_types", "user.*"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "webhook added");
    let (_, hooks) = admin.page("/workspace/webhooks").await;
    let start = hooks
        .find("/workspace/webhooks/whk_")
        .expect("the endpoint is listed")
        + "/workspace/webhooks/".len();
    let webhook = hooks[start..start + hooks[start..].find('"').unwrap()].to_owned();

    let (_, users) = admin.page("/workspace/users").await;
    let at = users
        .find("/remove\"")
        .expect("a remove link on the users page");
    let start = users[..at].rfind("/workspace/users/").unwrap() + "/workspace/users/".len();
    let bob_user = users[start..at].to_owned();
    Seeded {
        erp: erp.id,
        grafana: grafana.id,
        revoked: revoked.id,
        account,
        account_key,
        webhook,
        bob_email,
        bob_password,
        bob_user,
    }
}

/// Totals over a run of audits, printed so that a run that audited nothing shows it.
#[derive(Default)]
struct Totals {
    pages: usize,
    applied: BTreeSet<String>,
    ran: BTreeSet<String>,
    failures: Vec<String>,
}

impl Totals {
    async fn check(&mut self, chrome: &Chrome, label: &str) {
        if let Some(o) = chrome.overflow().await {
            self.failures.push(format!("{label}: {o}"));
        }
        let audit = chrome.audit().await;
        self.pages += 1;
        self.applied.extend(audit.applied);
        self.ran.extend(audit.ran);
        for v in audit.serious {
            self.failures.push(format!("{label}: axe {v}"));
        }
    }
}

/// Every page, at both widths and in both themes: it fits its window (no
/// sideways scrolling of the page; wide tables scroll in labelled boxes or
/// become cards), a key's name, status, masked key and menu are reachable
/// without scrolling sideways, and axe-core finds no serious or critical
/// WCAG 2.2 A/AA violation.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_every_page_fits_both_widths_and_passes_axe_in_both_themes() {
    let (app, admin) = spawn_ready_with(|c| {
        c.recovery_keys = Some(
            keyward::domain::recovery::OperatorKeys::parse(
                "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .expect("operator keys"),
        )
    })
    .await;
    let s = seed(&app, &admin).await;
    // Recoverable keys on (this server has an operator key), and one key.
    let res = admin
        .post_form("/workspace/settings/recoverable-keys", &[("enabled", "on")])
        .await;
    assert!(res.status().is_redirection(), "recoverable keys on");
    let recoverable = admin
        .create_key(
            "/workspace/keys",
            &[
                (
                    "name",
                    "Staging sandbox key for the partner onboarding team",
                ),
                ("environment", "test"),
                ("recoverable", "on"),
            ],
        )
        .await
        .id;
    // A plan with a long name, and a key on it overriding one setting.
    let res = admin
        .post_form(
            "/workspace/settings/plans",
            &[
                ("name", "Partner integrations — standard tier (EU plants, 24/7)"),
                ("description", "For ERP and MES partners: 600 requests a minute, 250,000 checks a month, the plant networks only; ask the platform team before changing it."),
                ("rate_limit", "600"),
                ("quota_limit", "250000"),
                ("quota_period", "month"),
                ("allowed_ips", "10.20.0.0/16\n10.30.0.0/16\n2001:db8:1234::/48"),
                ("permission_limit", "only"),
                ("permissions", "data:read"),
                ("permissions", "devices:read"),
            ],
        )
        .await;
    assert!(res.status().is_redirection(), "plan added");
    let (_, plans) = admin.page("/workspace/settings/plans").await;
    let start = plans
        .find("/workspace/settings/plans/plan_")
        .expect("the plan is listed")
        + "/workspace/settings/plans/".len();
    let plan = plans[start..start + plans[start..].find('"').unwrap()].to_owned();
    let on_plan = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "MES line 7 — partner gateway on the standard tier"),
                ("plan", &plan),
                ("rate_limit", "120"),
                ("permissions", "data:read"),
            ],
        )
        .await
        .id;
    // Ada works in a second workspace with a long name and is invited to a
    // third: every page's header has the switcher and the invitation.
    app.ada_also_admin_of(
        "Lübeck plant — maintenance, operations and quality engineering (EU-West)",
    )
    .await;
    let zed = app.other_workspace_admin().await;
    let res = zed
        .post_form(
            "/workspace/users",
            &[("email", ADMIN_EMAIL), ("name", "Ada"), ("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Ada's link to join Other Corp: the existing-account invitation page.
    let join = invite_link(&res.text().await.unwrap()).expect("invitation link shown");
    let join = format!("/invite/{}", join.rsplit('/').next().unwrap());
    let chrome = Chrome::start().await;
    let base = app.base.clone();
    let mut totals = Totals::default();

    let admin_pages: Vec<(&str, String)> = vec![
        ("workspace-keys", "/workspace/keys".into()),
        ("all-keys", "/workspace/keys?view=all".into()),
        ("service-keys", "/workspace/keys?view=service".into()),
        ("personal-keys", "/account/keys".into()),
        ("key-grace", format!("/keys/{}", s.grafana)),
        ("key-revoked", format!("/keys/{}", s.revoked)),
        ("key-busy", format!("/keys/{}", s.erp)),
        ("create-key", "/workspace/keys/new".into()),
        ("edit-key", format!("/keys/{}/edit", s.erp)),
        ("regenerate-key", format!("/keys/{}/regenerate", s.erp)),
        ("revoke-key", format!("/keys/{}/revoke", s.erp)),
        ("delete-key", format!("/keys/{}/delete", s.erp)),
        ("users", "/workspace/users".into()),
        (
            "remove-user",
            format!("/workspace/users/{}/remove", s.bob_user),
        ),
        ("settings", "/workspace/settings".into()),
        ("sso-settings", "/workspace/settings/sso".into()),
        ("plans", "/workspace/settings/plans".into()),
        ("plan", format!("/workspace/settings/plans/{plan}")),
        (
            "delete-plan",
            format!("/workspace/settings/plans/{plan}/delete"),
        ),
        ("key-on-plan", format!("/keys/{on_plan}")),
        ("edit-key-on-plan", format!("/keys/{on_plan}/edit")),
        (
            "service-account",
            format!("/workspace/service-accounts/{}", s.account),
        ),
        (
            "new-service-account",
            "/workspace/service-accounts/new".into(),
        ),
        (
            "delete-service-account",
            format!("/workspace/service-accounts/{}/delete", s.account),
        ),
        ("service-account-key", format!("/keys/{}", s.account_key)),
        ("webhooks", "/workspace/webhooks".into()),
        ("webhook", format!("/workspace/webhooks/{}", s.webhook)),
        ("recoverable-key", format!("/keys/{recoverable}")),
        ("show-secret", format!("/keys/{recoverable}/secret")),
        (
            "recoverable-off",
            "/workspace/settings/recoverable-keys/off".into(),
        ),
        ("key-requests", format!("/keys/{}/requests", s.erp)),
        ("api-keys-off", "/workspace/settings/api-keys/off".into()),
        ("events", "/workspace/events".into()),
        ("account", "/account".into()),
        ("password", "/account/password".into()),
        ("workspaces", "/workspaces".into()),
        ("not-found", "/keys/key_doesnotexist".into()),
    ];
    let bob_pages: Vec<(&str, String)> = vec![
        ("bob-keys", "/account/keys".into()),
        ("forbidden", "/workspace/users".into()),
    ];
    let signed_out: Vec<(&str, String)> = vec![
        ("login", "/login".into()),
        ("invite-existing", join),
        ("report-leak", "/report-leak".into()),
    ];
    let key_lists = ["workspace-keys", "all-keys", "personal-keys", "bob-keys"];
    let screenshots = [
        "workspace-keys",
        "all-keys",
        "key-grace",
        "key-busy",
        "create-key",
        "users",
        "settings",
        "plans",
        "key-on-plan",
        "service-account",
        "webhooks",
        "recoverable-key",
        "events",
        "bob-keys",
        "workspaces",
        "invite-existing",
    ];

    sign_in(&chrome, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for (role, pages) in [
        ("admin", &admin_pages),
        ("bob", &bob_pages),
        ("out", &signed_out),
    ] {
        if role == "bob" {
            chrome.client.delete_all_cookies().await.unwrap();
            sign_in(&chrome, &base, &s.bob_email, &s.bob_password).await;
        } else if role == "out" {
            chrome.client.delete_all_cookies().await.unwrap();
        }
        for size in [LAPTOP, PHONE] {
            chrome.viewport(size).await;
            for dark in [false, true] {
                chrome.theme(dark).await;
                for (name, path) in pages.iter() {
                    open(&chrome, &base, path).await;
                    assert_eq!(
                        chrome
                            .js_bool("return matchMedia('(prefers-color-scheme: dark)').matches;")
                            .await,
                        dark,
                        "the colour scheme is emulated"
                    );
                    let label = format!(
                        "{name} ({path}) at {} px, {}",
                        size.0,
                        if dark { "dark" } else { "light" }
                    );
                    totals.check(&chrome, &label).await;
                    if key_lists.contains(name) {
                        let rows = chrome
                            .js("return document.querySelectorAll('tr[id^=row-]').length;")
                            .await;
                        assert!(rows.as_u64().unwrap() >= 2, "{label}: the list shows keys");
                        for part in [
                            "a.key-name",
                            "td .status",
                            "code.key-excerpt",
                            "details.menu > summary",
                        ] {
                            let hidden = chrome.out_of_reach(&format!("tr[id^=row-] {part}")).await;
                            if !hidden.is_empty() {
                                totals.failures.push(format!(
                                    "{label}: {part} needs sideways scrolling: {hidden:?}"
                                ));
                            }
                        }
                    }
                    if screenshots.contains(name) {
                        let theme = if dark { "dark" } else { "light" };
                        chrome
                            .screenshot(&format!("{name}-{}-{theme}", size.0))
                            .await;
                    }
                }
            }
        }
    }
    println!(
        "axe-core 4.11.0: {} page audits, {} rules run, {} of them applied to something; screenshots in {}",
        totals.pages,
        totals.ran.len(),
        totals.applied.len(),
        super::screenshot_dir().display()
    );
    chrome.close().await;
    assert!(totals.pages >= 80, "audited {} pages", totals.pages);
    assert!(totals.ran.len() >= 50, "ran {} rules", totals.ran.len());
    assert!(
        totals.failures.is_empty(),
        "{} problems:\n{}",
        totals.failures.len(),
        totals.failures.join("\n")
    );
}

/// On a 390 px touch screen, by tapping: create a key, see all of it, copy
/// it, find it in the list (highlighted, announced) and revoke it — with no
/// zooming and no sideways scrolling.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_phone_creates_copies_and_revokes_a_key_by_tapping() {
    let (app, admin) = spawn_ready().await;
    seed(&app, &admin).await;
    let chrome = Chrome::start().await;
    let c = &chrome.client;
    chrome.viewport(PHONE).await;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let origin = app.base.clone();
    chrome
        .cdp(
            "Browser.grantPermissions",
            json!({ "origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"] }),
        )
        .await;
    open(&chrome, &app.base, "/account/keys").await;
    assert_eq!(chrome.overflow().await, None);

    chrome.tap(".page-head a.button-primary").await;
    chrome.wait_text("dialog[open] #f-name").await;
    chrome.assert_dialog_fits("create dialog").await;
    let audit = chrome.audit().await;
    assert!(audit.serious.is_empty(), "{:?}", audit.serious);
    chrome.tap("dialog[open] #f-name").await;
    chrome
        .fill(
            "dialog #f-name",
            "Phone-made key for the shift handover tablet",
        )
        .await;
    chrome.tap("dialog input[value='data:read']").await;
    chrome.tap("dialog[open] button[type=submit]").await;

    let field = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("dialog[open] #new-key"))
        .await
        .unwrap();
    let secret = field.prop("value").await.unwrap().unwrap_or_default();
    assert!(secret.starts_with("sk_live_"), "{secret}");
    chrome.assert_dialog_fits("Save your key").await;
    chrome.screenshot("save-your-key-390").await;
    // The whole key is on screen: nothing of it is scrolled out of its field.
    let clipped = chrome
        .js(
            "var f = document.getElementById('new-key'), r = f.getBoundingClientRect();
             return [Math.max(f.scrollWidth - f.clientWidth, f.scrollHeight - f.clientHeight), r.left, r.right, document.documentElement.clientWidth];",
        )
        .await;
    assert!(
        clipped[0].as_f64().unwrap() <= 0.0
            && clipped[1].as_f64().unwrap() >= 0.0
            && clipped[2].as_f64().unwrap() <= clipped[3].as_f64().unwrap(),
        "the key field cuts off part of the key: {clipped}"
    );
    let hint = chrome.wait_text("dialog[open] .curl-hint").await;
    assert!(
        hint.contains(&format!("{}/api/v1/me", app.base)),
        "the curl hint names this server: {hint}"
    );
    let audit = chrome.audit().await;
    assert!(audit.serious.is_empty(), "{:?}", audit.serious);

    chrome
        .tap("dialog[open] button[data-copy]:not([data-close-dialog])")
        .await;
    chrome
        .wait_js(
            "return document.querySelector('[data-unsaved-guard]').hasAttribute('data-copied');",
            "the copy is done",
        )
        .await;
    let copied = c
        .execute_async(
            "var done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, function (e) { done('error: ' + e); });",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        copied.as_str(),
        Some(secret.as_str()),
        "the clipboard holds the key"
    );

    chrome
        .tap_and_wait_load("dialog[open] a[data-close-dialog]")
        .await;
    chrome.wait_text("tr.just-changed .key-name").await;
    let id = chrome
        .js("return document.querySelector('tr.just-changed').id.replace('row-', '');")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        chrome
            .wait_text("#flash [role=status]")
            .await
            .contains("was created"),
        "the creation is announced"
    );
    assert_eq!(chrome.overflow().await, None);
    for part in [
        "a.key-name",
        "td .status",
        "code.key-excerpt",
        "details.menu > summary",
    ] {
        let hidden = chrome.out_of_reach(&format!("#row-{id} {part}")).await;
        assert!(
            hidden.is_empty(),
            "{part} of the new key needs sideways scrolling: {hidden:?}"
        );
    }
    assert!(
        !c.source().await.unwrap().contains(&secret[8..]),
        "the secret left the page"
    );

    chrome
        .tap(&format!("#row-{id} details.menu > summary"))
        .await;
    chrome
        .tap(&format!("#row-{id} a[href^='/keys/{id}/revoke']"))
        .await;
    assert!(chrome.wait_text("dialog[open] h2").await.contains("Revoke"));
    chrome.assert_dialog_fits("revoke dialog").await;
    assert!(
        chrome.focused().await.ends_with("|Cancel"),
        "a destructive confirmation opens on Cancel, not on {}",
        chrome.focused().await
    );
    chrome
        .tap_and_wait_load("dialog[open] .button-danger")
        .await;
    assert!(
        chrome
            .wait_text("#flash [role=status]")
            .await
            .contains("was revoked"),
        "the revocation is announced"
    );
    assert!(
        chrome
            .wait_text(&format!("#row-{id} .status"))
            .await
            .contains("Revoked")
    );
    assert_eq!(
        chrome
            .js("return document.querySelector('tr.just-changed').id;")
            .await,
        json!(format!("row-{id}")),
        "the changed row is highlighted"
    );
    let key = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::api_keys;
            api_keys::table
                .select(api_keys::revoked_at.is_not_null())
                .filter(api_keys::name.eq("Phone-made key for the shift handover tablet"))
                .first::<bool>(c)
                .unwrap()
        })
        .await;
    assert!(key, "the key is revoked in the database");
    assert_eq!(me(&app.base, &secret).await.0, StatusCode::UNAUTHORIZED);
    chrome.close().await;
}

/// The dialog and menu-button patterns of WAI-ARIA: a dialog opened from a
/// row menu gives focus back to that row's menu button, with the menu
/// closed, however it is closed (Escape, Cancel, the backdrop); destructive
/// confirmations open on Cancel; "Save your key" asks before throwing the
/// key away on Escape.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_row_menu_dialogs_return_focus_to_their_menu_button() {
    let (app, admin) = spawn_ready().await;
    let s = seed(&app, &admin).await;
    let chrome = Chrome::start().await;
    chrome.viewport(LAPTOP).await;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open(&chrome, &app.base, "/workspace/keys").await;
    let row = format!("#row-{}", s.erp);
    let summary = format!("{row} details.menu > summary");
    let menu_closed = format!("return !document.querySelector('{row} details.menu').open;");

    for (item, close, first) in [
        ("Edit", "escape", None),
        ("Revoke", "cancel", Some("Cancel")),
        ("Delete", "backdrop", Some("Cancel")),
        ("Regenerate", "escape", None),
    ] {
        chrome.click(&summary).await;
        let link = chrome
            .client
            .find(Locator::XPath(&format!(
                "//tr[@id='row-{}']//details//a[normalize-space()='{item}']",
                s.erp
            )))
            .await
            .unwrap();
        link.click().await.unwrap();
        chrome.wait_text("dialog[open] h2").await;
        if let Some(first) = first {
            let focused = chrome.focused().await;
            assert!(
                focused.ends_with(&format!("|{first}")),
                "{item} opens on {first}, not {focused}"
            );
        }
        match close {
            "escape" => chrome.press(Key::Escape).await,
            "cancel" => chrome.click("dialog[open] [data-close-dialog]").await,
            _ => {
                let mouse = MouseActions::new("mouse".into())
                    .then(PointerAction::MoveTo {
                        duration: None,
                        x: 5.0,
                        y: 5.0,
                    })
                    .then(PointerAction::Down { button: 0 })
                    .then(PointerAction::Up { button: 0 });
                chrome.client.perform_actions(mouse).await.unwrap();
                chrome.client.release_actions().await.unwrap();
            }
        }
        chrome
            .wait_js(
                "var d = document.getElementById('dialog'); return !d.open;",
                "dialog closed",
            )
            .await;
        // The dialog's close event (which gives focus back) follows the
        // closing in a later task: wait for focus to settle.
        let want = format!("SUMMARY|row-{}|", s.erp);
        let mut focused = chrome.focused().await;
        for _ in 0..50 {
            if focused.starts_with(&want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            focused = chrome.focused().await;
        }
        assert!(
            focused.starts_with(&want),
            "after {close} on {item}, focus is on the row's menu button, not {focused}"
        );
        assert!(
            chrome.js_bool(&menu_closed).await,
            "after {close} on {item} the menu is closed"
        );
    }

    // "Save your key": Escape before copying asks first, and keeps the key.
    chrome.click(".page-head a.button-primary").await;
    chrome.wait_text("dialog[open] #f-name").await;
    chrome.fill("dialog #f-name", "Keyboard key").await;
    chrome.click("dialog button[type=submit]").await;
    chrome.wait_text("dialog[open] #new-key").await;
    chrome.screenshot("save-your-key-1280").await;
    chrome.press(Key::Escape).await;
    let question = chrome.wait_text("dialog[open] .unsaved-question").await;
    assert!(
        question.contains("Have you saved your key? It won't be shown again."),
        "{question}"
    );
    assert!(
        chrome.dialog_open().await,
        "Escape did not throw the key away"
    );
    chrome
        .click("dialog[open] .unsaved-question button.keep-key")
        .await;
    assert!(chrome.dialog_open().await);
    // The backdrop asks too.
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x: 5.0,
            y: 5.0,
        })
        .then(PointerAction::Down { button: 0 })
        .then(PointerAction::Up { button: 0 });
    chrome.client.perform_actions(mouse).await.unwrap();
    chrome.client.release_actions().await.unwrap();
    chrome.wait_js(
        "var q = document.querySelector('dialog[open] .unsaved-question'); return !!q && !q.hidden;",
        "the backdrop asks before closing",
    )
    .await;
    assert!(
        chrome.dialog_open().await,
        "the backdrop did not throw the key away"
    );
    chrome
        .click("dialog[open] .unsaved-question button.discard-key")
        .await;
    chrome
        .wait_js(
            "return !document.getElementById('dialog').open;",
            "closed after confirming",
        )
        .await;
    chrome.wait_text("tr.just-changed .key-name").await;

    // Once copied, Escape closes without asking.
    chrome
        .cdp(
            "Browser.grantPermissions",
            json!({ "origin": app.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"] }),
        )
        .await;
    chrome.click(".page-head a.button-primary").await;
    chrome.wait_text("dialog[open] #f-name").await;
    chrome.fill("dialog #f-name", "Copied key").await;
    chrome.click("dialog button[type=submit]").await;
    chrome.wait_text("dialog[open] #new-key").await;
    chrome
        .click("dialog[open] button[data-copy]:not([data-close-dialog])")
        .await;
    chrome
        .wait_js(
            "return document.querySelector('[data-unsaved-guard]').hasAttribute('data-copied');",
            "the copy is noted",
        )
        .await;
    chrome.js("window.keywardOldPage = true;").await;
    chrome.press(Key::Escape).await;
    chrome
        .wait_js(
            "return window.keywardOldPage !== true && document.readyState === 'complete';",
            "Escape after Copy closed the dialog and the list reloaded",
        )
        .await;
    assert!(
        chrome
            .wait_text("tr.just-changed .key-name")
            .await
            .contains("Copied key"),
        "the new key's row is highlighted"
    );
    chrome.close().await;
}

/// Without JavaScript nothing on the create flow is a dead control: every
/// button shown submits a form, and "Save your key" offers its link out.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_without_javascript_shows_no_dead_buttons() {
    let (app, _admin) = spawn_ready().await;
    let chrome =
        Chrome::start_with(json!({ "profile.managed_default_content_settings.javascript": 2 }))
            .await;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let dead = "//button[not(@type='submit') or not(ancestor::form)]";

    for path in ["/workspace/keys", "/account/keys/new"] {
        open(&chrome, &app.base, path).await;
        for b in chrome.client.find_all(Locator::XPath(dead)).await.unwrap() {
            assert!(
                !b.is_displayed().await.unwrap(),
                "{path}: a button that needs JavaScript is shown: {}",
                b.text().await.unwrap()
            );
        }
    }
    chrome.fill("#f-name", "Made without JavaScript").await;
    chrome.click("main form button[type=submit]").await;
    chrome.wait_text("#new-key").await;
    let mut shown = Vec::new();
    for b in chrome
        .client
        .find_all(Locator::Css("button"))
        .await
        .unwrap()
    {
        if b.is_displayed().await.unwrap() {
            shown.push(b.text().await.unwrap());
        }
    }
    assert!(
        !shown.iter().any(|t| t.contains("Copy")),
        "Copy buttons need JavaScript but are shown: {shown:?}"
    );
    for b in chrome.client.find_all(Locator::XPath(dead)).await.unwrap() {
        assert!(
            !b.is_displayed().await.unwrap(),
            "dead button shown: {}",
            b.text().await.unwrap()
        );
    }
    let out = chrome
        .client
        .find(Locator::LinkText("I have saved my key"))
        .await
        .unwrap();
    assert!(out.is_displayed().await.unwrap(), "the way out is shown");
    out.click().await.unwrap();
    chrome.wait_for_path("/account/keys").await;

    // Adding a user shows a one-time link: without JavaScript, no Copy
    // button that would do nothing.
    open(&chrome, &app.base, "/workspace/users").await;
    chrome.fill("#f-email", "carol@example.com").await;
    chrome.fill("#f-name", "Carol").await;
    chrome
        .click("#users-panel form.stack button[type=submit]")
        .await;
    chrome.wait_text("#invite-link").await;
    for b in chrome.client.find_all(Locator::XPath(dead)).await.unwrap() {
        assert!(
            !b.is_displayed().await.unwrap(),
            "users page: dead button shown: {}",
            b.text().await.unwrap()
        );
    }
    chrome.close().await;
}

/// The workspace switcher by keyboard alone, and with JavaScript off: a
/// native select and a submit button in every page's header.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_switches_workspace_by_keyboard_and_without_javascript() {
    let (app, _ada) = spawn_ready().await;
    app.ada_also_admin_of("Other Corp").await;
    let chrome = Chrome::start().await;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open(&chrome, &app.base, "/account").await;
    assert!(chrome.wait_text("main").await.contains("Acme"));
    // From the brand link, Tab reaches the workspace select, the arrow
    // picks the next workspace, Tab reaches Switch, Enter submits.
    chrome.js("document.querySelector('.brand').focus();").await;
    chrome.press(Key::Tab).await;
    assert!(
        chrome.focused().await.starts_with("SELECT"),
        "{}",
        chrome.focused().await
    );
    chrome.press(Key::Down).await;
    chrome.press(Key::Tab).await;
    assert!(
        chrome.focused().await.contains("Switch"),
        "{}",
        chrome.focused().await
    );
    chrome.js("window.keywardOldPage = true;").await;
    chrome.press(Key::Enter).await;
    chrome
        .wait_js(
            "return window.keywardOldPage !== true && document.readyState === 'complete';",
            "the switch loaded a page",
        )
        .await;
    // The message is put into its live region just after load.
    let flash = chrome.wait_text("#flash .alert").await;
    assert_eq!(flash, "You are now working in Other Corp.");
    let selected = chrome
        .js("var s = document.getElementById('workspace-switch'); return s.options[s.selectedIndex].text;")
        .await;
    assert_eq!(selected, json!("Other Corp"));
    chrome.close().await;

    // Without JavaScript: choose the option, press the button.
    let chrome =
        Chrome::start_with(json!({ "profile.managed_default_content_settings.javascript": 2 }))
            .await;
    sign_in(&chrome, &app.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open(&chrome, &app.base, "/account").await;
    assert!(
        chrome.wait_text("main").await.contains("Other Corp"),
        "last workspace kept"
    );
    chrome
        .client
        .find(Locator::Css("#workspace-switch option:not([selected])"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome.click(".switcher button[type=submit]").await;
    chrome.wait_for_path("/workspace/keys").await;
    let main = chrome.wait_text("main").await;
    assert!(main.contains("You are now working in Acme."), "{main}");
    chrome.close().await;
}
