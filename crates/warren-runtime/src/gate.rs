//! A start that begins before its sandbox's root exists.
//!
//! A fork snapshots its child's root from the frozen source, which takes a
//! btrfs commit (a millisecond or two); everything a start does before it
//! stages the root (cgroups, the run directory, the zygote's worker and the
//! intermediate process) does not need the root. [`root_gate`] makes the
//! pair that lets the two overlap: the runtime takes the [`RootGate`] and
//! starts at once, going no further than staging; whoever makes the root
//! holds the [`RootOpener`] and calls [`RootOpener::open`] once the root is
//! there. Dropping the opener unopened (the root could not be made) fails
//! the start at that step, and the start removes what it made, as any
//! failed start does.
//!
//! The namespace runtime forwards the decision to the sandbox's
//! intermediate process over the helper's request socket (one byte, then
//! end-of-file; end-of-file alone is a refusal); a runtime without such a
//! channel waits with [`RootGate::wait`] before it starts.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The byte that tells a waiting intermediate to go on.
pub(crate) const GO: u8 = b'G';

/// Makes a gate (for the start) and its opener (for whoever makes the root).
pub fn root_gate() -> (RootGate, RootOpener) {
    let shared = Arc::new(Shared::default());
    (
        RootGate {
            shared: shared.clone(),
        },
        RootOpener {
            shared,
            decided: false,
        },
    )
}

/// The start's side: learns whether the root was made.
#[derive(Debug)]
pub struct RootGate {
    shared: Arc<Shared>,
}

/// The side of whoever makes the root: [`RootOpener::open`] once it exists;
/// dropped unopened, the start fails.
#[derive(Debug)]
pub struct RootOpener {
    shared: Arc<Shared>,
    decided: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// `Some(true)`: the root exists; `Some(false)`: it will not.
    open: Option<bool>,
    /// Where the decision goes once made (a runtime that forwards it).
    forward: Option<UnixStream>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Tells the far end of `stream`: [`GO`] then end-of-file when `open`,
/// end-of-file alone otherwise. A far end that is gone (the start failed
/// already) is not an error.
fn tell(stream: &UnixStream, open: bool) {
    if open {
        let _ = (&*stream).write_all(&[GO]);
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

impl RootOpener {
    /// The root exists: the start goes on.
    pub fn open(mut self) {
        self.decide(true);
    }

    fn decide(&mut self, open: bool) {
        self.decided = true;
        let mut state = self.shared.lock();
        state.open = Some(open);
        if let Some(stream) = state.forward.take() {
            tell(&stream, open);
        }
        drop(state);
        self.shared.changed.notify_all();
    }
}

impl Drop for RootOpener {
    fn drop(&mut self) {
        if !self.decided {
            self.decide(false);
        }
    }
}

impl RootGate {
    /// Blocks until the root is made (`true`) or will not be (`false`).
    pub fn wait(&self) -> bool {
        let mut state = self.shared.lock();
        loop {
            if let Some(open) = state.open {
                return open;
            }
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Hands the decision to `stream`'s far end: at once if it is made,
    /// else when it is.
    pub(crate) fn forward(self, stream: UnixStream) {
        let mut state = self.shared.lock();
        match state.open {
            Some(open) => tell(&stream, open),
            None => state.forward = Some(stream),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn far_end_reads(far: &mut UnixStream) -> Vec<u8> {
        let mut got = Vec::new();
        far.read_to_end(&mut got).expect("read the decision");
        got
    }

    #[test]
    fn an_open_root_lets_a_waiting_start_go_on() {
        let (gate, opener) = root_gate();
        let waiter = std::thread::spawn(move || gate.wait());
        std::thread::sleep(std::time::Duration::from_millis(20));
        opener.open();
        assert!(waiter.join().expect("waiter"));
    }

    #[test]
    fn a_dropped_opener_refuses() {
        let (gate, opener) = root_gate();
        drop(opener);
        assert!(!gate.wait());
    }

    #[test]
    fn the_decision_reaches_a_forwarded_stream_before_or_after() {
        // Decided after the stream is handed over.
        let (gate, opener) = root_gate();
        let (ours, mut far) = UnixStream::pair().expect("pair");
        gate.forward(ours);
        opener.open();
        assert_eq!(far_end_reads(&mut far), vec![GO]);
        // Decided before.
        let (gate, opener) = root_gate();
        opener.open();
        let (ours, mut far) = UnixStream::pair().expect("pair");
        gate.forward(ours);
        assert_eq!(far_end_reads(&mut far), vec![GO]);
        // Refused: end-of-file alone, either way.
        let (gate, opener) = root_gate();
        let (ours, mut far) = UnixStream::pair().expect("pair");
        gate.forward(ours);
        drop(opener);
        assert!(far_end_reads(&mut far).is_empty());
        let (gate, opener) = root_gate();
        drop(opener);
        let (ours, mut far) = UnixStream::pair().expect("pair");
        gate.forward(ours);
        assert!(far_end_reads(&mut far).is_empty());
    }
}
