//! The `keyward` binary: parse the command line, load configuration, run.

use clap::Parser;
use keyward::config::{Cli, Command, Config, LogFormat, WorkspaceCommand};
use keyward::db::users::{self, FirstAdmin, UserChangeError};
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
        Command::Serve => {
            let system = actix_web::rt::System::new();
            let result = system.block_on(serve(config));
            // Not dropped: dropping the runtime waits, without any bound,
            // for blocking work still running (a page's or a flush's
            // database call stuck on a lock until its statement timeout,
            // once per statement). Everything worth keeping was written, or
            // reported as not written, by now; the process ends here.
            std::mem::forget(system);
            result
        }
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
        Command::Workspace { command } => match command {
            WorkspaceCommand::Create {
                name,
                admin_email,
                admin_name,
                admin_password_file,
            } => create_workspace(
                &config,
                &name,
                &admin_email,
                admin_name.as_deref(),
                admin_password_file.as_deref(),
            ),
            WorkspaceCommand::List => list_workspaces(&config),
        },
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
    let links = config.clone();
    let running = keyward::build(config).await.map_err(|e| e.to_string())?;
    tracing::info!(address = %bind, port = running.port, "keyward is listening");
    match &running.setup_url {
        Some(url) => println!(
            "\nkeyward is not set up yet. To create the first workspace and admin, open:\n\n    {url}\n\nThe link works once, until setup is done.\n"
        ),
        None => {
            println!(
                "\nkeyward is running: {}/login\n",
                links.local_url(running.port)
            );
        }
    }
    let state = running.state.clone();
    let result = running.server.await.map_err(|e| e.to_string());
    // Graceful shutdown: write what is buffered, within the grace (what
    // the database does not take in time is logged).
    state
        .verifier
        .flush_before_exit(&state.pool, keyward::FINAL_FLUSH);
    tracing::info!("keyward stopped");
    result
}

/// The first line of a password file, checked like a chosen password.
fn read_password(path: &std::path::Path, flag: &str) -> Result<NewPassword, String> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let password = raw.lines().next().unwrap_or_default();
    NewPassword::parse(password, password).map_err(|e| format!("{flag}: {e}"))
}

/// A display name: the one given, else the email's local part.
fn admin_name(name: Option<&str>, email: &Email) -> Result<PersonName, String> {
    let default_name = email
        .as_str()
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    PersonName::parse(name.unwrap_or(&default_name)).map_err(|e| format!("--admin-name: {e}"))
}

/// `keyward workspace create`: a workspace with its first admin, audited in
/// the new workspace.
fn create_workspace(
    config: &Config,
    workspace: &str,
    email: &str,
    name: Option<&str>,
    password_file: Option<&std::path::Path>,
) -> Result<(), String> {
    let workspace = WorkspaceName::parse(workspace).map_err(|e| format!("--name: {e}"))?;
    let email = Email::parse(email).map_err(|e| format!("--admin-email: {e}"))?;
    let name = admin_name(name, &email)?;
    let password = password_file
        .map(|f| read_password(f, "--admin-password-file"))
        .transpose()?;
    let pool = keyward::open_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let hash = password
        .map(|p| keyward::domain::password::hash(p.as_str()))
        .transpose()
        .map_err(|e| e.to_string())?;
    let token = keyward::domain::ids::new_token();
    let digest = keyward::domain::ids::token_digest(&token);
    let first_admin = match &hash {
        Some(hash) => FirstAdmin::Password(hash),
        None => FirstAdmin::Invite(&digest),
    };
    let made = users::create_workspace(
        &mut conn,
        &workspace.into_inner(),
        email.as_str(),
        &name.into_inner(),
        first_admin,
        "keyward workspace create (command line)",
    )
    .map_err(|e| e.to_string())?;
    let ws = &made.workspace;
    println!("Created workspace \"{}\" ({}).", ws.name, ws.id);
    if !made.new_person {
        println!(
            "{} already has an account: they are its admin now and sign in as before.",
            made.admin.email
        );
        if hash.is_some() {
            println!("Their password was left unchanged; the password file was not used.");
        }
    } else if hash.is_some() {
        println!(
            "{} is its admin and signs in with the password from the file.",
            made.admin.email
        );
    } else {
        println!(
            "{} is its admin. Send them this link to choose a password (it is shown only now and works once, for 7 days):\n\n    {}/invite/{token}\n",
            made.admin.email,
            config.base_url(config.bind.port())
        );
    }
    Ok(())
}

/// `keyward workspace list`.
fn list_workspaces(config: &Config) -> Result<(), String> {
    let pool = keyward::open_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let all = keyward::db::workspaces::summaries(&mut conn).map_err(|e| e.to_string())?;
    if all.is_empty() {
        println!(
            "No workspaces yet: run `keyward serve` and open the setup link, or `keyward setup`."
        );
        return Ok(());
    }
    println!(
        "{:<26}  {:<20}  {:>5}  {:>7}  NAME",
        "ID", "CREATED (UTC)", "USERS", "KEYS"
    );
    for s in all {
        println!(
            "{:<26}  {:<20}  {:>5}  {:>7}  {}",
            s.workspace.id,
            s.workspace.created_at.format("%Y-%m-%d %H:%M:%S"),
            s.members,
            s.keys,
            s.workspace.name
        );
    }
    Ok(())
}

/// Non-interactive first-run setup, for automation.
fn setup(
    config: &Config,
    workspace: &str,
    email: &str,
    name: Option<&str>,
    password_file: &std::path::Path,
) -> Result<(), String> {
    let workspace = WorkspaceName::parse(workspace).map_err(|e| format!("--workspace: {e}"))?;
    let email = Email::parse(email).map_err(|e| format!("--admin-email: {e}"))?;
    let name = admin_name(name, &email)?;
    let password = read_password(password_file, "--admin-password-file")?;
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
