//! Spare roots: writable snapshots of each template, made ahead of time, so
//! that a create renames a ready root into place instead of waiting for a
//! snapshot (a btrfs snapshot commits a transaction: 2 ms on a quiet disk,
//! 15 and more on a busy one). Only disks are kept spare: no process, no
//! cgroup, nothing of any sandbox, so a spare root is exactly what a
//! snapshot at create time would have been.
//!
//! Layout: `POOL/spares/<template>@<key>+<slot>`, where the key names the
//! template volume the spare was taken of (its device number, a volume's
//! own, and its inode change time): a template rebuilt or replaced has
//! another key, and its stale spares are removed instead of used. A
//! template has [`PER_TEMPLATE`] slots, so a burst of creates finds more
//! than one, and takes start at slots in turn, so takes at once each find
//! their own. Taking is a `rename`, atomic, so two creates never get the
//! same spare; one that finds every slot empty snapshots. After a take (or
//! a miss) a refill runs on a thread of its own, one at a time per
//! template, and snapshots every empty slot at once: snapshots started
//! together share one btrfs transaction commit, the cost that grows with
//! the number of sandboxes alive. A refill first waits (a second at most)
//! for the creates in flight to finish, so that its commit does not hold
//! up their own disk writes, then (for [`FIRST_REQUEST_WAIT`] at most) for
//! the first request of the sandbox that took the last spare to end
//! ([`Spares::request_ended`]), so that its commit and its read-ahead do not
//! land on that request (1 ms of a first `processes/run` here). A take
//! during a refill makes it run again when it ends. Spares survive a
//! restart and are used after it if their template is unchanged.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warren_runtime::storage::Pool;

/// Directory of the spare roots under the pool's root.
const SPARES_DIR: &str = "spares";

/// Spare roots kept per template.
pub const PER_TEMPLATE: usize = 4;

/// The spare roots of one pool; cheap to clone.
#[derive(Clone, Default)]
pub struct Spares {
    /// Templates being refilled, each with whether a spare was taken (or
    /// missed) since its refill began, so that it runs once more.
    refilling: Arc<Mutex<HashMap<String, bool>>>,
    /// The slot the next take tries first: takes at once start at
    /// different slots, so each finds a spare of its own, and the spares
    /// are used oldest first rather than the one just refilled.
    next: Arc<AtomicUsize>,
    /// Creates in flight (counted by the server's create path): a refill
    /// waits for none, at most [`QUIET_WAIT`], so that its snapshots'
    /// commit does not land in the middle of a create's own disk writes.
    in_flight: Arc<AtomicUsize>,
    /// The sandbox that took (or missed) the last spare, and when, until
    /// its first request ends: a refill waits for that, at most
    /// [`FIRST_REQUEST_WAIT`] from the take.
    first_request: Arc<Mutex<Option<(String, Instant)>>>,
    /// Whether `first_request` holds one: what every proxied request
    /// checks, so that only the first of a new sandbox takes the lock.
    awaiting: Arc<AtomicBool>,
}

/// Longest a refill waits for the creates in flight to finish.
const QUIET_WAIT: Duration = Duration::from_secs(1);

/// Longest a refill waits, from the take, for the taker's first request
/// to end: a create answers within milliseconds and its caller's first
/// command follows at once; one that sends none holds refills no longer.
pub const FIRST_REQUEST_WAIT: Duration = Duration::from_millis(100);

impl Spares {
    /// The count of creates in flight that refills wait out; the create
    /// path holds it up while it runs.
    pub fn in_flight(&self) -> Arc<AtomicUsize> {
        self.in_flight.clone()
    }

    /// Says that a request to sandbox `id` ended: if it is the first of
    /// the sandbox that took the last spare, the refill may go on. One
    /// atomic load for every other request.
    pub fn request_ended(&self, id: &str) {
        if !self.awaiting.load(Ordering::Acquire) {
            return;
        }
        let mut first = self.first_request.lock().unwrap_or_else(|e| e.into_inner());
        if first.as_ref().is_some_and(|(taker, _)| taker == id) {
            *first = None;
            self.awaiting.store(false, Ordering::Release);
        }
    }

    /// Moves a spare root of `template` (whose volume is `source`) to
    /// `rootfs`; false when there is none (the caller snapshots), and a
    /// refill starts either way: once the first request of `awaited` (the
    /// sandbox being made, when a caller is about to use it; not a warm
    /// pool's own, which nobody sends anything until it is handed over)
    /// has ended.
    pub fn take(
        &self,
        pool: &Pool,
        template: &str,
        source: &Path,
        rootfs: &Path,
        awaited: Option<&str>,
    ) -> bool {
        let Some(key) = key(source) else {
            return false;
        };
        if let Some(id) = awaited {
            *self.first_request.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((id.to_string(), Instant::now()));
            self.awaiting.store(true, Ordering::Release);
        }
        let dir = dir(pool);
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let taken = (first..first + PER_TEMPLATE).any(|slot| {
            let spare = dir.join(slot_name(template, &key, slot % PER_TEMPLATE));
            std::fs::rename(spare, rootfs).is_ok()
        });
        self.refill(pool, template, source, key);
        taken
    }

