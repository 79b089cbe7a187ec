//! Serving preview requests: the outermost layer of the router picks them out
//! (by Host or by path), checks the preview's auth, and forwards them to the
//! sandbox's port through a tunnel. API keys play no part: a preview is
//! opened by people's browsers with its URL (and token).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use subtle::ConstantTimeEq;
use warren_api::ids::{self, IdKind};
use warren_api::{ErrorCode, Problem};

use super::tunnel::{tunnel_error, TunnelError};
use super::{host, PreviewError, Previews};
use crate::proxy::{forwardable, requested_upgrade, splice, Guarded};
use crate::sandboxes::registry::{Entry, Phase};
use crate::sandboxes::SandboxError;
use crate::store::PreviewRecord;

/// Header carrying a preview's token.
pub const TOKEN_HEADER: &str = "x-warren-preview-token";
/// Query parameter carrying a preview's token.
pub const TOKEN_PARAM: &str = "token";
/// Cookie set after a visit with `?token=`, so that the page's own requests
/// (scripts, images, fetches) are let in too.
pub const TOKEN_COOKIE: &str = "warren_preview";

/// Which preview a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    sandbox_id: String,
    port: u16,
    form: Form,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    /// `{port}-{id}.{domain}`: the whole path goes to the application.
    Host { domain: String },
    /// `/v1/sandboxes/{id}/ports/{port}` + `rest`.
    Path { prefix: String, rest: String },
}

/// Middleware: preview requests are served here, everything else goes on.
pub async fn dispatch(State(previews): State<Previews>, req: Request, next: Next) -> Response {
    match target(&req) {
        Some(target) => previews.serve(target, req).await,
        None => next.run(req).await,
    }
}

/// The preview a request is for, if any.
fn target(req: &Request) -> Option<Target> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if let Some(parsed) = host.and_then(host::parse) {
        return Some(Target {
            sandbox_id: parsed.sandbox_id,
            port: parsed.port,
            form: Form::Host {
                domain: parsed.domain,
            },
        });
    }
    let rest = req.uri().path().strip_prefix("/v1/sandboxes/")?;
    let (id, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("ports/")?;
    let (port, rest) = match rest.split_once('/') {
        Some((port, rest)) => (port, format!("/{rest}")),
        None => (rest, String::new()),
    };
    if !ids::is_valid(IdKind::Sandbox, id) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some(Target {
        sandbox_id: id.to_string(),
        port,
        form: Form::Path {
            prefix: format!("/v1/sandboxes/{id}/ports/{port}"),
            rest,
        },
    })
}

impl Previews {
    async fn serve(&self, target: Target, req: Request) -> Response {
        match self.serve_inner(target, req).await {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        }
    }

