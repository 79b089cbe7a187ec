//! Applying one image layer (a tar stream) onto a rootfs.
//!
//! Entry names with `..` are refused ([`TemplateError::PathEscape`]); every
//! other path is resolved inside the rootfs ([`InRoot`]), so symlinks from
//! earlier entries or layers cannot redirect writes to the host. Whiteouts
//! follow the OCI image spec: `.wh.<name>` deletes `<name>` from lower
//! layers, `.wh..wh..opq` empties its directory of lower-layer content.
//! Owners are shifted into the sandbox id range; modes are set after the
//! chown so setuid bits survive; `SCHILY.xattr.*` PAX records become xattrs
//! where the file system takes them.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::inroot::{remove_any, InRoot};
use super::{shift_id, TemplateError};
use crate::SANDBOX_ID_BASE;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A tar entry name as a relative path; `None` for the root itself.
pub(crate) fn clean(name: &Path) -> Result<Option<PathBuf>, TemplateError> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(TemplateError::PathEscape {
                    entry: name.display().to_string(),
                })
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Applies the layer read from `reader` (an uncompressed tar) to `root`.
pub(crate) fn apply_layer(root: &InRoot, reader: impl Read) -> Result<(), TemplateError> {
    let tar_err = |e: io::Error| TemplateError::io("read layer", Path::new("<layer>"), e);
    let mut archive = tar::Archive::new(reader);
    // Paths this layer wrote: an opaque whiteout must not remove them.
    let mut written: HashSet<PathBuf> = HashSet::new();
    // Directory mtimes are set last: adding children changes them.
    let mut dir_times: Vec<(PathBuf, TimeSpec)> = Vec::new();
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = entry.path().map_err(tar_err)?.into_owned();
        let Some(rel) = clean(&raw)? else {
            continue;
        };
        let name = rel.file_name().unwrap_or_default().as_bytes();
        if name.starts_with(WHITEOUT.as_bytes()) {
            let parent = rel.parent().unwrap_or(Path::new(""));
            let io_err = |e| TemplateError::io("whiteout", &rel, e);
            if name == OPAQUE.as_bytes() {
                if let Ok(dir) = root.dir(parent, None) {
                    clear_lower(&dir, parent, &written).map_err(io_err)?;
                }
            } else {
                let hidden = parent.join(OsStr::from_bytes(&name[WHITEOUT.len()..]));
                match root.entry(&hidden, None) {
                    Ok(path) => remove_any(&path).map_err(io_err)?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(e)),
                }
            }
            continue;
        }
        let xattrs = pax_xattrs(&mut entry).map_err(tar_err)?;
        let path_err = |e| TemplateError::io("extract", &rel, e);
        let target = root
            .entry(&rel, Some((SANDBOX_ID_BASE, SANDBOX_ID_BASE)))
            .map_err(path_err)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        match kind {
            EntryType::Directory => {
                if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    remove_any(&target).map_err(path_err)?;
                    fs::create_dir(&target).map_err(path_err)?;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_any(&target).map_err(path_err)?;
                let mut file = fs::File::create_new(&target).map_err(path_err)?;
                io::copy(&mut entry, &mut file).map_err(path_err)?;
            }
            EntryType::Symlink => {
                let link = entry.link_name().map_err(tar_err)?.unwrap_or_default();
                remove_any(&target).map_err(path_err)?;
                std::os::unix::fs::symlink(&link, &target).map_err(path_err)?;
            }
            EntryType::Link => {
                let link = entry.link_name().map_err(tar_err)?.unwrap_or_default();
                let Some(link_rel) = clean(&link)? else {
                    return Err(TemplateError::PathEscape {
                        entry: link.display().to_string(),
                    });
                };
                let source = root.entry(&link_rel, None).map_err(path_err)?;
                remove_any(&target).map_err(path_err)?;
                fs::hard_link(&source, &target).map_err(path_err)?;
                written.insert(rel);
                // A hard link shares the inode: its attributes are the source's.
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                remove_any(&target).map_err(path_err)?;
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = nix::sys::stat::makedev(major.into(), minor.into());
                nix::sys::stat::mknod(&target, sflag, Mode::from_bits_truncate(0o600), dev)
                    .map_err(|e| path_err(e.into()))?;
            }
            other => {
                tracing::debug!(entry = %rel.display(), kind = ?other, "layer entry skipped");
                continue;
            }
        }
        let mtime = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
        set_attributes(&target, &header, &xattrs, kind == EntryType::Symlink, mtime)
            .map_err(path_err)?;
        if kind == EntryType::Directory {
            dir_times.push((target, mtime));
        }
        written.insert(rel);
    }
    for (dir, mtime) in dir_times.iter().rev() {
        let _ = nix::sys::stat::utimensat(
            None,
            dir,
            mtime,
            mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn set_attributes(
    path: &Path,
    header: &tar::Header,
    xattrs: &[(String, Vec<u8>)],
    symlink: bool,
    mtime: TimeSpec,
) -> io::Result<()> {
    let uid = shift_id(header.uid().unwrap_or(0));
    let gid = shift_id(header.gid().unwrap_or(0));
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if !symlink {
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    for (name, value) in xattrs {
        if let Err(e) = xattr::set(path, name, value) {
            tracing::debug!(path = %path.display(), name, error = %e, "xattr not applied");
        }
    }
    nix::sys::stat::utimensat(
        None,
        path,
        &mtime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// Removes what lower layers put in `dir` (at `rel` in the rootfs), keeping
/// what this layer wrote.
fn clear_lower(dir: &Path, rel: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let child_rel = rel.join(entry.file_name());
        let path = entry.path();
        let is_dir = fs::symlink_metadata(&path)?.is_dir();
        let keep_some = written.iter().any(|w| w.starts_with(&child_rel));
        if is_dir && keep_some {
            clear_lower(&path, &child_rel, written)?;
        } else if !written.contains(&child_rel) {
            remove_any(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(
            clean(Path::new("./etc/x")).unwrap(),
            Some(PathBuf::from("etc/x"))
        );
        assert_eq!(
            clean(Path::new("/abs")).unwrap(),
            Some(PathBuf::from("abs"))
        );
        assert_eq!(clean(Path::new("./")).unwrap(), None);
        assert!(clean(Path::new("a/../../b")).is_err());
    }
}
