//! E2B's control plane and sandbox plane on a real server, over real HTTP,
//! in E2B's shapes: create (v1 and v2), get, list with metadata and state
//! filters and `x-next-token` paging, kill, time to live (kill and
//! auto-pause), pause, connect and resume, set timeout, snapshots, fork,
//! metrics, logs, network; `X-API-KEY`, E2B error bodies, tenant
//! isolation; the `E2b-Sandbox-Id` plane (envd's port to the agent, other
//! ports through the tunnel) and the `{port}-{id}.{domain}` host form.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::TestServer;

/// An E2B request with `X-API-KEY`: (status, headers, JSON body or null).
async fn e2b(
    server: &TestServer,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server
        .http
        .request(method, server.url(path))
        .header("X-API-KEY", key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Creates a sandbox through `POST /v2/sandboxes`; panics unless 201.
async fn create(server: &TestServer, key: &str, body: Value) -> Value {
    let (status, _, created) = e2b(server, "POST", "/v2/sandboxes", key, Some(body)).await;
    assert_eq!(status, 201, "create: {created}");
    created
}

/// Asserts E2B's error body with `status`.
fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// The SDKs' encoding of a metadata filter (each key and value encoded,
/// joined as a query string, encoded again as the parameter's value).
fn metadata_param(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(&enc(k)), enc(&enc(v))))
        .collect();
    enc(&inner.join("&"))
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Polls `GET /sandboxes/{id}` until `done` holds.
async fn wait_e2b(
    server: &TestServer,
    key: &str,
    id: &str,
    timeout: Duration,
    done: impl Fn(u16, &Value) -> bool,
) -> (u16, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, _, body) = e2b(server, "GET", &format!("/sandboxes/{id}"), key, None).await;
        if done(status, &body) || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn e2b_create_get_list_kill_with_e2b_shapes_and_errors() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("e2b-a", None).await;
    let (_, other_key) = server.tenant("e2b-b", None).await;

    let created = create(
        &server,
        &key,
        json!({
            "templateID": "base",
            "timeout": 600,
            "metadata": {"owner": "me & you", "run": "1"},
            "envVars": {"GREETING": "hello e2b"},
            "secure": true,
            "autoPause": false,
            "mcp": null
        }),
    )
    .await;
    let id = created["sandboxID"].as_str().unwrap().to_string();
    assert!(!id.starts_with("sbx_"), "{created}");
    assert_eq!(created["templateID"], "base");
    assert_eq!(created["clientID"], "warren");
    assert_eq!(created["envdVersion"], warren_api::envd::ENVD_VERSION);
    let token = created["envdAccessToken"].as_str().unwrap();
    assert_eq!(token.len(), 64, "{created}");
    assert!(created["domain"].is_null());

    // The envVars are the sandbox's environment (checked through Warren).
    let (code, out) = server
        .sh(&key, &format!("sbx_{id}"), "echo \"$GREETING\"")
        .await;
    assert_eq!((code, out.trim()), (0, "hello e2b"));

    // Get, in both id forms.
    for form in [id.clone(), format!("sbx_{id}")] {
        let (status, _, info) =
            e2b(&server, "GET", &format!("/sandboxes/{form}"), &key, None).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["sandboxID"], id.as_str());
        assert_eq!(info["state"], "running");
        assert_eq!(info["templateID"], "base");
        assert_eq!(info["metadata"]["owner"], "me & you");
        assert_eq!(info["envdAccessToken"], token);
        assert!(info["cpuCount"].as_u64().unwrap() >= 1);
        assert!(info["memoryMB"].as_u64().unwrap() > 0);
        assert!(info["diskSizeMB"].is_u64());
        assert!(info["startedAt"].as_str().unwrap().ends_with('Z'));
        assert!(info["endAt"].as_str().unwrap() > info["startedAt"].as_str().unwrap());
        assert_eq!(info["lifecycle"]["onTimeout"], "kill");
    }

    // Two more, by the old route too; list with filters and paging.
    let second = create(
        &server,
        &key,
        json!({"templateID": "base", "metadata": {"run": "1"}}),
    )
    .await;
    let (status, _, third) = e2b(
        &server,
        "POST",
        "/sandboxes",
        &key,
        Some(json!({"templateID": "base", "metadata": {"run": "2"}})),
    )
    .await;
    assert_eq!(status, 201, "{third}");

    let path = format!("/v2/sandboxes?metadata={}", metadata_param(&[("run", "1")]));
    let (status, _, page) = e2b(&server, "GET", &path, &key, None).await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sandboxID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![id.as_str(), second["sandboxID"].as_str().unwrap()]
    );
    let path = format!(
        "/v2/sandboxes?metadata={}",
        metadata_param(&[("owner", "me & you"), ("run", "1")])
    );
    let (_, _, page) = e2b(&server, "GET", &path, &key, None).await;
    assert_eq!(page.as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page[0]["state"], "running");
    assert!(page[0].get("envdAccessToken").is_none(), "{page}");

    let (status, headers, page) = e2b(
        &server,
        "GET",
        "/v2/sandboxes?limit=2&state=running,paused",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page.as_array().unwrap().len(), 2);
    let next = headers["x-next-token"].to_str().unwrap().to_string();
    let (_, headers, rest) = e2b(
        &server,
        "GET",
        &format!("/v2/sandboxes?limit=2&nextToken={next}"),
        &key,
        None,
    )
    .await;
    assert_eq!(rest.as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest[0]["sandboxID"], third["sandboxID"]);
    assert!(headers.get("x-next-token").is_none());
    let (_, _, paused) = e2b(&server, "GET", "/v2/sandboxes?state=paused", &key, None).await;
    assert_eq!(paused, json!([]));
    let (status, _, old) = e2b(&server, "GET", "/sandboxes", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(old.as_array().unwrap().len(), 3);
    let (status, _, bad) = e2b(&server, "GET", "/v2/sandboxes?state=sleeping", &key, None).await;
    assert_error(status, &bad, 400);

    // Another tenant sees none of it: 404s and an empty list.
    let (status, _, body) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{id}"),
        &other_key,
        None,
    )
    .await;
    assert_error(status, &body, 404);
    let (status, _, body) = e2b(
        &server,
        "DELETE",
        &format!("/sandboxes/{id}"),
        &other_key,
        None,
    )
    .await;
    assert_error(status, &body, 404);
    let (_, _, list) = e2b(&server, "GET", "/v2/sandboxes", &other_key, None).await;
    assert_eq!(list, json!([]));

    // Keys: a bad or missing one is E2B's 401; Warren's bearer works too.
    let (status, _, body) = e2b(&server, "GET", "/v2/sandboxes", "e2b_0000", None).await;
    assert_error(status, &body, 401);
    let resp = server
        .http
        .get(server.url("/v2/sandboxes"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_error(401, &body, 401);
    let (status, list) = server.call("GET", "/v2/sandboxes", &key, None).await;
    assert_eq!(status, 200, "{list}");

    // Unknown template, bad body, bad timeout.
    let (status, _, body) = e2b(
        &server,
        "POST",
        "/v2/sandboxes",
        &key,
        Some(json!({"templateID": "no-such-template"})),
    )
    .await;
    assert_error(status, &body, 404);
    let (status, _, body) = e2b(
        &server,
        "POST",
        "/v2/sandboxes",
        &key,
        Some(json!({"templateID": 5})),
    )
    .await;
    assert_error(status, &body, 400);

    // Kill: 204, then 404 everywhere.
    let (status, _, _) = e2b(&server, "DELETE", &format!("/sandboxes/{id}"), &key, None).await;
    assert_eq!(status, 204);
    let (status, _, body) = e2b(&server, "GET", &format!("/sandboxes/{id}"), &key, None).await;
    assert_error(status, &body, 404);
    let (status, _, body) = e2b(&server, "DELETE", &format!("/sandboxes/{id}"), &key, None).await;
    assert_error(status, &body, 404);

    // Warren's own API is unchanged and sees E2B's sandboxes.
    let (status, list) = server.call("GET", "/v1/sandboxes", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn e2b_time_to_live_pause_connect_snapshots_and_fork() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("e2b-ttl", None).await;

    // The time to live kills...
    let doomed = create(&server, &key, json!({"templateID": "base", "timeout": 2})).await;
    let doomed = doomed["sandboxID"].as_str().unwrap().to_string();
    // ... and with autoPause pauses.
    let sleeper = create(
        &server,
        &key,
        json!({"templateID": "base", "timeout": 2, "autoPause": true}),
    )
    .await;
    let sleeper_id = sleeper["sandboxID"].as_str().unwrap().to_string();
    server
        .run(&key, &format!("sbx_{sleeper_id}"), "echo kept > /root/note")
        .await;
    let (status, body) = wait_e2b(&server, &key, &doomed, Duration::from_secs(20), |s, _| {
        s == 404
    })
    .await;
    assert_error(status, &body, 404);
    let (status, info) = wait_e2b(
        &server,
        &key,
        &sleeper_id,
        Duration::from_secs(20),
        |_, b| b["state"] == "paused",
    )
    .await;
    assert_eq!(
        (status, info["state"].as_str()),
        (200, Some("paused")),
        "{info}"
    );
    assert_eq!(info["lifecycle"]["onTimeout"], "pause");
    // Paused, it is not killed later on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, _, info) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(info["state"], "paused", "{info}");

    // Connect wakes it (201), files kept; again it is running (200).
    let (status, _, connected) = e2b(
        &server,
        "POST",
        &format!("/v2/sandboxes/{sleeper_id}/connect"),
        &key,
        Some(json!({"timeout": 600})),
    )
    .await;
    assert_eq!(status, 201, "{connected}");
    assert_eq!(connected["sandboxID"], sleeper_id.as_str());
    assert_eq!(connected["envdAccessToken"], sleeper["envdAccessToken"]);
    let (code, out) = server
        .sh(&key, &format!("sbx_{sleeper_id}"), "cat /root/note")
        .await;
    assert_eq!((code, out.trim()), (0, "kept"));
    let (status, _, _) = e2b(
        &server,
        "POST",
        &format!("/v2/sandboxes/{sleeper_id}/connect"),
        &key,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);

    // Set timeout moves endAt.
    let (_, _, before) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}"),
        &key,
        None,
    )
    .await;
    let (status, _, _) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/timeout"),
        &key,
        Some(json!({"timeout": 3600})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, _, after) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}"),
        &key,
        None,
    )
    .await;
    assert!(
        after["endAt"].as_str().unwrap() > before["endAt"].as_str().unwrap(),
        "{before} {after}"
    );
    let (status, _, body) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/timeout"),
        &key,
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, 400);

    // Pause: 204, then 409 (the SDKs' "already paused"); resume: 201.
    let (status, _, _) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/pause"),
        &key,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, _, info) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(info["state"], "paused");
    let (status, _, body) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/pause"),
        &key,
        None,
    )
    .await;
    assert_error(status, &body, 409);
    let (status, _, resumed) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/resume"),
        &key,
        Some(json!({"timeout": 600})),
    )
    .await;
    assert_eq!(status, 201, "{resumed}");
    let (status, _, body) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/resume"),
        &key,
        None,
    )
    .await;
    assert_error(status, &body, 409);

    // Snapshots are checkpoints; a snapshot id is a templateID.
    let (status, _, snap) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/snapshots"),
        &key,
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(status, 201, "{snap}");
    let snap_id = snap["snapshotID"].as_str().unwrap().to_string();
    assert_eq!(snap["names"], json!(["mine"]));
    let (status, _, list) = e2b(
        &server,
        "GET",
        &format!("/snapshots?sandboxID={sleeper_id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([{"snapshotID": snap_id, "names": ["mine"]}]));
    let from_snap = create(&server, &key, json!({"templateID": snap_id})).await;
    let (code, out) = server
        .sh(
            &key,
            &format!("sbx_{}", from_snap["sandboxID"].as_str().unwrap()),
            "cat /root/note",
        )
        .await;
    assert_eq!((code, out.trim()), (0, "kept"));

    // Fork: a list of results, each a reachable sandbox.
    let (status, _, forks) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{sleeper_id}/fork"),
        &key,
        Some(json!({"timeout": 600, "count": 1})),
    )
    .await;
    assert_eq!(status, 201, "{forks}");
    let fork = &forks[0]["sandbox"];
    assert_eq!(fork["envdVersion"], warren_api::envd::ENVD_VERSION);
    let (code, out) = server
        .sh(
            &key,
            &format!("sbx_{}", fork["sandboxID"].as_str().unwrap()),
            "cat /root/note",
        )
        .await;
    assert_eq!((code, out.trim()), (0, "kept"));

    // Metrics, logs, network.
    let (status, _, metrics) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}/metrics"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics[0]["memTotal"].as_u64().unwrap() > 0, "{metrics}");
    assert!(metrics[0]["cpuCount"].as_u64().unwrap() >= 1);
    assert!(metrics[0]["memUsed"].as_u64().unwrap() > 0, "{metrics}");
    assert!(metrics[0]["cpuUsedPct"].as_f64().is_some(), "{metrics}");
    let (status, _, all) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/metrics?sandbox_ids={sleeper_id},nope"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(all["sandboxes"][&sleeper_id].is_object(), "{all}");
    assert!(all["sandboxes"].get("nope").is_none());
    let (status, _, logs) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}/logs"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs["logs"].is_array() && logs["logEntries"].is_array(),
        "{logs}"
    );
    let (status, _, logs) = e2b(
        &server,
        "GET",
        &format!("/v2/sandboxes/{sleeper_id}/logs?limit=5"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{logs}");
    assert!(logs["logs"].as_array().unwrap().len() <= 5);
    let (status, _, body) = e2b(
        &server,
        "PUT",
        &format!("/sandboxes/{sleeper_id}/network"),
        &key,
        Some(json!({"allow_internet_access": false})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, _, info) = e2b(
        &server,
        "GET",
        &format!("/sandboxes/{sleeper_id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(info["allowInternetAccess"], false);

    // Deleting a snapshot (E2B deletes them as templates).
    let (status, _, _) = e2b(
        &server,
        "DELETE",
        &format!("/templates/{snap_id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, body) = e2b(
        &server,
        "DELETE",
        &format!("/templates/{snap_id}"),
        &key,
        None,
    )
    .await;
    assert_error(status, &body, 404);
}

/// Starts `cmd` as a managed process in the sandbox (Warren's route).
async fn spawn(server: &TestServer, key: &str, id: &str, cmd: &str) {
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            key,
            Some(json!({ "cmd": cmd })),
        )
        .await;
    assert!(status < 300, "{cmd}: {body}");
}

/// A request on the sandbox plane: `E2b-Sandbox-Id` and its port.
fn plane(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    id: &str,
    port: u16,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = server
        .http
        .request(method, server.url(path))
        .header("E2b-Sandbox-Id", id)
        .header("E2b-Sandbox-Port", port.to_string());
    if let Some(token) = token {
        req = req.header("X-Access-Token", token);
    }
    req
}

#[tokio::test]
async fn e2b_sandbox_plane_by_header_and_by_host() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("e2b-plane", None).await;
    let created = create(&server, &key, json!({"templateID": "base"})).await;
    let id = created["sandboxID"].as_str().unwrap().to_string();
    let token = created["envdAccessToken"].as_str().unwrap().to_string();
    let wid = format!("sbx_{id}");
    server
        .run(
            &key,
            &wid,
            "mkdir -p /srv/www && echo 'hello from e2b' > /srv/www/index.html",
        )
        .await;
    spawn(
        &server,
        &key,
        &wid,
        "cd /srv/www && python3 -m http.server 8000",
    )
    .await;

    // envd's port: the token is required, in envd's error shapes.
    let resp = plane(&server, reqwest::Method::GET, "/health", &id, 49983, None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 401, "{body}");
    let resp = plane(
        &server,
        reqwest::Method::POST,
        "/process.Process/List",
        &id,
        49983,
        Some("wrong"),
    )
    .header("Content-Type", "application/json")
    .body("{}")
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated", "{body}");
    // Another sandbox's token is no good either.
    let other = create(&server, &key, json!({"templateID": "base"})).await;
    let resp = plane(
        &server,
        reqwest::Method::GET,
        "/health",
        &id,
        49983,
        other["envdAccessToken"].as_str(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);

    // With the token the request reaches the agent (under /envd): its
    // answer, whatever envd's state on this branch, not this plane's.
    let resp = plane(
        &server,
        reqwest::Method::GET,
        "/health",
        &id,
        49983,
        Some(&token),
    )
    .header("Authorization", "Basic dXNlcjo=")
    .send()
    .await
    .unwrap();
    let health = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(health != 401 && health != 502, "{health} {text}");
    if !(200..300).contains(&health) {
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.contains("warren.dev/problems")),
            "the agent's problem: {text}"
        );
    }
    // Both id forms and the default port.
    let resp = server
        .http
        .get(server.url("/health"))
        .header("E2b-Sandbox-Id", &wid)
        .header("X-Access-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), health);

    // Another port: through the tunnel to python's server.
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let resp = plane(
            &server,
            reqwest::Method::GET,
            "/index.html",
            &id,
            8000,
            Some(&token),
        )
        .send()
        .await
        .unwrap();
        if resp.status() == 200 {
            break resp.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "port 8000: {}", resp.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(page.trim(), "hello from e2b");
    // E2B's ports are public: no token needed, by header or by host.
    let resp = plane(
        &server,
        reqwest::Method::GET,
        "/index.html",
        &id,
        8000,
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = server
        .http
        .get(server.url("/index.html"))
        .header(reqwest::header::HOST, format!("8000-{id}.localhost"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap().trim(), "hello from e2b");
    // A missing sandbox is envd's 502 (the SDKs' sandbox timeout).
    let resp = plane(
        &server,
        reqwest::Method::GET,
        "/health",
        "0000000000000000000000",
        49983,
        Some(&token),
    )
    .send()
    .await
    .unwrap();
    assert!(
        resp.status() == 401 || resp.status() == 502,
        "{}",
        resp.status()
    );

    // allowPublicTraffic: false needs the traffic token.
    let private = create(
        &server,
        &key,
        json!({"templateID": "base", "network": {"allowPublicTraffic": false}}),
    )
    .await;
    let pid = private["sandboxID"].as_str().unwrap().to_string();
    let traffic = private["trafficAccessToken"].as_str().unwrap().to_string();
    spawn(
        &server,
        &key,
        &format!("sbx_{pid}"),
        "cd / && python3 -m http.server 8000",
    )
    .await;
    let host = format!("8000-{pid}.localhost");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = server
            .http
            .get(server.url("/"))
            .header(reqwest::header::HOST, &host)
            .header("e2b-traffic-access-token", &traffic)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "private port 8000: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resp = server
        .http
        .get(server.url("/"))
        .header(reqwest::header::HOST, &host)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // A Warren-created sandbox: no public ports; connect gives its token.
    let warren = server.create(&key, json!({})).await;
    let warren_id = warren["id"].as_str().unwrap().to_string();
    let (status, _, connected) = e2b(
        &server,
        "POST",
        &format!("/v2/sandboxes/{warren_id}/connect"),
        &key,
        Some(json!({"timeout": 600})),
    )
    .await;
    assert_eq!(status, 200, "{connected}");
    let warren_token = connected["envdAccessToken"].as_str().unwrap();
    let resp = plane(
        &server,
        reqwest::Method::GET,
        "/health",
        &warren_id,
        49983,
        Some(warren_token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), health);
    let resp = server
        .http
        .get(server.url("/"))
        .header(
            reqwest::header::HOST,
            format!("8000-{}.localhost", &warren_id[4..]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "no preview of a Warren sandbox's port");
}

/// `GET /health` on envd's port by header; the status (not 401 nor 502
/// when the request reached the agent).
async fn envd_health(server: &TestServer, id: &str, token: &str) -> u16 {
    plane(
        server,
        reqwest::Method::GET,
        "/health",
        id,
        49983,
        Some(token),
    )
    .send()
    .await
    .unwrap()
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2b_auto_resume_on_traffic_and_tokens_survive_a_restart() {
    let mut server = TestServer::start().await;
    let (_, key) = server.tenant("e2b-restart", None).await;
    let created = create(
        &server,
        &key,
        json!({"templateID": "base", "timeout": 600, "autoPause": true, "autoResume": {"enabled": true}}),
    )
    .await;
    let id = created["sandboxID"].as_str().unwrap().to_string();
    let token = created["envdAccessToken"].as_str().unwrap().to_string();
    let reached = envd_health(&server, &id, &token).await;
    assert!(reached != 401 && reached != 502, "{reached}");

    // Paused, traffic on the sandbox plane resumes it (autoResume).
    let (status, _, _) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{id}/pause"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(envd_health(&server, &id, &token).await, reached);
    let (_, _, info) = e2b(&server, "GET", &format!("/sandboxes/{id}"), &key, None).await;
    assert_eq!(info["state"], "running", "{info}");
    assert_eq!(info["lifecycle"]["autoResume"], true);

    // Without autoResume, a paused sandbox is envd's 502 until connected.
    let plain = create(&server, &key, json!({"templateID": "base"})).await;
    let plain_id = plain["sandboxID"].as_str().unwrap().to_string();
    let plain_token = plain["envdAccessToken"].as_str().unwrap().to_string();
    let (status, _, _) = e2b(
        &server,
        "POST",
        &format!("/sandboxes/{plain_id}/pause"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let resp = plane(
        &server,
        reqwest::Method::GET,
        "/files?path=/etc/hostname",
        &plain_id,
        49983,
        Some(&plain_token),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 502, "{body}");

    // A restart keeps tokens, rows and deadlines.
    tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10)));
    server.spawn();
    assert_eq!(envd_health(&server, &id, &token).await, reached);
    let (_, _, info) = e2b(&server, "GET", &format!("/sandboxes/{id}"), &key, None).await;
    assert_eq!(info["lifecycle"]["onTimeout"], "pause", "{info}");
    assert_eq!(info["envdAccessToken"], token.as_str());
    let (status, _, connected) = e2b(
        &server,
        "POST",
        &format!("/v2/sandboxes/{plain_id}/connect"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 201, "{connected}");
    assert_eq!(connected["envdAccessToken"], plain_token.as_str());
    assert_eq!(envd_health(&server, &plain_id, &plain_token).await, reached);
}
