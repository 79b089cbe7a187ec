//! A small RFB (VNC) client, over a WebSocket carrying the raw byte stream
//! (Warren's `/v1/sandboxes/{id}/desktop/stream`) or over any plain byte
//! stream (a VNC server's TCP port): the handshake (version 3.8, security
//! type None, ClientInit/ServerInit), FramebufferUpdateRequest,
//! PointerEvent, and updates read to their end without decoding pixels
//! (Raw, CopyRect and ZRLE, whose data is length-prefixed). [`measure`]
//! counts frames and bytes over a span of time. Self-contained (tokio,
//! tokio-tungstenite, futures): crates/warren/tests/server_desktop_stream.rs
//! includes this file as it is.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Raw pixels.
pub const RAW: i32 = 0;
/// A copy of another region.
pub const COPY_RECT: i32 = 1;
/// Zlib run-length encoding (length-prefixed).
pub const ZRLE: i32 = 16;

/// What ServerInit said.
#[derive(Debug, Clone)]
pub struct ServerInit {
    /// Framebuffer width.
    pub width: u16,
    /// Framebuffer height.
    pub height: u16,
    /// Bits per pixel of the server's pixel format.
    pub bits_per_pixel: u8,
    /// The desktop's name.
    pub name: String,
}

/// One FramebufferUpdate, read to its end.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// Its rectangles.
    pub rects: usize,
    /// Its bytes on the wire.
    pub bytes: usize,
}

/// What carries the RFB bytes: WebSocket binary messages, or the stream
/// itself.
enum Link<S> {
    Ws(Box<WebSocketStream<S>>),
    Plain(S),
}

/// A client connection after the handshake, over a transport `S` (a TCP
/// stream, TLS, ...).
pub struct Rfb<S> {
    link: Link<S>,
    buf: Vec<u8>,
    at: usize,
    /// Bytes received so far.
    pub received: usize,
    /// What the server said at init.
    pub init: ServerInit,
}

