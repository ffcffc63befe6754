//! Configuration from environment variables and matching command-line flags.
//! Everything is validated at start-up; a bad value stops the process with
//! one line naming the variable.

use clap::{Args, Parser, Subcommand};
use rand::distr::{Alphanumeric, SampleString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command line of the `keyward` binary.
#[derive(Debug, Parser)]
#[command(name = "keyward", version = crate::VERSION, about = "Self-hosted API key management")]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; serving is the default.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web application and API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create the first workspace and its admin without the browser.
    Setup {
        /// Name of the workspace to create.
        #[arg(long)]
        workspace: String,
        /// Email address of the first admin.
        #[arg(long)]
        admin_email: String,
        /// Display name of the first admin (defaults to the email's local part).
        #[arg(long)]
        admin_name: Option<String>,
        /// File holding the admin's password (first line), e.g. a mounted secret.
        #[arg(long)]
        admin_password_file: PathBuf,
    },
    /// Copy the SQLite database, consistent, while keyward serves it, with
    /// its session secret beside the copy (`<file>.secret`). On PostgreSQL,
    /// use pg_dump (docs/operations.md).
    Backup {
        /// Where to write the copy; must not exist.
        file: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), e.g. `keyward manpage | man -l -`.
    Manpage,
    /// Create and list workspaces (tenants): the operator's provisioning.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Recoverable keys: the operator's tools (docs/recoverable-keys.md).
    Recovery {
        #[command(subcommand)]
        command: RecoveryCommand,
    },
}

/// `keyward recovery …`
#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Re-encrypt every stored secret of recoverable keys under the current
    /// (first) key of KEYWARD_RECOVERY_KEYS_FILE, all or nothing; then the
    /// older keys can be removed from the file.
    Rewrap,
}

/// `keyward workspace …`
#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace with its first admin. A person who already has an
    /// account becomes its admin; a new one gets the password in
    /// --admin-password-file, or else an invitation link printed once.
    Create {
        /// Name of the workspace.
        #[arg(long)]
        name: String,
        /// Email address of its first admin.
        #[arg(long)]
        admin_email: String,
        /// Display name of a new admin (defaults to the email's local part).
        #[arg(long)]
        admin_name: Option<String>,
        /// File holding a new admin's password (first line).
        #[arg(long)]
        admin_password_file: Option<PathBuf>,
    },
    /// List the workspaces with their numbers of users and keys.
    List,
}

