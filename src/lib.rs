//! keyward: self-hosted API key management.
//!
//! [`build`] assembles the whole application on a bound port; the binary
//! and the integration tests both start it that way.

pub mod api;
pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod state;
pub mod verify;
pub mod web;

use crate::config::Config;
use crate::error::AppError;
use crate::http::middleware::{
    ErrorScopes, csrf_guard, log_requests, reject_control_characters, render_errors, serve_metrics,
};
use crate::state::AppState;
use crate::web::errors::error_layout;
use actix_session::SessionMiddleware;
use actix_session::config::BrowserSession;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::{Condition, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web as aweb};
use std::net::TcpListener;
use std::sync::Arc;

/// This build: the package version and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KEYWARD_COMMIT"), ")");

/// The Content Security Policy: no inline script or style, nothing from
/// other origins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a stop (SIGTERM, SIGINT) may take from the signal to the
/// process's exit, whatever the database does: requests in flight get
/// [`DRAIN`], the last write of buffered usage [`FINAL_FLUSH`], and nothing
/// else on the way out waits (see `main`).
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the last write of buffered usage may take at a stop.
pub const FINAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);
/// How long requests in flight may take to finish at a stop; a second of
/// the grace is left for what happens between the steps.
const DRAIN: u64 = SHUTDOWN_GRACE.as_secs() - FINAL_FLUSH.as_secs() - 1;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] db::InitError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// A started server.
pub struct Running {
    /// The port actually bound (useful with port 0).
    pub port: u16,
    /// Await this to run the server until it stops.
    pub server: Server,
    /// The one-time first-run setup link, while no workspace exists.
    pub setup_url: Option<String>,
    pub state: aweb::Data<AppState>,
}

/// Open the pool and apply migrations, for a command-line run: it waits
/// up to [`db::COMMAND_LINE_WAIT`] for a connection.
pub fn open_database(config: &Config) -> Result<db::Pool, StartError> {
    let pool = db::pool_waiting(
        &config.database,
        config.pool_size,
        config.sqlite_synchronous,
        Arc::default(),
        db::COMMAND_LINE_WAIT,
    )?;
    migrate_pool(&pool)?;
    Ok(pool)
}

/// Open the server's pool (quick to give up: see [`db::pool_counting`]),
/// counting pool events into `events` for metrics, and apply migrations.
pub fn open_database_counting(
    config: &Config,
    events: Arc<metrics::PoolEvents>,
) -> Result<db::Pool, StartError> {
    let pool = db::pool_counting(
        &config.database,
        config.pool_size,
        config.sqlite_synchronous,
        events,
    )?;
    migrate_pool(&pool)?;
    Ok(pool)
}

fn migrate_pool(pool: &db::Pool) -> Result<(), StartError> {
    let mut conn = pool.get().map_err(db::InitError::from)?;
    let applied = db::migrate(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied database migrations");
    }
    Ok(())
}

