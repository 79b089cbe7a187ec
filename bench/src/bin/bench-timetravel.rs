//! Time-travel benchmark (issue 4): checkpoint, fork (until the fork's first
//! `processes/run` answers) and restore, after writing 10 MB and after
//! writing 2 GB in the sandbox, against `cp -a` of the same tree and
//! `podman commit` of a container of the same rootfs, in one run.
//!
//! Starts a `warren server` (release build, `$WARREN_BIN`) with a state
//! directory of its own (`$WARREN_BENCH_TT_STATE`, default
//! `/var/lib/warren-bench-timetravel`; the first run builds `base`), so that
//! no other benchmark's server shares its database, and a network of its
//! own (`wtt`, 10.218.0.0/24). The sandboxes have egress `deny` (no
//! interface) except in step 5. For each size:
//! 1. the sandbox (and the podman container) write the data (`dd` from
//!    `/dev/urandom` into `/root`); the first checkpoint right after it is
//!    reported on its own row (it includes flushing what was just written),
//!    then the host runs `sync`;
//! 2. `BENCH_N` rounds (default 50) of: checkpoint; fork (one sandbox)
//!    until its first command answers; restore of the checkpoint; the fork
//!    and checkpoints are deleted between rounds, untimed;
//! 3. peers on the same data: `cp -a` of the sandbox's root to a directory
//!    of the same btrfs pool (coreutils' default, which reflinks on btrfs),
//!    `cp -a --reflink=never` (a real copy), and `podman --runtime runc
//!    commit` of a container running the `base` rootfs (imported with
//!    `podman import`) after the same `dd` in it. Slow peers get
//!    `BENCH_SLOW_N` rounds (default 5).
//!
//! 4. `BENCH_N` checkpoints of the same sandbox while a second sandbox
//!    writes 64 MB files in a loop, against the quiet ones: what a
//!    neighbour's writes cost a checkpoint.
//! 5. `BENCH_N` rounds of fork and restore of a sandbox with egress `allow`
//!    (an interface of its own) after writing 10 MB, against the `deny`
//!    sandbox above (loopback only): what a sandbox's network costs them.
//!
//! Run: `scripts/bench.sh timetravel` (installs podman and runc from Debian).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use warren_bench::json_api::JsonApi;
use warren_bench::{free_port, ms, wait_ready, warren_bin, Guard, Samples};

const ADMIN_KEY: &str = "wadm_bench-admin-key-0123456789";
const PODMAN_IMAGE: &str = "localhost/warren-bench-base";
const PODMAN_CONTAINER: &str = "warren-bench-timetravel";
/// This host needs these for runc (see the README).
const PODMAN_ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let state_dir = std::env::var_os("WARREN_BENCH_TT_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-timetravel"));
    std::fs::create_dir_all(&state_dir)?;
    let port = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        // Cold starts: bench-scale times creates from the warm pool.
        .args(["--pool", "base=0"])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--cgroup-parent", "warren-bench-tt"])
        .args(["--network-name", "wtt", "--network-cidr", "10.218.0.0/24"])
        .env("WARREN_ADMIN_KEY", ADMIN_KEY);
    let server = Guard::spawn(cmd)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&format!("http://127.0.0.1:{port}"), &state_dir));
    drop(server);
    let _ = podman(&["rm", "-f", "-t", "0", PODMAN_CONTAINER]);
    result
}

/// Figures of one size.
struct Figures {
    label: &'static str,
    first_checkpoint: Duration,
    checkpoint: Samples,
    fork: Samples,
    restore: Samples,
    cp: Samples,
    cp_copy: Samples,
    podman_commit: Samples,
}

async fn run(base: &str, state_dir: &Path) -> anyhow::Result<()> {
    let n = env_usize("BENCH_N", 50);
    let slow_n = env_usize("BENCH_SLOW_N", 5);
    let http = reqwest::Client::builder().no_proxy().build()?;
    wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(60)).await?;
    let api = JsonApi::new(http, base, ADMIN_KEY);
    // The first create may build `base` (minutes, once).
    let id = create(&api, "deny").await?;
    let outcome = measure(&api, state_dir, &id, n, slow_n).await;
    let (beside, allow) = match &outcome {
        Ok(_) => (
            Some(beside_a_writer(&api, &id, n).await),
            Some(with_egress_allow(&api, n).await),
        ),
        Err(_) => (None, None),
    };
    let _ = api
        .call("DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    let figures = outcome?;
    print_table(&figures);
    if let Some(beside) = beside {
        print_beside(&figures, &beside?);
    }
    if let Some(allow) = allow {
        print_egress(&figures, &allow?);
    }
    Ok(())
}

