//! Templates on real pools: the debootstrapped base, spec builds with layer
//! reuse (steps run in a user namespace), and OCI / docker-save imports.
//! Needs root and the network (Debian mirror).
//!
//! The base template takes minutes to build, so the tests that need it share
//! one pool in a persistent cache (`$WARREN_TEST_CACHE`, default
//! `/var/cache/warren-test`): built once per machine, mounted while a test
//! uses it and unmounted by the last user.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use warren_runtime::storage::{Driver, Pool, PoolOptions};
use warren_runtime::template::{self, BaseOptions, TemplateError, TemplateSpec};
use warren_runtime::{SANDBOX_ID_BASE, SANDBOX_ID_COUNT};

fn cache_dir() -> PathBuf {
    std::env::var_os("WARREN_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/warren-test"))
}

fn base_options() -> BaseOptions {
    BaseOptions {
        cache_dir: cache_dir().join("debootstrap"),
        ..BaseOptions::default()
    }
}

/// The shared pool, held with a shared flock on `users.lock`; the last
/// user to drop it unmounts the image.
struct SharedPool {
    pool: Option<Pool>,
    users: Option<Flock<File>>,
}

fn users_lock() -> File {
    fs::create_dir_all(cache_dir()).unwrap();
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache_dir().join("users.lock"))
        .unwrap()
}

impl SharedPool {
    fn open() -> SharedPool {
        let users = Flock::lock(users_lock(), FlockArg::LockShared).unwrap();
        let options = PoolOptions {
            image_size: 16 << 30,
        };
        let pool = Pool::open_with(&cache_dir().join("state"), Driver::Btrfs, &options).unwrap();
        SharedPool {
            pool: Some(pool),
            users: Some(users),
        }
    }

    fn pool(&self) -> &Pool {
        self.pool.as_ref().unwrap()
    }

    /// The base template, built (and timed) if this machine has none yet.
    fn base(&self) -> template::TemplateMeta {
        let start = Instant::now();
        let mut lines = 0usize;
        let meta = template::ensure_base(self.pool(), &base_options(), &mut |line| {
            lines += 1;
            eprintln!("base: {line}");
        })
        .unwrap();
        if lines > 0 {
            eprintln!(
                "base template built in {:.1?} ({lines} progress lines)",
                start.elapsed()
            );
        }
        meta
    }
}

impl Drop for SharedPool {
    fn drop(&mut self) {
        self.pool.take();
        if let Some(users) = self.users.take() {
            drop(users.unlock());
        }
        // Whoever gets the exclusive lock is the last user.
        if let Ok(_last) = Flock::lock(users_lock(), FlockArg::LockExclusiveNonblock) {
            if let Err(e) = Pool::release(&cache_dir().join("state")) {
                eprintln!("releasing the shared pool: {e}");
            }
        }
    }
}

/// A private pool in a temp dir, released (volumes deleted, image
/// unmounted, loop device detached) on drop.
struct TestPool {
    pool: Option<Pool>,
    dir: tempfile::TempDir,
}

impl TestPool {
    fn new(driver: Driver) -> TestPool {
        let dir = tempfile::Builder::new()
            .prefix("warren-template-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let options = PoolOptions {
            image_size: 2 << 30,
        };
        let pool = Pool::open_with(dir.path(), driver, &options).unwrap();
        TestPool {
            pool: Some(pool),
            dir,
        }
    }

    fn pool(&self) -> &Pool {
        self.pool.as_ref().unwrap()
    }
}

