//! Soak benchmark (issue 10): a mixed load at a steady rate for a long time,
//! to show that nothing drifts: no errors, the same latencies at the end as
//! at the start, and a server whose memory, file descriptors and pool space
//! come back to where they were.
//!
//! Starts a `warren server` (`$WARREN_BIN`, default the release build) with
//! a state directory of its own (`$WARREN_BENCH_SOAK_STATE`, default
//! `/var/lib/warren-bench-soak`; the first run builds `base`) and no
//! outbound network. `SOAK_WORKERS` workers (default 3) each start one cycle
//! every `SOAK_CYCLE_SECS` seconds (default 4) for `SOAK_SECS` seconds
//! (default 3600). A cycle is: create a sandbox; run a command; write a
//! 1 MiB file and read it back; checkpoint; fork and run in the fork; delete
//! the fork, the checkpoints and the sandbox. Every step is timed.
//!
//! Printed: errors (the target is zero), p50/p99 of each step in the first
//! and the last fifth of the run and their ratio (the target is no drift),
//! and the server's RSS, open file descriptors and the pool's used space
//! once warm (after the first cycle of every worker) and at the end, after
//! everything was deleted (the target is flat).
//!
//! With `SOAK_STRICT=1` (CI) it exits non-zero on any error, and on a leak:
//! file descriptors up by more than 64, RSS more than doubled and up by
//! more than 64 MiB, or pool space up by more than 256 MiB. Latency drift
//! is reported, not enforced (a shared machine's noise is not a bug).
//!
//! Run: `scripts/bench.sh soak` (an hour); the test script runs a
//! 10-minute variant on the debug build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use warren_bench::{free_port, ms, wait_ready, warren_bin, Guard, Samples};

const ADMIN_KEY: &str = "wadm_bench-admin-key-0123456789";
/// The steps of a cycle, in order; the names of the rows.
const STEPS: [&str; 8] = [
    "create",
    "run",
    "write 1 MiB",
    "read 1 MiB",
    "checkpoint",
    "fork + first run",
    "delete checkpoints",
    "delete sandboxes",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let state_dir = std::env::var_os("WARREN_BENCH_SOAK_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-soak"));
    std::fs::create_dir_all(&state_dir)?;
    let port = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--cgroup-parent", "warren-bench-soak", "--no-network"])
        .env("WARREN_ADMIN_KEY", ADMIN_KEY);
    let server = Guard::spawn(cmd)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(soak(
        &format!("http://127.0.0.1:{port}"),
        server.pid(),
        &state_dir,
    ));
    drop(server);
    // The pool's loop-mounted image is ours: leave no mount or loop device
    // behind (the next run mounts it again and keeps `base`).
    warren_bench::server::unmount_pool(&state_dir);
    result
}

/// One timed step, tagged with when it started (seconds into the run).
#[derive(Debug, Clone, Copy)]
struct Timing {
    step: usize,
    at: f64,
    took: Duration,
}

/// What the workers share.
struct Shared {
    api: Api,
    started: Instant,
    timings: Mutex<Vec<Timing>>,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    cycles: AtomicU64,
}

impl Shared {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap();
        if first.len() < 10 {
            eprintln!("error: {what}");
            first.push(what);
        }
    }
}

/// The server's footprint at one moment.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    rss_kib: u64,
    fds: u64,
    pool_used: u64,
}

fn footprint(pid: u32, pool: &Path) -> anyhow::Result<Footprint> {
    let rss_kib = warren_bench::rss_kib(pid).context("the server's RSS")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    let pool_used = used_bytes(pool)?;
    Ok(Footprint {
        rss_kib,
        fds,
        pool_used,
    })
}

/// Bytes in use on the file system holding `path`.
fn used_bytes(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: an all-zero statvfs is a valid value for statvfs(3) to fill.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `vfs` a valid out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return Err(std::io::Error::last_os_error()).context("statvfs of the pool");
    }
    Ok((vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize)
}

