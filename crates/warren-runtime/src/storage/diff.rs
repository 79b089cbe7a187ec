//! What changed between two volumes: the paths added, modified and deleted
//! from `from` to `to`, and the bounded contents of one file on each side.
//!
//! The btrfs driver asks the file system which paths changed (a send
//! stream without data, [`super::send`]) and classifies only those; the
//! copy driver walks both trees ([`walk`]). Both classify a path the same
//! way ([`classify`]): only in `to` is added, only in `from` deleted, in both
//! modified when its type, size, mode, owner, symlink target or (for
//! non-directories) mtime differ, or when the file system says its data or
//! extended attributes were written. A directory whose only change is its
//! mtime or size (what its children changing does to it) is left out. An
//! added or deleted directory brings its whole subtree along.
//!
//! The trees belong to sandboxes, which control their contents: every path
//! is resolved below its tree's root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` and examined with `fstatat(AT_SYMLINK_NOFOLLOW)`;
//! no symlink is ever followed and no file other than a regular one opened.
//! Everything is bounded: items ([`DiffLimits::max_items`]), time
//! ([`DiffLimits::deadline`]), entries walked, and bytes read of a file.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Instant;

use nix::fcntl::AtFlags;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::SFlag;

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only in `to`.
    Added,
    /// In both, different.
    Modified,
    /// Only in `from`.
    Deleted,
}

/// What a path is (on the side that has it; `to` when both do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A fifo, socket or device node.
    Other,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffItem {
    /// The path from the volume's root, without a leading `/`.
    pub path: Vec<u8>,
    /// How it changed.
    pub change: Change,
    /// What it is.
    pub kind: Kind,
    /// Bytes of a file, of a symlink's target; 0 for anything else.
    pub size: u64,
}

/// The changes between two volumes, sorted by path (bytewise).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// At most [`DiffLimits::max_items`].
    pub items: Vec<DiffItem>,
    /// Whether the list is incomplete: more changes than the limit, or the
    /// deadline passed first.
    pub truncated: bool,
}

/// Bounds of one diff.
#[derive(Debug, Clone, Copy)]
pub struct DiffLimits {
    /// Most items returned.
    pub max_items: usize,
    /// When to stop looking and answer with what was found (`truncated`).
    pub deadline: Instant,
}

/// Most directory entries [`walk`] looks at (besides the deadline).
const MAX_WALKED: usize = 1_000_000;

/// Metadata of a path on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    /// A symlink's target.
    target: Option<Vec<u8>>,
}

/// What the file system says happened to a path besides its metadata.
pub(crate) mod hint {
    /// Its data was written, truncated, cloned or allocated.
    pub const DATA: u8 = 1;
    /// Its extended attributes were set or removed.
    pub const XATTR: u8 = 2;
}

/// A volume's root, opened once; every lookup resolves below it.
pub(crate) struct Tree {
    root: OwnedFd,
}

fn errno_io(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Whether an error means "not there, as such, on this side" (missing, or a
/// component that is not a directory or is a symlink).
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EXDEV | libc::ENAMETOOLONG)
    )
}