    fn refill(&self, pool: &Pool, template: &str, source: &Path, key: String) {
        {
            let mut refilling = self.refilling.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(again) = refilling.get_mut(template) {
                *again = true;
                return;
            }
            refilling.insert(template.to_string(), false);
        }
        let (this, pool, name, source) = (
            self.clone(),
            pool.clone(),
            template.to_string(),
            source.to_path_buf(),
        );
        let spawned = std::thread::Builder::new()
            .name("spare-root".into())
            .spawn(move || loop {
                this.wait_quiet();
                if let Err(e) = make(&pool, &name, &source, &key) {
                    tracing::debug!(template = name, error = %e, "making spare roots");
                }
                let mut refilling = this.refilling.lock().unwrap_or_else(|e| e.into_inner());
                match refilling.get_mut(&name) {
                    Some(again) if *again => *again = false,
                    _ => {
                        refilling.remove(&name);
                        return;
                    }
                }
            });
        if spawned.is_err() {
            self.refilling
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(template);
        }
    }

    /// Waits until no create is in flight, for at most [`QUIET_WAIT`],
    /// then until the last taker's first request has ended, at most
    /// [`FIRST_REQUEST_WAIT`] after its take.
    fn wait_quiet(&self) {
        let deadline = Instant::now() + QUIET_WAIT;
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        loop {
            {
                let mut first = self.first_request.lock().unwrap_or_else(|e| e.into_inner());
                match &*first {
                    None => return,
                    Some((_, at)) if at.elapsed() >= FIRST_REQUEST_WAIT => {
                        // Waited long enough; proxied requests stop
                        // looking for this taker's first.
                        *first = None;
                        self.awaiting.store(false, Ordering::Release);
                        return;
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Removes every spare root of `template` (deleted: its spares would only
/// take disk space, never be used).
pub fn remove(pool: &Pool, template: &str) {
    let Ok(entries) = std::fs::read_dir(dir(pool)) else {
        return;
    };
    let prefix = format!("{template}@");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.trim_start_matches('.').starts_with(&prefix) {
            let _ = pool.driver().delete(&entry.path());
        }
    }
}

fn dir(pool: &Pool) -> PathBuf {
    pool.root().join(SPARES_DIR)
}

/// What identifies the template volume at `source`.
fn key(source: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(source).ok()?;
    Some(format!(
        "{:x}-{}.{:09}",
        meta.dev(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// The name of `template`'s spare in `slot` for the volume `key`.
fn slot_name(template: &str, key: &str, slot: usize) -> String {
    format!("{template}@{key}+{slot}")
}

/// Removes `template`'s spares of other keys, then snapshots `source` into
/// every empty slot, all at once.
fn make(pool: &Pool, template: &str, source: &Path, key: &str) -> Result<(), String> {
    let dir = dir(pool);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let prefix = format!("{template}@");
    let wanted: Vec<String> = (0..PER_TEMPLATE)
        .map(|slot| slot_name(template, key, slot))
        .collect();
    let mut have = vec![false; PER_TEMPLATE];
    for entry in std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(slot) = wanted.iter().position(|w| *w == name) {
            have[slot] = true;
        } else if name.trim_start_matches('.').starts_with(&prefix) {
            // Another key's spare, one of an older layout, or one half
            // made by a server that died (one refill per template runs at
            // a time).
            let _ = pool.driver().delete(&entry.path());
        }
    }
    let empty: Vec<&String> = wanted
        .iter()
        .zip(&have)
        .filter(|(_, have)| !**have)
        .map(|(name, _)| name)
        .collect();
    let errors: Vec<String> = std::thread::scope(|scope| {
        let made: Vec<_> = empty
            .iter()
            .map(|name| scope.spawn(|| make_one(pool, &dir, source, name)))
            .collect();
        made.into_iter()
            .filter_map(|m| m.join().unwrap_or_else(|_| Err("panicked".into())).err())
            .collect()
    });
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Snapshots `source` into the spare `name` of `dir`: made under a
/// temporary name and renamed, so a spare is whole or absent.
fn make_one(pool: &Pool, dir: &Path, source: &Path, name: &str) -> Result<(), String> {
    let staged = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = pool.driver().delete(&staged);
    pool.driver()
        .snapshot(source, &staged, false)
        .map_err(|e| e.to_string())?;
    crate::node::read_ahead(&staged);
    std::fs::rename(&staged, dir.join(name)).map_err(|e| {
        let _ = pool.driver().delete(&staged);
        e.to_string()
    })
}
