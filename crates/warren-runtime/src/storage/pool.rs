//! The pool: the state directory's storage, opened once per process.
//!
//! [`Pool::open`] picks the driver and makes the pool usable:
//!
//! - `STATE_DIR` on btrfs: the btrfs driver works in `STATE_DIR/pool`
//!   directly.
//! - otherwise (btrfs driver): a sparse image `STATE_DIR/pool.img` (50 GiB by
//!   default, [`PoolOptions::image_size`]) is made with `mkfs.btrfs` the first
//!   time, attached to a loop device (ioctls, autoclear) and mounted at
//!   `STATE_DIR/pool`. A later open finds it mounted and reuses it, or (after
//!   a reboot) mounts it again.
//! - copy driver: `STATE_DIR/pool` is a plain directory.
//!
//! The driver is recorded in `STATE_DIR/pool.driver` on first open; asking
//! for the other one later is refused ([`StorageError::DriverMismatch`])
//! rather than silently hiding the existing data. Opens and closes hold an
//! exclusive flock on `STATE_DIR/pool.lock`, so processes sharing a state
//! dir never mount the image twice.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::btrfs::{is_btrfs, BtrfsDriver};
use super::copy::CopyDriver;
use super::reclaim::{Busy, Reclaimer};
use super::{loopdev, validate_name, StorageDriver, StorageError};

/// Which driver a pool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The driver recorded for this state dir; for a new one btrfs when the
    /// state dir is on btrfs or the host can make a btrfs image, else copy.
    Auto,
    /// btrfs subvolumes (directly, or in a loop-mounted image).
    Btrfs,
    /// Plain directories and copies.
    Copy,
}

impl std::str::FromStr for Driver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Driver::Auto),
            "btrfs" => Ok(Driver::Btrfs),
            "copy" => Ok(Driver::Copy),
            other => Err(format!(
                "unknown storage driver {other:?} (auto, btrfs, copy)"
            )),
        }
    }
}

/// Tunables of [`Pool::open_with`].
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Apparent size of a new `pool.img` (sparse: it takes disk space only
    /// as data is written). Ignored when the image exists.
    pub image_size: u64,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            image_size: 50 << 30,
        }
    }
}

const TEMPLATES: &str = "templates";
const SANDBOXES: &str = "sandboxes";
const CHECKPOINTS: &str = "checkpoints";
const LAYERS: &str = "layers";
const TMP: &str = "tmp";
const TRASH: &str = "trash";

/// An open pool: its root directory, layout and driver. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    state_dir: PathBuf,
    root: PathBuf,
    driver: Arc<dyn StorageDriver>,
    image: Option<PathBuf>,
    reclaim: Arc<Reclaimer>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("root", &self.root)
            .field("driver", &self.driver.name())
            .field("image", &self.image)
            .finish()
    }
}

fn lock_state(state_dir: &Path) -> Result<Flock<File>, StorageError> {
    let path = state_dir.join("pool.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io("open lock", &path, e))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| StorageError::io("lock", &path, io::Error::from(e)))
}

fn mkdir(path: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(path).map_err(|e| StorageError::io("create directory", path, e))
}

/// Whether this host can make and mount a btrfs image.
fn btrfs_supported() -> bool {
    let in_kernel = fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.trim_end().ends_with("\tbtrfs")))
        .unwrap_or(false);
    let as_module = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| {
            Path::new("/lib/modules")
                .join(r.trim())
                .join("kernel/fs/btrfs")
                .exists()
        })
        .unwrap_or(false);
    (in_kernel || as_module) && super::find_program("mkfs.btrfs").is_some()
}

impl Pool {
    /// Opens (creating, mounting or reusing) the pool of `state_dir` with
    /// default options. See the module docs.
    pub fn open(state_dir: &Path, driver: Driver) -> Result<Pool, StorageError> {
        Self::open_with(state_dir, driver, &PoolOptions::default())
    }