impl Tree {
    /// Opens the root directory at `path` (a host path, trusted).
    pub(crate) fn open(path: &Path) -> io::Result<Tree> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(errno_io)?;
        // SAFETY: `open` just returned this fd and nothing else owns it.
        Ok(Tree {
            root: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Opens `rel` below the root without following any symlink.
    fn open_beneath(&self, rel: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
        let rel: &OsStr = if rel.is_empty() {
            OsStr::new(".")
        } else {
            OsStr::from_bytes(rel)
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
        let fd = nix::fcntl::openat2(self.root.as_raw_fd(), rel, how).map_err(errno_io)?;
        // SAFETY: `openat2` just returned this fd and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens directory `rel` for reading its entries.
    fn open_dir(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        self.open_beneath(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
    }

    /// The metadata of `rel` (a path from the root, no leading `/`), or
    /// `None` when this side has no such path.
    pub(crate) fn lstat(&self, rel: &[u8]) -> io::Result<Option<Stat>> {
        let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Ok(None);
        }
        let dir = match self.open_beneath(parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(dir) => dir,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        stat_at(&dir, OsStr::from_bytes(name))
    }

    /// Reads at most `max` bytes of the regular file `rel` (see [`Side`]).
    pub(crate) fn read_capped(&self, rel: &[u8], max: usize) -> io::Result<Side> {
        let Some(stat) = self.lstat(rel)? else {
            return Ok(Side::Missing);
        };
        if stat.kind != Kind::File {
            return Ok(Side::NotAFile(stat.kind));
        }
        let path = match self.open_beneath(rel, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(e) if is_absent(&e) => return Ok(Side::Missing),
            Err(e) => return Err(e),
        };
        // Only a regular file is ever opened for reading (a fifo would
        // block, a device node could act): check the very inode the O_PATH
        // descriptor holds, then reopen that inode.
        let meta = nix::sys::stat::fstat(path.as_raw_fd()).map_err(errno_io)?;
        if SFlag::from_bits_truncate(meta.st_mode & libc::S_IFMT) != SFlag::S_IFREG {
            return Ok(Side::NotAFile(kind_of(meta.st_mode)));
        }
        let file = File::open(format!("/proc/self/fd/{}", path.as_raw_fd()))?;
        let mut bytes = Vec::with_capacity(max.min(meta.st_size.max(0) as usize) + 1);
        file.take(max as u64 + 1).read_to_end(&mut bytes)?;
        let truncated = bytes.len() > max;
        bytes.truncate(max);
        Ok(Side::File { bytes, truncated })
    }

    /// Names and kinds of the entries of directory `rel` (`None`: not a
    /// directory on this side any more).
    fn entries(&self, rel: &[u8]) -> io::Result<Option<Vec<Vec<u8>>>> {
        let fd = match self.open_dir(rel) {
            Ok(fd) => fd,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut dir =
            nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)).map_err(errno_io)?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(errno_io)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        names.sort();
        Ok(Some(names))
    }
}

/// One side of a file diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// No such path on this side.
    Missing,
    /// The path is something other than a regular file.
    NotAFile(Kind),
    /// A regular file's first bytes.
    File {
        /// At most the `max` asked for.
        bytes: Vec<u8>,
        /// Whether the file is longer.
        truncated: bool,
    },
}

fn kind_of(mode: u32) -> Kind {
    match SFlag::from_bits_truncate(mode & libc::S_IFMT) {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    }
}

fn stat_at(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<Stat>> {
    let st =
        match nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if is_absent(&errno_io(e)) => return Ok(None),
            Err(e) => return Err(errno_io(e)),
        };
    let kind = kind_of(st.st_mode);
    let target = if kind == Kind::Symlink {
        match nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name) {
            Ok(t) => Some(t.into_vec()),
            Err(e) if is_absent(&errno_io(e)) => return Ok(None),
            Err(e) => return Err(errno_io(e)),
        }
    } else {
        None
    };
    Ok(Some(Stat {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: match kind {
            Kind::File => st.st_size as u64,
            Kind::Symlink => target.as_ref().map_or(0, |t| t.len() as u64),
            _ => 0,
        },
        mtime: (st.st_mtime, st.st_mtime_nsec),
        target,
    }))
}

/// How `from` and `to` (the two sides' metadata of one path) differ, given
/// what the file system said of it (`hints`, see [`hint`]).
pub(crate) fn classify(
    from: Option<&Stat>,
    to: Option<&Stat>,
    hints: u8,
) -> Option<(Change, Kind, u64)> {
    match (from, to) {
        (None, None) => None,
        (None, Some(b)) => Some((Change::Added, b.kind, b.size)),
        (Some(a), None) => Some((Change::Deleted, a.kind, a.size)),
        (Some(a), Some(b)) => {
            let changed = if a.kind != b.kind {
                true
            } else if b.kind == Kind::Dir {
                // Its mtime and size follow its children: noise.
                a.mode != b.mode || a.uid != b.uid || a.gid != b.gid || hints & hint::XATTR != 0
            } else {
                a != b || hints != 0
            };
            changed.then_some((Change::Modified, b.kind, b.size))
        }
    }
}

/// Collects classified items, their subtrees and the bounds.
pub(crate) struct Collector<'a> {
    from: &'a Tree,
    to: &'a Tree,
    limits: DiffLimits,
    items: BTreeMap<Vec<u8>, DiffItem>,
    walked: usize,
    truncated: bool,
}

impl<'a> Collector<'a> {
    /// An empty collection over the two trees.
    pub(crate) fn new(from: &'a Tree, to: &'a Tree, limits: DiffLimits) -> Self {
        Collector {
            from,
            to,
            limits,
            items: BTreeMap::new(),
            walked: 0,
            truncated: false,
        }
    }

    /// Whether to stop: the deadline passed or too much was found.
    pub(crate) fn full(&mut self) -> bool {
        if self.items.len() > self.limits.max_items
            || self.walked > MAX_WALKED
            || Instant::now() >= self.limits.deadline
        {
            self.truncated = true;
        }
        self.truncated
    }

    /// Marks the result incomplete (the caller stopped early).
    pub(crate) fn set_truncated(&mut self) {
        self.truncated = true;
    }