/// Raw settings, each from a flag or its environment variable. Kept as
/// strings so that every invalid value gets the same clear message and exit
/// code.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Database: a SQLite file path or a postgres:// URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "keyward.db",
        global = true
    )]
    pub database_url: String,
    /// Address and port to listen on.
    #[arg(
        long,
        env = "KEYWARD_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Secret for signing and encrypting session cookies (at least 32 bytes).
    #[arg(long, env = "KEYWARD_SECRET", hide_env_values = true, global = true)]
    pub secret: Option<String>,
    /// Mark cookies Secure (set to true behind HTTPS).
    #[arg(
        long,
        env = "KEYWARD_COOKIE_SECURE",
        default_value = "false",
        global = true
    )]
    pub cookie_secure: String,
    /// Minutes of inactivity after which a session ends.
    #[arg(
        long,
        env = "KEYWARD_SESSION_IDLE_MINUTES",
        default_value = "30",
        global = true
    )]
    pub session_idle_minutes: String,
    /// Hours after sign-in after which a session ends regardless of activity.
    #[arg(
        long,
        env = "KEYWARD_SESSION_MAX_HOURS",
        default_value = "12",
        global = true
    )]
    pub session_max_hours: String,
    /// Redis URL for rate limits shared by all instances (e.g.
    /// redis://127.0.0.1:6379); unset, each instance limits on its own.
    #[arg(long, env = "KEYWARD_REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<String>,
    /// Database connections per instance (default 8 on SQLite, 16 on PostgreSQL).
    #[arg(long, env = "KEYWARD_POOL_SIZE", global = true)]
    pub pool_size: Option<String>,
    /// Seconds between writes of buffered "last used" times and usage counts.
    #[arg(
        long,
        env = "KEYWARD_FLUSH_INTERVAL",
        default_value = "10",
        global = true
    )]
    pub flush_interval: String,
    /// Reverse proxies (comma-separated CIDRs) whose X-Forwarded-For is
    /// believed for the client address; empty: the TCP peer is the client.
    #[arg(
        long,
        env = "KEYWARD_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    pub trusted_proxies: String,
    /// The address people reach keyward at (e.g. https://keys.example.com),
    /// used in invitation and setup links; default: the bind address.
    #[arg(long, env = "KEYWARD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// During a database outage, keys verified before it keep verifying for
    /// this long after their last database read (e.g. 15m, 900s, 0 = off).
    #[arg(
        long,
        env = "KEYWARD_STALE_IF_ERROR",
        default_value = "15m",
        global = true
    )]
    pub stale_if_error: String,
    /// SQLite durability: full (every acknowledged commit survives a power
    /// cut) or normal (faster writes; the last commits may be lost).
    #[arg(
        long,
        env = "KEYWARD_SQLITE_SYNCHRONOUS",
        default_value = "full",
        global = true
    )]
    pub sqlite_synchronous: String,
    /// Address and port of the Prometheus metrics listener (e.g.
    /// 127.0.0.1:9464); unset, metrics are not served. Keep it private:
    /// it is a separate listener so it is never public by accident.
    #[arg(long, env = "KEYWARD_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// Log format: text (human-readable) or json (one object a line).
    #[arg(
        long,
        env = "KEYWARD_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: String,
    /// Prefix of new keys (e.g. acme_ gives acme_live_…); keys issued with
    /// another prefix keep working.
    #[arg(long, env = "KEYWARD_KEY_PREFIX", default_value = "sk_", global = true)]
    pub key_prefix: String,
    /// GitHub's secret scanning public keys (JSON as published at
    /// https://api.github.com/meta/public_keys/secret_scanning); unset, the
    /// GitHub leak endpoint refuses every alert.
    #[arg(long, env = "KEYWARD_GITHUB_KEYS_FILE", global = true)]
    pub github_keys_file: Option<std::path::PathBuf>,
    /// Where GitHub publishes those keys (normally
    /// https://api.github.com/meta/public_keys/secret_scanning): fetched
    /// when first needed, hourly, and when an alert names a key not known.
    #[arg(long, env = "KEYWARD_GITHUB_KEYS_URL", global = true)]
    pub github_keys_url: Option<String>,
    /// Operator keys for recoverable keys: a file of `id:base64-of-32-bytes`
    /// lines, the first the current one (docs/recoverable-keys.md); unset,
    /// no workspace can turn recoverable keys on.
    #[arg(long, env = "KEYWARD_RECOVERY_KEYS_FILE", global = true)]
    pub recovery_keys_file: Option<std::path::PathBuf>,
    /// Recent checks kept per key in its request log (0 turns the log off).
    #[arg(
        long,
        env = "KEYWARD_REQUEST_LOG_PER_KEY",
        default_value = "1000",
        global = true
    )]
    pub request_log_per_key: String,
    /// Days a key's request log keeps a check.
    #[arg(
        long,
        env = "KEYWARD_REQUEST_LOG_DAYS",
        default_value = "14",
        global = true
    )]
    pub request_log_days: String,
    /// Let webhooks reach loopback, private and link-local addresses
    /// (refused by default, so webhooks are no way into the network).
    #[arg(
        long,
        env = "KEYWARD_WEBHOOK_ALLOW_PRIVATE",
        default_value = "false",
        global = true
    )]
    pub webhook_allow_private: String,
    /// SMTP server for email (invitations aside: expiry reminders), e.g.
    /// smtps://user:pass@mail.example.com or
    /// smtp://mail.example.com:587?tls=required; unset: no email.
    #[arg(long, env = "KEYWARD_SMTP_URL", global = true)]
    pub smtp_url: Option<String>,
    /// The From address of keyward's email (needed with KEYWARD_SMTP_URL).
    #[arg(long, env = "KEYWARD_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// OpenID Connect providers people may sign in with: a JSON file, a
    /// list of {id, name, issuer, client_id, client_secret_file}
    /// (docs/sso.md); unset, sign-in is by password only.
    #[arg(long, env = "KEYWARD_OIDC_PROVIDERS_FILE", global = true)]
    pub oidc_providers_file: Option<std::path::PathBuf>,
    /// Emails that may still sign in with a password in workspaces that
    /// allow sign-in through SSO only (comma-separated), for when the
    /// provider is down.
    #[arg(long, env = "KEYWARD_SSO_BREAK_GLASS", global = true)]
    pub sso_break_glass: Option<String>,
}

/// How log lines are written (`KEYWARD_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object a line, for log pipelines.
    Json,
}

impl LogFormat {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(ConfigError::new(
                "KEYWARD_LOG_FORMAT",
                "must be text or json",
            )),
        }
    }
}

