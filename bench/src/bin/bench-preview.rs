//! Preview URLs against going to the same server directly, and the cost of
//! networking to sandbox start.
//!
//! Starts a `warren server` (release build, `$WARREN_BIN`) with a state
//! directory of its own (`$WARREN_BENCH_STATE`, default
//! `/var/lib/warren-bench`; the first run builds the `base` template) on a
//! sandbox network of its own (`wb0`, `10.215.0.0/24`), creates a sandbox and
//! runs a second `warren agent` in it (the binary uploaded there) on
//! `127.0.0.1:8000` as the measured
//! HTTP server (keep-alive, a few microseconds per request: the proxy's cost
//! is not hidden behind a slow server). Then, in the same run:
//! - `direct`: a client inside the sandbox's network namespace, to
//!   `127.0.0.1:8000`;
//! - `preview (host)`: `http://8000-<id>.localhost:<port>/v1/health` through
//!   the server (Host routing, token check, the agent's tunnel);
//! - `preview (path)`: `/v1/sandboxes/<id>/ports/8000/v1/health`.
//!
//! Each: sequential requests on one keep-alive connection (p50, p99) and
//! requests per second from 16 concurrent connections. Then sandbox creation
//! until it answers, with egress `deny` (loopback only) and `allow` (veth,
//! rules, resolver), sequentially.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use warren_bench::{free_port, ms, print_row, wait_ready, warren_bin, Guard, Samples};

const ADMIN_KEY: &str = "wadm_bench-admin-key-0123456789";
const SEQUENTIAL: usize = 2000;
const CONCURRENCY: usize = 16;
const LOAD_SECS: u64 = 5;
const CREATES: usize = 30;

fn main() -> anyhow::Result<()> {
    let state_dir = std::env::var_os("WARREN_BENCH_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench"));
    std::fs::create_dir_all(&state_dir)?;
    let port = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        // Cold starts: bench-scale times creates from the warm pool.
        .args(["--pool", "base=0"])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--cgroup-parent", "warren-bench"])
        .args(["--network-name", "wb", "--network-cidr", "10.215.0.0/24"])
        .env("WARREN_ADMIN_KEY", ADMIN_KEY);
    let server = Guard::spawn(cmd)?;
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&base, port, &state_dir));
    drop(server);
    // The server leaves its sandboxes running; remove what we made.
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", "wb"])
        .status();
    let _ = Command::new("ip").args(["link", "del", "wb0"]).status();
    result
}

async fn run(base: &str, port: u16, state_dir: &std::path::Path) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    // The first start may build `base` (minutes).
    wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(60)).await?;
    let api = Api {
        http: http.clone(),
        base: base.to_string(),
    };
    let sandbox = api.create(json!({ "timeout_secs": 0 })).await?;
    let id = sandbox["id"].as_str().context("sandbox id")?.to_string();
    let outcome = measure(&api, port, state_dir, &id).await;
    api.delete(&id).await;
    outcome
}

