//! Checkpoint diff benchmark (issue 14): what changed in a large disk, as
//! btrfs knows it, against walking both trees, in one run.
//!
//! Starts a `warren server` (release build, `$WARREN_BIN`) with a state
//! directory of its own (`$WARREN_BENCH_DIFF_STATE`, default
//! `/var/lib/warren-bench-diff`; the first run builds `base` from the seed)
//! and no outbound network. Then:
//! 1. a sandbox writes `BENCH_DIFF_MB` (default 2000) MB of random data as
//!    100 KB files (20 directories, `split` of `/dev/urandom`: about 20,000
//!    files); checkpoint A;
//! 2. it changes 5 of those files (appends a line); checkpoint B; the host
//!    runs `sync`;
//! 3. `BENCH_N` rounds (default 30) of `GET /v1/checkpoints/A/diff?to=B` and
//!    of `GET /v1/checkpoints/A/diff` (to the live disk: a read-only
//!    snapshot of it is taken and deleted each time), over HTTP;
//! 4. the peers, on the same two checkpoint volumes: the copy driver's walk
//!    (`warren_runtime::storage::diff::walk`: every entry of both trees
//!    `fstatat`ed, no data read) for `BENCH_N` rounds, and `diff -rq` (reads
//!    every file whose size matches) for `BENCH_SLOW_N` rounds (default 3).
//!
//! Every round's answer is checked: exactly the 5 files (the live diff
//! may also list what the sandbox's agent writes meanwhile).
//!
//! Run: `scripts/bench.sh diff`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use warren_bench::json_api::JsonApi;
use warren_bench::{env_usize, free_port, print_compare, wait_ready, warren_bin, Guard, Samples};
use warren_runtime::storage::diff::{walk, DiffLimits};

const ADMIN_KEY: &str = "wadm_bench-admin-key-0123456789";
/// The files the benchmark changes between the checkpoints.
const CHANGED: [&str; 5] = [
    "/root/data/d0/faaaa",
    "/root/data/d3/faaab",
    "/root/data/d7/faaac",
    "/root/data/d11/faaad",
    "/root/data/d19/faaae",
];

fn main() -> anyhow::Result<()> {
    let state_dir = std::env::var_os("WARREN_BENCH_DIFF_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-diff"));
    std::fs::create_dir_all(&state_dir)?;
    let port = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--pool", "base=0"])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--cgroup-parent", "warren-bench-diff", "--no-network"])
        .env("WARREN_ADMIN_KEY", ADMIN_KEY);
    let server = Guard::spawn(cmd)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&format!("http://127.0.0.1:{port}"), &state_dir));
    drop(server);
    warren_bench::server::unmount_pool(&state_dir);
    result
}

async fn run(base: &str, state_dir: &std::path::Path) -> anyhow::Result<()> {
    let n = env_usize("BENCH_N", 30);
    let slow_n = env_usize("BENCH_SLOW_N", 3);
    let mb = env_usize("BENCH_DIFF_MB", 2000);
    let http = reqwest::Client::builder().no_proxy().build()?;
    wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(60)).await?;
    let api = JsonApi::new(http, base, ADMIN_KEY);
    let sandbox = api
        .call(
            "POST",
            "/v1/sandboxes",
            Some(json!({"timeout_secs": 0, "resources": {"disk_mb": mb + 1024}})),
        )
        .await?;
    let id = sandbox["id"].as_str().context("sandbox id")?.to_string();
    let outcome = measure(&api, state_dir, &id, mb, n, slow_n).await;
    // Named checkpoints outlive their sandbox: delete them too, so that
    // runs do not pile up 2 GB each in the pool.
    if let Ok(list) = api
        .call("GET", &format!("/v1/checkpoints?sandbox_id={id}"), None)
        .await
    {
        for ckpt in list["items"].as_array().into_iter().flatten() {
            if let Some(ckpt) = ckpt["id"].as_str() {
                let _ = api
                    .call("DELETE", &format!("/v1/checkpoints/{ckpt}"), None)
                    .await;
            }
        }
    }
    let _ = api
        .call("DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    outcome
}

