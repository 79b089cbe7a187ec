//! `watch`: inotify events of a directory (and, recursively, its
//! subdirectories) as a stream.
//!
//! Each watch owns one inotify instance, dropped with the stream when the
//! client goes away, and counts against `limits.max_watches`. Directories
//! are opened under the jail and watched through `/proc/self/fd/N`, so a
//! watch never lands outside the root. In recursive mode a directory that
//! appears later is watched as soon as its creation is seen, and what was
//! created inside it before that is reported as `create` events.
//!
//! Mapping: `IN_CREATE` is create; `IN_MODIFY`/`IN_ATTRIB` modify (repeats
//! for one path within one read are coalesced); `IN_DELETE` delete;
//! `IN_MOVED_FROM` + `IN_MOVED_TO` with one cookie rename (`from` set). A
//! move out of the tree is a delete, a move into it a create. The agent's
//! own temporary files are invisible, so an atomic `PUT` shows as `create`
//! of the target. The stream ends when the watched directory is deleted or
//! moved away.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use nix::sys::stat::SFlag;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use warren_api::agent::{WatchEvent, WatchEventKind, WatchInfo};

use super::jail::{file_type, lstat_at, OpenError};
use super::ops::read_names;
use super::stream::{TMP_PREFIX, TMP_SUFFIX};
use super::{child_path, Files, Inner, WatchPermit};
use crate::AgentError;

/// How long a lone `IN_MOVED_FROM` waits for its `IN_MOVED_TO` before it
/// is reported as a delete (the pair can straddle two reads).
const PAIR_WAIT: Duration = Duration::from_millis(20);

/// What a watched directory reports.
fn dir_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
}

/// One item of a watch stream.
#[derive(Debug, Clone)]
pub enum WatchMessage {
    /// First item: the watch is armed; changes from now on are reported.
    Ready(WatchInfo),
    /// A change.
    Event(WatchEvent),
    /// The kernel dropped events (queue overflow or watch limit): rescan.
    Overflow(WatchInfo),
}

/// The stream of a watch; dropping it removes the watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = WatchMessage> + Send>>;

impl Files {
    /// Starts watching the directory `path`.
    pub async fn watch(&self, path: String, recursive: bool) -> Result<WatchStream, AgentError> {
        let permit = self.watch_permit()?;
        let files = self.inner.clone();
        let tree = self
            .blocking(move |_| Tree::arm(files, path, recursive, permit))
            .await?;
        let register = |fd: OwnedFd| {
            // SAFETY: the descriptor is an `OwnedFd` moved into the AsyncFd,
            // so it stays open and the same for the AsyncFd's whole life.
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(std::io::Error::from)
        };
        let readiness = tree
            .inotify
            .as_fd()
            .try_clone_to_owned()
            .and_then(register)
            .map_err(|source| AgentError::Io {
                op: "register inotify",
                source,
            })?;
        let state = State { readiness, tree };
        Ok(Box::pin(futures::stream::unfold(state, next)))
    }
}

struct State {
    /// A duplicate of the inotify fd, registered with the reactor.
    readiness: AsyncFd<OwnedFd>,
    tree: Tree,
}

/// The next message: queued ones first, else read and translate a batch
/// of events (on the blocking pool: new directories are opened and read).
async fn next(mut state: State) -> Option<(WatchMessage, State)> {
    loop {
        if let Some(message) = state.tree.queue.pop_front() {
            return Some((message, state));
        }
        if state.tree.done {
            return None;
        }
        let read = read_batch(&state.readiness, &state.tree.inotify);
        let events = if state.tree.pending.is_some() {
            match tokio::time::timeout(PAIR_WAIT, read).await {
                Ok(events) => events,
                Err(_) => {
                    state.tree.flush_pending();
                    continue;
                }
            }
        } else {
            read.await
        };
        let events = match events {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "reading inotify events failed; ending the watch");
                return None;
            }
        };
        let State {
            readiness,
            mut tree,
        } = state;
        tree = tokio::task::spawn_blocking(move || {
            tree.handle(events);
            tree
        })
        .await
        .ok()?;
        state = State { readiness, tree };
    }
}

