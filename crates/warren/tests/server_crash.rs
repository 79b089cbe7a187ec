//! The crash battery: rounds of `kill -9` of the server at a random moment
//! while clients create, run, checkpoint, restore, fork, hibernate, wake
//! and delete at once. After every restart:
//! - every sandbox the server acknowledged (and did not acknowledge
//!   deleting) exists, is not frozen or stuck in `creating`, and answers a
//!   command (after `start` or `wake` where it was stopped or hibernated);
//! - every acknowledged checkpoint exists, every acknowledged delete stays
//!   deleted;
//! - what was in flight either completed (a listed sandbox answers) or left
//!   no trace (no disk or run directory without its sandbox, no checkpoint
//!   volume without its checkpoint, nothing in the pool's scratch space).
//!
//! After the last round and a full delete, no cgroup, process, mount, run
//! directory or volume of the server is left. The rounds are random but
//! repeatable: the seed is printed, and `WARREN_CRASH_SEED` replays it.

mod server_common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};
use warren_runtime::Runtime;

/// Rounds of load and `kill -9`.
const ROUNDS: usize = 5;
/// Clients issuing operations at once.
const WORKERS: usize = 3;

/// A small xorshift generator: repeatable from its seed, shared by tasks.
struct Rng(AtomicU64);

impl Rng {
    fn next(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        x
    }

