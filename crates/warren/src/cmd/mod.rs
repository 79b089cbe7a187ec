//! One module per subcommand; each turns its flags into a library call.

pub mod agent;
pub mod checkpoints;
pub mod cli;
pub mod cp;
pub mod exec;
pub mod progress;
pub mod sandbox_init;
pub mod sandboxes;
pub mod server;
pub mod shell;
pub mod templates;

/// Logs as text to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
