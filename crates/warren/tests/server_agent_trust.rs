//! A sandbox owns its run directory, so it can swap its `agent.sock` for a
//! symlink to another sandbox's socket. The server must notice on every new
//! connection and refuse, never run the request in the other sandbox.

mod server_common;

use std::time::Duration;

use serde_json::json;
use server_common::{TestServer, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_socket_symlink_never_reaches_another_sandbox() {
    let server = TestServer::start().await;
    let a = server.create(ADMIN_KEY, json!({})).await;
    let b = server.create(ADMIN_KEY, json!({})).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    // Inside A: keep the real socket under another name, point agent.sock at B's.
    let out = server
        .run(
            ADMIN_KEY,
            a,
            &format!("mv /run/warren/agent.sock /run/warren/real.sock && ln -s ../{b}/agent.sock /run/warren/agent.sock"),
        )
        .await;
    assert_eq!(out["exit_code"], 0, "{out}");

    // Hold A's pooled connection busy with a long poll, so the next request
    // to A has to dial the socket path again.
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{a}/processes"),
            ADMIN_KEY,
            Some(json!({"cmd": "sleep 3"})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let pid = proc_["id"].as_str().unwrap().to_string();
    let waiting = {
        let req = server.req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{a}/processes/{pid}?wait=true&timeout_ms=5000"),
            ADMIN_KEY,
        );
        tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{a}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "hostname"})),
        )
        .await;
    assert_ne!(
        body["stdout"].as_str().map(str::trim),
        Some(b),
        "a request for {a} ran in {b}"
    );
    assert_eq!(status, 503, "the planted socket is refused: {body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert_eq!(waiting.await.unwrap().unwrap(), 200);

    // B itself is unharmed.
    let out = server.run(ADMIN_KEY, b, "hostname").await;
    assert_eq!(out["stdout"].as_str().unwrap().trim(), b);
}
