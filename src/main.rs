//! The `keyward` binary: parse the command line, load configuration, run.

use clap::Parser;
use keyward::config::{Cli, Command, Config, LogFormat};
use keyward::db::users::{self, UserChangeError};
use keyward::domain::input::{Email, NewPassword, PersonName, WorkspaceName};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    keyward::memory::limit_malloc_arenas();
    let cli = Cli::parse();
    // The log format is read first, so that everything after it (warnings
    // about the configuration included) is written in it.
    let format = match LogFormat::parse(&cli.options.log_format) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::from(1);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        // One object a line; the request's span (its `request_id`) is on
        // every line written while a request is handled.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let config = match cli.options.resolve() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(serve(config)),
        Command::Migrate => keyward::open_database(&config)
            .map(|_| println!("Database is up to date."))
            .map_err(|e| e.to_string()),
        Command::Setup {
            workspace,
            admin_email,
            admin_name,
            admin_password_file,
        } => setup(
            &config,
            &workspace,
            &admin_email,
            admin_name.as_deref(),
            &admin_password_file,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyward: {message}");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind;
    let running = keyward::build(config).await.map_err(|e| e.to_string())?;
    tracing::info!(address = %bind, port = running.port, "keyward is listening");
    match &running.setup_url {
        Some(url) => println!(
            "\nkeyward is not set up yet. To create the first workspace and admin, open:\n\n    {url}\n\nThe link works once, until setup is done.\n"
        ),
        None => {
            let host = match bind.ip() {
                ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            println!(
                "\nkeyward is running: http://{host}:{}/login\n",
                running.port
            );
        }
    }
    let state = running.state.clone();
    let result = running.server.await.map_err(|e| e.to_string());
    // Graceful shutdown: nothing buffered is lost.
    state.verifier.flush(&state.pool);
    tracing::info!("keyward stopped");
    result
}

/// Non-interactive first-run setup, for automation.
fn setup(
    config: &Config,
    workspace: &str,
    email: &str,
    name: Option<&str>,
    password_file: &std::path::Path,
) -> Result<(), String> {
    let raw = std::fs::read_to_string(password_file)
        .map_err(|e| format!("cannot read {}: {e}", password_file.display()))?;
    let password = raw.lines().next().unwrap_or_default();
    let workspace = WorkspaceName::parse(workspace).map_err(|e| format!("--workspace: {e}"))?;
    let email = Email::parse(email).map_err(|e| format!("--admin-email: {e}"))?;
    let default_name = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let name = PersonName::parse(name.unwrap_or(&default_name))
        .map_err(|e| format!("--admin-name: {e}"))?;
    let password = NewPassword::parse(password, password)
        .map_err(|e| format!("--admin-password-file: {e}"))?;
    let pool = keyward::open_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let hash = keyward::domain::password::hash(password.as_str()).map_err(|e| e.to_string())?;
    match users::setup_first_workspace_retrying(
        &mut conn,
        &workspace.into_inner(),
        email.as_str(),
        &name.into_inner(),
        &hash,
        None,
        Some("keyward setup (command line)".into()),
    ) {
        Ok((ws, admin)) => {
            println!(
                "Created workspace \"{}\" with admin {}.",
                ws.name, admin.email
            );
            Ok(())
        }
        Err(UserChangeError::AlreadySetUp) => {
            Err("setup has already been completed; nothing was changed".into())
        }
        Err(e) => Err(e.to_string()),
    }
}
