//! Coding-agent sessions benchmark (issue 11), through a real server:
//!
//! 1. **mock, create → first event**: `POST /v1/sandboxes/{id}/sessions`
//!    with the mock agent and a prompt, then the session's SSE stream
//!    (`?follow=true`) until its first event arrives; `BENCH_N` rounds
//!    (default 100), p50 and p99.
//! 2. **mock, events per second through SSE**: one session given
//!    `BENCH_TURNS` prompts (default 200, about 25 events each) while a
//!    client follows its SSE stream; events received over the time from
//!    the first prompt to the last turn's `usage`.
//! 3. **Claude Code, time to the first `item.delta`** against the scripted
//!    Anthropic stand-in in the same sandbox (`agents` template, built
//!    from `templates/agents.toml` on the first run): through Warren
//!    (create → first `item.delta` on the SSE stream) against `claude -p
//!    --output-format stream-json --include-partial-messages` run directly
//!    in the sandbox (spawn → first `content_block_delta` line, timed
//!    inside the sandbox). `BENCH_CLAUDE_N` rounds (default 10). The
//!    target: Warren within 1.1× of direct plus 20 ms.
//!
//! Starts a `warren server` (release build, `$WARREN_BIN`) with a state
//! directory of its own (`$WARREN_BENCH_SESSIONS_STATE`, default
//! `/var/lib/warren-bench-sessions`) and no outbound network.
//! Run: `scripts/bench.sh sessions`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use warren_bench::json_api::JsonApi;
use warren_bench::{
    env_usize, free_port, print_compare, print_row, repo_root, wait_ready, warren_bin, Guard,
    Samples,
};

const ADMIN_KEY: &str = "wadm_bench-admin-key-0123456789";
const STANDIN_PORT: u16 = 4010;

fn main() -> anyhow::Result<()> {
    let state_dir = std::env::var_os("WARREN_BENCH_SESSIONS_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-sessions"));
    std::fs::create_dir_all(&state_dir)?;
    let port = free_port();
    let mut cmd = Command::new(warren_bin());
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        // Cold starts: bench-scale times creates from the warm pool.
        .args(["--pool", "base=0"])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--cgroup-parent", "warren-bench-sessions", "--no-network"])
        .env("WARREN_ADMIN_KEY", ADMIN_KEY);
    let server = Guard::spawn(cmd)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&format!("http://127.0.0.1:{port}")));
    drop(server);
    result
}

/// Opens a session's SSE stream after `after`.
async fn follow(api: &JsonApi, sbx: &str, ses: &str, after: u64) -> anyhow::Result<EventStream> {
    let resp = api
        .http()
        .get(format!(
            "{}/v1/sandboxes/{sbx}/sessions/{ses}/events?follow=true&after={after}",
            api.base()
        ))
        .bearer_auth(api.key())
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("events: {}", resp.status());
    }
    Ok(EventStream {
        body: resp.bytes_stream().boxed(),
        buf: String::new(),
    })
}

/// The `data:` payloads of an SSE stream, as JSON.
struct EventStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl EventStream {
    async fn next(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return Ok(Some(serde_json::from_str(data)?));
                }
                continue;
            }
            match self.body.next().await {
                Some(chunk) => self.buf.push_str(&String::from_utf8_lossy(&chunk?)),
                None => return Ok(None),
            }
        }
    }

    async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        while let Some(event) = self.next().await? {
            if pred(&event) {
                return Ok(event);
            }
        }
        bail!("the stream ended first")
    }
}