async fn measure(
    api: &Api,
    port: u16,
    state_dir: &std::path::Path,
    id: &str,
) -> anyhow::Result<()> {
    // The measured server: this `warren` binary, uploaded into the sandbox
    // (the sandbox's agent runs in its init, with no binary in its tree).
    let binary = tokio::fs::read(warren_bin()).await?;
    let resp = api
        .http
        .put(format!(
            "{}/v1/sandboxes/{id}/files?path=/usr/local/bin/warren&mode=755",
            api.base
        ))
        .bearer_auth(ADMIN_KEY)
        .body(binary)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("uploading warren: {} {}", resp.status(), resp.text().await?);
    }
    api.call(
        "POST",
        &format!("/v1/sandboxes/{id}/processes"),
        Some(json!({ "argv": ["/usr/local/bin/warren", "agent", "--listen", "127.0.0.1:8000", "--no-token"] })),
    )
    .await?;
    let preview = api
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/previews"),
            Some(json!({ "port": 8000 })),
        )
        .await?;
    let token = preview["token"].as_str().context("token")?.to_string();
    let host = preview["url"]
        .as_str()
        .context("url")?
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let pid: i32 = std::fs::read_to_string(state_dir.join("run").join(id).join("pid"))?
        .trim()
        .parse()?;

    let via_host = Target {
        url: format!("http://127.0.0.1:{port}/v1/health"),
        host: Some(host),
        token: Some(token.clone()),
    };
    let via_path = Target {
        url: format!("http://127.0.0.1:{port}/v1/sandboxes/{id}/ports/8000/v1/health"),
        host: None,
        token: Some(token),
    };
    let direct = Target {
        url: "http://127.0.0.1:8000/v1/health".into(),
        host: None,
        token: None,
    };
    let warm = Instant::now() + Duration::from_secs(20);
    while probe_in_netns(pid, direct.clone()).is_err() {
        if Instant::now() > warm {
            bail!("the agent on port 8000 in the sandbox did not come up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    println!("## Preview URL vs direct (GET /v1/health of a `warren agent` inside the sandbox)\n");
    println!("| path | p50 | p99 | n | req/s ({CONCURRENCY} connections, {LOAD_SECS} s) |");
    println!("|---|---|---|---|---|");
    let direct_stats = in_netns(pid, direct)?;
    let host_stats = load(via_host).await?;
    let path_stats = load(via_path).await?;
    for (name, (samples, rps)) in [
        ("direct (in the sandbox's netns)", &direct_stats),
        ("preview by Host", &host_stats),
        ("preview by path", &path_stats),
    ] {
        println!(
            "| {name} | {} | {} | {} | {rps:.0} |",
            ms(samples.p50()),
            ms(samples.p99()),
            samples.len()
        );
    }
    let added = host_stats.0.p50().saturating_sub(direct_stats.0.p50());
    println!(
        "\nadded p50 latency through a preview URL: {} ; throughput {:.0}% of direct\n",
        ms(added),
        100.0 * host_stats.1 / direct_stats.1.max(1.0)
    );

    println!("## Sandbox start, create until its first command can run (sequential)\n");
    println!("| egress | p50 | p99 | n |");
    println!("|---|---|---|---|");
    for egress in ["deny", "allow"] {
        let mut samples = Samples::default();
        for _ in 0..CREATES {
            let started = Instant::now();
            let sandbox = api
                .create(json!({ "network": { "egress": egress } }))
                .await?;
            samples.push(started.elapsed());
            let sid = sandbox["id"].as_str().context("id")?.to_string();
            api.delete(&sid).await;
        }
        print_row(egress, &samples);
    }
    Ok(())
}

#[derive(Clone)]
struct Target {
    url: String,
    host: Option<String>,
    token: Option<String>,
}

impl Target {
    fn request(&self, http: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut req = http.get(&self.url);
        if let Some(host) = &self.host {
            req = req.header(reqwest::header::HOST, host);
        }
        if let Some(token) = &self.token {
            req = req.header("x-warren-preview-token", token);
        }
        req
    }
}

/// Sequential latency on one connection, then requests per second from
/// [`CONCURRENCY`] connections for [`LOAD_SECS`].
async fn load(target: Target) -> anyhow::Result<(Samples, f64)> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    for _ in 0..50 {
        check(target.request(&http).send().await?)?;
    }
    let mut samples = Samples::default();
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        check(target.request(&http).send().await?)?;
        samples.push(started.elapsed());
    }
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(LOAD_SECS);
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (target, done) = (target.clone(), done.clone());
        let http = reqwest::Client::builder().no_proxy().build()?;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if target
                    .request(&http)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok((
        samples,
        done.load(Ordering::Relaxed) as f64 / LOAD_SECS as f64,
    ))
}

fn check(resp: reqwest::Response) -> anyhow::Result<()> {
    if !resp.status().is_success() {
        bail!("{} answered {}", resp.url(), resp.status());
    }
    Ok(())
}

/// Runs `f` on a thread in the network namespace of `pid` with a runtime of
/// its own, so that every socket it opens is in that namespace.
fn netns_thread<T: Send + 'static>(
    pid: i32,
    f: impl FnOnce(tokio::runtime::Runtime) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        // SAFETY: setns changes this thread's network namespace only; the
        // thread ends after `f`.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns: {}", std::io::Error::last_os_error());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        f(rt)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the netns thread panicked"))?
}

fn in_netns(pid: i32, target: Target) -> anyhow::Result<(Samples, f64)> {
    netns_thread(pid, move |rt| rt.block_on(load(target)))
}

fn probe_in_netns(pid: i32, target: Target) -> anyhow::Result<()> {
    netns_thread(pid, move |rt| {
        rt.block_on(async move {
            let http = reqwest::Client::builder().no_proxy().build()?;
            check(target.request(&http).send().await?)
        })
    })
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create(&self, body: Value) -> anyhow::Result<Value> {
        self.call("POST", "/v1/sandboxes", Some(body)).await
    }

    async fn delete(&self, id: &str) {
        let _ = self
            .call("DELETE", &format!("/v1/sandboxes/{id}"), None)
            .await;
    }
}