    fn below(&self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the server acknowledged.
#[derive(Default)]
struct Acked {
    sandboxes: HashSet<String>,
    deleted: HashSet<String>,
    /// Sandboxes whose delete was sent but not acknowledged (refused, or
    /// cut by the kill): gone or there, both are right; the check after
    /// the restart looks.
    maybe_deleted: HashSet<String>,
    /// checkpoint id → its sandbox.
    checkpoints: HashMap<String, String>,
}

/// A request's body.
enum Body {
    None,
    Json(Value),
    /// A checkpoint export, for `POST /v1/checkpoints/import`.
    Export(bytes::Bytes),
}

/// One request; `None` when the server did not answer (it was killed).
async fn call(
    base: &str,
    http: &reqwest::Client,
    method: &str,
    path: &str,
    body: Body,
) -> Option<(u16, Value)> {
    let mut req = http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
        .bearer_auth(ADMIN_KEY)
        .timeout(Duration::from_secs(30));
    match body {
        Body::None => {}
        Body::Json(body) => req = req.json(&body),
        Body::Export(bytes) => {
            req = req
                .header("content-type", "application/vnd.warren.checkpoint")
                .body(bytes)
        }
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

/// A random live sandbox the server acknowledged.
fn pick(acked: &Mutex<Acked>, rng: &Rng) -> Option<String> {
    let acked = acked.lock().unwrap();
    let live: Vec<&String> = acked.sandboxes.iter().collect();
    (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize].clone())
}

/// One client: random operations until `stop`.
async fn worker(
    base: String,
    acked: Arc<Mutex<Acked>>,
    rng: Arc<Rng>,
    stop: Arc<AtomicBool>,
    export: bytes::Bytes,
) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    while !stop.load(Ordering::Relaxed) {
        let op = rng.below(10);
        let target = pick(&acked, &rng);
        let (Some(id), true) = (target.clone(), op > 0) else {
            if let Some((201, body)) =
                call(&base, &http, "POST", "/v1/sandboxes", Body::Json(json!({}))).await
            {
                let id = body["id"].as_str().unwrap().to_string();
                acked.lock().unwrap().sandboxes.insert(id);
            }
            continue;
        };
        match op {
            1 | 2 => {
                call(
                    &base,
                    &http,
                    "POST",
                    &format!("/v1/sandboxes/{id}/processes/run"),
                    Body::Json(json!({"cmd": "echo x >> /root/log"})),
                )
                .await;
            }
            3 => {
                if let Some((201, body)) = call(
                    &base,
                    &http,
                    "POST",
                    &format!("/v1/sandboxes/{id}/checkpoints"),
                    Body::Json(json!({"name": "c"})),
                )
                .await
                {
                    let ckpt = body["id"].as_str().unwrap().to_string();
                    acked.lock().unwrap().checkpoints.insert(ckpt, id);
                }
            }
            4 | 5 => {
                let ckpt = {
                    let acked = acked.lock().unwrap();
                    acked
                        .checkpoints
                        .iter()
                        .find(|(_, s)| **s == id)
                        .map(|(c, _)| c.clone())
                };
                let Some(ckpt) = ckpt else { continue };
                if op == 4 {
                    call(
                        &base,
                        &http,
                        "POST",
                        &format!("/v1/sandboxes/{id}/restore"),
                        Body::Json(json!({"checkpoint_id": ckpt})),
                    )
                    .await;
                } else if let Some((201, body)) = call(
                    &base,
                    &http,
                    "POST",
                    "/v1/sandboxes",
                    Body::Json(json!({"from_checkpoint": ckpt})),
                )
                .await
                {
                    let fork = body["id"].as_str().unwrap().to_string();
                    acked.lock().unwrap().sandboxes.insert(fork);
                }
            }
            6 => {
                call(
                    &base,
                    &http,
                    "POST",
                    &format!("/v1/sandboxes/{id}/hibernate"),
                    Body::None,
                )
                .await;
            }
            7 => {
                call(
                    &base,
                    &http,
                    "POST",
                    &format!("/v1/sandboxes/{id}/wake"),
                    Body::None,
                )
                .await;
            }
            8 => {
                // An import not tied to the sandbox picked; a kill in the
                // middle of one must leave nothing behind.
                if let Some((201, body)) = call(
                    &base,
                    &http,
                    "POST",
                    "/v1/checkpoints/import",
                    Body::Export(export.clone()),
                )
                .await
                {
                    let ckpt = body["id"].as_str().unwrap().to_string();
                    acked
                        .lock()
                        .unwrap()
                        .checkpoints
                        .insert(ckpt, "imported".into());
                }
            }
            _ => {
                acked.lock().unwrap().maybe_deleted.insert(id.clone());
                if let Some((204, _)) = call(
                    &base,
                    &http,
                    "DELETE",
                    &format!("/v1/sandboxes/{id}"),
                    Body::None,
                )
                .await
                {
                    let mut acked = acked.lock().unwrap();
                    acked.sandboxes.remove(&id);
                    acked.deleted.insert(id);
                }
            }
        }
    }
}

/// Brings `id` to `running` (start or wake as its state needs) and runs a
/// command in it; panics with the round's seed when it cannot.
async fn answers(server: &TestServer, id: &str, seed: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server
            .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
            .await;
        assert_eq!(
            status, 200,
            "seed {seed}: acknowledged sandbox {id} is gone: {body}"
        );
        let state = body["state"].as_str().unwrap_or_default().to_string();
        assert_ne!(state, "creating", "seed {seed}: {id} is stuck creating");
        let action = match state.as_str() {
            "running" => None,
            "hibernated" => Some("wake"),
            "stopped" | "error" => Some("start"),
            _ => Some(""),
        };
        match action {
            None => break,
            Some("") => {}
            Some(action) => {
                server
                    .call(
                        "POST",
                        &format!("/v1/sandboxes/{id}/{action}"),
                        ADMIN_KEY,
                        None,
                    )
                    .await;
            }
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: {id} never runs again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !server.runtime().is_frozen(id),
        "seed {seed}: {id} is frozen"
    );
    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
        )
        .json(&json!({"cmd": "true"}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {id} does not answer: {e}"));
    assert_eq!(resp.status(), 200, "seed {seed}: {id}");
}

/// The ids of every checkpoint the server lists.
async fn all_checkpoints(server: &TestServer) -> HashSet<String> {
    let (status, listed) = server
        .call("GET", "/v1/checkpoints?limit=1000", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200, "{listed}");
    listed["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let seed = std::env::var("WARREN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash battery seed: {seed} (WARREN_CRASH_SEED={seed} replays it)");
    let rng = Arc::new(Rng(AtomicU64::new(seed)));
    let mut server = TestServer::start().await;
    let acked = Arc::new(Mutex::new(Acked::default()));

    // The export the import operations send: a small sandbox's checkpoint
    // (the admin's btrfs send stream, the kernel receiving it as root).
    let source = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .run(ADMIN_KEY, &source, "echo imported > /root/mark")
        .await;
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{source}/checkpoints"),
            ADMIN_KEY,
            Some(json!({"name": "exported"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let exported = body["id"].as_str().unwrap().to_string();
    let resp = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/checkpoints/{exported}/export"),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let export = resp.bytes().await.unwrap();
    eprintln!("export: {} KiB", export.len() >> 10);
    acked
        .lock()
        .unwrap()
        .checkpoints
        .insert(exported, source.clone());
    acked.lock().unwrap().sandboxes.insert(source);

    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                tokio::spawn(worker(
                    server.base.clone(),
                    acked.clone(),
                    rng.clone(),
                    stop.clone(),
                    export.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1500 + rng.below(2500))).await;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.await;
        }
        server.spawn();

        // Deletes that were not acknowledged happened or did not: see which.
        let maybe: Vec<String> = acked.lock().unwrap().maybe_deleted.drain().collect();
        for id in maybe {
            let (status, _) = server
                .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
                .await;
            if status == 404 {
                acked.lock().unwrap().sandboxes.remove(&id);
            }
        }
        let (sandboxes, deleted, checkpoints) = {
            let guard = acked.lock().unwrap();
            (
                guard.sandboxes.clone(),
                guard.deleted.clone(),
                guard.checkpoints.clone(),
            )
        };
        for id in &sandboxes {
            answers(&server, id, seed).await;
        }
        for id in &deleted {
            let (status, body) = server
                .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
                .await;
            assert_eq!(status, 404, "seed {seed}: deleted {id} is back: {body}");
        }
        for ckpt in checkpoints.keys() {
            let (status, body) = server
                .call("GET", &format!("/v1/checkpoints/{ckpt}"), ADMIN_KEY, None)
                .await;
            assert_eq!(
                status, 200,
                "seed {seed}: acknowledged checkpoint {ckpt} is gone: {body}"
            );
        }
        // In-flight work completed (it answers) or left no trace.
        let (_, listed) = server
            .call("GET", "/v1/sandboxes?limit=1000", ADMIN_KEY, None)
            .await;
        let listed: HashSet<String> = listed["items"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        for id in listed.difference(&sandboxes) {
            answers(&server, id, seed).await;
        }
        for volume in server.sandbox_volumes() {
            assert!(
                listed.contains(&volume),
                "seed {seed}: disk {volume} without its sandbox"
            );
        }
        for dir in server.run_dirs() {
            assert!(
                listed.contains(&dir),
                "seed {seed}: run directory {dir} without its sandbox"
            );
        }
        let known = all_checkpoints(&server).await;
        for volume in server_common::list_dir(&server.state_dir.join("pool/checkpoints")) {
            assert!(
                known.contains(&volume),
                "seed {seed}: checkpoint volume {volume} without its checkpoint"
            );
        }
        let scratch = server_common::list_dir(&server.state_dir.join("pool/tmp"));
        assert!(
            scratch.is_empty(),
            "seed {seed}: left in the pool's scratch space: {scratch:?}"
        );
        eprintln!(
            "round {round}: {} sandboxes, {} deletes, {} checkpoints acknowledged",
            sandboxes.len(),
            deleted.len(),
            checkpoints.len()
        );
    }

    // Delete everything; nothing of the server is left on the machine.
    let (_, listed) = server
        .call("GET", "/v1/sandboxes?limit=1000", ADMIN_KEY, None)
        .await;
    for sandbox in listed["items"].as_array().unwrap() {
        let id = sandbox["id"].as_str().unwrap();
        let (status, body) = server
            .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
            .await;
        assert_eq!(status, 204, "seed {seed}: deleting {id}: {body}");
    }
    // Every checkpoint, imports the kill cut off before their answer included.
    for ckpt in all_checkpoints(&server).await {
        let (status, body) = server
            .call(
                "DELETE",
                &format!("/v1/checkpoints/{ckpt}"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert!(
            status == 204 || status == 404,
            "seed {seed}: deleting {ckpt}: {status} {body}"
        );
    }
    assert!(
        server.sandbox_volumes().is_empty(),
        "{:?}",
        server.sandbox_volumes()
    );
    assert!(server.run_dirs().is_empty(), "{:?}", server.run_dirs());
    assert!(
        server_common::list_dir(&server.state_dir.join("pool/checkpoints")).is_empty(),
        "checkpoint volumes left"
    );
    // Killed processes are reaped by the machine's init, not by us: wait
    // for them, and count zombies as gone (they are).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<String> = server_common::processes_in(&server.cgroup_parent)
            .into_iter()
            .filter_map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let zombie = status
                    .lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'));
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
                (!zombie).then(|| format!("{pid} {cmdline:?}"))
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: processes left: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sandbox_cgroups: Vec<_> = server_common::cgroup_dirs(&server.cgroup_parent)
        .into_iter()
        .flat_map(|d| server_common::list_dir(&d))
        .filter(|name| name.starts_with("sbx_"))
        .collect();
    assert!(sandbox_cgroups.is_empty(), "{sandbox_cgroups:?}");
    assert!(
        server_common::mounts_under(&server.state_dir.join("run")).is_empty(),
        "{:?}",
        server_common::mounts_under(&server.state_dir.join("run"))
    );
}
