//! The in-memory view of every sandbox the server manages.
//!
//! The database is the durable record; this registry is what the hot path
//! (the proxy) reads without touching it: who owns a sandbox, which phase it
//! is in, and when it was last used. Phases change only under the sandbox's
//! operation lock and only after the database write they mirror has
//! committed, so the two never disagree for longer than one transition.
//!
//! Activity is recorded here with an atomic store per request and written to
//! the database in batches by the reaper ([`Registry::take_activity`]). The
//! reaper's flush reads only the sandboxes touched since the last one (a
//! streaming one is noted again at each flush while its stream lasts), never
//! every entry: with thousands of idle
//! sandboxes a walk of them all took 10 to 30 ms a second here, under the
//! map's lock that every create waits for, each entry's memory being cold.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::store::StoredState;
use crate::time::now_ms;

/// Where a sandbox is in its lifecycle, including the transitions the
/// database does not distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being created: everything else answers 409.
    Creating,
    /// Its agent answers.
    Running,
    /// Being stopped.
    Stopping,
    /// Being started again.
    Starting,
    /// Stopped; its disk is kept.
    Stopped,
    /// Hibernated: nothing runs, the disk is kept.
    Hibernated,
    /// Failed.
    Error,
    /// Being destroyed: everything else answers 409.
    Destroying,
}

impl Phase {
    /// The phase a stored state is in when nothing is in flight.
    pub fn settled(state: StoredState) -> Phase {
        match state {
            StoredState::Creating => Phase::Creating,
            StoredState::Running => Phase::Running,
            StoredState::Stopped => Phase::Stopped,
            StoredState::Hibernated => Phase::Hibernated,
            StoredState::Error => Phase::Error,
            StoredState::Destroying => Phase::Destroying,
        }
    }

    /// Lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Creating => "being created",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Starting => "starting",
            Phase::Stopped => "stopped",
            Phase::Hibernated => "hibernated",
            Phase::Error => "in the error state",
            Phase::Destroying => "being destroyed",
        }
    }
}

/// One sandbox.
#[derive(Debug)]
pub struct Entry {
    /// `sbx_…`.
    pub id: String,
    /// Owner (immutable); `None` for the admin's sandboxes.
    pub tenant: Option<String>,
    /// Serializes lifecycle operations (create, stop, start, delete, ...) on
    /// this sandbox. A tokio mutex: it is held across the runtime calls.
    pub ops: tokio::sync::Mutex<()>,
    /// A std mutex: read on every proxied request, held for a copy only.
    phase: Mutex<Phase>,
    /// Unix ms of the last API activity.
    last_active: AtomicI64,
    /// Whether `last_active` changed since the last flush.
    dirty: AtomicBool,
    /// Proxied responses and WebSockets still streaming: while any is open
    /// the sandbox is in use, however long ago the request came.
    streams: AtomicUsize,
    /// `auto_checkpoint`, for the proxy (set once, at create or start-up).
    auto_checkpoint: AtomicBool,
    /// `auto_wake`, for the proxy (set once, at create or start-up).
    auto_wake: AtomicBool,
    /// Where a touch is noted for the reaper's flush, shared with the
    /// registry.
    touched: Arc<Touched>,
}

/// The ids touched since the reaper's last flush, each once (when its
/// `dirty` flag turns on): all the flush reads.
type Touched = Mutex<Vec<String>>;

impl Entry {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.lock().expect("phase lock")
    }

    /// Sets the phase. Callers hold [`Entry::ops`].
    pub fn set_phase(&self, phase: Phase) {
        *self.phase.lock().expect("phase lock") = phase;
    }

    /// Records API activity now.
    pub fn touch(&self) {
        self.last_active.fetch_max(now_ms(), Ordering::Relaxed);
        if !self.dirty.swap(true, Ordering::AcqRel) {
            self.touched
                .lock()
                .expect("touched lock")
                .push(self.id.clone());
        }
    }

    /// Unix ms of the last recorded activity.
    pub fn last_active(&self) -> i64 {
        self.last_active.load(Ordering::Relaxed)
    }

    /// Marks a stream open until the guard drops (activity at both ends).
    pub fn open_stream(self: &Arc<Self>) -> StreamGuard {
        self.touch();
        self.streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.clone())
    }

    /// Like [`Entry::open_stream`], but only while fewer than `max` streams
    /// are open.
    pub fn try_open_stream(self: &Arc<Self>, max: usize) -> Option<StreamGuard> {
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.touch();
        Some(StreamGuard(self.clone()))
    }

    /// Whether a proxied stream is open.
    pub fn has_open_streams(&self) -> bool {
        self.streams.load(Ordering::Relaxed) > 0
    }

    /// Records the sandbox's time-travel options (they never change).
    pub fn set_options(&self, auto_checkpoint: bool, auto_wake: bool) {
        self.auto_checkpoint
            .store(auto_checkpoint, Ordering::Relaxed);
        self.auto_wake.store(auto_wake, Ordering::Relaxed);
    }

    /// Whether a checkpoint follows every `processes/run`.
    pub fn auto_checkpoint(&self) -> bool {
        self.auto_checkpoint.load(Ordering::Relaxed)
    }

    /// Whether an agent call wakes the sandbox while it is hibernated.
    pub fn auto_wake(&self) -> bool {
        self.auto_wake.load(Ordering::Relaxed)
    }
}

