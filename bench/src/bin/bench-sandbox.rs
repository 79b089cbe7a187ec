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
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use warren_bench::podman::{ensure_podman_image, podman_first_answer};
use warren_bench::server::{remove_network, unmount_pool, Api, BenchServer, ServerOptions};
use warren_bench::{env_usize, meminfo_kib, ms, print_compare, rss_anon_kib, Samples};

const KEY: &str = "bench-admin-key";
const CGROUP_PARENT: &str = "warren-bench-sandbox";
const NETWORK: (&str, &str) = ("wsb", "10.217.0.0/16");

/// What a create asks for: the defaults, without egress.
fn body() -> Value {
    json!({"network": {"egress": "deny"}})
}

/// A create timed until its first `processes/run` answers; the id.
async fn create_until_first_run(api: &Api) -> anyhow::Result<(Duration, String)> {
    match api.create_until_first_run(&body()).await {
        (Ok(took), Some(id)) => Ok((took, id)),
        (Err(e), id) => {
            if let Some(id) = id {
                let _ = api.delete(&id).await;
            }
            Err(e)
        }
        (Ok(_), None) => bail!("a create without an id"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sequential = env_usize("BENCH_N", 40);
    let idle = env_usize("BENCH_IDLE", 100);
    let state = std::env::var_os("WARREN_BENCH_SANDBOX_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-sandbox"));
    let server = BenchServer::start(&ServerOptions {
        state_dir: state.clone(),
        cgroup_parent: CGROUP_PARENT.into(),
        network: Some((NETWORK.0.into(), NETWORK.1.into())),
        // Cold starts: bench-scale times creates from the warm pool.
        extra_args: vec!["--pool".into(), "base=0".into()],
        nofile: 65536,
        admin_key: KEY.into(),
    })
    .await?;
    let result = measure(&server.api, &state, sequential, idle).await;
    let ids = server.api.list_ids().await.unwrap_or_default();
    let (_, failed) = server.api.delete_all(ids, 8).await;
    drop(server);
    if failed == 0 {
        remove_network(NETWORK.0);
    }
    unmount_pool(&state);
    result
}

async fn measure(server: &Api, state: &Path, sequential: usize, idle: usize) -> anyhow::Result<()> {
    // Warm-up: builds the base template (from the seed) and warms caches.
    for _ in 0..3 {
        let (_, id) = create_until_first_run(server).await?;
        server.delete(&id).await?;
    }
    ensure_podman_image()?;

    println!("## sandbox benchmark\n");
    println!("| what | warren | peer | ratio | |\n|---|---|---|---|---|");

    // 1. Sequential create → first run, interleaved with podman.
    let (mut ours, mut podman) = (Samples::default(), Samples::default());
    for i in 0..sequential {
        let (took, id) = create_until_first_run(server).await?;
        ours.push(took);
        server.delete(&id).await?;
        if i < sequential.min(20) {
            podman.push(podman_first_answer()?);
        }
    }
    print_compare(
        "create → first run answers (sequential)",
        &ours,
        "podman+runc run --rm, until echo prints",
        &podman,
    );

    // 2. Twenty at once.
    let (mut ours, mut podman) = (Samples::default(), Samples::default());
    for _ in 0..3 {
        let tasks: Vec<_> = (0..20)
            .map(|_| async { create_until_first_run(server).await })
            .collect();
        let results = futures::future::join_all(tasks).await;
        for r in results {
            let (took, id) = r?;
            ours.push(took);
            server.delete(&id).await?;
        }
    }
    let handles: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(podman_first_answer))
        .collect();
    for h in handles {
        podman.push(h.join().expect("podman thread")?);
    }
    print_compare(
        "create → first run answers (20 concurrent)",
        &ours,
        "podman+runc run --rm, until echo prints",
        &podman,
    );

    // 3. Exec through the server vs on the agent's socket directly.
    let id = server.create(&body()).await?;
    let socket = state.join("run").join(&id).join("agent.sock");
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
    let before = meminfo_kib("MemAvailable")?;
    let mut ids = Vec::new();
    for _ in 0..idle {
        ids.push(server.create(&body()).await?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = meminfo_kib("MemAvailable")?;
    let agents: u64 = ids
        .iter()
        .filter_map(|id| agent_pid(state, id))
        .filter_map(rss_anon_kib)
        .sum();
    println!(
        "| host memory per idle sandbox ({idle} sandboxes) | {:.2} MiB (MemAvailable drop) | agents' private RSS {:.2} MiB each | | |",
        (before.saturating_sub(after)) as f64 / idle as f64 / 1024.0,
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
