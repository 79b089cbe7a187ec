//! Sandboxes through a real server: create, run, files, SSE and WebSocket
//! through the proxy, stop/start/hibernate, patch, delete; bad input
//! answered with problems; the metrics.

mod server_common;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_runs_debian_and_serves_files_streams_and_websockets() {
    let server = TestServer::start().await;
    let sandbox = server
        .create(ADMIN_KEY, json!({"envs": {"GREETING": "hi"}}))
        .await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sbx_"));
    assert_eq!(sandbox["state"], "running");
    assert_eq!(sandbox["template"], "base");
    assert_eq!(sandbox["timeout_secs"], 300);
    assert!(sandbox["expires_at"].is_null());
    assert!(sandbox["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        sandbox["resources"],
        json!({"cpus": 1.0, "memory_mb": 512, "pids": 512, "disk_mb": 10240})
    );
    assert!(sandbox.get("envs").is_none(), "envs may hold secrets");

    let out = server
        .run(
            ADMIN_KEY,
            &id,
            "cat /etc/os-release; echo $GREETING; hostname; pwd",
        )
        .await;
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.contains("Debian GNU/Linux"), "{stdout}");
    assert!(stdout.contains("\nhi\n"), "the sandbox's envs: {stdout}");
    assert!(
        stdout.contains(&format!("\n{id}\n")),
        "hostname is the id: {stdout}"
    );
    assert!(
        stdout.ends_with("/root\n"),
        "workdir of the template: {stdout}"
    );
    let out = server.run(ADMIN_KEY, &id, "exit 3").await;
    assert_eq!(out["exit_code"], 3);

