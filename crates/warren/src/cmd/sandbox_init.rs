//! `warren __sandbox-init`: the namespace runtime's helper. Reads one
//! request on stdin, starts the sandbox, writes one report line on stdout
//! and exits (see [`warren_runtime::namespaces::init`]).
//!
//! It must stay single-threaded until it has forked: no tokio runtime, no
//! threads of any kind before [`warren_runtime::namespaces::init::run`].
//! Both register [`agent_main`], which each sandbox's init calls to become
//! the agent.

/// Runs the helper and exits with its status.
pub fn run() -> ! {
    super::init_plain_logging();
    warren_runtime::namespaces::set_agent_main(agent_main);
    let code = warren_runtime::namespaces::init::run(
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        ready_channel(),
        None,
    );
    std::process::exit(code)
}

/// Runs the zygote until the server closes its channel (stdin), and exits.
/// Single-threaded like the helper: its workers are forks of it. Spare
/// cgroups go under `cgroup_parent`, if given.
pub fn zygote(cgroup_parent: Option<&str>) -> ! {
    use std::os::fd::AsFd;
    super::init_plain_logging();
    warren_runtime::namespaces::set_agent_main(agent_main);
    let code = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(channel) => warren_runtime::namespaces::zygote::serve(channel, cgroup_parent),
        Err(e) => {
            eprintln!("warren __sandbox-zygote: stdin: {e}");
            1
        }
    };
    std::process::exit(code)
}

/// The agent as a sandbox's init runs it (in the forked helper, instead of
/// an exec of this binary): `argv` is `warren agent ...`.
fn agent_main(argv: Vec<String>) -> i32 {
    match super::agent::run_from(argv) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("warren agent: {e:#}");
            1
        }
    }
}

/// A copy of stdin when it is a socket: the runtime's readiness channel,
/// which the sandbox's agent writes one byte to once it accepts connections.
fn ready_channel() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    // A new descriptor (close-on-exec, above stderr) of stdin's socket.
    let copy = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let file = std::fs::File::from(copy);
    let is_socket = file.metadata().ok()?.file_type().is_socket();
    is_socket.then(|| file.into())
}
