//! The PID 1 of every running sandbox, watched for its exit: one pidfd per
//! sandbox (readable once its process has exited), all in one epoll set, so
//! that the reaper's question, which sandboxes died ([`Runtime::exits`]),
//! costs what exited rather than what runs. A pidfd also pins its pid: it
//! cannot name another process later, so a stop waits on it
//! ([`Exits::forget`] hands it back).
//!
//! [`Runtime::exits`]: crate::Runtime::exits

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Events read from the epoll set per call.
const BATCH: usize = 64;

/// The watched inits of one runtime.
#[derive(Debug, Default)]
pub(super) struct Exits {
    /// The epoll set, made on first use (`None` until then, or while it
    /// cannot be made).
    epoll: Option<OwnedFd>,
    /// Each watched sandbox's pidfd and its token in the set.
    by_id: HashMap<String, (OwnedFd, u64)>,
    /// The sandbox of each token.
    by_token: HashMap<u64, String>,
    /// The next token.
    next: u64,
    /// Sandboxes found gone when asked to watch them: the next
    /// [`Exits::take`] reports them.
    gone: Vec<String>,
    /// Sandboxes that could not be watched yet (out of descriptors): the
    /// runtime tries again before each [`Exits::take`].
    pending: Vec<String>,
}

impl Exits {
    /// Watches `pidfd`, the init of `id` (in place of any before it). On
    /// failure `id` is pending.
    pub fn watch(&mut self, id: &str, pidfd: OwnedFd) {
        self.forget(id);
        let token = self.next;
        self.next += 1;
        match self.add(&pidfd, token) {
            Ok(()) => {
                self.by_token.insert(token, id.to_string());
                self.by_id.insert(id.to_string(), (pidfd, token));
            }
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot watch a sandbox's init; trying again later");
                self.pending.push(id.to_string());
            }
        }
    }

    /// Notes that the init of `id` is already gone.
    pub fn gone(&mut self, id: &str) {
        self.forget(id);
        self.gone.push(id.to_string());
    }

    /// Notes that `id` could not be watched yet.
    pub fn pend(&mut self, id: &str) {
        self.forget(id);
        self.pending.push(id.to_string());
    }

    /// Stops watching `id` (stopped, or being stopped); its pidfd, if it
    /// was watched.
    pub fn forget(&mut self, id: &str) -> Option<OwnedFd> {
        self.gone.retain(|g| g != id);
        self.pending.retain(|p| p != id);
        let (pidfd, token) = self.by_id.remove(id)?;
        self.by_token.remove(&token);
        if let Some(epoll) = &self.epoll {
            // SAFETY: both descriptors are open; a null event is allowed
            // for EPOLL_CTL_DEL.
            unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    pidfd.as_raw_fd(),
                    std::ptr::null_mut(),
                )
            };
        }
        Some(pidfd)
    }

    /// The sandboxes to try watching again (they are no longer pending).
    pub fn take_pending(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }

    /// Sandboxes whose init exited since the last call, each once; they are
    /// no longer watched.
    pub fn take(&mut self) -> Vec<String> {
        let mut exited = std::mem::take(&mut self.gone);
        let Some(epoll) = &self.epoll else {
            return exited;
        };
        let epoll = epoll.as_raw_fd();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        loop {
            // SAFETY: `events` holds BATCH entries; timeout 0 returns at once.
            let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), BATCH as i32, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::warn!(error = %e, "reading the inits' exits");
                break;
            }
            for event in &events[..n as usize] {
                let token = event.u64;
                if let Some(id) = self.by_token.get(&token).cloned() {
                    self.forget(&id);
                    exited.push(id);
                }
            }
            if (n as usize) < BATCH {
                break;
            }
        }
        exited
    }

    /// Adds `pidfd` to the set (made now if it is not yet).
    fn add(&mut self, pidfd: &OwnedFd, token: u64) -> std::io::Result<()> {
        if self.epoll.is_none() {
            // SAFETY: epoll_create1 takes flags and returns a new descriptor.
            let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if raw < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: a new descriptor that nothing else owns.
            self.epoll = Some(unsafe { OwnedFd::from_raw_fd(raw) });
        }
        let epoll = self.epoll.as_ref().expect("made above");
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open and `event` outlives the call.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                pidfd.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::process::pidfd;

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap()
    }

    #[test]
    fn an_exit_is_reported_once_and_a_forgotten_init_never() {
        let (mut a, mut b) = (sleeper(), sleeper());
        let mut exits = Exits::default();
        exits.watch("a", pidfd(a.id() as i32).unwrap());
        exits.watch("b", pidfd(b.id() as i32).unwrap());
        exits.gone("c");
        assert_eq!(exits.take(), ["c"]);
        assert_eq!(exits.take(), Vec::<String>::new());
        a.kill().unwrap();
        a.wait().unwrap();
        assert_eq!(exits.take(), ["a"]);
        assert_eq!(exits.take(), Vec::<String>::new());
        // A stop takes the pidfd back first: that exit is not reported.
        let b_fd = exits.forget("b").expect("b is watched");
        b.kill().unwrap();
        b.wait().unwrap();
        assert_eq!(exits.take(), Vec::<String>::new());
        drop(b_fd);
        // Watching again replaces what was watched under the id.
        let (mut c, mut d) = (sleeper(), sleeper());
        exits.watch("c", pidfd(c.id() as i32).unwrap());
        exits.watch("c", pidfd(d.id() as i32).unwrap());
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(exits.take(), Vec::<String>::new());
        d.kill().unwrap();
        d.wait().unwrap();
        assert_eq!(exits.take(), ["c"]);
    }
}
