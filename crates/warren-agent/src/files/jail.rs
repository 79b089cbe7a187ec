//! Path resolution under the optional root jail.
//!
//! A caller's path (absolute, or relative to the workdir) becomes a path
//! relative to an *anchor* directory: the jail's root, or `/` without a jail.
//! It is then opened with `openat2(anchor_fd, rel, ...)`. With a jail the
//! kernel resolves it with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: a `..`,
//! a symlink (relative or absolute) or a symlinked parent that would leave
//! the root fails with `EXDEV` at the moment of the open, so there is no
//! check-then-use race.
//!
//! `RESOLVE_BENEATH` also refuses absolute symlinks that point back *inside*
//! the root. For those (and for caller paths that name the root through
//! another spelling) the path is canonicalized in user space, up to its
//! deepest existing ancestor; if the result lies inside the root it is opened
//! again beneath the root, which again cannot escape. User-space
//! canonicalization only proposes a candidate; the kernel decides.
//!
//! Everything after resolution acts on the opened directory fds with the
//! `*at` calls and, for the final name, without following symlinks, so a
//! symlink swapped in later is never followed out of the jail.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::{AgentConfig, AgentError};

/// How many symlinks a final-name resolution follows before giving up (as
/// the kernel's own `ELOOP` limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why an open under the jail failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The path resolves outside the jail.
    Escape,
    /// The system call failed.
    Sys(Errno),
}

impl OpenError {
    /// The agent error for this failure on the caller's `path`.
    pub(crate) fn into_agent(self, op: &'static str, path: &str) -> AgentError {
        match self {
            OpenError::Escape => AgentError::PathNotAllowed(path.to_string()),
            OpenError::Sys(errno) => fs_error(op, path, errno),
        }
    }
}

impl From<Errno> for OpenError {
    fn from(errno: Errno) -> Self {
        OpenError::Sys(errno)
    }
}

/// The agent error for a failed system call on the caller's `path`.
pub(crate) fn fs_error(op: &'static str, path: &str, errno: Errno) -> AgentError {
    AgentError::Fs {
        op,
        path: path.to_string(),
        source: std::io::Error::from_raw_os_error(errno as i32),
    }
}

/// A resolved parent directory and the final name in it.
pub(crate) struct Entry {
    /// The parent directory (an `O_PATH` fd, verified to be inside the jail).
    pub parent: OwnedFd,
    /// The final name, a single normal component.
    pub name: OsString,
    /// `lstat` of the name, `None` when nothing exists there.
    pub stat: Option<FileStat>,
}

/// Resolves caller paths under the anchor directory.
#[derive(Debug)]
pub(crate) struct Jail {
    /// The jail's root (canonical), or `/`.
    anchor: PathBuf,
    /// Whether resolution is confined to `anchor`.
    confined: bool,
    /// Base of relative caller paths.
    workdir: PathBuf,
}

