//! An HTTP/1 client for sandbox agents over their unix sockets, with
//! keep-alive connections pooled per sandbox.
//!
//! Requests are addressed `http://<sandbox id>/v1/...`: the connector maps
//! the host (validated as a sandbox id, so no path can be smuggled in) to the
//! sandbox's agent socket through [`Node::connect_agent`], which also checks
//! that the listener is that sandbox's own agent; hyper's pool keys idle
//! connections by that host, which gives each sandbox its own reusable
//! connections.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connect, Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::UnixStream;
use warren_api::ids::{self, IdKind};

use crate::node::Node;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// Idle connections kept per sandbox.
const POOL_MAX_IDLE_PER_SANDBOX: usize = 32;

/// Most bytes of an agent's answer the server reads into memory (answers
/// it forwards are streamed, never read whole). The sandbox controls what
/// its agent socket answers, so every answer read whole is bounded.
pub const MAX_AGENT_REPLY: usize = 32 << 20;

/// Reading an agent's answer into memory failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The answer is longer than the limit.
    #[error("the agent's answer is longer than {0} bytes")]
    TooLong(usize),
    /// The connection failed while reading.
    #[error("reading the agent's answer: {0}")]
    Body(#[from] hyper::Error),
}

/// Reads `body` whole, failing as soon as it exceeds `limit` bytes.
pub async fn read_limited(body: Incoming, limit: usize) -> Result<bytes::Bytes, ReadError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => match err.downcast::<hyper::Error>() {
            Ok(err) => Err(ReadError::Body(*err)),
            Err(_) => Err(ReadError::TooLong(limit)),
        },
    }
}

/// An error with its sources, `outer: inner: ...` (hyper's client errors
/// say only their kind; the cause is in their sources).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// hyper's pooled client over `connector`, keeping at most
/// `max_idle_per_host` idle connections per host for `idle`. The pool's
/// timer sweeps what expired or closed: without one, hyper drops idle
/// entries only when their host is asked for again, so every deleted
/// sandbox left its entries in the server's memory for good.
///
/// A request that a reused connection failed before hyper wrote any of it
/// (hyper hands it back) is sent again on another connection
/// (`retry_canceled_requests`, hyper's default, said here because
/// [`RetryingClient`] counts on it): that one is provably not sent, body
/// or not.
pub fn pooled_client<C>(connector: C, idle: Duration, max_idle_per_host: usize) -> Client<C, Body>
where
    C: Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle)
        .pool_max_idle_per_host(max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .retry_canceled_requests(true)
        .build(connector)
}

/// A pooled client that sends an idempotent request without a body once
/// more, on a fresh connection, when its connection failed under it.
///
/// A pooled connection can die between its last answer and its next use
/// (its peer closed it, and the close was not seen yet); the request on it
/// then fails once hyper has started writing it, which hyper does not retry.
/// Sending it again is safe only when doing it twice is the same as once:
/// an idempotent method (RFC 9110 §9.2.2) and no body to replay. Anything
/// else (an upload, a process start) fails as before; what hyper proved
/// unsent it already retried itself ([`pooled_client`]). The second try
/// goes on a connection of its own, never another pooled one that may be
/// just as dead. The agent, the preview tunnels and E2B's sandbox plane all
/// send through this.
#[derive(Clone)]
pub struct RetryingClient<C> {
    pooled: Client<C, Body>,
    fresh: Client<C, Body>,
}

impl<C> RetryingClient<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Over `connector`, pooling as [`pooled_client`] does.
    pub fn new(connector: C, idle: Duration, max_idle_per_host: usize) -> Self {
        let fresh = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector.clone());
        RetryingClient {
            pooled: pooled_client(connector, idle, max_idle_per_host),
            fresh,
        }
    }

    /// Sends `req`, once more on a fresh connection when that is safe.
    pub async fn send(
        &self,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let again = replayable(&req);
        match self.pooled.request(req).await {
            Err(err) if !err.is_connect() => match again {
                Some(again) => {
                    tracing::debug!(error = %error_chain(&err), "request failed on its connection: sent again on a fresh one");
                    self.fresh.request(again).await
                }
                None => Err(err),
            },
            other => other,
        }
    }
}

/// A copy of `req` to send again, when it is idempotent and has no body.
fn replayable(req: &Request<Body>) -> Option<Request<Body>> {
    use hyper::body::Body as _;
    if !req.method().is_idempotent() || !req.body().is_end_stream() {
        return None;
    }
    let mut again = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(Body::empty())
        .ok()?;
    *again.headers_mut() = req.headers().clone();
    Some(again)
}

/// Dials the agent of the sandbox named by the URI's host.
#[derive(Clone)]
pub struct UnixConnector {
    node: Node,
}

impl tower::Service<Uri> for UnixConnector {
    type Response = UnixConnection;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<UnixConnection>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let id = match uri.host() {
            Some(id) if ids::is_valid(IdKind::Sandbox, id) => id.to_string(),
            _ => {
                return Box::pin(async move {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("not a sandbox address: {uri}"),
                    ))
                })
            }
        };
        let node = self.node.clone();
        Box::pin(async move {
            let stream = node.connect_agent(&id).await?;
            Ok(Pooled(TokioIo::new(stream)))
        })
    }
}

/// A connection to an agent.
pub type UnixConnection = Pooled<TokioIo<UnixStream>>;

/// A byte stream hyper's pooled client can use as a connection: the agent
/// socket here, a port tunnel in [`crate::previews::tunnel`].
pub struct Pooled<T>(pub T);

