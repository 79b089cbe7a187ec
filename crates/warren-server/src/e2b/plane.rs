//! E2B's sandbox plane: requests for a sandbox's envd or its ports, served
//! before any API routing (beside the preview forwarder).
//!
//! Two ways in:
//! - by header (what the SDKs do with `E2B_SANDBOX_URL`): `E2b-Sandbox-Id`
//!   (either id form) and `E2b-Sandbox-Port` (default [`ENVD_PORT`]);
//! - by Host: `{port}-{id}.{domain}` (E2B's `getHost(port)`), for envd's
//!   port on any sandbox and for every port of sandboxes the E2B routes
//!   made, where no Warren preview of that port exists (those go on to the
//!   preview forwarder).
//!
//! Auth: envd's port needs `X-Access-Token` (the sandbox's envd access
//! token). Other ports are public on sandboxes E2B made (its default),
//! else need `E2B-Traffic-Access-Token` (created with `allowPublicTraffic:
//! false`) or the envd access token.
//!
//! Envd's port goes to the agent's socket at `/envd{path}` (the user of
//! `Authorization: Basic base64(user:)` as [`USER_HEADER`]; the SDK's
//! `Authorization` and tokens stay here); other ports go through the
//! preview tunnel to that port in the sandbox. Bodies, SSE and upgrades
//! stream both ways. Errors are envd's: a Connect error
//! (`{"code":"unauthenticated","message":...}`) on Connect RPC paths, a
//! JSON `{"code": <status>, "message": ...}` elsewhere; a sandbox that is
//! gone or not running is a 502, which the SDKs report as a timed-out
//! sandbox.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use warren_api::envd::{AGENT_PREFIX, ENVD_PORT, USER_HEADER};
use warren_api::ids::{self, IdKind};
use warren_api::Problem;

use super::{warren_id, E2b};
use crate::previews::host;
use crate::proxy::{error_chain, forwardable, requested_upgrade, splice, Guarded};
use crate::sandboxes::registry::{Entry, Phase};

/// The sandbox a request is for.
pub const SANDBOX_ID_HEADER: &str = "e2b-sandbox-id";
/// The port in it.
pub const SANDBOX_PORT_HEADER: &str = "e2b-sandbox-port";
/// The envd access token.
pub const ACCESS_TOKEN_HEADER: &str = "x-access-token";
/// The traffic access token of a sandbox whose ports are not public.
pub const TRAFFIC_TOKEN_HEADER: &str = "e2b-traffic-access-token";

/// Headers of this plane that never reach the sandbox.
const PLANE_HEADERS: [&str; 5] = [
    SANDBOX_ID_HEADER,
    SANDBOX_PORT_HEADER,
    ACCESS_TOKEN_HEADER,
    TRAFFIC_TOKEN_HEADER,
    USER_HEADER,
];

/// A sandbox-plane request's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `sbx_…`.
    sandbox_id: String,
    /// The port.
    port: u16,
    /// Came by header (not by Host).
    by_header: bool,
}

/// A failure on this plane, rendered as envd renders its errors.
#[derive(Debug)]
struct PlaneError {
    status: StatusCode,
    /// Connect's code for Connect RPC paths.
    connect_code: &'static str,
    message: String,
}

impl PlaneError {
    fn unauthenticated(message: &str) -> Self {
        PlaneError {
            status: StatusCode::UNAUTHORIZED,
            connect_code: "unauthenticated",
            message: message.into(),
        }
    }

    fn invalid(message: String) -> Self {
        PlaneError {
            status: StatusCode::BAD_REQUEST,
            connect_code: "invalid_argument",
            message,
        }
    }

    /// The sandbox is gone, not running, or not answering.
    fn unavailable(message: String) -> Self {
        PlaneError {
            status: StatusCode::BAD_GATEWAY,
            connect_code: "unavailable",
            message,
        }
    }