    /// [`Pool::open`] with explicit options.
    pub fn open_with(
        state_dir: &Path,
        driver: Driver,
        options: &PoolOptions,
    ) -> Result<Pool, StorageError> {
        mkdir(state_dir)?;
        let state_dir = state_dir
            .canonicalize()
            .map_err(|e| StorageError::io("resolve state dir", state_dir, e))?;
        let _lock = lock_state(&state_dir)?;
        let record = state_dir.join("pool.driver");
        let recorded = match fs::read_to_string(&record) {
            Ok(s) => Some(s.trim().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StorageError::io("read", &record, e)),
        };
        let image = state_dir.join("pool.img");
        let root = state_dir.join("pool");
        let mismatch = |found: &str, requested| StorageError::DriverMismatch {
            state_dir: state_dir.display().to_string(),
            found: found.to_string(),
            requested,
        };
        let use_btrfs = match (driver, recorded.as_deref()) {
            (Driver::Auto, None) => is_btrfs(&state_dir) || image.exists() || btrfs_supported(),
            (Driver::Auto | Driver::Btrfs, Some("btrfs")) | (Driver::Btrfs, None) => true,
            (Driver::Auto | Driver::Copy, Some("copy")) | (Driver::Copy, None) => false,
            (Driver::Auto, Some(other)) => return Err(mismatch(other, "auto")),
            (Driver::Btrfs, Some(other)) => return Err(mismatch(other, "btrfs")),
            (Driver::Copy, Some(other)) => return Err(mismatch(other, "copy")),
        };
        let (driver, image): (Arc<dyn StorageDriver>, _) = if !use_btrfs {
            mkdir(&root)?;
            (Arc::new(CopyDriver::new()), None)
        } else if image.exists() || !is_btrfs(&state_dir) {
            ensure_image(&image, options.image_size)?;
            mount_image(&image, &root)?;
            enable_quotas_or_warn(&root);
            (Arc::new(BtrfsDriver::new()), Some(image))
        } else {
            mkdir(&root)?;
            if !has_safe_flags(&root)? {
                // The admin's own btrfs: its mount options are theirs to set.
                tracing::warn!(
                    root = %root.display(),
                    "the pool's file system is not mounted nosuid,nodev: tenants' files in it \
                     could then carry setuid bits or device nodes that work on the host; mount it \
                     with nosuid,nodev (or use a state dir off btrfs, which gets its own image)"
                );
            }
            enable_quotas_or_warn(&root);
            (Arc::new(BtrfsDriver::new()), None)
        };
        if recorded.is_none() {
            write_atomic(&record, driver.name().as_bytes())?;
        }
        for dir in [TEMPLATES, SANDBOXES, CHECKPOINTS, LAYERS, TMP, TRASH] {
            mkdir(&root.join(dir))?;
        }
        // Sandboxes walk down to their own roots in `sandboxes/` (the state
        // dir is traversable for that); nothing of theirs is ever in
        // `checkpoints/`, which holds tenants' imports: root's alone.
        let checkpoints = root.join(CHECKPOINTS);
        fs::set_permissions(&checkpoints, fs::Permissions::from_mode(0o700))
            .map_err(|e| StorageError::io("chmod 0700", &checkpoints, e))?;
        tracing::debug!(root = %root.display(), driver = driver.name(), "storage pool open");
        let reclaim = Arc::new(Reclaimer::new(driver.clone(), root.join(TRASH)));
        Ok(Pool {
            state_dir,
            root,
            driver,
            image,
            reclaim,
        })
    }

    /// Unmounts an image-backed pool and detaches its loop device (tests,
    /// `warren` uninstall). Sandboxes and templates stay in the image; a
    /// later [`Pool::open`] mounts it again. A no-op for other pools.
    pub fn close(self) -> Result<(), StorageError> {
        let Pool {
            state_dir,
            image,
            reclaim,
            ..
        } = self;
        // The last handle deletes what is still queued, before the unmount.
        drop(reclaim);
        match image {
            Some(_) => Self::release(&state_dir),
            None => Ok(()),
        }
    }