/// Build the application and bind its listener. Start-up work that blocks
/// (connecting, migrating) runs off the async runtime.
pub async fn build(config: Config) -> Result<Running, StartError> {
    // SQLite serves one instance: claim the file before touching it.
    let instance_lock = match &config.database {
        config::DatabaseUrl::Sqlite(path) => Some(db::claim_sqlite(path)?),
        config::DatabaseUrl::Postgres(_) => None,
    };
    let db_config = config.clone();
    let pool_events = Arc::new(metrics::PoolEvents::default());
    let events = pool_events.clone();
    let (pool, needs_setup, digests) = aweb::block(move || -> Result<_, StartError> {
        let pool = open_database_counting(&db_config, events)?;
        let mut conn = pool.get().map_err(db::InitError::from)?;
        let exists =
            db::workspaces::any_exists(&mut conn).map_err(|e| StartError::Task(e.to_string()))?;
        let digests =
            db::keys::all_digests(&mut conn).map_err(|e| StartError::Task(e.to_string()))?;
        Ok((pool, !exists, digests))
    })
    .await
    .map_err(|e| StartError::Task(e.to_string()))??;
    tracing::info!(database = %config.database.redacted(), "database ready");

    let setup_token = needs_setup.then(domain::ids::new_token);
    let setup_digest = setup_token.as_deref().map(domain::ids::token_digest);
    let listener = TcpListener::bind(config.bind).map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| StartError::Task(e.to_string()))?
        .port();
    let base_url = config.base_url(port);
    let setup_url = setup_token.map(|t| format!("{base_url}/setup?token={t}"));

    let key = Key::derive_from(&config.secret);
    let secure = config.cookie_secure;
    let workers = config.workers;
    let limiter = match &config.redis_url {
        Some(url) => verify::limiter::Limiter::with_redis(url)
            .map_err(|e| StartError::Task(e.to_string()))?,
        None => verify::limiter::Limiter::local(),
    };
    let db_health = Arc::new(db::health::DbHealth::default());
    let verifier = Arc::new(verify::Verifier::new(
        &config.verifier,
        limiter,
        db_health.clone(),
    ));
    verifier.index.load(digests);
    if let config::DatabaseUrl::Postgres(url) = &config.database {
        // Other instances' changes arrive through LISTEN/NOTIFY.
        verify::feed::spawn(url.clone(), Arc::downgrade(&verifier))
            .map_err(|e| StartError::Task(e.to_string()))?;
    }
    // Metrics get a listener of their own, so that they are only ever
    // reachable where the operator chose.
    let metrics_listener = match config.metrics_bind {
        Some(addr) => {
            Some(TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?)
        }
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(
            l.local_addr()
                .map_err(|e| StartError::Task(e.to_string()))?,
        ),
        None => None,
    };
    let metrics = Arc::new(metrics::Metrics::new(&verifier, config.pool_size));
    let mut state = AppState::new(pool, config, setup_digest, verifier);
    state.metrics = metrics.clone();
    state.pool_events = pool_events;
    state.metrics_port = metrics_addr.map(|a| a.port());
    state.instance_lock = instance_lock;
    state.base_url = base_url;
    state.db_health = db_health;
    let state = aweb::Data::new(state);
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        // Each worker counts requests in its own map: no lock shared
        // between workers on the hot path.
        let http = std::rc::Rc::new(metrics::HttpCounters::new(metrics.http.clone()));
        // Each surface says how the errors of its scopes look.
        let scopes = ErrorScopes::new([web::error_scopes(), api::error_scopes()].concat());
        let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name("keyward_session".to_owned())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Strict)
            .session_lifecycle(BrowserSession::default())
            .build();
        App::new()
            .app_data(app_state.clone())
            .app_data(
                aweb::FormConfig::default()
                    .limit(256 * 1024)
                    .error_handler(|err, _| {
                        AppError::BadRequest(format!(
                            "The form could not be read ({err}); nothing was changed."
                        ))
                        .into()
                    }),
            )
            .app_data(aweb::QueryConfig::default().error_handler(|err, _| {
                AppError::BadRequest(format!("The address has an invalid parameter ({err})."))
                    .into()
            }))
            .configure(api::configure)
            .configure(web::configure)
            .default_service(aweb::to(|| async {
                Err::<actix_web::HttpResponse, _>(AppError::NotFound)
            }))
            .wrap(from_fn(csrf_guard))
            .wrap(from_fn(reject_control_characters))
            .wrap(from_fn(error_layout))
            .wrap(session)
            .wrap(from_fn(move |req, next| {
                render_errors(req, next, scopes.clone())
            }))
            .wrap(
                DefaultHeaders::new()
                    .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("X-Frame-Options", "DENY"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add(("Cross-Origin-Opener-Policy", "same-origin"))
                    .add(("Cache-Control", "no-store")),
            )
            .wrap(Condition::new(
                secure,
                // Behind HTTPS (secure cookies), browsers must never fall
                // back to plain HTTP for this host.
                DefaultHeaders::new().add((
                    "Strict-Transport-Security",
                    "max-age=31536000; includeSubDomains",
                )),
            ))
            .wrap(from_fn(move |req, next| {
                log_requests(req, next, http.clone())
            }))
            .wrap(from_fn(move |req, next| {
                serve_metrics(req, next, metrics_addr)
            }))
    })
    .workers(workers)
    .shutdown_timeout(DRAIN)
    .listen(listener)
    .map_err(|source| StartError::Bind {
        addr: state.config.bind,
        source,
    })?;
    let server = match metrics_listener {
        Some(l) => server.listen(l).map_err(|source| StartError::Bind {
            addr: metrics_addr.unwrap_or(state.config.bind),
            source,
        })?,
        None => server,
    }
    .run();
    if let Some(addr) = metrics_addr {
        tracing::info!(address = %addr, "metrics are served at /metrics");
    }

    // Write coalesced "last used" times every few seconds.
    let flusher = state.clone();
    let every = state.config.usage_flush_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = flusher.clone();
            let _ = aweb::block(move || {
                s.verifier.flush(&s.pool);
                if let Some((free, took)) = memory::give_back_free_memory() {
                    tracing::debug!(
                        free_mib = free >> 20,
                        ms = took.as_secs_f64() * 1000.0,
                        "returned free memory to the system"
                    );
                }
            })
            .await;
        }
    });
    // Deliver the outbox (webhooks).
    notify::spawn(state.clone().into_inner());
    Ok(Running {
        port,
        server,
        setup_url,
        state,
    })
}