    async fn serve_inner(&self, target: Target, req: Request) -> Result<Response, Problem> {
        let not_found = || PreviewError::NotFound {
            sandbox: target.sandbox_id.clone(),
            port: target.port,
        };
        let preview = self
            .lookup(&target.sandbox_id, target.port)
            .ok_or_else(not_found)?;
        if let Form::Host { domain } = &target.form {
            if *domain != preview.domain {
                return Err(not_found().into());
            }
        }
        // A path preview is served on the API's own origin, where every
        // other sandbox's path previews are too: a cookie there would be
        // sent to (and readable through) any of them, so path previews take
        // the token from the header or the query only.
        let cookies_allowed = matches!(target.form, Form::Host { .. });
        let via_query = authorize(&preview, &req, cookies_allowed)?;
        if let Form::Path { prefix, rest } = &target.form {
            if rest.is_empty() {
                // Relative links need the trailing slash.
                let query = req
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                return Ok(redirect(&format!("{prefix}/{query}")));
            }
        }
        let entry = self.awake_entry(&target.sandbox_id).await?;
        let mut response = self.forward(&target, entry, req).await?;
        if via_query && cookies_allowed {
            let secure = if self.inner.settings.scheme == "https" {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
                preview.token.as_deref().unwrap_or_default()
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Ok(response)
    }

    /// Forwards `req` to `port` of sandbox `sandbox_id` without a preview
    /// record (E2B's sandbox plane and its public ports; the caller has
    /// checked the request's credentials): the whole path goes to the
    /// application, streamed as for previews. A hibernated sandbox is woken
    /// as for previews.
    pub async fn serve_port(
        &self,
        sandbox_id: &str,
        port: u16,
        req: Request,
    ) -> Result<Response, Problem> {
        let target = Target {
            sandbox_id: sandbox_id.to_string(),
            port,
            form: Form::Host {
                domain: String::new(),
            },
        };
        let entry = self.awake_entry(sandbox_id).await?;
        self.forward(&target, entry, req).await
    }

    /// The sandbox's registry entry if it runs: a hibernated sandbox created
    /// with `auto_wake` is woken first; other hibernated ones answer 409.
    async fn awake_entry(&self, sandbox_id: &str) -> Result<Arc<Entry>, Problem> {
        let entry = self
            .inner
            .sandboxes
            .registry()
            .get(sandbox_id)
            .ok_or_else(|| SandboxError::NotFound(sandbox_id.to_string()))?;
        let entry = self.inner.sandboxes.awake(entry).await?;
        match entry.phase() {
            Phase::Running => Ok(entry),
            phase => Err(SandboxError::Conflict {
                id: sandbox_id.to_string(),
                phase: phase.as_str(),
            }
            .into()),
        }
    }

    async fn forward(
        &self,
        target: &Target,
        entry: Arc<Entry>,
        req: Request,
    ) -> Result<Response, Problem> {
        let (mut parts, body) = req.into_parts();
        let path = match &target.form {
            Form::Host { .. } => parts.uri.path().to_string(),
            Form::Path { rest, .. } => rest.clone(),
        };
        let mut uri = format!("http://{}:{}{path}", target.sandbox_id, target.port);
        if let Some(query) = parts
            .uri
            .query()
            .map(without_token)
            .filter(|q| !q.is_empty())
        {
            uri.push('?');
            uri.push_str(&query);
        }
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
            .map_err(|_| Problem::invalid("the request cannot be forwarded"))?;
        *forwarded.headers_mut() = app_headers(&parts.headers, target);
        if let Some(protocol) = &upgrade {
            let headers = forwarded.headers_mut();
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, protocol.clone());
        }
        let guard = self.inner.sandboxes.enter(&entry)?;
        let mut response = self.inner.client.send(forwarded).await.map_err(|err| {
            match tunnel_error(&err) {
                Some(TunnelError::PortUnreachable(port)) => Problem::new(
                    ErrorCode::PortUnreachable,
                    format!("nothing listens on port {port} in sandbox {}", target.sandbox_id),
                ),
                other => {
                    tracing::warn!(sandbox = %target.sandbox_id, port = target.port, error = %err, tunnel = ?other, "preview request failed");
                    Problem::new(ErrorCode::Unavailable, "the sandbox's port is not answering")
                }
            }
        })?;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return Err(Problem::new(
                    ErrorCode::Unavailable,
                    "the application switched protocols unasked",
                ));
            };
            let app_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(splice(client_upgrade, app_upgrade, guard));
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

/// Checks the preview's auth (the cookie counts only with
/// `cookies_allowed`); true when the token came in the query (the response
/// then sets the cookie, where cookies are allowed).
fn authorize(
    preview: &PreviewRecord,
    req: &Request,
    cookies_allowed: bool,
) -> Result<bool, PreviewError> {
    let Some(expected) = preview.token.as_deref().filter(|_| preview.auth == "token") else {
        return Ok(false);
    };
    let matches = |given: &str| bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
    let header = req
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    if header.is_some_and(matches) {
        return Ok(false);
    }
    if query_token(req.uri().query()).is_some_and(|t| matches(&t)) {
        return Ok(true);
    }
    if cookies_allowed && cookie_tokens(req.headers()).iter().any(|t| matches(t)) {
        return Ok(false);
    }
    Err(PreviewError::Unauthorized)
}

fn query_token(query: Option<&str>) -> Option<String> {
    crate::params::get(query?, TOKEN_PARAM)
}

fn cookie_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value.to_string())
        .collect()
}

/// The query without the preview's token (the application never sees it).
fn without_token(query: &str) -> String {
    crate::params::without(query, TOKEN_PARAM)
}

/// The request's end-to-end headers for the application: its own `Host`
/// (applications build links from it), without the preview's token, with
/// `X-Forwarded-*`.
fn app_headers(headers: &HeaderMap, target: &Target) -> HeaderMap {
    let mut out = forwardable(headers);
    out.remove(TOKEN_HEADER);
    out.remove(header::COOKIE);
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(TOKEN_COOKIE))
        .collect();
    if let Ok(value) = HeaderValue::from_str(&cookies.join("; ")) {
        if !cookies.is_empty() {
            out.insert(header::COOKIE, value);
        }
    }
    if let Some(host) = headers.get(header::HOST) {
        out.insert(header::HOST, host.clone());
        out.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    out.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    if let Form::Path { prefix, .. } = &target.form {
        if let Ok(value) = HeaderValue::from_str(prefix) {
            out.insert(HeaderName::from_static("x-forwarded-prefix"), value);
        }
    }
    out
}