    fn render(self, connect: bool) -> Response {
        let body = if connect {
            serde_json::json!({"code": self.connect_code, "message": self.message})
        } else {
            serde_json::json!({"code": self.status.as_u16(), "message": self.message})
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<Problem> for PlaneError {
    fn from(p: Problem) -> Self {
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY);
        match p.status {
            404 | 409 => PlaneError::unavailable(p.detail),
            429 => PlaneError {
                status,
                connect_code: "resource_exhausted",
                message: p.detail,
            },
            _ => PlaneError {
                status: if status.is_server_error() {
                    StatusCode::BAD_GATEWAY
                } else {
                    status
                },
                connect_code: "unavailable",
                message: p.detail,
            },
        }
    }
}

/// Middleware: sandbox-plane requests are served here, everything else
/// goes on (to the preview forwarder, then the API).
pub async fn dispatch(State(e2b): State<E2b>, req: Request, next: Next) -> Response {
    match e2b.target(&req) {
        Ok(Some(target)) => {
            let connect = is_connect_path(req.uri().path());
            match e2b.serve(target, req).await {
                Ok(response) => response,
                Err(err) => err.render(connect),
            }
        }
        Ok(None) => next.run(req).await,
        Err(err) => err.render(is_connect_path(req.uri().path())),
    }
}

/// Connect RPC paths of envd (`/process.Process/Start`, ...).
fn is_connect_path(path: &str) -> bool {
    path.starts_with("/process.") || path.starts_with("/filesystem.")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl E2b {
    /// The sandbox-plane target of a request, if it is one.
    fn target(&self, req: &Request) -> Result<Option<Target>, PlaneError> {
        let headers = req.headers();
        if let Some(id) = header_str(headers, SANDBOX_ID_HEADER) {
            let port = match header_str(headers, SANDBOX_PORT_HEADER) {
                None | Some("") => ENVD_PORT,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    PlaneError::invalid(format!("E2b-Sandbox-Port {p:?} is not a port"))
                })?,
            };
            return Ok(Some(Target {
                sandbox_id: warren_id(id),
                port,
                by_header: true,
            }));
        }
        let Some(parsed) = header_str(headers, header::HOST.as_str()).and_then(host::parse) else {
            return Ok(None);
        };
        let ours = parsed.port == ENVD_PORT || self.row(&parsed.sandbox_id).is_some();
        if !ours
            || self
                .inner
                .previews
                .lookup(&parsed.sandbox_id, parsed.port)
                .is_some()
        {
            return Ok(None);
        }
        Ok(Some(Target {
            sandbox_id: parsed.sandbox_id,
            port: parsed.port,
            by_header: false,
        }))
    }

    /// Checks the request's tokens for `target`.
    fn authorize(&self, target: &Target, headers: &HeaderMap) -> Result<(), PlaneError> {
        let key = &self.inner.key;
        let access = header_str(headers, ACCESS_TOKEN_HEADER)
            .is_some_and(|t| key.check_envd_token(&target.sandbox_id, t));
        if target.port == ENVD_PORT {
            return if access {
                Ok(())
            } else {
                Err(PlaneError::unauthenticated(
                    "missing or invalid X-Access-Token (the sandbox's envdAccessToken)",
                ))
            };
        }
        let row = self.row(&target.sandbox_id);
        if access || row.as_ref().is_some_and(|r| r.public_traffic) {
            return Ok(());
        }
        let expected = row.as_ref().and_then(|r| r.traffic_token.as_deref());
        let given = header_str(headers, TRAFFIC_TOKEN_HEADER);
        match (expected, given) {
            (Some(expected), Some(given))
                if bool::from(subtle::ConstantTimeEq::ct_eq(
                    expected.as_bytes(),
                    given.as_bytes(),
                )) =>
            {
                Ok(())
            }
            _ => Err(PlaneError::unauthenticated(
                "this sandbox's ports are not public: send E2B-Traffic-Access-Token",
            )),
        }
    }

    async fn serve(&self, target: Target, mut req: Request) -> Result<Response, PlaneError> {
        if !ids::is_valid(IdKind::Sandbox, &target.sandbox_id) {
            return Err(PlaneError::unavailable(format!(
                "sandbox {} not found",
                super::e2b_id(&target.sandbox_id)
            )));
        }
        self.authorize(&target, req.headers())?;
        if target.port == ENVD_PORT {
            return self.forward_envd(&target.sandbox_id, req).await;
        }
        let headers = req.headers_mut();
        for name in PLANE_HEADERS {
            headers.remove(name);
        }
        if target.by_header {
            // The SDK's Host is the server's; the application sees its own.
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{}.{}",
                host::label(&target.sandbox_id, target.port),
                self.inner.previews.settings().domain
            )) {
                headers.insert(header::HOST, value);
            }
        }
        Ok(self
            .inner
            .previews
            .serve_port(&target.sandbox_id, target.port, req)
            .await?)
    }

    /// The running sandbox's entry (a hibernated one with auto-resume is
    /// woken first).
    async fn running(&self, id: &str) -> Result<Arc<Entry>, PlaneError> {
        let gone = || PlaneError::unavailable(format!("sandbox {} not found", super::e2b_id(id)));
        let sandboxes = &self.inner.sandboxes;
        let entry = sandboxes.registry().get(id).ok_or_else(gone)?;
        let entry = sandboxes
            .awake(entry)
            .await
            .map_err(|e| PlaneError::from(Problem::from(e)))?;
        match entry.phase() {
            Phase::Running => {
                entry.touch();
                Ok(entry)
            }
            phase => Err(PlaneError::unavailable(format!(
                "sandbox {} is {} (connect to it to resume it)",
                super::e2b_id(id),
                phase.as_str()
            ))),
        }
    }

    /// Forwards an envd request to the agent at `/envd{path}`.
    async fn forward_envd(&self, id: &str, req: Request) -> Result<Response, PlaneError> {
        let entry = self.running(id).await?;
        let guard = self
            .inner
            .sandboxes
            .enter(&entry)
            .map_err(|e| PlaneError::from(Problem::from(e)))?;
        let mut uri = format!("http://{id}{AGENT_PREFIX}{}", req.uri().path());
        if let Some(query) = req.uri().query() {
            uri.push('?');
            uri.push_str(query);
        }
        let (mut parts, body) = req.into_parts();
        let upgrade = requested_upgrade(&parts.headers);
        let client_upgrade = upgrade
            .as_ref()
            .and_then(|_| parts.extensions.remove::<OnUpgrade>());
        let mut forwarded = http::Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .version(Version::HTTP_11)
            .body(if upgrade.is_some() {
                Body::empty()
            } else {
                body
            })
            .map_err(|_| PlaneError::invalid("the request cannot be forwarded".into()))?;
        *forwarded.headers_mut() = envd_headers(&parts.headers);
        if let Some(protocol) = &upgrade {
            let headers = forwarded.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        let mut response = self.inner.agent.send(forwarded).await.map_err(|err| {
            tracing::warn!(sandbox = %id, error = %error_chain(&err), "envd request: agent unreachable");
            PlaneError::unavailable("the sandbox's envd is not answering".into())
        })?;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return Err(PlaneError::unavailable(
                    "the agent switched protocols unasked".into(),
                ));
            };
            let agent_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(splice(client_upgrade, agent_upgrade, guard));
            let (mut parts, _) = response.into_parts();
            parts.extensions = http::Extensions::new();
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let (mut parts, body) = response.into_parts();
        parts.headers = forwardable(&parts.headers);
        parts.extensions = http::Extensions::new();
        Ok(Response::from_parts(
            parts,
            Body::new(Guarded {
                inner: body,
                _guard: guard,
            }),
        ))
    }
}

