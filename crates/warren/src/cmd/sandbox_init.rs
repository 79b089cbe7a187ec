//! `warren __sandbox-init`: the namespace runtime's helper. Reads one
//! request on stdin, starts the sandbox, writes one report line on stdout
//! and exits (see [`warren_runtime::namespaces::init`]).
//!
//! It must stay single-threaded until it has forked: no tokio runtime, no
//! threads of any kind before [`warren_runtime::namespaces::init::run`].

/// Runs the helper and exits with its status.
pub fn run() -> ! {
    super::init_logging(super::LogFormat::Text);
    let code =
        warren_runtime::namespaces::init::run(std::io::stdin().lock(), std::io::stdout().lock());
    std::process::exit(code)
}