/// Which database to use, decided by the URL scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://` or `postgresql://` selects PostgreSQL; anything else is a
    /// SQLite file path (an optional `sqlite://` prefix is stripped).
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::new("DATABASE_URL", "must not be empty"));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(raw.to_owned()));
        }
        if raw.contains("://") && !raw.starts_with("sqlite://") {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must be a SQLite file path or a postgres:// URL",
            ));
        }
        let path = raw.strip_prefix("sqlite://").unwrap_or(raw);
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// A description that is safe to log (no password).
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("SQLite file {}", p.display()),
            DatabaseUrl::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                format!("PostgreSQL {scheme}://{host}")
            }
        }
    }
}

/// Validated configuration.
#[derive(Clone)]
pub struct Config {
    pub database: DatabaseUrl,
    pub bind: SocketAddr,
    /// Key material for the session cookie; at least 32 bytes.
    pub secret: Vec<u8>,
    pub cookie_secure: bool,
    pub session_idle: Duration,
    pub session_max: Duration,
    /// HTTP worker threads.
    pub workers: usize,
    /// How often buffered "last used" times are written.
    pub usage_flush_interval: Duration,
    /// Shared rate limits through Redis, when set.
    pub redis_url: Option<String>,
    /// Database connections per instance.
    pub pool_size: u32,
    /// Tuning of the key verifier (cache sizes and lifetimes).
    pub verifier: VerifierSettings,
    /// Proxies whose forwarded client address is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Base of links sent to people, without a trailing slash.
    pub public_url: Option<String>,
    /// How SQLite commits reach the disk.
    pub sqlite_synchronous: SqliteSync,
    /// Where Prometheus metrics are served; `None`: nowhere.
    pub metrics_bind: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Key prefix and leak reports (issue 25).
    pub leaks: LeakSettings,
    /// Whether webhooks may reach non-public addresses.
    pub webhook_allow_private: bool,
    /// Where email goes (`KEYWARD_SMTP_URL`); `None`: no email.
    pub smtp_url: Option<String>,
    /// The From address of email.
    pub smtp_from: Option<String>,
    /// How often keys are checked for expiry reminders.
    pub reminder_scan_every: Duration,
    /// Operator keys that seal recoverable keys' secrets
    /// (`KEYWARD_RECOVERY_KEYS_FILE`); `None`: recoverable keys cannot be
    /// turned on, and stored ones cannot be shown.
    pub recovery_keys: Option<crate::domain::recovery::OperatorKeys>,
    /// OpenID Connect providers (`KEYWARD_OIDC_PROVIDERS_FILE`); empty: none.
    pub oidc_providers: Vec<OidcProvider>,
    /// Break-glass emails, lower-case (`KEYWARD_SSO_BREAK_GLASS`).
    pub sso_break_glass: Vec<String>,
}

/// An OpenID Connect provider the operator configured.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcProvider {
    /// Short name in URLs (`/auth/oidc/{id}/…`) and the database.
    pub id: String,
    /// What the sign-in button says ("Sign in with {name}").
    pub name: String,
    /// The issuer URL; its metadata is discovered from it.
    pub issuer: String,
    pub client_id: String,
    /// Read from the file the configuration names; never logged.
    pub client_secret: String,
    /// Scopes asked for besides openid, email and profile (say `groups`).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The installation's key prefix and where GitHub's secret scanning keys
/// are read from.
#[derive(Debug, Clone)]
pub struct LeakSettings {
    /// Prefix of new keys (`KEYWARD_KEY_PREFIX`), validated.
    pub key_prefix: String,
    /// GitHub's public keys (`KEYWARD_GITHUB_KEYS_FILE`).
    pub github_keys_file: Option<std::path::PathBuf>,
    /// Where GitHub's public keys are fetched from (`KEYWARD_GITHUB_KEYS_URL`).
    pub github_keys_url: Option<String>,
}

impl Default for LeakSettings {
    fn default() -> Self {
        LeakSettings {
            key_prefix: crate::domain::keys::DEFAULT_PREFIX.to_owned(),
            github_keys_file: None,
            github_keys_url: None,
        }
    }
}

impl Config {
    /// This machine's address of the server on `port` (the bind address,
    /// with a wildcard one shown as 127.0.0.1).
    pub fn local_url(&self, port: u16) -> String {
        let host = match self.bind.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{port}")
    }

