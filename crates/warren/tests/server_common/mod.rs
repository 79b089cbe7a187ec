//! A real `warren server` for tests: the binary under test, started as a
//! child process on a loopback port with its own state directory and its own
//! cgroup parent, spoken to over real HTTP.
//!
//! The `base` template takes minutes to debootstrap, so it is built once per
//! machine in the shared test pool (`$WARREN_TEST_CACHE/state`, default
//! `/var/cache/warren-test`, the same pool and lock protocol as the template
//! tests: mounted while a test holds a shared lock on `users.lock`, unmounted
//! by the last user). Each server's state directory lives inside that btrfs
//! pool, so its pool uses btrfs directly and gets `base` as an O(1) snapshot.
//!
//! [`TestServer`]'s drop kills the server (by pid), stops every sandbox of
//! its cgroup parent, deletes its subvolumes, state directory and cgroup
//! parents, and releases the shared pool, even when the test failed.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};
use warren_runtime::namespaces::NamespaceRuntime;
use warren_runtime::storage::btrfs::BtrfsDriver;
use warren_runtime::storage::copy::CopyDriver;
use warren_runtime::storage::{Driver, Pool, PoolOptions, StorageDriver};
use warren_runtime::template::{self, BaseOptions};
use warren_runtime::Runtime;

/// The admin key every test server runs with.
pub const ADMIN_KEY: &str = "wadm_test-admin-key-0123456789";

fn cache_dir() -> PathBuf {
    std::env::var_os("WARREN_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/warren-test"))
}

fn users_lock() -> File {
    fs::create_dir_all(cache_dir()).expect("test cache dir");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache_dir().join("users.lock"))
        .expect("users.lock")
}

/// The shared pool with `base`, held open by a shared flock.
struct SharedPool {
    pool: Option<Pool>,
    users: Option<Flock<File>>,
}

impl SharedPool {
    fn open() -> SharedPool {
        let users = Flock::lock(users_lock(), FlockArg::LockShared).expect("locking users.lock");
        let options = PoolOptions {
            image_size: 16 << 30,
        };
        let pool = Pool::open_with(&cache_dir().join("state"), Driver::Btrfs, &options)
            .expect("opening the shared test pool");
        let base = BaseOptions {
            cache_dir: cache_dir().join("debootstrap"),
            ..BaseOptions::default()
        };
        template::ensure_base(&pool, &base, &mut |line| eprintln!("base: {line}"))
            .expect("building the base template");
        SharedPool {
            pool: Some(pool),
            users: Some(users),
        }
    }

    fn pool(&self) -> &Pool {
        self.pool.as_ref().expect("open pool")
    }

