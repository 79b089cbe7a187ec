//! Scale benchmark (issue 13): creates, execs and memory with thousands of
//! sandboxes alive, bursts of concurrent creates with and without the warm
//! pool against podman + runc, and the most idle sandboxes this machine
//! holds.
//!
//! Starts a `warren server` of its own (`$WARREN_BIN`, default the release
//! build): state dir `$WARREN_BENCH_SCALE_STATE` (default
//! `/var/lib/warren-bench-scale`; the first run builds `base`), cgroup
//! parent `warren-bench-scale`, network `wsc` on 10.216.0.0/16, and
//! RLIMIT_NOFILE up to 1M (this process's hard limit: raising that needs
//! CAP_SYS_RESOURCE; the server holds a few descriptors, not one per
//! sandbox). The server caps no count of sandboxes; every sandbox is made
//! with the admin key (no tenant, so no quota) and `timeout_secs: 0` (never
//! stopped for idleness).
//!
//! Phases (`SCALE_PHASES`, default `burst,alive,max`):
//! - `burst`: `SCALE_CONCURRENCY` (default 1,10,50,100) creates at once,
//!   each timed until its first `processes/run` of `true` answers: with the
//!   warm pool sized for the burst (and full), without it (size 0), and
//!   `podman run` of the same root file system timed until its first
//!   command prints. About `SCALE_BURST_SAMPLES` (default 60) samples per
//!   row, at most 20 rounds.
//! - `alive`: for each egress of `SCALE_EGRESS` (default deny,allow):
//!   `SCALE_SEQ` (default 200: a p99 of 30 would be the slowest one)
//!   sequential creates (until the first run answers) and deletes, the
//!   same from a warm pool of one (refilled before each) when the server
//!   has pools, and `SCALE_EXECS` (default
//!   200) execs of `true`, with 0 and each of `SCALE_ALIVE` (default
//!   300,1000) idle sandboxes of that egress alive (made `SCALE_FILL_CONCURRENCY`, default 1, at a
//!   time); memory per idle sandbox at the largest count; podman's idle
//!   container memory over `SCALE_PODMAN_IDLE` (default 50) containers.
//! - `max`: idle sandboxes (egress deny) made `SCALE_MAX_CONCURRENCY`
//!   (default 4) at a time up to `SCALE_MAX` (default 5000), stopping at
//!   the first error or when MemAvailable falls under `SCALE_MEM_FLOOR_MIB`
//!   (default 2048).
//!
//! The server's log is appended to `STATE_DIR/server.log` (errors that
//! answered 500 are explained there). Without pools (`GET /v1/admin/pools` answers 404) the pool cells say
//! "pool: not on this server". Otherwise rows say whether they ran with
//! the pool; the others run with it off (size 0). Every sandbox is deleted
//! at the end, also on Ctrl-C, SIGTERM or a panic; the server is killed by
//! pid. Run: `scripts/bench.sh scale` (as root).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use warren_bench::memory::Memory;
use warren_bench::podman::{
    ensure_podman_image, podman_first_answer, remove_containers, start_idle_containers,
};
use warren_bench::server::{remove_network, unmount_pool, Api, BenchServer, ServerOptions};
use warren_bench::{
    env_list, env_usize, host_tasks, meminfo_kib, mib, ms, open_files, p50_p99, ratio, ratio_f,
    rss_kib, Samples,
};

const ADMIN_KEY: &str = "wadm_bench-scale-admin-key-0123456789";
const CGROUP_PARENT: &str = "warren-bench-scale";
const NETWORK: (&str, &str) = ("wsc", "10.216.0.0/16");
const TEMPLATE: &str = "base";
const NOFILE: u64 = 1 << 20;
/// Label of podman's idle containers, removed at the end whatever happens.
const PODMAN_LABEL: &str = "warren-bench=scale";