impl Jail {
    /// The jail of a configuration. The root is canonicalized once here so
    /// that prefix checks compare like with like.
    pub(crate) fn new(config: &AgentConfig) -> Jail {
        let workdir = if config.workdir.is_absolute() {
            config.workdir.clone()
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(&config.workdir))
                .unwrap_or_else(|_| config.workdir.clone())
        };
        match &config.root {
            Some(root) => Jail {
                anchor: std::fs::canonicalize(root).unwrap_or_else(|_| root.clone()),
                confined: true,
                workdir,
            },
            None => Jail {
                anchor: PathBuf::from("/"),
                confined: false,
                workdir,
            },
        }
    }

    /// The caller's path as a normalized path relative to the anchor (`.`
    /// for the anchor itself). `.` components and trailing slashes are
    /// dropped; `..` is kept for the kernel to resolve.
    pub(crate) fn relative(&self, user: &str) -> Result<PathBuf, AgentError> {
        if user.is_empty() {
            return Err(AgentError::InvalidRequest("path must not be empty".into()));
        }
        if user.contains('\0') {
            return Err(AgentError::InvalidRequest(
                "path must not contain NUL bytes".into(),
            ));
        }
        let abs = self.workdir.join(user);
        self.relative_of_absolute(&abs)
            .map_err(|e| e.into_agent("resolve", user))
    }

    /// `abs` relative to the anchor: lexically when it starts with the
    /// anchor, else through its canonical form.
    fn relative_of_absolute(&self, abs: &Path) -> Result<PathBuf, OpenError> {
        if let Ok(rel) = abs.strip_prefix(&self.anchor) {
            return Ok(normalize(rel));
        }
        let canonical = canonicalize_lenient(abs).ok_or(OpenError::Escape)?;
        canonical
            .strip_prefix(&self.anchor)
            .map(normalize)
            .map_err(|_| OpenError::Escape)
    }

    /// Opens `rel` (following symlinks, `..` included) with `flags`,
    /// refusing anything that resolves outside the jail.
    pub(crate) fn open(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, OpenError> {
        let anchor = self.anchor_fd()?;
        match self.openat2(&anchor, rel, flags) {
            Err(OpenError::Escape) => {
                // Maybe an absolute symlink that points back inside the root:
                // let the kernel check the canonical spelling.
                let canonical =
                    canonicalize_lenient(&self.anchor.join(rel)).ok_or(OpenError::Escape)?;
                let rel = canonical
                    .strip_prefix(&self.anchor)
                    .map_err(|_| OpenError::Escape)?;
                self.openat2(&anchor, &normalize(rel), flags)
            }
            other => other,
        }
    }

    /// Opens the directory `rel` as an `O_PATH` fd.
    pub(crate) fn open_dir(&self, rel: &Path) -> Result<OwnedFd, OpenError> {
        self.open(rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
    }

    /// `mkdir -p rel` under the jail; returns the directory.
    pub(crate) fn mkdir_all(&self, rel: &Path) -> Result<OwnedFd, OpenError> {
        self.mkdir_all_as(rel, None)
    }

    /// `mkdir -p rel` under the jail, the directories it creates owned by
    /// `owner` (uid, gid) when given; returns the directory.
    pub(crate) fn mkdir_all_as(
        &self,
        rel: &Path,
        owner: Option<(u32, u32)>,
    ) -> Result<OwnedFd, OpenError> {
        match self.open_dir(rel) {
            Err(OpenError::Sys(Errno::ENOENT)) => {}
            other => return other,
        }
        let mut dir = self.open_dir(Path::new("."))?;
        let mut prefix = PathBuf::new();
        for component in rel.components() {
            prefix.push(component);
            dir = match self.open_dir(&prefix) {
                Err(OpenError::Sys(Errno::ENOENT)) => {
                    // `dir` is verified to be inside the jail and `component`
                    // is a plain name (a `..` always exists), so the new
                    // directory is inside the jail too.
                    match nix::sys::stat::mkdirat(
                        Some(dir.as_raw_fd()),
                        component.as_os_str(),
                        Mode::from_bits_truncate(0o777),
                    ) {
                        Ok(()) => {
                            if let Some((uid, gid)) = owner {
                                nix::unistd::fchownat(
                                    Some(dir.as_raw_fd()),
                                    component.as_os_str(),
                                    Some(uid.into()),
                                    Some(gid.into()),
                                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                                )?;
                            }
                        }
                        Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.open_dir(&prefix)?
                }
                other => other?,
            };
        }
        Ok(dir)
    }

    /// The parent directory and final name of `rel`, without following a
    /// symlink in the final name. With `create`, missing parents are made.
    pub(crate) fn entry(&self, rel: &Path, create: bool, user: &str) -> Result<Entry, AgentError> {
        self.entry_as(rel, create, None, user)
    }

    /// Like [`Jail::entry`], with the parents it creates owned by `owner`.
    pub(crate) fn entry_as(
        &self,
        rel: &Path,
        create: bool,
        owner: Option<(u32, u32)>,
        user: &str,
    ) -> Result<Entry, AgentError> {
        let (parent_rel, name) = split(rel).ok_or_else(|| {
            AgentError::InvalidRequest(format!(
                "{user} does not name an entry in a directory (the root, or ends in ..)"
            ))
        })?;
        let parent = if create {
            self.mkdir_all_as(&parent_rel, owner)
        } else {
            self.open_dir(&parent_rel)
        }
        .map_err(|e| e.into_agent("open parent of", user))?;
        let stat = lstat_at(&parent, &name).map_err(|e| fs_error("stat", user, e))?;
        Ok(Entry { parent, name, stat })
    }

    /// Like [`Jail::entry`], but a symlink in the final name is followed
    /// (each hop re-resolved under the jail), so writing to a link writes
    /// the file it points to. Used by `PUT` and `edit`.
    pub(crate) fn entry_following(
        &self,
        rel: &Path,
        create: bool,
        user: &str,
    ) -> Result<Entry, AgentError> {
        self.entry_following_as(rel, create, None, user)
    }

    /// Like [`Jail::entry_following`], with the parents it creates owned by `owner`.
    pub(crate) fn entry_following_as(
        &self,
        rel: &Path,
        create: bool,
        owner: Option<(u32, u32)>,
        user: &str,
    ) -> Result<Entry, AgentError> {
        let mut rel = rel.to_path_buf();
        for _ in 0..MAX_SYMLINK_HOPS {
            let entry = self.entry_as(&rel, create, owner, user)?;
            match &entry.stat {
                Some(st) if file_type(st) == SFlag::S_IFLNK => {
                    let target =
                        nix::fcntl::readlinkat(Some(entry.parent.as_raw_fd()), &*entry.name)
                            .map_err(|e| fs_error("readlink", user, e))?;
                    let target = Path::new(&target);
                    rel = if target.is_absolute() {
                        self.relative_of_absolute(target)
                            .map_err(|e| e.into_agent("resolve", user))?
                    } else {
                        // Lexical join is right: the kernel resolves the `..`
                        // of the target after the parent's own symlinks.
                        normalize(&split(&rel).map(|(p, _)| p).unwrap_or_default().join(target))
                    };
                }
                _ => return Ok(entry),
            }
        }
        Err(fs_error("resolve", user, Errno::ELOOP))
    }

    /// Whether `rel` is the jail's root itself (or `/` without a jail).
    pub(crate) fn is_anchor(rel: &Path) -> bool {
        rel.components().next().is_none() || rel == Path::new(".")
    }

    /// The directory paths are resolved under (the jail's root, or `/`).
    pub(crate) fn anchor(&self) -> &Path {
        &self.anchor
    }

    fn anchor_fd(&self) -> Result<OwnedFd, OpenError> {
        let fd = nix::fcntl::open(
            &self.anchor,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn openat2(&self, anchor: &OwnedFd, rel: &Path, flags: OFlag) -> Result<OwnedFd, OpenError> {
        let resolve = if self.confined {
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS
        } else {
            ResolveFlag::empty()
        };
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        // openat2, unlike open, refuses O_PATH mixed with other flags.
        let flags = if flags.contains(OFlag::O_PATH) {
            flags | OFlag::O_CLOEXEC
        } else {
            flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
        };
        let how = OpenHow::new().flags(flags).resolve(resolve);
        // A concurrent rename anywhere on the system makes a confined
        // resolution fail with EAGAIN; it is safe to retry.
        let mut tries = 0;
        loop {
            match nix::fcntl::openat2(anchor.as_raw_fd(), rel, how) {
                // SAFETY: openat2 just returned this descriptor and nothing
                // else owns it.
                Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
                Err(Errno::EXDEV) if self.confined => return Err(OpenError::Escape),
                Err(Errno::EAGAIN) if tries < 16 => tries += 1,
                Err(e) => return Err(OpenError::Sys(e)),
            }
        }
    }
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat_at(dir: &OwnedFd, name: &OsStr) -> Result<Option<FileStat>, Errno> {
    match nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The file-type bits of a stat.
pub(crate) fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Drops `.` components (and so trailing slashes); keeps `..`.
fn normalize(rel: &Path) -> PathBuf {
    rel.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}

/// Splits `rel` into its parent and a final normal name.
fn split(rel: &Path) -> Option<(PathBuf, OsString)> {
    match rel.components().next_back()? {
        Component::Normal(name) => {
            let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
            Some((parent, name.to_os_string()))
        }
        _ => None,
    }
}

/// `abs` with every symlink and `..` resolved, for as much of it as exists;
/// the missing tail is appended as is. `None` when the tail contains `..`.
fn canonicalize_lenient(abs: &Path) -> Option<PathBuf> {
    let mut existing = abs;
    let mut tail: Vec<&OsStr> = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut canonical) => {
                for name in tail.iter().rev() {
                    canonical.push(name);
                }
                return Some(canonical);
            }
            Err(_) => {
                tail.push(existing.file_name()?);
                existing = existing.parent()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_normalizes() {
        assert_eq!(normalize(Path::new("a/./b/")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("a/../b")), PathBuf::from("a/../b"));
        assert_eq!(
            split(Path::new("a/b")),
            Some((PathBuf::from("a"), OsString::from("b")))
        );
        assert_eq!(
            split(Path::new("b")),
            Some((PathBuf::new(), OsString::from("b")))
        );
        assert_eq!(split(Path::new("a/..")), None);
        assert_eq!(split(Path::new("")), None);
        assert!(Jail::is_anchor(Path::new("")));
    }
}