async fn soak(base: &str, pid: u32, state_dir: &Path) -> anyhow::Result<()> {
    let secs = env_u64("SOAK_SECS", 3600);
    let workers = env_u64("SOAK_WORKERS", 3);
    let cycle = Duration::from_secs(env_u64("SOAK_CYCLE_SECS", 4));
    let strict = std::env::var_os("SOAK_STRICT").is_some();
    let http = reqwest::Client::builder().no_proxy().build()?;
    wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(60)).await?;
    let api = Api {
        http,
        base: base.to_string(),
    };
    // Builds `base` on a new state dir (minutes, once), outside the timings.
    let warm = api.create().await.context("the first sandbox")?;
    api.delete_sandbox(&warm).await?;

    let pool = state_dir.join("pool");
    let shared = Arc::new(Shared {
        api,
        started: Instant::now(),
        timings: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
        first_errors: Mutex::new(Vec::new()),
        cycles: AtomicU64::new(0),
    });
    eprintln!("soak: {workers} workers, a cycle each every {cycle:?}, for {secs} s");
    // Warm footprint: once every worker has finished one cycle.
    let first_round = run_workers(&shared, workers, cycle, cycle.as_secs_f64()).await;
    let warm = footprint(pid, &pool)?;
    // The trend between warm and end: a sample every tenth of the run, to tell growth that
    // levels off (allocator arenas, caches) from a leak that keeps going.
    let sampler = {
        let pool = pool.clone();
        let every = Duration::from_secs_f64((secs as f64 / 10.0).max(1.0));
        let started = shared.started;
        tokio::spawn(async move {
            let mut trend = Vec::new();
            for _ in 0..9 {
                tokio::time::sleep(every).await;
                if let Ok(f) = footprint(pid, &pool) {
                    trend.push((started.elapsed().as_secs_f64(), f));
                }
            }
            trend
        })
    };
    let rest = run_workers(&shared, workers, cycle, secs as f64).await;
    let leftover = first_round + rest;
    let end = footprint(pid, &pool)?;
    let trend = sampler.await.unwrap_or_default();
    let db_size = std::fs::metadata(state_dir.join("warren.db")).map_or(0, |m| m.len());
    let remaining = shared.api.list().await.unwrap_or_default();
    for id in &remaining {
        let _ = shared.api.delete_sandbox(id).await;
    }

    let errors = shared.errors.load(Ordering::Relaxed);
    let elapsed = shared.started.elapsed().as_secs_f64();
    let timings = shared.timings.lock().unwrap().clone();
    println!(
        "\nsoak: {} cycles in {elapsed:.0} s ({workers} workers), {} steps timed\n",
        shared.cycles.load(Ordering::Relaxed),
        timings.len()
    );
    println!("| step | first fifth p50 | p99 | last fifth p50 | p99 | p99 end/start | n |");
    println!("|---|---|---|---|---|---|---|");
    let fifth = elapsed / 5.0;
    for (i, name) in STEPS.iter().enumerate() {
        let window = |lo: f64, hi: f64| {
            let mut s = Samples::default();
            for t in timings
                .iter()
                .filter(|t| t.step == i && t.at >= lo && t.at < hi)
            {
                s.push(t.took);
            }
            s
        };
        let (start, end) = (window(0.0, fifth), window(elapsed - fifth, f64::MAX));
        let n = timings.iter().filter(|t| t.step == i).count();
        let ratio = end.p99().as_secs_f64() / start.p99().as_secs_f64().max(1e-9);
        println!(
            "| {name} | {} | {} | {} | {} | {ratio:.2}x | {n} |",
            ms(start.p50()),
            ms(start.p99()),
            ms(end.p50()),
            ms(end.p99())
        );
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!("\n| resource | warm | end | end/warm |\n|---|---|---|---|");
    println!(
        "| server RSS | {:.1} MiB | {:.1} MiB | {:.2}x |",
        warm.rss_kib as f64 / 1024.0,
        end.rss_kib as f64 / 1024.0,
        end.rss_kib as f64 / warm.rss_kib.max(1) as f64
    );
    println!(
        "| server fds | {} | {} | {:.2}x |",
        warm.fds,
        end.fds,
        end.fds as f64 / warm.fds.max(1) as f64
    );
    println!(
        "| pool used | {:.1} MiB | {:.1} MiB | {:.2}x |",
        mib(warm.pool_used),
        mib(end.pool_used),
        end.pool_used as f64 / warm.pool_used.max(1) as f64
    );
    println!("| database file | | {:.1} MiB | |", mib(db_size));
    println!("\nunder load, every tenth of the run:\n\n| at | server RSS | fds | pool used |\n|---|---|---|---|");
    for (at, f) in &trend {
        println!(
            "| {:.0} s | {:.1} MiB | {} | {:.1} MiB |",
            at,
            f.rss_kib as f64 / 1024.0,
            f.fds,
            mib(f.pool_used)
        );
    }
    println!(
        "\nerrors: {errors}; sandboxes left by failed cycles: {leftover}; left at the end: {}",
        remaining.len()
    );

    if strict {
        let mut problems = Vec::new();
        if errors > 0 {
            problems.push(format!("{errors} errors"));
        }
        if end.fds > warm.fds + 64 {
            problems.push(format!("file descriptors {} -> {}", warm.fds, end.fds));
        }
        if end.rss_kib > 2 * warm.rss_kib && end.rss_kib > warm.rss_kib + 64 * 1024 {
            problems.push(format!("RSS {} -> {} KiB", warm.rss_kib, end.rss_kib));
        }
        if end.pool_used > warm.pool_used + (256 << 20) {
            problems.push(format!(
                "pool space {:.0} -> {:.0} MiB",
                mib(warm.pool_used),
                mib(end.pool_used)
            ));
        }
        if !problems.is_empty() {
            bail!("soak failed: {}", problems.join("; "));
        }
        println!("soak: passed");
    }
    Ok(())
}

