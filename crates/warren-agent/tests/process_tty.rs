//! Terminals and the WebSocket attach: PTY echo, resize, an interactive
//! bash with line editing and job control, binary output frames, control
//! messages.

mod common;

use common::process::within;
use common::TestAgent;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket attach, collecting output frames.
struct Attach {
    ws: Ws,
    /// Output bytes so far, all streams, without the stream tag.
    out: Vec<u8>,
    /// Where the next `expect` starts looking.
    seen: usize,
    /// `(stream tag, bytes)` of every binary frame.
    frames: Vec<(u8, Vec<u8>)>,
}

impl Attach {
    async fn connect(agent: &TestAgent, id: &str, query: &str) -> Attach {
        let url = format!("ws://{}/v1/processes/{id}/ws{query}", agent.addr);
        let (ws, _) = within("ws connect", tokio_tungstenite::connect_async(url))
            .await
            .unwrap();
        Attach {
            ws,
            out: Vec::new(),
            seen: 0,
            frames: Vec::new(),
        }
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.ws.send(Message::Binary(bytes.to_vec())).await.unwrap();
    }

    async fn send_control(&mut self, control: Value) {
        self.ws
            .send(Message::Text(control.to_string()))
            .await
            .unwrap();
    }

    /// Reads frames until the output (after what earlier calls matched)
    /// contains `needle`. Control frames met on the way are returned.
    async fn expect(&mut self, needle: &str) -> Vec<Value> {
        let mut controls = Vec::new();
        let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let text = String::from_utf8_lossy(&self.out[self.seen..]).into_owned();
                if let Some(pos) = text.find(needle) {
                    // `pos` is in lossy text; close enough for ASCII needles.
                    self.seen += pos + needle.len();
                    return;
                }
                match self.ws.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        self.out.extend_from_slice(&b[1..]);
                        self.frames.push((b[0], b[1..].to_vec()));
                    }
                    Some(Ok(Message::Text(t))) => controls.push(serde_json::from_str(&t).unwrap()),
                    Some(Ok(_)) => {}
                    other => panic!(
                        "socket ended before {needle:?}: {other:?}; output: {:?}",
                        String::from_utf8_lossy(&self.out)
                    ),
                }
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "no {needle:?} in the output: {:?}",
            String::from_utf8_lossy(&self.out[self.seen..])
        );
        controls
    }

    /// The next control (text) frame, collecting output frames before it.
    async fn control(&mut self) -> Value {
        within("control frame", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        self.out.extend_from_slice(&b[1..]);
                        self.frames.push((b[0], b[1..].to_vec()));
                    }
                    Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                    Some(Ok(_)) => {}
                    other => panic!("socket ended before a control frame: {other:?}"),
                }
            }
        })
        .await
    }

    /// Expects the exit message, then the close.
    async fn expect_exit(&mut self) -> Value {
        let exit = self.control().await;
        assert_eq!(exit["type"], "exit", "{exit}");
        let next = within("close", self.ws.next()).await;
        assert!(
            matches!(next, Some(Ok(Message::Close(_))) | None),
            "expected the close after exit, got {next:?}"
        );
        exit
    }
}

#[tokio::test]
async fn pty_echoes_and_reports_its_size_after_a_resize() {
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({"argv": ["sh"], "tty": true}))
        .await;
    assert_eq!(info["tty"], true);
    let id = info["id"].as_str().unwrap();
    let mut term = Attach::connect(&agent, id, "").await;

    // The terminal echoes what is typed, and the shell runs it.
    term.send_bytes(b"echo hel''lo; [ -t 0 ] && echo on-a-tty; echo $TERM\n")
        .await;
    term.expect("echo hel''lo").await;
    term.expect("hello\r\non-a-tty\r\nxterm-256color\r\n").await;

    term.send_bytes(b"stty size\n").await;
    term.expect("24 80\r\n").await;
    term.send_control(json!({"type": "resize", "cols": 100, "rows": 40}))
        .await;
    term.send_bytes(b"stty size\n").await;
    term.expect("40 100\r\n").await;
    // The HTTP route resizes too.
    let (status, _) = agent
        .post(
            &format!("/v1/processes/{id}/resize"),
            json!({"cols": 132, "rows": 50}),
        )
        .await;
    assert_eq!(status, 204);
    term.send_bytes(b"stty size\n").await;
    term.expect("50 132\r\n").await;

    term.send_bytes(b"exit 3\n").await;
    let exit = term.expect_exit().await;
    assert_eq!(exit["exit_code"], 3);
    assert!(term.frames.iter().all(|(tag, _)| *tag == 0x01));
}

