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
//! up their own disk writes; while more than [`URGENT_LEFT`] spares are
//! left it also waits until no create has ended for [`AFTER_CREATE`], so
//! that it does not land on a new sandbox's first command either (a
//! create loop then refills once every few creates, not after each). A
//! take during a refill makes it run again when it ends. Spares survive a restart and are used after it if
//! their template is unchanged.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// missed) since its refill began, so that it runs once more, and
    /// whether the last take was a create's (see [`Spares::wait_quiet`]).
    refilling: Arc<Mutex<HashMap<String, Refill>>>,
    /// The slot the next take tries first: takes at once start at
    /// different slots, so each finds a spare of its own, and the spares
    /// are used oldest first rather than the one just refilled.
    next: Arc<AtomicUsize>,
    /// Creates in flight (counted by the server's create path): a refill
    /// waits for none, at most [`QUIET_WAIT`], so that its snapshots'
    /// commit does not land in the middle of a create's own disk writes.
    in_flight: Arc<InFlight>,
}

/// A template's refill under way.
struct Refill {
    /// A spare was taken (or missed) since it began: it runs once more.
    again: bool,
    /// The last take was a create's, whose sandbox's first command comes
    /// next.
    by_create: bool,
}

/// Longest a refill waits for the creates in flight to finish.
const QUIET_WAIT: Duration = Duration::from_secs(1);
/// How long after the last create ended a refill waits while it is not
/// urgent: a new sandbox's first command, which comes next, runs without
/// the refill's snapshot commit and read-ahead beside it.
const AFTER_CREATE: Duration = Duration::from_millis(25);
/// Spares left of a template at or under which its refill is urgent
/// (waits only for the creates in flight).
const URGENT_LEFT: usize = 1;

/// The creates in flight, and when the last one ended.
#[derive(Debug)]
pub struct InFlight {
    count: AtomicUsize,
    /// Nanoseconds from `epoch` to the end of the last create.
    last_end: AtomicU64,
    epoch: Instant,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            count: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl InFlight {
    /// A create begins.
    pub fn begin(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// A create ended; true if it was the last one in flight.
    pub fn end(&self) -> bool {
        let nanos = self.epoch.elapsed().as_nanos() as u64;
        self.last_end.fetch_max(nanos, Ordering::SeqCst);
        self.count.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Creates in flight now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// How long ago the last create ended (`None`: none has).
    fn since_last_end(&self) -> Option<Duration> {
        match self.last_end.load(Ordering::SeqCst) {
            0 => None,
            nanos => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(nanos)),
            ),
        }
    }
}

impl Spares {
    /// The count of creates in flight that refills wait out; the create
    /// path holds it up while it runs.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.in_flight.clone()
    }

    /// Moves a spare root of `template` (whose volume is `source`) to
    /// `rootfs`; false when there is none (the caller snapshots), and a
    /// refill starts either way.
    pub fn take(&self, pool: &Pool, template: &str, source: &Path, rootfs: &Path) -> bool {
        let Some(key) = key(source) else {
            return false;
        };
        let dir = dir(pool);
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let taken = (first..first + PER_TEMPLATE).any(|slot| {
            let spare = dir.join(slot_name(template, &key, slot % PER_TEMPLATE));
            std::fs::rename(spare, rootfs).is_ok()
        });
        // A create counts itself in flight; the warm pool's own starts
        // (`crate::sandboxes::pool`) run when none is.
        let by_create = self.in_flight.count() > 0;
        self.refill(pool, template, source, key, by_create);
        taken
    }

    fn refill(&self, pool: &Pool, template: &str, source: &Path, key: String, by_create: bool) {
        {
            let mut refilling = self.refilling.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(refill) = refilling.get_mut(template) {
                refill.again = true;
                refill.by_create = by_create;
                return;
            }
            let refill = Refill {
                again: false,
                by_create,
            };
            refilling.insert(template.to_string(), refill);
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
                let by_create = (this.refilling.lock().unwrap_or_else(|e| e.into_inner()))
                    .get(&name)
                    .is_some_and(|r| r.by_create);
                this.wait_quiet(&pool, &name, &key, by_create);
                if let Err(e) = make(&pool, &name, &source, &key) {
                    tracing::debug!(template = name, error = %e, "making spare roots");
                }
                let mut refilling = this.refilling.lock().unwrap_or_else(|e| e.into_inner());
                match refilling.get_mut(&name) {
                    Some(refill) if refill.again => refill.again = false,
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

    /// Waits, for at most [`QUIET_WAIT`], until no create is in flight
    /// and, after a spare taken `by_create` while `template` has more than
    /// [`URGENT_LEFT`] spares of `key` left, none has ended for
    /// [`AFTER_CREATE`]. (A spare the warm pool took is refilled beside
    /// the pool's start, which no caller waits for.)
    fn wait_quiet(&self, pool: &Pool, template: &str, key: &str, by_create: bool) {
        let deadline = Instant::now() + QUIET_WAIT;
        while Instant::now() < deadline {
            let (count, since) = (self.in_flight.count(), self.in_flight.since_last_end());
            let since = since.filter(|_| by_create);
            if !must_wait(count, since, || left(pool, template, key)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
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

/// Whether a refill waits, with `in_flight` creates in flight, the last
/// one ended `since_last_end` ago, and `left()` spares of its template.
fn must_wait(
    in_flight: usize,
    since_last_end: Option<Duration>,
    left: impl FnOnce() -> usize,
) -> bool {
    in_flight > 0
        || (since_last_end.is_some_and(|since| since < AFTER_CREATE) && left() > URGENT_LEFT)
}

/// How many spares of `template` for the volume `key` are ready.
fn left(pool: &Pool, template: &str, key: &str) -> usize {
    let dir = dir(pool);
    (0..PER_TEMPLATE)
        .filter(|slot| std::fs::symlink_metadata(dir.join(slot_name(template, key, *slot))).is_ok())
        .count()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refill_waits_out_creates_and_a_new_sandboxs_first_moments_unless_urgent() {
        let ms = Duration::from_millis;
        let never = || -> usize { panic!("spares counted while a create is in flight") };
        assert!(must_wait(1, None, never));
        assert!(must_wait(2, Some(ms(500)), never));
        // No create in flight: none ended, or the last long enough ago.
        assert!(!must_wait(0, None, || PER_TEMPLATE));
        assert!(!must_wait(0, Some(AFTER_CREATE + ms(1)), || PER_TEMPLATE));
        // One just ended: wait while spares are left, not when few are.
        assert!(must_wait(0, Some(ms(1)), || URGENT_LEFT + 1));
        assert!(!must_wait(0, Some(ms(1)), || URGENT_LEFT));
        assert!(!must_wait(0, Some(ms(1)), || 0));
    }

    #[test]
    fn in_flight_counts_creates_and_notes_when_the_last_ended() {
        let f = InFlight::default();
        assert_eq!((f.count(), f.since_last_end()), (0, None));
        f.begin();
        f.begin();
        assert_eq!(f.count(), 2);
        assert!(!f.end(), "one is still in flight");
        let since = f.since_last_end().expect("a create ended");
        assert!(since < Duration::from_secs(5), "{since:?}");
        assert!(f.end(), "the last one");
        assert_eq!(f.count(), 0);
    }
}