impl Drop for TestPool {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            for t in template::list(&pool).unwrap_or_default() {
                let _ = template::delete(&pool, &t.name);
            }
            let _ = template::prune_layers(&pool);
        }
        if let Err(e) = Pool::release(self.dir.path()) {
            eprintln!("releasing test pool: {e}");
        }
    }
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn base_template_is_debian_bookworm_owned_by_the_sandbox_root() {
    let shared = SharedPool::open();
    let meta = shared.base();
    let pool = shared.pool();

    let start = Instant::now();
    let again = template::ensure_base(pool, &base_options(), &mut |line| {
        panic!("a cached base reports no progress, got {line:?}")
    })
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "cached base took {:?}",
        start.elapsed()
    );
    assert_eq!(again, meta);
    assert!(template::list(pool)
        .unwrap()
        .iter()
        .any(|t| t.name == "base"));
    assert_eq!(meta.workdir, "/root");
    assert!(meta.env["PATH"].contains("/usr/bin"));

    let root = pool.template_path("base").unwrap();
    let os_release = fs::read_to_string(root.join("etc/os-release")).unwrap();
    assert!(
        os_release.contains("VERSION_CODENAME=bookworm"),
        "{os_release}"
    );
    for program in [
        "usr/bin/python3",
        "usr/bin/curl",
        "usr/bin/git",
        "usr/bin/ps",
        "usr/bin/bash",
    ] {
        assert!(root.join(program).exists(), "{program} missing");
    }
    assert!(root.join("sbin/ip").exists() || root.join("usr/sbin/ip").exists());
    assert!(root.join("etc/ssl/certs/ca-certificates.crt").exists());

    // Owned by the sandbox range; setuid bits survived the chown.
    assert_eq!(owner(&root), (SANDBOX_ID_BASE, SANDBOX_ID_BASE));
    assert_eq!(
        owner(&root.join("etc/passwd")),
        (SANDBOX_ID_BASE, SANDBOX_ID_BASE)
    );
    let su = fs::metadata(root.join("usr/bin/su")).unwrap();
    assert_eq!((su.uid(), su.mode() & 0o7777), (SANDBOX_ID_BASE, 0o4755));
    let range = SANDBOX_ID_BASE..SANDBOX_ID_BASE + SANDBOX_ID_COUNT;
    let mut stack = vec![root.clone()];
    let mut files = 0;
    while let Some(path) = stack.pop() {
        let m = fs::symlink_metadata(&path).unwrap();
        assert!(
            range.contains(&m.uid()) && range.contains(&m.gid()),
            "{} owned by {}:{}",
            path.display(),
            m.uid(),
            m.gid()
        );
        files += 1;
        if m.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(files > 5000, "only {files} files");

    // The files every template has.
    assert_eq!(
        fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "sandbox\n"
    );
    assert!(fs::read_to_string(root.join("etc/hosts"))
        .unwrap()
        .contains("localhost"));
    assert!(fs::symlink_metadata(root.join("etc/resolv.conf"))
        .unwrap()
        .is_file());
    assert!(root.join("root").is_dir());
    let sources = fs::read_to_string(root.join("etc/apt/sources.list")).unwrap();
    assert!(sources.contains(" bookworm main"), "{sources}");

    // The `user` account: uid 1000, its home, sudo without a password.
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("\nuser:x:1000:1000::/home/user:/bin/bash\n"),
        "{passwd}"
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("sudo:") && l.ends_with(":user")),
        "{group}"
    );
    let user = SANDBOX_ID_BASE + 1000;
    assert_eq!(owner(&root.join("home/user")), (user, user));
    assert_eq!(owner(&root.join("home/user/.bashrc")), (user, user));
    let sudo = fs::metadata(root.join("usr/bin/sudo")).unwrap();
    assert_eq!(
        (sudo.uid(), sudo.mode() & 0o7777),
        (SANDBOX_ID_BASE, 0o4755)
    );
    let sudoers = root.join("etc/sudoers.d/user");
    assert_eq!(
        fs::read_to_string(&sudoers).unwrap(),
        "user ALL=(ALL:ALL) NOPASSWD: ALL\n"
    );
    assert_eq!(fs::metadata(&sudoers).unwrap().mode() & 0o777, 0o440);
    assert!(matches!(
        meta.source,
        template::TemplateSource::Debootstrap { version, .. } if version == template::BASE_VERSION
    ));

    // Read-only: even root cannot change it.
    assert!(fs::write(root.join("etc/new-file"), "x").is_err());
}

