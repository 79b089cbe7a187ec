//! Deferred deletion: a discarded volume leaves its path at once and is
//! deleted later, when nothing is being made.
//!
//! Why: on btrfs, deleting a subvolume only unlinks it; the cleaner thread
//! frees its blocks later, and with simple quotas it commits a transaction
//! for every deleted subvolume that was written to (to drop its qgroup),
//! about 8 ms each on this machine kind. Left alone, the cleaner runs after
//! the periodic commit (30 s) or a snapshot's, cleaning everything deleted
//! since in one go: a burst of creates that follows a burst of deletes
//! then shares its disk and CPU with dozens of commits, and the delete
//! ioctl itself waits behind them (25 to 125 ms with thousands pending).
//!
//! So [`Reclaimer::discard`] renames the volume into the pool's `trash/`
//! (one rename, in the same transaction as any other metadata change) and
//! queues it. A thread of its own deletes queued volumes a few at a time
//! once the pool has been [quiet](QUIET) for a while (no [`Busy`] guard
//! held: starts, snapshots), then has the file system commit so that the
//! cleaner works on them now, while nothing waits, and paces itself to the
//! cleaner's speed. A queue that grows past [`MAX_QUEUED`] volumes or whose
//! oldest entry waited [`MAX_WAIT`] is worked off even when the pool is not
//! quiet: a tenant who creates and deletes without pause cannot make the
//! host hold unbounded space.
//!
//! Nothing queued is lost on a crash: whatever is in `trash/` when a pool
//! is opened is queued again, and dropping the last handle to a pool
//! deletes what is still queued before it returns.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{split_path, StorageDriver, StorageError};

/// How long the pool must have gone without a [`Busy`] guard before queued
/// volumes are deleted.
pub const QUIET: Duration = Duration::from_millis(200);
/// The longest a queued volume waits for a quiet pool.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How many queued volumes are deleted without waiting for a quiet pool.
pub const MAX_QUEUED: usize = 32;
/// Volumes deleted before the file system is asked to clean them.
const BATCH: usize = 8;
/// Pause after each batch, per volume deleted: about what the btrfs cleaner
/// needs for one written volume, so that the queue waits here, where it can
/// still yield to a burst, and not in the kernel's.
const PACE: Duration = Duration::from_millis(8);

/// What the reclaim thread does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing is queued: wait for a discard.
    Idle,
    /// Wait this long, then look again.
    Wait(Duration),
    /// Delete this many volumes from the front of the queue.
    Delete(usize),
}

/// The policy, on its own to be tested: `queued` volumes, the oldest queued
/// `oldest` ago; `busy` guards held; the last one released `since_busy` ago
/// (`None`: never).
fn step(queued: usize, oldest: Duration, busy: usize, since_busy: Option<Duration>) -> Step {
    if queued == 0 {
        return Step::Idle;
    }
    let batch = queued.min(BATCH);
    if queued >= MAX_QUEUED || oldest >= MAX_WAIT {
        return Step::Delete(batch);
    }
    let overdue = MAX_WAIT - oldest;
    if busy > 0 {
        return Step::Wait(overdue.min(QUIET));
    }
    match since_busy {
        Some(since) if since < QUIET => Step::Wait(overdue.min(QUIET - since)),
        _ => Step::Delete(batch),
    }
}

/// Deferred deletion of one pool's volumes; see the module docs. Dropping
/// it deletes what is still queued and stops its thread.
pub struct Reclaimer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    driver: Arc<dyn StorageDriver>,
    trash: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(PathBuf, Instant)>,
    busy: usize,
    last_busy: Option<Instant>,
    closing: bool,
    /// Makes trash names unique within this process.
    seq: u64,
}

/// While one is held, the pool is busy: queued volumes wait (see the module
/// docs). Made by [`Reclaimer::busy`].
#[must_use = "the pool counts as busy only while the guard is held"]
pub struct Busy {
    shared: Arc<Shared>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.busy -= 1;
        state.last_busy = Some(Instant::now());
        drop(state);
        self.shared.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn delete(&self, path: &Path) {
        if let Err(e) = self.driver.delete(path) {
            tracing::warn!(path = %path.display(), error = %e, "deleting a discarded volume");
        }
    }

