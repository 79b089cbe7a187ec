//! HTTP/1.1 to a port inside a sandbox, through its agent.
//!
//! Each connection to `http://<sandbox id>:<port>/` is a tunnel: a
//! connection to the agent's unix socket, upgraded by
//! `GET /v1/ports/{port}/tunnel` (`Upgrade: tcp`) into a byte stream to
//! `127.0.0.1:{port}` in the sandbox. hyper's pool keeps idle tunnels per
//! sandbox and port, so keep-alive requests pay for the tunnel once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::upgrade::Upgraded;

use hyper_util::rt::TokioIo;
use warren_api::ids::{self, IdKind};

use crate::node::Node;
use crate::proxy::Pooled;

/// How long an idle tunnel is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle tunnels kept per sandbox port.
const POOL_MAX_IDLE: usize = 64;

/// Why a tunnel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The address is not `http://<sandbox id>:<port>`.
    #[error("not a sandbox port address: {0}")]
    BadAddress(String),
    /// The agent's socket could not be reached.
    #[error("the sandbox's agent is not answering: {0}")]
    Agent(io::Error),
    /// The upgrade request failed on the agent connection.
    #[error("opening the tunnel: {0}")]
    Handshake(hyper::Error),
    /// Nothing accepts connections on the port (the agent said 502).
    #[error("nothing accepts connections on port {0} in the sandbox")]
    PortUnreachable(u16),
    /// The agent refused the tunnel otherwise.
    #[error("the agent refused the tunnel with {0}")]
    Refused(StatusCode),
}

/// Opens tunnels for hyper's client.
#[derive(Clone)]
pub struct TunnelConnector {
    node: Node,
}

impl tower::Service<Uri> for TunnelConnector {
    type Response = TunnelStream;
    type Error = TunnelError;
    type Future = Pin<Box<dyn Future<Output = Result<TunnelStream, TunnelError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let target = match (uri.host(), uri.port_u16()) {
            (Some(id), Some(port)) if ids::is_valid(IdKind::Sandbox, id) => {
                Ok((id.to_string(), port))
            }
            _ => Err(TunnelError::BadAddress(uri.to_string())),
        };
        let node = self.node.clone();
        Box::pin(async move {
            let (id, port) = target?;
            open(&node, &id, port).await
        })
    }
}

/// Whether something in sandbox `id` accepts connections on `port` (the
/// agent connects to it; the tunnel is closed at once).
pub async fn port_accepts(node: &Node, id: &str, port: u16) -> Result<bool, TunnelError> {
    match open(node, id, port).await {
        Ok(_) => Ok(true),
        Err(TunnelError::PortUnreachable(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Connects to the agent and upgrades the connection into a tunnel.
async fn open(node: &Node, id: &str, port: u16) -> Result<TunnelStream, TunnelError> {
    let stream = node.connect_agent(id).await.map_err(TunnelError::Agent)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(TunnelError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "tunnel connection ended");
        }
    });
    let req = Request::get(format!("/v1/ports/{port}/tunnel"))
        .header(header::HOST, "agent")
        .header(header::CONNECTION, HeaderValue::from_static("upgrade"))
        .header(header::UPGRADE, HeaderValue::from_static("tcp"))
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = sender
        .send_request(req)
        .await
        .map_err(TunnelError::Handshake)?;
    match response.status() {
        StatusCode::SWITCHING_PROTOCOLS => {}
        StatusCode::BAD_GATEWAY => return Err(TunnelError::PortUnreachable(port)),
        other => return Err(TunnelError::Refused(other)),
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(TunnelError::Handshake)?;
    Ok(Pooled(upgraded))
}

/// A tunnel's byte stream.
pub type TunnelStream = Pooled<Upgraded>;

/// The pooled client of sandbox ports; cheap to clone.
#[derive(Clone)]
pub struct TunnelClient {
    client: crate::proxy::RetryingClient<TunnelConnector>,
}

impl TunnelClient {
    /// A client for the ports of `node`'s sandboxes.
    pub fn new(node: Node) -> Self {
        let connector = TunnelConnector { node };
        let client = crate::proxy::RetryingClient::new(connector, POOL_IDLE, POOL_MAX_IDLE);
        TunnelClient { client }
    }

    /// Sends a request addressed `http://<sandbox id>:<port>/...` (see
    /// [`crate::proxy::RetryingClient::send`]).
    pub async fn send(
        &self,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.send(req).await
    }
}

/// The tunnel error behind a client error, if that is what failed.
pub fn tunnel_error(err: &hyper_util::client::legacy::Error) -> Option<&TunnelError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(t) = e.downcast_ref::<TunnelError>() {
            return Some(t);
        }
        source = e.source();
    }
    None
}
