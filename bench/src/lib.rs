//! Shared pieces of the benchmark programs: latency statistics, child
//! processes that are killed on drop, and locating the binaries under test.
//!
//! Every benchmark prints a table with medians, p99 and the ratio against
//! the peer measured in the same run; the README quotes those tables.

pub mod json_api;
pub mod memory;
pub mod podman;
pub mod rfb;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Latency samples of one measured operation.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    values: Vec<Duration>,
}

impl Samples {
    /// Records one sample.
    pub fn push(&mut self, d: Duration) {
        self.values.push(d);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The q-quantile (0.0..=1.0), nearest-rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.values.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// Median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Prints one row comparing Warren with a peer: p50, p99 and the p50 ratio.
pub fn print_compare(what: &str, ours: &Samples, peer_name: &str, peer: &Samples) {
    let ratio = ours.p50().as_secs_f64() / peer.p50().as_secs_f64().max(1e-9);
    println!(
        "| {what} | warren p50 {} p99 {} | {peer_name} p50 {} p99 {} | ratio (p50) {ratio:.2}x | n={} |",
        ms(ours.p50()),
        ms(ours.p99()),
        ms(peer.p50()),
        ms(peer.p99()),
        ours.len()
    );
}

/// Prints one row of Warren-only figures.
pub fn print_row(what: &str, s: &Samples) {
    println!(
        "| {what} | p50 {} | p99 {} | n={} |",
        ms(s.p50()),
        ms(s.p99()),
        s.len()
    );
}

/// A child process stopped (SIGTERM, then SIGKILL) and reaped when dropped.
pub struct Guard {
    /// The child.
    pub child: Child,
}

impl Guard {
    /// Spawns `cmd` with stdout/stderr sent to /dev/null unless `BENCH_VERBOSE` is set.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Guard> {
        if std::env::var_os("BENCH_VERBOSE").is_none() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = cmd.spawn()?;
        Ok(Guard { child })
    }

    /// Spawns `cmd` with stdout and stderr appended to `log` (to the
    /// terminal when `BENCH_VERBOSE` is set).
    pub fn spawn_logged(mut cmd: Command, log: &Path) -> anyhow::Result<Guard> {
        if std::env::var_os("BENCH_VERBOSE").is_none() {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        let child = cmd.spawn()?;
        Ok(Guard { child })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    /// SIGTERM first, so that a server stops gracefully (its warm pool's
    /// sandboxes, which no list shows, are destroyed); SIGKILL after
    /// [`GUARD_GRACE`].
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        if unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) } == 0 {
            let deadline = std::time::Instant::now() + GUARD_GRACE;
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a [`Guard`]ed process has between SIGTERM and SIGKILL.
pub const GUARD_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Resident set size of a process in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// Private (anonymous) resident memory of a process in KiB (RssAnon): what
/// each extra copy of the process costs, since file-backed pages of the same
/// binary are shared between copies.
pub fn rss_anon_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "RssAnon")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The repository root (the bench crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// The `warren` binary to measure: `$WARREN_BIN`, else target/release/warren.
pub fn warren_bin() -> PathBuf {
    std::env::var_os("WARREN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/warren"))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `url` until it answers 2xx or `timeout` passes.
pub async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            anyhow::bail!("{url} did not answer within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An integer from the environment, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A comma-separated list of integers from the environment (`1,10,50`),
/// else `default`; an empty value is an empty list.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

/// A field of /proc/meminfo in KiB (`MemAvailable`).
pub fn meminfo_kib(field: &str) -> anyhow::Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo")?;
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{field} in /proc/meminfo"))
}

/// Memory charged to the cgroup `parent` (a server's `--cgroup-parent`, so
/// all its sandboxes): usage (page cache included) and anonymous memory, in
/// bytes; cgroup v1 (hybrid) or v2.
pub fn cgroup_memory(parent: &str) -> Option<(u64, u64)> {
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let stat_field = |stat: &str, key: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let v1 = Path::new("/sys/fs/cgroup/memory").join(parent);
    if v1.is_dir() {
        let usage = read(&v1.join("memory.usage_in_bytes"))?
            .trim()
            .parse()
            .ok()?;
        let rss = stat_field(&read(&v1.join("memory.stat"))?, "total_rss")?;
        return Some((usage, rss));
    }
    let v2 = Path::new("/sys/fs/cgroup").join(parent);
    let usage = read(&v2.join("memory.current"))?.trim().parse().ok()?;
    let anon = stat_field(&read(&v2.join("memory.stat"))?, "anon")?;
    Some((usage, anon))
}

/// Ratio `a / b` as `1.23x`, or `-` without a reference.
pub fn ratio_f(a: f64, b: f64) -> String {
    if a <= 0.0 || b <= 0.0 {
        "-".into()
    } else {
        format!("{:.2}x", a / b)
    }
}

/// Latency ratio `a / b`.
pub fn ratio(a: Duration, b: Duration) -> String {
    ratio_f(a.as_secs_f64(), b.as_secs_f64())
}

/// `p50 / p99`, or `-` without samples.
pub fn p50_p99(s: &Samples) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        format!("{} / {}", ms(s.p50()), ms(s.p99()))
    }
}

/// KiB as MiB with two decimals.
pub fn mib(kib: f64) -> String {
    format!("{:.2} MiB", kib / 1024.0)
}

/// Open file descriptors of `pid`.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Tasks on the host: the total of /proc/loadavg's `running/total`.
pub fn host_tasks() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            l.split_whitespace()
                .nth(3)?
                .split('/')
                .nth(1)
                .map(String::from)
        })
        .unwrap_or_default()
}
