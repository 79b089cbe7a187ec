//! Forwarding of agent routes: `ANY /v1/sandboxes/{id}/<agent path>` goes to
//! `<agent path>` on that sandbox's agent, over its unix socket.
//!
//! Bodies stream both ways: the request body is handed to hyper as it
//! arrives, the response body is handed back frame by frame, so file
//! transfers and SSE streams are never buffered here. WebSocket (and any
//! HTTP/1 upgrade) requests are forwarded as such; when the agent answers
//! `101`, both upgraded connections are spliced with `copy_bidirectional`.
//!
//! The caller's credentials stop here: the `Authorization` header, the
//! `access_token` parameter and a `Sec-WebSocket-Protocol` credential are
//! removed before the request reaches the sandbox, whose agent trusts its
//! socket.

mod client;
pub mod routes;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use hyper::body::{Frame, SizeHint};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use warren_api::{ErrorCode, Problem};

pub use client::{
    error_chain, pooled_client, read_limited, AgentClient, Pooled, ReadError, RetryingClient,
    MAX_AGENT_REPLY,
};

use crate::auth::Caller;
use crate::metrics::RouteLabel;
use crate::sandboxes::concurrency::InFlight;
use crate::AppState;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Any agent route of a sandbox, forwarded to its agent (bodies, SSE and
/// WebSockets streamed). See the agent's API for the routes.
#[utoipa::path(method(get, post, put, delete, patch), path = "/v1/sandboxes/{id}/{agent_path}", tag = "agent",
    params(
        ("id" = String, Path, description = "`sbx_…`"),
        ("agent_path" = String, Path, description = "An agent route without its `/v1/` prefix, e.g. `processes/run` or `files/list`; may contain slashes")),
    responses(
        (status = 200, description = "The agent's answer, streamed as it comes"),
        (status = 101, description = "WebSocket routes: the agent's socket, spliced through"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The sandbox is not running (a hibernated one created with `auto_wake` is woken instead)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The sandbox or its tenant has its maximum of requests in flight (`too_many_requests`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The sandbox's agent does not answer", body = Problem, content_type = "application/problem+json")))]
pub async fn forward(State(app): State<AppState>, caller: Caller, req: Request) -> Response {
    let Some((id, agent_path)) = split_path(req.uri().path()) else {
        return Problem::new(ErrorCode::NotFound, "no such route").into_response();
    };
    let entry = match app.sandboxes.entry_for_agent(&caller, id).await {
        Ok(entry) => entry,
        Err(err) => return err.into_response(),
    };
    // The sandbox is in use from the request's first byte to its answer's
    // last: a run, an upload or a download longer than the idle timeout
    // must not see the sandbox stopped under it.
    let in_flight = match app.sandboxes.enter(&entry) {
        Ok(in_flight) => in_flight,
        Err(err) => return err.into_response(),
    };
    let route = routes::label(agent_path);
    let is_run = route == routes::RUN && req.method() == http::Method::POST;
    let target = match agent_uri(id, agent_path, req.uri().query()) {
        Some(uri) => uri,
        None => return Problem::invalid("the path cannot be forwarded").into_response(),
    };

    let (mut parts, body) = req.into_parts();
    let upgrade = requested_upgrade(&parts.headers);
    let client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<OnUpgrade>());
    let mut forwarded = http::Request::builder()
        .method(parts.method.clone())
        .uri(target)
        .version(Version::HTTP_11)
        .body(if upgrade.is_some() {
            Body::empty()
        } else {
            body
        })
        .expect("method and uri come from a valid request");
    *forwarded.headers_mut() = forwardable(&parts.headers);
    forwarded.headers_mut().remove(header::AUTHORIZATION);
    let answer_protocol = crate::auth::ws_protocol::strip(forwarded.headers_mut());
    if let Some(protocol) = &upgrade {
        let headers = forwarded.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
    if is_run && upgrade.is_none() && entry.auto_checkpoint() {
        return crate::checkpoints::auto::forward_run(&app, entry, forwarded, route).await;
    }

    let started = Instant::now();
    let sent = app.agent.send(forwarded).await;
    // A new sandbox's spare-root refill waits for its first request.
    app.sandboxes.node().request_ended(&entry.id);
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(sandbox = %entry.id, error = %error_chain(&err), "agent unreachable");
            let mut problem = Problem::new(
                ErrorCode::Unavailable,
                "the sandbox's agent is not answering",
            )
            .into_response();
            problem.extensions_mut().insert(RouteLabel(route));
            return problem;
        }
    };
    if is_run {
        app.metrics.observe_exec(started.elapsed());
    }

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Problem::new(
                ErrorCode::Unavailable,
                "the agent switched protocols unasked",
            )
            .into_response();
        };
        let agent_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(splice(client_upgrade, agent_upgrade, in_flight));
        let (mut parts, _) = response.into_parts();
        parts.extensions = http::Extensions::new();
        parts.extensions.insert(RouteLabel(route));
        if answer_protocol {
            crate::auth::ws_protocol::answer(&mut parts.headers);
        }
        return Response::from_parts(parts, Body::empty());
    }

    let (mut parts, body) = response.into_parts();
    let headers = forwardable(&parts.headers);
    parts.headers = headers;
    parts.extensions = http::Extensions::new();
    parts.extensions.insert(RouteLabel(route));
    let body = Guarded {
        inner: body,
        _guard: in_flight,
    };
    Response::from_parts(parts, Body::new(body))
}