    /// Where people reach the server on `port`, for links it hands out:
    /// `KEYWARD_PUBLIC_URL` if set, else [`Config::local_url`].
    pub fn base_url(&self, port: u16) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| self.local_url(port))
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database.redacted())
            .field("bind", &self.bind)
            .field("secret", &"<redacted>")
            .field("cookie_secure", &self.cookie_secure)
            .field("session_idle", &self.session_idle)
            .field("session_max", &self.session_max)
            .field("workers", &self.workers)
            .field("usage_flush_interval", &self.usage_flush_interval)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("verifier", &self.verifier)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_url", &self.public_url)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("metrics_bind", &self.metrics_bind)
            .field("log_format", &self.log_format)
            .field("leaks", &self.leaks)
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("smtp_from", &self.smtp_from)
            .field("oidc_providers", &self.oidc_providers)
            .field("sso_break_glass", &self.sso_break_glass)
            .finish()
    }
}

/// An invalid setting: the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }
}

/// The operator keys in `path` (`KEYWARD_RECOVERY_KEYS_FILE`); a file that
/// cannot be read or holds no valid key stops start-up.
pub fn read_recovery_keys(
    path: &std::path::Path,
) -> Result<crate::domain::recovery::OperatorKeys, ConfigError> {
    const VAR: &str = "KEYWARD_RECOVERY_KEYS_FILE";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(VAR, format!("cannot be read ({}): {e}", path.display())))?;
    crate::domain::recovery::OperatorKeys::parse(&text)
        .map_err(|problem| ConfigError::new(VAR, format!("{}: {problem}", path.display())))
}

/// The providers listed in `path` (`KEYWARD_OIDC_PROVIDERS_FILE`), each
/// with its client secret read from its own file; anything wrong stops
/// start-up, naming the variable.
pub fn read_oidc_providers(path: &std::path::Path) -> Result<Vec<OidcProvider>, ConfigError> {
    const VAR: &str = "KEYWARD_OIDC_PROVIDERS_FILE";
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        id: String,
        name: String,
        issuer: String,
        client_id: String,
        client_secret_file: std::path::PathBuf,
        #[serde(default)]
        scopes: Vec<String>,
    }
    let bad = |problem: String| ConfigError::new(VAR, format!("{}: {problem}", path.display()));
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(VAR, format!("cannot be read ({}): {e}", path.display())))?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "must be a JSON list of {{\"id\", \"name\", \"issuer\", \"client_id\", \"client_secret_file\"}} ({e})"
        ))
    })?;
    let mut providers: Vec<OidcProvider> = Vec::new();
    for e in entries {
        let id = e.id.trim().to_owned();
        if id.is_empty()
            || id.len() > 40
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(format!(
                "provider id \"{id}\" must be 1 to 40 lower-case letters, digits or -"
            )));
        }
        if providers.iter().any(|p| p.id == id) {
            return Err(bad(format!("provider id \"{id}\" is listed twice")));
        }
        let name = e.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(bad(format!(
                "provider {id}: name must be 1 to 60 characters"
            )));
        }
        let issuer = e.issuer.trim().trim_end_matches('/').to_owned();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.contains(['?', '#', ' '])
        {
            return Err(bad(format!(
                "provider {id}: issuer must be an http(s) URL like https://login.example.com"
            )));
        }
        if let Some(scope) = e
            .scopes
            .iter()
            .find(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        {
            return Err(bad(format!(
                "provider {id}: scope \"{scope}\" is not a scope name"
            )));
        }
        if e.client_id.trim().is_empty() {
            return Err(bad(format!("provider {id}: client_id must not be empty")));
        }
        let secret_path = &e.client_secret_file;
        let client_secret = std::fs::read_to_string(secret_path)
            .map_err(|err| {
                bad(format!(
                    "provider {id}: client_secret_file {} cannot be read: {err}",
                    secret_path.display()
                ))
            })?
            .trim()
            .to_owned();
        if client_secret.is_empty() {
            return Err(bad(format!(
                "provider {id}: client_secret_file {} is empty",
                secret_path.display()
            )));
        }
        providers.push(OidcProvider {
            id,
            name,
            issuer,
            client_id: e.client_id.trim().to_owned(),
            client_secret,
            scopes: e.scopes,
        });
    }
    Ok(providers)
}

/// Minimum length of `KEYWARD_SECRET`.
pub const MIN_SECRET_LEN: usize = 32;

fn parse_bool(variable: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::new(variable, "must be true or false")),
    }
}

