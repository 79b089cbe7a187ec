//! Extra CA certificates for sandboxes: the host's own trust additions
//! (a corporate TLS proxy's CA, say), handed to every sandbox and template
//! build without touching their disks.
//!
//! A sandbox trusts its image's store (`/etc/ssl/certs/ca-certificates.crt`).
//! When the server has extra certificates, two files appear in the
//! sandbox's run directory (a tmpfs): [`EXTRA_PEM`], the extras alone, and
//! [`BUNDLE_PEM`], the image's store followed by the extras; every process
//! gets [`env`], which points OpenSSL, curl, git, Python's requests and pip
//! at the bundle and Node.js at the extras (`NODE_EXTRA_CA_CERTS` adds to
//! Node's own store). A variable the sandbox's env already sets is left
//! alone.
//!
//! The bundle is made once per store, not once per start: [`shared_bundle`]
//! (the server, as it prepares a start) keys it by the store file's
//! identity (inode, size, modification and change times, which a snapshot
//! keeps and any write changes) and keeps it in a host directory, and the
//! sandbox gets it bound read-only at [`BUNDLE_PEM`]
//! (`SandboxSpec::ca_bundle`). Every sandbox of a template, and every fork
//! and restore of them, shares one file and its pages; a start reads and
//! writes nothing of it (half a millisecond and 200 KiB of memory less per
//! start, and a store a fresh snapshot does not have to read from disk).
//! Without a shared bundle, the init writes its own ([`install_in_sandbox`]).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The extras, inside the sandbox.
pub const EXTRA_PEM: &str = "/run/warren/extra-ca.pem";
/// The image's store plus the extras, inside the sandbox.
pub const BUNDLE_PEM: &str = "/run/warren/ca-bundle.pem";
/// The image's store, inside the sandbox.
const IMAGE_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Debian's directory of local CA certificates (`update-ca-certificates`).
pub const HOST_LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";
/// Largest set of extra certificates.
pub const MAX_EXTRA: usize = 1 << 20;
/// Largest image store read.
const MAX_IMAGE_BUNDLE: u64 = 8 << 20;
/// Most shared bundles kept: a sandbox that rewrites its store and forks
/// again makes a new one each time, so the oldest half goes past this.
pub const MAX_SHARED: usize = 64;
/// Largest store shared (Debian's is about 200 KiB): a bigger one, which
/// only a sandbox's own writes make, is copied by that sandbox's init into
/// its own run directory instead of onto the host's disk.
pub const MAX_SHARED_STORE: u64 = 1 << 20;

/// Errors reading extra certificates.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file or directory cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// What was read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Nothing that looks like a PEM certificate.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(String),
    /// Over [`MAX_EXTRA`].
    #[error("the extra certificates are over {MAX_EXTRA} bytes")]
    TooLarge,
}

/// The environment that points programs at the files (see the module docs).
pub fn env() -> [(&'static str, &'static str); 6] {
    [
        ("SSL_CERT_FILE", BUNDLE_PEM),
        ("CURL_CA_BUNDLE", BUNDLE_PEM),
        ("GIT_SSL_CAINFO", BUNDLE_PEM),
        ("REQUESTS_CA_BUNDLE", BUNDLE_PEM),
        ("PIP_CERT", BUNDLE_PEM),
        ("NODE_EXTRA_CA_CERTS", EXTRA_PEM),
    ]
}

/// The PEM certificates in `path`: a file, or every `*.crt` and `*.pem`
/// file of a directory (and its sub-directories), in name order.
pub fn read_extra(path: &Path) -> Result<String, TrustError> {
    let err = |source| TrustError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        collect(path, &mut files).map_err(err)?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut pem = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| TrustError::Read {
            path: file.display().to_string(),
            source,
        })?;
        if text.contains("-----BEGIN CERTIFICATE-----") {
            pem.push_str(text.trim_end());
            pem.push('\n');
        }
        if pem.len() > MAX_EXTRA {
            return Err(TrustError::TooLarge);
        }
    }
    if pem.is_empty() {
        return Err(TrustError::NoCertificate(path.display().to_string()));
    }
    Ok(pem)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "crt" || e == "pem") {
            out.push(path);
        }
    }
    Ok(())
}

/// The host's extra certificates, when it has any in
/// [`HOST_LOCAL_CA_DIR`] (what `--extra-ca-certs auto` uses).
pub fn host_extra() -> Option<String> {
    let dir = Path::new(HOST_LOCAL_CA_DIR);
    dir.is_dir().then(|| read_extra(dir).ok()).flatten()
}

