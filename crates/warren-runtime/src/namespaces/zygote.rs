//! `warren __sandbox-zygote`: one single-threaded helper process, started
//! once by the runtime, that forks a worker per sandbox instead of the
//! runtime exec'ing `warren __sandbox-init` for each one (an exec of the
//! whole binary, its dynamic linking and start-up: milliseconds a sandbox).
//!
//! ```text
//! server (multithreaded)
//!   └─ zygote: one thread, never starts one; waits for requests
//!      └─ worker (a fork, one per sandbox): exactly the helper of [`super::init`]
//!         └─ intermediate ─ sandbox init, which becomes the agent
//! ```
//!
//! Protocol: the runtime sends one byte over a `SOCK_SEQPACKET` pair (the
//! zygote's stdin) with two descriptors attached (`SCM_RIGHTS`): the
//! worker's side of a socket pair, on which the request arrives (until
//! end-of-file) and which the agent later signals readiness on, and the
//! write end of the pipe the worker answers its one report line on. The
//! zygote forks, the worker runs [`super::init::run`] on them and exits;
//! the zygote never reads a request itself, so it holds nothing of any
//! sandbox, and every worker starts from the same clean state.
//!
//! The zygote ignores `SIGCHLD`, so its workers are reaped by the kernel.
//! When the server goes away (even by `kill -9`) the zygote reads
//! end-of-file and exits; workers already forked finish their sandboxes,
//! which the next server start finds and reattaches, as it would after a
//! crash during an exec'd helper. Sandboxes are never the server's
//! children: each worker's intermediate exits once the init exists.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// The hidden subcommand of the `warren` binary that runs [`serve`].
pub const ZYGOTE_SUBCOMMAND: &str = "__sandbox-zygote";

/// The argument that names the zygote's cgroup parent, under which it
/// makes spare cgroups ([`super::shells`]).
pub const CGROUP_PARENT_ARG: &str = "--cgroup-parent";

/// The zygote's loop, on `channel` (its stdin): fork a worker per request
/// until end-of-file. Spare cgroups are made under `cgroup_parent`, if
/// given. Returns the process exit code. Must be called while the process
/// has a single thread.
pub fn serve(channel: OwnedFd, cgroup_parent: Option<&str>) -> i32 {
    match super::staging::make() {
        Ok(()) => {}
        Err(false) => tracing::warn!("zygote: no staging namespace; starts copy the host's"),
        Err(true) => {
            tracing::error!("zygote: could not return to the host's mount namespace");
            return 1;
        }
    }
    crate::cgroups::remember();
    // SAFETY: setting a disposition; no handler runs.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let cgroups = cgroup_parent.and_then(|parent| {
        crate::cgroups::detect(parent)
            .inspect_err(|e| tracing::warn!(error = %e, "zygote: no spare cgroups"))
            .ok()
    });
    let mut shells = super::shells::Shells::new(cgroups);
    shells.remove_stale();
    loop {
        // Namespaces for the next starts, made only while no start is
        // asked for (see `shells`).
        // An error polling counts as a request: receiving then says what.
        let idle =
            || !super::wait_readable(channel.as_raw_fd(), super::shells::IDLE).unwrap_or(true);
        if shells.wanted() && idle() {
            shells.refill();
            continue;
        }
        let (input, output) = match receive(channel.as_raw_fd()) {
            Ok(Some(fds)) => fds,
            Ok(None) => {
                shells.release();
                return 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, "zygote: a bad request");
                continue;
            }
        };
        let shell = shells.take();
        // SAFETY: this process has one thread and holds no lock, so the
        // child may do anything the parent could.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                drop(channel);
                // The other sandboxes' shells are not the worker's.
                shells.clear();
                // The worker waits for its own children.
                // SAFETY: setting a disposition; no handler runs.
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                let code = work(input, output, shell);
                // SAFETY: leave without the zygote's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => {}
            Err(e) => {
                // The runtime reads end-of-file on the report: a failure.
                tracing::warn!(error = %e, "zygote: fork");
            }
        }
    }
}

/// A worker: the helper of [`super::init`] on the request's descriptors,
/// in the namespaces of `shell` if it got one.
fn work(input: OwnedFd, output: OwnedFd, shell: Option<super::shells::Shell>) -> i32 {
    let reader = match input.try_clone() {
        Ok(fd) => File::from(fd),
        Err(_) => return 1,
    };
    super::init::run(
        std::io::BufReader::new(reader),
        File::from(output),
        Some(input),
        shell,
    )
}

/// One request: `None` at end-of-file (the server is gone).
fn receive(channel: RawFd) -> std::io::Result<Option<(OwnedFd, OwnedFd)>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = loop {
        match recvmsg::<()>(
            channel,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel made these descriptors for this process.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    let mut fds = fds.into_iter();
    match (fds.next(), fds.next(), fds.next()) {
        (Some(input), Some(output), None) => Ok(Some((input, output))),
        _ => Err(std::io::Error::other("expected two descriptors")),
    }
}

/// The runtime's handle on its zygote, started on first use and again
/// after it died.
#[derive(Debug)]
pub struct Zygote {
    cgroup_parent: String,
    running: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    binary: PathBuf,
    child: Child,
    /// `None` once closed.
    channel: Option<OwnedFd>,
}

/// How long a zygote has to end on its own once its channel is closed.
const END_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

impl Drop for Running {
    fn drop(&mut self) {
        // Closing the channel ends the zygote, which removes its spare
        // cgroups first; one that does not end in time is killed. Reap it.
        self.channel = None;
        let deadline = std::time::Instant::now() + END_WAIT;
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Zygote {
    /// A zygote (not started yet) whose spare cgroups go under
    /// `cgroup_parent`.
    pub fn new(cgroup_parent: &str) -> Zygote {
        Zygote {
            cgroup_parent: cgroup_parent.to_string(),
            running: Mutex::default(),
        }
    }

    /// Asks the zygote of `binary` to start a worker that reads its request
    /// from `input` and reports on `output`. Starts the zygote if needed,
    /// and once more if the running one is gone.
    pub fn request(
        &self,
        binary: &Path,
        input: &UnixStream,
        output: OwnedFd,
    ) -> std::io::Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for attempt in 0..2 {
            let stale = running
                .as_mut()
                .is_none_or(|r| r.binary != binary || !matches!(r.child.try_wait(), Ok(None)));
            if stale {
                *running = None;
                *running = Some(spawn(binary, &self.cgroup_parent)?);
            }
            let zygote = running.as_ref().expect("started above");
            let fds = [input.as_raw_fd(), output.as_raw_fd()];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            let channel = zygote.channel.as_ref().expect("open while running");
            match sendmsg::<()>(
                channel.as_raw_fd(),
                &[std::io::IoSlice::new(b"R")],
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(e) if attempt == 0 => {
                    tracing::warn!(error = %e, "the sandbox zygote is gone; starting another");
                    *running = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the second attempt returns")
    }
}

fn spawn(binary: &Path, cgroup_parent: &str) -> std::io::Result<Running> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let child = super::helper_command(binary, ZYGOTE_SUBCOMMAND)
        .args([CGROUP_PARENT_ARG, cgroup_parent])
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(Running {
        binary: binary.to_path_buf(),
        child,
        channel: Some(ours),
    })
}