#[cfg(test)]
mod failures_answer_alike {
    //! Each surface has one translation of the use cases' failure type;
    //! this table shows they answer every failure with the same status.

    use crate::app::Error;
    use crate::domain::input::FieldError;
    use actix_web::ResponseError;
    use actix_web::http::StatusCode;

    fn every_failure() -> Vec<(Error, StatusCode)> {
        let closed = || {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection,
                Box::new("server closed the connection unexpectedly".to_owned()),
            )
        };
        vec![
            (Error::NotFound, StatusCode::NOT_FOUND),
            (Error::RoleForbids, StatusCode::FORBIDDEN),
            (Error::Forbidden("no".into()), StatusCode::FORBIDDEN),
            (
                Error::conflict("KEY_REVOKED", "revoked"),
                StatusCode::CONFLICT,
            ),
            (
                Error::Invalid(vec![FieldError::new("name", "Enter a name.")]),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Error::Unprocessable {
                    code: "IDEMPOTENCY_KEY_REUSED",
                    message: "reused".into(),
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (Error::BadRequest("bad".into()), StatusCode::BAD_REQUEST),
            (
                Error::TooManyRequests {
                    message: "wait".into(),
                    retry_after_secs: 60,
                },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (Error::Gone("used".into()), StatusCode::GONE),
            (Error::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (
                Error::OutcomeUnknown(crate::db::health::commit_failed(closed())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (Error::NotSaved(closed()), StatusCode::SERVICE_UNAVAILABLE),
            (Error::Db(closed()), StatusCode::SERVICE_UNAVAILABLE),
            (
                Error::Db(diesel::result::Error::NotFound),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                Error::Internal("oops".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ]
    }

    #[test]
    fn pages_and_api_answer_every_failure_with_one_status() {
        // Built twice: the failure type is not Clone (it holds database
        // errors), and each surface consumes its own.
        let pages = every_failure();
        let api = every_failure();
        for ((for_pages, expected), (for_api, _)) in pages.into_iter().zip(api) {
            let label = for_pages.to_string();
            let page = crate::error::AppError::from(for_pages).status_code();
            let problem = crate::api::problem::ApiError::from(for_api).status;
            assert_eq!(page, expected, "page answer to {label}");
            assert_eq!(problem, expected, "API answer to {label}");
        }
    }
}

#[cfg(test)]
mod module_graph {
    //! The shape of the code (docs/architecture.md): data flows one way
    //! between the top-level modules, and the two surfaces never import
    //! each other. Read from the source, so a new import that breaks the
    //! shape fails here.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    const MODULES: [&str; 13] = [
        "api", "app", "config", "db", "domain", "error", "http", "memory", "metrics", "notify",
        "state", "verify", "web",
    ];

    fn sources(path: &Path, out: &mut String) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                sources(&entry.unwrap().path(), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }

    fn graph() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph = BTreeMap::new();
        for module in MODULES {
            let mut text = String::new();
            let dir = src.join(module);
            if dir.is_dir() {
                sources(&dir, &mut text);
            } else {
                sources(&src.join(format!("{module}.rs")), &mut text);
            }
            let uses = MODULES
                .into_iter()
                .filter(|other| *other != module)
                .filter(|other| {
                    let needle = format!("crate::{other}");
                    text.match_indices(&needle).any(|(i, _)| {
                        !text[i + needle.len()..]
                            .starts_with(|c: char| c == '_' || c.is_alphanumeric())
                    })
                })
                .collect();
            graph.insert(module, uses);
        }
        graph
    }

    #[test]
    fn the_surfaces_never_import_each_other() {
        let g = graph();
        assert!(!g["web"].contains("api"), "web imports api");
        assert!(!g["api"].contains("web"), "api imports web");
        for inner in ["app", "db", "domain", "verify", "config"] {
            for surface in ["web", "api", "http"] {
                assert!(!g[inner].contains(surface), "{inner} imports {surface}");
            }
        }
    }

    #[test]
    fn no_cycle_among_top_level_modules() {
        let g = graph();
        // Depth-first search for a path from a module back to itself.
        fn reaches(
            g: &BTreeMap<&'static str, BTreeSet<&'static str>>,
            from: &'static str,
            to: &'static str,
            seen: &mut BTreeSet<&'static str>,
        ) -> bool {
            g[from]
                .iter()
                .any(|next| *next == to || (seen.insert(next) && reaches(g, next, to, seen)))
        }
        for module in MODULES {
            assert!(
                !reaches(&g, module, module, &mut BTreeSet::new()),
                "{module} reaches itself: {g:?}"
            );
        }
    }
}
