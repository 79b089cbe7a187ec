//! One module per subcommand; each turns its flags into a library call.

pub mod agent;
pub mod checkpoints;
pub mod cli;
pub mod context;
pub mod cp;
pub mod desktop;
pub mod desktop_input;
pub mod events;
pub mod exec;
pub mod keys;
pub mod progress;
pub mod sandbox_init;
pub mod sandboxes;
pub mod server;
pub mod sessions;
pub mod shell;
pub mod templates;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`).
/// Colour codes are written only when stderr is a terminal, so files,
/// journald and pipes get plain text.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    init_logging_with(format, std::io::stderr().is_terminal());
}

/// Plain-text logging without colour codes whatever stderr is: the
/// sandbox zygote's and helper's, since every sandbox's agent is a fork of
/// them and keeps their subscriber, writing to its `agent.log`.
pub fn init_plain_logging() {
    init_logging_with(LogFormat::Text, false);
}

fn init_logging_with(format: LogFormat, ansi: bool) {
    use tracing_subscriber::EnvFilter;
    // A sandbox's agent is a fork of the zygote and keeps its subscriber:
    // building another one only to have it refused costs its start.
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Raises the soft open-file limit to the hard one. The agent: every
/// process costs it three or four descriptors, and 1024 runs out before
/// `max_processes`. The server: each live sandbox can hold a few pooled
/// connections to its agent, and 1024 runs out long before thousands of
/// sandboxes.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to and read from a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