/// Keeps a sandbox counted as in use; see [`Entry::open_stream`].
#[derive(Debug)]
pub struct StreamGuard(Arc<Entry>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Every sandbox by id; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// A std lock: held for map operations only.
    map: Arc<RwLock<HashMap<String, Arc<Entry>>>>,
    /// Shared with every entry.
    touched: Arc<Touched>,
}

impl Registry {
    /// Adds a sandbox (replacing any entry with the same id).
    pub fn insert(
        &self,
        id: &str,
        tenant: Option<String>,
        phase: Phase,
        last_active: i64,
    ) -> Arc<Entry> {
        let entry = Arc::new(Entry {
            id: id.to_string(),
            tenant,
            ops: tokio::sync::Mutex::new(()),
            phase: Mutex::new(phase),
            last_active: AtomicI64::new(last_active),
            dirty: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            auto_checkpoint: AtomicBool::new(false),
            auto_wake: AtomicBool::new(false),
            touched: self.touched.clone(),
        });
        self.map
            .write()
            .expect("registry lock")
            .insert(id.to_string(), entry.clone());
        entry
    }

    /// The sandbox with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.map.read().expect("registry lock").get(id).cloned()
    }

    /// Forgets a sandbox.
    pub fn remove(&self, id: &str) {
        self.map.write().expect("registry lock").remove(id);
    }

    /// Every sandbox.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.map
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// Activity recorded since the last call, as `(id, unix ms)`, for the
    /// database. Sandboxes with open streams count as active now.
    pub fn take_activity(&self) -> Vec<(String, i64)> {
        let touched = std::mem::take(&mut *self.touched.lock().expect("touched lock"));
        let map = self.map.read().expect("registry lock");
        let mut out = Vec::with_capacity(touched.len());
        for id in touched {
            // Gone since (deleted), or a new entry of the same id that was
            // not touched: nothing to write.
            let Some(entry) = map.get(&id) else { continue };
            let streaming = entry.has_open_streams();
            if streaming {
                entry.touch();
            }
            if entry.dirty.swap(false, Ordering::AcqRel) {
                out.push((id, entry.last_active()));
            }
            // Still in use: noted again, so that the next flush reads it.
            if streaming {
                entry.touch();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_batched_and_streams_count() {
        let registry = Registry::default();
        let a = registry.insert("sbx_a", None, Phase::Running, 0);
        registry.insert("sbx_b", None, Phase::Running, 0);
        assert!(registry.take_activity().is_empty());
        a.touch();
        let touched = registry.take_activity();
        assert_eq!(touched.len(), 1);
        assert_eq!(touched[0].0, "sbx_a");
        assert!(touched[0].1 > 0);
        assert!(registry.take_activity().is_empty());
        let guard = registry.get("sbx_b").unwrap().open_stream();
        registry.take_activity();
        // Still streaming: active again at the next flush.
        assert_eq!(registry.take_activity().len(), 1);
        drop(guard);
        assert_eq!(registry.take_activity().len(), 1);
        assert!(registry.take_activity().is_empty());
        registry.remove("sbx_a");
        assert!(registry.get("sbx_a").is_none());
    }

    #[test]
    fn a_flush_reads_the_touched_and_the_streaming_only() {
        let registry = Registry::default();
        let entries: Vec<_> = (0..1000)
            .map(|i| registry.insert(&format!("sbx_{i}"), None, Phase::Running, 0))
            .collect();
        // Touched twice, noted once.
        entries[7].touch();
        entries[7].touch();
        entries[9].touch();
        assert_eq!(registry.touched.lock().unwrap().len(), 2);
        // Deleted after its touch: nothing to write.
        registry.remove("sbx_9");
        let flushed: Vec<String> = registry.take_activity().into_iter().map(|t| t.0).collect();
        assert_eq!(flushed, vec!["sbx_7".to_string()]);
        assert!(registry.touched.lock().unwrap().is_empty());

        // Two streams of one sandbox: streaming until the last one ends.
        let first = entries[3].open_stream();
        let second = entries[3].try_open_stream(2).expect("under the limit");
        assert!(entries[3].try_open_stream(2).is_none());
        registry.take_activity();
        assert_eq!(registry.take_activity().len(), 1);
        drop(first);
        registry.take_activity();
        assert_eq!(
            registry.take_activity().len(),
            1,
            "one stream is still open"
        );
        drop(second);
        assert_eq!(
            registry.take_activity().len(),
            1,
            "the end of a stream is activity"
        );
        assert!(registry.take_activity().is_empty());
    }
}
