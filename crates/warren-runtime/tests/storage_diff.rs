//! Diffs between volumes on real file systems: btrfs (a send stream without
//! data) and the copy driver (a walk) must give the same answer. Needs root.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use warren_runtime::storage::diff::{self, Change, Diff, DiffLimits, Kind, Side};
use warren_runtime::storage::{Driver, Pool, PoolOptions};

/// A pool in a temp dir; dropping it deletes its volumes and releases it,
/// even when the test failed.
struct TestPool {
    pool: Option<Pool>,
    dir: tempfile::TempDir,
}

impl TestPool {
    fn new(driver: Driver) -> TestPool {
        let dir = tempfile::Builder::new()
            .prefix("warren-diff-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let options = PoolOptions {
            image_size: 2 << 30,
        };
        let mut guard = TestPool { pool: None, dir };
        guard.pool = Some(Pool::open_with(guard.dir.path(), driver, &options).unwrap());
        guard
    }

    fn pool(&self) -> &Pool {
        self.pool.as_ref().unwrap()
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            for dir in ["sandboxes", "checkpoints", "tmp"] {
                for entry in fs::read_dir(pool.root().join(dir))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if pool.driver().is_volume(&entry.path()) {
                        let _ = pool.driver().delete(&entry.path());
                    }
                }
            }
        }
        if let Err(e) = Pool::release(self.dir.path()) {
            eprintln!("releasing test pool: {e}");
        }
    }
}

fn limits(max_items: usize) -> DiffLimits {
    DiffLimits {
        max_items,
        deadline: Instant::now() + Duration::from_secs(60),
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// `(change, kind, size, path)` of every item.
fn rows(diff: &Diff) -> Vec<(Change, Kind, u64, String)> {
    diff.items
        .iter()
        .map(|i| {
            (
                i.change,
                i.kind,
                i.size,
                String::from_utf8(i.path.clone()).unwrap(),
            )
        })
        .collect()
}

fn checkpoint(pool: &Pool, live: &Path, name: &str) -> std::path::PathBuf {
    let path = pool.checkpoint_path(name).unwrap();
    pool.driver().snapshot(live, &path, true).unwrap();
    path
}

fn changes_are_listed_exactly(driver: Driver) {
    let t = TestPool::new(driver);
    let pool = t.pool();
    let live = pool.sandbox_path("sbx").unwrap();
    pool.driver().create_volume(&live).unwrap();
    let home = live.join("home/user");
    write(&home.join("keep.txt"), "same\n");
    write(&home.join("mod.txt"), "one\ntwo\nthree\n");
    write(&home.join("del.txt"), "bye\n");
    write(&home.join("old/a.txt"), "a\n");
    write(&home.join("old/b.txt"), "bb\n");
    write(&home.join("mode.sh"), "#!/bin/sh\n");
    symlink("/etc", home.join("escape")).unwrap();
    let a = checkpoint(pool, &live, "a");

    write(&home.join("mod.txt"), "one\nTWO\nthree\nfour\n");
    fs::remove_file(home.join("del.txt")).unwrap();
    write(&home.join("new.txt"), "new!\n");
    write(&home.join("newdir/inner.txt"), "inner\n");
    symlink("keep.txt", home.join("link")).unwrap();
    fs::rename(home.join("old"), home.join("renamed")).unwrap();
    fs::set_permissions(home.join("mode.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    // A path through the symlink must not be looked up on the host.
    fs::remove_file(home.join("escape")).unwrap();
    fs::create_dir(home.join("escape")).unwrap();
    write(&home.join("escape/passwd"), "not the host's\n");
    let b = checkpoint(pool, &live, "b");

    use Change::*;
    use Kind::*;
    let expected = vec![
        (Deleted, File, 4, "home/user/del.txt"),
        (Modified, Dir, 0, "home/user/escape"),
        (Added, File, 15, "home/user/escape/passwd"),
        (Added, Symlink, 8, "home/user/link"),
        (Modified, File, 19, "home/user/mod.txt"),
        (Modified, File, 10, "home/user/mode.sh"),
        (Added, File, 5, "home/user/new.txt"),
        (Added, Dir, 0, "home/user/newdir"),
        (Added, File, 6, "home/user/newdir/inner.txt"),
        (Deleted, Dir, 0, "home/user/old"),
        (Deleted, File, 2, "home/user/old/a.txt"),
        (Deleted, File, 3, "home/user/old/b.txt"),
        (Added, Dir, 0, "home/user/renamed"),
        (Added, File, 2, "home/user/renamed/a.txt"),
        (Added, File, 3, "home/user/renamed/b.txt"),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(c, k, s, p)| (c, k, s, p.to_string()))
        .collect();
    let scratch = pool.tmp_dir().join("tt-diff-test");
    let got = pool
        .driver()
        .diff(&a, &b, &scratch, limits(10_000))
        .unwrap();
    assert_eq!(rows(&got), expected, "{driver:?}");
    assert!(!got.truncated);
    // Nothing changed between a checkpoint and itself.
    let same = pool
        .driver()
        .diff(&b, &b, &scratch, limits(10_000))
        .unwrap();
    assert_eq!(same, Diff::default());

    // To the live disk, after one more change; the temporary snapshot goes.
    write(&home.join("later.txt"), "later\n");
    let got = pool
        .driver()
        .diff(&b, &live, &scratch, limits(10_000))
        .unwrap();
    assert_eq!(
        rows(&got),
        vec![(Added, File, 6, "home/user/later.txt".to_string())],
        "{driver:?}"
    );
    assert!(!scratch.exists(), "the diff's snapshot is deleted");

    // The item cap.
    for i in 0..50 {
        write(&home.join(format!("many/f{i:03}")), "x");
    }
    let got = pool.driver().diff(&b, &live, &scratch, limits(10)).unwrap();
    assert_eq!(got.items.len(), 10);
    assert!(got.truncated);

    // One file's bounded contents, never through a symlink.
    let side = diff::read_file(&b, b"home/user/mod.txt", 4).unwrap();
    assert_eq!(
        side,
        Side::File {
            bytes: b"one\n".to_vec(),
            truncated: true
        }
    );
    assert_eq!(
        diff::read_file(&a, b"home/user/new.txt", 100).unwrap(),
        Side::Missing
    );
    assert_eq!(
        diff::read_file(&b, b"home/user/link", 100).unwrap(),
        Side::NotAFile(Symlink)
    );
    assert_eq!(
        diff::read_file(&a, b"home/user/escape/passwd", 100).unwrap(),
        Side::Missing,
        "not the host's /etc/passwd"
    );
}

#[test]
fn btrfs_diff_lists_changes_exactly() {
    changes_are_listed_exactly(Driver::Btrfs);
}

#[test]
fn copy_diff_lists_changes_exactly() {
    changes_are_listed_exactly(Driver::Copy);
}