    /// Unmounts `state_dir/pool` if it is the mount of `state_dir/pool.img`
    /// and detaches every loop device backed by that image, without an open
    /// [`Pool`]: for cleanup guards that must work whatever state a failed
    /// open or test left behind. A state dir without an image is left alone.
    pub fn release(state_dir: &Path) -> Result<(), StorageError> {
        let Ok(state_dir) = state_dir.canonicalize() else {
            return Ok(());
        };
        let image = state_dir.join("pool.img");
        if !image.exists() {
            return Ok(());
        }
        let _lock = lock_state(&state_dir)?;
        let root = state_dir.join("pool");
        let mounted =
            loopdev::mount_fstype(&root).map_err(|e| StorageError::io("read mounts", &root, e))?;
        if mounted.is_some() {
            nix::mount::umount2(&root, nix::mount::MntFlags::empty())
                .map_err(|e| StorageError::io("unmount", &root, io::Error::from(e)))?;
        }
        // Autoclear detaches the device once the unmount drops the last
        // reference; detach explicitly for devices attached without it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let devices = loopdev::devices_backed_by(&image);
            if devices.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StorageError::io(
                    "detach loop device",
                    &devices[0],
                    io::Error::from(io::ErrorKind::ResourceBusy),
                ));
            }
            for dev in &devices {
                loopdev::detach(dev).map_err(|e| StorageError::io("detach loop device", dev, e))?;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The driver of this pool.
    pub fn driver(&self) -> &dyn StorageDriver {
        &*self.driver
    }

    /// Takes the volume at `path` out of its place at once and deletes it
    /// when the pool is quiet ([`reclaim`](super::reclaim)): for volumes
    /// whose deletion nobody waits for (a deleted sandbox's root, a root a
    /// restore replaced). Missing is not an error; not a volume is.
    pub fn discard(&self, path: &Path) -> Result<(), StorageError> {
        self.reclaim.discard(path)
    }

    /// Marks the pool busy (making a sandbox) until the guard is dropped:
    /// discarded volumes wait meanwhile.
    pub fn busy(&self) -> Busy {
        self.reclaim.busy()
    }

    /// How many discarded volumes wait to be deleted.
    pub fn discarded(&self) -> usize {
        self.reclaim.queued()
    }

    /// The state directory the pool was opened from (canonical).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The pool root (`STATE_DIR/pool`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The loop-mounted image, if the pool lives in one.
    pub fn image(&self) -> Option<&Path> {
        self.image.as_deref()
    }

    /// `templates/<name>`: the template's root file system.
    pub fn template_path(&self, name: &str) -> Result<PathBuf, StorageError> {
        self.entry(TEMPLATES, name)
    }

    /// `sandboxes/<id>`: the sandbox's writable root.
    pub fn sandbox_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        self.entry(SANDBOXES, id)
    }

    /// `checkpoints/<id>`: a read-only snapshot of a sandbox.
    pub fn checkpoint_path(&self, id: &str) -> Result<PathBuf, StorageError> {
        self.entry(CHECKPOINTS, id)
    }

    /// `layers/<hash>`: a cached template build step.
    pub fn layer_path(&self, hash: &str) -> Result<PathBuf, StorageError> {
        self.entry(LAYERS, hash)
    }

    /// `templates/`.
    pub fn templates_dir(&self) -> PathBuf {
        self.root.join(TEMPLATES)
    }

    /// `layers/`.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join(LAYERS)
    }

    /// `tmp/`: volumes under construction and lock files.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP)
    }

    fn entry(&self, dir: &str, name: &str) -> Result<PathBuf, StorageError> {
        validate_name(name)?;
        Ok(self.root.join(dir).join(name))
    }
}

/// Writes `path` through a temporary file and a rename, so readers see the
/// old content or the new one, never a partial file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, data).map_err(|e| StorageError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StorageError::io("rename", path, e))
}

