//! The `keyward` binary: parse the command line, load configuration, run.

use clap::Parser;
use keyward::config::{Cli, Command, Config, LogFormat, RecoveryCommand, WorkspaceCommand};
use keyward::db::users::{self, FirstAdmin, UserChangeError};
use keyward::domain::input::{Email, NewPassword, PersonName, WorkspaceName};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    keyward::memory::tune_allocator();
    let cli = Cli::parse();
    // What ships in the package, generated from this very command line
    // (no configuration needed, nothing logged).
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Into memory first: the generator panics on a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut command, "keyward", &mut script);
            return print_bytes(&script);
        }
        Some(Command::Manpage) => {
            let command = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            return match clap_mangen::Man::new(command).render(&mut page) {
                Ok(()) => print_bytes(&page),
                Err(e) => {
                    eprintln!("keyward: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
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
    // Colour only on a terminal: a file, a pipe or the journal gets plain
    // text (and NO_COLOR turns it off everywhere).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_ansi(colour)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
        // One object a line; the request's span (its `request_id`) is on
        // every line written while a request is handled.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_ansi(false)
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
        Command::Backup { file } => backup(&config, &file),
        Command::Completions { .. } | Command::Manpage => Ok(()),
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
        Command::Recovery {
            command: RecoveryCommand::Rewrap,
        } => rewrap(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyward: {message}");
            ExitCode::from(1)
        }
    }
}

/// Write generated output to stdout; a reader that went away (`| head`)
/// is not an error worth a message.
fn print_bytes(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::from(1)
        }
    }
}

/// `keyward backup <file>`.
fn backup(config: &Config, file: &std::path::Path) -> Result<(), String> {
    match &config.database {
        keyward::config::DatabaseUrl::Sqlite(db) => {
            let written = keyward::db::backup::sqlite(db, file)?;
            println!(
                "Backup written to {} ({} keys, {} events; integrity ok).",
                written.file.display(),
                written.keys,
                written.events
            );
            match written.secret {
                Some(secret) => println!(
                    "The session secret was copied to {}: keep it with the backup.",
                    secret.display()
                ),
                None => println!(
                    "KEYWARD_SECRET is set for this database: keep it with the backup."
                ),
            }
            Ok(())
        }
        keyward::config::DatabaseUrl::Postgres(_) => Err(
            "keyward backup copies a SQLite database. On PostgreSQL use pg_dump (see docs/operations.md, Backups), and keep KEYWARD_SECRET with the dump."
                .into(),
        ),
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let bind = config.bind;
    let links = config.clone();
    tracing::info!(version = keyward::VERSION, "keyward starting");
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
/// `keyward recovery rewrap`: every stored secret sealed again under the
/// current operator key, in one transaction.
fn rewrap(config: &Config) -> Result<(), String> {
    let Some(keys) = &config.recovery_keys else {
        return Err(
            "KEYWARD_RECOVERY_KEYS_FILE is not set: it names the operator keys (the current one first) to re-encrypt with".into(),
        );
    };
    let pool = keyward::open_database(config).map_err(|e| e.to_string())?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let done = keyward::db::secrets::rewrap_all(&mut conn, keys).map_err(|e| e.to_string())?;
    println!(
        "Re-encrypted {} stored secret{} under the operator key \"{}\"; {} already used it.",
        done.rewrapped,
        if done.rewrapped == 1 { "" } else { "s" },
        keys.current_id(),
        done.current
    );
    Ok(())
}

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