fn parse_range(variable: &'static str, raw: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            variable,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

impl Options {
    /// Validate the options. On SQLite without `KEYWARD_SECRET`, a secret is
    /// generated once and kept in a file beside the database (warned about
    /// in the log); PostgreSQL deployments must set it, because several
    /// instances have to share it.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let database = DatabaseUrl::parse(&self.database_url)?;
        let bind: SocketAddr = self.bind.trim().parse().map_err(|_| {
            ConfigError::new(
                "KEYWARD_BIND",
                "must be an address and port like 127.0.0.1:8080",
            )
        })?;
        let cookie_secure = parse_bool("KEYWARD_COOKIE_SECURE", &self.cookie_secure)?;
        let idle = parse_range(
            "KEYWARD_SESSION_IDLE_MINUTES",
            &self.session_idle_minutes,
            1,
            24 * 60,
        )?;
        let max = parse_range(
            "KEYWARD_SESSION_MAX_HOURS",
            &self.session_max_hours,
            1,
            24 * 30,
        )?;
        let secret = match (&self.secret, &database) {
            (Some(s), _) if s.len() >= MIN_SECRET_LEN => s.as_bytes().to_vec(),
            (Some(_), _) => {
                return Err(ConfigError::new(
                    "KEYWARD_SECRET",
                    format!("must be at least {MIN_SECRET_LEN} characters"),
                ));
            }
            (None, DatabaseUrl::Postgres(_)) => {
                return Err(ConfigError::new(
                    "KEYWARD_SECRET",
                    format!(
                        "is required with PostgreSQL (at least {MIN_SECRET_LEN} random characters, the same on every instance)"
                    ),
                ));
            }
            (None, DatabaseUrl::Sqlite(path)) => secret_beside(path)?,
        };
        let redis_url = match self.redis_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                redis::Client::open(url).map_err(|_| {
                    ConfigError::new(
                        "KEYWARD_REDIS_URL",
                        "must be a Redis URL like redis://127.0.0.1:6379",
                    )
                })?;
                Some(url.to_owned())
            }
        };
        let pool_size = match self.pool_size.as_deref() {
            Some(raw) => parse_range("KEYWARD_POOL_SIZE", raw, 1, 256)? as u32,
            None => match database {
                DatabaseUrl::Sqlite(_) => 8,
                DatabaseUrl::Postgres(_) => 16,
            },
        };
        let flush = parse_range("KEYWARD_FLUSH_INTERVAL", &self.flush_interval, 1, 3600)?;
        let trusted_proxies = parse_cidrs(&self.trusted_proxies)?;
        let shared_database = matches!(database, DatabaseUrl::Postgres(_));
        let sqlite_synchronous = match self.sqlite_synchronous.trim().to_ascii_lowercase().as_str()
        {
            "full" => SqliteSync::Full,
            "normal" => SqliteSync::Normal,
            _ => {
                return Err(ConfigError::new(
                    "KEYWARD_SQLITE_SYNCHRONOUS",
                    "must be full or normal",
                ));
            }
        };
        let stale_if_error =
            parse_duration("KEYWARD_STALE_IF_ERROR", &self.stale_if_error, 24 * 3600)?;
        let public_url = self
            .public_url
            .as_deref()
            .map(parse_public_url)
            .transpose()?;
        let metrics_bind = match self.metrics_bind.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    "KEYWARD_METRICS_BIND",
                    "must be an address and port like 127.0.0.1:9464",
                )
            })?),
        };
        if metrics_bind.is_some_and(|m| m.port() != 0 && m == bind) {
            return Err(ConfigError::new(
                "KEYWARD_METRICS_BIND",
                "must differ from KEYWARD_BIND",
            ));
        }
        let log_format = LogFormat::parse(&self.log_format)?;
        let key_prefix = crate::domain::keys::parse_prefix(&self.key_prefix)
            .map_err(|problem| ConfigError::new("KEYWARD_KEY_PREFIX", problem))?;
        let leaks = LeakSettings {
            key_prefix,
            github_keys_file: self
                .github_keys_file
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            github_keys_url: match self.github_keys_url.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    Some(u.to_owned())
                }
                Some(_) => {
                    return Err(ConfigError::new(
                        "KEYWARD_GITHUB_KEYS_URL",
                        "must be an http(s) URL, like https://api.github.com/meta/public_keys/secret_scanning",
                    ));
                }
            },
        };
        let request_log_per_key = parse_range(
            "KEYWARD_REQUEST_LOG_PER_KEY",
            &self.request_log_per_key,
            0,
            100_000,
        )? as u32;
        let request_log_days =
            parse_range("KEYWARD_REQUEST_LOG_DAYS", &self.request_log_days, 1, 3650)? as u32;
        let webhook_allow_private =
            parse_bool("KEYWARD_WEBHOOK_ALLOW_PRIVATE", &self.webhook_allow_private)?;
        let smtp_url = self
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let smtp_from = self
            .smtp_from
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if smtp_url.is_some() && !smtp_from.as_deref().is_some_and(|f| f.contains('@')) {
            return Err(ConfigError::new(
                "KEYWARD_SMTP_FROM",
                "must be set to an email address (like keyward@example.com) when KEYWARD_SMTP_URL is",
            ));
        }
        let recovery_keys = match &self.recovery_keys_file {
            Some(path) if !path.as_os_str().is_empty() => Some(read_recovery_keys(path)?),
            _ => None,
        };
        let oidc_providers = match &self.oidc_providers_file {
            Some(path) if !path.as_os_str().is_empty() => read_oidc_providers(path)?,
            _ => Vec::new(),
        };
        let sso_break_glass = self
            .sso_break_glass
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>();
        if let Some(bad) = sso_break_glass.iter().find(|e| !e.contains('@')) {
            return Err(ConfigError::new(
                "KEYWARD_SSO_BREAK_GLASS",
                format!("must be email addresses separated by commas (\"{bad}\" is not one)"),
            ));
        }
        Ok(Config {
            oidc_providers,
            sso_break_glass,
            recovery_keys,
            leaks,
            webhook_allow_private,
            smtp_url,
            smtp_from,
            reminder_scan_every: Duration::from_secs(60),
            metrics_bind,
            log_format,
            database,
            bind,
            secret,
            cookie_secure,
            session_idle: Duration::from_secs(idle * 60),
            session_max: Duration::from_secs(max * 3600),
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            usage_flush_interval: Duration::from_secs(flush),
            redis_url,
            pool_size,
            verifier: VerifierSettings {
                db_slots: pool_size as usize,
                stale_if_error,
                shared_database,
                request_log_per_key,
                request_log_days,
                ..VerifierSettings::default()
            },
            trusted_proxies,
            public_url: public_url.flatten(),
            sqlite_synchronous,
        })
    }
}

