//! Storage drivers and the pool on real file systems: btrfs in a sparse image
//! on a loop device, and plain directories. Needs root.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use warren_runtime::storage::{Driver, Pool, PoolOptions, StorageError};

/// A pool in a temp dir; dropping it deletes its volumes, unmounts the image
/// and detaches the loop device, even when the test failed.
struct TestPool {
    pool: Option<Pool>,
    dir: tempfile::TempDir,
}

impl TestPool {
    fn new(driver: Driver) -> TestPool {
        let dir = tempfile::Builder::new()
            .prefix("warren-storage-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let options = PoolOptions {
            image_size: 4 << 30,
        };
        let mut guard = TestPool { pool: None, dir };
        guard.pool = Some(Pool::open_with(guard.dir.path(), driver, &options).unwrap());
        guard
    }

    fn pool(&self) -> &Pool {
        self.pool.as_ref().unwrap()
    }

    fn image(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap().join("pool.img")
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            delete_all_volumes(&pool);
        }
        if let Err(e) = Pool::release(self.dir.path()) {
            eprintln!("releasing test pool: {e}");
        }
    }
}

fn delete_all_volumes(pool: &Pool) {
    for dir in [
        "templates",
        "sandboxes",
        "checkpoints",
        "layers",
        "tmp",
        "trash",
    ] {
        let Ok(entries) = fs::read_dir(pool.root().join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            if pool.driver().is_volume(&entry.path()) {
                if let Err(e) = pool.driver().delete(&entry.path()) {
                    eprintln!("cleanup {}: {e}", entry.path().display());
                }
            }
        }
    }
}