/// The run's sizes, from the environment.
#[derive(Debug, Clone)]
struct Config {
    phases: Vec<String>,
    alive: Vec<usize>,
    egress: Vec<String>,
    seq: usize,
    execs: usize,
    concurrency: Vec<usize>,
    burst_samples: usize,
    fill_concurrency: usize,
    max: usize,
    max_concurrency: usize,
    mem_floor_kib: u64,
    podman_idle: usize,
}

impl Config {
    fn from_env() -> Config {
        let words = |name: &str, default: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_string())
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let mut alive = env_list("SCALE_ALIVE", &[300, 1000]);
        alive.retain(|&n| n > 0);
        alive.sort_unstable();
        alive.dedup();
        Config {
            phases: words("SCALE_PHASES", "burst,alive,max"),
            alive,
            egress: words("SCALE_EGRESS", "deny,allow"),
            seq: env_usize("SCALE_SEQ", 200).max(1),
            execs: env_usize("SCALE_EXECS", 200).max(10),
            concurrency: env_list("SCALE_CONCURRENCY", &[1, 10, 50, 100]),
            burst_samples: env_usize("SCALE_BURST_SAMPLES", 60).max(1),
            fill_concurrency: env_usize("SCALE_FILL_CONCURRENCY", 1).max(1),
            max: env_usize("SCALE_MAX", 5000),
            max_concurrency: env_usize("SCALE_MAX_CONCURRENCY", 4).max(1),
            mem_floor_kib: env_usize("SCALE_MEM_FLOOR_MIB", 2048) as u64 * 1024,
            podman_idle: env_usize("SCALE_PODMAN_IDLE", 50),
        }
    }

    fn phase(&self, name: &str) -> bool {
        self.phases.iter().any(|p| p == name)
    }
}

/// What every phase needs.
struct Ctx {
    api: Api,
    cfg: Config,
    server_pid: u32,
    /// Whether the server has warm pools (`GET /v1/admin/pools` answers).
    pools: bool,
    /// Exec p50 with no sandbox alive (egress deny), for the `max` phase.
    exec_zero: Option<Duration>,
}

fn main() -> anyhow::Result<()> {
    raise_own_nofile();
    let cfg = Config::from_env();
    let state_dir = std::env::var_os("WARREN_BENCH_SCALE_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-scale"));
    let opts = ServerOptions {
        state_dir: state_dir.clone(),
        cgroup_parent: CGROUP_PARENT.into(),
        network: Some((NETWORK.0.into(), NETWORK.1.into())),
        extra_args: vec![],
        nofile: NOFILE,
        admin_key: ADMIN_KEY.into(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let server = BenchServer::start(&opts).await?;
        let api = server.api.clone();
        let mut task = tokio::spawn(run(api.clone(), cfg, server.pid()));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let outcome = tokio::select! {
            r = &mut task => Some(r.unwrap_or_else(|e| Err(anyhow!("the benchmark failed: {e}")))),
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
        };
        let outcome = match outcome {
            Some(outcome) => outcome,
            None => {
                task.abort();
                let _ = task.await;
                Err(anyhow!("interrupted"))
            }
        };
        eprintln!("scale: deleting every sandbox");
        let mut clean = cleanup(&api).await;
        drop(server);
        if !clean {
            // The server died under the load: a new one on the same state
            // deletes what the first left (sandboxes outlive their server).
            eprintln!(
                "scale: the server did not answer; starting it again to delete its sandboxes"
            );
            if let Ok(again) = BenchServer::start(&opts).await {
                clean = cleanup(&again.api).await;
            }
        }
        if clean {
            remove_network(NETWORK.0);
        } else {
            eprintln!("scale: sandboxes may be left under cgroup {CGROUP_PARENT}");
        }
        anyhow::Ok(outcome)
    });
    remove_containers(PODMAN_LABEL);
    unmount_pool(&state_dir);
    result?
}

