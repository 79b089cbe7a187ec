//! File operations behind `/v1/files`, under the workdir and the optional
//! root jail.
//!
//! - `jail`: caller path → fds opened beneath the root (`openat2`).
//! - `ops`: stat, list, delete, mkdir, move, edit.
//! - `stream`: streaming reads with `Range`, atomic streaming writes.
//! - `archive`: tar upload (extracted as it arrives) and download
//!   (produced as it is sent).
//! - `watch`: inotify watches as a stream of events.
//! - `describe`: entry details and depth-limited walks (for envd).
//!
//! Everything that touches the disk runs on the blocking pool; bodies move
//! between the connection and that pool through small bounded channels, so
//! memory stays constant whatever the size of a file.

mod archive;
mod describe;
mod jail;
mod ops;
mod stream;
mod watch;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::sys::stat::{FileStat, SFlag};
use warren_api::agent::{FileEntry, FileStat as WireStat};

pub use archive::TarStream;
pub use describe::{EntryDetails, EntryKind};
pub use stream::{ByteRange, FileRead};
pub use watch::{WatchMessage, WatchStream};

use self::jail::{file_type, Jail};
use crate::{AgentConfig, AgentError};

/// File operations under the configured workdir and optional root jail.
#[derive(Clone)]
pub struct Files {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<AgentConfig>,
    jail: Jail,
    /// Watches open now, against `limits.max_watches`.
    watches: AtomicUsize,
}

impl Files {
    /// File operations for this configuration.
    pub fn new(config: Arc<AgentConfig>) -> Self {
        Files {
            inner: Arc::new(Inner {
                jail: Jail::new(&config),
                config,
                watches: AtomicUsize::new(0),
            }),
        }
    }

    /// Runs `f` on the blocking pool with access to the shared state.
    async fn blocking<T, F>(&self, f: F) -> Result<T, AgentError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, AgentError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| AgentError::Io {
                op: "file operation task",
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// Reserves one of `limits.max_watches`; released when dropped.
    fn watch_permit(&self) -> Result<WatchPermit, AgentError> {
        let max = self.inner.config.limits.max_watches;
        let previous = self.inner.watches.fetch_add(1, Ordering::SeqCst);
        let permit = WatchPermit(self.inner.clone());
        if previous >= max {
            return Err(AgentError::TooManyWatches(max));
        }
        Ok(permit)
    }
}

/// One open watch, counted against the limit while alive.
struct WatchPermit(Arc<Inner>);

impl Drop for WatchPermit {
    fn drop(&mut self) {
        self.0.watches.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The wire stat of an existing file.
fn wire_stat(st: &FileStat) -> WireStat {
    let kind = file_type(st);
    WireStat {
        exists: true,
        is_file: kind == SFlag::S_IFREG,
        is_dir: kind == SFlag::S_IFDIR,
        size: st.st_size.max(0) as u64,
        mode: st.st_mode & 0o7777,
        modified_at: Some(rfc3339(st.st_mtime, st.st_mtime_nsec)),
    }
}

/// A directory entry: `lstat` says whether it is a symlink, `target` (the
/// followed stat, when the link resolves inside the jail) gives the rest.
fn wire_entry(
    name: String,
    path: String,
    lstat: &FileStat,
    target: Option<&FileStat>,
) -> FileEntry {
    let st = target.unwrap_or(lstat);
    FileEntry {
        name,
        path,
        size: st.st_size.max(0) as u64,
        is_dir: file_type(st) == SFlag::S_IFDIR,
        is_symlink: file_type(lstat) == SFlag::S_IFLNK,
        mode: st.st_mode & 0o7777,
        modified_at: rfc3339(st.st_mtime, st.st_mtime_nsec),
    }
}

/// `secs.nanos` since the epoch as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(secs: i64, nanos: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for any i64 day.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos.clamp(0, 999_999_999) / 1_000_000
    )
}

/// The caller's path joined with a child name, keeping the caller's spelling.
fn child_path(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5_000_000), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn joins_child_paths() {
        assert_eq!(child_path("a", "b"), "a/b");
        assert_eq!(child_path("/", "b"), "/b");
        assert_eq!(child_path("a/", "b"), "a/b");
    }
}