fn loop_devices_for(image: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/block").unwrap().flatten() {
        let backing = entry.path().join("loop/backing_file");
        if let Ok(b) = fs::read_to_string(backing) {
            if Path::new(b.trim_end()) == image {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

fn is_mount_point(path: &Path) -> bool {
    let path = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.as_str()))
}

/// The behaviour both drivers must share.
fn exercise(pool: &Pool) {
    let d = pool.driver();
    let a = pool.sandbox_path("a").unwrap();
    d.create_volume(&a).unwrap();
    assert!(d.is_volume(&a));
    assert!(matches!(
        d.create_volume(&a),
        Err(StorageError::AlreadyExists(_))
    ));

    fs::create_dir_all(a.join("etc")).unwrap();
    fs::create_dir_all(a.join("bin")).unwrap();
    fs::write(a.join("etc/hello"), "hi").unwrap();
    fs::hard_link(a.join("etc/hello"), a.join("etc/hello2")).unwrap();
    xattr::set(a.join("etc/hello"), "user.warren-test", b"v").unwrap();
    let tool = a.join("bin/tool");
    fs::write(&tool, "#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(&tool, Some(101_234), Some(105_678)).unwrap();
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4750)).unwrap();
    std::os::unix::fs::symlink("/etc/hello", a.join("link")).unwrap();
    nix::unistd::mkfifo(
        &a.join("fifo"),
        nix::sys::stat::Mode::from_bits(0o600).unwrap(),
    )
    .unwrap();
    let nested = a.join("nested");
    d.create_volume(&nested).unwrap();
    fs::write(nested.join("inner"), "nested data").unwrap();
    // Nested deeper, and nested twice.
    d.create_volume(&a.join("etc/deep")).unwrap();
    d.create_volume(&a.join("etc/deep/deeper")).unwrap();
    fs::write(a.join("etc/deep/deeper/x"), "x").unwrap();

    // A writable snapshot: same content, metadata preserved, independent.
    let b = pool.sandbox_path("b").unwrap();
    d.snapshot(&a, &b, false).unwrap();
    assert!(d.is_volume(&b));
    assert_eq!(fs::read_to_string(b.join("etc/hello")).unwrap(), "hi");
    let m = fs::symlink_metadata(b.join("bin/tool")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (101_234, 105_678, 0o4750)
    );
    assert_eq!(
        fs::read_link(b.join("link")).unwrap(),
        Path::new("/etc/hello")
    );
    assert_eq!(
        fs::metadata(b.join("etc/hello")).unwrap().ino(),
        fs::metadata(b.join("etc/hello2")).unwrap().ino(),
        "hard links stay linked"
    );
    assert_eq!(
        xattr::get(b.join("etc/hello"), "user.warren-test").unwrap(),
        Some(b"v".to_vec())
    );
    assert!(fs::symlink_metadata(b.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(
        b.join("nested").is_dir(),
        "nested volume leaves a directory"
    );
    assert_eq!(
        fs::read_dir(b.join("nested")).unwrap().count(),
        0,
        "but not its data"
    );
    fs::write(b.join("etc/hello"), "changed").unwrap();
    assert_eq!(fs::read_to_string(a.join("etc/hello")).unwrap(), "hi");

    // A read-only snapshot refuses writes, even root's.
    let c = pool.checkpoint_path("c").unwrap();
    d.snapshot(&a, &c, true).unwrap();
    assert!(fs::write(c.join("etc/hello"), "no").is_err());
    assert!(fs::write(c.join("new"), "no").is_err());
    assert!(fs::remove_file(c.join("link")).is_err());
    assert_eq!(fs::read_to_string(c.join("etc/hello")).unwrap(), "hi");
    assert!(matches!(
        d.snapshot(&a, &c, true),
        Err(StorageError::AlreadyExists(_))
    ));

    // A writable snapshot of a read-only one is writable, modes intact.
    let e = pool.sandbox_path("e").unwrap();
    d.snapshot(&c, &e, false).unwrap();
    fs::write(e.join("etc/hello"), "fork").unwrap();
    let m = fs::symlink_metadata(e.join("bin/tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4750);

    // A durable snapshot (a checkpoint's) holds what was written just
    // before it and never written back: on btrfs the snapshot ioctl itself
    // writes the source's dirty data back; nothing here synced it.
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(e.join("dirty"), &data).unwrap();
    let f = pool.checkpoint_path("f").unwrap();
    d.snapshot_durable(&e, &f).unwrap();
    assert!(
        fs::read(f.join("dirty")).unwrap() == data,
        "the durable snapshot lost unsynced writes"
    );
    assert!(fs::write(f.join("new"), "no").is_err(), "read-only");
    d.delete(&f).unwrap();

    // Freezing and thawing a volume.
    d.set_readonly(&e, true).unwrap();
    assert!(fs::write(e.join("etc/hello"), "frozen").is_err());
    d.set_readonly(&e, false).unwrap();
    fs::write(e.join("etc/hello"), "thawed").unwrap();

    // Deletes: read-only, with a nested volume, read-only with a nested one.
    d.delete(&c).unwrap();
    assert!(!c.exists());
    d.delete(&a).unwrap();
    assert!(!a.exists());
    d.delete(&a).unwrap();
    d.create_volume(&e.join("nested2")).unwrap();
    fs::write(e.join("nested2/x"), "x").unwrap();
    d.set_readonly(&e, true).unwrap();
    d.delete(&e).unwrap();
    assert!(!e.exists());
    // A mount inside a volume is detached by the delete, and what it shows
    // is not deleted through it.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("keep"), "keep").unwrap();
    fs::create_dir(b.join("mnt")).unwrap();
    nix::mount::mount(
        Some(outside.path()),
        &b.join("mnt"),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    d.delete(&b).unwrap();
    assert!(!b.exists());
    assert!(!is_mount_point(&b.join("mnt")));
    assert_eq!(
        fs::read_to_string(outside.path().join("keep")).unwrap(),
        "keep"
    );

    // Plain directories are not volumes: never deleted or snapshotted.
    let plain = pool.sandbox_path("plain").unwrap();
    fs::create_dir(&plain).unwrap();
    assert!(!d.is_volume(&plain));
    assert!(matches!(d.delete(&plain), Err(StorageError::NotAVolume(_))));
    assert!(matches!(
        d.snapshot(&plain, &pool.sandbox_path("p2").unwrap(), false),
        Err(StorageError::NotAVolume(_))
    ));
    assert!(matches!(
        d.snapshot(
            &pool.sandbox_path("missing").unwrap(),
            &pool.sandbox_path("p3").unwrap(),
            false
        ),
        Err(StorageError::NotFound(_))
    ));
    fs::remove_dir(&plain).unwrap();
    assert_eq!(
        fs::read_dir(pool.root().join("sandboxes")).unwrap().count(),
        0
    );
}

#[test]
fn btrfs_volumes_snapshots_and_deletes() {
    let t = TestPool::new(Driver::Btrfs);
    assert_eq!(t.pool().driver().name(), "btrfs");
    assert!(
        t.pool().image().is_some(),
        "/var/tmp is not btrfs here, so an image is used"
    );
    // One copy of the metadata: each snapshot's commit waits for half the
    // writes DUP would make.
    let df = std::process::Command::new("btrfs")
        .args(["filesystem", "df"])
        .arg(t.pool().root())
        .output()
        .unwrap();
    let df = String::from_utf8_lossy(&df.stdout);
    assert!(df.contains("Metadata, single"), "{df}");
    exercise(t.pool());
}

#[test]
fn copy_volumes_snapshots_and_deletes() {
    let t = TestPool::new(Driver::Copy);
    assert_eq!(t.pool().driver().name(), "copy");
    exercise(t.pool());
}

fn fill(dir: &Path, mib: usize) {
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..mib {
        let mut f = fs::File::create(dir.join(format!("f{i}"))).unwrap();
        f.write_all(&chunk).unwrap();
    }
}

fn time_snapshot(pool: &Pool, src: &Path, name: &str) -> std::time::Duration {
    // Snapshots flush the source's dirty data first; sync so that only the
    // snapshot itself is timed.
    nix::unistd::sync();
    let dst = pool.sandbox_path(name).unwrap();
    let start = Instant::now();
    pool.driver().snapshot(src, &dst, false).unwrap();
    start.elapsed()
}

#[test]
fn btrfs_snapshot_is_constant_time() {
    let t = TestPool::new(Driver::Btrfs);
    let pool = t.pool();
    let empty = pool.template_path("empty").unwrap();
    let big = pool.template_path("big").unwrap();
    pool.driver().create_volume(&empty).unwrap();
    pool.driver().create_volume(&big).unwrap();
    fill(&big, 200);
    let t_empty = time_snapshot(pool, &empty, "from-empty");
    let t_big = time_snapshot(pool, &big, "from-big");
    eprintln!("snapshot of an empty volume: {t_empty:?}; of 200 MiB: {t_big:?}");
    assert!(
        t_big.as_millis() < 1000,
        "snapshot of 200 MiB took {t_big:?}"
    );
    let copy = pool.sandbox_path("from-big").unwrap();
    assert_eq!(fs::metadata(copy.join("f199")).unwrap().len(), 1 << 20);
}

#[test]
fn pool_reopen_remounts_the_same_data() {
    let mut t = TestPool::new(Driver::Btrfs);
    let image = t.image();
    let root = t.pool().root().to_path_buf();
    let vol = t.pool().sandbox_path("keep").unwrap();
    t.pool().driver().create_volume(&vol).unwrap();
    fs::write(vol.join("data"), "still here").unwrap();
    assert!(is_mount_point(&root));
    let devices = loop_devices_for(&image);
    assert_eq!(devices.len(), 1);
    let dio = fs::read_to_string(format!("/sys/block/{}/loop/dio", devices[0])).unwrap();
    eprintln!("{} direct I/O: {}", devices[0], dio.trim());

    // Opening again while mounted reuses the mount.
    let again = Pool::open(t.dir.path(), Driver::Auto).unwrap();
    assert_eq!(again.driver().name(), "btrfs");
    assert_eq!(loop_devices_for(&image).len(), 1);

    // Close: unmounted, loop device gone.
    t.pool.take().unwrap().close().unwrap();
    assert!(!is_mount_point(&root));
    assert!(loop_devices_for(&image).is_empty(), "loop device detached");
    assert!(!vol.exists());

    // A restart: open mounts the image again with the data.
    t.pool = Some(Pool::open(t.dir.path(), Driver::Auto).unwrap());
    assert!(is_mount_point(&root));
    assert_eq!(fs::read_to_string(vol.join("data")).unwrap(), "still here");
    assert!(t.pool().driver().is_volume(&vol));
}

#[test]
fn pool_refuses_a_different_driver() {
    let t = TestPool::new(Driver::Copy);
    let err = Pool::open(t.dir.path(), Driver::Btrfs).unwrap_err();
    assert!(
        matches!(err, StorageError::DriverMismatch { ref found, .. } if found == "copy"),
        "{err}"
    );
    // Auto follows the recorded driver.
    assert_eq!(
        Pool::open(t.dir.path(), Driver::Auto)
            .unwrap()
            .driver()
            .name(),
        "copy"
    );
    assert!(matches!(
        t.pool().template_path("../etc"),
        Err(StorageError::InvalidName(_))
    ));
}

/// Pages of `path` in the page cache, and its length in pages.
fn resident_pages(path: &Path) -> (usize, usize) {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len() as usize;
    let mut pages = vec![0u8; len.div_ceil(4096)];
    // SAFETY: a read-only shared mapping of an open file, only passed to
    // `mincore` (which does not touch the pages) and unmapped here.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED);
        let rc = libc::mincore(addr, len, pages.as_mut_ptr());
        libc::munmap(addr, len);
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    }
    (pages.iter().filter(|p| **p & 1 == 1).count(), pages.len())
}

#[test]
fn btrfs_warm_reads_a_fresh_snapshot_ahead_and_stays_in_its_root() {
    let t = TestPool::new(Driver::Btrfs);
    let (pool, d) = (t.pool(), t.pool().driver());
    let a = pool.template_path("warm").unwrap();
    d.create_volume(&a).unwrap();
    for dir in ["lib", "etc", "bin"] {
        fs::create_dir_all(a.join(dir)).unwrap();
    }
    fill(&a.join("lib"), 2);
    // Larger than what one warm reads in all.
    let big: Vec<u8> = (0..12 << 20).map(|i| (i % 253) as u8).collect();
    fs::write(a.join("lib/big"), big).unwrap();
    // A file of the host's, named by an absolute symlink in the root, and a
    // FIFO where a shell would be: neither may be read (nor block).
    let outside = t.dir.path().canonicalize().unwrap().join("outside");
    fs::write(&outside, vec![7u8; 1 << 20]).unwrap();
    std::os::unix::fs::symlink(&outside, a.join("etc/hosts")).unwrap();
    nix::unistd::mkfifo(
        &a.join("bin/sh"),
        nix::sys::stat::Mode::from_bits(0o600).unwrap(),
    )
    .unwrap();
    let b = pool.sandbox_path("b").unwrap();
    d.snapshot(&a, &b, false).unwrap();
    nix::unistd::sync();
    {
        use std::os::fd::AsRawFd;
        let f = fs::File::open(&outside).unwrap();
        // SAFETY: advice on an open fd.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    // A snapshot's files share no page cache with their source's.
    let lib = b.join("lib/f0");
    assert_eq!(resident_pages(&lib).0, 0, "a fresh snapshot's file is cold");
    assert_eq!(resident_pages(&outside).0, 0, "the host file was dropped");

    warren_runtime::storage::warm(&b, &["etc/hosts", "bin/sh", "lib/f0", "missing"]);
    let begun = Instant::now();
    while resident_pages(&lib).0 < resident_pages(&lib).1 {
        assert!(
            begun.elapsed() < std::time::Duration::from_secs(10),
            "read ahead: {:?} of its pages",
            resident_pages(&lib)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        resident_pages(&b.join("lib/f1")).0,
        0,
        "only what was named"
    );
    assert_eq!(resident_pages(&outside).0, 0, "the host's file was read");

    // A budget for all files together: a large file first leaves nothing
    // for the ones after it.
    let big = b.join("lib/big");
    warren_runtime::storage::warm(&b, &["lib/big", "lib/f1"]);
    let begun = Instant::now();
    while resident_pages(&big).0 < (8 << 20) / 4096 {
        assert!(
            begun.elapsed() < std::time::Duration::from_secs(10),
            "read ahead: {:?} of its pages",
            resident_pages(&big)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (read, pages) = resident_pages(&big);
    assert!(read < pages, "all {pages} pages of a 12 MiB file read");
    assert_eq!(
        resident_pages(&b.join("lib/f1")).0,
        0,
        "read past the budget"
    );
}

fn trash_entries(pool: &Pool) -> Vec<PathBuf> {
    fs::read_dir(pool.root().join("trash"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Deleted subvolumes the btrfs cleaner has not freed yet.
fn uncleaned(pool: &Pool) -> usize {
    let out = std::process::Command::new("btrfs")
        .args(["subvolume", "list", "-d"])
        .arg(pool.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let begun = Instant::now();
    while !done() {
        assert!(begun.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    begun.elapsed()
}

/// A written volume in `sandboxes/`, as a deleted sandbox leaves.
fn written_volume(pool: &Pool, name: &str) -> PathBuf {
    let v = pool.sandbox_path(name).unwrap();
    pool.driver().create_volume(&v).unwrap();
    fill(&v, 1);
    v
}

#[test]
fn btrfs_discard_frees_the_path_at_once_and_deletes_when_quiet() {
    use warren_runtime::storage::reclaim::{MAX_WAIT, QUIET};
    let t = TestPool::new(Driver::Btrfs);
    let pool = t.pool();

    // While the pool is busy, a discarded volume leaves its path at once
    // and waits in the trash.
    let busy = pool.busy();
    let a = written_volume(pool, "a");
    pool.discard(&a).unwrap();
    assert!(!a.exists(), "the path is free at once");
    pool.driver().create_volume(&a).unwrap();
    assert_eq!(trash_entries(pool).len(), 1);
    assert_eq!(pool.discarded(), 1);
    std::thread::sleep(QUIET * 2);
    assert_eq!(pool.discarded(), 1, "deleted while the pool was busy");

    // ... but no longer than MAX_WAIT.
    let waited = wait_until("an overdue volume deleted", MAX_WAIT * 2, || {
        pool.discarded() == 0
    });
    assert!(waited + QUIET * 2 >= MAX_WAIT - Duration::from_millis(100));
    assert!(trash_entries(pool).is_empty());
    wait_until(
        "the overdue volume cleaned",
        Duration::from_secs(10),
        || uncleaned(pool) == 0,
    );

    // Once the pool is quiet, what was discarded goes, and the cleaner frees
    // it then, not at the next periodic commit (30 s).
    pool.discard(&a).unwrap();
    std::thread::sleep(QUIET * 2);
    assert_eq!(pool.discarded(), 1, "deleted while the pool was busy");
    drop(busy);
    wait_until("deleted once quiet", QUIET * 10, || pool.discarded() == 0);
    assert!(trash_entries(pool).is_empty());
    wait_until("cleaned once quiet", Duration::from_secs(10), || {
        uncleaned(pool) == 0
    });

    // Not a volume: refused, as delete does. Missing: fine.
    let plain = pool.sandbox_path("plain").unwrap();
    fs::create_dir(&plain).unwrap();
    assert!(matches!(
        pool.discard(&plain),
        Err(StorageError::NotAVolume(_))
    ));
    pool.discard(&pool.sandbox_path("missing").unwrap())
        .unwrap();
}

#[test]
fn btrfs_discarded_volumes_survive_neither_a_close_nor_a_crash() {
    let mut t = TestPool::new(Driver::Btrfs);
    let root = t.pool().root().to_path_buf();

    // A close deletes what is still queued before it unmounts.
    let busy = t.pool().busy();
    for name in ["a", "b", "c"] {
        let v = written_volume(t.pool(), name);
        t.pool().discard(&v).unwrap();
    }
    assert_eq!(t.pool().discarded(), 3);
    drop(busy);
    t.pool.take().unwrap().close().unwrap();
    t.pool = Some(Pool::open(t.dir.path(), Driver::Auto).unwrap());
    assert!(trash_entries(t.pool()).is_empty(), "left after a close");

    // A crash leaves the trash as it was: the next open deletes it.
    for name in ["d", "e"] {
        let v = root.join("trash").join(name);
        t.pool().driver().create_volume(&v).unwrap();
        fill(&v, 1);
    }
    let again = Pool::open(t.dir.path(), Driver::Auto).unwrap();
    assert_eq!(again.discarded(), 2, "queued at open");
    wait_until("the trash emptied", Duration::from_secs(10), || {
        trash_entries(&again).is_empty()
    });
}
