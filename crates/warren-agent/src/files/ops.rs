//! stat, list, delete, mkdir, move and edit.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;
use warren_api::agent::{EditRequest, FileList, FileStat, FileWritten, MoveRequest};

use super::jail::{file_type, fs_error, lstat_at, Jail, OpenError};
use super::stream::AtomicFile;
use super::{child_path, wire_entry, wire_stat, Files};
use crate::AgentError;

/// Largest file `edit` loads into memory.
const MAX_EDIT_BYTES: u64 = 64 << 20;

impl Files {
    /// What is at `path` (following symlinks). A missing path is
    /// `exists: false`, not an error; a path outside the jail is.
    pub async fn stat(&self, path: String) -> Result<FileStat, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            match inner.jail.open(&rel, OFlag::O_PATH) {
                Ok(fd) => nix::sys::stat::fstat(fd.as_raw_fd())
                    .map(|st| wire_stat(&st))
                    .map_err(|e| fs_error("stat", &path, e)),
                Err(OpenError::Sys(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP)) => {
                    Ok(FileStat {
                        exists: false,
                        is_file: false,
                        is_dir: false,
                        size: 0,
                        mode: 0,
                        modified_at: None,
                    })
                }
                Err(e) => Err(e.into_agent("stat", &path)),
            }
        })
        .await
    }

    /// The entries of a directory, sorted by name. A symlink is described
    /// by what it points to when that resolves inside the jail.
    pub async fn list(&self, path: String) -> Result<FileList, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            let fd = inner
                .jail
                .open(&rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|e| match e {
                    OpenError::Sys(Errno::ENOTDIR) => AgentError::NotADirectory(path.clone()),
                    e => e.into_agent("list", &path),
                })?;
            let mut items = Vec::new();
            for name in read_names(&fd).map_err(|e| fs_error("list", &path, e))? {
                // Gone since the directory was read: skip it.
                let Ok(Some(lstat)) = lstat_at(&fd, &name) else {
                    continue;
                };
                let target = if file_type(&lstat) == SFlag::S_IFLNK {
                    inner
                        .jail
                        .open(&rel.join(&name), OFlag::O_PATH)
                        .ok()
                        .and_then(|t| nix::sys::stat::fstat(t.as_raw_fd()).ok())
                } else {
                    None
                };
                let name = name.to_string_lossy().into_owned();
                let entry_path = child_path(&path, &name);
                items.push(wire_entry(name, entry_path, &lstat, target.as_ref()));
            }
            items.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(FileList { items })
        })
        .await
    }

    /// Removes a file, a symlink (not what it points to) or a directory;
    /// a non-empty directory needs `recursive`.
    pub async fn delete(&self, path: String, recursive: bool) -> Result<FileWritten, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            if Jail::is_anchor(&rel) {
                return Err(AgentError::InvalidRequest(format!(
                    "refusing to delete {path}: it is the root"
                )));
            }
            let entry = inner.jail.entry(&rel, false, &path)?;
            let Some(st) = entry.stat else {
                return Err(AgentError::FileNotFound(path));
            };
            let parent = entry.parent.as_raw_fd();
            if file_type(&st) != SFlag::S_IFDIR {
                nix::unistd::unlinkat(Some(parent), &*entry.name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| fs_error("delete", &path, e))?;
            } else {
                if recursive {
                    remove_contents(&entry.parent, &entry.name)
                        .map_err(|e| fs_error("delete", &path, e))?;
                }
                nix::unistd::unlinkat(Some(parent), &*entry.name, UnlinkatFlags::RemoveDir)
                    .map_err(|e| match e {
                        Errno::ENOTEMPTY | Errno::EEXIST => {
                            AgentError::DirectoryNotEmpty(path.clone())
                        }
                        e => fs_error("delete", &path, e),
                    })?;
            }
            Ok(FileWritten { path, bytes: 0 })
        })
        .await
    }

    /// `mkdir -p` on behalf of a user: the directories it creates are owned
    /// by `owner`. `Ok(false)` when the directory already existed; an
    /// existing non-directory is `already_exists`.
    pub async fn mkdir_as(
        &self,
        path: String,
        owner: Option<(u32, u32)>,
    ) -> Result<bool, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            match inner.jail.open_dir(&rel) {
                Ok(_) => return Ok(false),
                Err(OpenError::Sys(Errno::ENOENT)) => {}
                Err(OpenError::Sys(Errno::ENOTDIR)) => {
                    return Err(AgentError::AlreadyExists(path));
                }
                Err(e) => return Err(e.into_agent("mkdir", &path)),
            }
            match inner.jail.mkdir_all_as(&rel, owner) {
                Ok(_) => Ok(true),
                Err(OpenError::Sys(Errno::ENOTDIR)) => Err(AgentError::NotADirectory(path)),
                Err(e) => Err(e.into_agent("mkdir", &path)),
            }
        })
        .await
    }

    /// `mkdir -p`. An existing directory is fine; an existing file is
    /// `already_exists`.
    pub async fn mkdir(&self, path: String) -> Result<FileWritten, AgentError> {
        self.blocking(move |inner| {
            let rel = inner.jail.relative(&path)?;
            match inner.jail.mkdir_all(&rel) {
                Ok(_) => Ok(FileWritten { path, bytes: 0 }),
                Err(OpenError::Sys(Errno::ENOTDIR)) => {
                    // The final name exists as a non-directory, or a parent does.
                    let entry = inner.jail.entry(&rel, false, &path);
                    match entry.ok().and_then(|e| e.stat) {
                        Some(_) => Err(AgentError::AlreadyExists(path)),
                        None => Err(AgentError::NotADirectory(path)),
                    }
                }
                Err(e) => Err(e.into_agent("mkdir", &path)),
            }
        })
        .await
    }

    /// Renames `from` to `to` (the names themselves: a symlink is moved, not
    /// its target), creating `to`'s parents. An existing `to` needs
    /// `overwrite`. Across file systems, regular files are copied.
    pub async fn rename(&self, req: MoveRequest) -> Result<FileWritten, AgentError> {
        self.rename_as(req, None).await
    }

    /// [`Files::rename`], with the destination's missing parents owned by
    /// `owner` when given.
    pub async fn rename_as(
        &self,
        req: MoveRequest,
        owner: Option<(u32, u32)>,
    ) -> Result<FileWritten, AgentError> {
        self.blocking(move |inner| {
            let MoveRequest {
                from,
                to,
                overwrite,
            } = req;
            let from_rel = inner.jail.relative(&from)?;
            let to_rel = inner.jail.relative(&to)?;
            let src = inner.jail.entry(&from_rel, false, &from)?;
            let Some(src_stat) = src.stat else {
                return Err(AgentError::FileNotFound(from));
            };
            let dst = inner.jail.entry_as(&to_rel, true, owner, &to)?;
            if dst.stat.is_some() && !overwrite {
                return Err(AgentError::AlreadyExists(to));
            }
            let flags = if overwrite {
                RenameFlags::empty()
            } else {
                RenameFlags::RENAME_NOREPLACE
            };
            let (sp, dp) = (src.parent.as_raw_fd(), dst.parent.as_raw_fd());
            let mut renamed =
                nix::fcntl::renameat2(Some(sp), &*src.name, Some(dp), &*dst.name, flags);
            if renamed == Err(Errno::EINVAL) && !overwrite {
                // Some file systems lack RENAME_NOREPLACE; the existence check
                // above stands in for it. A second EINVAL is a real one.
                renamed = nix::fcntl::renameat(Some(sp), &*src.name, Some(dp), &*dst.name);
            }
            match renamed {
                Ok(()) => {}
                Err(Errno::EEXIST) => return Err(AgentError::AlreadyExists(to)),
                Err(Errno::EXDEV) if file_type(&src_stat) == SFlag::S_IFREG => {
                    let file = open_at(&src.parent, &src.name, OFlag::O_RDONLY)
                        .map_err(|e| fs_error("open", &from, e))?;
                    let mut tmp = AtomicFile::create(dst, Some(src_stat.st_mode & 0o7777), &to)?;
                    std::io::copy(&mut std::fs::File::from(file), tmp.file()).map_err(
                        |source| AgentError::Fs {
                            op: "copy to",
                            path: to.clone(),
                            source,
                        },
                    )?;
                    tmp.commit(&to)?;
                    nix::unistd::unlinkat(Some(sp), &*src.name, UnlinkatFlags::NoRemoveDir)
                        .map_err(|e| fs_error("delete", &from, e))?;
                }
                Err(Errno::EXDEV) => {
                    return Err(AgentError::Fs {
                        op: "move (only regular files move across file systems)",
                        path: from,
                        source: std::io::Error::from_raw_os_error(libc::EXDEV),
                    })
                }
                Err(Errno::ENOTEMPTY) => return Err(AgentError::DirectoryNotEmpty(to)),
                Err(Errno::EINVAL) => {
                    return Err(AgentError::InvalidRequest(format!(
                        "cannot move {from} to {to}: a directory cannot move into itself"
                    )))
                }
                Err(e) => return Err(fs_error("move", &from, e)),
            }
            Ok(FileWritten { path: to, bytes: 0 })
        })
        .await
    }

    /// Replaces the only occurrence of `old_text` with `new_text`, writing
    /// the file atomically with its mode and owner kept.
    pub async fn edit(&self, req: EditRequest) -> Result<FileWritten, AgentError> {
        self.blocking(move |inner| {
            let EditRequest {
                path,
                old_text,
                new_text,
            } = req;
            if old_text.is_empty() {
                return Err(AgentError::InvalidRequest(
                    "old_text must not be empty".into(),
                ));
            }
            let rel = inner.jail.relative(&path)?;
            let entry = inner.jail.entry_following(&rel, false, &path)?;
            match entry.stat.as_ref().map(file_type) {
                None => return Err(AgentError::FileNotFound(path)),
                Some(SFlag::S_IFREG) => {}
                Some(SFlag::S_IFDIR) => return Err(AgentError::IsADirectory(path)),
                Some(_) => return Err(AgentError::NotARegularFile(path)),
            }
            let fd = open_at(&entry.parent, &entry.name, OFlag::O_RDONLY)
                .map_err(|e| fs_error("open", &path, e))?;
            let mut content = Vec::new();
            std::fs::File::from(fd)
                .take(MAX_EDIT_BYTES + 1)
                .read_to_end(&mut content)
                .map_err(|source| AgentError::Fs {
                    op: "read",
                    path: path.clone(),
                    source,
                })?;
            if content.len() as u64 > MAX_EDIT_BYTES {
                return Err(AgentError::TooLarge {
                    what: "file to edit",
                    limit: MAX_EDIT_BYTES,
                });
            }
            let (count, first) = occurrences(&content, old_text.as_bytes());
            let (1, Some(at)) = (count, first) else {
                return Err(AgentError::EditConflict { path, count });
            };
            let mut tmp = AtomicFile::create(entry, None, &path)?;
            let end = at + old_text.len();
            let written = [&content[..at], new_text.as_bytes(), &content[end..]];
            for part in written {
                tmp.file()
                    .write_all(part)
                    .map_err(|source| AgentError::Fs {
                        op: "write",
                        path: path.clone(),
                        source,
                    })?;
            }
            tmp.commit(&path)?;
            let bytes = (content.len() - old_text.len() + new_text.len()) as u64;
            Ok(FileWritten { path, bytes })
        })
        .await
    }
}