    /// Builds `templates/<name>.toml` in the shared pool; unchanged steps
    /// come from its layer cache, so this is quick after the first time.
    fn ensure(&self, name: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../templates")
            .join(format!("{name}.toml"));
        let text = fs::read_to_string(&path).expect("reading the template spec");
        let mut spec = template::TemplateSpec::parse(&text, path.parent().unwrap())
            .expect("parsing the template spec");
        spec.extra_ca = warren_runtime::trust::host_extra();
        template::build(self.pool(), name, &spec, &mut |line| {
            eprintln!("{name}: {line}")
        })
        .unwrap_or_else(|e| panic!("building template {name}: {e}"));
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

/// Options of a test server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Do not give the server the `base` template.
    pub no_base: bool,
    /// Put the state directory on the host's own file system, so that the
    /// server makes its pool in a loop-mounted btrfs image (no `base`).
    pub image_pool: bool,
    /// Use the `copy` storage driver, with the state directory on the host's
    /// own file system (no `base`).
    pub copy_driver: bool,
    /// More command-line arguments of `warren server`.
    pub args: Vec<String>,
    /// Write the server's stderr (its log) to this file instead of the
    /// test's stderr.
    pub stderr_file: Option<PathBuf>,
    /// A state directory the test made on a btrfs file system of its own
    /// (`base` is copied in with `btrfs send | btrfs receive`).
    pub state_dir: Option<PathBuf>,
    /// Start the server as `nohup` does: with SIGHUP ignored.
    pub nohup: bool,
    /// Templates built from `templates/<name>.toml` in the shared pool
    /// (once per machine: their layers stay cached there) and given to the
    /// server besides `base`.
    pub templates: Vec<&'static str>,
}

/// A running `warren server` and a client for it.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Keep-alive client (no proxies).
    pub http: reqwest::Client,
    /// The server's state directory.
    pub state_dir: PathBuf,
    /// The cgroup parent of its sandboxes.
    pub cgroup_parent: String,
    child: Option<Child>,
    image_pool: bool,
    storage: &'static str,
    args: Vec<String>,
    stderr_file: Option<PathBuf>,
    nohup: bool,
    // Dropped last: the state dir lives in it (unless `image_pool`).
    shared: Option<SharedPool>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TestServer {
    /// A `warren` CLI command aimed at this server with `key` (and no
    /// config file: `HOME` points nowhere).
    pub fn warren(&self, key: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.env("WARREN_URL", &self.base)
            .env("WARREN_API_KEY", key)
            .env("HOME", "/nonexistent");
        cmd
    }

    /// Runs `warren ARGS...` aimed at this server with `key`, to completion.
    pub async fn cli(&self, key: &str, args: &[&str]) -> std::process::Output {
        let mut cmd = self.warren(key);
        cmd.args(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("running warren"))
            .await
            .expect("warren task")
    }

    /// Runs `warren ARGS...` with `key`, asserts it succeeded, returns its stdout.
    pub async fn cli_ok(&self, key: &str, args: &[&str]) -> String {
        let out = self.cli(key, args).await;
        assert!(
            out.status.success(),
            "warren {args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// A server with `base` and no outbound network (sandboxes have
    /// loopback only; the machine's network instances are left alone).
    pub async fn start() -> TestServer {
        Self::start_with(Options {
            args: vec!["--no-network".into()],
            ..Options::default()
        })
        .await
    }

    /// A server with `options`.
    pub async fn start_with(options: Options) -> TestServer {
        tokio::task::spawn_blocking(move || Self::start_blocking(options))
            .await
            .expect("starting the test server")
    }

    fn start_blocking(options: Options) -> TestServer {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let (shared, state_dir) = if let Some(dir) = options.state_dir.clone() {
            (Some(SharedPool::open()), dir)
        } else if options.image_pool || options.copy_driver {
            (
                None,
                PathBuf::from("/var/tmp").join(format!("warren-srv-{tag}")),
            )
        } else {
            let shared = SharedPool::open();
            let dir = shared.pool().root().join("server-tests").join(&tag);
            (Some(shared), dir)
        };
        let _ = fs::remove_dir_all(&state_dir);
        fs::create_dir_all(&state_dir).expect("state dir");
        let cgroup_parent = format!("warren-test-srv-{tag}");
        let mut server = TestServer {
            base: String::new(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client"),
            state_dir,
            cgroup_parent,
            child: None,
            image_pool: options.image_pool,
            storage: if options.copy_driver { "copy" } else { "btrfs" },
            args: options.args.clone(),
            stderr_file: options.stderr_file.clone(),
            nohup: options.nohup,
            shared,
        };
        if options.state_dir.is_some() {
            server.receive_base();
        } else if !options.no_base && !options.image_pool && !options.copy_driver {
            server.seed_template("base");
            if !options.templates.is_empty() {
                // Tests in other processes build and snapshot the same
                // templates: one at a time, so none snapshots a template
                // while another republishes it.
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(cache_dir().join("templates.lock"))
                    .expect("templates.lock");
                let _held =
                    Flock::lock(lock, FlockArg::LockExclusive).expect("locking templates.lock");
                for name in &options.templates {
                    let shared = server.shared.as_ref().expect("the shared pool");
                    shared.ensure(name);
                    server.seed_template(name);
                }
            }
        }
        server.spawn();
        server
    }

    /// Puts a read-only snapshot of a shared template (and its metadata)
    /// into this server's pool.
    fn seed_template(&self, name: &str) {
        let pool = Pool::open(&self.state_dir, Driver::Btrfs).expect("opening the test pool");
        let shared = self.shared.as_ref().expect("the shared pool");
        let src = shared.pool().template_path(name).unwrap();
        let dst = pool.template_path(name).unwrap();
        BtrfsDriver::new()
            .snapshot(&src, &dst, true)
            .unwrap_or_else(|e| panic!("snapshotting {name}: {e}"));
        let meta = |p: &Path| PathBuf::from(format!("{}.json", p.display()));
        fs::copy(meta(&src), meta(&dst)).expect("copying base.json");
    }

    /// Copies the shared `base` into this server's pool on another btrfs
    /// file system (`btrfs send | btrfs receive`).
    fn receive_base(&self) {
        let pool = Pool::open(&self.state_dir, Driver::Btrfs).expect("opening the test pool");
        let shared = self.shared.as_ref().expect("the shared pool");
        let src = shared.pool().template_path("base").unwrap();
        let dst = pool.template_path("base").unwrap();
        let mut send = Command::new("btrfs")
            .args(["send", "-q"])
            .arg(&src)
            .stdout(Stdio::piped())
            .spawn()
            .expect("btrfs send");
        let status = Command::new("btrfs")
            .args(["receive", "-q"])
            .arg(dst.parent().unwrap())
            .stdin(send.stdout.take().unwrap())
            .status()
            .expect("btrfs receive");
        assert!(status.success() && send.wait().unwrap().success());
        let meta = |p: &Path| PathBuf::from(format!("{}.json", p.display()));
        fs::copy(meta(&src), meta(&dst)).expect("copying base.json");
    }

    /// Starts the server process (again, after [`Self::kill9`]).
    pub fn spawn(&mut self) {
        let listening = self.spawn_process();
        self.base = listening
            .recv_timeout(Duration::from_secs(60))
            .expect("the server did not say where it listens");
    }

    /// Starts the server process and returns at once; the address it
    /// listens on arrives on the channel.
    pub fn spawn_process(&mut self) -> std::sync::mpsc::Receiver<String> {
        assert!(self.child.is_none(), "the server is running");
        let stderr = match &self.stderr_file {
            Some(path) => Stdio::from(File::create(path).expect("the server's log file")),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
        if self.nohup {
            use std::os::unix::process::CommandExt;
            // SAFETY: signal(2) is async-signal-safe and touches no memory
            // of the parent.
            unsafe {
                command.pre_exec(|| {
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                    Ok(())
                })
            };
        }
        let mut child = command
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--storage",
                self.storage,
            ])
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            // No warm pool unless a test asks for one (`--pool base=N` in
            // its args wins): sandboxes a test did not make would muddle
            // its counts of cgroups, volumes and run directories.
            .args(["--pool", "base=0"])
            .args(&self.args)
            .env("WARREN_ADMIN_KEY", ADMIN_KEY)
            .env("RUST_LOG", "info,warren_server=debug")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning warren server");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("warren server listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        rx
    }

    /// `kill -9` of the server (its sandboxes keep running).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM to the server; returns once it has exited (panics unless it
    /// exits successfully within `timeout`).
    pub fn terminate(&mut self, timeout: Duration) {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                assert!(status.success(), "the server exited with {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a bearer key.
    pub fn req(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(key)
    }

    /// Sends a request with an optional JSON body; (status, JSON body or null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.req(method, path, key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates a sandbox; panics unless 201.
    pub async fn create(&self, key: &str, body: Value) -> Value {
        let (status, sandbox) = self.call("POST", "/v1/sandboxes", key, Some(body)).await;
        assert_eq!(status, 201, "create: {sandbox}");
        sandbox
    }

    /// Runs `cmd` in sandbox `id` through the proxy; panics unless 200.
    pub async fn run(&self, key: &str, id: &str, cmd: &str) -> Value {
        let (status, out) = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/processes/run"),
                key,
                Some(json!({ "cmd": cmd })),
            )
            .await;
        assert_eq!(status, 200, "run {cmd:?}: {out}");
        out
    }

    /// Runs `cmd` in sandbox `id` as `key`: (exit code, stdout + stderr).
    pub async fn sh(&self, key: &str, id: &str, cmd: &str) -> (i64, String) {
        let out = self.run(key, id, cmd).await;
        (
            out["exit_code"].as_i64().unwrap_or(-1),
            format!(
                "{}{}",
                out["stdout"].as_str().unwrap_or_default(),
                out["stderr"].as_str().unwrap_or_default()
            ),
        )
    }

    /// Creates a tenant and a key for it: (tenant id, key).
    pub async fn tenant(&self, name: &str, max_sandboxes: Option<u32>) -> (String, String) {
        self.tenant_with(name, json!({ "max_sandboxes": max_sandboxes }))
            .await
    }

    /// Creates a tenant with the quotas in `quotas` (an object of the
    /// create request's quota fields) and a key for it: (tenant id, key).
    pub async fn tenant_with(&self, name: &str, quotas: Value) -> (String, String) {
        let mut body = json!({ "name": name });
        if let (Some(body), Some(quotas)) = (body.as_object_mut(), quotas.as_object()) {
            body.extend(quotas.clone());
        }
        let (status, tenant) = self
            .call("POST", "/v1/admin/tenants", ADMIN_KEY, Some(body))
            .await;
        assert_eq!(status, 201, "tenant: {tenant}");
        let id = tenant["id"].as_str().unwrap().to_string();
        let (status, key) = self
            .call(
                "POST",
                &format!("/v1/admin/tenants/{id}/keys"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert_eq!(status, 201, "key: {key}");
        (id, key["key"].as_str().unwrap().to_string())
    }

    /// Polls `GET /v1/sandboxes/{id}` until `done` holds for (status, body),
    /// for at most `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(u16, &Value) -> bool,
    ) -> (u16, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self
                .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
                .await;
            if done(status, &body) || Instant::now() > deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The runtime of this server's sandboxes (same cgroup parent).
    pub fn runtime(&self) -> NamespaceRuntime {
        NamespaceRuntime::with_cgroup_parent(&self.cgroup_parent).expect("cgroups")
    }

    /// Subvolumes and directories in the server's `pool/sandboxes`.
    pub fn sandbox_volumes(&self) -> Vec<String> {
        list_dir(&self.state_dir.join("pool/sandboxes"))
    }

    /// What is left in the server's `pool/trash` once it has emptied or 15 s
    /// have passed: a deleted sandbox's disk waits there until the pool has
    /// been quiet for a moment.
    pub async fn trash_after_quiet(&self) -> Vec<String> {
        let dir = self.state_dir.join("pool/trash");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !list_dir(&dir).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        list_dir(&dir)
    }

    /// Entries of the server's run directory.
    pub fn run_dirs(&self) -> Vec<String> {
        list_dir(&self.state_dir.join("run"))
    }
}

/// A server without networking that has the `desktop` template (built once
/// per machine into the shared pool), and one sandbox of it with room for
/// Chromium: the server and the sandbox's id.
pub async fn desktop_sandbox() -> (TestServer, String) {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        templates: vec!["desktop"],
        ..Options::default()
    })
    .await;
    let id = server
        .create(
            ADMIN_KEY,
            json!({"template": "desktop", "resources": {"memory_mb": 2048}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    (server, id)
}

/// Where `playwright-core` (npm, no browser download) is installed once
/// for the tests that connect to a sandbox's browser over CDP.
pub const PLAYWRIGHT_DIR: &str = "/var/cache/warren-test/playwright";

/// Installs `playwright-core` into [`PLAYWRIGHT_DIR`] unless it is there.
pub fn playwright() -> &'static Path {
    let dir = Path::new(PLAYWRIGHT_DIR);
    if !dir.join("node_modules/playwright-core").is_dir() {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("package.json"), "{\"private\":true}").unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "playwright-core@1"])
            .current_dir(dir)
            .status()
            .expect("npm");
        assert!(status.success(), "npm install playwright-core");
    }
    dir
}

/// Names in a directory (empty when it does not exist).
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Cgroup directories named `parent` in every hierarchy.
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(parent)];
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.flatten() {
            dirs.push(entry.path().join(parent));
        }
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Host pids whose cgroups are under `parent`.
pub fn processes_in(parent: &str) -> Vec<i32> {
    let needle = format!("/{parent}/");
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(cgroups) = fs::read_to_string(entry.path().join("cgroup")) {
            if cgroups.contains(&needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4).map(str::to_owned))
        .filter(|mount| mount == &prefix || mount.starts_with(&format!("{prefix}/")))
        .collect()
}

/// Loop devices in use (backing files).
pub fn loop_devices() -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) {
            out.push(format!("{name}:{}", backing.trim()));
        }
    }
    out.sort();
    out
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        let runtime = self.runtime();
        for id in runtime.known() {
            if let Err(e) = runtime.stop(&id) {
                eprintln!("stopping {id}: {e}");
            }
        }
        let drivers: [&dyn StorageDriver; 2] = [&BtrfsDriver::new(), &CopyDriver::new()];
        for dir in [
            "sandboxes",
            "spares",
            "templates",
            "checkpoints",
            "layers",
            "tmp",
            "trash",
        ] {
            let dir = self.state_dir.join("pool").join(dir);
            for name in list_dir(&dir) {
                let path = dir.join(&name);
                if let Some(driver) = drivers.iter().find(|d| d.is_volume(&path)) {
                    if let Err(e) = driver.delete(&path) {
                        eprintln!("deleting {}: {e}", path.display());
                    }
                }
            }
        }
        // Run directories are tmpfs mounts.
        for name in self.run_dirs() {
            let dir = self.state_dir.join("run").join(name);
            if let Err(e) = warren_runtime::namespaces::remove_run_dir(&dir) {
                eprintln!("removing {}: {e}", dir.display());
            }
        }
        if self.image_pool {
            if let Err(e) = Pool::release(&self.state_dir) {
                eprintln!("releasing {}: {e}", self.state_dir.display());
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.state_dir) {
            eprintln!("removing {}: {e}", self.state_dir.display());
        }
        // The zygote removes its spare cgroups once it sees the server gone;
        // it may not have yet.
        for dir in cgroup_dirs(&self.cgroup_parent) {
            for name in list_dir(&dir) {
                if name.starts_with(warren_runtime::cgroups::SPARE_PREFIX) {
                    let _ = fs::remove_dir(dir.join(name));
                }
            }
            if let Err(e) = fs::remove_dir(&dir) {
                eprintln!("removing {}: {e}", dir.display());
            }
        }
    }
}
