//! Leak response (issue 25): GitHub secret scanning alerts, public leak
//! reports, and the workspace's choice of what a report does.
//!
//! The two report paths have no signed-in actor. A GitHub alert is
//! authenticated by GitHub's signature over the raw body; a public report
//! needs none, by design: it can only ever take a key out of service, and
//! only by presenting the key's whole secret, which is what possession
//! means. Neither answer says anything about a key beyond what its secret
//! already proves (GitHub learns "true/false positive" for the token it
//! sent, the public reporter the same answer whatever they sent).

use super::{Ctx, Error, Result, run};
use crate::db::leaks::{self, KeyLeak, Source};
use crate::domain::keys as dk;
use crate::domain::policy::Action;
use crate::state::AppState;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Most keys one public report may name.
pub const MAX_KEYS_PER_REPORT: usize = 20;
pub use crate::domain::throttle::{
    LEAK_REPORT_WINDOW as REPORT_WINDOW, LEAK_REPORTS_PER_WINDOW as REPORTS_PER_WINDOW,
};
/// Most matches one GitHub alert may hold.
pub const MAX_GITHUB_MATCHES: usize = 1000;
/// Longest URL kept with a report; longer ones are dropped.
pub const MAX_URL_LEN: usize = 2000;

/// Why a GitHub alert was not acted on.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// No or a wrong signature, an unknown key id, or no keys configured:
    /// nothing was read from the body.
    #[error("{0}")]
    BadSignature(String),
    /// Signed, but not GitHub's payload format.
    #[error("{0}")]
    BadPayload(String),
    #[error(transparent)]
    App(#[from] Error),
}

/// One match of a GitHub alert.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GithubMatch {
    /// The secret found.
    pub token: String,
    /// The secret type GitHub matched (the name registered with GitHub).
    #[serde(rename = "type", default)]
    #[schema(rename = "type")]
    pub kind: String,
    /// Where it was found.
    #[serde(default)]
    pub url: Option<String>,
    /// What GitHub scanned: `content`, `commit`, `pull_request_title`, …
    #[serde(default)]
    pub source: Option<String>,
}

