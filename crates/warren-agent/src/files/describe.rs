//! Entry details for E2B's envd (`crate::envd`): one entry without
//! following a symlink in its final name (but saying what the link resolves
//! to), and directory walks to a depth that never follow symlinked
//! directories.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, SFlag};

use super::jail::{file_type, fs_error, lstat_at, Jail, OpenError};
use super::ops::read_names;
use super::{child_path, Files};
use crate::AgentError;

/// What kind of file an entry is (a symlink's own kind, see [`EntryDetails`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

/// One entry as envd describes it.
#[derive(Debug, Clone)]
pub struct EntryDetails {
    /// The final name.
    pub name: String,
    /// The path as the caller named it (children: joined to it).
    pub path: String,
    /// The entry's own kind (`Symlink` for a link).
    pub kind: EntryKind,
    /// For a symlink, the kind of what it resolves to (`None`: dangling, or
    /// outside the jail); else the entry's own kind.
    pub resolved_kind: Option<EntryKind>,
    /// `st_mode` of the entry itself (type and permission bits).
    pub lstat_mode: u32,
    /// Permission bits of the entry, or of a symlink's target.
    pub perm: u32,
    /// Size in bytes (of the link itself for a symlink).
    pub size: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub mtime: (i64, i64),
    /// For a symlink, the path it resolves to (the link's own path when it
    /// cannot be resolved, as envd does).
    pub symlink_target: Option<String>,
    /// User metadata: the `user.e2b.*` extended attributes (of a symlink's
    /// target), without their prefix.
    pub metadata: BTreeMap<String, String>,
}

/// Prefix of the extended attributes that hold E2B's file metadata.
const METADATA_PREFIX: &str = "user.e2b.";
/// Most bytes of the attribute names of one file read.
const MAX_XATTR_LIST: usize = 64 * 1024;
/// Most bytes of one attribute value read.
const MAX_XATTR_VALUE: usize = 4096;

fn kind_of(st: &FileStat) -> EntryKind {
    match file_type(st) {
        SFlag::S_IFREG => EntryKind::File,
        SFlag::S_IFDIR => EntryKind::Directory,
        SFlag::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

impl Files {
    /// Details of the entry at `path` (a symlink is described, not
    /// followed). A missing entry is `file_not_found`.
    pub async fn describe(&self, path: String) -> Result<EntryDetails, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            if Jail::is_anchor(&rel) {
                let fd = inner
                    .jail
                    .open_dir(&rel)
                    .map_err(|e| e.into_agent("stat", &path))?;
                let st = nix::sys::stat::fstat(fd.as_raw_fd())
                    .map_err(|e| fs_error("stat", &path, e))?;
                return Ok(details(&inner.jail, &rel, "/".into(), path, &st));
            }
            let entry = inner.jail.entry(&rel, false, &path)?;
            let Some(st) = entry.stat else {
                return Err(AgentError::FileNotFound(path));
            };
            let name = entry.name.to_string_lossy().into_owned();
            Ok(details(&inner.jail, &rel, name, path, &st))
        })
        .await
    }

    /// Sets user metadata on the file at `path` (following symlinks), as
    /// `user.e2b.<key>` extended attributes.
    pub async fn set_metadata(
        &self,
        path: String,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), AgentError> {
        if metadata.is_empty() {
            return Ok(());
        }
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            let fd = inner
                .jail
                .open(&rel, OFlag::O_PATH)
                .map_err(|e| e.into_agent("set metadata of", &path))?;
            let link = proc_path(&fd);
            for (key, value) in &metadata {
                let name = CString::new(format!("{METADATA_PREFIX}{key}")).map_err(|_| {
                    AgentError::InvalidRequest(format!("invalid metadata key {key:?}"))
                })?;
                // SAFETY: both strings are NUL-terminated and live across the
                // call; the value pointer and length describe `value`.
                let rc = unsafe {
                    libc::setxattr(
                        link.as_ptr(),
                        name.as_ptr(),
                        value.as_ptr().cast(),
                        value.len(),
                        0,
                    )
                };
                if rc != 0 {
                    return Err(fs_error("set metadata of", &path, Errno::last()));
                }
            }
            Ok(())
        })
        .await
    }

    /// The entries under the directory `path` down to `depth` levels (1:
    /// its children only), parents before their children, each level sorted
    /// by name. Symlinked directories are listed, not entered. More than
    /// `max` entries is `too_large`.
    pub async fn walk(
        &self,
        path: String,
        depth: u32,
        max: usize,
    ) -> Result<Vec<EntryDetails>, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            let dir = inner
                .jail
                .open(&rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|e| match e {
                    OpenError::Sys(Errno::ENOTDIR) => AgentError::NotADirectory(path.clone()),
                    e => e.into_agent("list", &path),
                })?;
            let mut out = Vec::new();
            walk_dir(&inner.jail, &dir, &rel, &path, depth.max(1), max, &mut out)?;
            Ok(out)
        })
        .await
    }
}

