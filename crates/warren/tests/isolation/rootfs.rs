//! Root file systems for isolation tests.
//!
//! [`base_rootfs`] is the one place that decides what the tests boot: today
//! a Debian bookworm minbase debootstrapped once into a cache directory shared
//! by every test process (built under a lock file), with its ownership
//! shifted into the sandbox id range. [`Overlay`] gives each sandbox its own
//! writable root over it, so tests never share a writable root.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use warren_runtime::{SANDBOX_ID_BASE, SANDBOX_ID_COUNT};

/// Cache shared by test runs (and by parallel test processes).
const CACHE: &str = "/var/cache/warren-test";
/// Suite and extra packages of the test root file system.
const SUITE: &str = "bookworm";
const INCLUDE: &str = "procps,iproute2";

/// The read-only root file system every test sandbox starts from.
pub fn base_rootfs() -> PathBuf {
    debootstrapped_bookworm()
}

/// Debian bookworm minbase, ids shifted to the sandbox range. Built on first
/// use (about half a minute), then reused.
fn debootstrapped_bookworm() -> PathBuf {
    let cache = Path::new(CACHE);
    let dir = cache.join(format!("rootfs-{SUITE}"));
    let ready = cache.join(format!("rootfs-{SUITE}.ready"));
    if ready.exists() {
        return dir;
    }
    std::fs::create_dir_all(cache).expect("creating the test cache");
    let lock = File::create(cache.join(format!("rootfs-{SUITE}.lock"))).expect("lock file");
    // SAFETY: flock on an fd we own; released when `lock` is closed.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "locking the rootfs cache");
    if ready.exists() {
        return dir;
    }
    // Stages survive an interrupted build: .tmp (debootstrap running) is
    // thrown away, .debootstrapped is complete and only needs the shift.
    let staged = cache.join(format!("rootfs-{SUITE}.debootstrapped"));
    if !staged.exists() && !dir.exists() {
        let tmp = cache.join(format!("rootfs-{SUITE}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        let mirror = debian_mirror();
        eprintln!(
            "debootstrapping {SUITE} from {mirror} into {} (once)",
            tmp.display()
        );
        let status = Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
            .arg(&tmp)
            .arg(&mirror)
            .status()
            .expect("running debootstrap (apt-get install debootstrap)");
        assert!(status.success(), "debootstrap failed: {status}");
        std::fs::rename(&tmp, &staged).expect("renaming the debootstrapped tree");
    }
    if staged.exists() {
        shift_ids(&staged);
        std::fs::rename(&staged, &dir).expect("renaming the shifted tree");
    } else {
        // Renamed but not marked ready: the shift is idempotent.
        shift_ids(&dir);
    }
    File::create(&ready).expect("marking the rootfs ready");
    dir
}

/// The first Debian mirror of the host's apt sources that serves bookworm
/// (one-line or deb822 format), else deb.debian.org.
fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            // deb [options] URI SUITE COMPONENTS...
            if words.first() == Some(&"deb") {
                let rest: Vec<&&str> = words[1..].iter().filter(|w| !w.starts_with('[')).collect();
                if rest.len() >= 2 && *rest[1] == SUITE {
                    return rest[0].to_string();
                }
            }
        }
        // deb822: a stanza with URIs: and Suites: containing the suite.
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
                if suites.split_whitespace().any(|s| s == SUITE) {
                    if let Some(uri) = uris.split_whitespace().next() {
                        return uri.to_string();
                    }
                }
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// Moves every file's owner and group from 0..65535 to the sandbox range
/// (ids already in the range are left alone, so running it twice is safe).
/// chown clears setuid/setgid bits, so the mode is restored after it.
pub fn shift_ids(root: &Path) {
    let shift = |id: u32| {
        if id < SANDBOX_ID_COUNT {
            SANDBOX_ID_BASE + id
        } else {
            id
        }
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat while shifting");
        let (uid, gid) = (shift(meta.uid()), shift(meta.gid()));
        if (uid, gid) != (meta.uid(), meta.gid()) {
            lchown(&path, Some(uid), Some(gid)).expect("lchown while shifting");
            if !meta.file_type().is_symlink() {
                std::fs::set_permissions(
                    &path,
                    std::fs::Permissions::from_mode(meta.mode() & 0o7777),
                )
                .expect("restoring the mode");
            }
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("reading a directory while shifting") {
                stack.push(entry.expect("directory entry").path());
            }
        }
    }
}

/// A writable root for one sandbox: an overlay over the base, unmounted and
/// deleted on drop.
pub struct Overlay {
    /// The merged directory: the sandbox's rootfs.
    pub merged: PathBuf,
    _dir: tempfile::TempDir,
}

impl Overlay {
    /// A fresh overlay over `lower`.
    pub fn new(lower: &Path) -> Overlay {
        let dir = tempfile::Builder::new()
            .prefix("warren-root-")
            .tempdir()
            .expect("tempdir");
        let (upper, work, merged) = (
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("merged"),
        );
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d).expect("overlay dirs");
        }
        // The merged root takes the upper directory's owner and mode.
        lchown(&upper, Some(SANDBOX_ID_BASE), Some(SANDBOX_ID_BASE)).expect("chown upper");
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o755))
            .expect("chmod upper");
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .expect("mounting the overlay");
        Overlay { merged, _dir: dir }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.merged, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("unmounting {}: {e}", self.merged.display());
        }
    }
}