/// Raises this process's open-file limit to its hard maximum (bursts keep
/// a connection per create).
fn raise_own_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid out pointer and value.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn run(api: Api, cfg: Config, server_pid: u32) -> anyhow::Result<()> {
    let pools = api.pool(TEMPLATE).await?.is_some();
    let mut ctx = Ctx {
        api,
        cfg,
        server_pid,
        pools,
        exec_zero: None,
    };
    if ctx.pools {
        ctx.api.set_pool(TEMPLATE, 0).await?;
        ctx.api
            .wait_pool(TEMPLATE, 0, Duration::from_secs(60))
            .await?;
    }
    // Warm-up: builds `base` on a new state dir (minutes, once) and the
    // first sandbox of each egress.
    eprintln!("scale: warming up (the first run builds `base`)");
    for egress in ["deny", "allow"] {
        for _ in 0..2 {
            let (r, id) = ctx.api.create_until_first_run(&create_body(egress)).await;
            if let Some(id) = id {
                ctx.api.delete(&id).await?;
            }
            r.context("a warm-up sandbox")?;
        }
    }
    print_header(&ctx);
    if ctx.cfg.phase("burst") {
        burst_phase(&ctx).await?;
    }
    if ctx.cfg.phase("alive") {
        alive_phase(&mut ctx).await?;
    }
    if ctx.cfg.phase("max") && ctx.cfg.max > 0 {
        max_phase(&ctx).await?;
    }
    Ok(())
}

fn create_body(egress: &str) -> Value {
    json!({
        "network": { "egress": egress },
        "timeout_secs": 0,
        "labels": { "bench": "scale" },
    })
}

