//! The HTTP plumbing shared by every call: base URL, auth header, and
//! turning error answers into [`Error::Api`].

use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use warren_api::Problem;

use crate::error::{Error, Result};

/// Connection state behind a [`crate::Client`].
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) key: Option<String>,
}

impl std::fmt::Debug for Inner {
    // The key stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Inner {
    pub(crate) fn new(url: &str, key: Option<&str>) -> Result<Inner> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::InvalidUrl(url.to_string()));
        }
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(Inner {
            http,
            base,
            key: key.map(str::to_string),
        })
    }

    /// A request to `path` (starting with `/v1/`), authenticated.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub(crate) fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// Sends and returns a successful response; error statuses become errors.
    pub(crate) async fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.bytes().await?;
        Err(match serde_json::from_slice::<Problem>(&body) {
            Ok(problem) => Error::Api {
                code: problem.code,
                status,
                detail: problem.detail,
            },
            Err(_) => Error::UnexpectedStatus {
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            },
        })
    }

    /// Sends and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let body = self.send(req).await?.bytes().await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Sends and ignores the answer's body.
    pub(crate) async fn empty(&self, req: RequestBuilder) -> Result<()> {
        self.send(req).await?.bytes().await?;
        Ok(())
    }

    /// The WebSocket URL of `path`, authenticated by `?access_token=`.
    pub(crate) fn ws_url(&self, path: &str, query: &[(&str, String)]) -> String {
        let base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        let mut pairs: Vec<(&str, String)> = query.to_vec();
        if let Some(key) = &self.key {
            pairs.push(("access_token", key.clone()));
        }
        let qs = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        if qs.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{qs}")
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
