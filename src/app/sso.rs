//! Single sign-on through OpenID Connect (issue 26, part 1): the
//! Authorization Code flow with PKCE, `state` and `nonce` against the
//! providers the operator configured, and who gets in.
//!
//! The ID token's signature (keys from the provider's JWKS), issuer,
//! audience, expiry and nonce are checked by the `openidconnect` crate. The
//! provider's metadata and keys are fetched afresh for every sign-in, so a
//! provider that rotates its keys is followed at once, at the cost of two
//! small requests per sign-in.
//!
//! Who gets in: a person already linked to the provider's subject is that
//! person, whatever email the provider sends now. Otherwise the verified
//! email (`email_verified` true) finds the person, who is then linked; a
//! person nobody knows yet may join the workspaces whose admins let people
//! from this provider join (default role, email domains, groups → role).
//! Joining happens only when the link is made, on the first sign-in: a
//! removed member does not come back by signing in again.

use super::auth::{Client, SignIn};
use super::{Ctx, Error, Result, run};
use crate::config::OidcProvider;
use crate::db::events::{self, EventTarget};
use crate::db::sso::{self, SsoSettings};
use crate::db::{people, sessions};
use crate::domain::Role;
use crate::domain::input::{Email, FieldError, PersonName};
use crate::domain::policy::Action;
use crate::state::AppState;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How long a sign-in may stay at the provider before its return is
/// refused.
pub const PENDING_FOR: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// A provider as the sign-in page and the settings offer it.
#[derive(Debug, Clone)]
pub struct ProviderLink {
    pub id: String,
    pub name: String,
}

/// The providers the operator configured, in their order.
pub fn providers(state: &AppState) -> Vec<ProviderLink> {
    state
        .config
        .oidc_providers
        .iter()
        .map(|p| ProviderLink {
            id: p.id.clone(),
            name: p.name.clone(),
        })
        .collect()
}

fn provider<'a>(state: &'a AppState, id: &str) -> Result<&'a OidcProvider> {
    state
        .config
        .oidc_providers
        .iter()
        .find(|p| p.id == id)
        .ok_or(Error::NotFound)
}

/// A sign-in on its way through the provider: what its return is checked
/// against. The pages keep it in a short-lived encrypted cookie of its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go once signed in (a path on this site, checked).
    pub next: String,
    /// When it started (Unix seconds).
    pub started: i64,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default)]
pub struct Returned {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Where the provider sends people back to.
pub fn redirect_uri(state: &AppState, provider: &str) -> String {
    format!("{}/auth/oidc/{provider}/callback", state.base_url)
}

/// The outbound client: no redirects (they would let a provider's
/// metadata point keyward's requests anywhere), a bounded wait.
fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client: {e}")))
}

fn unreachable_provider(p: &OidcProvider) -> Error {
    Error::BadRequest(format!(
        "{} could not be reached to sign you in. Try again in a moment, or sign in with your password.",
        p.name
    ))
}

/// The provider's metadata and keys, discovered from its issuer.
async fn discover(p: &OidcProvider, http: &reqwest::Client) -> Result<CoreProviderMetadata> {
    let issuer = IssuerUrl::new(p.issuer.clone())
        .map_err(|e| Error::Internal(format!("issuer of {}: {e}", p.id)))?;
    CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| {
            let mut error = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                error.push_str(": ");
                error.push_str(&s.to_string());
                source = s.source();
            }
            tracing::warn!(provider = %p.id, %error, "OpenID provider discovery failed");
            unreachable_provider(p)
        })
}

/// Start a sign-in: the provider's authorization URL to send the browser
/// to, and what its return must match.
pub async fn begin(state: &AppState, provider_id: &str, next: String) -> Result<(String, Pending)> {
    let p = provider(state, provider_id)?;
    let http = http_client()?;
    let metadata = discover(p, &http).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    )
    .set_redirect_uri(
        RedirectUrl::new(redirect_uri(state, &p.id))
            .map_err(|e| Error::Internal(format!("redirect URI: {e}")))?,
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()));
    for scope in &p.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
    Ok((
        url.to_string(),
        Pending {
            provider: p.id.clone(),
            state: csrf.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
            started: chrono::Utc::now().timestamp(),
        },
    ))
}

fn expired_sign_in() -> Error {
    Error::BadRequest(
        "This sign-in is not valid any more: it expired, was already used, or was started in another browser. Start again from the sign-in page."
            .into(),
    )
}

