//! Coding-agent sessions through a real server, in real sandboxes, with
//! the mock agent: the routes under `/v1/sandboxes/{id}/`, permissions
//! answered through the server, SSE through the proxy, tenant isolation,
//! and conversations that travel with checkpoints, restores and forks.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

struct Sbx<'a> {
    server: &'a TestServer,
    key: String,
    id: String,
}

impl Sbx<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server
            .call(
                method,
                &format!("/v1/sandboxes/{}{path}", self.id),
                &self.key,
                body,
            )
            .await
    }

    async fn events(&self, session: &str) -> Vec<Value> {
        let (status, page) = self
            .call(
                "GET",
                &format!("/sessions/{session}/events?limit=1000"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    /// Waits until `n` turns have reported usage and the session is idle.
    async fn wait_turns(&self, session: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = self.events(session).await;
            let usages = all.iter().filter(|e| e["type"] == "usage").count();
            let (_, s) = self
                .call("GET", &format!("/sessions/{session}"), None)
                .await;
            if usages >= n && s["state"] == "idle" {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "turn {n} never finished: {s} {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn send(&self, session: &str, text: &str) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/sessions/{session}/messages"),
                Some(json!({ "text": text })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
}

fn replies(all: &[Value]) -> Vec<String> {
    all.iter()
        .filter(|e| e["type"] == "item.completed")
        .filter(|e| {
            e["data"]["item"]["role"] == "assistant" && e["data"]["item"]["kind"] == "message"
        })
        .map(|e| {
            e["data"]["item"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|t| t.starts_with("Turn "))
        .collect()
}

fn contiguous(all: &[Value]) {
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "a gap");
}

#[tokio::test(flavor = "multi_thread")]
async fn conversations_travel_with_checkpoints_restores_and_forks() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("alpha", None).await;
    let (_, other) = server.tenant("beta", None).await;
    let id = server.create(&key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sbx = Sbx {
        server: &server,
        key: key.clone(),
        id: id.clone(),
    };

    let (status, agents) = sbx.call("GET", "/agents", None).await;
    assert_eq!(status, 200, "{agents}");
    let mock = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "mock")
        .unwrap();
    assert_eq!(mock["installed"], true);

    let (status, s) = sbx
        .call("POST", "/sessions", Some(json!({"agent": "mock", "prompt": "alpha", "permission_mode": "bypass", "cwd": "/root/work"})))
        .await;
    assert_eq!(status, 201, "{s}");
    let ses = s["id"].as_str().unwrap().to_string();
    sbx.wait_turns(&ses, 1).await;
    sbx.send(&ses, "beta").await;
    let before = sbx.wait_turns(&ses, 2).await;
    assert_eq!(
        server.sh(&key, &id, "cat /root/work/mock-turn-2.txt").await,
        (0, "beta".into())
    );

    // Another tenant sees no sandbox, hence no session.
    let (status, body) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/sessions/{ses}"),
            &other,
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "sandbox_not_found");

    let (status, ckpt) = sbx
        .call("POST", "/checkpoints", Some(json!({"name": "mid"})))
        .await;
    assert_eq!(status, 201, "{ckpt}");
    let ckpt = ckpt["id"].as_str().unwrap().to_string();

    // Two forks, two different follow-ups: each goes on from the same past.
    let (status, forked) = sbx.call("POST", "/fork", Some(json!({"count": 2}))).await;
    assert_eq!(status, 201, "{forked}");
    let forks: Vec<Sbx> = forked["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Sbx {
            server: &server,
            key: key.clone(),
            id: f["id"].as_str().unwrap().to_string(),
        })
        .collect();
    for (fork, word) in forks.iter().zip(["left", "right"]) {
        let (status, list) = fork.call("GET", "/sessions", None).await;
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{list}");
        assert_eq!(items[0]["id"], ses.as_str());
        assert_eq!(items[0]["state"], "idle");
        assert_eq!(items[0]["last_sequence"], before.len() as u64);
        fork.send(&ses, word).await;
    }
    for (fork, word) in forks.iter().zip(["left", "right"]) {
        let all = fork.wait_turns(&ses, 3).await;
        contiguous(&all);
        assert_eq!(all[..before.len()], before[..], "the fork's past differs");
        let last = replies(&all).pop().unwrap();
        assert_eq!(
            last,
            format!("Turn 3. You said: {word}. Earlier: alpha | beta.")
        );
        let (code, out) = server
            .sh(&key, &fork.id, "cat /root/work/mock-turn-3.txt")
            .await;
        assert_eq!((code, out), (0, word.to_string()));
    }

    // The original goes its own way, then is restored to the checkpoint.
    sbx.send(&ses, "gamma").await;
    let all = sbx.wait_turns(&ses, 3).await;
    assert!(replies(&all)
        .pop()
        .unwrap()
        .starts_with("Turn 3. You said: gamma."));
    let (status, restored) = sbx
        .call("POST", "/restore", Some(json!({"checkpoint_id": ckpt})))
        .await;
    assert_eq!(status, 200, "{restored}");
    let (_, list) = sbx.call("GET", "/sessions", None).await;
    assert_eq!(
        list["items"][0]["last_sequence"],
        before.len() as u64,
        "{list}"
    );
    sbx.send(&ses, "delta").await;
    let all = sbx.wait_turns(&ses, 3).await;
    contiguous(&all);
    let texts = replies(&all);
    assert_eq!(
        texts.last().unwrap(),
        "Turn 3. You said: delta. Earlier: alpha | beta."
    );
    assert!(
        !texts.iter().any(|t| t.contains("gamma")),
        "the undone turn is back: {texts:?}"
    );
    for fork in &forks {
        let (status, _) = server
            .call("DELETE", &format!("/v1/sandboxes/{}", fork.id), &key, None)
            .await;
        assert_eq!(status, 204);
    }
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn permissions_and_the_event_stream_work_through_the_server() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("alpha", None).await;
    let id = server.create(&key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sbx = Sbx {
        server: &server,
        key: key.clone(),
        id: id.clone(),
    };
    let (status, s) = sbx
        .call(
            "POST",
            "/sessions",
            Some(json!({"agent": "mock", "prompt": "ask me a question"})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let ses = s["id"].as_str().unwrap().to_string();

    // Follow the stream through the proxy while answering.
    let stream = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{id}/sessions/{ses}/events?follow=true"),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let reader = tokio::spawn(async move {
        use futures::StreamExt;
        let mut body = stream.bytes_stream();
        let mut text = String::new();
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        text
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = (false, false);
    while !(answered.0 && answered.1) {
        assert!(Instant::now() < deadline, "never asked");
        for e in sbx.events(&ses).await {
            if e["type"] == "permission.requested" && !answered.0 {
                let pid = e["data"]["permission_id"].as_str().unwrap();
                let (status, body) = sbx
                    .call(
                        "POST",
                        &format!("/sessions/{ses}/permissions/{pid}"),
                        Some(json!({"decision": "once"})),
                    )
                    .await;
                assert_eq!(status, 204, "{body}");
                answered.0 = true;
            }
            if e["type"] == "question.requested" && !answered.1 {
                let qid = e["data"]["question_id"].as_str().unwrap();
                let (status, body) = sbx
                    .call(
                        "POST",
                        &format!("/sessions/{ses}/questions/{qid}"),
                        Some(json!({"answers": ["no"]})),
                    )
                    .await;
                assert_eq!(status, 204, "{body}");
                answered.1 = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = sbx.wait_turns(&ses, 1).await;
    assert_eq!(
        server.sh(&key, &id, "cat /root/mock-turn-1.txt").await,
        (0, "ask me a question".into())
    );
    let (status, killed) = sbx.call("DELETE", &format!("/sessions/{ses}"), None).await;
    assert_eq!(status, 200, "{killed}");
    assert_eq!(killed["state"], "ended");

    let text = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("the stream never ended")
        .unwrap();
    let streamed: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    contiguous(&streamed);
    assert_eq!(streamed[..all.len()], all[..]);
    assert_eq!(streamed.last().unwrap()["type"], "session.ended");
    assert!(streamed
        .iter()
        .any(|e| e["type"] == "question.resolved" && e["data"]["answers"] == json!(["no"])));

    // Bad input through the server keeps its codes.
    let (status, body) = sbx
        .call("POST", "/sessions", Some(json!({"agent": "claude"})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("agent_not_installed")),
        "{body}"
    );
    let (status, body) = sbx
        .call(
            "POST",
            &format!("/sessions/{ses}/messages"),
            Some(json!({"text": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("session_ended")),
        "{body}"
    );
}