/// How many times `needle` starts in `haystack` (overlaps counted: an
/// ambiguous match is not exactly one), and where the first one starts.
fn occurrences(haystack: &[u8], needle: &[u8]) -> (usize, Option<usize>) {
    let finder = memchr::memmem::Finder::new(needle);
    let mut count = 0;
    let mut first = None;
    let mut from = 0;
    while let Some(at) = finder.find(&haystack[from..]) {
        first.get_or_insert(from + at);
        count += 1;
        from += at + 1;
    }
    (count, first)
}

/// Opens `name` in `dir` without following a symlink there.
pub(crate) fn open_at(dir: &OwnedFd, name: &OsStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The names in a directory (without `.` and `..`).
pub(crate) fn read_names(dir: &OwnedFd) -> Result<Vec<std::ffi::OsString>, Errno> {
    // A fresh open description, so reading it does not move `dir`'s offset.
    let fd = open_at(dir, OsStr::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut stream = nix::dir::Dir::from(fd)?;
    let mut names = Vec::new();
    for entry in stream.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(names)
}

/// Removes everything inside the directory `name` of `parent`, never
/// following a symlink (a link is removed, not its target).
fn remove_contents(parent: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    let dir = open_at(parent, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    for child in read_names(&dir)? {
        let Some(st) = lstat_at(&dir, &child)? else {
            continue;
        };
        if file_type(&st) == SFlag::S_IFDIR {
            remove_contents(&dir, &child)?;
            match nix::unistd::unlinkat(Some(dir.as_raw_fd()), &*child, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        } else {
            match nix::unistd::unlinkat(Some(dir.as_raw_fd()), &*child, UnlinkatFlags::NoRemoveDir)
            {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_overlapping_occurrences() {
        assert_eq!(occurrences(b"hello world", b"o"), (2, Some(4)));
        assert_eq!(occurrences(b"hello", b"ll"), (1, Some(2)));
        assert_eq!(occurrences(b"aaa", b"aa"), (2, Some(0)));
        assert_eq!(occurrences(b"abc", b"x"), (0, None));
    }
}