    // Files: a binary body streamed in and out unchanged.
    let data: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = format!("/v1/sandboxes/{id}/files?path=/tmp/blob.bin");
    let resp = server
        .req(reqwest::Method::PUT, &path, ADMIN_KEY)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let resp = server
        .req(reqwest::Method::GET, &path, ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);
    let out = server
        .run(ADMIN_KEY, &id, "sha256sum /tmp/blob.bin | cut -c1-8")
        .await;
    assert_eq!(out["stdout"].as_str().unwrap().len(), 9);
    // The key can come as ?access_token= too, and is not passed on.
    let resp = server
        .http
        .get(server.url(&format!(
            "/v1/sandboxes/{id}/files/stat?path=/tmp/blob.bin&access_token={ADMIN_KEY}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stat: Value = resp.json().await.unwrap();
    assert_eq!(stat["size"], data.len());
    let (status, missing) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=/nope"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("file_not_found"))
    );

    // SSE: follow a process's output live through the proxy.
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(json!({"cmd": "for i in 1 2 3; do echo line$i; sleep 0.2; done"})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let pid = proc_["id"].as_str().unwrap();
    let resp = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{id}/processes/{pid}/logs?follow=true"),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut events_before_exit = 0;
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            let chunk = String::from_utf8_lossy(&chunk.unwrap()).to_string();
            if !text.contains("event: exit") && chunk.contains("event: output") {
                events_before_exit += 1;
            }
            text.push_str(&chunk);
            if text.contains("event: exit") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no exit event; got {text}");
    for line in ["line1", "line2", "line3"] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    assert!(
        events_before_exit >= 2,
        "output arrived in one piece, not live: {text}"
    );

    // WebSocket attach through the proxy: stdin in, output out, exit.
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(json!({"cmd": "read line; echo got:$line"})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let pid = proc_["id"].as_str().unwrap();
    let ws_url = format!(
        "{}/v1/sandboxes/{id}/processes/{pid}/ws?access_token={ADMIN_KEY}",
        server.base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("ws connect");
    ws.send(Message::Text(r#"{"type":"stdin","data":"hello\n"}"#.into()))
        .await
        .unwrap();
    let mut output = Vec::new();
    let mut exit = None;
    let talk = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ws.next().await {
            match msg.unwrap() {
                Message::Binary(frame) => output.extend_from_slice(&frame[1..]),
                Message::Text(text) => {
                    let control: Value = serde_json::from_str(&text).unwrap();
                    if control["type"] == "exit" {
                        exit = Some(control);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(talk.is_ok(), "the WebSocket did not end");
    assert_eq!(String::from_utf8_lossy(&output), "got:hello\n");
    assert_eq!(exit.expect("an exit message")["exit_code"], 0);

    // Delete: gone for good, disk and run directory included.
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = server
        .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("sandbox_not_found"))
    );
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "true"})),
        )
        .await;
    assert_eq!(status, 404);
    assert!(
        server.sandbox_volumes().is_empty(),
        "{:?}",
        server.sandbox_volumes()
    );
    assert!(server.run_dirs().is_empty(), "{:?}", server.run_dirs());
    assert!(server.runtime().known().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_start_hibernate_patch_and_extend() {
    let server = TestServer::start().await;
    let sandbox = server
        .create(
            ADMIN_KEY,
            json!({"ttl_secs": 3600, "metadata": {"a": "1"}, "labels": {"x": "y"}}),
        )
        .await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let expires = sandbox["expires_at"].as_str().unwrap().to_string();
    server.run(ADMIN_KEY, &id, "echo kept > /root/note").await;

    // Stop keeps the disk; agent calls answer 409 meanwhile; start resumes.
    let (status, stopped) = server
        .call("POST", &format!("/v1/sandboxes/{id}/stop"), ADMIN_KEY, None)
        .await;
    assert_eq!((status, stopped["state"].as_str()), (200, Some("stopped")));
    assert!(
        server.runtime().known().is_empty(),
        "stopped means no process"
    );
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "true"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    let (status, again) = server
        .call("POST", &format!("/v1/sandboxes/{id}/stop"), ADMIN_KEY, None)
        .await;
    assert_eq!(
        (status, again["state"].as_str()),
        (200, Some("stopped")),
        "stop is idempotent"
    );
    let (status, started) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/start"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("running")),
        "{started}"
    );
    let out = server.run(ADMIN_KEY, &id, "cat /root/note").await;
    assert_eq!(out["stdout"], "kept\n");

    // Hibernate: frozen, agent calls refused; wake brings it back.
    let (status, frozen) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/hibernate"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        (status, frozen["state"].as_str()),
        (200, Some("hibernated")),
        "{frozen}"
    );
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "true"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, woken) = server
        .call("POST", &format!("/v1/sandboxes/{id}/wake"), ADMIN_KEY, None)
        .await;
    assert_eq!((status, woken["state"].as_str()), (200, Some("running")));
    server.run(ADMIN_KEY, &id, "true").await;

    // Patch replaces what it names and nothing else.
    let (status, patched) = server
        .call(
            "PATCH",
            &format!("/v1/sandboxes/{id}"),
            ADMIN_KEY,
            Some(json!({"metadata": {"b": "2"}, "timeout_secs": 60})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["metadata"], json!({"b": "2"}));
    assert_eq!(patched["labels"], json!({"x": "y"}));
    assert_eq!(patched["timeout_secs"], 60);

    // Extend pushes the ttl deadline back.
    let (status, extended) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/extend"),
            ADMIN_KEY,
            Some(json!({"seconds": 600})),
        )
        .await;
    assert_eq!(status, 200, "{extended}");
    let later = extended["expires_at"].as_str().unwrap();
    assert!(later > expires.as_str(), "{later} is not after {expires}");
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/extend"),
            ADMIN_KEY,
            Some(json!({"seconds": 0})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_answered_with_problems() {
    let server = TestServer::start().await;
    let create = |body: Value| {
        let server = &server;
        async move {
            server
                .call("POST", "/v1/sandboxes", ADMIN_KEY, Some(body))
                .await
        }
    };
    let (status, body) = create(json!({"template": "no-such-template"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("template_not_found"))
    );
    let (status, body) = create(json!({"template": "../etc"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("template_not_found"))
    );
    for resources in [
        json!({"cpus": 4096}),
        json!({"memory_mb": 1u64 << 40}),
        json!({"pids": 1u64 << 40}),
        json!({"cpus": 0}),
    ] {
        let (status, body) = create(json!({"resources": resources})).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    let (status, body) = create(json!({"from_checkpoint": "ckpt_aaaaaaaaaaaaaaaaaaaa"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("checkpoint_not_found"))
    );
    let (status, _) = create(json!({"no_such_field": 1})).await;
    assert_eq!(status, 400);
    let (status, _) = create(json!({"timeout_secs": -1})).await;
    assert_eq!(status, 400);

    let resp = server
        .req(reqwest::Method::POST, "/v1/sandboxes", ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let resp = server
        .req(reqwest::Method::POST, "/v1/admin/tenants", ADMIN_KEY)
        .header("content-type", "application/json")
        .body(format!(r#"{{"name": "{}"}}"#, "x".repeat(2 << 20)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let (status, body) = server
        .call("GET", "/v1/nothing-here", ADMIN_KEY, None)
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = server.call("PUT", "/v1/sandboxes", ADMIN_KEY, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );

    // An empty body creates a default sandbox.
    let resp = server
        .req(reqwest::Method::POST, "/v1/sandboxes", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // A sandbox being created answers 409 to conflicting calls. Creates
    // take tens of milliseconds, so a watcher listing `state=creating` in a
    // tight loop catches some of them mid-way.
    let mut conflicts = 0;
    for _ in 0..20 {
        let creating = {
            let server = &server;
            async move {
                server
                    .call("POST", "/v1/sandboxes", ADMIN_KEY, Some(json!({})))
                    .await
            }
        };
        let watcher = async {
            for _ in 0..2000 {
                let (_, list) = server
                    .call("GET", "/v1/sandboxes?state=creating", ADMIN_KEY, None)
                    .await;
                if let Some(id) = list["items"][0]["id"].as_str() {
                    let (status, body) = server
                        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
                        .await;
                    return Some((status, body));
                }
            }
            None
        };
        let ((status, _), caught) = tokio::join!(creating, watcher);
        assert_eq!(status, 201);
        if let Some((status, body)) = caught {
            // Only a delete that really met a creating sandbox counts.
            if status == 409 {
                assert_eq!(body["code"], "conflict");
                conflicts += 1;
            } else {
                assert_eq!(status, 204, "{body}");
            }
        }
        if conflicts >= 1 {
            break;
        }
    }
    assert!(
        conflicts >= 1,
        "never caught a sandbox while it was being created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_sandboxes_and_latencies() {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();
    server.run(ADMIN_KEY, id, "true").await;
    server
        .call(
            "GET",
            "/v1/sandboxes/sbx_aaaaaaaaaaaaaaaaaaaa",
            ADMIN_KEY,
            None,
        )
        .await;
    let resp = server
        .req(reqwest::Method::GET, "/metrics", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for needle in [
        r#"warren_sandboxes{state="running"} 1"#,
        r#"warren_sandboxes{state="stopped"} 0"#,
        "warren_sandbox_create_duration_seconds_count 1",
        "warren_exec_duration_seconds_count 1",
        r#"warren_http_requests_total{method="POST",route="/v1/sandboxes",status="201"} 1"#,
        r#"warren_http_requests_total{method="GET",route="/v1/sandboxes/{id}",status="404"} 1"#,
        r#"warren_http_requests_total{method="POST",route="/v1/sandboxes/{id}/processes/run",status="200"} 1"#,
        r#"warren_http_request_duration_seconds_bucket{route="/v1/sandboxes",le="+Inf"}"#,
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(!text.contains(id), "raw ids must not become labels");
    let (_, key) = server.tenant("t", None).await;
    let (status, _) = server.call("GET", "/metrics", &key, None).await;
    assert_eq!(status, 403, "metrics are the admin's");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_in_a_loop_image_is_mounted_and_served() {
    let server = TestServer::start_with(server_common::Options {
        image_pool: true,
        args: vec!["--no-network".into()],
        ..Default::default()
    })
    .await;
    assert!(server.state_dir.join("pool.img").exists());
    let mounts = server_common::mounts_under(&server.state_dir);
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let (status, list) = server.call("GET", "/v1/templates", ADMIN_KEY, None).await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, body) = server
        .call(
            "POST",
            "/v1/sandboxes",
            ADMIN_KEY,
            Some(json!({"template": "missing"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("template_not_found"))
    );
    let (status, body) = server
        .call("DELETE", "/v1/templates/missing", ADMIN_KEY, None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("template_not_found"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_run_as_a_user_of_the_sandbox() {
    let server = TestServer::start().await;
    let id = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, out) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "id -u; touch /root/x 2>&1; echo $HOME", "user": "nobody", "cwd": "/tmp"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("65534\n"), "{out}");
    assert!(
        stdout.contains("Permission denied"),
        "nobody wrote to /root: {out}"
    );
    assert!(stdout.ends_with("/nonexistent\n"), "{out}");
    let (status, out) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "true", "user": "ghost"})),
        )
        .await;
    assert_eq!(
        (status, out["code"].as_str()),
        (400, Some("invalid_request")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn base_has_a_user_with_passwordless_sudo() {
    let server = TestServer::start().await;
    let id = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let script = "id -u; id -g; id -Gn; echo $HOME; getent passwd user | cut -d: -f7; \
                  stat -c '%U:%G' /home/user; ls -A /home/user | grep -c bashrc; \
                  touch /home/user/mine && echo home-writable; \
                  sudo -n id -u; sudo -n sh -c 'touch /root/x && echo root-writable'";
    let (status, out) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": script, "user": "user", "cwd": "/home/user"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["exit_code"], 0, "{out}");
    assert_eq!(
        out["stdout"].as_str().unwrap(),
        "1000\n1000\nuser sudo\n/home/user\n/bin/bash\nuser:user\n1\nhome-writable\n0\nroot-writable\n",
        "{out}"
    );
    assert_eq!(out["stderr"].as_str().unwrap(), "", "{out}");
    // Without a cwd, a user starts in its home, not in the workdir (/root).
    let (status, out) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "pwd", "user": "user"})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["stdout"], "/home/user\n", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outdated_base_is_rebuilt_before_its_next_sandbox() {
    let server = TestServer::start().await;
    // What an older Warren left: base's metadata without a version.
    let json = server.state_dir.join("pool/templates/base.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let old_build = meta["build_id"].clone();
    meta["source"].as_object_mut().unwrap().remove("version");
    std::fs::write(&json, serde_json::to_vec(&meta).unwrap()).unwrap();

    let id = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rebuilt: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_ne!(rebuilt["build_id"], old_build, "{rebuilt}");
    assert!(
        rebuilt["source"]["version"].as_u64().unwrap() >= 2,
        "{rebuilt}"
    );
    let (code, out) = server.sh(ADMIN_KEY, &id, "id user").await;
    assert_eq!(code, 0, "{out}");
}

/// The agent is the sandbox's init itself, a fork of the server's zygote
/// (no exec of a binary in the sandbox): it runs on the host's loader and
/// libraries, not the sandbox's, so a sandbox whose user moved its libc
/// away still starts and serves its files (nothing else in it can run until
/// the libc is back). Nothing of the host's binary is in the sandbox, its
/// `/proc/1/cmdline` names no host path, and its executable and environment
/// are not readable from inside.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_runs_on_its_own_libraries() {
    let server = TestServer::start().await;
    let id = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, cmdline) = server
        .sh(ADMIN_KEY, &id, "tr '\\0' ' ' < /proc/1/cmdline")
        .await;
    assert_eq!(code, 0, "{cmdline}");
    assert!(
        cmdline.starts_with("warren __sandbox-") && !cmdline.contains('/'),
        "{cmdline}"
    );
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "exec 2>/dev/null; test -e /run/warren-bin && echo mounted; \
             readlink /proc/1/exe || echo exe hidden; head -c 64 /proc/1/environ || echo environ hidden; \
             grep -c warren /proc/1/maps || echo maps hidden",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        ["exe hidden", "environ hidden", "maps hidden"],
        "{out}"
    );
    // Every agent is a copy of the zygote, so the zygote must hold nothing
    // of the server's environment (which has the admin key): seen from the
    // host, the init's environment block, and the environment of what the
    // agent runs.
    let pid = std::fs::read_to_string(server.state_dir.join("run").join(&id).join("pid"))
        .expect("the sandbox's pid file");
    let environ = std::fs::read(format!("/proc/{}/environ", pid.trim())).expect("its environ");
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("PATH="), "{environ}");
    assert!(
        !environ.contains(ADMIN_KEY) && !environ.contains("WARREN_ADMIN_KEY"),
        "{environ}"
    );
    let (code, env) = server.sh(ADMIN_KEY, &id, "env").await;
    assert_eq!(code, 0, "{env}");
    assert!(env.contains("PATH="), "{env}");
    assert!(
        !env.contains(ADMIN_KEY) && !env.contains("WARREN_ADMIN_KEY"),
        "{env}"
    );
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "echo kept > /root/note && mv /usr/lib/x86_64-linux-gnu/libc.so.6 /root/libc.so.6 && echo moved",
        )
        .await;
    assert_eq!((code, out.trim()), (0, "moved"));
    for action in ["stop", "start"] {
        let (status, body) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/{action}"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert_eq!(status, 200, "{action}: {body}");
    }
    let (status, note) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files?path=/root/note"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!((status, note), (200, json!("kept\n")));
    // Commands need the sandbox's own libc.
    let (code, _) = server.sh(ADMIN_KEY, &id, "true").await;
    assert_ne!(code, 0);
    let (status, body) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204, "{body}");
}

/// Files changed in the volume at `root` after the transaction that made
/// it (`btrfs subvolume find-new`, after a commit), by path.
fn written_since_made(root: &std::path::Path) -> Vec<String> {
    let show = std::process::Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(root)
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    let made: u64 = show
        .lines()
        .find(|l| l.trim_start().starts_with("Gen at creation:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no generation in {show}"));
    let sync = std::process::Command::new("btrfs")
        .args(["filesystem", "sync"])
        .arg(root)
        .status()
        .unwrap();
    assert!(sync.success());
    let out = std::process::Command::new("btrfs")
        .args(["subvolume", "find-new"])
        .arg(root)
        .arg((made + 1).to_string())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("inode"))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// Sandbox `id`'s host name resolves to 127.0.1.1 through one line of
/// Warren's in its `/etc/hosts`.
async fn names_its_host_once(server: &TestServer, id: &str) {
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            id,
            "getent hosts \"$(hostname)\"; grep -c warren /etc/hosts",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("127.0.1.1"), "{out}");
    assert!(out.contains(id), "{out}");
    assert!(out.ends_with("1\n"), "one line of ours: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_names_the_host_without_writing_the_sandbox_s_disk() {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let root = server.state_dir.join("pool/sandboxes").join(&id);

    // The host name resolves through /etc/hosts, which the sandbox can
    // read and append to, but the start wrote nothing into its disk.
    names_its_host_once(&server, &id).await;
    assert_eq!(written_since_made(&root), Vec::<String>::new());
    let on_disk = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert!(!on_disk.contains(&id), "{on_disk}");
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "echo '10.9.8.7 extra-name' >> /etc/hosts && getent hosts extra-name",
        )
        .await;
    assert_eq!(
        (code, out.trim()),
        (0, "10.9.8.7        extra-name"),
        "{out}"
    );

    // A restart names the host again, once.
    for op in ["stop", "start"] {
        let (status, body) = server
            .call("POST", &format!("/v1/sandboxes/{id}/{op}"), ADMIN_KEY, None)
            .await;
        assert_eq!(status, 200, "{op}: {body}");
    }
    names_its_host_once(&server, &id).await;
}
