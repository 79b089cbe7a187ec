//! Helpers for the `/v1/files` tests: requests by path, problem checks and
//! a small SSE reader.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::common::TestAgent;

/// `PUT /v1/files?path=` with `body`; returns status and JSON answer.
pub async fn put(agent: &TestAgent, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = agent
        .http
        .put(agent.url("/v1/files"))
        .query(&[("path", path)])
        .body(body)
        .send()
        .await
        .unwrap();
    json(resp).await
}

/// `GET /v1/files?path=`: status and raw bytes.
pub async fn get(agent: &TestAgent, path: &str) -> (u16, Vec<u8>) {
    let resp = agent
        .http
        .get(agent.url("/v1/files"))
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

/// A `GET` of `route` with query pairs; status and JSON answer.
pub async fn get_json(agent: &TestAgent, route: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let resp = agent
        .http
        .get(agent.url(route))
        .query(query)
        .send()
        .await
        .unwrap();
    json(resp).await
}

/// A `POST` of `route` with query pairs and an optional JSON body.
pub async fn post_json(
    agent: &TestAgent,
    route: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = agent.http.post(agent.url(route)).query(query);
    if let Some(body) = body {
        req = req.json(&body);
    }
    json(req.send().await.unwrap()).await
}

/// `DELETE /v1/files` with query pairs.
pub async fn delete(agent: &TestAgent, query: &[(&str, &str)]) -> (u16, Value) {
    let resp = agent
        .http
        .delete(agent.url("/v1/files"))
        .query(query)
        .send()
        .await
        .unwrap();
    json(resp).await
}

/// Status and JSON body (`Null` when the body is not JSON).
pub async fn json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts a problem answer with this status and code.
#[track_caller]
pub fn assert_problem(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "unexpected answer {answer:?}");
    assert_eq!(answer.1["code"], code, "unexpected answer {answer:?}");
    assert_eq!(answer.1["status"], status, "unexpected answer {answer:?}");
}

/// Names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// `event:` field.
    pub event: String,
    /// `data:` field, parsed as JSON.
    pub data: Value,
}

/// Reads SSE events from a streaming response.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl SseReader {
    /// Wraps a `text/event-stream` response.
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the stream ends or
    /// `wait` passes.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Some(SseEvent { event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next()).await;
            match chunk {
                Ok(Some(Ok(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Skips events until one of kind `kind` at `path` arrives; panics after `wait`.
    pub async fn expect_fs(&mut self, kind: &str, path: &str, wait: Duration) -> SseEvent {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(event) = self.next(left).await else {
                panic!("no {kind} event for {path}; saw {seen:#?}");
            };
            if event.event == "fs" && event.data["kind"] == kind && event.data["path"] == path {
                return event;
            }
            seen.push(event);
        }
    }
}
