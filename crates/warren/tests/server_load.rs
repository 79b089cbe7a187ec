//! The database under concurrent load: many clients creating, listing,
//! patching and checkpointing at once get answers, never an internal error
//! and never "database is locked".

mod server_common;

use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_and_reads_never_fail() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        stderr_file: Some(log.path().to_path_buf()),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            server.create(ADMIN_KEY, json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..120 {
        let id = ids[i % ids.len()].clone();
        let (method, path, body) = match i % 6 {
            0 => ("POST", "/v1/sandboxes".to_string(), Some(json!({}))),
            1 => ("GET", "/v1/sandboxes".to_string(), None),
            2 | 3 => (
                "PATCH",
                format!("/v1/sandboxes/{id}"),
                Some(json!({"metadata": {"n": i.to_string()}})),
            ),
            4 => (
                "POST",
                format!("/v1/sandboxes/{id}/checkpoints"),
                Some(json!({"name": format!("c{i}")})),
            ),
            _ => ("GET", format!("/v1/sandboxes/{id}"), None),
        };
        let mut req = server.req(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            &path,
            ADMIN_KEY,
        );
        if let Some(body) = body {
            req = req.json(&body);
        }
        calls.spawn(async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (format!("{method} {path}"), status, body)
        });
    }
    while let Some(call) = calls.join_next().await {
        let (what, status, body) = call.unwrap();
        // A checkpoint of a sandbox mid-checkpoint may be told to wait.
        assert!(
            (200..300).contains(&status) || (status == 409 && what.ends_with("checkpoints")),
            "{what}: {status} {body}"
        );
    }
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        !text.contains("database is locked"),
        "the log says the database was locked"
    );
    assert!(!text.contains("SQLITE_BUSY"), "the log says SQLITE_BUSY");
}
