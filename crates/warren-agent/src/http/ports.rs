//! `GET /v1/ports/{port}/tunnel`: a raw TCP tunnel to `127.0.0.1:{port}`
//! inside the sandbox, for preview URLs.
//!
//! The request must ask for an HTTP/1.1 upgrade to `tcp`
//! (`Connection: Upgrade`, `Upgrade: tcp`). The agent connects to the port
//! first, so a closed port is a plain `502 port_unreachable`; once
//! connected it answers `101 Switching Protocols` and pipes bytes both ways
//! until either side closes. The server speaks HTTP/1.1 to the sandbox's
//! application through the tunnel, so chunked bodies, SSE and WebSocket
//! pass through unchanged, and no port of the host is ever opened.

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::net::TcpStream;

use super::doc::{routes, Routes};
use warren_api::{ErrorCode, Problem};

/// The protocol token of the upgrade.
pub const TUNNEL_PROTOCOL: &str = "tcp";

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(tunnel))
}

/// Opens a TCP tunnel to a port inside the sandbox (HTTP/1.1 upgrade to
/// `tcp`); used by the server for preview URLs.
#[utoipa::path(get, path = "/v1/ports/{port}/tunnel", tag = "ports",
    params(
        ("port" = u16, Path, description = "A TCP port on the sandbox's loopback"),
        ("Upgrade" = String, Header, description = "`tcp`")),
    responses(
        (status = 101, description = "Connected: the connection is now the port's byte stream"),
        (status = 400, description = "Not an upgrade to `tcp`, or port 0", body = Problem),
        (status = 502, description = "`port_unreachable`: nothing accepts connections on the port", body = Problem)))]
async fn tunnel(Path(port): Path<String>, mut req: Request) -> Response {
    let Some(port) = port.parse::<u16>().ok().filter(|p| *p != 0) else {
        return Problem::invalid(format!("port {port:?} is not between 1 and 65535"))
            .into_response();
    };
    if !asks_for_tunnel(&req) {
        return Problem::invalid(format!(
            "send Connection: Upgrade and Upgrade: {TUNNEL_PROTOCOL} to open a tunnel"
        ))
        .into_response();
    }
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return Problem::invalid("this connection cannot be upgraded").into_response();
    };
    let stream = match connect(port).await {
        Ok(stream) => stream,
        Err(e) => {
            return Problem::new(
                ErrorCode::PortUnreachable,
                format!("nothing accepts connections on port {port} in the sandbox: {e}"),
            )
            .into_response()
        }
    };
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(port, error = %e, "tunnel upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        let mut app = stream;
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut app).await {
            tracing::debug!(port, error = %e, "tunnel ended");
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(TUNNEL_PROTOCOL));
    response
}

/// `127.0.0.1:port`, then `[::1]:port` for servers listening on IPv6 only.
async fn connect(port: u16) -> std::io::Result<TcpStream> {
    match TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
        Ok(stream) => Ok(stream),
        Err(v4) => TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
            .await
            .map_err(|_| v4),
    }
}

fn asks_for_tunnel(req: &Request) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token(header::CONNECTION, "upgrade") && has_token(header::UPGRADE, TUNNEL_PROTOCOL)
}