fn print_header(ctx: &Ctx) {
    let commit = match std::env::var_os("WARREN_BIN") {
        Some(bin) => format!("WARREN_BIN={}", bin.to_string_lossy()),
        None => Command::new("git")
            .args(["-C", &warren_bench::repo_root().to_string_lossy()])
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
    };
    let sysctl = |p: &str| {
        std::fs::read_to_string(format!("/proc/sys/{p}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    println!("## scale benchmark\n");
    println!(
        "warren {commit}, {} CPUs, MemTotal {:.1} GiB, kernel.pid_max {}, server RLIMIT_NOFILE {}; {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        meminfo_kib("MemTotal").unwrap_or(0) as f64 / (1 << 20) as f64,
        sysctl("kernel/pid_max"),
        NOFILE.min(warren_bench::server::hard_nofile()),
        if ctx.pools {
            "pool: on this server"
        } else {
            "pool: not on this server"
        },
    );
}

/// Deletes every sandbox of the server and empties the pool; whether the
/// server answered and nothing is left.
async fn cleanup(api: &Api) -> bool {
    let _ = api.set_pool(TEMPLATE, 0).await;
    for _ in 0..3 {
        match api.list_ids().await {
            Ok(ids) if ids.is_empty() => return true,
            Ok(ids) => {
                let (_, failed) = api.delete_all(ids, 8).await;
                if failed > 0 {
                    eprintln!("scale: {failed} deletes failed; trying again");
                }
            }
            Err(e) => {
                eprintln!("scale: listing sandboxes: {e:#}");
                return false;
            }
        }
        // A create in flight when the run stopped may land meanwhile.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    api.list_ids().await.is_ok_and(|ids| ids.is_empty())
}

/// How a fill ended.
struct Filled {
    made: usize,
    took: Duration,
    stopped: Option<String>,
}

/// Makes idle sandboxes of `egress`, `conc` at a time, until `alive` holds
/// `target`; stops issuing at the first error or when MemAvailable falls
/// under the floor, and waits for those in flight.
async fn fill(
    ctx: &Ctx,
    alive: &mut Vec<String>,
    target: usize,
    egress: &str,
    conc: usize,
) -> Filled {
    let body = create_body(egress);
    let start = Instant::now();
    let (mut issued, mut made) = (alive.len(), 0);
    let mut stopped = None;
    let mut in_flight = FuturesUnordered::new();
    loop {
        while stopped.is_none() && issued < target && in_flight.len() < conc {
            if let Ok(avail) = meminfo_kib("MemAvailable") {
                if avail < ctx.cfg.mem_floor_kib {
                    stopped = Some(format!(
                        "MemAvailable {} MiB under the floor of {} MiB",
                        avail / 1024,
                        ctx.cfg.mem_floor_kib / 1024
                    ));
                    break;
                }
            }
            let (api, body) = (&ctx.api, &body);
            in_flight.push(async move { api.create(body).await });
            issued += 1;
        }
        match in_flight.next().await {
            None => break,
            Some(Ok(id)) => {
                alive.push(id);
                made += 1;
                if alive.len().is_multiple_of(500) {
                    eprintln!(
                        "scale: {} alive ({egress}), {:.0} s",
                        alive.len(),
                        start.elapsed().as_secs_f64()
                    );
                }
            }
            Some(Err(e)) => {
                stopped.get_or_insert(format!("create failed: {e:#}"));
            }
        }
    }
    Filled {
        made,
        took: start.elapsed(),
        stopped,
    }
}

/// Times `n` execs of `true` on `id`; the first tenth warms up.
async fn execs(api: &Api, id: &str, n: usize) -> anyhow::Result<Samples> {
    let mut s = Samples::default();
    for i in 0..n {
        let t = Instant::now();
        api.run_true(id).await?;
        if i >= n / 10 {
            s.push(t.elapsed());
        }
    }
    Ok(s)
}

/// One burst of `c` creates at once, each until its first run answers;
/// the sandboxes are deleted after.
async fn warren_burst(api: &Api, c: usize, into: &mut Samples, errors: &mut Vec<String>) {
    let body = create_body("deny");
    let results =
        futures::future::join_all((0..c).map(|_| api.create_until_first_run(&body))).await;
    let mut ids = Vec::new();
    let mut round = Samples::default();
    for (r, id) in results {
        match r {
            Ok(took) => {
                into.push(took);
                round.push(took);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
        ids.extend(id);
    }
    eprintln!(
        "scale: a burst of {c}: p50 {} p90 {} max {}",
        ms(round.p50()),
        ms(round.quantile(0.9)),
        ms(round.quantile(1.0))
    );
    api.delete_all(ids, 8).await;
}

/// `c` podman containers at once, each until its first command prints.
async fn podman_burst(c: usize, into: &mut Samples, errors: &mut Vec<String>) {
    let results = tokio::task::spawn_blocking(move || {
        let threads: Vec<_> = (0..c)
            .map(|_| std::thread::spawn(podman_first_answer))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(anyhow!("podman thread"))))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for r in results {
        match r {
            Ok(took) => into.push(took),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
}

async fn burst_phase(ctx: &Ctx) -> anyhow::Result<()> {
    let podman = tokio::task::spawn_blocking(ensure_podman_image).await?;
    if let Err(e) = &podman {
        eprintln!("scale: no podman peer: {e:#}");
    }
    println!("### concurrent creates (each until its first `processes/run` answers; egress deny; podman: `run --rm`, --network none, until `echo` prints)\n");
    println!("| at once | warren + pool p50 / p99 | vs podman (p50, p99) | warren, no pool p50 / p99 | vs podman (p50, p99) | podman + runc p50 / p99 | errors (pool, no pool, podman) | n |");
    println!("|---|---|---|---|---|---|---|---|");
    for &c in &ctx.cfg.concurrency {
        if c == 0 {
            continue;
        }
        let rounds = ctx.cfg.burst_samples.div_ceil(c).clamp(1, 20);
        eprintln!("scale: {c} at once, {rounds} rounds");
        let (mut pooled, mut cold, mut peer) =
            (Samples::default(), Samples::default(), Samples::default());
        let (mut e_pool, mut e_cold, mut e_peer) = (Vec::new(), Vec::new(), Vec::new());
        let mut pool_note = None;
        for _ in 0..rounds {
            if ctx.pools {
                ctx.api.set_pool(TEMPLATE, c as u64).await?;
                let timeout = Duration::from_secs(60 + c as u64);
                let state = ctx.api.wait_pool(TEMPLATE, c as u64, timeout).await?;
                if state.ready < c as u64 {
                    pool_note = Some(format!("pool had {} of {c} ready", state.ready));
                }
                warren_burst(&ctx.api, c, &mut pooled, &mut e_pool).await;
                ctx.api.set_pool(TEMPLATE, 0).await?;
                ctx.api
                    .wait_pool(TEMPLATE, 0, Duration::from_secs(60))
                    .await?;
            }
            warren_burst(&ctx.api, c, &mut cold, &mut e_cold).await;
            if podman.is_ok() {
                podman_burst(c, &mut peer, &mut e_peer).await;
            }
        }
        let vs = |s: &Samples| {
            if s.is_empty() || peer.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{}, {}",
                    ratio(s.p50(), peer.p50()),
                    ratio(s.p99(), peer.p99())
                )
            }
        };
        let pool_cell = if ctx.pools {
            p50_p99(&pooled) + &pool_note.map(|n| format!(" ({n})")).unwrap_or_default()
        } else {
            "pool: not on this server".into()
        };
        println!(
            "| {c} | {pool_cell} | {} | {} | {} | {} | {}, {}, {} | {} |",
            vs(&pooled),
            p50_p99(&cold),
            vs(&cold),
            p50_p99(&peer),
            e_pool.len(),
            e_cold.len(),
            e_peer.len(),
            rounds * c
        );
        for e in e_pool.iter().chain(&e_cold).chain(&e_peer).take(3) {
            eprintln!("scale: error: {e}");
        }
    }
    println!();
    Ok(())
}

/// Figures at one number of alive sandboxes.
struct Level {
    alive: usize,
    create: Samples,
    /// Creates served by a warm pool of one, refilled before each.
    pooled: Samples,
    delete: Samples,
    exec: Samples,
    errors: Vec<String>,
    fill: Option<Filled>,
    server_rss_kib: u64,
    server_fds: usize,
}

/// Sequential creates and deletes (cold, then from a warm pool of one when
/// the server has pools), then execs on one more sandbox.
async fn measure_level(ctx: &Ctx, alive: usize, egress: &str) -> Level {
    let body = create_body(egress);
    let mut level = Level {
        alive,
        create: Samples::default(),
        pooled: Samples::default(),
        delete: Samples::default(),
        exec: Samples::default(),
        errors: Vec::new(),
        fill: None,
        server_rss_kib: rss_kib(ctx.server_pid).unwrap_or(0),
        server_fds: open_files(ctx.server_pid),
    };
    for _ in 0..ctx.cfg.seq {
        let (r, id) = ctx.api.create_until_first_run(&body).await;
        match r {
            Ok(took) => level.create.push(took),
            Err(e) => level.errors.push(format!("{e:#}")),
        }
        if let Some(id) = id {
            let t = Instant::now();
            match ctx.api.delete(&id).await {
                Ok(()) => level.delete.push(t.elapsed()),
                Err(e) => level.errors.push(format!("{e:#}")),
            }
        }
    }
    if ctx.pools {
        if let Err(e) = pooled_creates(ctx, &body, &mut level.pooled).await {
            level.errors.push(format!("{e:#}"));
        }
    }
    match ctx.api.create(&body).await {
        Ok(id) => {
            match execs(&ctx.api, &id, ctx.cfg.execs).await {
                Ok(s) => level.exec = s,
                Err(e) => level.errors.push(format!("{e:#}")),
            }
            let _ = ctx.api.delete(&id).await;
        }
        Err(e) => level.errors.push(format!("{e:#}")),
    }
    level
}

/// `SCALE_SEQ` sequential creates from a warm pool of one, each once the
/// pool is full again; the pool is off after.
async fn pooled_creates(ctx: &Ctx, body: &Value, into: &mut Samples) -> anyhow::Result<()> {
    ctx.api.set_pool(TEMPLATE, 1).await?;
    for _ in 0..ctx.cfg.seq {
        ctx.api
            .wait_pool(TEMPLATE, 1, Duration::from_secs(60))
            .await?;
        let (r, id) = ctx.api.create_until_first_run(body).await;
        if let Some(id) = id {
            ctx.api.delete(&id).await?;
        }
        into.push(r?);
    }
    ctx.api.set_pool(TEMPLATE, 0).await?;
    ctx.api
        .wait_pool(TEMPLATE, 0, Duration::from_secs(60))
        .await?;
    Ok(())
}

/// One egress's figures at every count of alive sandboxes.
fn print_levels(egress: &str, levels: &[Level], pools: bool) {
    let Some(zero) = levels.first() else { return };
    for l in levels {
        let fill = l.fill.as_ref().map_or("-".to_string(), |f| {
            let rate = f.made as f64 / f.took.as_secs_f64().max(1e-9);
            let stop = f
                .stopped
                .as_ref()
                .map_or(String::new(), |s| format!(", stopped: {s}"));
            format!(
                "+{} in {:.1} s ({rate:.0}/s){stop}",
                f.made,
                f.took.as_secs_f64()
            )
        });
        let pooled = if !pools {
            "pool: not on this server".to_string()
        } else {
            format!(
                "{} ({}, {})",
                p50_p99(&l.pooled),
                ratio(l.pooled.p50(), zero.pooled.p50()),
                ratio(l.pooled.p99(), zero.pooled.p99())
            )
        };
        println!(
            "| {egress} | {} | {} | {}, {} | {pooled} | {} ({}) | {} / {} ({}) | {:.0} MiB ({}), {} | {} | {fill} |",
            l.alive,
            p50_p99(&l.create),
            ratio(l.create.p50(), zero.create.p50()),
            ratio(l.create.p99(), zero.create.p99()),
            ms(l.delete.p50()),
            ratio(l.delete.p50(), zero.delete.p50()),
            ms(l.exec.p50()),
            ms(l.exec.p99()),
            ratio(l.exec.p50(), zero.exec.p50()),
            l.server_rss_kib as f64 / 1024.0,
            ratio_f(l.server_rss_kib as f64, zero.server_rss_kib as f64),
            l.server_fds,
            l.errors.len(),
        );
        for e in l.errors.iter().take(3) {
            eprintln!("scale: error: {e}");
        }
    }
}

async fn alive_phase(ctx: &mut Ctx) -> anyhow::Result<()> {
    println!("### sequential creates and execs with sandboxes alive (cold: pool off)\n");
    println!("| egress | alive | create → first run p50 / p99 | vs 0 alive (p50, p99) | the same from a warm pool of one (vs 0) | delete p50 (vs 0) | exec `true` p50 / p99 (vs 0) | server RSS (vs 0), open files | errors | making the alive ones (this step) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut memory = Vec::new();
    let largest = ctx.cfg.alive.last().copied().unwrap_or(0);
    for egress in ctx.cfg.egress.clone() {
        let mut alive = Vec::new();
        eprintln!("scale: egress {egress}, 0 alive");
        let avail_before = meminfo_kib("MemAvailable")?;
        let mut levels = vec![measure_level(ctx, 0, &egress).await];
        for n in ctx.cfg.alive.clone() {
            eprintln!("scale: egress {egress}, making {n} alive");
            let filled = fill(ctx, &mut alive, n, &egress, ctx.cfg.fill_concurrency).await;
            let stopped = filled.stopped.is_some();
            if n == largest || stopped {
                let what = format!("{} idle sandboxes, egress {egress}", alive.len());
                memory.push(
                    Memory::measure(what, avail_before, alive.len(), Some(CGROUP_PARENT)).await,
                );
            }
            let mut level = measure_level(ctx, alive.len(), &egress).await;
            level.fill = Some(filled);
            levels.push(level);
            if stopped {
                break;
            }
        }
        if egress == "deny" {
            ctx.exec_zero = Some(levels[0].exec.p50());
        }
        print_levels(&egress, &levels, ctx.pools);
        let count = alive.len();
        let (took, failed) = ctx.api.delete_all(alive, 8).await;
        eprintln!(
            "scale: deleted {count} ({failed} failed) in {:.1} s",
            took.as_secs_f64()
        );
    }
    println!();
    let peer = match ctx.cfg.podman_idle {
        0 => None,
        n => podman_idle(n).await,
    };
    println!("### memory per idle sandbox\n");
    println!("| what | host: MemAvailable drop / count (vs podman) | cgroups: usage / count |");
    println!("|---|---|---|");
    for m in &memory {
        println!("{}", m.row(peer.as_ref().map(|p| p.host_kib)));
    }
    if let Some(p) = &peer {
        println!("{}", p.row(None));
    }
    println!();
    Ok(())
}

/// The peer's memory per idle container: `n` detached `sleep infinity`
/// containers (each with its conmon), removed after.
async fn podman_idle(n: usize) -> Option<Memory> {
    let what = format!("podman + runc, {n} idle containers (`sleep infinity`, with conmon)");
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        ensure_podman_image()?;
        let before = meminfo_kib("MemAvailable")?;
        start_idle_containers(n, PODMAN_LABEL)?;
        Ok(before)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    let peer = match made {
        Ok(before) => Some(Memory::measure(what, before, n, None).await),
        Err(e) => {
            eprintln!("scale: podman's idle containers: {e:#}");
            None
        }
    };
    tokio::task::spawn_blocking(|| remove_containers(PODMAN_LABEL))
        .await
        .ok();
    peer
}

async fn max_phase(ctx: &Ctx) -> anyhow::Result<()> {
    let target = ctx.cfg.max;
    let exec_zero = match ctx.exec_zero {
        Some(z) => z,
        None => measure_level(ctx, 0, "deny").await.exec.p50(),
    };
    eprintln!("scale: making up to {target} idle sandboxes");
    let avail_before = meminfo_kib("MemAvailable")?;
    let mut alive = Vec::new();
    let filled = fill(ctx, &mut alive, target, "deny", ctx.cfg.max_concurrency).await;
    let n = alive.len();
    println!(
        "### most idle sandboxes (egress deny, {} at a time, pool off)\n",
        ctx.cfg.max_concurrency
    );
    println!("| what | figure | vs |\n|---|---|---|");
    println!(
        "| idle sandboxes made | {n} of {target} in {:.1} s ({:.0}/s) | {:.2}x the target |",
        filled.took.as_secs_f64(),
        filled.made as f64 / filled.took.as_secs_f64().max(1e-9),
        n as f64 / target.max(1) as f64
    );
    if let Some(why) = &filled.stopped {
        println!("| stopped early | {why} | |");
    }
    if n > 0 {
        let m = Memory::measure(String::new(), avail_before, n, Some(CGROUP_PARENT)).await;
        println!(
            "| memory per sandbox at {n}: host (MemAvailable drop / count), cgroups (usage / count) | {} | {} |",
            mib(m.host_kib),
            m.cgroups_kib.map_or("-".into(), |(usage, rss)| format!("{} ({} anonymous)", mib(usage), mib(rss)))
        );
        match execs(&ctx.api, &alive[n / 2], ctx.cfg.execs).await {
            Ok(s) => println!(
                "| exec `true` with {n} alive, p50 / p99 | {} | {} the 0-alive p50 |",
                p50_p99(&s),
                ratio(s.p50(), exec_zero)
            ),
            Err(e) => println!("| exec `true` with {n} alive | failed: {e:#} | |"),
        }
        println!(
            "| server at {n}: RSS, open files | {:.0} MiB, {} | |",
            rss_kib(ctx.server_pid).unwrap_or(0) as f64 / 1024.0,
            open_files(ctx.server_pid)
        );
        println!(
            "| host tasks (processes and threads) at {n} | {} | kernel.pid_max {} |",
            host_tasks(),
            std::fs::read_to_string("/proc/sys/kernel/pid_max")
                .map_or(String::new(), |s| s.trim().into())
        );
    }
    let (took, failed) = ctx.api.delete_all(alive, 8).await;
    println!(
        "| deleting them, 8 at a time | {:.1} s ({:.0}/s), {failed} failed | |",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64().max(1e-9)
    );
    println!();
    Ok(())
}