/// GitHub's feedback format, one per match: the SHA-256 of the token (the
/// same hex digest keyward stores), the type GitHub sent, and whether it
/// was a live key (`true_positive`) or not (`false_positive`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Feedback {
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` or `false_positive`.
    pub label: &'static str,
}

/// GitHub's published key list.
#[derive(Debug, Deserialize)]
struct KeyList {
    public_keys: Vec<PublishedKey>,
}

#[derive(Debug, Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

type Keys = Arc<HashMap<String, VerifyingKey>>;

/// Keys read from `KEYWARD_GITHUB_KEYS_FILE`, per file, re-read when the
/// file changes (an operator's cron refreshing it from GitHub's URL): a
/// stat per alert, the parse only on change.
static KEY_FILES: Mutex<Option<HashMap<PathBuf, (SystemTime, Keys)>>> = Mutex::new(None);

fn load_keys(path: &Path) -> std::result::Result<Keys, String> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    {
        let cache = KEY_FILES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, keys)) = cache.as_ref().and_then(|c| c.get(path))
            && *at == modified
        {
            return Ok(keys.clone());
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let keys = parse_key_list(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cache = KEY_FILES.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get_or_insert_with(HashMap::new)
        .insert(path.to_owned(), (modified, keys.clone()));
    Ok(keys)
}

/// GitHub's key list (JSON as published) as verifying keys by id.
fn parse_key_list(text: &str) -> std::result::Result<Keys, String> {
    let list: KeyList =
        serde_json::from_str(text).map_err(|e| format!("not GitHub's key list: {e}"))?;
    let mut keys = HashMap::new();
    for k in list.public_keys {
        match VerifyingKey::from_public_key_pem(&k.key) {
            Ok(vk) => {
                keys.insert(k.key_identifier, vk);
            }
            Err(e) => {
                tracing::warn!(key = %k.key_identifier, error = %e, "skipping a GitHub key that is not a P-256 public key")
            }
        }
    }
    Ok(Arc::new(keys))
}

/// How long keys fetched from `KEYWARD_GITHUB_KEYS_URL` are used before
/// they are fetched again.
pub const URL_KEYS_FRESH: Duration = Duration::from_secs(3600);
/// Fetches at most this often, also for alerts naming an unknown key (a
/// key GitHub just added, or an attacker's made-up id).
pub const URL_KEYS_RETRY: Duration = Duration::from_secs(60);
/// How long one fetch may take.
const URL_KEYS_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys fetched from the URL: when they were fetched, when a fetch was last
/// tried, and the keys (the last good ones, also when a later fetch failed).
struct UrlKeys {
    fetched: Option<Instant>,
    tried: Option<Instant>,
    keys: Keys,
}

static URL_KEYS: tokio::sync::Mutex<Option<(String, UrlKeys)>> =
    tokio::sync::Mutex::const_new(None);

/// The keys published at `url`, fetched when none are held, when they are
/// older than [`URL_KEYS_FRESH`], or when `wanted` is not among them, but
/// at most every [`URL_KEYS_RETRY`]. A failed fetch keeps the last good keys
/// (logged); one alert at a time fetches, the others wait for its answer.
async fn url_keys(url: &str, wanted: &str) -> Keys {
    let mut held = URL_KEYS.lock().await;
    if held.as_ref().is_none_or(|(u, _)| u != url) {
        *held = Some((
            url.to_owned(),
            UrlKeys {
                fetched: None,
                tried: None,
                keys: Arc::default(),
            },
        ));
    }
    let Some((_, state)) = held.as_mut() else {
        return Arc::default();
    };
    let now = Instant::now();
    let stale = state
        .fetched
        .is_none_or(|at| now.duration_since(at) >= URL_KEYS_FRESH);
    let may_try = state
        .tried
        .is_none_or(|at| now.duration_since(at) >= URL_KEYS_RETRY);
    if (stale || !state.keys.contains_key(wanted)) && may_try {
        state.tried = Some(now);
        match fetch_keys(url).await {
            Ok(keys) => {
                tracing::info!(
                    url,
                    keys = keys.len(),
                    "fetched GitHub's secret scanning keys"
                );
                state.fetched = Some(now);
                state.keys = keys;
            }
            Err(e) => {
                tracing::error!(url, error = %e, "GitHub's secret scanning keys could not be fetched; using the last ones fetched, if any")
            }
        }
    }
    state.keys.clone()
}

async fn fetch_keys(url: &str) -> std::result::Result<Keys, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(URL_KEYS_TIMEOUT)
        .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let res = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("answered {}", res.status()));
    }
    let text = res.text().await.map_err(|e| e.to_string())?;
    parse_key_list(&text)
}

/// Check GitHub's signature (ECDSA P-256, SHA-256, DER, base64) of the raw
/// body with the key it names.
pub fn check_signature(
    keys_file: Option<&Path>,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> std::result::Result<(), AlertError> {
    let refuse = |why: &str| AlertError::BadSignature(why.to_owned());
    let Some(path) = keys_file else {
        return Err(refuse(
            "This keyward receives no GitHub alerts: KEYWARD_GITHUB_KEYS_FILE is not set.",
        ));
    };
    let keys = load_keys(path).map_err(|e| {
        tracing::error!(error = %e, "GitHub secret scanning keys unavailable");
        refuse("GitHub's public keys are not available to this keyward.")
    })?;
    verify_with(&keys, key_id, signature, body)
}

/// Check the signature with the key the alert names among `keys`.
fn verify_with(
    keys: &Keys,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> std::result::Result<(), AlertError> {
    let refuse = |why: &str| AlertError::BadSignature(why.to_owned());
    let (Some(key_id), Some(signature)) = (key_id, signature) else {
        return Err(refuse(
            "Github-Public-Key-Identifier and Github-Public-Key-Signature are required.",
        ));
    };
    let Some(key) = keys.get(key_id.trim()) else {
        return Err(refuse("Unknown Github-Public-Key-Identifier."));
    };
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| refuse("Github-Public-Key-Signature is not base64."))?;
    let signature = Signature::from_der(&der)
        .map_err(|_| refuse("Github-Public-Key-Signature is not a DER ECDSA signature."))?;
    key.verify(body, &signature)
        .map_err(|_| refuse("The signature does not match the body."))
}

fn clean_url(url: Option<&str>) -> Option<String> {
    let url = url?.trim();
    let ok = url.len() <= MAX_URL_LEN
        && (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(char::is_control);
    ok.then(|| url.to_owned())
}

fn label(live: bool) -> &'static str {
    if live {
        "true_positive"
    } else {
        "false_positive"
    }
}

/// Handle a GitHub secret scanning alert: check its signature over the raw
/// body first (nothing is read or changed otherwise), then handle each
/// match and answer GitHub's feedback.
pub async fn github_alert(
    state: &AppState,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> std::result::Result<Vec<Feedback>, AlertError> {
    let settings = &state.config.leaks;
    match settings.github_keys_url.as_deref() {
        None => check_signature(
            settings.github_keys_file.as_deref(),
            key_id,
            signature,
            body,
        )?,
        Some(url) => {
            // The file, when set too, answers first; the URL for the rest.
            let wanted = key_id.unwrap_or_default().trim();
            let from_file = settings
                .github_keys_file
                .as_deref()
                .and_then(|p| load_keys(p).ok())
                .filter(|keys| keys.contains_key(wanted));
            let keys = match from_file {
                Some(keys) => keys,
                None if key_id.is_some() && signature.is_some() => url_keys(url, wanted).await,
                None => Arc::default(),
            };
            verify_with(&keys, key_id, signature, body)?
        }
    }
    let matches: Vec<GithubMatch> = serde_json::from_slice(body).map_err(|e| {
        AlertError::BadPayload(format!(
            "The body must be GitHub's JSON array of {{token, type, url, source}}: {e}"
        ))
    })?;
    if matches.len() > MAX_GITHUB_MATCHES {
        return Err(AlertError::BadPayload(format!(
            "At most {MAX_GITHUB_MATCHES} matches an alert."
        )));
    }
    let feedback = run(state, move |c| {
        let mut out = Vec::with_capacity(matches.len());
        for m in &matches {
            let digest = dk::digest(&m.token);
            let live = match dk::parse(m.token.trim()) {
                Ok(facts) => leaks::report(
                    c,
                    Source::Github,
                    &facts.digest,
                    clean_url(m.url.as_deref()).as_deref(),
                    None,
                )?
                .is_live(),
                Err(_) => false,
            };
            out.push(Feedback {
                token_hash: digest,
                token_type: m.kind.clone(),
                label: label(live),
            });
        }
        Ok(out)
    })
    .await?;
    Ok(feedback)
}

/// A keyed hash of a public reporter's address: enough to tell reports
/// from one source apart, never the address.
fn reporter_hash(state: &AppState, ip: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"keyward leak reporter\0");
    h.update(&state.config.secret);
    h.update(ip.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Why a public report was not taken (never whether a key exists).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("Too many reports from your address. Try again in {} minutes.", .0.as_secs().div_ceil(60))]
    TooMany(Duration),
    #[error("Report at most {MAX_KEYS_PER_REPORT} keys at a time.")]
    TooManyKeys,
    #[error(transparent)]
    App(#[from] Error),
}

/// Handle a public leak report: up to [`MAX_KEYS_PER_REPORT`] keys and an
/// optional URL, rate-limited per client address. Malformed keys are
/// ignored; the caller answers the same whatever the keys were.
pub async fn public_report(
    state: &AppState,
    client_ip: Option<&str>,
    keys: Vec<String>,
    url: Option<&str>,
) -> std::result::Result<(), ReportError> {
    if keys.len() > MAX_KEYS_PER_REPORT {
        return Err(ReportError::TooManyKeys);
    }
    let ip = client_ip.unwrap_or("unknown");
    state
        .leak_reports
        .reserve(ip, Instant::now())
        .map(|_| ())
        .map_err(ReportError::TooMany)?;
    let digests: Vec<String> = keys
        .iter()
        .filter_map(|k| dk::parse(k.trim()).ok())
        .map(|f| f.digest)
        .collect();
    if digests.is_empty() {
        return Ok(());
    }
    let url = clean_url(url);
    let reporter = reporter_hash(state, ip);
    run(state, move |c| {
        for digest in &digests {
            leaks::report(c, Source::Public, digest, url.as_deref(), Some(&reporter))?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// The leak reports of a key the actor has loaded (through the policy, as
/// its page does), scoped to the actor's workspace.
pub async fn reports_of(
    state: &AppState,
    ctx: &Ctx,
    key: &crate::db::keys::ApiKey,
) -> Result<Vec<KeyLeak>> {
    let ws = ctx.workspace_id().to_owned();
    let id = key.id.clone();
    run(state, move |c| Ok(leaks::of_key(c, &ws, &id)?)).await
}

/// Set what a leak report does in the actor's workspace: `revoke` (the
/// default) or `report` (record and tell only). Returns whether it changed.
pub async fn set_response(state: &AppState, ctx: &Ctx, response: &str) -> Result<bool> {
    ctx.authorize(Action::ManageSettings)?;
    let response = match response.trim() {
        leaks::RESPONSE_REVOKE => leaks::RESPONSE_REVOKE,
        leaks::RESPONSE_REPORT => leaks::RESPONSE_REPORT,
        _ => {
            return Err(Error::invalid(
                "leak_response",
                "Choose what a leak report does: revoke the key, or only report it.",
            ));
        }
    };
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(leaks::set_response(c, &audit, response)?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's own example from its partner program documentation: the
    /// key it published and a payload it signed with it.
    const GITHUB_KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
    const GITHUB_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----";
    const GITHUB_PAYLOAD: &[u8] =
        br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    const GITHUB_SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";

    #[test]
    fn githubs_published_example_verifies_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let list = serde_json::json!({"public_keys": [
            {"key_identifier": GITHUB_KEY_ID, "key": GITHUB_PEM, "is_current": true}
        ]});
        std::fs::write(&path, list.to_string()).unwrap();
        let check = |id: Option<&str>, sig: Option<&str>, body: &[u8]| {
            check_signature(Some(&path), id, sig, body)
        };
        check(Some(GITHUB_KEY_ID), Some(GITHUB_SIGNATURE), GITHUB_PAYLOAD).unwrap();
        let mut other = GITHUB_PAYLOAD.to_vec();
        other[12] = b'S';
        assert!(check(Some(GITHUB_KEY_ID), Some(GITHUB_SIGNATURE), &other).is_err());
        assert!(check(Some("f9525bf0"), Some(GITHUB_SIGNATURE), GITHUB_PAYLOAD).is_err());
        assert!(check(Some(GITHUB_KEY_ID), None, GITHUB_PAYLOAD).is_err());
        assert!(
            check(
                Some(GITHUB_KEY_ID),
                Some("bm90IGEgc2lnbmF0dXJl"),
                GITHUB_PAYLOAD
            )
            .is_err()
        );
        assert!(
            check_signature(
                None,
                Some(GITHUB_KEY_ID),
                Some(GITHUB_SIGNATURE),
                GITHUB_PAYLOAD
            )
            .is_err()
        );
    }
}
