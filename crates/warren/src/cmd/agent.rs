//! `warren agent`: flags to [`warren_agent::AgentConfig`], then [`warren_agent::run`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser};
use warren_agent::{config::Limits, AgentConfig, Listen};

/// Flags of `warren agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Where to listen: HOST:PORT, unix:/path, or fd:N (an inherited unix
    /// socket already listening). Repeatable.
    #[arg(long = "listen", default_value = "127.0.0.1:7071")]
    listen: Vec<Listen>,
    /// An inherited pipe to write one byte to once the listeners accept
    /// connections (the namespace runtime waits on it).
    #[arg(long, hide = true)]
    ready_fd: Option<i32>,
    /// Token every request must carry (Authorization: Bearer, or ?access_token=).
    #[arg(long, env = "WARREN_AGENT_TOKEN", conflicts_with = "no_token")]
    token: Option<String>,
    /// Serve without a token (only for sockets that nothing untrusted can reach).
    #[arg(long)]
    no_token: bool,
    /// Directory that relative paths resolve against (default: the current directory).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Default environment of every process, K=V. Repeatable.
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Refuse every file path that resolves outside this directory.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Where coding-agent sessions are kept (default:
    /// `$HOME/.local/state/warren`; inside a sandbox, on its disk).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// How long a session's permission or question request waits for an
    /// answer before it counts as rejected, in seconds.
    #[arg(long, default_value_t = 600)]
    request_timeout_secs: u64,
    /// Largest timeout_ms a run may ask for, in milliseconds.
    #[arg(long, default_value_t = 24 * 3600 * 1000)]
    max_timeout_ms: u64,
    /// Bytes of output kept per managed process.
    #[arg(long, default_value_t = 1 << 20)]
    ring_bytes: usize,
    /// Processes running at once.
    #[arg(long, default_value_t = 1024)]
    max_processes: usize,
    /// Log lines as text (colour only on a terminal) or one JSON object per line.
    #[arg(long, value_enum, env = "WARREN_LOG_FORMAT", default_value = "text")]
    log_format: super::LogFormat,
}

/// `warren agent` parsed on its own. Every cold start of a sandbox runs it,
/// and parsing it against the whole command tree (every client command)
/// costs about half a millisecond more.
#[derive(Debug, Parser)]
#[command(
    name = "warren agent",
    about = "Run the agent daemon (inside a sandbox, or standalone on any Linux host)."
)]
struct AgentCli {
    #[command(flatten)]
    args: AgentArgs,
}

/// The flags of `argv` (`warren agent ...`, as the process got them);
/// exits with clap's message on bad ones.
pub fn parse<I>(argv: I) -> AgentArgs
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString> + Clone,
{
    let argv =
        std::iter::once("warren agent".into()).chain(argv.into_iter().skip(2).map(Into::into));
    AgentCli::parse_from(argv).args
}

/// [`run`] on `argv` (`warren agent ...`), for a sandbox's init that
/// becomes the agent without an exec.
pub fn run_from(argv: Vec<String>) -> anyhow::Result<()> {
    run(parse(argv))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

/// Runs the agent until SIGTERM.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    super::init_logging(args.log_format);
    if args.token.is_none() && !args.no_token {
        bail!("give --token TOKEN (or WARREN_AGENT_TOKEN), or --no-token to serve without one");
    }
    let workdir = match args.workdir {
        Some(dir) => dir,
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let limits = Limits {
        max_run_timeout: std::time::Duration::from_millis(args.max_timeout_ms),
        ring_bytes: args.ring_bytes.max(4096),
        max_processes: args.max_processes.max(1),
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
        ..Limits::default()
    };
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".local/state/warren")
        }
    };
    let config = AgentConfig {
        token: args.token,
        workdir,
        env: args.env.into_iter().collect::<BTreeMap<_, _>>().into(),
        root: args.root,
        state_dir,
        limits,
    };
    // A sandbox's agent: its listener is the init's, already listening.
    let ready = warren_agent::signal_ready_if_listening(&args.listen, args.ready_fd);
    // PID 1 inside a sandbox, or a subreaper standalone: orphans come to us.
    warren_agent::process::become_subreaper();
    super::raise_fd_limit();
    // One thread: an idle agent is one task on the host, not three. Every
    // host-wide walk of tasks (a start's pivot_root, the scheduler) costs
    // less with thousands of sandboxes alive, and a start spawns no worker
    // threads. Blocking work goes to spawn_blocking's threads, which exit
    // when idle.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(warren_agent::run(config, args.listen, ready))
}