fn walk_dir(
    jail: &Jail,
    dir: &OwnedFd,
    rel: &Path,
    shown: &str,
    depth: u32,
    max: usize,
    out: &mut Vec<EntryDetails>,
) -> Result<(), AgentError> {
    let mut names = read_names(dir).map_err(|e| fs_error("list", shown, e))?;
    names.sort();
    for name in names {
        // Gone since the directory was read: skip it.
        let Ok(Some(st)) = lstat_at(dir, &name) else {
            continue;
        };
        if out.len() >= max {
            return Err(AgentError::TooLarge {
                what: "directory listing (entries)",
                limit: max as u64,
            });
        }
        let child_rel = rel.join(&name);
        let text = name.to_string_lossy().into_owned();
        let child_shown = child_path(shown, &text);
        out.push(details(jail, &child_rel, text, child_shown.clone(), &st));
        if depth > 1 && file_type(&st) == SFlag::S_IFDIR {
            if let Ok(sub) = open_child_dir(dir, &name) {
                walk_dir(jail, &sub, &child_rel, &child_shown, depth - 1, max, out)?;
            }
        }
    }
    Ok(())
}

fn open_child_dir(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    super::ops::open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
}

/// Builds the details from the entry's `lstat`, resolving a symlink under
/// the jail for its target and its target's kind and mode.
fn details(jail: &Jail, rel: &Path, name: String, path: String, st: &FileStat) -> EntryDetails {
    let kind = kind_of(st);
    let mut resolved_kind = Some(kind);
    let mut perm = st.st_mode & 0o777;
    let mut symlink_target = None;
    if kind == EntryKind::Symlink {
        resolved_kind = None;
        let target = jail.open(rel, OFlag::O_PATH).ok().and_then(|fd| {
            let target = nix::sys::stat::fstat(fd.as_raw_fd()).ok()?;
            let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
            Some((target, jail.shown(&real)))
        });
        match target {
            Some((target, real)) => {
                resolved_kind = Some(kind_of(&target));
                perm = target.st_mode & 0o777;
                symlink_target = Some(real.to_string_lossy().into_owned());
            }
            None => symlink_target = Some(path.clone()),
        }
    }
    let metadata = jail
        .open(rel, OFlag::O_PATH)
        .map(|fd| read_metadata(&fd))
        .unwrap_or_default();
    EntryDetails {
        metadata,
        name,
        path,
        kind,
        resolved_kind,
        lstat_mode: st.st_mode,
        perm,
        size: st.st_size.max(0) as u64,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: (st.st_mtime, st.st_mtime_nsec),
        symlink_target,
    }
}

/// `/proc/self/fd/N` of a descriptor, for the `*xattr` calls (an `O_PATH`
/// descriptor does not take `fgetxattr`).
fn proc_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in the path")
}

/// The `user.e2b.*` attributes of the file behind `fd`; none on any error.
fn read_metadata(fd: &OwnedFd) -> BTreeMap<String, String> {
    let link = proc_path(fd);
    let mut names = vec![0u8; MAX_XATTR_LIST];
    // SAFETY: the path is NUL-terminated; the buffer pointer and length
    // describe `names`.
    let len = unsafe { libc::listxattr(link.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let mut out = BTreeMap::new();
    if len <= 0 {
        return out;
    }
    names.truncate(len as usize);
    for name in names.split(|b| *b == 0) {
        let Ok(text) = std::str::from_utf8(name) else {
            continue;
        };
        let Some(key) = text.strip_prefix(METADATA_PREFIX) else {
            continue;
        };
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; MAX_XATTR_VALUE];
        // SAFETY: as above, with `value` as the buffer.
        let n = unsafe {
            libc::getxattr(
                link.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n >= 0 {
            value.truncate(n as usize);
            out.insert(
                key.to_string(),
                String::from_utf8_lossy(&value).into_owned(),
            );
        }
    }
    out
}

impl Jail {
    /// A real path (from `/proc/self/fd`) as callers see it: relative to
    /// the jail's root, shown as absolute.
    pub(crate) fn shown(&self, real: &Path) -> PathBuf {
        match real.strip_prefix(self.anchor()) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => real.to_path_buf(),
        }
    }
}
