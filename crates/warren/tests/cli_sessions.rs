//! Coding-agent sessions from the Rust client and the `warren session`
//! commands, against a real server, with the mock agent.

mod server_common;

use futures::StreamExt;
use serde_json::Value;
use server_common::{TestServer, ADMIN_KEY};
use warren_client::{Client, CreateSession, PermissionDecision, PermissionMode, SessionState};

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_client_streams_a_session_and_answers_its_requests() {
    let server = TestServer::start().await;
    let client = Client::new(&server.base, Some(ADMIN_KEY)).unwrap();
    let sandbox = client.create(&Default::default()).await.unwrap();
    let agents = sandbox.agent().agents().await.unwrap();
    assert!(agents
        .iter()
        .any(|a| a.agent == warren_client::AgentKind::Mock && a.installed));

    let mut session = sandbox
        .agent()
        .start(&CreateSession {
            agent: "mock".into(),
            prompt: Some("a question for you".into()),
            ..CreateSession::default()
        })
        .await
        .unwrap();
    let mut events = session.events(0);
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        match event.type_.as_str() {
            "permission.requested" => {
                let id = event.data["permission_id"].as_str().unwrap();
                session.respond(id, PermissionDecision::Once).await.unwrap();
            }
            "question.requested" => {
                let id = event.data["question_id"].as_str().unwrap();
                session.answer(id, Some(vec!["yes".into()])).await.unwrap();
            }
            "usage" => {
                session.kill().await.unwrap();
            }
            _ => {}
        }
        seen.push(event);
    }
    let seqs: Vec<u64> = seen.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(seen.last().unwrap().type_, "session.ended");
    assert_eq!(session.refresh().await.unwrap().state, SessionState::Ended);
    let text = sandbox
        .run("cat /root/mock-turn-1.txt")
        .await
        .unwrap()
        .stdout;
    assert_eq!(text, "a question for you");

    // The transcript resumes in another sandbox.
    let gz = session.transcript().await.unwrap();
    let other = client.create(&Default::default()).await.unwrap();
    let native = other
        .agent()
        .upload_transcript("mock", gz, None)
        .await
        .unwrap();
    let resumed = other
        .agent()
        .start(&CreateSession {
            agent: "mock".into(),
            prompt: Some("again".into()),
            resume: Some(native),
            permission_mode: Some(PermissionMode::Bypass),
            ..CreateSession::default()
        })
        .await
        .unwrap();
    let mut events = resumed.events(0);
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        if event.type_ == "item.completed" && event.data["item"]["item_id"] == "itm_2_reply" {
            let text = event.data["item"]["content"][0]["text"].as_str().unwrap();
            assert_eq!(
                text,
                "Turn 2. You said: again. Earlier: a question for you."
            );
            break;
        }
    }
    let err = other.agent().get("ses_nope").await.unwrap_err();
    assert!(
        matches!(
            err,
            warren_client::Error::Api {
                code: warren_client::ErrorCode::SessionNotFound,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warren_session_renders_the_stream_and_prints_json_lines() {
    let server = TestServer::start().await;
    let id = server.create(ADMIN_KEY, serde_json::json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = server
        .cli_ok(
            ADMIN_KEY,
            &[
                "session",
                "start",
                &id,
                "--agent",
                "mock",
                "--permission-mode",
                "bypass",
                "hello there",
            ],
        )
        .await;
    assert!(out.contains("> hello there"), "{out}");
    assert!(out.contains("Turn 1. You said: hello there."), "{out}");
    assert!(out.contains("* Write("), "{out}");
    assert!(out.contains("= wrote 11 bytes to mock-turn-1.txt"), "{out}");

    let ls = server
        .cli_ok(ADMIN_KEY, &["session", "ls", &id, "--json"])
        .await;
    let list: Value = serde_json::from_str(&ls).unwrap();
    let ses = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["state"], "idle");

    let out = server
        .cli_ok(
            ADMIN_KEY,
            &["session", "send", &id, &ses, "second", "--json"],
        )
        .await;
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().all(|e| e["session_id"] == ses.as_str()));
    assert!(
        events
            .iter()
            .any(|e| e["data"]["item"]["content"][0]["text"]
                == "Turn 2. You said: second. Earlier: hello there."),
        "{out}"
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (seqs[0]..seqs[0] + seqs.len() as u64).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.jsonl.gz");
    server
        .cli_ok(
            ADMIN_KEY,
            &[
                "session",
                "transcript",
                &id,
                &ses,
                "-o",
                file.to_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(&std::fs::read(&file).unwrap()[..2], &[0x1f, 0x8b]);

    server
        .cli_ok(ADMIN_KEY, &["session", "kill", &id, &ses])
        .await;
    let out = server
        .cli_ok(ADMIN_KEY, &["session", "attach", &id, &ses, "--json"])
        .await;
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "session.ended");

    let bad = server
        .cli(
            ADMIN_KEY,
            &["session", "start", &id, "--agent", "gpt", "hi"],
        )
        .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("agent_not_found"),
        "{:?}",
        bad
    );
}
