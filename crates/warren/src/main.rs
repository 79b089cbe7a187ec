//! The `warren` binary: dispatches to the library crates and decides nothing
//! itself. `warren agent` runs the in-sandbox daemon ([`warren_agent`]).

mod cmd;

use clap::{Parser, Subcommand};

/// Self-hosted sandboxes for AI agents.
#[derive(Debug, Parser)]
#[command(name = "warren", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent daemon (inside a sandbox, or standalone on any Linux host).
    Agent(cmd::agent::AgentArgs),
    /// Run the control plane: the sandbox API, state and runtime of this machine.
    Server(cmd::server::ServerArgs),
    /// Internal: start one sandbox (spec on stdin, report on stdout). Run by
    /// the namespace runtime as a fresh single-threaded process.
    #[command(name = "__sandbox-init", hide = true)]
    SandboxInit,
    /// Internal: the namespace runtime's zygote, which forks a helper per
    /// sandbox (requests on stdin). Started once by the server.
    #[command(name = "__sandbox-zygote", hide = true)]
    SandboxZygote {
        /// The cgroup parent of the server's sandboxes, under which the
        /// zygote makes spare cgroups.
        #[arg(long)]
        cgroup_parent: Option<String>,
    },
    /// The client commands (`create`, `ls`, `exec`, `shell`, `cp`, ...), which
    /// speak to the server at `WARREN_URL` with `WARREN_API_KEY`.
    #[command(flatten)]
    Client(cmd::cli::ClientCommand),
}

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "agent") {
        return cmd::agent::run(cmd::agent::parse(std::env::args_os()));
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(args) => cmd::agent::run(args),
        Command::Server(args) => cmd::server::run(args),
        Command::SandboxInit => cmd::sandbox_init::run(),
        Command::SandboxZygote { cgroup_parent } => {
            cmd::sandbox_init::zygote(cgroup_parent.as_deref())
        }
        Command::Client(command) => cmd::cli::run(command),
    }
}