/// `/v1/sandboxes/<id>/<rest>` → (`<id>`, `/<rest>`), raw (still encoded).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1/sandboxes/")?;
    let slash = rest.find('/')?;
    Some((&rest[..slash], &rest[slash..]))
}

/// `http://<id>/v1<agent_path>?<query without access_token>`.
fn agent_uri(id: &str, agent_path: &str, query: Option<&str>) -> Option<http::Uri> {
    let mut uri = format!("http://{id}/v1{agent_path}");
    if let Some(query) = query {
        let kept = crate::params::without(query, crate::auth::ACCESS_TOKEN);
        if !kept.is_empty() {
            uri.push('?');
            uri.push_str(&kept);
        }
    }
    uri.parse().ok()
}

/// The protocol asked for by an HTTP/1 upgrade request (`websocket`), if any.
pub(crate) fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if connection_upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// The end-to-end headers of `headers`: hop-by-hop ones, those named by
/// `Connection`, `Upgrade` and `Host` are left out.
pub(crate) fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if HOP_BY_HOP.contains(name)
            || name == header::UPGRADE
            || name == header::HOST
            || named.contains(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Splices the client's and the agent's upgraded connections until either
/// side closes.
pub(crate) async fn splice(client: OnUpgrade, agent: OnUpgrade, _guard: InFlight) {
    let (client, agent) = match tokio::try_join!(client, agent) {
        Ok(pair) => pair,
        Err(err) => {
            tracing::debug!(error = %err, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut agent = TokioIo::new(agent);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut agent).await {
        tracing::debug!(error = %err, "upgraded connection ended");
    }
}

/// A response body that keeps its sandbox counted as in use until it ends.
pub(crate) struct Guarded<B> {
    pub(crate) inner: B,
    pub(crate) _guard: InFlight,
}

impl<B> hyper::body::Body for Guarded<B>
where
    B: hyper::body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_rewritten() {
        assert_eq!(
            split_path("/v1/sandboxes/sbx_a/files/list"),
            Some(("sbx_a", "/files/list"))
        );
        assert_eq!(split_path("/v1/sandboxes/sbx_a"), None);
        let uri = agent_uri("sbx_a", "/files", Some("path=%2Fetc&access_token=k&x=1")).unwrap();
        assert_eq!(uri.to_string(), "http://sbx_a/v1/files?path=%2Fetc&x=1");
        let uri = agent_uri("sbx_a", "/processes", Some("access_token=k")).unwrap();
        assert_eq!(uri.to_string(), "http://sbx_a/v1/processes");
        let uri = agent_uri("sbx_a", "/processes", Some("access%5Ftoken=k")).unwrap();
        assert_eq!(uri.to_string(), "http://sbx_a/v1/processes");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(header::HOST, HeaderValue::from_static("example"));
        let out = forwardable(&h);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key(header::CONTENT_TYPE));
        assert_eq!(requested_upgrade(&h), None);
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(requested_upgrade(&h).unwrap(), "websocket");
    }
}
