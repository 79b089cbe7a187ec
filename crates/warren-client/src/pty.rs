//! A terminal in a sandbox over the attach WebSocket
//! (`/v1/sandboxes/{id}/processes/{pid}/ws`): binary frames carry bytes
//! (output: one stream byte, then data; input: raw keystrokes), JSON text
//! frames carry control (`resize`, `signal`; `exit`, `dropped`, `error`).

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use warren_api::agent::{SignalSpec, WsControl};
use warren_api::ErrorCode;

use crate::error::{Error, Result};
use crate::process::{ExitStatus, Process};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What arrives from a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PtyEvent {
    /// Bytes the terminal printed.
    Output(Bytes),
    /// Output had left the agent's buffer before it could be replayed.
    Dropped {
        /// How many bytes were lost.
        bytes: u64,
    },
    /// The process exited; nothing follows.
    Exit(ExitStatus),
}

/// A terminal: a tty process and its WebSocket.
#[derive(Debug)]
pub struct Pty {
    process: Process,
    input: PtyInput,
    output: PtyOutput,
}

/// The sending half of a [`Pty`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct PtyInput {
    tx: mpsc::Sender<Message>,
}

/// The receiving half of a [`Pty`].
#[derive(Debug)]
pub struct PtyOutput {
    rx: SplitStream<Socket>,
    done: bool,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerControl {
    Dropped {
        bytes: u64,
    },
    Exit {
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    Error {
        code: ErrorCode,
        detail: String,
    },
}

impl Pty {
    /// Attaches to `process` (normally started with `tty: true`), replaying
    /// its output from the start.
    pub async fn attach(process: Process) -> Result<Pty> {
        let http = process.client().http();
        let url = http.ws_url(&format!("{}/ws", process.path()), &[]);
        let (socket, _) = match tokio_tungstenite::connect_async(url).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp.body().clone().unwrap_or_default();
                return Err(match serde_json::from_slice::<warren_api::Problem>(&body) {
                    Ok(p) => Error::Api {
                        code: p.code,
                        status,
                        detail: p.detail,
                    },
                    Err(_) => Error::UnexpectedStatus {
                        status,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    },
                });
            }
            Err(e) => return Err(e.into()),
        };
        let (sink, rx) = socket.split();
        let (tx, commands) = mpsc::channel(64);
        tokio::spawn(pump(sink, commands));
        Ok(Pty {
            process,
            input: PtyInput { tx },
            output: PtyOutput { rx, done: false },
        })
    }

    /// The process behind the terminal.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Types bytes into the terminal.
    pub async fn send(&self, data: &[u8]) -> Result<()> {
        self.input.send(data).await
    }

    /// Resizes the terminal.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        self.input.resize(cols, rows).await
    }

    /// The next thing the terminal says; `None` once it has exited.
    pub async fn recv(&mut self) -> Result<Option<PtyEvent>> {
        self.output.recv().await
    }

    /// Splits into halves usable from different tasks.
    pub fn split(self) -> (Process, PtyInput, PtyOutput) {
        (self.process, self.input, self.output)
    }
}

/// Forwards queued messages to the socket until every sender is gone.
async fn pump(mut sink: SplitSink<Socket, Message>, mut commands: mpsc::Receiver<Message>) {
    while let Some(message) = commands.recv().await {
        if sink.send(message).await.is_err() {
            return;
        }
    }
    drop(sink.close().await);
}

impl PtyInput {
    async fn push(&self, message: Message) -> Result<()> {
        self.tx
            .send(message)
            .await
            .map_err(|_| Error::from(tokio_tungstenite::tungstenite::Error::ConnectionClosed))
    }

    /// Types bytes into the terminal.
    pub async fn send(&self, data: &[u8]) -> Result<()> {
        self.push(Message::Binary(data.to_vec())).await
    }

    /// Resizes the terminal.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        let text = serde_json::to_string(&WsControl::Resize { cols, rows })?;
        self.push(Message::Text(text)).await
    }

    /// Signals the process group.
    pub async fn signal(&self, signal: SignalSpec) -> Result<()> {
        let text = serde_json::to_string(&WsControl::Signal { signal })?;
        self.push(Message::Text(text)).await
    }
}

impl PtyOutput {
    /// The next thing the terminal says; `None` once it has exited or the
    /// socket closed.
    pub async fn recv(&mut self) -> Result<Option<PtyEvent>> {
        while !self.done {
            let Some(message) = self.rx.next().await else {
                self.done = true;
                break;
            };
            match message? {
                Message::Binary(data) if !data.is_empty() => {
                    return Ok(Some(PtyEvent::Output(Bytes::from(data).slice(1..))));
                }
                Message::Text(text) => match serde_json::from_str::<ServerControl>(&text)? {
                    ServerControl::Dropped { bytes } => {
                        return Ok(Some(PtyEvent::Dropped { bytes }))
                    }
                    ServerControl::Exit { exit_code, signal } => {
                        self.done = true;
                        return Ok(Some(PtyEvent::Exit(ExitStatus { exit_code, signal })));
                    }
                    ServerControl::Error { code, detail } => {
                        return Err(Error::Api {
                            code,
                            status: code.status(),
                            detail,
                        })
                    }
                },
                Message::Close(_) => self.done = true,
                _ => {}
            }
        }
        Ok(None)
    }
}
