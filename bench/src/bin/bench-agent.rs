//! Agent benchmark (issue 2): `warren agent` against rivet's sandbox-agent 0.4.2.
//!
//! - exec of `true` through `POST /v1/processes/run`, keep-alive loopback
//!   round trip, interleaved with the peer so both see the same machine;
//! - first output byte of a spawned process through `logs?follow=true`;
//! - file write and read of 256 MiB;
//! - idle RSS of both daemons.
//!
//! Run: `scripts/bench.sh agent` (builds release, installs the peer from npm).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use warren_bench::{
    free_port, print_compare, print_row, rss_anon_kib, rss_kib, wait_ready, warren_bin, Guard,
    Samples,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_N", 2000);
    let peer_bin = std::env::var("SANDBOX_AGENT_BIN").context(
        "set SANDBOX_AGENT_BIN to rivet's sandbox-agent 0.4.2 (scripts/bench.sh installs it)",
    )?;
    let workdir = tempdir()?;

    let wport = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args([
        "agent",
        "--no-token",
        "--listen",
        &format!("127.0.0.1:{wport}"),
    ])
    .arg("--workdir")
    .arg(&workdir);
    let warren = Guard::spawn(cmd)?;

    let pport = free_port();
    let mut cmd = Command::new(&peer_bin);
    cmd.args([
        "--no-token",
        "server",
        "--no-telemetry",
        "-p",
        &pport.to_string(),
    ]);
    let peer = Guard::spawn(cmd)?;

    let wbase = format!("http://127.0.0.1:{wport}");
    let pbase = format!("http://127.0.0.1:{pport}");
    let whttp = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let phttp = reqwest::Client::builder().tcp_nodelay(true).build()?;
    wait_ready(
        &whttp,
        &format!("{wbase}/v1/health"),
        Duration::from_secs(10),
    )
    .await?;
    wait_ready(
        &phttp,
        &format!("{pbase}/v1/health"),
        Duration::from_secs(20),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let warren_idle = rss_kib(warren.pid());
    let peer_idle = rss_kib(peer.pid());
    let warren_anon = rss_anon_kib(warren.pid());
    let peer_anon = rss_anon_kib(peer.pid());

    println!("## agent benchmark ({n} iterations)\n");
    println!("| what | warren | peer | ratio | |\n|---|---|---|---|---|");

    // 1. exec of `true`.
    let wreq = serde_json::json!({"argv": ["true"]});
    let preq = serde_json::json!({"command": "true"});
    let (mut ws, mut ps) = (Samples::default(), Samples::default());
    for i in 0..(n + n / 10) {
        let w = time_post(&whttp, &format!("{wbase}/v1/processes/run"), &wreq).await?;
        let p = time_post(&phttp, &format!("{pbase}/v1/processes/run"), &preq).await?;
        if i >= n / 10 {
            ws.push(w);
            ps.push(p);
        }
    }
    print_compare(
        "exec `true` (run, keep-alive)",
        &ws,
        "sandbox-agent 0.4.2",
        &ps,
    );

    // Also the shell form, which is what most callers send.
    let wreq = serde_json::json!({"cmd": "true"});
    let mut wsh = Samples::default();
    for _ in 0..n / 4 {
        wsh.push(time_post(&whttp, &format!("{wbase}/v1/processes/run"), &wreq).await?);
    }
    print_row("warren exec `sh -c true`", &wsh);

    // 2. first output byte through follow.
    let mut first = Samples::default();
    for _ in 0..env_usize("BENCH_FOLLOW_N", 200) {
        first.push(first_output_byte(&whttp, &wbase).await?);
    }
    print_row("warren spawn → first output byte via follow", &first);

    // 3. 256 MiB write and read.
    let size: usize = 256 << 20;
    let (mut wr, mut rd) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (w, r) = file_round_trip(&whttp, &wbase, size).await?;
        wr.push(w);
        rd.push(r);
    }
    wr.sort_by(f64::total_cmp);
    rd.sort_by(f64::total_cmp);
    println!(
        "| warren file 256 MiB | write {:.2} GB/s | read {:.2} GB/s | median of 5 | |",
        wr[2], rd[2]
    );

    println!(
        "| idle RSS | warren {} KiB | sandbox-agent {} KiB | | |",
        warren_idle.unwrap_or(0),
        peer_idle.unwrap_or(0)
    );
    println!(
        "| idle private RSS (RssAnon) | warren {} KiB | sandbox-agent {} KiB | | |",
        warren_anon.unwrap_or(0),
        peer_anon.unwrap_or(0)
    );
    let after = rss_kib(warren.pid()).unwrap_or(0);
    println!("| warren RSS after the run | {after} KiB | | | |");
    std::fs::remove_dir_all(&workdir).ok();
    Ok(())
}

async fn time_post(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let resp = http.post(url).json(body).send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    let took = start.elapsed();
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(took)
}

async fn first_output_byte(http: &reqwest::Client, base: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let resp = http
        .post(format!("{base}/v1/processes"))
        .json(&serde_json::json!({"cmd": "echo x; exec sleep 30"}))
        .send()
        .await?;
    let info: serde_json::Value = resp.json().await?;
    let id = info["id"].as_str().context("process id")?.to_string();
    let resp = http
        .get(format!("{base}/v1/processes/{id}/logs?follow=true"))
        .send()
        .await?;
    let mut stream = resp.bytes_stream();
    let mut seen = Vec::new();
    let took = loop {
        let Some(chunk) = stream.next().await else {
            bail!("follow stream of {id} ended before any output");
        };
        seen.extend_from_slice(&chunk?);
        if seen.windows(13).any(|w| w == b"event: output") {
            break start.elapsed();
        }
    };
    drop(stream);
    http.delete(format!("{base}/v1/processes/{id}?force=true"))
        .send()
        .await?;
    Ok(took)
}

/// Writes then reads `size` bytes; returns (write GB/s, read GB/s).
async fn file_round_trip(
    http: &reqwest::Client,
    base: &str,
    size: usize,
) -> anyhow::Result<(f64, f64)> {
    let chunk = bytes::Bytes::from(vec![0x5au8; 1 << 20]);
    let chunks = size / chunk.len();
    let body =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let url = format!("{base}/v1/files?path=bench.bin");
    let start = Instant::now();
    let resp = http
        .put(&url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("PUT answered {}", resp.status());
    }
    let write = size as f64 / start.elapsed().as_secs_f64() / 1e9;
    let start = Instant::now();
    let resp = http.get(&url).send().await?;
    let mut stream = resp.bytes_stream();
    let mut got = 0usize;
    while let Some(c) = stream.next().await {
        got += c?.len();
    }
    let read = size as f64 / start.elapsed().as_secs_f64() / 1e9;
    if got != size {
        bail!("read {got} bytes, wrote {size}");
    }
    Ok((write, read))
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("warren-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
