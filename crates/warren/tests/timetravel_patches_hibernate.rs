//! Checkpoint patches (run in order in every sandbox made from a checkpoint;
//! a failing one fails the create with its output) and hibernate / wake /
//! auto-wake, through a real server on real sandboxes.

mod server_common;

use std::time::Duration;

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};
use warren_runtime::Runtime;

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

async fn add_patch(server: &TestServer, key: &str, ckpt: &str, body: Value) -> Value {
    let (status, patch) = server
        .call(
            "POST",
            &format!("/v1/checkpoints/{ckpt}/patches"),
            key,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "patch: {patch}");
    patch
}

async fn sandbox_count(server: &TestServer) -> usize {
    let (_, list) = server.call("GET", "/v1/sandboxes", ADMIN_KEY, None).await;
    list["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_run_in_order_and_a_failing_one_fails_the_fork_with_its_output() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("patcher", None).await;
    let (_, other) = server.tenant("outsider", None).await;
    let sbx = id_of(&server.create(&key, json!({})).await);
    server.run(&key, &sbx, "echo base > /root/order").await;
    let (status, ckpt) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            &key,
            Some(json!({"name": "golden"})),
        )
        .await;
    assert_eq!(status, 201);
    let ckpt = id_of(&ckpt);

    let first = add_patch(
        &server,
        &key,
        &ckpt,
        json!({"name": "shell with #!", "script": "#!/bin/sh\nset -e\necho p1 >> /root/order\n"}),
    )
    .await;
    assert!(id_of(&first).starts_with("pat_"), "{first}");
    assert_eq!(first["checkpoint_id"], ckpt.as_str());
    assert_eq!(first["timeout_ms"], 300000);
    // No #! line: the shell runs it.
    add_patch(
        &server,
        &key,
        &ckpt,
        json!({"script": "echo p2 >> /root/order"}),
    )
    .await;
    add_patch(
        &server,
        &key,
        &ckpt,
        json!({"script": "#!/usr/bin/env python3\nopen('/root/order', 'a').write('p3 %s\\n' % __name__)\n"}),
    )
    .await;
    let (status, list) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{ckpt}/patches"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["name"], "shell with #!");

    let made = id_of(&server.create(&key, json!({"from_checkpoint": ckpt})).await);
    let out = server.run(&key, &made, "cat /root/order; ls -A /tmp").await;
    assert_eq!(out["stdout"], "base\np1\np2\np3 __main__\n", "{out}");
    // The source sandbox is untouched by patches.
    let out = server.run(&key, &sbx, "cat /root/order").await;
    assert_eq!(out["stdout"], "base\n");

    // A failing patch fails the create, says why, and leaves nothing behind.
    let failing = add_patch(
        &server,
        &key,
        &ckpt,
        json!({"name": "breaks", "script": "echo about to fail\necho oops >&2\nexit 7\n"}),
    )
    .await;
    let before = (sandbox_count(&server).await, server.sandbox_volumes());
    let (status, problem) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &key,
            Some(json!({"from_checkpoint": ckpt})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "patch_failed");
    let detail = problem["detail"].as_str().unwrap();
    for part in [
        "patch 4",
        "breaks",
        "exit code 7",
        "about to fail",
        "oops",
        &ckpt,
    ] {
        assert!(detail.contains(part), "{part:?} not in {detail:?}");
    }
    assert_eq!(
        (sandbox_count(&server).await, server.sandbox_volumes()),
        before,
        "the failed sandbox is destroyed"
    );
    // A patch that runs out of time fails too.
    let (status, problem) = server
        .call(
            "DELETE",
            &format!("/v1/checkpoints/{ckpt}/patches/{}", id_of(&failing)),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 204, "{problem}");
    let slow = add_patch(
        &server,
        &key,
        &ckpt,
        json!({"script": "sleep 30", "timeout_ms": 300}),
    )
    .await;
    let (status, problem) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &key,
            Some(json!({"from_checkpoint": ckpt})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("timed out"),
        "{problem}"
    );
    server
        .call(
            "DELETE",
            &format!("/v1/checkpoints/{ckpt}/patches/{}", id_of(&slow)),
            &key,
            None,
        )
        .await;
    let again = id_of(&server.create(&key, json!({"from_checkpoint": ckpt})).await);
    let out = server.run(&key, &again, "cat /root/order").await;
    assert_eq!(out["stdout"], "base\np1\np2\np3 __main__\n");

    // Bad input and other tenants.
    for (body, field) in [
        (json!({"script": ""}), "script"),
        (json!({"script": "true", "timeout_ms": 0}), "timeout_ms"),
        (json!({"script": "true", "name": ""}), "name"),
        (json!({"name": "no script"}), "script"),
    ] {
        let (status, problem) = server
            .call(
                "POST",
                &format!("/v1/checkpoints/{ckpt}/patches"),
                &key,
                Some(body),
            )
            .await;
        assert_eq!(status, 400, "{field}: {problem}");
    }
    let (status, problem) = server
        .call(
            "DELETE",
            &format!("/v1/checkpoints/{ckpt}/patches/pat_aaaaaaaaaaaaaaaaaaaa"),
            &key,
            None,
        )
        .await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    let (status, problem) = server
        .call(
            "POST",
            &format!("/v1/checkpoints/{ckpt}/patches"),
            &other,
            Some(json!({"script": "true"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("checkpoint_not_found"))
    );
    // Patches go with their checkpoint.
    let (status, _) = server
        .call("DELETE", &format!("/v1/checkpoints/{ckpt}"), &key, None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{ckpt}/patches"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn hibernate_frees_the_sandbox_and_wake_keeps_its_files() {
    let mut server = TestServer::start().await;
    let sbx = id_of(&server.create(ADMIN_KEY, json!({})).await);
    server.run(ADMIN_KEY, &sbx, "echo kept > /root/k").await;
    let (status, asleep) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{asleep}");
    assert_eq!(asleep["state"], "hibernated");
    // Nothing runs: no process, no cgroup.
    assert_eq!(server.runtime().pid(&sbx), None);
    assert!(
        !server.runtime().known().contains(&sbx),
        "its cgroup is removed"
    );
    // Hibernating again is fine.
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Without auto_wake, agent calls are refused with a clear problem.
    let (status, problem) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "true"})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "conflict");
    assert!(
        problem["detail"].as_str().unwrap().contains("hibernated")
            && problem["detail"].as_str().unwrap().contains("/wake"),
        "{problem}"
    );

    // Hibernated sandboxes stay hibernated across a server restart.
    server.kill9();
    server.spawn();
    let (_, got) = server
        .call("GET", &format!("/v1/sandboxes/{sbx}"), ADMIN_KEY, None)
        .await;
    assert_eq!(got["state"], "hibernated", "{got}");

    let (status, awake) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/wake"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{awake}");
    assert_eq!(awake["state"], "running");
    let out = server.run(ADMIN_KEY, &sbx, "cat /root/k").await;
    assert_eq!(out["stdout"], "kept\n");
    // Waking a running sandbox is fine; hibernating a stopped one is not.
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/wake"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/stop"),
            ADMIN_KEY,
            None,
        )
        .await;
    let (status, problem) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    // auto_wake: the first agent call wakes it and goes through.
    let lazy = server.create(ADMIN_KEY, json!({"auto_wake": true})).await;
    assert_eq!(lazy["auto_wake"], true);
    let lazy = id_of(&lazy);
    server.run(ADMIN_KEY, &lazy, "echo dreamt > /root/d").await;
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(server.runtime().pid(&lazy), None);
    // Several calls at once wake it once.
    let calls = (0..4).map(|_| server.run(ADMIN_KEY, &lazy, "cat /root/d"));
    for out in futures::future::join_all(calls).await {
        assert_eq!(out["stdout"], "dreamt\n");
    }
    let (_, got) = server
        .call("GET", &format!("/v1/sandboxes/{lazy}"), ADMIN_KEY, None)
        .await;
    assert_eq!(got["state"], "running");
    // Hibernate, then a file read wakes it as well.
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    let resp = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{lazy}/files?path=/root/d"),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "dreamt\n");

    // So does a request to one of its preview URLs (nothing listens on the
    // port after the wake: the point is that it is awake to say so).
    let (status, preview) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/previews"),
            ADMIN_KEY,
            Some(json!({"port": 8000, "auth": "public"})),
        )
        .await;
    assert_eq!(status, 201, "{preview}");
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    let resp = server
        .http
        .get(server.url(&format!("/v1/sandboxes/{lazy}/ports/8000/")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502, "{}", resp.text().await.unwrap());
    let (_, got) = server
        .call("GET", &format!("/v1/sandboxes/{lazy}"), ADMIN_KEY, None)
        .await;
    assert_eq!(got["state"], "running");

    // The idle timeout hibernates an auto_wake sandbox instead of stopping it.
    let napper = id_of(
        &server
            .create(ADMIN_KEY, json!({"auto_wake": true, "timeout_secs": 1}))
            .await,
    );
    server.run(ADMIN_KEY, &napper, "echo nap > /root/n").await;
    let (_, got) = server
        .wait_for(&napper, Duration::from_secs(15), |_, b| {
            b["state"] == "hibernated"
        })
        .await;
    assert_eq!(got["state"], "hibernated", "{got}");
    let out = server.run(ADMIN_KEY, &napper, "cat /root/n").await;
    assert_eq!(out["stdout"], "nap\n");

    // A checkpoint of a hibernated sandbox works (no processes to freeze),
    // and restoring one brings it back running.
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    let (status, ckpt) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/checkpoints"),
            ADMIN_KEY,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{ckpt}");
    let (status, restored) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{lazy}/restore"),
            ADMIN_KEY,
            Some(json!({"checkpoint_id": id_of(&ckpt)})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["state"], "running");
    let (_, done) = server
        .wait_for(&lazy, Duration::from_secs(5), |_, b| {
            b["state"] == "running"
        })
        .await;
    assert_eq!(done["state"], "running");
}