/// The name of [`BUNDLE_PEM`] in the run directory.
pub fn bundle_file_name() -> &'static str {
    BUNDLE_PEM.rsplit('/').next().unwrap_or(BUNDLE_PEM)
}

/// In the sandbox's init, after the root is in place, when the shared
/// bundle is mounted: writes [`EXTRA_PEM`]. Paths resolve inside the
/// sandbox.
pub fn write_extra(extra: &str) -> std::io::Result<()> {
    std::fs::write(EXTRA_PEM, extra)
}

/// In the sandbox's init, after the root is in place, without a shared
/// bundle: writes [`EXTRA_PEM`] and [`BUNDLE_PEM`]. Paths resolve inside
/// the sandbox.
pub fn install_in_sandbox(extra: &str) -> std::io::Result<()> {
    let mut bundle = Vec::new();
    if let Ok(file) = std::fs::File::open(IMAGE_BUNDLE) {
        file.take(MAX_IMAGE_BUNDLE).read_to_end(&mut bundle)?;
        if !bundle.ends_with(b"\n") && !bundle.is_empty() {
            bundle.push(b'\n');
        }
    }
    bundle.extend_from_slice(extra.as_bytes());
    std::fs::write(EXTRA_PEM, extra)?;
    std::fs::write(BUNDLE_PEM, bundle)
}

/// The bundle of the image store in `rootfs` (resolved inside it, never
/// through a link out of it; a store that is missing or not a regular file
/// counts as empty) followed by `extra`: a file in `dir` shared by every
/// root whose store is the same file unchanged, made now if it is not there
/// yet (see the module docs). The caller binds it into the sandbox.
/// `None` for a store over [`MAX_SHARED_STORE`].
pub fn shared_bundle(dir: &Path, rootfs: &Path, extra: &str) -> std::io::Result<Option<PathBuf>> {
    let store = open_store(rootfs)?;
    if store
        .as_ref()
        .is_some_and(|(_, meta)| meta.size() > MAX_SHARED_STORE)
    {
        return Ok(None);
    }
    let key = match &store {
        Some(meta) => format!(
            "{:x}-{:x}-{}.{}-{}.{}",
            meta.1.ino(),
            meta.1.size(),
            meta.1.mtime(),
            meta.1.mtime_nsec(),
            meta.1.ctime(),
            meta.1.ctime_nsec()
        ),
        None => "none".to_string(),
    };
    let path = dir.join(format!("{key}-{:016x}.pem", digest(extra)));
    if path.is_file() {
        return Ok(Some(path));
    }
    let mut bundle = Vec::new();
    if let Some((located, _)) = store {
        // Opened for reading through the located file itself.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", located.as_raw_fd()))?;
        file.take(MAX_IMAGE_BUNDLE).read_to_end(&mut bundle)?;
        if !bundle.ends_with(b"\n") && !bundle.is_empty() {
            bundle.push(b'\n');
        }
    }
    bundle.extend_from_slice(extra.as_bytes());
    std::fs::create_dir_all(dir)?;
    make_room(dir);
    // A unique temporary name, renamed into place: two starts making the
    // same bundle at once each write their own, and the file is whole.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{seq}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut file| file.write_all(&bundle))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| Some(path))
}

/// The store in `rootfs` (an `O_PATH` descriptor: a FIFO or a device node
/// the root holds is never opened for reading by host root) with its
/// metadata, if it is a regular file. Every link resolves inside `rootfs`.
fn open_store(rootfs: &Path) -> std::io::Result<Option<(OwnedFd, std::fs::Metadata)>> {
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(rootfs)?;
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = IMAGE_BUNDLE.trim_start_matches('/');
    let fd = match nix::fcntl::openat2(root.as_raw_fd(), rel, how) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT | nix::Error::ENOTDIR | nix::Error::ELOOP | nix::Error::EXDEV) => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    let located = unsafe { OwnedFd::from_raw_fd(fd) };
    let meta = std::fs::File::from(located.try_clone()?).metadata()?;
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some((located, meta)))
}

/// Removes the older half of the bundles in `dir` once it holds
/// [`MAX_SHARED`]. A sandbox that has one bound keeps it (a bind mount
/// holds the file, not its name).
fn make_room(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut bundles: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pem"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if bundles.len() < MAX_SHARED {
        return;
    }
    bundles.sort();
    for (_, path) in bundles.iter().take(bundles.len() / 2) {
        let _ = std::fs::remove_file(path);
    }
}