#[test]
fn a_base_from_an_older_version_is_rebuilt() {
    // Ensure the seed of the current base exists (built once per machine).
    drop(SharedPool::open().base());
    let pool = TestPool::new(Driver::Btrfs);
    let pool = pool.pool();
    let first = template::ensure_base(pool, &base_options(), &mut |_| {}).unwrap();
    // What an older Warren left: metadata without a version, no account.
    let json = pool.templates_dir().join("base.json");
    let mut old: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    old["source"].as_object_mut().unwrap().remove("version");
    fs::write(&json, serde_json::to_vec(&old).unwrap()).unwrap();
    let outdated = template::get(pool, "base").unwrap();
    assert!(template::base_is_outdated(&outdated));

    let mut lines = Vec::new();
    let rebuilt = template::ensure_base(pool, &base_options(), &mut |line| {
        lines.push(line.to_string())
    })
    .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("older Warren")),
        "{lines:?}"
    );
    assert_ne!(rebuilt.build_id, first.build_id);
    assert!(!template::base_is_outdated(&rebuilt));
    assert_eq!(template::get(pool, "base").unwrap(), rebuilt);
    let root = pool.template_path("base").unwrap();
    assert!(root.join("etc/sudoers.d/user").is_file());
}

/// Deletes the named templates and prunes their layers, even on failure.
struct Cleanup<'p> {
    pool: &'p Pool,
    names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = template::delete(self.pool, name);
        }
        let _ = template::prune_layers(self.pool);
    }
}

#[test]
fn spec_build_reuses_layers_and_runs_as_the_sandbox_root() {
    let shared = SharedPool::open();
    let base = shared.base();
    let pool = shared.pool();
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (first, second) = (format!("t1-{nonce}"), format!("t2-{nonce}"));
    let _cleanup = Cleanup {
        pool,
        names: vec![first.clone(), second.clone()],
    };

    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("hello.txt"), format!("hello {nonce}\n")).unwrap();
    fs::create_dir(ctx.path().join("app")).unwrap();
    fs::write(ctx.path().join("app/main.py"), "print('ok')\n").unwrap();
    fs::set_permissions(
        ctx.path().join("app/main.py"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("main.py", ctx.path().join("app/link.py")).unwrap();
    let spec_text = |last: &str| {
        format!(
            r#"
            apt = ["jq"]
            files = {{ "/opt/hello.txt" = "hello.txt", "/app" = "app" }}
            env = {{ GREETING = "hi-{nonce}" }}
            workdir = "/app"
            run = [
                "echo $GREETING > /step1",
                "id -u > whoami && jq -n '1+1' > /jq-out && python3 main.py > /py-out && touch /created-by-run",
                "{last}",
            ]
            "#
        )
    };
    fs::write(ctx.path().join("spec.toml"), spec_text("echo one > /last")).unwrap();
    let spec1 = TemplateSpec::from_file(&ctx.path().join("spec.toml")).unwrap();
    let mut progress = |line: &str| eprintln!("build: {line}");
    let start = Instant::now();
    let r1 = template::build(pool, &first, &spec1, &mut progress).unwrap();
    eprintln!("first build: {:?}", start.elapsed());
    assert_eq!(r1.layers.len(), 5, "apt, files and three run steps");
    assert!(r1.layers.iter().all(|l| !l.cached), "{:?}", r1.layers);

    let spec2 = TemplateSpec::parse(&spec_text("echo two > /last"), ctx.path()).unwrap();
    let start = Instant::now();
    let r2 = template::build(pool, &second, &spec2, &mut progress).unwrap();
    eprintln!("rebuild with the last step changed: {:?}", start.elapsed());
    let cached: Vec<bool> = r2.layers.iter().map(|l| l.cached).collect();
    assert_eq!(cached, [true, true, true, true, false]);
    let hashes =
        |r: &template::BuildReport| r.layers.iter().map(|l| l.hash.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&r1)[..4], hashes(&r2)[..4]);
    assert_ne!(hashes(&r1)[4], hashes(&r2)[4]);

    let t1 = pool.template_path(&first).unwrap();
    let t2 = pool.template_path(&second).unwrap();
    assert_eq!(fs::read_to_string(t1.join("last")).unwrap(), "one\n");
    assert_eq!(fs::read_to_string(t2.join("last")).unwrap(), "two\n");
    assert_eq!(
        fs::read_to_string(t2.join("step1")).unwrap(),
        format!("hi-{nonce}\n")
    );
    assert_eq!(
        fs::read_to_string(t2.join("app/whoami")).unwrap(),
        "0\n",
        "root inside, in workdir"
    );
    assert_eq!(
        fs::read_to_string(t2.join("jq-out")).unwrap(),
        "2\n",
        "apt installed jq"
    );
    assert_eq!(fs::read_to_string(t2.join("py-out")).unwrap(), "ok\n");
    let ids = (SANDBOX_ID_BASE, SANDBOX_ID_BASE);
    assert_eq!(
        owner(&t2.join("created-by-run")),
        ids,
        "created by the sandbox root"
    );
    assert_eq!(owner(&t2.join("opt/hello.txt")), ids);
    assert_eq!(owner(&t2.join("app/main.py")), ids);
    assert_eq!(
        fs::read_link(t2.join("app/link.py")).unwrap(),
        Path::new("main.py")
    );
    assert_eq!(
        fs::metadata(t2.join("app/main.py")).unwrap().mode() & 0o777,
        0o755
    );
    assert!(t2.join("usr/bin/jq").exists());

    let meta = template::get(pool, &second).unwrap();
    assert_eq!(meta.env["GREETING"], format!("hi-{nonce}"));
    assert_eq!(meta.env["PATH"], base.env["PATH"]);
    assert_eq!(meta.workdir, "/app");
    assert_eq!(meta.layers.len(), 5);
    assert_eq!(
        meta.source,
        template::TemplateSource::Spec {
            base: "base".into()
        }
    );

    // Delete both; their six layers become unreferenced and are pruned.
    template::delete(pool, &first).unwrap();
    template::delete(pool, &second).unwrap();
    assert!(matches!(
        template::get(pool, &first),
        Err(TemplateError::NotFound(_))
    ));
    assert!(!t1.exists());
    let pruned = template::prune_layers(pool).unwrap();
    for layer in r1.layers.iter().chain(&r2.layers) {
        assert!(
            pruned.contains(&layer.hash),
            "layer {} not pruned",
            layer.hash
        );
    }
}

