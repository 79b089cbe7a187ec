//! `GET /v1/events` on a real server with real sandboxes: a tenant sees
//! exactly its sandboxes' state changes, in order (create, stop, start,
//! hibernate, wake, fork, delete; the reaper's idle stop and ttl destroy),
//! and nothing of another tenant's; the admin key sees everybody's with
//! their tenant; the warm pool's own sandboxes are never seen (a pooled
//! create starts at `running`); `?sandbox_id=` filters; bad keys, bad filters and one
//! stream too many are problems; idle streams carry keep-alives; streams
//! end cleanly (and at once) when the server stops; a sandbox an event
//! announces can be read at once. The Rust client's
//! `Client::events` and `warren events --json` follow the same changes.

mod server_common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

/// How long any one expected event may take (a create or a wake boots a
/// sandbox; the reaper runs every second).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One open event stream, read over raw HTTP.
struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    /// Comment lines seen (keep-alives).
    comments: Vec<String>,
}

/// What [`Events::next`] read.
#[derive(Debug, PartialEq)]
enum Next {
    /// `event:` name and `data:` as JSON.
    Event(String, Value),
    /// The server ended the stream cleanly.
    End,
    /// Nothing within the time given.
    Timeout,
}

impl Events {
    /// Opens `GET /v1/events{query}` with `key`; panics unless 200 SSE.
    async fn open(server: &TestServer, key: &str, query: &str) -> Events {
        Self::send(server.req(reqwest::Method::GET, &format!("/v1/events{query}"), key)).await
    }

    /// Sends `req` (a `GET /v1/events`); panics unless 200 SSE.
    async fn send(req: reqwest::RequestBuilder) -> Events {
        let resp = req.send().await.expect("GET /v1/events");
        assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
            comments: Vec::new(),
        }
    }

    /// The next event within `timeout`.
    async fn next(&mut self, timeout: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("utf-8 events");
                let (mut name, mut data) = (String::new(), String::new());
                for line in text.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        self.comments.push(comment.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).expect("JSON data");
                return Next::Event(name, data);
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Next::Timeout,
                Ok(None) => return Next::End,
                Ok(Some(Err(e))) => panic!("the event stream broke: {e}"),
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
            }
        }
    }

    /// The next `sandbox` event's data; panics on anything else.
    async fn sandbox(&mut self) -> Value {
        match self.next(EVENT_TIMEOUT).await {
            Next::Event(name, data) if name == "sandbox" => data,
            other => panic!("expected a sandbox event, got {other:?}"),
        }
    }

    /// The states of each sandbox's events, in order, read until every one
    /// of `ids` is `destroyed`.
    async fn until_destroyed(&mut self, ids: &[&str]) -> BTreeMap<String, Vec<String>> {
        let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
        while !ids.iter().all(|id| {
            states
                .get(*id)
                .and_then(|s| s.last())
                .is_some_and(|s| s == "destroyed")
        }) {
            let event = self.sandbox().await;
            states
                .entry(event["sandbox_id"].as_str().unwrap().to_string())
                .or_default()
                .push(event["state"].as_str().unwrap().to_string());
        }
        states
    }

    /// Asserts nothing arrives for `quiet`.
    async fn assert_quiet(&mut self, quiet: Duration) {
        let next = self.next(quiet).await;
        assert_eq!(next, Next::Timeout, "expected nothing more");
    }
}

fn id_of(sandbox: &Value) -> String {
    sandbox["id"].as_str().expect("an id").to_string()
}