/// What a verified ID token says about the person.
struct Identity {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    groups: Vec<String>,
}

/// The `groups` claim of an ID token whose signature was verified: the
/// payload of those very bytes, read again for the one claim the core
/// claim types do not have.
fn groups_claim(jwt: &str) -> Vec<String> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    struct Groups {
        #[serde(default)]
        groups: Vec<String>,
    }
    jwt.split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Groups>(&bytes).ok())
        .map(|g| g.groups)
        .unwrap_or_default()
}

/// Exchange the code (with the PKCE verifier) and verify the ID token.
async fn verified_identity(
    state: &AppState,
    p: &OidcProvider,
    pending: &Pending,
    code: String,
) -> Result<Identity> {
    let http = http_client()?;
    // Discovered again: a key the provider rotated in since the sign-in
    // started is in the fresh key set.
    let metadata = discover(p, &http).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    )
    .set_redirect_uri(
        RedirectUrl::new(redirect_uri(state, &p.id))
            .map_err(|e| Error::Internal(format!("redirect URI: {e}")))?,
    );
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Error::Internal(format!("provider {}: {e}", p.id)))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&http)
        .await
        .map_err(|e| {
            // The error names the provider's answer (invalid_grant…),
            // never the code or a token.
            tracing::info!(provider = %p.id, error = %e, "OpenID provider refused the code");
            Error::BadRequest(format!(
                "{} did not accept this sign-in (it may have been used already or have expired). Start again from the sign-in page.",
                p.name
            ))
        })?;
    let refused = |why: String| {
        tracing::info!(provider = %p.id, problem = %why, "ID token refused");
        Error::Forbidden(format!(
            "The sign-in through {} could not be verified, so it was refused. Start again from the sign-in page.",
            p.name
        ))
    };
    let id_token = tokens
        .id_token()
        .ok_or_else(|| refused("no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce.clone()))
        .map_err(|e| refused(e.to_string()))?;
    Ok(Identity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().trim().to_lowercase()),
        email_verified: claims.email_verified() == Some(true),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        groups: groups_claim(&id_token.to_string()),
    })
}

/// The name a person joining gets: the provider's, when it passes the
/// checks a typed name does (length, no characters that reorder text),
/// else the email's local part.
fn person_name(name: Option<&str>, email: &str) -> String {
    name.and_then(|n| PersonName::parse(n).ok())
        .map(PersonName::into_inner)
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned())
}

/// Finish a sign-in at the callback: check the return against `pending`
/// (the cookie's), exchange the code, verify the ID token, find, link or
/// let join the person, and start a session as a password sign-in does.
pub async fn finish(
    state: &AppState,
    provider_id: &str,
    pending: Option<Pending>,
    returned: Returned,
    client: Client,
) -> Result<SignIn> {
    let p = provider(state, provider_id)?;
    let pending = pending
        .filter(|pd| pd.provider == p.id)
        .filter(|pd| chrono::Utc::now().timestamp() - pd.started <= PENDING_FOR.num_seconds());
    if let Some(error) = returned.error.as_deref() {
        tracing::info!(provider = %p.id, error = %error.chars().take(64).collect::<String>(), "OpenID provider returned an error");
        let reason = match error {
            "access_denied" => "the sign-in was cancelled or refused there",
            "login_required" | "interaction_required" | "consent_required" => {
                "you need to sign in there first"
            }
            _ => "it reported a problem",
        };
        return Err(Error::Forbidden(format!(
            "You were not signed in through {}: {reason}. Start again from the sign-in page, or sign in with your password.",
            p.name
        )));
    }
    let Some(pending) = pending else {
        return Err(expired_sign_in());
    };
    let state_ok = returned
        .state
        .as_deref()
        .is_some_and(|s| crate::domain::input::same(s, &pending.state));
    if !state_ok {
        tracing::info!(provider = %p.id, "OpenID callback with a state that does not match its sign-in");
        return Err(expired_sign_in());
    }
    let Some(code) = returned.code.filter(|c| !c.is_empty()) else {
        return Err(expired_sign_in());
    };
    let identity = verified_identity(state, p, &pending, code).await?;
    let provider_id = p.id.clone();
    let provider_name = p.name.clone();
    let lifetime = state.session_lifetime();
    run(state, move |c| {
        crate::db::write_transaction(c, |c| {
            let person = match sso::linked_person(c, &provider_id, &identity.subject)? {
                // Linked: the subject decides, whatever the email says now.
                Some(person) => person,
                None => link_or_join(c, &provider_id, &provider_name, &identity, &client)?,
            };
            let Some(user) = people::sign_in_membership(c, &person)? else {
                return Ok(SignIn::NoWorkspace);
            };
            let ctx = user.audit(client.ip.clone(), client.user_agent.clone());
            sessions::purge_expired(c, lifetime)?;
            let secret =
                sessions::create(c, &user, client.ip.as_deref(), client.user_agent.as_deref())?;
            let target = EventTarget::user(&user.id, &user.email);
            events::record(
                c,
                &ctx,
                "login.succeeded",
                target,
                json!({ "provider": provider_id }),
            )?;
            Ok(SignIn::Session {
                secret,
                membership: Box::new(user),
            })
        })
    })
    .await
}

