//! The real Claude Code, Codex and OpenCode (from the npm registry, in the
//! `agents` template) driven by Warren inside sandboxes, against a scripted
//! stand-in for the Anthropic and OpenAI APIs that runs in the same sandbox
//! (`fixtures/model-standin.mjs`: text, then a shell command, then a file
//! write, then a final answer).
//!
//! Checked: the tool call and its result are events; a permission request
//! blocks until answered and `reject` stops the tool; the file the agent
//! was told to write exists after `once`; a transcript downloaded from one
//! sandbox and uploaded into another resumes with the earlier turns sent
//! to the model; an interrupt stops a turn and the session goes on.

mod network_support;
mod server_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

const STANDIN: &str = include_str!("fixtures/model-standin.mjs");
const PORT: u16 = 4010;

async fn server() -> TestServer {
    TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        templates: vec!["agents"],
        ..Options::default()
    })
    .await
}

/// A sandbox from `agents` with the stand-in listening on [`PORT`].
async fn sandbox(server: &TestServer) -> String {
    let id = server
        .create(
            ADMIN_KEY,
            json!({"template": "agents", "resources": {"memory_mb": 2048}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = server
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{id}/files?path=/opt/standin.mjs"),
            ADMIN_KEY,
        )
        .body(STANDIN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(json!({"argv": ["node", "/opt/standin.mjs", "--port", PORT.to_string(), "--log", "/tmp/standin.log"]})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let wait = format!(
        "for i in $(seq 100); do node -e \"require('http').get('http://127.0.0.1:{PORT}/v1/models', () => process.exit(0)).on('error', () => process.exit(1))\" && exit 0; sleep 0.1; done; exit 1"
    );
    assert_eq!(
        server.sh(ADMIN_KEY, &id, &wait).await.0,
        0,
        "the stand-in never listened"
    );
    id
}

fn env() -> Value {
    json!({
        "ANTHROPIC_BASE_URL": format!("http://127.0.0.1:{PORT}"),
        "ANTHROPIC_API_KEY": "sk-test-not-a-real-key",
    })
}

async fn events(server: &TestServer, sbx: &str, ses: &str) -> Vec<Value> {
    let (status, page) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/events?limit=1000"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn wait_event(
    server: &TestServer,
    sbx: &str,
    ses: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let all = events(server, sbx, ses).await;
        if all.iter().any(&pred) {
            return all;
        }
        if let Some(end) = all.iter().find(|e| e["type"] == "session.ended") {
            panic!("the session ended while waiting for {what}: {end}");
        }
        assert!(Instant::now() < deadline, "no {what}: {all:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_idle(server: &TestServer, sbx: &str, ses: &str, usages: usize) -> Vec<Value> {
    wait_event(server, sbx, ses, "the end of the turn", |_| true).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let all = events(server, sbx, ses).await;
        let (_, s) = server
            .call(
                "GET",
                &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
                ADMIN_KEY,
                None,
            )
            .await;
        if all.iter().filter(|e| e["type"] == "usage").count() >= usages && s["state"] == "idle" {
            return all;
        }
        assert!(Instant::now() < deadline, "turn never ended: {s} {all:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn items<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|e| e["type"] == "item.completed" && e["data"]["item"]["kind"] == kind)
        .map(|e| &e["data"]["item"])
        .collect()
}

async fn answer(server: &TestServer, sbx: &str, ses: &str, perm: &str, decision: &str) {
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/permissions/{perm}"),
            ADMIN_KEY,
            Some(json!({ "decision": decision })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

fn pending_write(all: &[Value], after: u64) -> Option<String> {
    all.iter()
        .find(|e| {
            e["type"] == "permission.requested"
                && e["sequence"].as_u64() > Some(after)
                && e["data"]["tool"] == "Write"
        })
        .map(|e| e["data"]["permission_id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_runs_tools_asks_permission_and_resumes_from_a_transcript() {
    let server = server().await;
    let sbx = sandbox(&server).await;
    let (_, agents) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/agents"),
            ADMIN_KEY,
            None,
        )
        .await;
    let claude = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "claude")
        .unwrap()
        .clone();
    assert_eq!(claude["installed"], true, "{agents}");
    assert_eq!(claude["version"], "2.1.197");

    let (status, s) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions"),
            ADMIN_KEY,
            Some(json!({"agent": "claude", "prompt": "run the command, then write the file", "cwd": "/root/proj", "env": env()})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let ses = s["id"].as_str().unwrap().to_string();

    // The shell command runs (echo needs no permission), the write asks.
    let all = wait_event(&server, &sbx, &ses, "a permission request", |e| {
        e["type"] == "permission.requested"
    })
    .await;
    let perm = pending_write(&all, 0).expect("a Write permission request");
    let calls = items(&all, "tool_call");
    assert_eq!(calls[0]["content"][0]["tool"], "Bash", "{calls:?}");
    assert_eq!(
        calls[0]["content"][0]["input"]["command"],
        "echo hello-from-standin"
    );
    let results = items(&all, "tool_result");
    assert_eq!(
        results[0]["content"][0]["output"], "hello-from-standin",
        "{results:?}"
    );
    assert!(
        all.iter().any(|e| e["type"] == "item.delta"),
        "no streamed text"
    );
    let (_, s) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(s["state"], "waiting");
    let native = s["native_session_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_ne!(
        server
            .sh(ADMIN_KEY, &sbx, "test -e /root/proj/standin-output.txt")
            .await
            .0,
        0,
        "written before it was allowed"
    );

    // Reject: the tool does not run and the turn ends.
    answer(&server, &sbx, &ses, &perm, "reject").await;
    let all = wait_idle(&server, &sbx, &ses, 1).await;
    assert_ne!(
        server
            .sh(ADMIN_KEY, &sbx, "test -e /root/proj/standin-output.txt")
            .await
            .0,
        0,
        "a rejected write happened"
    );
    let denied = items(&all, "tool_result")
        .into_iter()
        .find(|r| r["content"][0]["is_error"] == true);
    assert!(denied.is_some(), "no failed tool result: {all:#?}");
    let usage = all.iter().find(|e| e["type"] == "usage").unwrap();
    assert!(
        usage["data"]["output_tokens"].as_u64().unwrap() > 0,
        "{usage}"
    );

    // A follow-up in the same process: allowed this time.
    let last = all.last().unwrap()["sequence"].as_u64().unwrap();
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/messages"),
            ADMIN_KEY,
            Some(json!({"text": "try the file again"})),
        )
        .await;
    assert_eq!(status, 202);
    let all = wait_event(&server, &sbx, &ses, "a second request", |e| {
        pending_write(std::slice::from_ref(e), last).is_some()
    })
    .await;
    answer(
        &server,
        &sbx,
        &ses,
        &pending_write(&all, last).unwrap(),
        "once",
    )
    .await;
    wait_idle(&server, &sbx, &ses, 2).await;
    assert_eq!(
        server
            .sh(ADMIN_KEY, &sbx, "cat /root/proj/standin-output.txt")
            .await,
        (0, "hello from the standin\n".to_string())
    );

    // The transcript moves the conversation into another sandbox.
    let res = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/transcript"),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let gz = res.bytes().await.unwrap();
    let other = sandbox(&server).await;
    let res = server
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{other}/transcripts?agent=claude&cwd=/root/proj"),
            ADMIN_KEY,
        )
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let uploaded: Value = res.json().await.unwrap();
    assert_eq!(uploaded["native_session_id"], native.as_str());
    let (status, s) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{other}/sessions"),
            ADMIN_KEY,
            Some(json!({"agent": "claude", "prompt": "standin:text what did we do?", "cwd": "/root/proj", "resume": native, "env": env(), "permission_mode": "bypass"})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let resumed = s["id"].as_str().unwrap().to_string();
    wait_idle(&server, &other, &resumed, 1).await;
    let (_, log) = server.sh(ADMIN_KEY, &other, "cat /tmp/standin.log").await;
    let last: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|l| l["side"] == false)
        .expect("no request reached the stand-in");
    let texts = last["user_texts"].to_string();
    assert!(
        texts.contains("run the command, then write the file")
            && texts.contains("try the file again"),
        "the earlier turns were not sent: {texts}"
    );

    // Bad transcripts are refused.
    let res = server
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{other}/transcripts?agent=claude"),
            ADMIN_KEY,
        )
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "invalid_transcript"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_claude_turn_ends_and_the_session_takes_the_next_prompt() {
    let server = server().await;
    let sbx = sandbox(&server).await;
    let (status, s) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions"),
            ADMIN_KEY,
            Some(json!({"agent": "claude", "prompt": "standin:slow tell me a long story", "env": env(), "permission_mode": "bypass"})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let ses = s["id"].as_str().unwrap().to_string();
    wait_event(&server, &sbx, &ses, "streamed text", |e| {
        e["type"] == "item.delta"
    })
    .await;
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/interrupt"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let all = wait_idle(&server, &sbx, &ses, 1).await;
    assert!(
        items(&all, "status")
            .iter()
            .any(|i| i["status"] == "interrupted"),
        "no interrupted item: {all:#?}"
    );
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}/messages"),
            ADMIN_KEY,
            Some(json!({"text": "standin:text short one"})),
        )
        .await;
    assert_eq!(status, 202);
    let all = wait_idle(&server, &sbx, &ses, 2).await;
    assert!(!all.iter().any(|e| e["type"] == "session.ended"));
    let (status, killed) = server
        .call(
            "DELETE",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!((status, killed["state"].as_str()), (200, Some("ended")));
    // Killed with its process group (and reaped by the agent, PID 1).
    let gone =
        "for i in $(seq 50); do ps -eo comm | grep -q '^claude' || exit 0; sleep 0.1; done; exit 1";
    assert_eq!(
        server.sh(ADMIN_KEY, &sbx, gone).await.0,
        0,
        "claude still runs after the kill"
    );
}

/// Codex (a custom model provider, `wire_api = "responses"`, through
/// `OPENAI_BASE_URL`) and OpenCode (a provider in `OPENCODE_CONFIG_CONTENT`):
/// each runs the command, writes the file, and a second prompt resumes its
/// native session with the first turn sent again.
#[tokio::test(flavor = "multi_thread")]
async fn codex_and_opencode_run_tools_and_resume_their_sessions() {
    let server = server().await;
    let sbx = sandbox(&server).await;
    let base = format!("http://127.0.0.1:{PORT}/v1");
    let opencode_config = json!({
        "autoupdate": false,
        "share": "disabled",
        "provider": {"standin": {"npm": "@ai-sdk/openai-compatible", "name": "Standin",
            "options": {"baseURL": base, "apiKey": "test"},
            "models": {"standin-model": {"name": "Standin", "tool_call": true}}}},
        "model": "standin/standin-model",
        "small_model": "standin/standin-model",
    });
    let cases = [
        (
            "codex",
            json!({"model": "gpt-5.5", "env": {"OPENAI_BASE_URL": base, "OPENAI_API_KEY": "test"}}),
        ),
        (
            "opencode",
            json!({"env": {"OPENCODE_CONFIG_CONTENT": opencode_config.to_string()}, "permission_mode": "bypass"}),
        ),
    ];
    for (agent, extra) in cases {
        let cwd = format!("/root/{agent}");
        let mut body =
            json!({"agent": agent, "prompt": format!("{agent} first prompt"), "cwd": cwd});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, s) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{sbx}/sessions"),
                ADMIN_KEY,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{s}");
        let ses = s["id"].as_str().unwrap().to_string();
        let all = wait_idle(&server, &sbx, &ses, 1).await;
        let results: Vec<String> = items(&all, "tool_result")
            .iter()
            .map(|r| r["content"][0]["output"].to_string())
            .collect();
        assert!(
            results.iter().any(|r| r.contains("hello-from-standin")),
            "{agent}: {all:#?}"
        );
        assert_eq!(
            server
                .sh(ADMIN_KEY, &sbx, &format!("cat {cwd}/standin-output.txt"))
                .await,
            (0, "hello from the standin\n".to_string()),
            "{agent} wrote no file"
        );
        let (_, info) = server
            .call(
                "GET",
                &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert!(info["native_session_id"].is_string(), "{info}");

        let (status, _) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{sbx}/sessions/{ses}/messages"),
                ADMIN_KEY,
                Some(json!({"text": format!("standin:text {agent} second prompt")})),
            )
            .await;
        assert_eq!(status, 202);
        wait_idle(&server, &sbx, &ses, 2).await;
        let (_, log) = server.sh(ADMIN_KEY, &sbx, "cat /tmp/standin.log").await;
        let last: Value = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .rfind(|l| l["side"] == false)
            .unwrap();
        let texts = last["user_texts"].to_string();
        assert!(
            texts.contains(&format!("{agent} first prompt"))
                && texts.contains(&format!("{agent} second prompt")),
            "{agent} did not resume: {texts}"
        );
    }
}

/// `POST /v1/agents/{agent}/install`: npm from the registry (through this
/// host's TLS proxy, which the sandbox trusts by `--extra-ca-certs auto`),
/// progress as SSE; idempotent for an installed agent; a clear problem
/// where the sandbox has no npm.
#[tokio::test(flavor = "multi_thread")]
async fn agents_install_from_the_npm_registry_with_progress() {
    let slot = network_support::Slot::take();
    let server = TestServer::start_with(Options {
        args: slot.server_args(None),
        templates: vec!["agents"],
        ..Options::default()
    })
    .await;
    let install = |sbx: String, agent: &'static str| {
        let server = &server;
        async move {
            let res = server
                .req(
                    reqwest::Method::POST,
                    &format!("/v1/sandboxes/{sbx}/agents/{agent}/install"),
                    ADMIN_KEY,
                )
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = tokio::time::timeout(Duration::from_secs(600), res.text())
                .await
                .expect("install never ended")
                .unwrap();
            let events: Vec<Value> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            (status, text, events)
        }
    };

    let base = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, text, _) = install(base, "claude").await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("npm is not installed"), "{text}");

    let sbx = server
        .create(ADMIN_KEY, json!({"template": "agents", "resources": {"memory_mb": 2048}, "network": {"egress": "allow"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, events) = install(sbx.clone(), "claude").await;
    assert_eq!(status, 200);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["phase"], "done");
    assert_eq!(events[0]["message"], "already installed");

    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &sbx,
            "npm uninstall -g opencode-ai 2>&1 && ! command -v opencode",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (_, agents) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/agents"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert!(agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["agent"] == "opencode" && a["installed"] == false));
    let (status, text, events) = install(sbx.clone(), "opencode").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(events.first().unwrap()["phase"], "started", "{text}");
    let done = events.last().unwrap();
    assert_eq!(done["phase"], "done", "{text}");
    assert_eq!(done["agent"]["installed"], true, "{text}");
    assert!(
        done["agent"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())),
        "{text}"
    );
    assert_eq!(
        server
            .sh(ADMIN_KEY, &sbx, "opencode --version >/dev/null")
            .await
            .0,
        0
    );
}

/// OpenCode over ACP asks before its shell and its edits in the default
/// mode: `once` runs the command, `reject` keeps the file unwritten; a new
/// session given the native id (`session/load`) goes on with the history.
#[tokio::test(flavor = "multi_thread")]
async fn opencode_asks_permission_and_loads_an_earlier_session() {
    let server = server().await;
    let sbx = sandbox(&server).await;
    let base = format!("http://127.0.0.1:{PORT}/v1");
    let config = json!({
        "share": "disabled",
        "provider": {"standin": {"npm": "@ai-sdk/openai-compatible", "name": "Standin",
            "options": {"baseURL": base, "apiKey": "test"},
            "models": {"standin-model": {"name": "Standin", "tool_call": true}}}},
        "model": "standin/standin-model",
        "small_model": "standin/standin-model",
    })
    .to_string();
    let body = json!({"agent": "opencode", "prompt": "opencode asks first", "cwd": "/root/oc", "env": {"OPENCODE_CONFIG_CONTENT": config}});
    let (status, s) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions"),
            ADMIN_KEY,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let ses = s["id"].as_str().unwrap().to_string();

    let all = wait_event(&server, &sbx, &ses, "the shell's permission request", |e| {
        e["type"] == "permission.requested"
    })
    .await;
    let request = all
        .iter()
        .find(|e| e["type"] == "permission.requested")
        .unwrap();
    assert_eq!(request["data"]["tool"], "bash", "{request}");
    assert_eq!(
        request["data"]["input"]["command"], "echo hello-from-standin",
        "{request}"
    );
    let (_, info) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(info["state"], "waiting");
    answer(
        &server,
        &sbx,
        &ses,
        request["data"]["permission_id"].as_str().unwrap(),
        "once",
    )
    .await;

    let first = request["sequence"].as_u64().unwrap();
    let all = wait_event(&server, &sbx, &ses, "the write's permission request", |e| {
        e["type"] == "permission.requested" && e["sequence"].as_u64() > Some(first)
    })
    .await;
    let write = all
        .iter()
        .rev()
        .find(|e| e["type"] == "permission.requested")
        .unwrap();
    answer(
        &server,
        &sbx,
        &ses,
        write["data"]["permission_id"].as_str().unwrap(),
        "reject",
    )
    .await;
    let all = wait_idle(&server, &sbx, &ses, 1).await;
    let results: Vec<String> = items(&all, "tool_result")
        .iter()
        .map(|r| r["content"][0]["output"].to_string())
        .collect();
    assert!(
        results.iter().any(|r| r.contains("hello-from-standin")),
        "{all:#?}"
    );
    assert!(
        all.iter().any(|e| e["type"] == "item.delta"),
        "no streamed text"
    );
    assert_ne!(
        server
            .sh(ADMIN_KEY, &sbx, "test -e /root/oc/standin-output.txt")
            .await
            .0,
        0,
        "a rejected write happened"
    );
    let (_, info) = server
        .call(
            "DELETE",
            &format!("/v1/sandboxes/{sbx}/sessions/{ses}"),
            ADMIN_KEY,
            None,
        )
        .await;
    let native = info["native_session_id"].as_str().unwrap().to_string();

    let body = json!({"agent": "opencode", "prompt": "standin:text opencode later", "cwd": "/root/oc", "resume": native,
        "permission_mode": "bypass", "env": {"OPENCODE_CONFIG_CONTENT": config}});
    let (status, s) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/sessions"),
            ADMIN_KEY,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let resumed = s["id"].as_str().unwrap().to_string();
    let all = wait_idle(&server, &sbx, &resumed, 1).await;
    let users = all
        .iter()
        .filter(|e| e["type"] == "item.completed" && e["data"]["item"]["role"] == "user")
        .count();
    assert_eq!(users, 1, "the loaded history was emitted again: {all:#?}");
    let (_, log) = server.sh(ADMIN_KEY, &sbx, "cat /tmp/standin.log").await;
    let last: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|l| l["side"] == false)
        .unwrap();
    let texts = last["user_texts"].to_string();
    assert!(
        texts.contains("opencode asks first") && texts.contains("opencode later"),
        "not resumed: {texts}"
    );
}