/// A duration: seconds, or a number with `s`, `m` or `h`; at most `max_secs`.
fn parse_duration(
    variable: &'static str,
    raw: &str,
    max_secs: u64,
) -> Result<Duration, ConfigError> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().last() {
        Some((i, c @ ('s' | 'm' | 'h'))) => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let secs = number.trim().parse::<u64>().ok().and_then(|n| match unit {
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        _ => Some(n),
    });
    match secs {
        Some(s) if s <= max_secs => Ok(Duration::from_secs(s)),
        _ => Err(ConfigError::new(
            variable,
            format!(
                "must be a duration like 900, 900s, 15m or 1h, at most {max_secs} seconds (0 turns it off)"
            ),
        )),
    }
}

/// Comma-separated CIDRs (a bare address is one host).
fn parse_cidrs(raw: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "KEYWARD_TRUSTED_PROXIES",
                        format!("must be addresses or CIDRs like 10.0.0.0/8, separated by commas (\"{s}\" is not)"),
                    )
                })
        })
        .collect()
}

/// An http(s) origin, optionally with a path, without query or fragment;
/// empty means unset.
fn parse_public_url(raw: &str) -> Result<Option<String>, ConfigError> {
    let raw = raw.trim().trim_end_matches('/');
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || {
        ConfigError::new(
            "KEYWARD_PUBLIC_URL",
            "must be an http:// or https:// address like https://keys.example.com, without ? or #",
        )
    };
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || raw.contains(['?', '#', ' ', '\\'])
        || raw.chars().any(char::is_control)
        || raw.parse::<actix_web::http::Uri>().is_err()
    {
        return Err(bad());
    }
    Ok(Some(raw.to_owned()))
}

