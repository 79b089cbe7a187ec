//! What an imported disk must be before it becomes a checkpoint
//! ([`check_tree`]): the disk lands in the host's pool, extracted or
//! received by host root, so it is checked as an attack.

use std::path::{Path, PathBuf};

use super::transfer::transfer_err;
use super::CheckpointError;

/// Checks a received disk before it becomes a checkpoint: every file must
/// be something a sandbox could have made itself, because the disk lies in
/// the host's pool and is read by host root.
/// - owners (uid and gid) inside the sandboxes' id range, so no file is the
///   host root's or a host user's (a setuid bit then grants nothing on the
///   host, and the pool is mounted `nosuid` besides);
/// - no `security.*` or `trusted.*` extended attribute (a file capability
///   written by host root holds on the host);
/// - no device node outside `dev/`; those under it (a template's leftovers:
///   sandboxes mount their own `/dev`) are removed when `prune_dev` is set
///   (a tenant's tar), kept in an admin's read-only received subvolume,
///   where the pool's `nodev` mount makes them inert.
///
/// Symlinks are not followed.
pub(super) fn check_tree(root: &Path, prune_dev: bool) -> Result<(), CheckpointError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use warren_runtime::{SANDBOX_ID_BASE, SANDBOX_ID_COUNT};
    let in_range = |id: u32| (SANDBOX_ID_BASE..SANDBOX_ID_BASE + SANDBOX_ID_COUNT).contains(&id);
    let refuse =
        |rel: &Path, why: &str| CheckpointError::BadImport(format!("/{}: {why}", rel.display()));
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let it = std::fs::read_dir(&dir).map_err(transfer_err("scanning the import"))?;
        for entry in it {
            let entry = entry.map_err(transfer_err("scanning the import"))?;
            let path = rel.join(entry.file_name());
            let full = entry.path();
            let meta =
                std::fs::symlink_metadata(&full).map_err(transfer_err("scanning the import"))?;
            let kind = meta.file_type();
            if kind.is_char_device() || kind.is_block_device() {
                if !path.starts_with("dev") {
                    return Err(refuse(&path, "a device node outside /dev"));
                }
                if prune_dev {
                    std::fs::remove_file(&full).map_err(transfer_err("pruning /dev"))?;
                    continue;
                }
            }
            if !in_range(meta.uid()) || !in_range(meta.gid()) {
                return Err(refuse(
                    &path,
                    &format!(
                        "owned by host ids {}:{}, outside the sandboxes' range {}..{}",
                        meta.uid(),
                        meta.gid(),
                        SANDBOX_ID_BASE,
                        SANDBOX_ID_BASE + SANDBOX_ID_COUNT
                    ),
                ));
            }
            if let Some(name) = privileged_xattr(&full)? {
                return Err(refuse(&path, &format!("carries the attribute {name}")));
            }
            if kind.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(())
}

/// The first `security.*` or `trusted.*` extended attribute of `path`
/// (not following a symlink), if any.
fn privileged_xattr(path: &Path) -> Result<Option<String>, CheckpointError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| CheckpointError::BadImport("a path holds a NUL byte".into()))?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: `c` is NUL-terminated and `buf` is writable for its length.
        let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(None),
            _ => return Err(transfer_err("listing extended attributes")(err)),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|name| name.starts_with(b"security.") || name.starts_with(b"trusted."))
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .next())
}
