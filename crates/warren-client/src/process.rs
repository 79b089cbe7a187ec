//! Managed processes: output as a [`Stream`] of [`OutputEvent`]s (SSE
//! `logs?follow=true`, resumed from its cursor when the connection breaks),
//! stdin, signals, waiting.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Deserialize;
use warren_api::agent::{
    Encoding, LogsResponse, OutputChunk, ProcessInfo, ProcessState, ResizeRequest, SignalRequest,
    SignalSpec, StdinRequest, StreamKind,
};

use crate::error::{Error, Result};
use crate::sse::SseParser;
use crate::Client;

/// Reconnects of an output stream in a row before giving up.
const MAX_RECONNECTS: u32 = 5;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ExitStatus {
    /// Exit status, when it exited normally.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// The status a shell would report: the exit code, or 128 + signal.
    pub fn code(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }
}

/// One item of a process's output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    /// Bytes the process wrote.
    Output {
        /// stdout or stderr.
        stream: StreamKind,
        /// Byte cursor of the first byte.
        cursor: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Output asked for had already left the agent's buffer.
    Dropped {
        /// How many bytes were lost.
        bytes: u64,
    },
    /// The process exited; the stream ends after this.
    Exit(ExitStatus),
}

/// A managed process of a sandbox.
#[derive(Debug, Clone)]
pub struct Process {
    client: Client,
    sandbox_id: String,
    info: ProcessInfo,
}

#[derive(Deserialize)]
struct DroppedEvent {
    bytes: u64,
    cursor: u64,
}

/// Decodes the data of an output chunk (as returned by [`Process::logs`]).
pub fn chunk_bytes(chunk: &OutputChunk) -> Result<Bytes> {
    Ok(match chunk.encoding {
        Encoding::Utf8 => Bytes::from(chunk.data.clone().into_bytes()),
        Encoding::Base64 => {
            Bytes::from(base64::engine::general_purpose::STANDARD.decode(&chunk.data)?)
        }
    })
}