/// A fixed 64-bit digest (FNV-1a) of the extras: a bundle's name says which
/// extras it ends with, so a restart with others makes new ones.
fn digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_certificates_is_read_in_name_order_and_other_files_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let cert =
            |n: &str| format!("-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n");
        std::fs::write(dir.path().join("b.crt"), cert("B")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.pem"), cert("A")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let pem = read_extra(dir.path()).unwrap();
        assert_eq!(pem, format!("{}{}", cert("B"), cert("A")));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_extra(empty.path()),
            Err(TrustError::NoCertificate(_))
        ));
    }

    /// A root with `store` (if any) as its image's CA store.
    fn root_with(store: Option<&str>) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let certs = root.path().join("etc/ssl/certs");
        std::fs::create_dir_all(&certs).unwrap();
        if let Some(store) = store {
            std::fs::write(certs.join("ca-certificates.crt"), store).unwrap();
        }
        root
    }

    #[test]
    fn one_bundle_per_store_made_once_and_a_changed_store_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("bundles");
        let root = root_with(Some("STORE"));
        let first = shared_bundle(&cache, root.path(), "EXTRA\n")
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "STORE\nEXTRA\n");
        assert_eq!(
            shared_bundle(&cache, root.path(), "EXTRA\n")
                .unwrap()
                .unwrap(),
            first
        );
        // Another extras file: another bundle.
        let other = shared_bundle(&cache, root.path(), "OTHER\n")
            .unwrap()
            .unwrap();
        assert_ne!(other, first);
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "STORE\nOTHER\n");
        // A write to the store (same size, even) changes its identity.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let store = root.path().join("etc/ssl/certs/ca-certificates.crt");
        std::fs::write(&store, "STORX").unwrap();
        let changed = shared_bundle(&cache, root.path(), "EXTRA\n")
            .unwrap()
            .unwrap();
        assert_ne!(changed, first);
        assert_eq!(std::fs::read_to_string(&changed).unwrap(), "STORX\nEXTRA\n");
        // The first is untouched for the sandboxes that have it.
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "STORE\nEXTRA\n");
    }

    #[test]
    fn a_store_that_links_out_of_its_root_or_is_not_a_file_counts_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("bundles");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "HOST SECRET").unwrap();
        let root = root_with(None);
        let store = root.path().join("etc/ssl/certs/ca-certificates.crt");
        // An absolute link resolves inside the root, where nothing is.
        std::os::unix::fs::symlink(&secret, &store).unwrap();
        let linked = shared_bundle(&cache, root.path(), "EXTRA\n")
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&linked).unwrap(), "EXTRA\n");
        std::fs::remove_file(&store).unwrap();
        std::os::unix::fs::symlink("../../../../../../secret", &store).unwrap();
        let relative = shared_bundle(&cache, root.path(), "EXTRA\n")
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&relative).unwrap(), "EXTRA\n");
        // A FIFO would block a read for ever; a directory is no store.
        std::fs::remove_file(&store).unwrap();
        nix::unistd::mkfifo(&store, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let fifo = shared_bundle(&cache, root.path(), "EXTRA\n")
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&fifo).unwrap(), "EXTRA\n");
        std::fs::remove_file(&store).unwrap();
        std::fs::create_dir(&store).unwrap();
        let directory = shared_bundle(&cache, root.path(), "EXTRA\n")
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&directory).unwrap(), "EXTRA\n");
    }

    #[test]
    fn the_bundles_kept_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("bundles");
        let root = root_with(Some("STORE"));
        let mut made = Vec::new();
        for n in 0..MAX_SHARED + 10 {
            made.push(
                shared_bundle(&cache, root.path(), &format!("EXTRA {n}\n"))
                    .unwrap()
                    .unwrap(),
            );
        }
        let kept = std::fs::read_dir(&cache).unwrap().count();
        assert!(kept <= MAX_SHARED, "{kept} bundles kept");
        // The newest stays.
        assert!(made.last().unwrap().is_file());
        // A store past the shared size is left to the sandbox.
        let big = root_with(Some(&"x".repeat(MAX_SHARED_STORE as usize + 1)));
        assert_eq!(shared_bundle(&cache, big.path(), "EXTRA\n").unwrap(), None);
    }
}
