//! Sandbox benchmark (issue 3): `warren server` against podman + runc.
//!
//! - create a sandbox until its first `processes/run` answers, p50 and p99,
//!   sequential and 20 at once, beside `podman --runtime runc run --rm` of
//!   the same root file system (the base template's seed imported as an
//!   image);
//! - host memory per idle sandbox over 100 sandboxes;
//! - the cost of exec through the server over exec on the agent's socket.
//!
//! Run: `scripts/bench.sh sandbox` (as root; builds release binaries).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use warren_bench::podman::{ensure_podman_image, PODMAN_IMAGE, PODMAN_RUN_ARGS};
use warren_bench::{
    env_usize, free_port, ms, print_compare, rss_anon_kib, wait_ready, warren_bin, Guard, Samples,
};

const KEY: &str = "bench-admin-key";

struct Server {
    _guard: Guard,
    base: String,
    state: PathBuf,
    http: reqwest::Client,
}

impl Server {
    async fn create(&self) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/v1/sandboxes", self.base))
            .bearer_auth(KEY)
            .json(&json!({"network": {"egress": "deny"}}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if status != 201 {
            bail!("create answered {status}: {body}");
        }
        Ok(body["id"].as_str().context("id")?.to_string())
    }

    async fn run_true(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/v1/sandboxes/{id}/processes/run", self.base))
            .bearer_auth(KEY)
            .json(&json!({"argv": ["true"]}))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if status != 200 {
            bail!("run answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.http
            .delete(format!("{}/v1/sandboxes/{id}", self.base))
            .bearer_auth(KEY)
            .send()
            .await?;
        Ok(())
    }

    async fn create_until_first_run(&self) -> anyhow::Result<(Duration, String)> {
        let start = Instant::now();
        let id = self.create().await?;
        self.run_true(&id).await?;
        Ok((start.elapsed(), id))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sequential = env_usize("BENCH_N", 40);
    let idle = env_usize("BENCH_IDLE", 100);
    let state = PathBuf::from(format!("/var/tmp/warren-bench-{}", std::process::id()));
    std::fs::create_dir_all(&state)?;
    let port = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        // Cold starts: bench-scale times creates from the warm pool.
        .args(["--pool", "base=0"])
        .arg("--state-dir")
        .arg(&state)
        .env("WARREN_ADMIN_KEY", KEY);
    let guard = Guard::spawn(cmd)?;
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(30)).await?;
    let server = Server {
        _guard: guard,
        base,
        state: state.clone(),
        http,
    };
    let result = measure(&server, sequential, idle).await;
    cleanup(&server).await;
    drop(server);
    release_pool(&state);
    result
}

async fn measure(server: &Server, sequential: usize, idle: usize) -> anyhow::Result<()> {
    // Warm-up: builds the base template (from the seed) and warms caches.
    for _ in 0..3 {
        let (_, id) = server.create_until_first_run().await?;
        server.delete(&id).await?;
    }
    ensure_podman_image()?;

    println!("## sandbox benchmark\n");
    println!("| what | warren | peer | ratio | |\n|---|---|---|---|---|");

    // 1. Sequential create → first run, interleaved with podman.
    let (mut ours, mut podman) = (Samples::default(), Samples::default());
    for i in 0..sequential {
        let (took, id) = server.create_until_first_run().await?;
        ours.push(took);
        server.delete(&id).await?;
        if i < sequential.min(20) {
            podman.push(podman_run()?);
        }
    }
    print_compare(
        "create → first run answers (sequential)",
        &ours,
        "podman+runc run --rm",
        &podman,
    );

    // 2. Twenty at once.
    let (mut ours, mut podman) = (Samples::default(), Samples::default());
    for _ in 0..3 {
        let tasks: Vec<_> = (0..20)
            .map(|_| async { server.create_until_first_run().await })
            .collect();
        let results = futures::future::join_all(tasks).await;
        for r in results {
            let (took, id) = r?;
            ours.push(took);
            server.delete(&id).await?;
        }
    }
    let handles: Vec<_> = (0..20).map(|_| std::thread::spawn(podman_run)).collect();
    for h in handles {
        podman.push(h.join().expect("podman thread")?);
    }
    print_compare(
        "create → first run answers (20 concurrent)",
        &ours,
        "podman+runc run --rm",
        &podman,
    );

    // 3. Exec through the server vs on the agent's socket directly.
    let id = server.create().await?;
    let socket = server.state.join("run").join(&id).join("agent.sock");
    let mut direct = AgentConn::connect(&socket).await?;
    let (mut via_server, mut via_agent) = (Samples::default(), Samples::default());
    for i in 0..1100 {
        let t = Instant::now();
        server.run_true(&id).await?;
        let s = t.elapsed();
        let t = Instant::now();
        direct.run_true().await?;
        let a = t.elapsed();
        if i >= 100 {
            via_server.push(s);
            via_agent.push(a);
        }
    }
    print_compare(
        "exec `true` through the server",
        &via_server,
        "agent socket directly",
        &via_agent,
    );
    println!(
        "| server overhead on exec (p50 difference) | {} | | | |",
        ms(via_server.p50().saturating_sub(via_agent.p50()))
    );
    server.delete(&id).await?;

    // 4. Host memory per idle sandbox.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = used_memory_kib()?;
    let mut ids = Vec::new();
    for _ in 0..idle {
        ids.push(server.create().await?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = used_memory_kib()?;
    let agents: u64 = ids
        .iter()
        .filter_map(|id| agent_pid(&server.state, id))
        .filter_map(rss_anon_kib)
        .sum();
    println!(
        "| host memory per idle sandbox ({idle} sandboxes) | {:.2} MiB (MemTotal-MemAvailable delta) | agents' private RSS {:.2} MiB each | | |",
        (after.saturating_sub(before)) as f64 / idle as f64 / 1024.0,
        agents as f64 / ids.len().max(1) as f64 / 1024.0
    );
    for id in ids {
        server.delete(&id).await?;
    }
    Ok(())
}

/// A keep-alive HTTP/1.1 connection to an agent's unix socket.
struct AgentConn {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl AgentConn {
    async fn connect(path: &Path) -> anyhow::Result<AgentConn> {
        Ok(AgentConn {
            stream: UnixStream::connect(path).await?,
            buf: Vec::with_capacity(4096),
        })
    }

    async fn run_true(&mut self) -> anyhow::Result<()> {
        let body = br#"{"argv":["true"]}"#;
        let head = format!(
            "POST /v1/processes/run HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        self.buf.clear();
        loop {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("agent closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                if !head.starts_with("http/1.1 200") {
                    bail!("agent answered {head}");
                }
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .context("content-length")?;
                if self.buf.len() >= end + 4 + len {
                    return Ok(());
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn agent_pid(state: &Path, id: &str) -> Option<u32> {
    std::fs::read_to_string(state.join("run").join(id).join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// MemTotal - MemAvailable, in KiB.
fn used_memory_kib() -> anyhow::Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{name} in /proc/meminfo"))
    };
    Ok(field("MemTotal:")? - field("MemAvailable:")?)
}

fn podman_run() -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = Command::new("podman")
        .args(PODMAN_RUN_ARGS)
        .args([PODMAN_IMAGE, "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    let took = start.elapsed();
    if !status.success() {
        bail!("podman run failed: {status}");
    }
    Ok(took)
}

async fn cleanup(server: &Server) {
    if let Ok(resp) = server
        .http
        .get(format!("{}/v1/sandboxes?limit=1000", server.base))
        .bearer_auth(KEY)
        .send()
        .await
    {
        if let Ok(list) = resp.json::<Value>().await {
            for item in list["items"].as_array().into_iter().flatten() {
                if let Some(id) = item["id"].as_str() {
                    let _ = server.delete(id).await;
                }
            }
        }
    }
}

/// Unmounts the benchmark's pool and removes its state directory.
fn release_pool(state: &Path) {
    let pool = state.join("pool");
    let _ = Command::new("umount").arg(&pool).status();
    let _ = std::fs::remove_dir_all(state);
}