async fn measure(
    api: &JsonApi,
    state_dir: &std::path::Path,
    id: &str,
    mb: usize,
    n: usize,
    slow_n: usize,
) -> anyhow::Result<()> {
    let per_dir = mb / 20;
    eprintln!("writing {mb} MB as 100 KB files in the sandbox");
    api.run(
        id,
        &format!(
            "for d in $(seq 0 19); do mkdir -p /root/data/d$d && head -c {per_dir}M /dev/urandom \
             | split -b 100K -a 4 - /root/data/d$d/f || exit 1; done; find /root/data -type f | wc -l"
        ),
    )
    .await?;
    let a = api.checkpoint(id).await?;
    let append: Vec<String> = CHANGED
        .iter()
        .map(|p| format!("echo changed >> {p}"))
        .collect();
    api.run(id, &append.join(" && ")).await?;
    let b = api.checkpoint(id).await?;
    let status = Command::new("sync").status()?;
    if !status.success() {
        bail!("sync: {status}");
    }
    let checkpoints = state_dir.join("pool/checkpoints");
    let (vol_a, vol_b) = (checkpoints.join(&a), checkpoints.join(&b));
    let files = walk_count(&vol_b)?;
    eprintln!("{files} entries in the disk; timing {n} rounds");

    let (mut between, mut live, mut walked, mut diff_rq) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    for _ in 0..n {
        let started = Instant::now();
        let got = api
            .call("GET", &format!("/v1/checkpoints/{a}/diff?to={b}"), None)
            .await?;
        between.push(started.elapsed());
        check(&got, true)?;
        let started = Instant::now();
        let got = api
            .call("GET", &format!("/v1/checkpoints/{a}/diff"), None)
            .await?;
        live.push(started.elapsed());
        check(&got, false)?;
        let (from, to) = (vol_a.clone(), vol_b.clone());
        let started = Instant::now();
        let found = tokio::task::spawn_blocking(move || {
            walk(
                &from,
                &to,
                DiffLimits {
                    max_items: 10_000,
                    deadline: Instant::now() + Duration::from_secs(600),
                },
            )
        })
        .await??;
        walked.push(started.elapsed());
        if found.items.len() != CHANGED.len() {
            bail!(
                "the walk found {} changes, not {}",
                found.items.len(),
                CHANGED.len()
            );
        }
    }
    for _ in 0..slow_n {
        let started = Instant::now();
        let out = Command::new("diff")
            .arg("-rq")
            .arg(&vol_a)
            .arg(&vol_b)
            .stdout(Stdio::piped())
            .output()?;
        diff_rq.push(started.elapsed());
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        if out.status.code() != Some(1) || lines != CHANGED.len() {
            bail!("diff -rq: {} with {lines} lines", out.status);
        }
    }
    println!();
    println!("Checkpoint diff of a {mb} MB disk ({files} entries), 5 files changed:");
    println!();
    println!("| what | warren | peer | ratio | n |");
    println!("|---|---|---|---|---|");
    print_compare("diff A→B (HTTP)", &between, "copy driver's walk", &walked);
    print_compare("diff A→live (HTTP)", &live, "copy driver's walk", &walked);
    print_compare("diff A→B (HTTP)", &between, "diff -rq", &diff_rq);
    Ok(())
}

/// Entries below `root` (a walk against an empty tree would list them all;
/// counted here with `find`, untimed).
fn walk_count(root: &std::path::Path) -> anyhow::Result<usize> {
    let out = Command::new("find").arg(root).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().count())
}

/// Checks that a diff lists the changed files as modified (and, between the
/// checkpoints, nothing else).
fn check(diff: &Value, exact: bool) -> anyhow::Result<()> {
    let items = diff["items"].as_array().context("items")?;
    for path in CHANGED {
        if !items
            .iter()
            .any(|i| i["path"] == path && i["change"] == "modified")
        {
            bail!("{path} is not in the diff: {diff}");
        }
    }
    if exact && items.len() != CHANGED.len() {
        bail!("expected exactly the changed files: {diff}");
    }
    Ok(())
}
