//! A request in flight is activity from its first byte to its last: a run,
//! an upload or a follow stream longer than the sandbox's idle timeout must
//! not see the sandbox stopped under it, and once nothing is in flight the
//! idle timeout stops the sandbox as before.

mod server_common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use server_common::{TestServer, ADMIN_KEY};

/// The sandbox's state as the API reports it.
async fn state(server: &TestServer, id: &str) -> String {
    let (status, body) = server
        .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["state"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_in_flight_hold_a_sandbox_awake() {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({"timeout_secs": 3})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();

    // A run twice as long as the idle timeout answers, and the sandbox is
    // still running afterwards.
    let started = Instant::now();
    let (status, out) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "sleep 8; echo finished"})),
        )
        .await;
    assert_eq!(status, 200, "a long run was cut off: {out}");
    assert_eq!(out["stdout"], "finished\n");
    assert!(started.elapsed() >= Duration::from_secs(8));
    assert_eq!(state(&server, &id).await, "running");

    // An upload that trickles in for longer than the timeout.
    let chunks = futures::stream::iter(0..7).then(|i| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<Bytes, std::io::Error>(Bytes::from(format!("chunk-{i}\n")))
    });
    let resp = server
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{id}/files?path=/root/slow.txt"),
            ADMIN_KEY,
        )
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("upload");
    assert!(resp.status().is_success(), "slow upload: {}", resp.status());
    let out = server.run(ADMIN_KEY, &id, "wc -l < /root/slow.txt").await;
    assert_eq!(out["stdout"], "7\n");

    // A follow stream of a process that runs longer than the timeout.
    let (status, process) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(json!({"cmd": "sleep 7; echo followed"})),
        )
        .await;
    assert_eq!(status, 201, "{process}");
    let pid = process["id"].as_str().unwrap();
    let follow = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{id}/processes/{pid}/logs?follow=true"),
            ADMIN_KEY,
        )
        .send()
        .await
        .expect("follow");
    let text = follow.text().await.expect("the whole stream");
    assert!(text.contains("followed"), "{text}");
    assert_eq!(state(&server, &id).await, "running");

    // Nothing in flight any more: the idle timeout applies again.
    let (_, body) = server
        .wait_for(&id, Duration::from_secs(60), |_, b| b["state"] == "stopped")
        .await;
    assert_eq!(body["state"], "stopped", "the idle sandbox was not stopped");
}