/// State of the output stream between polls.
struct Follow {
    process: Process,
    cursor: u64,
    failures: u32,
    body: Option<futures::stream::BoxStream<'static, reqwest::Result<Bytes>>>,
    parser: SseParser,
    pending: VecDeque<OutputEvent>,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<Result<OutputEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if matches!(event, OutputEvent::Exit(_)) {
                    self.done = true;
                }
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if self.failures > 0 {
                    tokio::time::sleep(Duration::from_millis(250 << self.failures)).await;
                }
                match open(&self.process, self.cursor).await {
                    Ok(body) => self.body = Some(body),
                    Err(e @ Error::Api { .. }) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Err(_) => {
                        if let Some(e) = self.broke() {
                            return Some(Err(e));
                        }
                    }
                }
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    for event in self.parser.feed(&chunk) {
                        if let Err(e) = self.accept(&event.event, &event.data) {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
                Some(Err(_)) | None => {
                    self.body = None;
                    self.parser = SseParser::default();
                    if let Some(e) = self.broke() {
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// Counts a broken connection; an error once there were too many.
    fn broke(&mut self) -> Option<Error> {
        self.failures += 1;
        if self.failures > MAX_RECONNECTS {
            self.done = true;
            return Some(Error::StreamBroken(self.process.info.id.clone()));
        }
        None
    }

    fn accept(&mut self, event: &str, data: &str) -> Result<()> {
        match event {
            "output" => {
                let chunk: OutputChunk = serde_json::from_str(data)?;
                let bytes = chunk_bytes(&chunk)?;
                self.failures = 0;
                self.cursor = chunk.cursor + bytes.len() as u64;
                self.pending.push_back(OutputEvent::Output {
                    stream: chunk.stream,
                    cursor: chunk.cursor,
                    data: bytes,
                });
            }
            "dropped" => {
                let dropped: DroppedEvent = serde_json::from_str(data)?;
                self.cursor = dropped.cursor;
                self.pending.push_back(OutputEvent::Dropped {
                    bytes: dropped.bytes,
                });
            }
            "exit" => {
                let status: ExitStatus = serde_json::from_str(data)?;
                self.pending.push_back(OutputEvent::Exit(status));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Opens the SSE output stream of `process` from `cursor`.
async fn open(
    process: &Process,
    cursor: u64,
) -> Result<futures::stream::BoxStream<'static, reqwest::Result<Bytes>>> {
    let http = process.client.http();
    let req = http
        .get(&format!("{}/logs", process.path()))
        .query(&[
            ("follow", "true".to_string()),
            ("cursor", cursor.to_string()),
        ])
        .header("accept", "text/event-stream");
    Ok(http.send(req).await?.bytes_stream().boxed())
}

impl Process {
    pub(crate) fn new(client: Client, sandbox_id: String, info: ProcessInfo) -> Process {
        Process {
            client,
            sandbox_id,
            info,
        }
    }

    pub(crate) fn path(&self) -> String {
        format!(
            "/v1/sandboxes/{}/processes/{}",
            self.sandbox_id, self.info.id
        )
    }

    /// `proc_…`.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The sandbox it runs in.
    pub fn sandbox_id(&self) -> &str {
        &self.sandbox_id
    }

    /// Its pid inside the sandbox.
    pub fn pid(&self) -> i32 {
        self.info.pid
    }

    /// What the server said when it was started or last refreshed.
    pub fn info(&self) -> &ProcessInfo {
        &self.info
    }

    /// Its output from the start (as much as the agent still holds), live
    /// until it exits; the last item is [`OutputEvent::Exit`].
    pub fn output(&self) -> BoxStream<'static, Result<OutputEvent>> {
        self.output_from(0)
    }

    /// Its output from byte `cursor` on.
    pub fn output_from(&self, cursor: u64) -> BoxStream<'static, Result<OutputEvent>> {
        let follow = Follow {
            process: self.clone(),
            cursor,
            failures: 0,
            body: None,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            done: false,
        };
        futures::stream::unfold(follow, |mut follow| async move {
            let item = follow.next().await?;
            Some((item, follow))
        })
        .boxed()
    }

    /// Buffered output from `cursor`, without waiting.
    pub async fn logs(&self, cursor: u64) -> Result<LogsResponse> {
        let http = self.client.http();
        http.json(
            http.get(&format!("{}/logs", self.path()))
                .query(&[("cursor", cursor)]),
        )
        .await
    }

    /// Asks the server for its current state.
    pub async fn refresh(&mut self) -> Result<&ProcessInfo> {
        let http = self.client.http();
        self.info = http.json(http.get(&self.path())).await?;
        Ok(&self.info)
    }

    /// Waits until it exits.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        let http = self.client.http();
        loop {
            let req = http
                .get(&self.path())
                .query(&[("wait", "true"), ("timeout_ms", "30000")]);
            self.info = http.json(req).await?;
            if self.info.state == ProcessState::Exited {
                return Ok(ExitStatus {
                    exit_code: self.info.exit_code,
                    signal: self.info.signal,
                });
            }
        }
    }

    /// Writes bytes to its stdin.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<()> {
        self.stdin(data, false).await
    }

    /// Closes its stdin (after writing `data`).
    pub async fn close_stdin(&self, data: &[u8]) -> Result<()> {
        self.stdin(data, true).await
    }

    async fn stdin(&self, data: &[u8], eof: bool) -> Result<()> {
        let body = match std::str::from_utf8(data) {
            Ok(text) => StdinRequest {
                data: text.to_string(),
                encoding: Encoding::Utf8,
                eof,
            },
            Err(_) => StdinRequest {
                data: base64::engine::general_purpose::STANDARD.encode(data),
                encoding: Encoding::Base64,
                eof,
            },
        };
        let http = self.client.http();
        http.empty(http.post(&format!("{}/stdin", self.path())).json(&body))
            .await
    }

    /// Sends a signal (`SIGTERM`, `KILL`, or a number) to its process group.
    pub async fn signal(&self, signal: SignalSpec) -> Result<()> {
        let http = self.client.http();
        http.empty(
            http.post(&format!("{}/signal", self.path()))
                .json(&SignalRequest { signal }),
        )
        .await
    }

    /// Kills it (SIGKILL to its process group).
    pub async fn kill(&self) -> Result<()> {
        self.signal(SignalSpec::Name("SIGKILL".into())).await
    }

    /// Resizes its terminal (tty processes).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        let http = self.client.http();
        http.empty(
            http.post(&format!("{}/resize", self.path()))
                .json(&ResizeRequest { cols, rows }),
        )
        .await
    }

    /// Forgets it once exited (`force`: kill it first).
    pub async fn remove(&self, force: bool) -> Result<()> {
        let http = self.client.http();
        http.empty(http.delete(&self.path()).query(&[("force", force)]))
            .await
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}