async fn run(base: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(60)).await?;
    let api = JsonApi::new(http, base, ADMIN_KEY);
    let n = env_usize("BENCH_N", 100);
    let turns = env_usize("BENCH_TURNS", 200);
    let claude_n = env_usize("BENCH_CLAUDE_N", 10);

    // 1 and 2: the mock agent in a `base` sandbox.
    let sbx = api
        .call("POST", "/v1/sandboxes", Some(json!({"timeout_secs": 0})))
        .await?;
    let sbx = sbx["id"].as_str().context("sandbox id")?.to_string();
    let mut first_event = Samples::default();
    for i in 0..n {
        let started = Instant::now();
        let s = api
            .call("POST", &format!("/v1/sandboxes/{sbx}/sessions"), Some(json!({"agent": "mock", "prompt": format!("round {i}"), "permission_mode": "bypass"})))
            .await?;
        let ses = s["id"].as_str().context("session id")?.to_string();
        let mut stream = follow(&api, &sbx, &ses, 0).await?;
        stream.next().await?.context("no first event")?;
        first_event.push(started.elapsed());
        api.call(
            "DELETE",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
            None,
        )
        .await?;
    }
    let s = api
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions"),
            Some(json!({"agent": "mock", "permission_mode": "bypass"})),
        )
        .await?;
    let ses = s["id"].as_str().context("session id")?.to_string();
    let mut stream = follow(&api, &sbx, &ses, 0).await?;
    let started = Instant::now();
    for i in 0..turns {
        api.call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/messages"),
            Some(json!({"text": format!("prompt {i}")})),
        )
        .await?;
    }
    let (mut events, mut usages) = (0u64, 0usize);
    while usages < turns {
        let event = stream.next().await?.context("the stream ended")?;
        events += 1;
        if event["type"] == "usage" {
            usages += 1;
        }
    }
    let elapsed = started.elapsed();
    api.call("DELETE", &format!("/v1/sandboxes/{sbx}"), None)
        .await?;

    // 3: Claude Code against the stand-in, through Warren and directly.
    api.build_template("agents").await?;
    let sbx = api
        .call(
            "POST",
            "/v1/sandboxes",
            Some(
                json!({"template": "agents", "timeout_secs": 0, "resources": {"memory_mb": 2048}}),
            ),
        )
        .await?;
    let sbx = sbx["id"].as_str().context("sandbox id")?.to_string();
    let standin =
        std::fs::read(repo_root().join("crates/warren/tests/fixtures/model-standin.mjs"))?;
    api.http()
        .put(format!(
            "{base}/v1/sandboxes/{sbx}/files?path=/opt/standin.mjs"
        ))
        .bearer_auth(ADMIN_KEY)
        .body(standin)
        .send()
        .await?
        .error_for_status()?;
    api.call(
        "POST",
        &format!("/v1/sandboxes/{sbx}/processes"),
        Some(json!({"argv": ["node", "/opt/standin.mjs", "--port", STANDIN_PORT.to_string()]})),
    )
    .await?;
    api.sh(&sbx, &format!("for i in $(seq 100); do node -e \"require('http').get('http://127.0.0.1:{STANDIN_PORT}/v1/models', () => process.exit(0)).on('error', () => process.exit(1))\" && exit 0; sleep 0.1; done; exit 1")).await?;
    let env = json!({"ANTHROPIC_BASE_URL": format!("http://127.0.0.1:{STANDIN_PORT}"), "ANTHROPIC_API_KEY": "bench"});
    let direct_script = format!(
        "cd /root && export ANTHROPIC_BASE_URL=http://127.0.0.1:{STANDIN_PORT} ANTHROPIC_API_KEY=bench IS_SANDBOX=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1; \
         start=$(date +%s%N); claude -p --output-format stream-json --verbose --include-partial-messages --permission-mode bypassPermissions 'standin:text hello' | \
         while IFS= read -r line; do case \"$line\" in *content_block_delta*) echo $(( ($(date +%s%N) - start) / 1000 )); break;; esac; done"
    );
    let (mut through, mut direct) = (Samples::default(), Samples::default());
    for i in 0..claude_n {
        // Alternate, so that neither side always runs on a warm cache.
        let us: u64 = api
            .sh(&sbx, &direct_script)
            .await?
            .trim()
            .parse()
            .context("direct timing")?;
        direct.push(Duration::from_micros(us));
        let started = Instant::now();
        let s = api
            .call("POST", &format!("/v1/sandboxes/{sbx}/sessions"), Some(json!({"agent": "claude", "prompt": format!("standin:text hello {i}"), "permission_mode": "bypass", "env": env})))
            .await?;
        let ses = s["id"].as_str().context("session id")?.to_string();
        let mut stream = follow(&api, &sbx, &ses, 0).await?;
        stream.until(|e| e["type"] == "item.delta").await?;
        through.push(started.elapsed());
        api.call(
            "DELETE",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
            None,
        )
        .await?;
    }
    api.call("DELETE", &format!("/v1/sandboxes/{sbx}"), None)
        .await?;

    println!("| what | figures |");
    println!("|---|---|");
    print_row(
        "mock: session create → first event (SSE, through the server)",
        &first_event,
    );
    println!(
        "| mock: events through the server's SSE | {:.0} events/s ({events} events, {turns} turns, {:.0} ms) |",
        events as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0
    );
    print_compare(
        "claude: to the first item.delta",
        &through,
        "claude -p direct",
        &direct,
    );
    let target = direct.p50().mul_f64(1.1) + Duration::from_millis(20);
    println!(
        "| claude: target p50 ≤ 1.1 × direct + 20 ms = {:.1} ms | {} |",
        target.as_secs_f64() * 1000.0,
        if through.p50() <= target {
            "met"
        } else {
            "missed"
        }
    );
    Ok(())
}