    /// The reclaim thread: works the queue off by [`step`] until closing,
    /// then deletes what is left.
    fn run(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let oldest = state
                .queue
                .front()
                .map_or(Duration::ZERO, |(_, at)| now.duration_since(*at));
            let since_busy = state.last_busy.map(|t| now.duration_since(t));
            match step(state.queue.len(), oldest, state.busy, since_busy) {
                _ if state.closing => break,
                Step::Idle => {
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                Step::Wait(d) => {
                    state = self
                        .changed
                        .wait_timeout(state, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Step::Delete(n) => {
                    let batch: Vec<_> = state.queue.drain(..n).map(|(p, _)| p).collect();
                    drop(state);
                    for path in &batch {
                        self.delete(path);
                    }
                    if let Err(e) = self.driver.reclaim_deleted(&self.trash) {
                        tracing::warn!(error = %e, "asking the pool to reclaim deleted volumes");
                    }
                    std::thread::sleep(PACE * batch.len() as u32);
                    state = self.lock();
                }
            }
        }
        let rest: Vec<_> = state.queue.drain(..).map(|(p, _)| p).collect();
        drop(state);
        for path in &rest {
            self.delete(path);
        }
    }
}

impl Reclaimer {
    /// A reclaimer for volumes of `driver`, discarded into `trash` (a
    /// directory of the pool, on the same file system as the volumes). What
    /// `trash` already holds (left by a crash) is queued.
    pub fn new(driver: Arc<dyn StorageDriver>, trash: PathBuf) -> Reclaimer {
        let left: Vec<PathBuf> = std::fs::read_dir(&trash)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let reclaimer = Reclaimer {
            shared: Arc::new(Shared {
                driver,
                trash,
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
            thread: Mutex::new(None),
        };
        if !left.is_empty() {
            tracing::info!(count = left.len(), "queueing volumes left in the trash");
            for path in left {
                reclaimer.enqueue(path);
            }
        }
        reclaimer
    }

    /// Marks the pool busy until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.shared.lock().busy += 1;
        Busy {
            shared: self.shared.clone(),
        }
    }

    /// How many volumes wait to be deleted.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Takes the volume at `path` out of its place at once and deletes it
    /// later (see the module docs). A missing path is not an error; a path
    /// that is not a volume is refused, as [`StorageDriver::delete`] does.
    /// When the volume cannot be renamed (another file system, a mount on
    /// it), it is deleted before this returns.
    pub fn discard(&self, path: &Path) -> Result<(), StorageError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("stat volume", path, e)),
            Ok(_) if !self.shared.driver.is_volume(path) => {
                return Err(StorageError::NotAVolume(path.display().to_string()))
            }
            Ok(_) => {}
        }
        let (_, name) = split_path(path)?;
        let seq = {
            let mut state = self.shared.lock();
            state.seq += 1;
            state.seq
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut target = std::ffi::OsString::from(format!("{stamp:x}.{seq}."));
        target.push(name);
        let target = self.shared.trash.join(target);
        match std::fs::rename(path, &target) {
            Ok(()) => {
                self.enqueue(target);
                Ok(())
            }
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "deleting in place");
                self.shared.driver.delete(path)
            }
        }
    }

    fn enqueue(&self, path: PathBuf) {
        let mut state = self.shared.lock();
        state.queue.push_back((path, Instant::now()));
        drop(state);
        self.shared.changed.notify_all();
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if thread.is_none() {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("reclaim".into())
                .spawn(move || shared.run());
            match spawned {
                Ok(handle) => *thread = Some(handle),
                Err(e) => {
                    // Deleted now instead; what cannot be stays in the trash
                    // for the next open.
                    tracing::warn!(error = %e, "cannot start the reclaim thread");
                    let queued: Vec<_> = self.shared.lock().queue.drain(..).collect();
                    for (path, _) in queued {
                        self.shared.delete(&path);
                    }
                }
            }
        }
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
        let thread = self.thread.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = thread.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_queued_waits_for_a_discard() {
        assert_eq!(step(0, Duration::ZERO, 3, None), Step::Idle);
        assert_eq!(step(0, Duration::ZERO, 0, Some(MS)), Step::Idle);
    }

    #[test]
    fn a_quiet_pool_deletes_in_batches() {
        assert_eq!(step(3, MS, 0, None), Step::Delete(3));
        assert_eq!(step(20, MS, 0, Some(QUIET)), Step::Delete(BATCH));
    }

    #[test]
    fn a_busy_or_recently_busy_pool_waits_no_longer_than_the_oldest_may() {
        assert_eq!(step(3, MS, 1, None), Step::Wait(QUIET));
        assert_eq!(step(3, MS, 0, Some(50 * MS)), Step::Wait(QUIET - 50 * MS));
        assert_eq!(
            step(3, MAX_WAIT - 10 * MS, 2, Some(MS)),
            Step::Wait(10 * MS)
        );
    }

    #[test]
    fn an_overdue_or_long_queue_is_worked_off_even_when_busy() {
        assert_eq!(step(3, MAX_WAIT, 5, Some(MS)), Step::Delete(3));
        assert_eq!(step(MAX_QUEUED, MS, 5, Some(MS)), Step::Delete(BATCH));
    }
}
