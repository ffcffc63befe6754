//! Integration tests: the real application over HTTP, on a fresh real
//! database per test (SQLite by default; PostgreSQL when
//! KEYWARD_TEST_DATABASE_URL is set). Browser tests are opt-in (ignored).

mod helpers;

mod admin;
mod allowlists;
mod api;
mod auth;
mod browser;
mod caddy;
mod cli;
mod content;
mod engine;
mod forward_auth;
mod gateways;
mod hardening;
mod in_doubt;
mod keys;
mod leaks;
mod management_api;
mod nginx;
mod notify;
mod ops;
mod outage;
mod package;
mod plans;
mod quotas;
mod recover;
mod requests;
mod resilience;
mod scanner;
mod search;
mod security;
mod service_accounts;
mod setup;
mod sso;
mod tenants;
mod upgrade;
mod users;
