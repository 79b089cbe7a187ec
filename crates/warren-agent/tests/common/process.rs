//! Helpers for the process tests: JSON calls, an SSE reader, /proc checks.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use super::TestAgent;

/// Fails the test instead of hanging when `fut` takes longer than 15 s.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(15), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

impl TestAgent {
    /// POSTs JSON; returns the status and the JSON body (null when empty).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        status_and_json(resp).await
    }

    /// GETs; returns the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        status_and_json(resp).await
    }

    /// DELETEs; returns the status and the JSON body (null when empty).
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let resp = self.http.delete(self.url(path)).send().await.unwrap();
        status_and_json(resp).await
    }

    /// `POST /v1/processes/run`, expecting 200.
    pub async fn run(&self, body: Value) -> Value {
        let (status, body) = within("run", self.post("/v1/processes/run", body)).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `POST /v1/processes`, expecting 201; returns the process object.
    pub async fn start_process(&self, body: Value) -> Value {
        let (status, body) = self.post("/v1/processes", body).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Waits for the process to exit; returns the process object.
    pub async fn wait_exit(&self, id: &str) -> Value {
        let path = format!("/v1/processes/{id}?wait=true&timeout_ms=10000");
        let (status, body) = within("wait", self.get(&path)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "exited", "{body}");
        body
    }

    /// All buffered output of a process from cursor 0, as text.
    pub async fn output_text(&self, id: &str) -> String {
        let (status, body) = self.get(&format!("/v1/processes/{id}/logs")).await;
        assert_eq!(status, 200, "{body}");
        body["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["data"].as_str().unwrap().to_string())
            .collect()
    }

    /// Polls the buffered output until it contains `needle`.
    pub async fn wait_output(&self, id: &str, needle: &str) -> String {
        within(&format!("output {needle:?}"), async {
            loop {
                let text = self.output_text(id).await;
                if text.contains(needle) {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// Opens an SSE follow of a process from `cursor`.
    pub async fn follow(&self, id: &str, cursor: u64) -> SseReader {
        let url = self.url(&format!(
            "/v1/processes/{id}/logs?follow=true&cursor={cursor}"
        ));
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        SseReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
        }
    }
}

async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
    };
    (status, body)
}

/// Asserts a problem response with this status and code.
pub fn assert_problem(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert_eq!(got.1["status"], status, "{}", got.1);
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `event:` (empty when absent).
    pub event: String,
    /// `id:`, when present.
    pub id: Option<String>,
    /// `data:` parsed as JSON.
    pub data: Value,
}

/// Reads events from an SSE response.
pub struct SseReader {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
}

impl SseReader {
    /// The next event (comments skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        within("next SSE event", async {
            loop {
                if let Some(pos) = self.buf.windows(2).position(|w| w == b"\n\n") {
                    let raw: Vec<u8> = self.buf.drain(..pos + 2).collect();
                    if let Some(event) = parse_event(&String::from_utf8(raw).unwrap()) {
                        return Some(event);
                    }
                    continue;
                }
                match self.stream.next().await {
                    Some(chunk) => self.buf.extend_from_slice(&chunk.unwrap()),
                    None => return None,
                }
            }
        })
        .await
    }

    /// Events until (and including) `exit`; panics if the stream ends first.
    pub async fn until_exit(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await.expect("stream ended before exit");
            let done = event.event == "exit";
            events.push(event);
            if done {
                assert!(self.next().await.is_none(), "the stream ends after exit");
                return events;
            }
        }
    }
}

fn parse_event(raw: &str) -> Option<SseEvent> {
    let (mut event, mut id, mut data) = (String::new(), None, String::new());
    for line in raw.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if event.is_empty() && data.is_empty() {
        return None; // a keep-alive comment
    }
    Some(SseEvent {
        event,
        id,
        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
    })
}

/// Concatenated text of the `output` events.
pub fn output_of(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| e.data["data"].as_str().unwrap().to_string())
        .collect()
}

/// Whether a process with this pid exists (zombies included).
pub fn pid_exists(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to 5 s for the pid to disappear entirely (dead *and* reaped).
pub async fn wait_pid_gone(pid: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !pid_exists(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// SIGKILLs a pid this test learned from its own processes, on drop.
pub struct KillOnDrop(pub i64);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if pid_exists(self.0) {
            // SAFETY: kill(2) takes plain integers.
            unsafe {
                libc::kill(self.0 as i32, libc::SIGKILL);
            }
        }
    }
}
