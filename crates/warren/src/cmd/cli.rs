//! The client commands of `warren` (`create`, `ls`, `exec`, `cp`, ...):
//! thin over [`warren_client`], human tables by default and `--json`
//! everywhere, errors printed as `error: CODE: detail` with exit code 1.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde::Serialize;
use warren_client::Client;

use super::{checkpoints, cp, desktop, events, exec, keys, sandboxes, sessions, shell, templates};

/// The commands that speak to a Warren server.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a sandbox and print its id.
    Create(sandboxes::CreateArgs),
    /// List sandboxes.
    Ls(sandboxes::LsArgs),
    /// Show one sandbox.
    Inspect(sandboxes::IdArgs),
    /// Destroy sandboxes.
    Rm(sandboxes::RmArgs),
    /// Push a sandbox's expiry further.
    Extend(sandboxes::ExtendArgs),
    /// Stop every process of a sandbox, keeping its disk.
    Stop(sandboxes::IdArgs),
    /// Start a stopped sandbox.
    Start(sandboxes::IdArgs),
    /// Hibernate a sandbox: no compute, disk kept.
    Hibernate(sandboxes::IdArgs),
    /// Wake a hibernated sandbox.
    Wake(sandboxes::IdArgs),
    /// Follow sandbox state changes as they happen, one line each.
    Events(events::EventsArgs),
    /// Run a command in a sandbox, streaming its output; exits with its exit code.
    Exec(exec::ExecArgs),
    /// Run a command in a new sandbox that is destroyed afterwards.
    Run(exec::RunArgs),
    /// List the managed processes of a sandbox.
    Ps(exec::PsArgs),
    /// Print the output of a managed process.
    Logs(exec::LogsArgs),
    /// Open an interactive terminal in a sandbox (detach with Ctrl-]).
    Shell(shell::ShellArgs),
    /// Copy files and directories: `cp LOCAL ID:PATH` or `cp ID:PATH LOCAL`.
    Cp(cp::CpArgs),
    /// Checkpoints of sandboxes.
    #[command(subcommand)]
    Checkpoint(checkpoints::CheckpointCommand),
    /// Give a sandbox the disk of one of its checkpoints, in place.
    Restore(checkpoints::RestoreArgs),
    /// Make new sandboxes from a snapshot of one.
    Fork(checkpoints::ForkArgs),
    /// Templates of the server.
    #[command(subcommand)]
    Template(templates::TemplateCommand),
    /// Coding-agent sessions (Claude Code, Codex, OpenCode, mock) in a sandbox.
    #[command(subcommand)]
    Session(sessions::SessionCommand),
    /// The desktop of a sandbox: start, stop, status, screenshots.
    #[command(subcommand)]
    Desktop(desktop::DesktopCommand),
    /// Tenants of the server (admin key).
    #[command(subcommand)]
    Tenant(keys::TenantCommand),
    /// API keys of tenants (admin key).
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Warm pools: sandboxes kept ready so creates start in milliseconds
    /// (admin key).
    #[command(subcommand)]
    Pool(keys::PoolCommand),
}

/// `--json`, shared by every client command.
#[derive(Debug, Clone, Copy, Args)]
pub struct Output {
    /// Print JSON instead of a human table.
    #[arg(long)]
    pub json: bool,
}

/// Failures of the client commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server (or the way to it) failed.
    #[error("{0}")]
    Client(#[from] warren_client::Error),
    /// A local file operation failed.
    #[error("{what} {path}: {source}")]
    Local {
        /// What was being done.
        what: &'static str,
        /// The local path.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The arguments make no sense together.
    #[error("{0}")]
    Usage(String),
    /// A value could not be printed as JSON.
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A background task (tar packing or unpacking) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Results of the client commands: `Ok(code)` is the process exit code.
pub type CliResult = Result<i32, CliError>;

/// Runs a client command and exits with its code (1 and a message on errors).
pub fn run(command: ClientCommand) -> ! {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(1)
        }
    };
    let code = runtime.block_on(async move {
        let client = Client::from_env()?;
        dispatch(&client, command).await
    });
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}

async fn dispatch(client: &Client, command: ClientCommand) -> CliResult {
    match command {
        ClientCommand::Create(args) => sandboxes::create(client, args).await,
        ClientCommand::Ls(args) => sandboxes::ls(client, args).await,
        ClientCommand::Inspect(args) => sandboxes::inspect(client, args).await,
        ClientCommand::Rm(args) => sandboxes::rm(client, args).await,
        ClientCommand::Extend(args) => sandboxes::extend(client, args).await,
        ClientCommand::Stop(args) => {
            sandboxes::lifecycle(client, args, sandboxes::Action::Stop).await
        }
        ClientCommand::Start(args) => {
            sandboxes::lifecycle(client, args, sandboxes::Action::Start).await
        }
        ClientCommand::Hibernate(args) => {
            sandboxes::lifecycle(client, args, sandboxes::Action::Hibernate).await
        }
        ClientCommand::Wake(args) => {
            sandboxes::lifecycle(client, args, sandboxes::Action::Wake).await
        }
        ClientCommand::Events(args) => events::events(client, args).await,
        ClientCommand::Exec(args) => exec::exec(client, args).await,
        ClientCommand::Run(args) => exec::run(client, args).await,
        ClientCommand::Ps(args) => exec::ps(client, args).await,
        ClientCommand::Logs(args) => exec::logs(client, args).await,
        ClientCommand::Shell(args) => shell::shell(client, args).await,
        ClientCommand::Cp(args) => cp::cp(client, args).await,
        ClientCommand::Checkpoint(command) => checkpoints::checkpoint(client, command).await,
        ClientCommand::Restore(args) => checkpoints::restore(client, args).await,
        ClientCommand::Fork(args) => checkpoints::fork(client, args).await,
        ClientCommand::Template(command) => templates::template(client, command).await,
        ClientCommand::Session(command) => sessions::session(client, command).await,
        ClientCommand::Desktop(command) => desktop::desktop(client, command).await,
        ClientCommand::Tenant(command) => keys::tenant(client, command).await,
        ClientCommand::Key(command) => keys::key(client, command).await,
        ClientCommand::Pool(command) => keys::pool(client, command).await,
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(value: &impl Serialize) -> CliResult {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(0)
}

/// Prints rows under a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// `k=v,k2=v2` for a table cell.
pub fn pairs(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `KEY=VALUE` arguments into a map.
pub fn parse_pairs(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::Usage(format!("--{flag} {item:?} is not KEY=VALUE")))
        })
        .collect()
}