/// A subject not linked yet: link it to the person with its verified
/// email, or make that person and let them join the workspaces that
/// allow it. Refused without a verified email.
fn link_or_join(
    c: &mut crate::db::DbConn,
    provider_id: &str,
    provider_name: &str,
    identity: &Identity,
    client: &Client,
) -> Result<people::Person> {
    let email = match (&identity.email, identity.email_verified) {
        // Normalised and checked as any address typed into keyward is.
        (Some(raw), true) => match Email::parse(raw) {
            Ok(email) => email.as_str().to_owned(),
            Err(_) => {
                return Err(Error::Forbidden(format!(
                    "{provider_name} sent an email address keyward cannot use, so it cannot tell who you are."
                )));
            }
        },
        (Some(email), _) => {
            return Err(Error::Forbidden(format!(
                "{provider_name} has not confirmed that {email} is your address, so keyward cannot tell who you are. Confirm it there, or sign in with your password."
            )));
        }
        (None, _) => {
            return Err(Error::Forbidden(format!(
                "{provider_name} did not share your email address, so keyward cannot tell who you are."
            )));
        }
    };
    let existing = people::find_by_email(c, &email)?;
    if let Some(person) = &existing
        && sso::has_link(c, provider_id, &person.id)?
    {
        // Another account at the provider claims an email whose person
        // is already linked there: the subject decides, not the email.
        return Err(Error::Forbidden(format!(
            "{email} is already linked to another {provider_name} account. Sign in with that account."
        )));
    }
    let mut joinable = Vec::new();
    for (workspace_id, settings) in sso::joinable(c, provider_id)? {
        if !settings.domain_allowed(&email) {
            continue;
        }
        if let Some(person) = &existing
            && sso::ever_member(c, &workspace_id, &person.id)?
        {
            continue;
        }
        joinable.push((workspace_id, settings));
    }
    let person = match existing {
        Some(person) => person,
        None if joinable.is_empty() => {
            return Err(Error::Forbidden(format!(
                "No workspace here lets {email} join through {provider_name}. Ask a workspace administrator to invite you."
            )));
        }
        None => people::insert(
            c,
            &email,
            &person_name(identity.name.as_deref(), &email),
            None,
        )?,
    };
    sso::link(c, provider_id, &identity.subject, &person.id, &email)?;
    // Each workspace the person already belongs to learns of the link.
    for m in people::memberships(c, &person.id)? {
        if m.is_pending() {
            continue;
        }
        let ctx = crate::db::events::AuditContext {
            workspace_id: m.workspace_id.clone(),
            actor_id: Some(m.user_id.clone()),
            actor_label: person.email.clone(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        events::record(
            c,
            &ctx,
            "user.sso_linked",
            EventTarget::user(&m.user_id, &person.email),
            json!({ "provider": provider_id }),
        )?;
    }
    for (workspace_id, settings) in joinable {
        let role = settings.role_for(&identity.groups);
        let joined = sso::join(
            c,
            &workspace_id,
            &person,
            role,
            provider_id,
            (client.ip.clone(), client.user_agent.clone()),
        )?;
        people::set_last_workspace(c, &person.id, &joined.workspace_id)?;
    }
    Ok(people::find_by_email(c, &email)?.unwrap_or(person))
}

/// The workspace's SSO settings and the providers to choose from (admins).
pub async fn settings(state: &AppState, ctx: &Ctx) -> Result<(SsoSettings, Vec<ProviderLink>)> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    let current = run(state, move |c| Ok(sso::get(c, &ws)?)).await?;
    Ok((current, providers(state)))
}

/// SSO settings as sent by the form or the API.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    /// A provider id, or empty: nobody joins through a provider.
    pub join_provider: String,
    pub default_role: String,
    /// Domains separated by commas, spaces or lines.
    pub email_domains: String,
    /// `group=role` lines.
    pub group_roles: String,
    pub sso_only: bool,
}