#[test]
fn failing_step_leaves_nothing_behind() {
    let shared = SharedPool::open();
    shared.base();
    let pool = shared.pool();
    let name = format!("fail-{}", std::process::id());
    let _cleanup = Cleanup {
        pool,
        names: vec![name.clone()],
    };
    let spec =
        TemplateSpec::parse("run = [\"echo about to fail; exit 3\"]", Path::new(".")).unwrap();
    let mut lines = Vec::new();
    let err = template::build(pool, &name, &spec, &mut |l| lines.push(l.to_string())).unwrap_err();
    match err {
        TemplateError::StepFailed { status, output, .. } => {
            assert!(status.contains('3'), "{status}");
            assert!(output.contains("about to fail"), "{output}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(lines.iter().any(|l| l == "about to fail"));
    assert!(matches!(
        template::get(pool, &name),
        Err(TemplateError::NotFound(_))
    ));
    // Temporary volumes are named `<label>.<pid>.<n>`.
    let ours = format!(".{}.", std::process::id());
    let leftovers: Vec<_> = fs::read_dir(pool.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&ours))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary volumes left: {leftovers:?}"
    );
}

// ---- image imports -------------------------------------------------------

enum Entry<'a> {
    Dir(&'a str, u32, u64),
    File(&'a str, &'a [u8], u32, u64),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (path, data): (&str, &[u8]) = match e {
            Entry::Dir(p, mode, uid) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                (p, &[])
            }
            Entry::File(p, data, mode, uid) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                (p, data)
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(target).unwrap();
                h.set_mode(0o777);
                (p, &[])
            }
            Entry::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name(target).unwrap();
                (p, &[])
            }
        };
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn digest(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn outer_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(File::create(path).unwrap());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

/// Two layers exercising every entry kind, whiteouts and a symlink that
/// tries to point a write at the host's `/`.
fn image_layers() -> (Vec<u8>, Vec<u8>) {
    let lower = layer_tar(&[
        Entry::Dir("etc/", 0o755, 0),
        Entry::File("etc/app.conf", b"v1", 0o644, 0),
        Entry::Hardlink("etc/app-hard.conf", "etc/app.conf"),
        Entry::Symlink("etc/link", "/etc/app.conf"),
        Entry::File("gone.txt", b"bye", 0o644, 0),
        Entry::Dir("opaque/", 0o755, 0),
        Entry::File("opaque/old.txt", b"old", 0o644, 0),
        Entry::Dir("bin/", 0o755, 0),
        Entry::File("bin/tool", b"#!/bin/sh\n", 0o4755, 0),
        Entry::Dir("home/", 0o755, 0),
        Entry::Dir("home/user/", 0o700, 1000),
        Entry::File("home/user/notes", b"mine", 0o600, 1000),
        Entry::Symlink("host", "/"),
    ]);
    let upper = layer_tar(&[
        Entry::File(".wh.gone.txt", b"", 0o644, 0),
        Entry::Dir("opaque/", 0o755, 0),
        Entry::File("opaque/.wh..wh..opq", b"", 0o644, 0),
        Entry::File("opaque/new.txt", b"new", 0o644, 0),
        Entry::File("etc/app.conf", b"v2", 0o640, 0),
        Entry::File("host/tmp-warren-escape.txt", b"inside", 0o644, 0),
    ]);
    (lower, upper)
}

const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin","FOO=bar"],"WorkingDir":"/srv"},"rootfs":{"type":"layers","diff_ids":[]}}"#;

fn check_imported(pool: &Pool, name: &str, meta: &template::TemplateMeta) {
    let root = pool.template_path(name).unwrap();
    let b = SANDBOX_ID_BASE;
    assert_eq!(fs::read_to_string(root.join("etc/app.conf")).unwrap(), "v2");
    assert_eq!(
        fs::metadata(root.join("etc/app.conf")).unwrap().mode() & 0o777,
        0o640
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/app-hard.conf")).unwrap(),
        "v1",
        "the lower inode"
    );
    assert_eq!(
        fs::read_link(root.join("etc/link")).unwrap(),
        Path::new("/etc/app.conf")
    );
    assert!(!root.join("gone.txt").exists(), "whiteout removed gone.txt");
    assert!(
        !root.join("opaque/old.txt").exists(),
        "opaque dir hid old.txt"
    );
    assert_eq!(
        fs::read_to_string(root.join("opaque/new.txt")).unwrap(),
        "new"
    );
    let tool = fs::metadata(root.join("bin/tool")).unwrap();
    assert_eq!((tool.uid(), tool.mode() & 0o7777), (b, 0o4755));
    assert_eq!(owner(&root.join("home/user/notes")), (b + 1000, b + 1000));
    assert_eq!(owner(&root), (b, b));
    // The write through `host -> /` stayed inside the rootfs.
    assert_eq!(
        fs::read_to_string(root.join("tmp-warren-escape.txt")).unwrap(),
        "inside"
    );
    assert!(!Path::new("/tmp-warren-escape.txt").exists());
    // Files every template has.
    assert!(root.join("etc/hostname").is_file());
    assert!(root.join("etc/resolv.conf").is_file());
    assert!(root.join("root").is_dir());

    assert_eq!(meta.env["FOO"], "bar");
    assert_eq!(meta.env["PATH"], "/usr/local/bin:/usr/bin:/bin");
    assert_eq!(meta.workdir, "/srv");
    assert_eq!(&template::get(pool, name).unwrap(), meta);
}

#[test]
fn import_oci_layout_with_whiteouts() {
    let t = TestPool::new(Driver::Btrfs);
    let (lower, upper) = image_layers();
    let lower = gzip(&lower);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":{}}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}","size":{}}}]}}"#,
        digest(CONFIG.as_bytes()),
        CONFIG.len(),
        digest(&lower),
        lower.len(),
        digest(&upper),
        upper.len()
    );
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        digest(manifest.as_bytes()),
        manifest.len()
    );
    let blob = |data: &[u8]| (format!("blobs/sha256/{}", digest(data)), data.to_vec());
    let tar_path = t.dir.path().join("image.tar");
    outer_tar(
        &tar_path,
        &[
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index.into_bytes()),
            blob(manifest.as_bytes()),
            blob(CONFIG.as_bytes()),
            blob(&lower),
            blob(&upper),
        ],
    );
    let meta = template::import(t.pool(), "oci", &tar_path).unwrap();
    check_imported(t.pool(), "oci", &meta);
    assert!(template::list(t.pool())
        .unwrap()
        .iter()
        .any(|m| m.name == "oci"));

    // A damaged blob is caught by its digest.
    let mut damaged = upper.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let bad = t.dir.path().join("bad.tar");
    outer_tar(
        &bad,
        &[
            (
                "index.json".into(),
                format!(
                    r#"{{"manifests":[{{"digest":"sha256:{}"}}]}}"#,
                    digest(manifest.as_bytes())
                )
                .into_bytes(),
            ),
            blob(manifest.as_bytes()),
            blob(CONFIG.as_bytes()),
            blob(&lower),
            (format!("blobs/sha256/{}", digest(&upper)), damaged),
        ],
    );
    let err = template::import(t.pool(), "bad", &bad).unwrap_err();
    assert!(
        matches!(err, TemplateError::InvalidImage { ref reason, .. } if reason.contains("has digest")),
        "{err}"
    );
    assert!(matches!(
        template::get(t.pool(), "bad"),
        Err(TemplateError::NotFound(_))
    ));
}