/// The headers an envd request reaches the agent with: end-to-end ones
/// without the SDK's credentials and this plane's own, plus the user named
/// by `Authorization: Basic base64(user:)`.
fn envd_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = forwardable(headers);
    out.remove(header::AUTHORIZATION);
    for name in PLANE_HEADERS {
        out.remove(name);
    }
    if let Some(user) = basic_user(headers) {
        if let Ok(value) = HeaderValue::from_str(&user) {
            out.insert(HeaderName::from_static(USER_HEADER), value);
        }
    }
    out
}

/// The user of `Authorization: Basic base64(user:)`, if any.
fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = header_str(headers, header::AUTHORIZATION.as_str())?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next()?.trim();
    let valid = !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    valid.then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_comes_from_basic_auth_and_credentials_stay_here() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic cm9vdDo="), // "root:"
        );
        h.insert(ACCESS_TOKEN_HEADER, HeaderValue::from_static("secret"));
        h.insert(SANDBOX_ID_HEADER, HeaderValue::from_static("abc"));
        h.insert(USER_HEADER, HeaderValue::from_static("spoofed"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let out = envd_headers(&h);
        assert_eq!(out.get(USER_HEADER).unwrap(), "root");
        assert!(out.get(header::AUTHORIZATION).is_none());
        assert!(out.get(ACCESS_TOKEN_HEADER).is_none());
        assert!(out.get(SANDBOX_ID_HEADER).is_none());
        assert_eq!(out.get(header::CONTENT_TYPE).unwrap(), "application/json");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Oi4uOw=="), // ":..;"
        );
        assert_eq!(basic_user(&h), None);
        h.remove(header::AUTHORIZATION);
        assert!(envd_headers(&h).get(USER_HEADER).is_none());
    }

    #[test]
    fn connect_paths_are_told_apart() {
        assert!(is_connect_path("/process.Process/Start"));
        assert!(is_connect_path("/filesystem.Filesystem/Stat"));
        assert!(!is_connect_path("/files"));
        assert!(!is_connect_path("/health"));
    }
}
