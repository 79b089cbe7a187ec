//! Paths inside a rootfs resolved as if the rootfs were `/`.
//!
//! Image layers and spec files write into a tree whose symlinks may point
//! anywhere (`/etc -> /host/etc` in a hostile image, `/lib -> usr/lib` in
//! every Debian). Parent directories are resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT)`, which interprets absolute symlinks and `..`
//! relative to the rootfs, and the result is turned back into a host path
//! (through `/proc/self/fd`) that contains no symlink. Only the final
//! component is then acted on, never followed. Nothing else writes into a
//! rootfs while it is being built, so the host path stays valid.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

/// An open rootfs.
pub(crate) struct InRoot {
    fd: OwnedFd,
}

fn host_path(fd: &OwnedFd) -> io::Result<PathBuf> {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The normal components of `rel` (a leading `/` and `.` dropped).
fn components(rel: &Path) -> Vec<&OsStr> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

impl InRoot {
    /// Opens the rootfs at `root`.
    pub(crate) fn open(root: &Path) -> io::Result<InRoot> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: `open` just returned this fd and nothing else owns it.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(InRoot { fd })
    }

    fn open_dir(&self, comps: &[&OsStr]) -> nix::Result<OwnedFd> {
        let mut rel = PathBuf::from(".");
        rel.extend(comps);
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = nix::fcntl::openat2(self.fd.as_raw_fd(), &rel, how)?;
        // SAFETY: `openat2` just returned this fd and nothing else owns it.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// Host path of directory `rel`. With `create`, missing directories are
    /// made (mode 0755, owned by the given uid/gid).
    pub(crate) fn dir(&self, rel: &Path, create: Option<(u32, u32)>) -> io::Result<PathBuf> {
        let comps = components(rel);
        match self.open_dir(&comps) {
            Ok(fd) => return host_path(&fd),
            Err(Errno::ENOENT) if create.is_some() => {}
            Err(e) => return Err(e.into()),
        }
        let mut current = host_path(&self.open_dir(&[])?)?;
        for i in 0..comps.len() {
            let fd = match self.open_dir(&comps[..=i]) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    let new = current.join(comps[i]);
                    fs::DirBuilder::new().mode(0o755).create(&new)?;
                    if let Some((uid, gid)) = create {
                        std::os::unix::fs::lchown(&new, Some(uid), Some(gid))?;
                    }
                    self.open_dir(&comps[..=i])?
                }
                Err(e) => return Err(e.into()),
            };
            current = host_path(&fd)?;
        }
        Ok(current)
    }

    /// Host path of `rel`'s parent directory (see [`InRoot::dir`]) and its
    /// final name, which is not resolved.
    pub(crate) fn parent(
        &self,
        rel: &Path,
        create: Option<(u32, u32)>,
    ) -> io::Result<(PathBuf, OsString)> {
        let comps = components(rel);
        let Some((name, parent)) = comps.split_last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root itself",
            ));
        };
        if *name == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "ends in .."));
        }
        let parent: PathBuf = parent.iter().collect();
        Ok((self.dir(&parent, create)?, name.to_os_string()))
    }

    /// Host path of `rel` itself (its parent resolved, the name not).
    pub(crate) fn entry(&self, rel: &Path, create: Option<(u32, u32)>) -> io::Result<PathBuf> {
        let (dir, name) = self.parent(rel, create)?;
        Ok(dir.join(name))
    }

    /// Replaces whatever is at `rel` with a regular file.
    pub(crate) fn write_file(
        &self,
        rel: &Path,
        data: &[u8],
        owner: (u32, u32),
        mode: u32,
    ) -> io::Result<()> {
        let path = self.entry(rel, Some(owner))?;
        remove_any(&path)?;
        let mut file = File::create_new(&path)?;
        file.write_all(data)?;
        std::os::unix::fs::lchown(&path, Some(owner.0), Some(owner.1))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
    }
}

/// Removes a file, symlink or directory tree at `path` (never following a
/// symlink); nothing there is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("up")).unwrap();
        let r = InRoot::open(root.path()).unwrap();
        let owner = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );

        // The absolute symlink's target, as it exists inside the root.
        let canonical = root.path().canonicalize().unwrap();
        let inside = canonical.join(outside.path().strip_prefix("/").unwrap());
        fs::create_dir_all(&inside).unwrap();

        r.write_file(Path::new("/escape/x"), b"in", owner, 0o644)
            .unwrap();
        r.write_file(Path::new("up/y"), b"in", owner, 0o644)
            .unwrap();
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        assert_eq!(fs::read(inside.join("x")).unwrap(), b"in");
        assert_eq!(fs::read(canonical.join("y")).unwrap(), b"in");

        // The final component is replaced, not followed.
        std::os::unix::fs::symlink("/etc/passwd", root.path().join("link")).unwrap();
        r.write_file(Path::new("link"), b"mine", owner, 0o600)
            .unwrap();
        assert_eq!(fs::read(root.path().join("link")).unwrap(), b"mine");
        assert!(r.parent(Path::new("/"), None).is_err());
        // A dangling symlink cannot be written through.
        std::os::unix::fs::symlink("/nowhere", root.path().join("dangling")).unwrap();
        assert!(r
            .write_file(Path::new("dangling/z"), b"x", owner, 0o644)
            .is_err());
    }
}