#[test]
fn import_docker_save_tarball() {
    let t = TestPool::new(Driver::Copy);
    let (lower, upper) = image_layers();
    let manifest = r#"[{"Config":"cfg.json","RepoTags":["test:latest"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]"#;
    let tar_path = t.dir.path().join("docker.tar");
    outer_tar(
        &tar_path,
        &[
            ("manifest.json".into(), manifest.as_bytes().to_vec()),
            ("cfg.json".into(), CONFIG.as_bytes().to_vec()),
            ("aaa/layer.tar".into(), lower),
            ("bbb/layer.tar".into(), upper),
        ],
    );
    let meta = template::import(t.pool(), "docker", &tar_path).unwrap();
    check_imported(t.pool(), "docker", &meta);

    // Importing again replaces the template.
    let again = template::import(t.pool(), "docker", &tar_path).unwrap();
    check_imported(t.pool(), "docker", &again);
    template::delete(t.pool(), "docker").unwrap();
    assert!(template::list(t.pool()).unwrap().is_empty());
    assert!(matches!(
        template::delete(t.pool(), "docker"),
        Err(TemplateError::NotFound(_))
    ));
}

#[test]
fn import_rejects_path_escapes() {
    let t = TestPool::new(Driver::Copy);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let name = b"../escaped-by-warren-test";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let tar_path = t.dir.path().join("evil.tar");
    outer_tar(
        &tar_path,
        &[
            (
                "manifest.json".into(),
                br#"[{"Config":"c.json","Layers":["l.tar"]}]"#.to_vec(),
            ),
            ("c.json".into(), b"{}".to_vec()),
            ("l.tar".into(), layer),
        ],
    );
    let err = template::import(t.pool(), "evil", &tar_path).unwrap_err();
    assert!(matches!(err, TemplateError::PathEscape { .. }), "{err}");
    assert!(!t.pool().root().join("escaped-by-warren-test").exists());
    assert!(!t
        .pool()
        .tmp_dir()
        .parent()
        .unwrap()
        .join("escaped-by-warren-test")
        .exists());
    let volumes = fs::read_dir(t.pool().tmp_dir())
        .unwrap()
        .filter(|e| t.pool().driver().is_volume(&e.as_ref().unwrap().path()))
        .count();
    assert_eq!(volumes, 0, "the half-imported rootfs was deleted");

    let err = template::import(t.pool(), "x", &t.dir.path().join("missing.tar")).unwrap_err();
    assert!(matches!(err, TemplateError::Io { .. }), "{err}");
    fs::write(t.dir.path().join("junk.tar"), b"not a tarball").unwrap();
    let err = template::import(t.pool(), "x", &t.dir.path().join("junk.tar")).unwrap_err();
    assert!(
        matches!(
            err,
            TemplateError::InvalidImage { .. } | TemplateError::Io { .. }
        ),
        "{err}"
    );
}