async fn read_batch(
    readiness: &AsyncFd<OwnedFd>,
    inotify: &Inotify,
) -> std::io::Result<Vec<InotifyEvent>> {
    loop {
        let mut guard = readiness.readable().await?;
        match guard.try_io(|_| inotify.read_events().map_err(std::io::Error::from)) {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// A `IN_MOVED_FROM` waiting for its `IN_MOVED_TO`.
struct Pending {
    cookie: u32,
    sub: PathBuf,
    is_dir: bool,
}

/// The watched directories and the translation of their events.
struct Tree {
    inotify: Inotify,
    files: Arc<Inner>,
    /// The watched directory, relative to the jail's anchor.
    root_rel: PathBuf,
    /// The watched directory as the caller named it.
    shown: String,
    recursive: bool,
    /// Watched directory of each descriptor, relative to the watched root.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    root_wd: WatchDescriptor,
    queue: VecDeque<WatchMessage>,
    pending: Option<Pending>,
    done: bool,
    _permit: WatchPermit,
}

impl Tree {
    fn arm(
        files: Arc<Inner>,
        path: String,
        recursive: bool,
        permit: WatchPermit,
    ) -> Result<Tree, AgentError> {
        let root_rel = files.jail.relative(&path)?;
        let root = files
            .jail
            .open(&root_rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|e| match e {
                OpenError::Sys(Errno::ENOTDIR) => AgentError::NotADirectory(path.clone()),
                e => e.into_agent("watch", &path),
            })?;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| AgentError::InotifyLimit(e.into()))?;
        let root_wd = add_watch(&inotify, &root).map_err(|e| match e {
            Errno::ENOSPC => AgentError::InotifyLimit(e.into()),
            e => super::jail::fs_error("watch", &path, e),
        })?;
        let mut tree = Tree {
            inotify,
            files,
            root_rel,
            shown: path.clone(),
            recursive,
            dirs: HashMap::from([(root_wd, PathBuf::new())]),
            root_wd,
            queue: VecDeque::new(),
            pending: None,
            done: false,
            _permit: permit,
        };
        if recursive {
            tree.add_children(Path::new(""), false)
                .map_err(|e| AgentError::InotifyLimit(e.into()))?;
        }
        tree.queue.push_back(WatchMessage::Ready(tree.info()));
        Ok(tree)
    }

    fn info(&self) -> WatchInfo {
        WatchInfo {
            path: self.shown.clone(),
            recursive: self.recursive,
        }
    }

    /// Watches the directory `sub` (and, recursively, what is in it).
    /// With `announce`, its contents are reported as created. Only a full
    /// watch table (`ENOSPC`) is an error; directories that vanish or turn
    /// out not to be directories are skipped.
    fn add_tree(&mut self, sub: &Path, announce: bool) -> Result<(), Errno> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let Ok(dir) = self.files.jail.open(&self.root_rel.join(sub), flags) else {
            return Ok(());
        };
        match add_watch(&self.inotify, &dir) {
            Ok(wd) => {
                self.dirs.insert(wd, sub.to_path_buf());
            }
            Err(Errno::ENOSPC) => return Err(Errno::ENOSPC),
            Err(_) => return Ok(()),
        }
        self.add_children(sub, announce)
    }

    fn add_children(&mut self, sub: &Path, announce: bool) -> Result<(), Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let Ok(dir) = self.files.jail.open(&self.root_rel.join(sub), flags) else {
            return Ok(());
        };
        let Ok(mut names) = read_names(&dir) else {
            return Ok(());
        };
        names.sort();
        for name in names {
            if is_temporary(&name) {
                continue;
            }
            let Ok(Some(st)) = lstat_at(&dir, &name) else {
                continue;
            };
            let child = sub.join(&name);
            let is_dir = file_type(&st) == SFlag::S_IFDIR;
            if announce {
                self.push(WatchEventKind::Create, &child, None, is_dir);
            }
            if is_dir {
                self.add_tree(&child, announce)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, kind: WatchEventKind, sub: &Path, from: Option<&Path>, is_dir: bool) {
        let event = WatchEvent {
            kind,
            path: self.shown_path(sub),
            from: from.map(|f| self.shown_path(f)),
            is_dir,
        };
        if kind == WatchEventKind::Modify {
            if let Some(WatchMessage::Event(last)) = self.queue.back() {
                if last.kind == WatchEventKind::Modify && last.path == event.path {
                    return;
                }
            }
        }
        self.queue.push_back(WatchMessage::Event(event));
    }

    fn shown_path(&self, sub: &Path) -> String {
        if sub.as_os_str().is_empty() {
            self.shown.clone()
        } else {
            child_path(&self.shown, &sub.to_string_lossy())
        }
    }

    /// A lone `IN_MOVED_FROM`: the entry left the tree.
    fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            if p.is_dir {
                self.forget_under(&p.sub);
            }
            self.push(WatchEventKind::Delete, &p.sub, None, p.is_dir);
        }
    }

    /// Stops watching `sub` and everything under it.
    fn forget_under(&mut self, sub: &Path) {
        let gone: Vec<WatchDescriptor> = self
            .dirs
            .iter()
            .filter(|(_, path)| path.starts_with(sub))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            self.dirs.remove(&wd);
            let _ = self.inotify.rm_watch(wd);
        }
    }

    /// A directory moved within the tree: its watches keep working, under
    /// new names.
    fn rename_under(&mut self, from: &Path, to: &Path) {
        for path in self.dirs.values_mut() {
            if let Ok(rest) = path.strip_prefix(from) {
                *path = to.join(rest);
            }
        }
    }

    fn handle(&mut self, events: Vec<InotifyEvent>) {
        for event in events {
            self.handle_one(event);
            if self.done {
                return;
            }
        }
    }

    fn handle_one(&mut self, event: InotifyEvent) {
        let mask = event.mask;
        if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            self.queue.push_back(WatchMessage::Overflow(self.info()));
            return;
        }
        let Some(dir) = self.dirs.get(&event.wd).cloned() else {
            return;
        };
        let is_dir = mask.contains(AddWatchFlags::IN_ISDIR);
        if mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF)
            || mask.contains(AddWatchFlags::IN_IGNORED)
        {
            if event.wd == self.root_wd {
                self.flush_pending();
                self.push(WatchEventKind::Delete, Path::new(""), None, true);
                self.done = true;
            } else if mask.contains(AddWatchFlags::IN_IGNORED) {
                self.dirs.remove(&event.wd);
            }
            // A subdirectory's own delete or move is reported by its parent.
            return;
        }
        let Some(name) = event.name else {
            return;
        };
        if is_temporary(&name) {
            return;
        }
        let sub = dir.join(&name);
        if mask.contains(AddWatchFlags::IN_CREATE) {
            self.push(WatchEventKind::Create, &sub, None, is_dir);
            if is_dir && self.recursive {
                self.watch_new_dir(&sub);
            }
        } else if mask.intersects(AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_ATTRIB) {
            self.push(WatchEventKind::Modify, &sub, None, is_dir);
        } else if mask.contains(AddWatchFlags::IN_DELETE) {
            self.push(WatchEventKind::Delete, &sub, None, is_dir);
        } else if mask.contains(AddWatchFlags::IN_MOVED_FROM) {
            self.flush_pending();
            self.pending = Some(Pending {
                cookie: event.cookie,
                sub,
                is_dir,
            });
        } else if mask.contains(AddWatchFlags::IN_MOVED_TO) {
            match self.pending.take() {
                Some(p) if p.cookie == event.cookie => {
                    self.push(WatchEventKind::Rename, &sub, Some(&p.sub), is_dir);
                    if is_dir && self.recursive {
                        self.rename_under(&p.sub, &sub);
                    }
                }
                other => {
                    self.pending = other;
                    self.flush_pending();
                    self.push(WatchEventKind::Create, &sub, None, is_dir);
                    if is_dir && self.recursive {
                        self.watch_new_dir(&sub);
                    }
                }
            }
        }
    }

    fn watch_new_dir(&mut self, sub: &Path) {
        if self.add_tree(sub, true).is_err() {
            // Out of inotify watches: the client must not believe it sees everything.
            self.queue.push_back(WatchMessage::Overflow(self.info()));
        }
    }
}

/// Watches the directory behind `dir` through its `/proc/self/fd` link, so
/// the watch is on exactly the directory that was resolved under the jail.
fn add_watch(inotify: &Inotify, dir: &OwnedFd) -> Result<WatchDescriptor, Errno> {
    let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
    inotify.add_watch(link.as_str(), dir_mask())
}

/// Whether `name` is one of the agent's own temporary files.
fn is_temporary(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with(TMP_PREFIX) && name.ends_with(TMP_SUFFIX)
}