fn redirect(location: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: &str, path: &str) -> Request {
        http::Request::builder()
            .uri(path)
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn targets_are_found_by_host_and_by_path() {
        let id = ids::new_id(IdKind::Sandbox);
        let host = format!("{}.localhost:7070", host::label(&id, 8000));
        let t = target(&request(&host, "/a?b=1")).unwrap();
        assert_eq!(t.port, 8000);
        assert_eq!(
            t.form,
            Form::Host {
                domain: "localhost".into()
            }
        );
        let t = target(&request(
            "127.0.0.1:7070",
            &format!("/v1/sandboxes/{id}/ports/3000/x/y"),
        ))
        .unwrap();
        assert_eq!(
            t.form,
            Form::Path {
                prefix: format!("/v1/sandboxes/{id}/ports/3000"),
                rest: "/x/y".into()
            }
        );
        let t = target(&request(
            "localhost",
            &format!("/v1/sandboxes/{id}/ports/3000"),
        ))
        .unwrap();
        assert_eq!(
            t.form,
            Form::Path {
                prefix: format!("/v1/sandboxes/{id}/ports/3000"),
                rest: String::new()
            }
        );
        for other in [
            "/v1/sandboxes".to_string(),
            format!("/v1/sandboxes/{id}/processes/run"),
            format!("/v1/sandboxes/{id}/ports/0/"),
            format!("/v1/sandboxes/{id}/ports/x/"),
            "/v1/sandboxes/sbx_bad/ports/80/".to_string(),
        ] {
            assert_eq!(target(&request("localhost:7070", &other)), None, "{other}");
        }
    }

    #[test]
    fn tokens_come_from_header_query_or_cookie_and_never_reach_the_app() {
        let preview = PreviewRecord {
            id: "prv_x".into(),
            sandbox_id: "sbx_x".into(),
            port: 80,
            auth: "token".into(),
            token: Some("s3cret".into()),
            domain: "localhost".into(),
            created_at: 0,
        };
        let authorize_host = |p: &PreviewRecord, r: &Request| authorize(p, r, true);
        let with = |f: &dyn Fn(http::request::Builder) -> http::request::Builder, uri: &str| {
            f(http::Request::builder().uri(uri))
                .body(Body::empty())
                .unwrap()
        };
        assert!(matches!(
            authorize_host(&preview, &with(&|b| b, "/")),
            Err(PreviewError::Unauthorized)
        ));
        assert!(authorize_host(&preview, &with(&|b| b, "/?token=wrong")).is_err());
        assert!(
            !authorize_host(&preview, &with(&|b| b.header(TOKEN_HEADER, "s3cret"), "/")).unwrap()
        );
        assert!(authorize_host(&preview, &with(&|b| b, "/?a=1&token=s3cret")).unwrap());
        let with_cookie = with(
            &|b| b.header(header::COOKIE, "x=1; warren_preview=s3cret"),
            "/",
        );
        assert!(!authorize(&preview, &with_cookie, true).unwrap());
        // Path previews (cookies not allowed) ignore the cookie.
        assert!(matches!(
            authorize(&preview, &with_cookie, false),
            Err(PreviewError::Unauthorized)
        ));
        let public = PreviewRecord {
            auth: "public".into(),
            token: None,
            ..preview.clone()
        };
        assert!(!authorize_host(&public, &with(&|b| b, "/")).unwrap());

        assert_eq!(without_token("a=1&token=s3cret&b=2"), "a=1&b=2");
        let mut headers = HeaderMap::new();
        headers.insert(TOKEN_HEADER, HeaderValue::from_static("s3cret"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("sid=9; warren_preview=s3cret"),
        );
        headers.insert(header::HOST, HeaderValue::from_static("80-x.localhost"));
        let target = Target {
            sandbox_id: "sbx_x".into(),
            port: 80,
            form: Form::Host {
                domain: "localhost".into(),
            },
        };
        let out = app_headers(&headers, &target);
        assert!(out.get(TOKEN_HEADER).is_none());
        assert_eq!(out.get(header::COOKIE).unwrap(), "sid=9");
        assert_eq!(out.get(header::HOST).unwrap(), "80-x.localhost");
    }
}