/// An error of the RFB exchange.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl<S: AsyncRead + AsyncWrite + Unpin> Rfb<S> {
    /// Runs the handshake over the WebSocket `ws` (one binary message per
    /// client message) and sets the encodings it will accept.
    pub async fn handshake(ws: WebSocketStream<S>, encodings: &[i32]) -> Result<Self, Error> {
        Self::start(Link::Ws(Box::new(ws)), encodings).await
    }

    /// Runs the handshake directly over `stream` (a VNC server's port) and
    /// sets the encodings it will accept.
    pub async fn handshake_plain(stream: S, encodings: &[i32]) -> Result<Self, Error> {
        Self::start(Link::Plain(stream), encodings).await
    }

    async fn start(link: Link<S>, encodings: &[i32]) -> Result<Self, Error> {
        let mut rfb = Rfb {
            link,
            buf: Vec::new(),
            at: 0,
            received: 0,
            init: ServerInit {
                width: 0,
                height: 0,
                bits_per_pixel: 0,
                name: String::new(),
            },
        };
        let version = rfb.read(12).await?;
        if !version.starts_with(b"RFB 003.") {
            return Err(format!("not RFB: {:?}", String::from_utf8_lossy(&version)).into());
        }
        rfb.send(b"RFB 003.008\n".to_vec()).await?;
        let count = rfb.read(1).await?[0];
        if count == 0 {
            let reason = rfb.read_string().await?;
            return Err(format!("the server refused: {reason}").into());
        }
        let types = rfb.read(count as usize).await?;
        if !types.contains(&1) {
            return Err(format!("no security type None among {types:?}").into());
        }
        rfb.send(vec![1]).await?;
        let result = u32::from_be_bytes(rfb.read(4).await?.try_into().unwrap());
        if result != 0 {
            let reason = rfb.read_string().await.unwrap_or_default();
            return Err(format!("security failed: {reason}").into());
        }
        rfb.send(vec![1]).await?; // ClientInit: shared.
        let head = rfb.read(20).await?;
        rfb.init.width = u16::from_be_bytes([head[0], head[1]]);
        rfb.init.height = u16::from_be_bytes([head[2], head[3]]);
        rfb.init.bits_per_pixel = head[4];
        rfb.init.name = rfb.read_string().await?;
        let mut set = vec![2, 0];
        set.extend_from_slice(&(encodings.len() as u16).to_be_bytes());
        for e in encodings {
            set.extend_from_slice(&e.to_be_bytes());
        }
        rfb.send(set).await?;
        Ok(rfb)
    }

    /// Sends raw client bytes.
    pub async fn send(&mut self, bytes: Vec<u8>) -> Result<(), Error> {
        match &mut self.link {
            Link::Ws(ws) => ws.send(Message::Binary(bytes)).await?,
            Link::Plain(s) => {
                s.write_all(&bytes).await?;
                s.flush().await?;
            }
        }
        Ok(())
    }

    /// FramebufferUpdateRequest for the whole screen.
    pub async fn request_update(&mut self, incremental: bool) -> Result<(), Error> {
        let mut m = vec![3, u8::from(incremental), 0, 0, 0, 0];
        m.extend_from_slice(&self.init.width.to_be_bytes());
        m.extend_from_slice(&self.init.height.to_be_bytes());
        self.send(m).await
    }

    /// PointerEvent: the pointer at `x`, `y` with `buttons` (a mask) down.
    pub async fn pointer(&mut self, x: u16, y: u16, buttons: u8) -> Result<(), Error> {
        let mut m = vec![5, buttons];
        m.extend_from_slice(&x.to_be_bytes());
        m.extend_from_slice(&y.to_be_bytes());
        self.send(m).await
    }

    /// Reads server messages until a FramebufferUpdate, and reads it to
    /// its end.
    pub async fn next_update(&mut self) -> Result<Update, Error> {
        loop {
            let start = self.received_total();
            match self.read(1).await?[0] {
                0 => {
                    let head = self.read(3).await?;
                    let rects = u16::from_be_bytes([head[1], head[2]]) as usize;
                    for _ in 0..rects {
                        self.skip_rect().await?;
                    }
                    return Ok(Update {
                        rects,
                        bytes: self.received_total() - start,
                    });
                }
                1 => {
                    let head = self.read(5).await?;
                    let n = u16::from_be_bytes([head[3], head[4]]) as usize;
                    self.read(n * 6).await?;
                }
                2 => {}
                3 => {
                    let head = self.read(7).await?;
                    let n = u32::from_be_bytes(head[3..7].try_into().unwrap()) as usize;
                    self.read(n).await?;
                }
                other => return Err(format!("unexpected server message {other}").into()),
            }
        }
    }

    async fn skip_rect(&mut self) -> Result<(), Error> {
        let head = self.read(12).await?;
        let w = u16::from_be_bytes([head[4], head[5]]) as usize;
        let h = u16::from_be_bytes([head[6], head[7]]) as usize;
        let encoding = i32::from_be_bytes(head[8..12].try_into().unwrap());
        match encoding {
            RAW => {
                let bpp = usize::from(self.init.bits_per_pixel / 8);
                self.read(w * h * bpp).await?;
            }
            COPY_RECT => {
                self.read(4).await?;
            }
            ZRLE => {
                let n = u32::from_be_bytes(self.read(4).await?.try_into().unwrap()) as usize;
                self.read(n).await?;
            }
            // Pseudo-encodings the server may send without pixels (the
            // cursor one is only sent when asked for).
            -223 | -224 => {}
            other => return Err(format!("unexpected encoding {other}").into()),
        }
        Ok(())
    }

    fn received_total(&self) -> usize {
        self.received - (self.buf.len() - self.at)
    }

    async fn read_string(&mut self) -> Result<String, Error> {
        let n = u32::from_be_bytes(self.read(4).await?.try_into().unwrap()) as usize;
        Ok(String::from_utf8_lossy(&self.read(n).await?).into_owned())
    }

    /// Exactly `n` bytes of the stream.
    async fn read(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        while self.buf.len() - self.at < n {
            let bytes = match &mut self.link {
                Link::Ws(ws) => match ws.next().await {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_))) | None => return Err("the stream ended".into()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                },
                Link::Plain(s) => {
                    let mut chunk = vec![0; 64 * 1024];
                    let got = s.read(&mut chunk).await?;
                    if got == 0 {
                        return Err("the stream ended".into());
                    }
                    chunk.truncate(got);
                    chunk
                }
            };
            self.buf.drain(..self.at);
            self.at = 0;
            self.received += bytes.len();
            self.buf.extend_from_slice(&bytes);
        }
        let out = self.buf[self.at..self.at + n].to_vec();
        self.at += n;
        Ok(out)
    }

    /// Closes the WebSocket (shuts the plain stream down).
    pub async fn close(self) {
        match self.link {
            Link::Ws(mut ws) => {
                let _ = (*ws).close(None).await;
            }
            Link::Plain(mut s) => {
                let _ = s.shutdown().await;
            }
        }
    }
}

/// Frames and bytes a stream delivered over a span.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// FramebufferUpdates received.
    pub frames: usize,
    /// Updates that carried at least one rectangle.
    pub nonempty: usize,
    /// Bytes received.
    pub bytes: usize,
    /// The span measured.
    pub elapsed: Duration,
}

impl Measurement {
    /// Non-empty frames per second.
    pub fn fps(&self) -> f64 {
        self.nonempty as f64 / self.elapsed.as_secs_f64()
    }

    /// Bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Asks for incremental updates one after another, as a viewer does, for
/// `span`: how many came and how many bytes they took.
pub async fn measure<S: AsyncRead + AsyncWrite + Unpin>(
    rfb: &mut Rfb<S>,
    span: Duration,
) -> Result<Measurement, Error> {
    let start = Instant::now();
    let before = rfb.received_total();
    let (mut frames, mut nonempty) = (0, 0);
    while start.elapsed() < span {
        rfb.request_update(true).await?;
        let update = rfb.next_update().await?;
        frames += 1;
        if update.rects > 0 {
            nonempty += 1;
        }
    }
    Ok(Measurement {
        frames,
        nonempty,
        bytes: rfb.received_total() - before,
        elapsed: start.elapsed(),
    })
}