/// A sandbox with `egress`, no idle timeout; its id.
async fn create(api: &JsonApi, egress: &str) -> anyhow::Result<String> {
    let sandbox = api
        .call(
            "POST",
            "/v1/sandboxes",
            Some(json!({"timeout_secs": 0, "network": {"egress": egress}})),
        )
        .await?;
    Ok(sandbox["id"].as_str().context("sandbox id")?.to_string())
}

/// `n` rounds of fork (until its first run answers) and restore of a
/// sandbox with egress `allow` after writing 10 MB.
async fn with_egress_allow(api: &JsonApi, n: usize) -> anyhow::Result<(Samples, Samples)> {
    eprintln!("{n} forks and restores of a sandbox with egress allow");
    let id = create(api, "allow").await?;
    let outcome = async {
        api.run(
            &id,
            "dd if=/dev/urandom of=/root/data-10 bs=1M count=10 status=none",
        )
        .await?;
        let status = Command::new("sync").status()?;
        if !status.success() {
            bail!("sync: {status}");
        }
        let (mut fork, mut restore) = (Samples::default(), Samples::default());
        for _ in 0..n {
            let (forked, took) = fork_once(api, &id).await?;
            fork.push(took);
            forked.delete(api).await?;
            let ckpt = api.checkpoint(&id).await?;
            let started = Instant::now();
            api.call(
                "POST",
                &format!("/v1/sandboxes/{id}/restore"),
                Some(json!({"checkpoint_id": ckpt})),
            )
            .await?;
            restore.push(started.elapsed());
            api.delete_checkpoint(&ckpt).await?;
        }
        anyhow::Ok((fork, restore))
    }
    .await;
    let _ = api
        .call("DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    outcome
}

/// A fork of one and the checkpoint it made.
struct Forked {
    id: String,
    checkpoint: String,
}

impl Forked {
    /// Deletes the fork and its checkpoint.
    async fn delete(self, api: &JsonApi) -> anyhow::Result<()> {
        api.call("DELETE", &format!("/v1/sandboxes/{}", self.id), None)
            .await?;
        api.delete_checkpoint(&self.checkpoint).await
    }
}

/// Forks sandbox `id` once and runs `true` in the fork; the fork and the
/// time until that run answered.
async fn fork_once(api: &JsonApi, id: &str) -> anyhow::Result<(Forked, Duration)> {
    let started = Instant::now();
    let forked = api
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/fork"),
            Some(json!({"count": 1})),
        )
        .await?;
    let fork_id = forked["items"][0]["id"]
        .as_str()
        .context("fork id")?
        .to_string();
    api.run(&fork_id, "true").await?;
    let took = started.elapsed();
    let checkpoint = forked["checkpoint_id"]
        .as_str()
        .context("fork checkpoint")?
        .to_string();
    Ok((
        Forked {
            id: fork_id,
            checkpoint,
        },
        took,
    ))
}

/// Fork and restore with egress `allow` against the `deny` rounds at 10 MB.
fn print_egress(figures: &[Figures], (fork, restore): &(Samples, Samples)) {
    let Some(deny) = figures.first() else {
        return;
    };
    println!();
    println!("| warren, after writing 10 MB | egress deny (loopback only) p50 / p99 | egress allow (an interface of its own) p50 / p99 | ratio (p50) |");
    println!("|---|---|---|---|");
    for (what, d, a) in [
        ("fork (until its first run answers)", &deny.fork, fork),
        ("restore", &deny.restore, restore),
    ] {
        println!(
            "| {what} | {} / {} | {} / {} | {:.2}x |",
            ms(d.p50()),
            ms(d.p99()),
            ms(a.p50()),
            ms(a.p99()),
            a.p50().as_secs_f64() / d.p50().as_secs_f64().max(1e-9)
        );
    }
}

