//! The warm pool on a real server: a create takes a pooled sandbox and makes
//! it the caller's, and the caller cannot tell it from a fresh one (id,
//! hostname, env, files, cgroup limits, network policy); a tenant at its
//! quota gets the quota error and the pooled sandbox stays pooled; a refill
//! that fails (a template deleted, a template that never existed) leaves
//! creates working and hands out nothing stale; a server killed with
//! `kill -9` while refilling loses no acknowledged sandbox and leaks no
//! pooled one.

mod network_support;
mod server_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use network_support::{Internet, Slot, PROBE, PROBE_PATH};
use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

/// The pool of `template` as `GET /v1/admin/pools` shows it.
async fn pool(server: &TestServer, template: &str) -> Value {
    let (status, pools) = server.call("GET", "/v1/admin/pools", ADMIN_KEY, None).await;
    assert_eq!(status, 200, "{pools}");
    pools["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["template"] == template)
        .cloned()
        .unwrap_or(json!({ "template": template, "size": 0, "ready": 0 }))
}

/// Waits until `template`'s pool has at least `ready` sandboxes.
async fn wait_ready(server: &TestServer, template: &str, ready: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = pool(server, template).await;
        if view["ready"].as_u64().unwrap() >= ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pool never had {ready} ready: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids of every sandbox with a cgroup under the server's parent.
fn known(server: &TestServer) -> BTreeSet<String> {
    server.runtime().known().into_iter().collect()
}

/// Waits until the sandboxes with cgroups are exactly `expected` (a refill
/// in flight when a pool shrinks finishes, then is destroyed).
async fn wait_known(server: &TestServer, expected: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = known(server);
        if &now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sandboxes {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets `template`'s pool size; the pool's view.
async fn set_pool(server: &TestServer, template: &str, size: u32) -> (u16, Value) {
    server
        .call(
            "PUT",
            &format!("/v1/admin/pools/{template}"),
            ADMIN_KEY,
            Some(json!({ "size": size })),
        )
        .await
}

/// A cgroup v1 (or v2) limit file of sandbox `id`, trimmed.
fn limit(server: &TestServer, v1: (&str, &str), v2: &str, id: &str) -> String {
    let (controller, file) = v1;
    let candidates = [
        format!(
            "/sys/fs/cgroup/{controller}/{}/{id}/{file}",
            server.cgroup_parent
        ),
        format!("/sys/fs/cgroup/{}/{id}/{v2}", server.cgroup_parent),
    ];
    candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| panic!("no limit file among {candidates:?}"))
        .trim()
        .to_string()
}

/// What the caller can see of sandbox `id` from inside and from the host:
/// everything but the id must match between a pooled and a fresh sandbox.
async fn observe(server: &TestServer, id: &str, internet: &Internet) -> Value {
    let (_, hostname) = server.sh(ADMIN_KEY, id, "hostname").await;
    assert_eq!(hostname.trim(), id, "the hostname is the id");
    // Before anything of the test lands on its disk.
    let (code, files) = server
        .sh(
            ADMIN_KEY,
            id,
            // Builtins only: no process of the probe's own in the list.
            "ls -A /tmp /root /home/user /run/warren; \
             for p in /proc/[0-9]*; do read -r c < $p/comm && echo \"$c\"; done",
        )
        .await;
    assert_eq!(code, 0, "{files}");
    let (_, env) = server
        .sh(ADMIN_KEY, id, "echo \"$GREETING|$PATH|$HOME\"")
        .await;
    let resp = server
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{id}/files?path={PROBE_PATH}"),
            ADMIN_KEY,
        )
        .body(PROBE)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let out = server
        .run(
            ADMIN_KEY,
            id,
            &format!("python3 {PROBE_PATH} http {} 80", internet.a()),
        )
        .await;
    let (_, view) = server
        .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    json!({
        "files": files,
        "env": env.trim(),
        "egress": out["stdout"].as_str().unwrap().trim(),
        "memory": limit(server, ("memory", "memory.limit_in_bytes"), "memory.max", id),
        "pids": limit(server, ("pids", "pids.max"), "pids.max", id),
        "cpu": limit(server, ("cpu", "cpu.cfs_quota_us"), "cpu.max", id),
        "state": view["state"],
        "labels": view["labels"],
        "metadata": view["metadata"],
        "resources": view["resources"],
        "network": view["network"],
        "timeout_secs": view["timeout_secs"],
        "ttl_secs": view["ttl_secs"],
        "has_expiry": view["expires_at"].is_string(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn pooled_sandboxes_are_indistinguishable_from_fresh_ones() {
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let mut args = slot.server_args(Some(internet.a()));
    args.extend(["--pool".to_string(), "base=2".to_string()]);
    let server = TestServer::start_with(Options {
        args,
        ..Options::default()
    })
    .await;
    wait_ready(&server, "base", 2).await;
    let pooled = known(&server);
    assert_eq!(pooled.len(), 2, "{pooled:?}");
    // Pooled sandboxes belong to nobody: no list shows them.
    let (_, list) = server.call("GET", "/v1/sandboxes", ADMIN_KEY, None).await;
    assert_eq!(list["items"], json!([]), "{list}");

    let body = json!({
        "envs": { "GREETING": "hello" },
        "labels": { "team": "a" },
        "metadata": { "run": "7" },
        "resources": { "cpus": 0.5, "memory_mb": 300, "pids": 100 },
        "network": { "egress": "allow" },
        "timeout_secs": 120,
        "ttl_secs": 600,
    });
    let warm = server.create(ADMIN_KEY, body.clone()).await;
    let warm_id = warm["id"].as_str().unwrap().to_string();
    assert!(
        pooled.contains(&warm_id),
        "{warm_id} was not one of the pooled {pooled:?}"
    );

    // Off: the ready sandbox left is destroyed, and the next create is cold.
    let (status, view) = set_pool(&server, "base", 0).await;
    assert_eq!((status, view["size"].as_u64()), (200, Some(0)), "{view}");
    wait_known(&server, &BTreeSet::from([warm_id.clone()])).await;
    let cold = server.create(ADMIN_KEY, body).await;
    let cold_id = cold["id"].as_str().unwrap().to_string();
    assert!(!pooled.contains(&cold_id));

    let (_, metrics) = server.call("GET", "/metrics", ADMIN_KEY, None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for line in [
        "warren_sandbox_creates_total{source=\"pool\"} 1",
        "warren_sandbox_creates_total{source=\"cold\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line:?} in {metrics}");
    }

    let from_pool = observe(&server, &warm_id, &internet).await;
    let fresh = observe(&server, &cold_id, &internet).await;
    assert_eq!(
        from_pool, fresh,
        "a pooled sandbox differs from a fresh one"
    );
    assert_eq!(
        fresh["env"].as_str().unwrap().split('|').next(),
        Some("hello")
    );
    assert_eq!(fresh["egress"], "ok stand-in a");
    assert_eq!(fresh["memory"], (300u64 << 20).to_string());
    assert_eq!(fresh["pids"], "100");
    assert!(
        fresh["cpu"].as_str().unwrap().starts_with("50000"),
        "{fresh}"
    );

    // A pooled sandbox's `deny` is loopback only, as a fresh one's.
    set_pool(&server, "base", 1).await;
    wait_ready(&server, "base", 1).await;
    let pooled = known(&server);
    let deny = server
        .create(ADMIN_KEY, json!({ "network": { "egress": "deny" } }))
        .await;
    let deny_id = deny["id"].as_str().unwrap();
    assert!(pooled.contains(deny_id));
    let out = server
        .run(ADMIN_KEY, deny_id, "ls /sys/class/net | tr '\\n' ' '")
        .await;
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "lo", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_at_its_quota_gets_an_error_not_a_pooled_sandbox() {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into(), "--pool".into(), "base=2".into()],
        ..Options::default()
    })
    .await;
    wait_ready(&server, "base", 2).await;
    let pooled = known(&server);
    let (tenant, key) = server.tenant("pooled", Some(1)).await;
    let first = server.create(&key, json!({})).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    assert!(pooled.contains(&first_id));
    assert_eq!(first["tenant_id"], tenant);

    wait_ready(&server, "base", 2).await;
    let before = known(&server);
    let (status, problem) = server
        .call("POST", "/v1/sandboxes", &key, Some(json!({})))
        .await;
    assert_eq!(problem["code"], "quota_exceeded", "{status} {problem}");
    // The pooled sandbox it would have had is still pooled, untouched.
    assert_eq!(known(&server), before);
    assert_eq!(pool(&server, "base").await["ready"], 2);
    let (_, list) = server.call("GET", "/v1/sandboxes", &key, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    // Pooled sandboxes count against no quota: another tenant's create
    // still takes one.
    let (_, other) = server.tenant("other", Some(1)).await;
    let second = server.create(&other, json!({})).await;
    assert!(before.contains(second["id"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_refill_leaves_creates_working() {
    let server = TestServer::start_with(Options {
        args: vec![
            "--no-network".into(),
            "--pool".into(),
            "base=1".into(),
            // Never buildable: its refills fail and back off.
            "--pool".into(),
            "missing=2".into(),
        ],
        ..Options::default()
    })
    .await;
    let resp = server
        .req(
            reqwest::Method::POST,
            "/v1/templates/pooltpl/build",
            ADMIN_KEY,
        )
        .body("run = [\"echo made > /made\"]")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let built: Value = resp.json().await.unwrap();
    assert_eq!(built["name"], "pooltpl", "{built}");

    let (status, view) = set_pool(&server, "pooltpl", 2).await;
    assert_eq!(status, 200, "{view}");
    wait_ready(&server, "pooltpl", 2).await;
    wait_ready(&server, "base", 1).await;
    assert_eq!(pool(&server, "missing").await["ready"], 0);
    let (status, problem) = set_pool(&server, "nosuch", 1).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("template_not_found"))
    );

    let made = server
        .create(ADMIN_KEY, json!({ "template": "pooltpl" }))
        .await;
    let made_id = made["id"].as_str().unwrap().to_string();
    assert_eq!(
        server.sh(ADMIN_KEY, &made_id, "cat /made").await,
        (0, "made\n".to_string())
    );
    wait_ready(&server, "pooltpl", 2).await;

    // The template goes: its pooled sandboxes are never handed out.
    let (status, _) = server
        .call("DELETE", "/v1/templates/pooltpl", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
    let (status, problem) = server
        .call(
            "POST",
            "/v1/sandboxes",
            ADMIN_KEY,
            Some(json!({ "template": "pooltpl" })),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("template_not_found")),
        "{problem}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool(&server, "pooltpl").await["ready"] != 0 {
        assert!(
            Instant::now() < deadline,
            "the pool kept sandboxes of a deleted template"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Only the made sandbox and base's pooled one remain.
    let deadline = Instant::now() + Duration::from_secs(30);
    while known(&server).len() != 2 {
        assert!(Instant::now() < deadline, "leftovers: {:?}", known(&server));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Creates of base work throughout, pooled or not.
    for _ in 0..3 {
        let sandbox = server.create(ADMIN_KEY, json!({})).await;
        let id = sandbox["id"].as_str().unwrap();
        assert_eq!(server.sh(ADMIN_KEY, id, "echo ok").await.1, "ok\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_while_refilling_loses_nothing_and_leaks_nothing() {
    let mut server = TestServer::start_with(Options {
        args: vec!["--no-network".into(), "--pool".into(), "base=40".into()],
        ..Options::default()
    })
    .await;
    wait_ready(&server, "base", 1).await;
    let kept = server.create(ADMIN_KEY, json!({})).await;
    let kept_id = kept["id"].as_str().unwrap().to_string();
    server
        .run(ADMIN_KEY, &kept_id, "echo acknowledged > /root/kept")
        .await;
    // Kill it in the middle of refilling.
    wait_ready(&server, "base", 3).await;
    assert!(pool(&server, "base").await["ready"].as_u64().unwrap() < 40);
    server.kill9();
    let mut pooled: BTreeSet<String> = known(&server);
    pooled.extend(server.sandbox_volumes());
    pooled.extend(server.run_dirs());
    pooled.remove(&kept_id);
    assert!(pooled.len() >= 3, "{pooled:?}");

    server.spawn();
    // The acknowledged sandbox is there, running, with its file.
    let (status, view) = server
        .call("GET", &format!("/v1/sandboxes/{kept_id}"), ADMIN_KEY, None)
        .await;
    assert_eq!((status, view["state"].as_str()), (200, Some("running")));
    assert_eq!(
        server.sh(ADMIN_KEY, &kept_id, "cat /root/kept").await,
        (0, "acknowledged\n".to_string())
    );
    // Nothing the old pool made survived the restart.
    let now: BTreeSet<String> = known(&server)
        .into_iter()
        .chain(server.sandbox_volumes())
        .chain(server.run_dirs())
        .collect();
    let leaked: Vec<&String> = pooled.intersection(&now).collect();
    assert!(leaked.is_empty(), "leaked pooled sandboxes: {leaked:?}");
    // And the new pool's go when it is turned off.
    set_pool(&server, "base", 0).await;
    wait_known(&server, &BTreeSet::from([kept_id.clone()])).await;
    // Their disks and run directories go right after their cgroups.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.sandbox_volumes() != vec![kept_id.clone()]
        || server.run_dirs() != vec![kept_id.clone()]
    {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?} {:?}",
            server.sandbox_volumes(),
            server.run_dirs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_command_sees_the_callers_envs_so_such_creates_start_cold() {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let resp = server
        .req(
            reqwest::Method::POST,
            "/v1/templates/starter/build",
            ADMIN_KEY,
        )
        .body("start = \"echo \\\"greeting=$GREETING\\\" > /tmp/started; sleep 3600\"")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, view) = set_pool(&server, "starter", 2).await;
    assert_eq!(status, 200, "{view}");
    wait_ready(&server, "starter", 2).await;
    let pooled = known(&server);

    let started = |id: String| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (code, out) = server.sh(ADMIN_KEY, &id, "cat /tmp/started").await;
                if code == 0 {
                    return out;
                }
                assert!(Instant::now() < deadline, "the start command never ran");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // Without envs: from the pool, its start command already running.
    let plain = server
        .create(ADMIN_KEY, json!({ "template": "starter" }))
        .await;
    let plain_id = plain["id"].as_str().unwrap().to_string();
    assert!(pooled.contains(&plain_id));
    assert_eq!(started(plain_id).await, "greeting=\n");
    // With envs: cold, and the start command sees them.
    let with_env = server
        .create(
            ADMIN_KEY,
            json!({ "template": "starter", "envs": { "GREETING": "hi" } }),
        )
        .await;
    let env_id = with_env["id"].as_str().unwrap().to_string();
    assert!(!pooled.contains(&env_id));
    assert_eq!(started(env_id).await, "greeting=hi\n");
}
