//! The connections starts made to their agents, kept for each sandbox's
//! first request ([`crate::Runtime::take_agent_connection`]).
//!
//! A start connects to the agent's socket and checks that the listener is
//! the sandbox's init before it returns; the first request can then go on
//! that connection instead of connecting and checking again. What is kept
//! is bounded: at most [`MAX_KEPT`] connections, none older than
//! [`KEPT_FOR`] (a sandbox nobody calls soon after its start, a thousand
//! idle ones, hold no descriptor of the server's for it).

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most connections kept at once; the oldest goes first.
pub const MAX_KEPT: usize = 256;
/// How long a connection is kept for its sandbox's first request.
pub const KEPT_FOR: Duration = Duration::from_secs(60);

/// The kept connections, by sandbox id.
#[derive(Debug, Default)]
pub struct Handoffs {
    inner: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    by_id: HashMap<String, (UnixStream, Instant)>,
    /// Ids in the order they were kept, with when: the oldest first.
    order: VecDeque<(Instant, String)>,
}

impl Handoffs {
    /// Keeps `connection` for sandbox `id` (replacing one kept before), and
    /// lets go of the oldest beyond the bounds.
    pub fn keep(&self, id: &str, connection: UnixStream) {
        self.keep_at(id, connection, Instant::now());
    }

    fn keep_at(&self, id: &str, connection: UnixStream, now: Instant) {
        let mut kept = self.inner.lock().expect("handoffs lock");
        kept.by_id.insert(id.to_string(), (connection, now));
        kept.order.push_back((now, id.to_string()));
        while let Some((at, oldest)) = kept.order.front().cloned() {
            let expired = now.duration_since(at) >= KEPT_FOR || kept.by_id.len() > MAX_KEPT;
            let stale_entry = kept
                .by_id
                .get(&oldest)
                .is_none_or(|(_, kept_at)| *kept_at != at);
            if !expired && !stale_entry {
                break;
            }
            kept.order.pop_front();
            if !stale_entry {
                kept.by_id.remove(&oldest);
            }
        }
    }

    /// Drops what is kept for `id`.
    pub fn forget(&self, id: &str) {
        self.inner.lock().expect("handoffs lock").by_id.remove(id);
    }

    /// The connection kept for `id`, once, if it is younger than
    /// [`KEPT_FOR`] and reads nothing (unused, nothing should arrive on it:
    /// end-of-file or data means it is no good).
    pub fn take(&self, id: &str) -> Option<UnixStream> {
        let (connection, at) = self.inner.lock().expect("handoffs lock").by_id.remove(id)?;
        if at.elapsed() >= KEPT_FOR {
            return None;
        }
        let mut fd = libc::pollfd {
            fd: connection.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd; timeout 0.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        (ready == 0).then_some(connection)
    }

    /// How many are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("handoffs lock").by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().expect("a socket pair")
    }

    #[test]
    fn one_kept_connection_is_taken_once_and_a_closed_one_never() {
        let handoffs = Handoffs::default();
        let (ours, _theirs) = pair();
        handoffs.keep("a", ours);
        assert!(handoffs.take("a").is_some());
        assert!(handoffs.take("a").is_none(), "taken twice");

        let (ours, theirs) = pair();
        handoffs.keep("b", ours);
        drop(theirs);
        assert!(
            handoffs.take("b").is_none(),
            "a closed connection was handed out"
        );

        let (ours, _theirs) = pair();
        handoffs.keep("c", ours);
        handoffs.forget("c");
        assert!(handoffs.take("c").is_none());
    }

    #[test]
    fn what_is_kept_is_bounded_in_number_and_age() {
        let handoffs = Handoffs::default();
        let start = Instant::now();
        let mut peers = Vec::new();
        for i in 0..MAX_KEPT + 10 {
            let (ours, theirs) = pair();
            peers.push(theirs);
            handoffs.keep_at(&format!("s{i}"), ours, start);
        }
        assert_eq!(handoffs.len(), MAX_KEPT);
        assert!(handoffs.take("s0").is_none(), "the oldest stayed");
        assert!(handoffs.take(&format!("s{}", MAX_KEPT + 9)).is_some());

        // One kept later than KEPT_FOR after the others lets them all go.
        let (ours, _theirs) = pair();
        handoffs.keep_at("late", ours, start + KEPT_FOR);
        assert_eq!(handoffs.len(), 1);

        // A sandbox started again keeps its newer connection.
        let handoffs = Handoffs::default();
        let (first, _p1) = pair();
        let (second, _p2) = pair();
        handoffs.keep_at("x", first, start);
        handoffs.keep_at("x", second, start + KEPT_FOR / 2);
        let (other, _p3) = pair();
        handoffs.keep_at("y", other, start + KEPT_FOR + Duration::from_secs(1));
        assert_eq!(
            handoffs.len(),
            2,
            "the restarted sandbox's connection went with its first"
        );
    }
}
