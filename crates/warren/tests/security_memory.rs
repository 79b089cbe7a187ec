//! The security battery's attacks on the server's memory, as a tenant with
//! code in a sandbox, against a real server over HTTP:
//!
//! - an impostor agent: code in the sandbox unlinks `/run/warren/agent.sock`
//!   and listens there itself; the server must never talk to it (it is in
//!   the sandbox's cgroup, but not the sandbox's PID 1);
//! - requests in flight: a tenant's streams and long calls are capped per
//!   sandbox and per tenant, with 429 `too_many_requests`;
//! - the answers the server reads whole (automatic checkpoints' runs) are
//!   bounded: a run asking to keep more than the server reads is refused,
//!   and a run with 32 MiB of output leaves the server's memory alone.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{Options, TestServer};

/// The server's resident set, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// A python program that takes over the agent's socket and answers every
/// request with `{"impostor": true}`.
const IMPOSTOR: &str = r#"
import os, socket
path = "/run/warren/agent.sock"
os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(64)
open("/tmp/impostor.ready", "w").close()
body = b'{"impostor": true}'
while True:
    c, _ = s.accept()
    try:
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                  + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
    finally:
        c.close()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_impostor_on_the_agent_socket_is_never_spoken_to() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();

    let install = format!(
        "cat > /tmp/impostor.py <<'EOF'\n{IMPOSTOR}EOF\n\
         setsid -f python3 /tmp/impostor.py >/dev/null 2>&1 </dev/null\n\
         for i in $(seq 100); do [ -e /tmp/impostor.ready ] && exit 0; sleep 0.1; done; exit 1"
    );
    let out = server.run(&key, id, &install).await;
    assert_eq!(out["exit_code"], 0, "the impostor did not start: {out}");

    // More requests at once than the server has pooled connections to the
    // real agent: some must dial the socket again, and meet the impostor.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..48 {
        let req = server.req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{id}/files/list?path=/"),
            &key,
        );
        calls.spawn(async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        });
    }
    let mut refused = 0;
    while let Some(call) = calls.join_next().await {
        let (status, body) = call.unwrap();
        assert!(
            !body.contains("impostor"),
            "the server forwarded a tenant's call to an impostor agent: {status} {body}"
        );
        if status == 503 {
            refused += 1;
        } else {
            assert_eq!(status, 200, "{body}");
        }
    }
    assert!(
        refused > 0,
        "no request dialled the socket again, so the test proved nothing"
    );
}

/// Starts `n` runs of `sleep 60` in `id`, each held open by a task.
fn hold(server: &TestServer, key: &str, id: &str, n: usize) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let req = server
            .req(
                reqwest::Method::POST,
                &format!("/v1/sandboxes/{id}/processes/run"),
                key,
            )
            .json(&json!({ "cmd": "sleep 60" }));
        set.spawn(async move {
            let _ = req.send().await;
        });
    }
    set
}

/// Waits until `n` `sleep` processes run in the server's sandboxes.
async fn sleeping(server: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = server_common::processes_in(&server.cgroup_parent)
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "sleep")
            })
            .count();
        if count >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{count} of {n} runs started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST processes/run {"cmd": "true"}`: (status, body).
async fn quick_run(server: &TestServer, key: &str, id: &str) -> (u16, Value) {
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            key,
            Some(json!({ "cmd": "true" })),
        )
        .await
}

/// Polls `quick_run` until its status is `want`, for at most 30 s.
async fn until_status(server: &TestServer, key: &str, id: &str, want: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = quick_run(server, key, id).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} instead of {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_are_capped_per_sandbox_and_per_tenant() {
    let server = TestServer::start_with(Options {
        args: vec![
            "--no-network".into(),
            "--max-requests-per-sandbox".into(),
            "4".into(),
            "--max-requests-per-tenant".into(),
            "6".into(),
        ],
        ..Options::default()
    })
    .await;
    let (_, key) = server.tenant("mallory", None).await;
    let (_, other_key) = server.tenant("alice", None).await;
    let a = server.create(&key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = server.create(&key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = server.create(&other_key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Four long runs fill sandbox a: the fifth call is refused at once.
    let held_a = hold(&server, &key, &a, 4);
    sleeping(&server, 4).await;
    let (status, problem) = quick_run(&server, &key, &a).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "too_many_requests", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("per sandbox"),
        "{problem}"
    );

    // Two more in sandbox b reach the tenant's six.
    let held_b = hold(&server, &key, &b, 2);
    sleeping(&server, 6).await;
    let (status, problem) = quick_run(&server, &key, &b).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "too_many_requests", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("per tenant"),
        "{problem}"
    );

    // Another tenant notices nothing.
    let (status, body) = quick_run(&server, &other_key, &c).await;
    assert_eq!(status, 200, "{body}");

    // Once the calls end (their clients hang up), the slots come back.
    drop(held_a);
    drop(held_b);
    until_status(&server, &key, &a, 200).await;
    until_status(&server, &key, &b, 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_server_reads_of_an_agent_is_bounded() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let sandbox = server
        .create(&key, json!({ "auto_checkpoint": true }))
        .await;
    let id = sandbox["id"].as_str().unwrap();
    let run = |body: Value| {
        server
            .req(
                reqwest::Method::POST,
                &format!("/v1/sandboxes/{id}/processes/run"),
                &key,
            )
            .timeout(Duration::from_secs(120))
            .json(&body)
            .send()
    };

    // Keeping 32 MiB of output would make the server read it whole.
    let resp = run(json!({
        "cmd": "head -c 33554432 /dev/zero | tr '\\0' a",
        "max_output_bytes": 32u64 << 20,
    }))
    .await
    .expect("run");
    assert_eq!(resp.status(), 400);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_request", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("max_output_bytes"),
        "{problem}"
    );

    // 32 MiB of output with the default kept: a normal answer, and the
    // server's memory barely moves.
    let before = rss_kib(server.pid());
    for _ in 0..3 {
        let resp = run(json!({ "cmd": "head -c 33554432 /dev/zero | tr '\\0' a" }))
            .await
            .expect("run");
        assert_eq!(resp.status(), 200);
        let out: Value = resp.json().await.unwrap();
        assert_eq!(out["exit_code"], 0, "{out}");
        assert_eq!(out["stdout_truncated"], true, "{out}");
        assert!(out["checkpoint"].is_string(), "{out}");
    }
    let after = rss_kib(server.pid());
    assert!(
        after < before + 64 * 1024,
        "the server grew from {before} KiB to {after} KiB"
    );
}
