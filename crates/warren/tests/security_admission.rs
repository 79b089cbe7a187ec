//! The security battery's admission checks, against a real server: no
//! sandbox asks for more than the server's per-sandbox maxima, and no
//! tenant goes over its quotas (sandboxes holding compute, all sandboxes,
//! memory, CPUs, disk), however many creates it sends at once; each refusal names
//! the limit.

mod server_common;

use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

/// Creates a tenant with `quotas`; its key.
async fn tenant(server: &TestServer, name: &str, quotas: Value) -> String {
    server.tenant_with(name, quotas).await.1
}

async fn create(server: &TestServer, key: &str, body: Value) -> (u16, Value) {
    server.call("POST", "/v1/sandboxes", key, Some(body)).await
}

fn host_memory_mb() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_cannot_ask_for_more_than_the_server_allows() {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into(), "--max-cpus".into(), "0.5".into()],
        ..Options::default()
    })
    .await;
    let key = tenant(&server, "greedy", json!({})).await;
    for (resources, field) in [
        (json!({ "pids": 32768 }), "resources.pids"),
        (
            json!({ "memory_mb": host_memory_mb() / 2 + 1024 }),
            "resources.memory_mb",
        ),
        (json!({ "cpus": 1 }), "resources.cpus"),
    ] {
        let (status, problem) = create(&server, &key, json!({ "resources": resources })).await;
        assert_eq!(status, 400, "{resources}: {problem}");
        assert_eq!(problem["code"], "invalid_request");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(field) && detail.contains("maximum"),
            "{detail}"
        );
    }
    // The maxima themselves are fine, for the admin too.
    let (status, body) = create(
        &server,
        &key,
        json!({ "resources": { "pids": 4096, "cpus": 0.5, "memory_mb": 256 } }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = create(
        &server,
        ADMIN_KEY,
        json!({ "resources": { "pids": 32768 } }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_stay_inside_their_quotas() {
    let server = TestServer::start().await;

    // Memory: two of 512 MiB fit in 1024, a third does not, even when all
    // ask at once.
    let key = tenant(&server, "mem", json!({ "max_memory_mb": 1024 })).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let req = server
            .req(reqwest::Method::POST, "/v1/sandboxes", &key)
            .json(&json!({ "resources": { "memory_mb": 512 } }));
        calls.spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        });
    }
    let mut created = Vec::new();
    while let Some(call) = calls.join_next().await {
        let (status, body) = call.unwrap();
        match status {
            201 => created.push(body["id"].as_str().unwrap().to_string()),
            429 => {
                assert_eq!(body["code"], "quota_exceeded", "{body}");
                assert!(
                    body["detail"].as_str().unwrap().contains("max_memory_mb"),
                    "{body}"
                );
            }
            _ => panic!("{status} {body}"),
        }
    }
    assert_eq!(created.len(), 2, "{created:?}");
    // A stopped sandbox frees its memory; starting it again needs it back.
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/stop", created[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = create(&server, &key, json!({ "resources": { "memory_mb": 512 } })).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/start", created[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("max_memory_mb"),
        "{body}"
    );

    // CPUs.
    let key = tenant(&server, "cpu", json!({ "max_cpus": 1.0 })).await;
    for _ in 0..2 {
        let (status, body) = create(&server, &key, json!({ "resources": { "cpus": 0.5 } })).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = create(&server, &key, json!({ "resources": { "cpus": 0.5 } })).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("max_cpus"),
        "{body}"
    );

    // Every sandbox counts toward max_total_sandboxes, stopped ones too.
    let key = tenant(&server, "total", json!({ "max_total_sandboxes": 2 })).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = create(&server, &key, json!({})).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/stop", ids[0]),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = create(&server, &key, json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("max_total_sandboxes"),
        "{body}"
    );
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{}", ids[0]), &key, None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = create(&server, &key, json!({})).await;
    assert_eq!(status, 201, "{body}");

    // Disk: the sum of every sandbox's disk_mb, stopped ones included (a
    // stopped sandbox keeps its disk, and starting it adds none).
    let key = tenant(&server, "disk", json!({ "max_disk_mb": 3000 })).await;
    let disk = |mb: u64| json!({ "resources": { "disk_mb": mb } });
    let (status, body) = create(&server, &key, disk(2000)).await;
    assert_eq!(status, 201, "{body}");
    let first = body["id"].as_str().unwrap().to_string();
    let (status, _) = server
        .call("POST", &format!("/v1/sandboxes/{first}/stop"), &key, None)
        .await;
    assert_eq!(status, 200);
    for asked in [json!({}), disk(1001)] {
        let (status, body) = create(&server, &key, asked.clone()).await;
        assert_eq!(status, 429, "{asked}: {body}");
        assert_eq!(body["code"], "quota_exceeded", "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("max_disk_mb"), "{body}");
        assert!(detail.contains("2000 MiB"), "{body}");
    }
    let (status, body) = create(&server, &key, disk(1000)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .call("POST", &format!("/v1/sandboxes/{first}/start"), &key, None)
        .await;
    assert_eq!(status, 200, "starting a counted disk again: {body}");
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{first}"), &key, None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = create(&server, &key, disk(2000)).await;
    assert_eq!(
        status, 201,
        "the deleted sandbox's disk is free again: {body}"
    );

    // The tenant's quotas are shown, and the admin has none.
    let (_, tenants) = server
        .call("GET", "/v1/admin/tenants", ADMIN_KEY, None)
        .await;
    let total = tenants["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "total")
        .unwrap();
    assert_eq!(total["max_total_sandboxes"], 2, "{total}");
    let disk_tenant = tenants["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "disk")
        .unwrap();
    assert_eq!(disk_tenant["max_disk_mb"], 3000, "{disk_tenant}");
    for _ in 0..3 {
        let (status, body) = create(&server, ADMIN_KEY, json!({})).await;
        assert_eq!(status, 201, "{body}");
    }
}