/// Makes the sparse btrfs image unless it exists. `mkfs.btrfs` runs on a
/// temporary name so that a crash never leaves a half-made `pool.img`.
fn ensure_image(image: &Path, size: u64) -> Result<(), StorageError> {
    if image.exists() {
        return Ok(());
    }
    let tmp = image.with_extension("img.tmp");
    let _ = fs::remove_file(&tmp);
    let file = File::create_new(&tmp).map_err(|e| StorageError::io("create image", &tmp, e))?;
    file.set_len(size)
        .map_err(|e| StorageError::io("size image", &tmp, e))?;
    drop(file);
    let mkfs = super::find_program("mkfs.btrfs").unwrap_or_else(|| "mkfs.btrfs".into());
    let mut cmd = Command::new(mkfs);
    // One copy of the metadata, not btrfs-progs' default two (DUP): every
    // snapshot (a create's spare root, a checkpoint, a fork's or a
    // restore's root) commits a transaction and waits for its dirty tree
    // blocks to be written through the loop device, so DUP doubled the
    // writes a snapshot waits for (0.5-1 ms of its 3). Both copies would
    // sit in one image file on one host disk: DUP guards against a bad
    // block there, not against losing the disk, and the host's storage is
    // where redundancy belongs.
    cmd.args(["-q", "-L", "warren-pool", "--metadata", "single"])
        .arg(&tmp);
    super::run_command(&mut cmd)?;
    fs::rename(&tmp, image).map_err(|e| StorageError::io("rename image", image, e))?;
    tracing::info!(image = %image.display(), size, "created btrfs pool image");
    Ok(())
}

/// Flags of the pool's mount. `nosuid` and `nodev`: the pool holds files
/// that tenants wrote (sandbox disks, imported checkpoints); none of them
/// may grant privilege or reach a device on the host, whoever opens it.
const POOL_MOUNT_FLAGS: nix::mount::MsFlags = nix::mount::MsFlags::MS_NOATIME
    .union(nix::mount::MsFlags::MS_NOSUID)
    .union(nix::mount::MsFlags::MS_NODEV);

/// Adds `nosuid,nodev` to a pool mounted by an earlier version.
fn harden_mount(root: &Path) -> Result<(), StorageError> {
    if has_safe_flags(root)? {
        return Ok(());
    }
    nix::mount::mount(
        None::<&str>,
        root,
        None::<&str>,
        POOL_MOUNT_FLAGS | nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| StorageError::io("remount pool nosuid,nodev", root, io::Error::from(e)))?;
    tracing::info!(root = %root.display(), "remounted the pool nosuid,nodev");
    Ok(())
}

/// Whether the mount holding `path` has `nosuid` and `nodev`.
fn has_safe_flags(path: &Path) -> Result<bool, StorageError> {
    use nix::sys::statvfs::FsFlags;
    let vfs = nix::sys::statvfs::statvfs(path)
        .map_err(|e| StorageError::io("statvfs", path, io::Error::from(e)))?;
    Ok(vfs.flags().contains(FsFlags::ST_NOSUID) && vfs.flags().contains(FsFlags::ST_NODEV))
}

/// Mounts `image` at `root` unless a btrfs is mounted there already.
fn mount_image(image: &Path, root: &Path) -> Result<(), StorageError> {
    mkdir(root)?;
    match loopdev::mount_fstype(root).map_err(|e| StorageError::io("read mounts", root, e))? {
        Some(fstype) if fstype == "btrfs" => return harden_mount(root),
        Some(fstype) => {
            return Err(StorageError::ForeignMount {
                path: root.display().to_string(),
                fstype,
            })
        }
        None => {}
    }
    // A device left attached (without a mount) is reused: attaching the same
    // image twice would show btrfs one file system on two devices.
    let attached;
    let device = match loopdev::devices_backed_by(image).into_iter().next() {
        Some(dev) => dev,
        None => {
            attached =
                loopdev::attach(image).map_err(|e| StorageError::io("attach loop", image, e))?;
            attached.path.clone()
        }
    };
    nix::mount::mount(
        Some(&device),
        root,
        Some("btrfs"),
        POOL_MOUNT_FLAGS,
        None::<&str>,
    )
    .map_err(|e| StorageError::io("mount pool", root, io::Error::from(e)))?;
    tracing::info!(device = %device.display(), root = %root.display(), "mounted btrfs pool");
    Ok(())
}

/// Turns on btrfs quotas for the pool, so that sandboxes' `disk_mb` holds;
/// without them (an old kernel) sandboxes' disks are not limited, and the
/// log says so.
fn enable_quotas_or_warn(root: &Path) {
    if let Err(e) = crate::storage::btrfs::enable_quotas(root) {
        tracing::warn!(root = %root.display(), error = %e, "btrfs quotas are off: sandboxes' disk_mb is not enforced");
    }
}