/// Runs `workers` workers for `secs` seconds; returns how many sandboxes
/// failed cycles left behind (they are deleted at the end).
async fn run_workers(shared: &Arc<Shared>, workers: u64, cycle: Duration, secs: f64) -> u64 {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let shared = Arc::clone(shared);
        tasks.push(tokio::spawn(async move {
            // Spread the workers over one cycle so the rate is steady.
            let offset = cycle.mul_f64(w as f64 / workers as f64);
            let mut next = tokio::time::Instant::now() + offset;
            let mut left = 0;
            loop {
                tokio::time::sleep_until(next).await;
                if Instant::now() >= until {
                    return left;
                }
                next += cycle;
                if let Err(e) = one_cycle(&shared, w).await {
                    shared.error(format!("worker {w}: {e:#}"));
                    left += 1;
                }
                shared.cycles.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut left = 0;
    for t in tasks {
        left += t.await.unwrap_or(0);
    }
    left
}

/// One cycle: every step of [`STEPS`], timed.
async fn one_cycle(shared: &Shared, worker: u64) -> anyhow::Result<()> {
    let api = &shared.api;
    let time = |step: usize, started: Instant| {
        shared.timings.lock().unwrap().push(Timing {
            step,
            at: started.duration_since(shared.started).as_secs_f64(),
            took: started.elapsed(),
        });
    };

    let t = Instant::now();
    let id = api.create().await?;
    time(0, t);

    let t = Instant::now();
    let out = api.run(&id, "echo soak-$((6*7))").await?;
    time(1, t);
    if out != "soak-42\n" {
        bail!("run in {id}: stdout {out:?}");
    }

    let data: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8 ^ worker as u8)
        .collect();
    let t = Instant::now();
    api.put_file(&id, "/root/soak.bin", data.clone()).await?;
    time(2, t);
    let t = Instant::now();
    let back = api.get_file(&id, "/root/soak.bin").await?;
    time(3, t);
    if back != data {
        bail!("{id}: read back {} bytes that differ", back.len());
    }

    let t = Instant::now();
    let checkpoint = api.checkpoint(&id).await?;
    time(4, t);

    let t = Instant::now();
    let (fork, fork_checkpoint) = api.fork(&id).await?;
    let out = api.run(&fork, "cat /root/soak.bin | wc -c").await?;
    time(5, t);
    if out.trim() != "1048576" {
        bail!("fork {fork} of {id}: {out:?}");
    }

    let t = Instant::now();
    api.delete_checkpoint(&checkpoint).await?;
    if let Some(c) = fork_checkpoint {
        api.delete_checkpoint(&c).await?;
    }
    time(6, t);

    let t = Instant::now();
    api.delete_sandbox(&fork).await?;
    api.delete_sandbox(&id).await?;
    time(7, t);
    Ok(())
}

/// The server's API, as the benchmark uses it.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn create(&self) -> anyhow::Result<String> {
        let v = self
            .call("POST", "/v1/sandboxes", Some(json!({"timeout_secs": 0})))
            .await?;
        Ok(v["id"].as_str().context("sandbox id")?.to_string())
    }

    async fn list(&self) -> anyhow::Result<Vec<String>> {
        let v = self.call("GET", "/v1/sandboxes?limit=1000", None).await?;
        Ok(v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|s| s["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn run(&self, id: &str, cmd: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/processes/run"),
                Some(json!({ "cmd": cmd })),
            )
            .await?;
        if v["exit_code"] != 0 {
            bail!("{cmd:?} in {id}: {v}");
        }
        Ok(v["stdout"].as_str().unwrap_or_default().to_string())
    }

    async fn put_file(&self, id: &str, path: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/v1/sandboxes/{id}/files", self.base))
            .query(&[("path", path)])
            .bearer_auth(ADMIN_KEY)
            .body(data)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("PUT {path} in {id}: {}", resp.status());
        }
        Ok(())
    }

    async fn get_file(&self, id: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        let resp = self
            .http
            .get(format!("{}/v1/sandboxes/{id}/files", self.base))
            .query(&[("path", path)])
            .bearer_auth(ADMIN_KEY)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("GET {path} in {id}: {}", resp.status());
        }
        Ok(resp.bytes().await?.to_vec())
    }

    async fn checkpoint(&self, id: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/checkpoints"),
                Some(json!({})),
            )
            .await?;
        Ok(v["id"].as_str().context("checkpoint id")?.to_string())
    }

    /// Forks one sandbox; returns it and the checkpoint the fork took.
    async fn fork(&self, id: &str) -> anyhow::Result<(String, Option<String>)> {
        let v = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/fork"),
                Some(json!({"count": 1})),
            )
            .await?;
        let fork = v["items"][0]["id"]
            .as_str()
            .with_context(|| format!("fork of {id}: {v}"))?
            .to_string();
        Ok((fork, v["checkpoint_id"].as_str().map(str::to_string)))
    }

    async fn delete_checkpoint(&self, id: &str) -> anyhow::Result<()> {
        self.call("DELETE", &format!("/v1/checkpoints/{id}"), None)
            .await
            .map(drop)
    }

    async fn delete_sandbox(&self, id: &str) -> anyhow::Result<()> {
        self.call("DELETE", &format!("/v1/sandboxes/{id}"), None)
            .await
            .map(drop)
    }
}