async fn post(server: &TestServer, key: &str, path: &str) -> Value {
    let (status, body) = server.call("POST", path, key, None).await;
    assert!(
        status == 200 || status == 201,
        "POST {path}: {status} {body}"
    );
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_sees_its_own_changes_in_order_and_the_admin_sees_all() {
    let server = TestServer::start().await;
    let (tenant_a, key_a) = server.tenant("a", None).await;
    let (tenant_b, key_b) = server.tenant("b", None).await;
    let mut a = Events::open(&server, &key_a, "").await;
    let mut b = Events::open(&server, &key_b, "").await;
    let mut admin = Events::open(&server, ADMIN_KEY, "").await;
    // `?access_token=` works as for every route.
    let mut a_by_query = Events::send(
        server
            .http
            .get(server.url(&format!("/v1/events?access_token={key_a}"))),
    )
    .await;

    let theirs = id_of(&server.create(&key_b, json!({})).await);
    let id = id_of(&server.create(&key_a, json!({})).await);
    // A stream of this sandbox alone, opened once it exists.
    let mut only = Events::open(&server, &key_a, &format!("?sandbox_id={id}")).await;
    for action in ["stop", "start", "hibernate", "wake"] {
        post(&server, &key_a, &format!("/v1/sandboxes/{id}/{action}")).await;
    }
    let fork = post(&server, &key_a, &format!("/v1/sandboxes/{id}/fork")).await;
    let forked = id_of(&fork["items"][0]);
    for gone in [&id, &forked] {
        let (status, body) = server
            .call("DELETE", &format!("/v1/sandboxes/{gone}"), &key_a, None)
            .await;
        assert_eq!(status, 204, "{body}");
    }

    let lifecycle = [
        "creating",
        "running",
        "stopped",
        "running",
        "hibernated",
        "running",
        "destroyed",
    ];
    let forked_lifecycle = ["creating", "running", "destroyed"];
    for stream in [&mut a, &mut a_by_query] {
        let seen = stream.until_destroyed(&[&id, &forked]).await;
        assert_eq!(seen.len(), 2, "only tenant a's sandboxes: {seen:?}");
        assert_eq!(seen[&id], lifecycle);
        assert_eq!(seen[&forked], forked_lifecycle);
    }
    let seen = only.until_destroyed(&[&id]).await;
    assert_eq!(seen.len(), 1, "only the filtered sandbox: {seen:?}");
    assert_eq!(seen[&id], &lifecycle[2..]);
    a.assert_quiet(Duration::from_millis(500)).await;
    only.assert_quiet(Duration::from_millis(300)).await;

    // The admin sees both tenants' changes, each with its tenant and time.
    let mut owners = BTreeMap::new();
    loop {
        let event = admin.sandbox().await;
        let sandbox = event["sandbox_id"].as_str().unwrap().to_string();
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
        owners.insert(sandbox.clone(), event["tenant_id"].clone());
        if sandbox == forked && event["state"] == "destroyed" {
            break;
        }
    }
    assert_eq!(owners[&theirs], json!(tenant_b));
    assert_eq!(owners[&id], json!(tenant_a));
    assert_eq!(owners[&forked], json!(tenant_a));

    // Tenant b saw its own sandbox and none of a's, up to its own delete.
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{theirs}"), &key_b, None)
        .await;
    assert_eq!(status, 204);
    let seen = b.until_destroyed(&[&theirs]).await;
    assert_eq!(
        seen.len(),
        1,
        "tenant b saw another tenant's sandbox: {seen:?}"
    );
    assert_eq!(seen[&theirs], forked_lifecycle);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reapers_idle_stop_and_ttl_destroy_are_changes_too() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("t", None).await;
    let mut events = Events::open(&server, &key, "").await;
    let idle = id_of(&server.create(&key, json!({"timeout_secs": 2})).await);
    let doomed = id_of(
        &server
            .create(&key, json!({"ttl_secs": 3, "timeout_secs": 0}))
            .await,
    );
    let mut seen: Vec<(String, String)> = Vec::new();
    while !(seen.contains(&(idle.clone(), "stopped".into()))
        && seen.contains(&(doomed.clone(), "destroyed".into())))
    {
        let event = events.sandbox().await;
        assert!(
            event.get("tenant_id").is_none(),
            "a tenant is shown no owner: {event}"
        );
        seen.push((
            event["sandbox_id"].as_str().unwrap().into(),
            event["state"].as_str().unwrap().into(),
        ));
    }
    let of = |id: &str| -> Vec<&str> {
        seen.iter()
            .filter(|(s, _)| s == id)
            .map(|(_, state)| state.as_str())
            .collect()
    };
    assert_eq!(of(&idle), ["creating", "running", "stopped"]);
    assert_eq!(of(&doomed), ["creating", "running", "destroyed"]);
    let (_, stopped) = server
        .call("GET", &format!("/v1/sandboxes/{idle}"), &key, None)
        .await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
}

/// Waits until the warm pool of `base` has `ready` sandboxes.
async fn wait_pool_ready(server: &TestServer, ready: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, pools) = server.call("GET", "/v1/admin/pools", ADMIN_KEY, None).await;
        assert_eq!(status, 200, "{pools}");
        let base = pools["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["template"] == "base")
            .cloned()
            .unwrap_or_default();
        if base["ready"].as_u64().unwrap_or(0) >= ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the pool never had {ready} ready: {pools}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server whose `base` pool holds 2 ready sandboxes, the admin key's
/// stream (opened before the pool filled) and a tenant's key.
async fn with_a_ready_pool() -> (TestServer, Events, String) {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into(), "--pool".into(), "base=2".into()],
        ..Options::default()
    })
    .await;
    let admin = Events::open(&server, ADMIN_KEY, "").await;
    let (_, key) = server.tenant("t", None).await;
    wait_pool_ready(&server, 2).await;
    (server, admin, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_warm_pools_sandboxes_are_unseen_until_handed_over() {
    let (server, mut admin, key) = with_a_ready_pool().await;
    let id = id_of(&server.create(&key, json!({})).await);
    // The pool makes another one for the one it handed over: unseen too.
    wait_pool_ready(&server, 2).await;
    let (status, body) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), &key, None)
        .await;
    assert_eq!(status, 204, "{body}");
    let seen = admin.until_destroyed(&[&id]).await;
    assert_eq!(seen.len(), 1, "a pooled sandbox was seen: {seen:?}");
    // Handed over running: no `creating`.
    assert_eq!(seen[&id], ["running", "destroyed"]);
}