impl<T> Connection for Pooled<T> {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Pooled<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Pooled<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The pooled client; cheap to clone.
#[derive(Clone)]
pub struct AgentClient {
    client: RetryingClient<UnixConnector>,
}

impl AgentClient {
    /// A client for the agents of `node`'s sandboxes.
    pub fn new(node: Node) -> Self {
        let connector = UnixConnector { node };
        let client = RetryingClient::new(connector, POOL_IDLE, POOL_MAX_IDLE_PER_SANDBOX);
        AgentClient { client }
    }

    /// Sends a request addressed `http://<sandbox id>/...` (see
    /// [`RetryingClient::send`]).
    pub async fn send(
        &self,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.send(req).await
    }

    /// Calls the agent of `sandbox_id` itself (not on a client's behalf):
    /// `method path` with `body` as JSON, its JSON answer parsed. A refusal
    /// is the problem's detail; any other failure says what went wrong.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: http::Method,
        sandbox_id: &str,
        path: &str,
        body: Option<&(impl serde::Serialize + ?Sized)>,
    ) -> Result<T, String> {
        let builder = Request::builder()
            .method(method)
            .uri(format!("http://{sandbox_id}{path}"));
        let req = match body {
            Some(body) => builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    serde_json::to_vec(body).map_err(|e| e.to_string())?,
                )),
            None => builder.body(Body::empty()),
        }
        .map_err(|e| e.to_string())?;
        let response = self
            .send(req)
            .await
            .map_err(|e| format!("the sandbox's agent did not answer: {e}"))?;
        let status = response.status();
        let bytes = read_limited(response.into_body(), MAX_AGENT_REPLY)
            .await
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(
                match serde_json::from_slice::<warren_api::Problem>(&bytes) {
                    Ok(problem) => problem.detail,
                    Err(_) => format!("the agent answered {status}"),
                },
            );
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the agent's answer does not parse: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connection whose pool entry holds a clone of `marker` (hyper keeps
    /// a connection's `Connected` extras in its pool entry).
    struct Marked(TokioIo<UnixStream>, Arc<()>);

    impl Connection for Marked {
        fn connected(&self) -> Connected {
            Connected::new().extra(self.1.clone())
        }
    }

    impl hyper::rt::Read for Marked {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: hyper::rt::ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
        }
    }

    impl hyper::rt::Write for Marked {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
        }
    }

    /// Dials `.0` and marks the connection with `.1` (weak, so that only
    /// connections and the test hold the marker).
    #[derive(Clone)]
    struct MarkedConnector(std::path::PathBuf, std::sync::Weak<()>);

    impl tower::Service<Uri> for MarkedConnector {
        type Response = Marked;
        type Error = io::Error;
        type Future = Pin<Box<dyn Future<Output = io::Result<Marked>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Uri) -> Self::Future {
            let path = self.0.clone();
            let marker = self.1.upgrade().expect("the test holds the marker");
            Box::pin(async move {
                Ok(Marked(
                    TokioIo::new(UnixStream::connect(path).await?),
                    marker,
                ))
            })
        }
    }

    #[tokio::test]
    async fn the_pool_forgets_a_host_that_went_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        // One keep-alive answer, then the "agent" goes away.
        let agent = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before its request");
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            stream
        });
        let marker = Arc::new(());
        let client = pooled_client(
            MarkedConnector(path, Arc::downgrade(&marker)),
            Duration::from_millis(200),
            4,
        );
        let request = Request::get("http://sbx_gone/v1/health")
            .body(Body::empty())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = read_limited(response.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"ok");
        drop(agent.await.unwrap());

        // The connection went back to the pool; once it is closed and its
        // idle time is over, nothing of it is left there.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&marker) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the pool still holds the connection of a host that went away ({} references)",
                Arc::strong_count(&marker) - 1
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads one request head from `stream` (and a body of `content-length`
    /// bytes, if any); `false` when the peer closed first.
    async fn read_request(stream: &mut UnixStream) -> bool {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if request.len() >= end + 4 + len {
                    return true;
                }
            }
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            request.extend_from_slice(&buf[..n]);
        }
    }

    /// An "agent" whose first connection answers one request as keep-alive
    /// and then dies under the next one (read, never answered); every later
    /// connection answers `again`.
    fn flaky_agent(listener: tokio::net::UnixListener) {
        tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            assert!(read_request(&mut first).await);
            first
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            read_request(&mut first).await;
            drop(first);
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    while read_request(&mut stream).await {
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }

    async fn text(response: Response<Incoming>) -> String {
        let body = read_limited(response.into_body(), 64).await.unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_idempotent_request_is_sent_again_on_a_fresh_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        flaky_agent(tokio::net::UnixListener::bind(&path).unwrap());
        let marker = Arc::new(());
        let client = RetryingClient::new(
            MarkedConnector(path, Arc::downgrade(&marker)),
            Duration::from_secs(10),
            4,
        );
        let get = || {
            Request::get("http://sbx_flaky/v1/health")
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(text(client.send(get()).await.unwrap()).await, "ok");
        // The pooled connection dies under the next GET: sent again.
        assert_eq!(text(client.send(get()).await.unwrap()).await, "again");
    }

    #[tokio::test]
    async fn a_request_with_a_body_is_not_sent_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        flaky_agent(tokio::net::UnixListener::bind(&path).unwrap());
        let marker = Arc::new(());
        let client = RetryingClient::new(
            MarkedConnector(path, Arc::downgrade(&marker)),
            Duration::from_secs(10),
            4,
        );
        let first = Request::get("http://sbx_flaky/v1/health")
            .body(Body::empty())
            .unwrap();
        assert_eq!(text(client.send(first).await.unwrap()).await, "ok");
        // The agent may have acted on it: the failure is the caller's.
        let post = Request::post("http://sbx_flaky/v1/processes")
            .header("content-length", "2")
            .body(Body::from("{}"))
            .unwrap();
        assert!(client.send(post).await.is_err());
    }
}