/// `n` checkpoints of sandbox `id` while another sandbox writes 64 MB
/// files in a loop: what a neighbour's writes cost a checkpoint.
async fn beside_a_writer(api: &JsonApi, id: &str, n: usize) -> anyhow::Result<Samples> {
    eprintln!("{n} checkpoints beside a sandbox writing");
    let writer = create(api, "deny").await?;
    let outcome = async {
        api.call(
            "POST",
            &format!("/v1/sandboxes/{writer}/processes"),
            Some(json!({"cmd": "while true; do dd if=/dev/zero of=/root/noise bs=1M count=64 status=none; done"})),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut samples = Samples::default();
        for _ in 0..n {
            let started = Instant::now();
            let ckpt = api.checkpoint(id).await?;
            samples.push(started.elapsed());
            api.delete_checkpoint(&ckpt).await?;
        }
        anyhow::Ok(samples)
    }
    .await;
    let _ = api
        .call("DELETE", &format!("/v1/sandboxes/{writer}"), None)
        .await;
    outcome
}

/// The checkpoints beside a writer against the quiet ones after 2 GB.
fn print_beside(figures: &[Figures], beside: &Samples) {
    let Some(quiet) = figures.last() else {
        return;
    };
    println!();
    println!("| warren checkpoint | quiet p50 / p99 | beside a sandbox writing 64 MB files in a loop p50 / p99 | ratio (p50) |");
    println!("|---|---|---|---|");
    println!(
        "| after {} | {} / {} | {} / {} | {:.2}x |",
        quiet.label,
        ms(quiet.checkpoint.p50()),
        ms(quiet.checkpoint.p99()),
        ms(beside.p50()),
        ms(beside.p99()),
        beside.p50().as_secs_f64() / quiet.checkpoint.p50().as_secs_f64().max(1e-9)
    );
}

async fn measure(
    api: &JsonApi,
    state_dir: &Path,
    id: &str,
    n: usize,
    slow_n: usize,
) -> anyhow::Result<Vec<Figures>> {
    let pool = state_dir.join("pool");
    let rootfs = pool.join("sandboxes").join(id);
    prepare_podman(&pool.join("templates/base"))?;
    let mut out = Vec::new();
    for (label, mb) in [("10 MB", 10u64), ("2 GB", 2048)] {
        eprintln!("writing {label} in the sandbox and the container");
        let dd = format!("dd if=/dev/urandom of=/root/data-{mb} bs=1M count={mb} status=none");
        api.run(id, &dd).await?;
        let started = Instant::now();
        let first = api.checkpoint(id).await?;
        let first_checkpoint = started.elapsed();
        api.delete_checkpoint(&first).await?;
        podman(&["exec", PODMAN_CONTAINER, "sh", "-c", &dd])?;
        // Steady state: what was written is on disk, down to the pool's
        // image file, before anything is timed.
        let status = Command::new("sync").status()?;
        if !status.success() {
            bail!("sync: {status}");
        }

        let (mut checkpoint, mut fork, mut restore) =
            (Samples::default(), Samples::default(), Samples::default());
        eprintln!("{label}: {n} rounds of checkpoint, fork, restore");
        for _ in 0..n {
            let started = Instant::now();
            let ckpt = api.checkpoint(id).await?;
            checkpoint.push(started.elapsed());

            let (forked, took) = fork_once(api, id).await?;
            fork.push(took);
            forked.delete(api).await?;

            let started = Instant::now();
            api.call(
                "POST",
                &format!("/v1/sandboxes/{id}/restore"),
                Some(json!({"checkpoint_id": ckpt})),
            )
            .await?;
            restore.push(started.elapsed());
            api.delete_checkpoint(&ckpt).await?;
        }

        eprintln!("{label}: cp -a and podman commit");
        let rounds = if mb > 100 { slow_n } else { n };
        let cp = time_copies(&rootfs, &pool.join("tmp"), &[], rounds)?;
        let cp_copy = time_copies(&rootfs, &pool.join("tmp"), &["--reflink=never"], rounds)?;
        let mut podman_commit = Samples::default();
        for i in 0..rounds {
            let image = format!("localhost/warren-bench-commit-{i}");
            let started = Instant::now();
            podman(&["commit", "-q", PODMAN_CONTAINER, &image])?;
            podman_commit.push(started.elapsed());
            podman(&["rmi", "-f", &image])?;
        }
        out.push(Figures {
            label,
            first_checkpoint,
            checkpoint,
            fork,
            restore,
            cp,
            cp_copy,
            podman_commit,
        });
    }
    Ok(out)
}

/// `cp -a EXTRA src tmp/bench-cp` `rounds` times; the copy is removed
/// (untimed) after each.
fn time_copies(src: &Path, tmp: &Path, extra: &[&str], rounds: usize) -> anyhow::Result<Samples> {
    let dst = tmp.join("bench-cp");
    let mut samples = Samples::default();
    for _ in 0..rounds {
        let _ = std::fs::remove_dir_all(&dst);
        let started = Instant::now();
        let status = Command::new("cp")
            .arg("-a")
            .args(extra)
            .arg(src)
            .arg(&dst)
            .status()?;
        samples.push(started.elapsed());
        if !status.success() {
            bail!("cp -a {extra:?} failed: {status}");
        }
        std::fs::remove_dir_all(&dst)?;
    }
    Ok(samples)
}

/// Imports the `base` rootfs into podman (once) and starts the container.
fn prepare_podman(base: &Path) -> anyhow::Result<()> {
    if podman(&["image", "exists", PODMAN_IMAGE]).is_err() {
        eprintln!("importing {} into podman", base.display());
        let mut tar = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(base)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()?;
        let status = Command::new("podman")
            .args(["import", "-", PODMAN_IMAGE])
            .stdin(tar.stdout.take().context("tar stdout")?)
            .stdout(Stdio::null())
            .status()?;
        tar.wait()?;
        if !status.success() {
            bail!("podman import failed: {status}");
        }
    }
    let _ = podman(&["rm", "-f", "-t", "0", PODMAN_CONTAINER]);
    let mut args = vec!["run", "-d", "--name", PODMAN_CONTAINER];
    args.extend(PODMAN_ULIMITS);
    args.extend([PODMAN_IMAGE, "sleep", "infinity"]);
    podman(&args)?;
    Ok(())
}

/// `podman --runtime runc ARGS`, output discarded; fails unless it succeeds.
fn podman(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("podman")
        .args(["--runtime", "runc"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running podman (scripts/bench.sh timetravel installs it)")?;
    if !out.status.success() {
        bail!(
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn print_table(figures: &[Figures]) {
    println!("| operation | after writing | p50 | p99 | n |");
    println!("|---|---|---|---|---|");
    let row = |what: &str, label: &str, s: &Samples| {
        println!(
            "| {what} | {label} | {} | {} | {} |",
            ms(s.p50()),
            ms(s.p99()),
            s.len()
        );
    };
    for f in figures {
        row("warren checkpoint", f.label, &f.checkpoint);
        row(
            "warren fork (until its first run answers)",
            f.label,
            &f.fork,
        );
        row("warren restore", f.label, &f.restore);
        println!(
            "| warren checkpoint right after the write (flushes it) | {} | {} | | 1 |",
            f.label,
            ms(f.first_checkpoint)
        );
        row("cp -a (reflinks on btrfs)", f.label, &f.cp);
        row("cp -a --reflink=never", f.label, &f.cp_copy);
        row("podman commit", f.label, &f.podman_commit);
    }
    if let [small, large] = figures {
        println!();
        println!("| warren | p50 at 10 MB | p50 at 2 GB | 2 GB / 10 MB | targets: p50 <= 15 ms, ratio <= 1.5 |");
        println!("|---|---|---|---|---|");
        for (what, a, b) in [
            ("checkpoint", &small.checkpoint, &large.checkpoint),
            ("fork", &small.fork, &large.fork),
            ("restore", &small.restore, &large.restore),
        ] {
            let ratio = b.p50().as_secs_f64() / a.p50().as_secs_f64().max(1e-9);
            let ok = a.p50() <= Duration::from_millis(15)
                && b.p50() <= Duration::from_millis(15)
                && ratio <= 1.5;
            println!(
                "| {what} | {} | {} | {ratio:.2}x | {} |",
                ms(a.p50()),
                ms(b.p50()),
                if ok { "met" } else { "missed" }
            );
        }
    }
}