/// A follower that reads each sandbox an event announces finds it, even
/// while the create is still going: pooled creates (announced `running`)
/// and cold ones (announced `creating`) alike.
#[tokio::test(flavor = "multi_thread")]
async fn every_sandbox_an_event_announces_can_be_read_at_once() {
    let (server, mut admin, key) = with_a_ready_pool().await;
    const CREATES: usize = 5;
    let creates = futures::future::join_all(
        (0..CREATES).map(|_| async { id_of(&server.create(&key, json!({})).await) }),
    );
    let follow = async {
        let mut read = Vec::new();
        while read.len() < CREATES {
            let event = admin.sandbox().await;
            let id = event["sandbox_id"].as_str().unwrap().to_string();
            if read.contains(&id) {
                continue;
            }
            let (status, body) = server
                .call("GET", &format!("/v1/sandboxes/{id}"), &key, None)
                .await;
            assert_eq!(status, 200, "announced {event} but GET answered {body}");
            read.push(id);
        }
        read
    };
    let (mut made, mut read) = tokio::join!(creates, follow);
    made.sort();
    read.sort();
    assert_eq!(made, read);
    for id in &made {
        let (status, body) = server
            .call("DELETE", &format!("/v1/sandboxes/{id}"), &key, None)
            .await;
        assert_eq!(status, 204, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_bad_filters_and_one_stream_too_many_are_problems() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("t", None).await;
    let (_, other) = server.tenant("u", None).await;

    let (status, problem) = server.call("GET", "/v1/events", "wk_not-a-key", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized")),
        "{problem}"
    );
    let resp = server
        .http
        .get(server.url("/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    for query in ["?state=running", "?sandbox_id="] {
        let (status, problem) = server
            .call("GET", &format!("/v1/events{query}"), &key, None)
            .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_request")),
            "{query}: {problem}"
        );
    }

    // 16 streams per tenant; the 17th is refused, other tenants are not.
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(Events::open(&server, &key, "").await);
    }
    let (status, problem) = server.call("GET", "/v1/events", &key, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("too_many_requests")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("16 event streams"),
        "{problem}"
    );
    let mut theirs = Events::open(&server, &other, "").await;
    // A closed stream gives its slot back (once the server notices: at the
    // latest at its next keep-alive).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = server
            .req(reqwest::Method::GET, "/v1/events", &key)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 429);
        assert!(
            Instant::now() < deadline,
            "the closed stream's slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // An idle stream carries a keep-alive comment every 15 s.
    assert_eq!(theirs.next(Duration::from_secs(17)).await, Next::Timeout);
    assert!(
        theirs.comments.iter().any(|c| c == "keep-alive"),
        "no keep-alive: {:?}",
        theirs.comments
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_end_cleanly_and_at_once_when_the_server_stops() {
    let mut server = TestServer::start().await;
    let mut events = Events::open(&server, ADMIN_KEY, "").await;
    let reader = tokio::spawn(async move { events.next(Duration::from_secs(10)).await });
    let started = Instant::now();
    tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10)));
    let took = started.elapsed();
    assert_eq!(
        reader.await.unwrap(),
        Next::End,
        "the stream did not end cleanly"
    );
    // Open streams are cut after a 2 s grace; an event stream is ended
    // before that.
    assert!(took < Duration::from_millis(1900), "the stop took {took:?}");
}