    /// Classifies `rel` from both sides and records it, with the subtree of
    /// a directory that only one side has.
    pub(crate) fn path(&mut self, rel: &[u8], hints: u8) -> io::Result<()> {
        if rel.is_empty() || self.items.contains_key(rel) || self.full() {
            return Ok(());
        }
        let a = self.from.lstat(rel)?;
        let b = self.to.lstat(rel)?;
        self.record(rel, a.as_ref(), b.as_ref(), hints)
    }

    fn record(
        &mut self,
        rel: &[u8],
        a: Option<&Stat>,
        b: Option<&Stat>,
        hints: u8,
    ) -> io::Result<()> {
        let Some((change, kind, size)) = classify(a, b, hints) else {
            return Ok(());
        };
        self.items.insert(
            rel.to_vec(),
            DiffItem {
                path: rel.to_vec(),
                change,
                kind,
                size,
            },
        );
        let a_dir = a.is_some_and(|s| s.kind == Kind::Dir);
        let b_dir = b.is_some_and(|s| s.kind == Kind::Dir);
        if a_dir && !b_dir {
            self.subtree(rel, Change::Deleted)?;
        } else if b_dir && !a_dir {
            self.subtree(rel, Change::Added)?;
        }
        Ok(())
    }

    /// Records everything below directory `rel` of one side as `change`.
    fn subtree(&mut self, rel: &[u8], change: Change) -> io::Result<()> {
        let tree = if change == Change::Added {
            self.to
        } else {
            self.from
        };
        let mut pending = vec![rel.to_vec()];
        while let Some(dir) = pending.pop() {
            if self.full() {
                return Ok(());
            }
            let Some(names) = tree.entries(&dir)? else {
                continue;
            };
            self.walked += names.len();
            let fd = match tree.open_beneath(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(e),
            };
            for name in names {
                let Some(stat) = stat_at(&fd, OsStr::from_bytes(&name))? else {
                    continue;
                };
                let path = join(&dir, &name);
                if stat.kind == Kind::Dir {
                    pending.push(path.clone());
                }
                self.items.entry(path.clone()).or_insert(DiffItem {
                    path,
                    change,
                    kind: stat.kind,
                    size: stat.size,
                });
            }
        }
        Ok(())
    }

    /// Walks both trees from their roots, comparing every entry (the copy
    /// driver's diff).
    pub(crate) fn walk(&mut self) -> io::Result<()> {
        let mut pending: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(dir) = pending.pop() {
            if self.full() {
                return Ok(());
            }
            let (Some(a_names), Some(b_names)) = (self.from.entries(&dir)?, self.to.entries(&dir)?)
            else {
                continue;
            };
            self.walked += a_names.len() + b_names.len();
            let open = |tree: &Tree| tree.open_beneath(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY);
            let (a_fd, b_fd) = (open(self.from)?, open(self.to)?);
            let mut names = a_names;
            names.extend(b_names);
            names.sort();
            names.dedup();
            for name in names {
                if self.full() {
                    return Ok(());
                }
                let a = stat_at(&a_fd, OsStr::from_bytes(&name))?;
                let b = stat_at(&b_fd, OsStr::from_bytes(&name))?;
                let path = join(&dir, &name);
                let both_dirs = a.as_ref().is_some_and(|s| s.kind == Kind::Dir)
                    && b.as_ref().is_some_and(|s| s.kind == Kind::Dir);
                if both_dirs {
                    pending.push(path.clone());
                }
                self.record(&path, a.as_ref(), b.as_ref(), 0)?;
            }
        }
        Ok(())
    }

    /// The items, sorted and bounded.
    pub(crate) fn finish(mut self) -> Diff {
        self.full();
        let mut truncated = self.truncated;
        let mut items: Vec<DiffItem> = self.items.into_values().collect();
        if items.len() > self.limits.max_items {
            items.truncate(self.limits.max_items);
            truncated = true;
        }
        Diff { items, truncated }
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        path.extend_from_slice(dir);
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// The copy driver's diff: a walk of both trees.
pub fn walk(from: &Path, to: &Path, limits: DiffLimits) -> io::Result<Diff> {
    let (a, b) = (Tree::open(from)?, Tree::open(to)?);
    let mut collector = Collector::new(&a, &b, limits);
    collector.walk()?;
    Ok(collector.finish())
}

/// Reads at most `max` bytes of the file at `rel` (a path from the root,
/// no leading `/`, already checked to hold no `.` or `..` component) in the
/// tree at `root`, never following a symlink.
pub fn read_file(root: &Path, rel: &[u8], max: usize) -> io::Result<Side> {
    Tree::open(root)?.read_capped(rel, max)
}