/// Load or create `<database>.secret`, readable by the owner only.
fn secret_beside(db: &Path) -> Result<Vec<u8>, ConfigError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".secret");
    let path = PathBuf::from(name);
    let fail = |e: std::io::Error| {
        ConfigError::new(
            "KEYWARD_SECRET",
            format!("is unset and {} could not be used: {e}", path.display()),
        )
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= MIN_SECRET_LEN => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(ConfigError::new(
                "KEYWARD_SECRET",
                format!(
                    "is unset and {} is too short; delete it to have a new one made",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let secret = Alphanumeric.sample_string(&mut rand::rng(), 64);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(fail)?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(fail)?;
    tracing::warn!(
        file = %path.display(),
        "KEYWARD_SECRET is not set: generated a session secret and saved it beside the database; set KEYWARD_SECRET in production"
    );
    Ok(secret.into_bytes())
}

/// Tuning of the verifier.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Most keys cached.
    pub cache_capacity: u64,
    /// How long a found key stays cached without a change: only a safety
    /// net, since changes remove entries at once.
    pub cache_ttl: Duration,
    /// How long "no key has this digest" is cached.
    pub missing_ttl: Duration,
    /// Threads reading keys from the database for the hot path (the
    /// pool's size): more would only park threads waiting for a connection.
    pub db_slots: usize,
    /// Whether other instances share the database (PostgreSQL), so keys
    /// may appear that this one has not heard of yet.
    pub shared_database: bool,
    /// How long after its last database read a key that was valid keeps
    /// being answered from memory while the database cannot be reached
    /// (`KEYWARD_STALE_IF_ERROR`; zero: never).
    pub stale_if_error: Duration,
    /// Recent checks kept per key in the request log
    /// (`KEYWARD_REQUEST_LOG_PER_KEY`; zero: no log).
    pub request_log_per_key: u32,
    /// Days the request log keeps a check (`KEYWARD_REQUEST_LOG_DAYS`).
    pub request_log_days: u32,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        VerifierSettings {
            cache_capacity: 200_000,
            cache_ttl: Duration::from_secs(600),
            missing_ttl: Duration::from_secs(5),
            db_slots: 8,
            stale_if_error: Duration::from_secs(15 * 60),
            shared_database: false,
            request_log_per_key: 1000,
            request_log_days: 14,
        }
    }
}

/// How SQLite commits reach the disk (`KEYWARD_SQLITE_SYNCHRONOUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// Every commit is on disk before it is acknowledged: a revoke that
    /// was answered survives a power cut. The default.
    #[default]
    Full,
    /// Faster commits; with WAL the last commits before a power cut (not
    /// a crash of keyward) may be lost, a revoked key among them.
    Normal,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            database_url: "keyward.db".into(),
            bind: "127.0.0.1:8080".into(),
            secret: Some("s".repeat(40)),
            cookie_secure: "false".into(),
            session_idle_minutes: "30".into(),
            session_max_hours: "12".into(),
            redis_url: None,
            pool_size: None,
            flush_interval: "10".into(),
            trusted_proxies: String::new(),
            public_url: None,
            stale_if_error: "15m".into(),
            sqlite_synchronous: "full".into(),
            metrics_bind: None,
            log_format: "text".into(),
            key_prefix: "sk_".into(),
            github_keys_file: None,
            github_keys_url: None,
            recovery_keys_file: None,
            request_log_per_key: "1000".into(),
            request_log_days: "14".into(),
            webhook_allow_private: "false".into(),
            smtp_url: None,
            smtp_from: None,
            oidc_providers_file: None,
            sso_break_glass: None,
        }
    }

    #[test]
    fn oidc_providers_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let file = dir.path().join("providers.json");
        let write = |json: String| std::fs::write(&file, json).unwrap();
        let mut o = options();
        o.oidc_providers_file = Some(file.clone());
        write(format!(
            r#"[{{"id":"corp","name":"Corp","issuer":"https://login.example.com/","client_id":"kw","client_secret_file":{:?}}}]"#,
            secret.display().to_string()
        ));
        let providers = o.resolve().unwrap().oidc_providers;
        assert_eq!(providers[0].issuer, "https://login.example.com");
        assert_eq!(providers[0].client_secret, "s3cret");
        assert!(
            !format!("{providers:?}").contains("s3cret"),
            "the secret is never printed"
        );
        for bad in [
            "{}".to_owned(),
            r#"[{"id":"Corp!","name":"C","issuer":"https://x","client_id":"a","client_secret_file":"/nonexistent"}]"#.to_owned(),
            format!(
                r#"[{{"id":"corp","name":"C","issuer":"ftp://x","client_id":"a","client_secret_file":{:?}}}]"#,
                secret.display().to_string()
            ),
            r#"[{"id":"corp","name":"C","issuer":"https://x","client_id":"a","client_secret_file":"/nonexistent"}]"#.to_owned(),
        ] {
            write(bad.clone());
            assert_eq!(
                o.resolve().unwrap_err().variable,
                "KEYWARD_OIDC_PROVIDERS_FILE",
                "{bad}"
            );
        }
        o.oidc_providers_file = None;
        o.sso_break_glass = Some("root@example.com, nobody".into());
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_SSO_BREAK_GLASS");
        o.sso_break_glass = Some(" Root@Example.com ".into());
        assert_eq!(o.resolve().unwrap().sso_break_glass, ["root@example.com"]);
    }

    #[test]
    fn key_prefix_is_validated() {
        let mut o = options();
        o.key_prefix = "acme_".into();
        assert_eq!(o.resolve().unwrap().leaks.key_prefix, "acme_");
        o.key_prefix = "ACME".into();
        let e = o.resolve().unwrap_err();
        assert_eq!(e.variable, "KEYWARD_KEY_PREFIX");
    }

    #[test]
    fn database_url_picks_backend_by_scheme() {
        assert!(matches!(
            DatabaseUrl::parse("postgres://u:p@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgresql://h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert_eq!(
            DatabaseUrl::parse("postgres://u:hunter2@h:5432/db")
                .unwrap()
                .redacted(),
            "PostgreSQL postgres://h:5432/db"
        );
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let mut o = options();
        o.bind = "nonsense".into();
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_BIND");
        let mut o = options();
        o.secret = Some("short".into());
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_SECRET");
        let mut o = options();
        o.database_url = "postgres://h/db".into();
        o.secret = None;
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_SECRET");
        let mut o = options();
        o.cookie_secure = "maybe".into();
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_COOKIE_SECURE");
        let mut o = options();
        o.session_idle_minutes = "0".into();
        assert_eq!(
            o.resolve().unwrap_err().variable,
            "KEYWARD_SESSION_IDLE_MINUTES"
        );
        let mut o = options();
        o.redis_url = Some("not a url".into());
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_REDIS_URL");
        let mut o = options();
        o.pool_size = Some("0".into());
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_POOL_SIZE");
        let mut o = options();
        o.flush_interval = "0".into();
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_FLUSH_INTERVAL");
        for bad in ["9464", "localhost:9464", "127.0.0.1:8080"] {
            let mut o = options();
            o.metrics_bind = Some(bad.into());
            assert_eq!(
                o.resolve().unwrap_err().variable,
                "KEYWARD_METRICS_BIND",
                "{bad}"
            );
        }
        let mut o = options();
        o.log_format = "yaml".into();
        assert_eq!(o.resolve().unwrap_err().variable, "KEYWARD_LOG_FORMAT");
        let mut o = options();
        o.log_format = "JSON".into();
        o.metrics_bind = Some("127.0.0.1:9464".into());
        let c = o.resolve().unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.metrics_bind, Some("127.0.0.1:9464".parse().unwrap()));
        let mut o = options();
        o.sqlite_synchronous = "off".into();
        assert_eq!(
            o.resolve().unwrap_err().variable,
            "KEYWARD_SQLITE_SYNCHRONOUS"
        );
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/8,,x"] {
            let mut o = options();
            o.trusted_proxies = bad.into();
            assert_eq!(
                o.resolve().unwrap_err().variable,
                "KEYWARD_TRUSTED_PROXIES",
                "{bad}"
            );
        }
        for bad in [
            "keys.example.com",
            "ftp://x",
            "https://",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            let mut o = options();
            o.public_url = Some(bad.into());
            assert_eq!(
                o.resolve().unwrap_err().variable,
                "KEYWARD_PUBLIC_URL",
                "{bad}"
            );
        }
    }

    #[test]
    fn stale_if_error_takes_units_and_zero() {
        for (raw, secs) in [
            ("15m", 900),
            ("900", 900),
            ("30s", 30),
            ("1h", 3600),
            ("0", 0),
        ] {
            let mut o = options();
            o.stale_if_error = raw.into();
            assert_eq!(
                o.resolve().unwrap().verifier.stale_if_error.as_secs(),
                secs,
                "{raw}"
            );
        }
        for bad in ["", "soon", "-1", "2d", "25h"] {
            let mut o = options();
            o.stale_if_error = bad.into();
            assert_eq!(
                o.resolve().unwrap_err().variable,
                "KEYWARD_STALE_IF_ERROR",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn proxies_and_public_url_are_parsed() {
        let mut o = options();
        o.trusted_proxies = " 10.0.0.0/8, 127.0.0.1 ,::1".into();
        o.public_url = Some("https://keys.example.com/".into());
        let c = o.resolve().unwrap();
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(c.public_url.as_deref(), Some("https://keys.example.com"));
    }

    #[test]
    fn pool_size_defaults_per_backend_and_bounds_hot_path_reads() {
        let c = options().resolve().unwrap();
        assert_eq!((c.pool_size, c.verifier.db_slots), (8, 8));
        let mut o = options();
        o.pool_size = Some("4".into());
        o.redis_url = Some("redis://127.0.0.1:6379".into());
        let c = o.resolve().unwrap();
        assert_eq!((c.pool_size, c.verifier.db_slots), (4, 4));
        assert!(
            !format!("{c:?}").contains("6379"),
            "the Redis URL is not printed"
        );
    }

    #[test]
    fn sqlite_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options();
        o.secret = None;
        o.database_url = dir.path().join("k.db").display().to_string();
        let a = o.resolve().unwrap().secret;
        let b = o.resolve().unwrap().secret;
        assert_eq!(a, b);
        assert!(a.len() >= MIN_SECRET_LEN);
    }
}