/// Kills and reaps `warren events` even when the test fails.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many `GET /v1/events` requests were answered 200 so far.
async fn streams_opened(server: &TestServer) -> u64 {
    let text = server
        .req(reqwest::Method::GET, "/metrics", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.contains("route=\"/v1/events\"") && l.contains("status=\"200\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_client_and_the_cli_follow_the_same_changes() {
    let server = TestServer::start().await;
    let (tenant, key) = server.tenant("t", None).await;
    let client = warren_client::Client::new(&server.base, Some(&key)).unwrap();
    let mut stream = client.events(&[]).await.expect("subscribing");
    let admin = warren_client::Client::new(&server.base, Some(ADMIN_KEY)).unwrap();
    let mut admin_stream = admin.events(&[]).await.expect("subscribing");

    let before = streams_opened(&server).await;
    let mut cli = ChildGuard(
        server
            .warren(&key)
            .args(["events", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning warren events"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while streams_opened(&server).await == before {
        assert!(Instant::now() < deadline, "warren events never subscribed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = cli.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(lines).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let sandbox = client
        .create(&warren_client::CreateSandboxRequest::default())
        .await
        .unwrap();
    let id = sandbox.id().to_string();
    sandbox.delete().await.unwrap();

    let expected = ["creating", "running", "destroyed"];
    let mut states = Vec::new();
    while states.len() < expected.len() {
        match stream.next().await.expect("the stream ended").unwrap() {
            warren_client::ServerEvent::Sandbox(e) => {
                assert_eq!((e.sandbox_id.as_str(), e.tenant_id), (id.as_str(), None));
                states.push(e.state.as_str().to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(states, expected);
    match admin_stream
        .next()
        .await
        .expect("the stream ended")
        .unwrap()
    {
        warren_client::ServerEvent::Sandbox(e) => {
            assert_eq!(e.sandbox_id, id);
            assert_eq!(e.tenant_id.as_deref(), Some(tenant.as_str()));
        }
        other => panic!("unexpected {other:?}"),
    }

    let mut printed = Vec::new();
    while printed.len() < expected.len() {
        let line = rx
            .recv_timeout(EVENT_TIMEOUT)
            .expect("warren events printed nothing");
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(
            (event["event"].as_str(), event["sandbox_id"].as_str()),
            (Some("sandbox"), Some(id.as_str())),
            "{line}"
        );
        printed.push(event["state"].as_str().unwrap().to_string());
    }
    assert_eq!(printed, expected);
}