fn parse_domains(raw: &str) -> std::result::Result<Vec<String>, FieldError> {
    let mut out: Vec<String> = Vec::new();
    for d in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        let d = d.trim().trim_start_matches('@').to_lowercase();
        if d.is_empty() {
            continue;
        }
        let ok = d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(FieldError::new(
                "email_domains",
                format!(
                    "\u{201c}{d}\u{201d} is not a domain: write domains like example.com, separated by commas or lines."
                ),
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.len() > 50 {
        return Err(FieldError::new("email_domains", "List at most 50 domains."));
    }
    Ok(out)
}

fn parse_group_roles(raw: &str) -> std::result::Result<Vec<(String, Role)>, FieldError> {
    let mut out = Vec::new();
    for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parsed = line.rsplit_once('=').and_then(|(g, r)| {
            let g = g.trim();
            let ok = !g.is_empty() && g.chars().count() <= 200 && !g.chars().any(char::is_control);
            Some((g.to_owned(), r.trim().parse::<Role>().ok()?)).filter(|_| ok)
        });
        match parsed {
            Some(pair) => out.push(pair),
            None => {
                return Err(FieldError::new(
                    "group_roles",
                    format!(
                        "\u{201c}{line}\u{201d} is not a mapping: write one group=role a line, where role is admin, normal or operator."
                    ),
                ));
            }
        }
    }
    if out.len() > 50 {
        return Err(FieldError::new("group_roles", "List at most 50 mappings."));
    }
    Ok(out)
}

/// Check settings as sent, with a message per field.
pub fn parse_settings(state: &AppState, input: &SettingsInput) -> Result<SsoSettings> {
    let mut errors = Vec::new();
    let join_provider = match input.join_provider.trim() {
        "" => Some(None),
        id if state.config.oidc_providers.iter().any(|p| p.id == id) => Some(Some(id.to_owned())),
        _ => {
            errors.push(FieldError::new(
                "join_provider",
                "Choose one of the providers this keyward is set up with, or nobody.",
            ));
            None
        }
    };
    let default_role = match input.default_role.trim().parse::<Role>() {
        Ok(r) => Some(r),
        Err(_) => {
            errors.push(FieldError::new(
                "default_role",
                "Choose a role: admin, normal or operator.",
            ));
            None
        }
    };
    let email_domains = parse_domains(&input.email_domains)
        .map_err(|e| errors.push(e))
        .ok();
    let group_roles = parse_group_roles(&input.group_roles)
        .map_err(|e| errors.push(e))
        .ok();
    if input.sso_only && state.config.oidc_providers.is_empty() {
        errors.push(FieldError::new(
            "sso_only",
            "No OpenID provider is set up on this keyward, so sign-in cannot be limited to one.",
        ));
    }
    match (join_provider, default_role, email_domains, group_roles) {
        (Some(join_provider), Some(default_role), Some(email_domains), Some(group_roles))
            if errors.is_empty() =>
        {
            Ok(SsoSettings {
                join_provider,
                default_role,
                email_domains,
                group_roles,
                sso_only: input.sso_only,
            })
        }
        _ => Err(Error::Invalid(errors)),
    }
}

/// Save the workspace's SSO settings (admins). Returns the settings now
/// and whether anything changed.
pub async fn save_settings(
    state: &AppState,
    ctx: &Ctx,
    input: &SettingsInput,
) -> Result<(SsoSettings, bool)> {
    ctx.authorize(Action::ManageSettings)?;
    let new = parse_settings(state, input)?;
    let audit = ctx.audit.clone();
    let saved = new.clone();
    let written = run(state, move |c| Ok(sso::save(c, &audit, &saved)?)).await;
    let ws = ctx.workspace_id().to_owned();
    let expected = new.clone();
    let changed = super::settle(state, written, move |c| {
        Ok((sso::get(c, &ws)? == expected).then_some(true))
    })
    .await?;
    Ok((new, changed))
}