#[tokio::test]
async fn interactive_bash_works_through_the_websocket() {
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({
            "argv": ["bash", "--norc", "--noprofile", "-i"],
            "env": {"PS1": "warren$ "},
            "tty": true, "cols": 90, "rows": 30,
        }))
        .await;
    let id = info["id"].as_str().unwrap();
    let mut term = Attach::connect(&agent, id, "").await;
    term.expect("warren$ ").await;

    // Line editing: a typo fixed with backspace, a letter inserted at the
    // start with Ctrl-A. Only the executed commands print these lines (the
    // echo of the typing never has them).
    term.send_bytes(b"echo hellx\x7fo\r").await;
    term.expect("hello\r\n").await;
    term.expect("warren$ ").await;
    term.send_bytes(b"cho $((6*7))\x01e\r").await;
    term.expect("42\r\n").await;
    term.expect("warren$ ").await;

    // Full-screen programs see the terminal's size (and its changes).
    term.send_control(json!({"type": "resize", "cols": 120, "rows": 33}))
        .await;
    term.send_bytes(b"tput cols; tput lines\r").await;
    term.expect("120\r\n33\r\n").await;

    // Ctrl-C interrupts the foreground job, not the shell.
    // (The job says when it runs: a ^C that came earlier would hit bash.)
    term.send_bytes(b"sh -c 'echo up-$((2+2)); exec sleep 30'\r")
        .await;
    term.expect("up-4\r\n").await;
    term.send_bytes(b"\x03").await;
    term.expect("warren$ ").await;
    term.send_bytes(b"echo still-$((1+1))\r").await;
    term.expect("still-2\r\n").await;

    term.send_bytes(b"exit\r").await;
    let exit = term.expect_exit().await;
    assert_eq!(exit["exit_code"], 0);
}

#[tokio::test]
async fn attach_replays_from_a_cursor_with_stream_tags() {
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({"cmd": "echo hi; echo err >&2"}))
        .await;
    let id = info["id"].as_str().unwrap();
    agent.wait_exit(id).await;

    let mut all = Attach::connect(&agent, id, "?cursor=0").await;
    let exit = all.expect_exit().await;
    assert_eq!(
        all.frames,
        [(0x01, b"hi\n".to_vec()), (0x02, b"err\n".to_vec())]
    );
    assert_eq!(exit["exit_code"], 0);
    assert_eq!(exit["cursor"], 7);

    let mut tail = Attach::connect(&agent, id, "?cursor=3").await;
    tail.expect_exit().await;
    assert_eq!(tail.frames, [(0x02, b"err\n".to_vec())]);

    // A cursor past the end is refused before the upgrade.
    let url = format!("ws://{}/v1/processes/{id}/ws?cursor=99", agent.addr);
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
}

#[tokio::test]
async fn attach_reports_dropped_output() {
    let agent = TestAgent::start_with(|c| c.limits.ring_bytes = 16).await;
    let info = agent
        .start_process(json!({"cmd": "printf 0123456789abcdefghij"}))
        .await;
    let id = info["id"].as_str().unwrap();
    agent.wait_exit(id).await;
    let mut term = Attach::connect(&agent, id, "").await;
    let dropped = term.control().await;
    assert_eq!(dropped, json!({"type": "dropped", "bytes": 4, "cursor": 4}));
    term.expect_exit().await;
    assert_eq!(term.out, b"456789abcdefghij");
}

#[tokio::test]
async fn attach_takes_stdin_and_answers_bad_controls_with_errors() {
    let agent = TestAgent::start().await;
    let info = agent.start_process(json!({"argv": ["cat"]})).await;
    let id = info["id"].as_str().unwrap();
    let mut term = Attach::connect(&agent, id, "").await;

    term.ws
        .send(Message::Text("not json".into()))
        .await
        .unwrap();
    let err = term.control().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "invalid_request");
    term.send_control(json!({"type": "signal", "signal": "SIGNOPE"}))
        .await;
    assert_eq!(term.control().await["code"], "invalid_request");
    term.send_control(json!({"type": "resize", "cols": 80, "rows": 24}))
        .await;
    assert_eq!(term.control().await["code"], "conflict");
    term.send_control(json!({"type": "stdin", "data": "%%%", "encoding": "base64"}))
        .await;
    assert_eq!(term.control().await["code"], "invalid_request");

    // stdin as a JSON control (base64) and as a raw binary frame.
    term.send_control(json!({"type": "stdin", "data": "aGk=", "encoding": "base64"}))
        .await;
    term.send_bytes(b"!\n").await;
    term.expect("hi!\n").await;
    term.send_control(json!({"type": "stdin", "data": "", "eof": true}))
        .await;
    let exit = term.expect_exit().await;
    assert_eq!(exit["exit_code"], 0);
}

#[tokio::test]
async fn attach_needs_a_known_process_and_the_token() {
    let agent = TestAgent::start_with(|c| c.token = Some("s3cret".into())).await;
    let url = format!(
        "ws://{}/v1/processes/proc_aaaaaaaaaaaaaaaaaaaa/ws?access_token=s3cret",
        agent.addr
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    let resp = agent
        .http
        .post(agent.url("/v1/processes"))
        .bearer_auth("s3cret")
        .json(&json!({"cmd": "echo ok"}))
        .send()
        .await
        .unwrap();
    let info: Value = resp.json().await.unwrap();
    let id = info["id"].as_str().unwrap();
    let url = format!("ws://{}/v1/processes/{id}/ws", agent.addr);
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let url = format!(
        "ws://{}/v1/processes/{id}/ws?access_token=s3cret",
        agent.addr
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = within("first frame", ws.next()).await.unwrap().unwrap();
    assert_eq!(first, Message::Binary(b"\x01ok\n".to_vec()));
}
