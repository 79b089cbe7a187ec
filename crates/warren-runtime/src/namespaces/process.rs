//! Host-side helpers on processes and descriptors: pidfds, the `NSpid` and
//! `State` lines of `/proc/<pid>/status`, a unix socket's peer, reads that
//! give up after a timeout, and the tail of a sandbox's agent log.

use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A pidfd of `pid` (`ESRCH` when there is no such process).
pub(super) fn pidfd(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the fd is owned below.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

/// Whether host pid `pid` is PID 1 of its own pid namespace and not a zombie.
pub(super) fn is_live_init(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mut nspid_is_init = false;
    let mut alive = false;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("NSpid:") {
            let ids: Vec<&str> = rest.split_whitespace().collect();
            nspid_is_init = ids.len() >= 2 && ids.last() == Some(&"1");
        } else if let Some(rest) = line.strip_prefix("State:") {
            alive = !matches!(rest.trim_start().chars().next(), Some('Z' | 'X'));
        }
    }
    nspid_is_init && alive
}

/// Lines read from a descriptor, all before one deadline.
pub(super) struct Lines {
    file: std::fs::File,
    buffered: Vec<u8>,
    deadline: Instant,
}

impl Lines {
    /// Lines of `fd`, the last of them due within `timeout`.
    pub(super) fn new(fd: OwnedFd, timeout: Duration) -> Self {
        Lines {
            file: std::fs::File::from(fd),
            buffered: Vec::new(),
            deadline: Instant::now() + timeout,
        }
    }

    /// The next line, without its newline.
    pub(super) fn next_line(&mut self) -> std::io::Result<String> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = self.buffered.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).take(end).collect();
                return String::from_utf8(line).map_err(std::io::Error::other);
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait_readable(self.file.as_raw_fd(), left)? {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no report in time",
                ));
            }
            match self.file.read(&mut buf)? {
                0 => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the helper exited without a report",
                    ))
                }
                n => self.buffered.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// Sends SIGKILL to the process of the pidfd `fd`.
pub(super) fn pidfd_kill(fd: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a null
    // siginfo and no flags; it touches no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd,
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Polls `fd` for input for at most `timeout`; true if readable (or closed).
pub(super) fn wait_readable(fd: i32, timeout: Duration) -> std::io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    loop {
        // SAFETY: one valid pollfd and a valid timespec, no signal mask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Pid of the process that listens on the other end of a unix connection.
pub(super) fn peer_pid(connection: BorrowedFd<'_>) -> std::io::Result<i32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes one ucred into `cred`, whose size is `len`.
    let rc = unsafe {
        libc::getsockopt(
            connection.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.pid)
}

/// `pid`'s ids in each pid namespace it is in, outermost first (the
/// `NSpid` line of `/proc/<pid>/status`); `pid` may be `self`.
pub(super) fn namespace_pids(pid: &str) -> std::io::Result<Vec<i32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .ok_or_else(|| std::io::Error::other("no NSpid line"))?;
    line.split_whitespace()
        .map(|p| p.parse().map_err(std::io::Error::other))
        .collect()
}

/// Most bytes of `agent.log` quoted in a start error.
const LOG_TAIL_BYTES: u64 = 2000;

/// The last [`LOG_TAIL_BYTES`] of the agent's log. The sandbox owns the
/// file: it may be huge (only its tail is read), sparse, or no regular file
/// at all (a fifo would block, a symlink could point anywhere; neither is
/// read).
pub(super) fn log_tail(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        file.seek(SeekFrom::Start(meta.len().saturating_sub(LOG_TAIL_BYTES)))?;
        let mut tail = Vec::with_capacity(LOG_TAIL_BYTES as usize);
        file.take(LOG_TAIL_BYTES).read_to_end(&mut tail)?;
        Ok(String::from_utf8_lossy(&tail).trim().to_string())
    };
    read().unwrap_or_else(|e| format!("(unreadable: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_pid_namespaces_are_read() {
        // The innermost namespace's id is the one getpid answers.
        let pids = namespace_pids("self").unwrap();
        assert_eq!(pids.last().copied(), Some(std::process::id() as i32));
    }

    #[test]
    fn only_the_tail_of_a_regular_log_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("agent.log");
        let file = std::fs::File::create(&log).unwrap();
        // 8 GiB, sparse: reading it whole would take the test's memory.
        file.set_len(8 << 30).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"the end"))
            .unwrap();
        let tail = log_tail(&log);
        assert!(tail.ends_with("the end"), "{tail:?}");
        assert!(tail.len() <= LOG_TAIL_BYTES as usize, "{}", tail.len());

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(log_tail(&fifo).starts_with("(unreadable"));

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&log, &link).unwrap();
        assert!(log_tail(&link).starts_with("(unreadable"));
    }
}
