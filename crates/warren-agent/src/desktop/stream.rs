//! The live view: the desktop's screen as a raw RFB (VNC) byte stream.
//!
//! Each viewer gets its own x11vnc on the display, which connects back to
//! a one-use listener of the agent on loopback (`-connect_or_exit`: a
//! reverse connection, so no VNC port stays open and the server exits with
//! its one client), so view-only is the server's own `-viewonly`: no byte a
//! view-only client sends becomes input. (`-inetd` would need a socket on
//! stdin, and managed processes get pipes.) At most [`MAX_VIEWERS`] run at once; `Desktop::stop` ends them
//! all; `status` lists them (`vnc` entries). The HTTP side pumps a
//! WebSocket's binary messages through [`Viewer::pump`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use warren_api::desktop::DesktopProcess;

use super::Desktop;
use crate::process::Child;
use crate::AgentError;

/// Viewers at once, per agent (one x11vnc each).
pub const MAX_VIEWERS: usize = 4;
/// Bytes read from the VNC server per WebSocket message, at most.
const CHUNK: usize = 256 * 1024;
/// How long a viewer's VNC server gets to connect back.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The viewers of a desktop; cheap to clone.
#[derive(Clone)]
pub struct Viewers {
    permits: Arc<Semaphore>,
    /// Bumped by `end_all`; each viewer ends when it changes.
    generation: Arc<watch::Sender<u64>>,
    /// Pids of the running viewers' servers, by viewer number.
    active: Arc<Mutex<BTreeMap<u64, (i32, bool)>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Viewers {
    fn default() -> Self {
        Viewers {
            permits: Arc::new(Semaphore::new(MAX_VIEWERS)),
            generation: Arc::new(watch::channel(0).0),
            active: Arc::default(),
            next: Arc::default(),
        }
    }
}

impl Viewers {
    /// Ends every viewer (the desktop is stopping).
    pub fn end_all(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// The running viewers' servers, as `status` shows them.
    pub fn processes(&self) -> Vec<DesktopProcess> {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, (pid, view_only))| DesktopProcess {
                name: if *view_only { "vnc_view_only" } else { "vnc" }.to_string(),
                process_id: format!("viewer-{n}"),
                pid: *pid as u32,
                // Listed from its start until its stream has ended.
                running: true,
            })
            .collect()
    }
}

/// One viewer: its VNC server, its place among the viewers.
pub struct Viewer {
    /// Its VNC server's connection.
    vnc: TcpStream,
    /// Its VNC server, killed with its group when the viewer is dropped.
    _child: Child,
    stop: watch::Receiver<u64>,
    _registration: Registration,
}

/// Removes a viewer from `active` when it ends; holds its permit.
struct Registration {
    viewers: Viewers,
    number: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.viewers
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.number);
    }
}

impl Desktop {
    /// Starts a VNC server for one more viewer of the running display
    /// (`view_only`: it ignores the viewer's input). `DesktopNotRunning`
    /// before the display is started; `TooManyViewers` past the cap.
    pub async fn viewer(&self, view_only: bool) -> Result<Viewer, AgentError> {
        let screen = self.screen().await?;
        if self.processes.find_program("x11vnc").is_none() {
            return Err(AgentError::Missing(
                "x11vnc is not installed: use the desktop template, or install x11vnc".into(),
            ));
        }
        let viewers = &self.viewers;
        let permit = viewers
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| AgentError::TooManyViewers(MAX_VIEWERS))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| tool_failed(format!("no loopback port for the viewer: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| tool_failed(e.to_string()))?
            .port();
        let back = format!("127.0.0.1:{port}");
        let mut argv: Vec<String> = [
            "x11vnc",
            "-q",
            "-display",
            &screen.display,
            "-connect_or_exit",
            &back,
            "-once",
            "-rfbport",
            "0",
            "-nopw",
            "-noxdamage",
            "-nobell",
            "-noxrecord",
            "-cursor",
            "arrow",
        ]
        .map(String::from)
        .to_vec();
        if view_only {
            argv.push("-viewonly".into());
        }
        let env = BTreeMap::from([("DISPLAY".to_string(), screen.display.clone())]);
        let mut child = self.processes.spawn_child(&argv, "/", &env)?;
        // Its log is not the stream: read and dropped, so it never blocks.
        for pipe in [child.stdout.take(), child.stderr.take()]
            .into_iter()
            .flatten()
        {
            tokio::spawn(drain(pipe));
        }
        let vnc = tokio::select! {
            accepted = tokio::time::timeout(CONNECT_WAIT, listener.accept()) => match accepted {
                Ok(Ok((stream, _))) => stream,
                Ok(Err(e)) => return Err(tool_failed(e.to_string())),
                Err(_) => {
                    return Err(AgentError::ToolTimedOut {
                        tool: "x11vnc".into(),
                        secs: CONNECT_WAIT.as_secs(),
                    })
                }
            },
            status = &mut child.exit => {
                return Err(tool_failed(format!("it exited before connecting ({status:?})")))
            }
        };
        drop(listener);
        let _ = vnc.set_nodelay(true);
        let number = viewers
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        viewers
            .active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(number, (child.pid, view_only));
        Ok(Viewer {
            vnc,
            _child: child,
            stop: viewers.generation.subscribe(),
            _registration: Registration {
                viewers: viewers.clone(),
                number,
                _permit: permit,
            },
        })
    }
}

impl Viewer {
    /// Bridges `socket` to the VNC server until either side ends or the
    /// desktop stops: binary messages in are written to the server, what it
    /// writes goes out as binary messages. The server is killed after.
    pub async fn pump(mut self, socket: WebSocket) {
        let (mut from_vnc, mut to_vnc) = self.vnc.split();
        let (mut tx, mut rx) = socket.split();
        let up = async {
            while let Some(Ok(message)) = rx.next().await {
                match message {
                    Message::Binary(bytes) => {
                        if to_vnc.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Message::Close(_) => break,
                    Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        };
        let down = async {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match from_vnc.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let message = Message::Binary(buf[..n].to_vec().into());
                        if tx.send(message).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.close().await;
        };
        let mut stop = self.stop.clone();
        tokio::select! {
            () = up => {}
            () = down => {}
            _ = stop.changed() => {}
        }
        // Dropping the child kills its process group.
    }
}

fn tool_failed(detail: String) -> AgentError {
    AgentError::ToolFailed {
        tool: "x11vnc".into(),
        detail,
    }
}

/// Reads a pipe to its end, dropping what it carries.
async fn drain(mut pipe: tokio::net::unix::pipe::Receiver) {
    let mut sink = vec![0u8; 8192];
    while matches!(pipe.read(&mut sink).await, Ok(n) if n > 0) {}
}
