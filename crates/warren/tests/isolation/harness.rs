//! Real sandboxes for tests: a [`TestSandbox`] owns its overlay root, its run
//! directory and its cgroups, and stops and removes them all on drop, even
//! when the test failed. Commands run through the agent's HTTP API over the
//! unix socket, like the server will.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};
use warren_runtime::namespaces::NamespaceRuntime;
use warren_runtime::{Resources, Runtime, SandboxSpec, Started};

use super::rootfs::{base_rootfs, Overlay};

/// Tests keep their cgroups apart from a real server's (`warren`).
pub const CGROUP_PARENT: &str = "warren-test";

/// The runtime every test uses.
pub fn runtime() -> Arc<NamespaceRuntime> {
    Arc::new(NamespaceRuntime::with_cgroup_parent(CGROUP_PARENT).expect("cgroups on this host"))
}

/// A unique sandbox id for this process.
pub fn unique_id(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "sbx_t{}_{}_{tag}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Everything a sandbox needs on disk, removed on drop.
pub struct Prepared {
    /// The spec to start.
    pub spec: SandboxSpec,
    /// Holds the run directory.
    pub run: tempfile::TempDir,
    /// Holds the root (unmounted on drop).
    _root: Overlay,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // The runtime mounts a tmpfs on the run directory.
        if let Err(e) = warren_runtime::namespaces::remove_run_dir(self.run.path()) {
            eprintln!("removing {}: {e}", self.run.path().display());
        }
    }
}

/// A spec over a fresh overlay root and run directory.
pub fn prepare(tag: &str, resources: Resources) -> Prepared {
    let root = Overlay::new(&base_rootfs());
    let run = tempfile::Builder::new()
        .prefix("warren-run-")
        .tempdir()
        .expect("run dir");
    let spec = SandboxSpec {
        id: unique_id(tag),
        rootfs: root.merged.clone(),
        run_dir: run.path().to_path_buf(),
        warren_binary: PathBuf::from(env!("CARGO_BIN_EXE_warren")),
        env: [("WARREN_TEST".to_string(), "1".to_string())].into(),
        workdir: "/root".to_string(),
        resources,
        network: Default::default(),
        extra_ca_pem: None,
        ca_bundle: None,
    };
    Prepared {
        spec,
        run,
        _root: root,
    }
}

/// A running sandbox; stopped and cleaned up on drop.
pub struct TestSandbox {
    /// The runtime that started it.
    pub runtime: Arc<NamespaceRuntime>,
    /// What it was started from.
    pub spec: SandboxSpec,
    /// What `start` returned.
    pub started: Started,
    /// How long `start` took.
    pub start_time: Duration,
    // Dropped after the sandbox is stopped (fields drop in order).
    _prepared: Prepared,
}

/// What `POST /v1/processes/run` answered.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit code (None when killed by a signal).
    pub exit_code: Option<i64>,
    /// Standard output.
    pub stdout: String,
    /// The whole response.
    pub raw: Value,
}

impl TestSandbox {
    /// Starts a sandbox with `resources` (panics with the runtime's error).
    pub fn start(tag: &str, resources: Resources) -> TestSandbox {
        Self::start_on(&runtime(), tag, resources)
    }

    /// [`TestSandbox::start`] on a runtime of the caller's (one zygote for
    /// several sandboxes).
    pub fn start_on(
        runtime: &Arc<NamespaceRuntime>,
        tag: &str,
        resources: Resources,
    ) -> TestSandbox {
        let runtime = runtime.clone();
        let prepared = prepare(tag, resources);
        let begun = Instant::now();
        let started = runtime.start(&prepared.spec).expect("starting the sandbox");
        let start_time = begun.elapsed();
        eprintln!(
            "{}: started in {start_time:?} (pid {})",
            prepared.spec.id, started.pid
        );
        Self::adopt(runtime, prepared, started, start_time)
    }

    /// Takes charge of a sandbox started elsewhere (stopped on drop).
    pub fn adopt(
        runtime: Arc<NamespaceRuntime>,
        prepared: Prepared,
        started: Started,
        start_time: Duration,
    ) -> TestSandbox {
        TestSandbox {
            runtime,
            spec: prepared.spec.clone(),
            started,
            start_time,
            _prepared: prepared,
        }
    }

    /// The sandbox's id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// One HTTP request to the agent; (status, JSON body or string).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), String> {
        let socket = self.started.agent_socket.clone();
        let (method, path) = (method.to_string(), path.to_string());
        // A runtime per call keeps the sandbox usable from several threads.
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        io.block_on(async move {
            tokio::time::timeout(timeout, request(&socket, &method, &path, body))
                .await
                .map_err(|_| format!("{method} {path}: no answer within {timeout:?}"))?
        })
    }

    /// `GET /v1/health` answers 200 within `timeout`.
    pub fn healthy(&self, timeout: Duration) -> bool {
        matches!(self.call("GET", "/v1/health", None, timeout), Ok((200, _)))
    }

    /// Runs `cmd` with `/bin/sh -c` through the agent.
    pub fn sh(&self, cmd: &str) -> RunOutput {
        self.sh_with(cmd, 30_000)
    }

    /// [`Self::sh`] with a timeout in milliseconds.
    pub fn sh_with(&self, cmd: &str, timeout_ms: u64) -> RunOutput {
        let body = json!({ "cmd": cmd, "timeout_ms": timeout_ms });
        let wait = Duration::from_millis(timeout_ms) + Duration::from_secs(10);
        let (status, raw) = self
            .call("POST", "/v1/processes/run", Some(body), wait)
            .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
        assert_eq!(status, 200, "running {cmd:?}: {raw}");
        RunOutput {
            exit_code: raw["exit_code"].as_i64(),
            stdout: raw["stdout"].as_str().unwrap_or_default().to_string(),
            raw,
        }
    }

    /// Runs `cmd` and returns its stdout; panics unless it exits 0.
    pub fn ok(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        assert_eq!(out.exit_code, Some(0), "{cmd:?} failed: {:?}", out.raw);
        out.stdout
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.stop(self.id()) {
            eprintln!("stopping {}: {e}", self.id());
        }
    }
}

/// Raw HTTP/1.1 over the agent's unix socket.
pub async fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "sandbox")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    Ok((status, value))
}

/// A field of `/proc/<pid>/status` on the host (e.g. "Uid").
pub fn proc_status_field(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

/// Every cgroup directory a sandbox may have on this host (v1 hierarchies or
/// the v2 tree).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(CGROUP_PARENT).join(id)];
    for h in [
        "cpu", "cpuacct", "memory", "pids", "freezer", "systemd", "unified",
    ] {
        dirs.push(root.join(h).join(CGROUP_PARENT).join(id));
    }
    dirs
}

/// Polls `f` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a cgroup file of a sandbox: `v1` = (controller, file) on v1/hybrid
/// hosts, `v2` = file on cgroup v2.
pub fn cgroup_read(id: &str, v1: (&str, &str), v2: &str) -> Option<String> {
    let root = Path::new("/sys/fs/cgroup");
    let v2_path = root.join(CGROUP_PARENT).join(id).join(v2);
    let v1_path = root.join(v1.0).join(CGROUP_PARENT).join(id).join(v1.1);
    std::fs::read_to_string(v2_path)
        .or_else(|_| std::fs::read_to_string(v1_path))
        .ok()
}

/// The value of `key` in a flat-keyed cgroup file ("key value" lines).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Whether host pid `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    proc_status_field(pid, "State").is_some_and(|s| !s.starts_with('Z') && !s.starts_with('X'))
}

/// Kills and reaps a child process on drop.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
