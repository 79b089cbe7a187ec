//! Coding-agent sessions with the built-in mock agent, over real HTTP:
//! every event type, permissions and questions answered or timed out,
//! replay-then-live SSE, interrupts, crashes, transcripts, and sessions
//! that outlive their agent process.

mod common;

use std::time::{Duration, Instant};

use common::process::assert_problem;
use common::TestAgent;
use futures::StreamExt;
use serde_json::{json, Value};

async fn create(agent: &TestAgent, body: Value) -> Value {
    let res = agent
        .http
        .post(agent.url("/v1/sessions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn events(agent: &TestAgent, id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = agent
            .http
            .get(agent.url(&format!(
                "/v1/sessions/{id}/events?after={after}&limit=1000"
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            return all;
        }
        after = page["next_after"].as_u64().unwrap();
        all.extend(items);
    }
}

/// Polls the events until `pred` holds for one of them; returns them all.
async fn wait_event(agent: &TestAgent, id: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = events(agent, id).await;
        if all.iter().any(&pred) {
            return all;
        }
        assert!(Instant::now() < deadline, "event never came; got {all:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn session(agent: &TestAgent, id: &str) -> Value {
    agent
        .http
        .get(agent.url(&format!("/v1/sessions/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_state(agent: &TestAgent, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = session(agent, id).await;
        if s["state"] == state {
            return s;
        }
        assert!(Instant::now() < deadline, "state never became {state}: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post(agent: &TestAgent, path: &str, body: Value) -> reqwest::Response {
    agent
        .http
        .post(agent.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn problem(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn of_type<'a>(all: &'a [Value], t: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| e["type"] == t).collect()
}

fn assistant_text(all: &[Value]) -> String {
    all.iter()
        .filter(|e| e["type"] == "item.completed")
        .filter(|e| {
            e["data"]["item"]["kind"] == "message" && e["data"]["item"]["role"] == "assistant"
        })
        .map(|e| {
            e["data"]["item"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_mock_emits_every_event_type_and_waits_for_a_person() {
    let agent = TestAgent::start().await;
    let s = create(
        &agent,
        json!({"agent": "mock", "prompt": "think, ask a question, then report an error"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    assert!(id.starts_with("ses_"), "{s}");
    assert_eq!(s["agent"], "mock");

    let all = wait_event(&agent, id, |e| e["type"] == "permission.requested").await;
    assert_eq!(session(&agent, id).await["state"], "waiting");
    let file = agent.dir.path().join("mock-turn-1.txt");
    assert!(!file.exists(), "the tool ran before it was allowed");
    let request = of_type(&all, "permission.requested")[0];
    assert_eq!(request["data"]["tool"], "Write");
    assert_eq!(request["data"]["input"]["file_path"], "mock-turn-1.txt");
    let perm = request["data"]["permission_id"].as_str().unwrap();

    // A wrong id is refused and changes nothing.
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/permissions/perm_nope"),
        json!({"decision": "once"}),
    )
    .await;
    assert_problem(&problem(res).await, 404, "request_not_found");
    assert!(!file.exists());

    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/permissions/{perm}"),
        json!({"decision": "once"}),
    )
    .await;
    assert_eq!(res.status(), 204);
    let all = wait_event(&agent, id, |e| e["type"] == "question.requested").await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "think, ask a question, then report an error"
    );
    let q = of_type(&all, "question.requested")[0]["data"].clone();
    assert_eq!(q["options"], json!(["yes", "no"]));
    let qid = q["question_id"].as_str().unwrap();
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/questions/{qid}"),
        json!({"answers": ["yes"]}),
    )
    .await;
    assert_eq!(res.status(), 204);

    wait_event(&agent, id, |e| e["type"] == "usage").await;
    let s = wait_state(&agent, id, "idle").await;
    let all = events(&agent, id).await;
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(s["last_sequence"], seqs.len() as u64);
    for t in [
        "session.started",
        "item.started",
        "item.delta",
        "item.completed",
        "permission.requested",
        "permission.resolved",
        "question.requested",
        "question.resolved",
        "usage",
        "error",
    ] {
        assert!(!of_type(&all, t).is_empty(), "no {t} event in {all:#?}");
    }
    for e in &all {
        assert_eq!(e["session_id"], id);
        assert!(e["source"] == "agent" || e["source"] == "daemon", "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        assert!(e.get("raw").is_none());
    }
    let kinds: Vec<&str> = of_type(&all, "item.completed")
        .iter()
        .map(|e| e["data"]["item"]["kind"].as_str().unwrap())
        .collect();
    for k in ["message", "reasoning", "tool_call", "tool_result"] {
        assert!(kinds.contains(&k), "no {k} item in {kinds:?}");
    }
    let deltas: String = of_type(&all, "item.delta")
        .iter()
        .filter(|e| e["data"]["item_id"] == "itm_1_reply")
        .map(|e| e["data"]["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.starts_with("Turn 1. You said: think"), "{deltas}");
    assert!(assistant_text(&all).contains("You answered yes"));
    let resolved = of_type(&all, "permission.resolved")[0];
    assert_eq!(resolved["data"]["decision"], "once");
    assert_eq!(resolved["source"], "daemon");

    // An answered request cannot be answered twice.
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/permissions/{perm}"),
        json!({"decision": "once"}),
    )
    .await;
    assert_problem(&problem(res).await, 404, "request_not_found");
}

#[tokio::test]
async fn a_rejection_stops_the_tool_and_always_stops_the_asking() {
    let agent = TestAgent::start().await;
    let s = create(&agent, json!({"agent": "mock", "prompt": "one"})).await;
    let id = s["id"].as_str().unwrap().to_string();
    let all = wait_event(&agent, &id, |e| e["type"] == "permission.requested").await;
    let perm = of_type(&all, "permission.requested")[0]["data"]["permission_id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/permissions/{perm}"),
        json!({"decision": "reject"}),
    )
    .await;
    assert_eq!(res.status(), 204);
    wait_state(&agent, &id, "idle").await;
    assert!(!agent.dir.path().join("mock-turn-1.txt").exists());
    let all = events(&agent, &id).await;
    let result = of_type(&all, "item.completed")
        .into_iter()
        .find(|e| e["data"]["item"]["kind"] == "tool_result")
        .unwrap();
    assert_eq!(result["data"]["item"]["status"], "rejected");
    assert_eq!(result["data"]["item"]["content"][0]["is_error"], true);

    // `always` allows the tool for the rest of the session.
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/messages"),
        json!({"text": "two"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let all = wait_event(&agent, &id, |e| {
        e["type"] == "permission.requested" && e["data"]["permission_id"] != perm.as_str()
    })
    .await;
    let perm = of_type(&all, "permission.requested").last().unwrap()["data"]["permission_id"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        &agent,
        &format!("/v1/sessions/{id}/permissions/{perm}"),
        json!({"decision": "always"}),
    )
    .await;
    wait_usages(&agent, &id, 2).await;
    post(
        &agent,
        &format!("/v1/sessions/{id}/messages"),
        json!({"text": "three"}),
    )
    .await;
    wait_usages(&agent, &id, 3).await;
    let all = events(&agent, &id).await;
    assert_eq!(
        of_type(&all, "permission.requested").len(),
        2,
        "turn 3 asked again"
    );
    assert_eq!(
        std::fs::read_to_string(agent.dir.path().join("mock-turn-3.txt")).unwrap(),
        "three"
    );
}

/// Waits until `n` turns have reported their usage.
async fn wait_usages(agent: &TestAgent, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = events(agent, id).await;
        if of_type(&all, "usage").len() >= n {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "turn {n} never finished: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_unanswered_request_times_out_as_a_rejection() {
    let agent = TestAgent::start().await;
    let s = create(
        &agent,
        json!({"agent": "mock", "prompt": "wait", "request_timeout_secs": 1}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let all = wait_event(&agent, id, |e| e["type"] == "permission.resolved").await;
    let resolved = of_type(&all, "permission.resolved")[0];
    assert_eq!(resolved["data"]["decision"], "reject");
    assert_eq!(resolved["data"]["reason"], "timeout");
    wait_state(&agent, id, "idle").await;
    assert!(!agent.dir.path().join("mock-turn-1.txt").exists());
}

#[tokio::test]
async fn sse_replays_from_a_sequence_then_follows_live_without_gaps() {
    let agent = TestAgent::start().await;
    let s = create(
        &agent,
        json!({"agent": "mock", "prompt": "first", "permission_mode": "bypass"}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_state(&agent, &id, "idle").await;

    let res = agent
        .http
        .get(agent.url(&format!("/v1/sessions/{id}/events?follow=true&after=3")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = res.bytes_stream();
    let sender = {
        let http = agent.http.clone();
        let base = agent.base.clone();
        let id = id.clone();
        tokio::spawn(async move {
            for text in ["second", "third"] {
                http.post(format!("{base}/v1/sessions/{id}/messages"))
                    .json(&json!({"text": text}))
                    .send()
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            http.delete(format!("{base}/v1/sessions/{id}"))
                .send()
                .await
                .unwrap();
        })
    };
    let mut buf = String::new();
    let mut seen: Vec<Value> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let block = buf[..end].to_string();
                buf.drain(..end + 2);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        ids.push(v.parse().unwrap());
                    }
                    if let Some(v) = line.strip_prefix("data: ") {
                        seen.push(serde_json::from_str(v).unwrap());
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the stream ended");
    sender.await.unwrap();
    let seqs: Vec<u64> = seen
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, ids);
    assert_eq!(seqs[0], 4);
    assert_eq!(
        seqs,
        (4..4 + seqs.len() as u64).collect::<Vec<_>>(),
        "a gap in {seqs:?}"
    );
    let last = seen.last().unwrap();
    assert_eq!(last["type"], "session.ended");
    assert_eq!(last["data"]["reason"], "killed");
    assert!(assistant_text(&seen).contains("Turn 3. You said: third. Earlier: first | second."));

    // Last-Event-ID resumes after that event; an ended session's stream ends.
    let res = agent
        .http
        .get(agent.url(&format!("/v1/sessions/{id}/events")))
        .header("accept", "text/event-stream")
        .header("last-event-id", (seqs.last().unwrap() - 1).to_string())
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(10), res.text())
        .await
        .unwrap()
        .unwrap();
    let rest: Vec<&str> = text.lines().filter(|l| l.starts_with("id: ")).collect();
    assert_eq!(rest, vec![format!("id: {}", seqs.last().unwrap())]);

    // A message to an ended session is refused.
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/messages"),
        json!({"text": "more"}),
    )
    .await;
    assert_problem(&problem(res).await, 409, "session_ended");
}

#[tokio::test]
async fn an_interrupt_stops_the_turn_and_the_session_goes_on() {
    let agent = TestAgent::start().await;
    let s = create(
        &agent,
        json!({"agent": "mock", "prompt": "slow please", "permission_mode": "bypass"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    wait_event(&agent, id, |e| e["type"] == "item.delta").await;
    assert_eq!(session(&agent, id).await["state"], "running");
    let res = post(&agent, &format!("/v1/sessions/{id}/interrupt"), json!({})).await;
    assert_eq!(res.status(), 204);
    let all = wait_event(&agent, id, |e| e["data"]["item"]["status"] == "interrupted").await;
    wait_state(&agent, id, "idle").await;
    assert!(
        !agent.dir.path().join("mock-turn-1.txt").exists(),
        "the interrupted turn went on"
    );
    assert!(of_type(&all, "usage").is_empty());
    post(
        &agent,
        &format!("/v1/sessions/{id}/messages"),
        json!({"text": "next"}),
    )
    .await;
    let all = wait_event(&agent, id, |e| e["type"] == "usage").await;
    assert!(assistant_text(&all).contains("Turn 2. You said: next. Earlier: slow please."));
}

#[tokio::test]
async fn a_crashing_agent_ends_its_session_with_an_error_and_the_agent_stays_healthy() {
    let agent = TestAgent::start().await;
    let s = create(
        &agent,
        json!({"agent": "mock", "prompt": "crash now", "permission_mode": "plan"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    let all = wait_event(&agent, id, |e| e["type"] == "session.ended").await;
    let ended = of_type(&all, "session.ended")[0];
    assert_eq!(ended["data"]["reason"], "error");
    assert_eq!(ended["data"]["exit_code"], 1);
    assert_eq!(ended["source"], "daemon");
    let s = session(&agent, id).await;
    assert_eq!(s["state"], "ended");
    assert!(s["ended_at"].is_string());
    let result = of_type(&all, "item.completed")
        .into_iter()
        .find(|e| e["data"]["item"]["kind"] == "tool_result")
        .unwrap();
    assert_eq!(
        result["data"]["item"]["status"], "skipped",
        "plan mode changed something"
    );
    let health = agent
        .http
        .get(agent.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let other = create(
        &agent,
        json!({"agent": "mock", "prompt": "fine", "permission_mode": "bypass"}),
    )
    .await;
    wait_state(&agent, other["id"].as_str().unwrap(), "idle").await;
}

#[tokio::test]
async fn sessions_outlive_their_agent_and_resume_with_their_history() {
    let agent = TestAgent::start().await;
    let state_dir = agent.dir.path().join(".warren");
    let s = create(&agent, json!({"agent": "mock", "prompt": "alpha", "permission_mode": "bypass", "env": {"SECRET_TOKEN": "s3cr3t-value"}})).await;
    let id = s["id"].as_str().unwrap().to_string();
    wait_state(&agent, &id, "idle").await;
    post(
        &agent,
        &format!("/v1/sessions/{id}/messages"),
        json!({"text": "beta"}),
    )
    .await;
    wait_usages(&agent, &id, 2).await;
    wait_state(&agent, &id, "idle").await;
    let before = events(&agent, &id).await;

    // Credentials are never written down.
    for file in walk(&state_dir) {
        let text = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains("s3cr3t-value"),
            "{} holds the secret",
            file.display()
        );
    }
    assert!(!session(&agent, &id).await.to_string().contains("s3cr3t"));

    // A second agent on the same disk (a restart, a restore, a fork).
    let again = TestAgent::start_with(|c| {
        c.workdir = agent.dir.path().to_path_buf();
        c.state_dir = state_dir.clone();
    })
    .await;
    let list: Value = again
        .http
        .get(again.url("/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let s = &list["items"][0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["state"], "idle");
    assert_eq!(s["last_sequence"], before.len() as u64);
    assert_eq!(events(&again, &id).await, before);

    let res = post(
        &again,
        &format!("/v1/sessions/{id}/messages"),
        json!({"text": "gamma"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let all = wait_usages(&again, &id, 3).await;
    assert!(
        assistant_text(&all).contains("Turn 3. You said: gamma. Earlier: alpha | beta."),
        "{}",
        assistant_text(&all)
    );
    let seqs: Vec<u64> = all
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let resumed = of_type(&all, "item.completed")
        .into_iter()
        .filter(|e| {
            e["data"]["item"]["kind"] == "status" && e["data"]["item"]["status"] == "resumed"
        })
        .count();
    assert_eq!(resumed, 1, "no resumed status item");
    // Every turn ends with a `completed` status item from the daemon.
    let ends: Vec<&Value> = of_type(&all, "item.completed")
        .into_iter()
        .filter(|e| {
            e["data"]["item"]["kind"] == "status" && e["data"]["item"]["status"] == "completed"
        })
        .collect();
    assert_eq!(ends.len(), 3);
    assert!(ends.iter().all(|e| e["source"] == "daemon"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_transcript_moves_a_conversation_to_another_agent() {
    let one = TestAgent::start().await;
    let s = create(
        &one,
        json!({"agent": "mock", "prompt": "remember the blue door", "permission_mode": "bypass"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    wait_state(&one, id, "idle").await;
    let res = one
        .http
        .get(one.url(&format!("/v1/sessions/{id}/transcript")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/gzip");
    let gz = res.bytes().await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);

    let two = TestAgent::start().await;
    let res = two
        .http
        .post(two.url("/v1/transcripts?agent=mock"))
        .header("content-type", "application/gzip")
        .body(gz.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let native = res.json::<Value>().await.unwrap()["native_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let s = create(&two, json!({"agent": "mock", "prompt": "what door?", "resume": native, "permission_mode": "bypass"})).await;
    let id2 = s["id"].as_str().unwrap();
    let all = wait_event(&two, id2, |e| e["type"] == "usage").await;
    assert!(
        assistant_text(&all)
            .contains("Turn 2. You said: what door?. Earlier: remember the blue door."),
        "{}",
        assistant_text(&all)
    );
    assert_eq!(
        session(&two, id2).await["native_session_id"],
        native.as_str()
    );

    // Bad uploads are refused, and nothing is written.
    let bad = |body: Vec<u8>, q: &'static str| {
        let two = &two;
        async move {
            let res = two
                .http
                .post(two.url(&format!("/v1/transcripts?agent={q}")))
                .body(body)
                .send()
                .await
                .unwrap();
            problem(res).await
        }
    };
    assert_problem(
        &bad(b"plain text".to_vec(), "mock").await,
        400,
        "invalid_transcript",
    );
    assert_problem(&bad(gz.to_vec(), "gpt").await, 404, "agent_not_found");
    let mut truncated = gz.to_vec();
    truncated.truncate(gz.len() / 2);
    assert_problem(&bad(truncated, "mock").await, 400, "invalid_transcript");
    let huge = vec![0u8; 70 << 20];
    let res = two
        .http
        .post(two.url("/v1/transcripts?agent=mock"))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn bad_session_requests_get_problem_codes() {
    let agent = TestAgent::start_with(|c| {
        c.env
            .extend([("PATH".to_string(), "/usr/bin:/bin".to_string())].into());
    })
    .await;
    let post_json = |path: &'static str, body: Value| {
        let agent = &agent;
        async move { problem(post(agent, path, body).await).await }
    };
    assert_problem(
        &post_json("/v1/sessions", json!({"agent": "gpt"})).await,
        404,
        "agent_not_found",
    );
    assert_problem(
        &post_json("/v1/sessions", json!({"agent": "claude", "prompt": "hi"})).await,
        409,
        "agent_not_installed",
    );
    assert_problem(
        &post_json(
            "/v1/sessions",
            json!({"agent": "mock", "permission_mode": "yolo"}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_problem(
        &post_json("/v1/sessions", json!({"agent": "mock", "max_turns": 0})).await,
        400,
        "invalid_request",
    );
    assert_problem(
        &post_json(
            "/v1/sessions",
            json!({"agent": "mock", "env": {"A=B": "x"}}),
        )
        .await,
        400,
        "invalid_request",
    );
    // Options a driver cannot pass on are refused (before the install check).
    let refused = post_json(
        "/v1/sessions",
        json!({"agent": "codex", "system_prompt": "be brief"}),
    )
    .await;
    assert_problem(&refused, 400, "invalid_request");
    assert!(
        refused.1["detail"]
            .as_str()
            .unwrap()
            .contains("system_prompt"),
        "{}",
        refused.1
    );
    assert_problem(
        &post_json("/v1/sessions/ses_missing/messages", json!({"text": "x"})).await,
        404,
        "session_not_found",
    );
    let res = agent
        .http
        .get(agent.url("/v1/sessions/ses_missing/events"))
        .send()
        .await
        .unwrap();
    assert_problem(&problem(res).await, 404, "session_not_found");

    let agents: Value = agent
        .http
        .get(agent.url("/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["claude", "codex", "opencode", "mock"]);
    let mock = &agents["items"][3];
    assert_eq!(mock["installed"], true);
    assert_eq!(mock["capabilities"]["permissions"], true);
    assert_eq!(agents["items"][0]["installed"], false);
    let res = agent
        .http
        .post(agent.url("/v1/agents/gpt/install"))
        .send()
        .await
        .unwrap();
    assert_problem(&problem(res).await, 404, "agent_not_found");

    // Killing twice is fine; the second kill changes nothing.
    let s = create(&agent, json!({"agent": "mock"})).await;
    let id = s["id"].as_str().unwrap();
    assert_eq!(s["state"], "idle");
    for _ in 0..2 {
        let res = agent
            .http
            .delete(agent.url(&format!("/v1/sessions/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["state"], "ended");
    }
    let all = events(&agent, id).await;
    assert_eq!(of_type(&all, "session.ended").len(), 1);
    let res = post(
        &agent,
        &format!("/v1/sessions/{id}/permissions/perm_x"),
        json!({"decision": "once"}),
    )
    .await;
    assert_problem(&problem(res).await, 409, "session_ended");
}

#[tokio::test]
async fn several_sessions_run_at_once_each_with_its_own_requests() {
    let agent = TestAgent::start().await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let s = create(
            &agent,
            json!({"agent": "mock", "prompt": name, "cwd": name}),
        )
        .await;
        ids.push((name, s["id"].as_str().unwrap().to_string()));
    }
    // All three wait at once; each answer reaches only its own session.
    for (_, id) in &ids {
        wait_event(&agent, id, |e| e["type"] == "permission.requested").await;
        assert_eq!(session(&agent, id).await["state"], "waiting");
    }
    let mut answered: Vec<&str> = Vec::new();
    for (name, id) in ids.iter().rev() {
        let all = events(&agent, id).await;
        let perm = of_type(&all, "permission.requested")[0]["data"]["permission_id"]
            .as_str()
            .unwrap()
            .to_string();
        for (other_name, other) in ids.iter().filter(|(n, _)| n != name) {
            // Another session's id does not answer this request.
            let res = post(
                &agent,
                &format!("/v1/sessions/{other}/permissions/{perm}"),
                json!({"decision": "once"}),
            )
            .await;
            assert_problem(&problem(res).await, 404, "request_not_found");
            if !answered.contains(other_name) {
                assert_eq!(
                    session(&agent, other).await["state"],
                    "waiting",
                    "{other_name}"
                );
            }
        }
        let res = post(
            &agent,
            &format!("/v1/sessions/{id}/permissions/{perm}"),
            json!({"decision": "once"}),
        )
        .await;
        assert_eq!(res.status(), 204);
        wait_state(&agent, id, "idle").await;
        assert_eq!(
            std::fs::read_to_string(agent.dir.path().join(name).join("mock-turn-1.txt")).unwrap(),
            *name
        );
        answered.push(name);
    }
}
