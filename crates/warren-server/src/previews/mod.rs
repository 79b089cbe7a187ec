//! Preview URLs: a port inside a sandbox, reachable through the server.
//!
//! A preview is `{sandbox, port, auth, domain}` in the store (one per port;
//! creating it again replaces it and its token). Requests reach it two ways,
//! both handled in [`forward`] before any API routing or API-key check:
//! - by Host: `{port}-{id without sbx_}.{domain}` (the label is a valid DNS
//!   label; with the default domain `localhost` a browser resolves it with
//!   no DNS set-up), see [`host`];
//! - by path: `/v1/sandboxes/{id}/ports/{port}/...`.
//!
//! Either way the request is sent over HTTP/1.1 through a TCP tunnel that
//! the sandbox's agent opens to `127.0.0.1:{port}` ([`tunnel`]): no host port
//! is opened, and bodies, SSE and WebSocket upgrades stream through. A
//! `token` preview needs its token (header `X-Warren-Preview-Token`,
//! `?token=`, or the cookie a `?token=` visit sets).
//!
//! The proxy's hot path reads previews from an in-memory map kept in step
//! with the store (written first).

pub mod forward;
pub mod host;
pub mod tunnel;

use crate::node::Node;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, RwLock};

use rand::RngCore;
use warren_api::ids::{self, IdKind};
use warren_api::server::{CreatePreviewRequest, Preview, PreviewAuth, PreviewList};
use warren_api::{ErrorCode, Problem};

use crate::auth::Caller;
use crate::sandboxes::{SandboxError, Sandboxes};
use crate::store::{PreviewRecord, Store, StoreError};
use crate::time::{now_ms, rfc3339};

/// How preview URLs are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewSettings {
    /// Domain of preview hosts (`{port}-{id}.{domain}`).
    pub domain: String,
    /// `http` or `https` in the URLs shown.
    pub scheme: String,
    /// Port in the URLs shown: `None` for the server's own listening port,
    /// `Some(0)` for none (a proxy on 80 or 443 in front).
    pub port: Option<u16>,
}

impl Default for PreviewSettings {
    fn default() -> Self {
        PreviewSettings {
            domain: "localhost".into(),
            scheme: "http".into(),
            port: None,
        }
    }
}

/// Failures of preview operations.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// No preview of this port (or no such sandbox behind a preview host).
    #[error("no preview of port {port} on sandbox {sandbox}")]
    NotFound {
        /// The sandbox.
        sandbox: String,
        /// The port.
        port: u16,
    },
    /// A request field is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The preview needs its token.
    #[error("this preview needs its token: X-Warren-Preview-Token header or ?token=")]
    Unauthorized,
    /// The sandbox-level failure (not found, not running).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PreviewError> for Problem {
    fn from(err: PreviewError) -> Problem {
        match err {
            PreviewError::NotFound { .. } => {
                Problem::new(ErrorCode::PreviewNotFound, err.to_string())
            }
            PreviewError::Invalid(_) => Problem::new(ErrorCode::InvalidRequest, err.to_string()),
            PreviewError::Unauthorized => Problem::new(ErrorCode::Unauthorized, err.to_string()),
            PreviewError::Sandbox(e) => e.into(),
            PreviewError::Store(e) => {
                tracing::error!(error = %e, "preview operation failed");
                Problem::new(
                    ErrorCode::Internal,
                    "the server failed to complete the preview operation",
                )
            }
        }
    }
}

impl axum::response::IntoResponse for PreviewError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}

/// The preview service; cheap to clone.
#[derive(Clone)]
pub struct Previews {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sandboxes: Sandboxes,
    settings: PreviewSettings,
    /// The port the server listens on, once bound (for URLs).
    listen_port: AtomicU16,
    /// (sandbox, port) → preview. A std lock: held for a map operation only.
    cache: RwLock<HashMap<(String, u16), Arc<PreviewRecord>>>,
    client: tunnel::TunnelClient,
}

impl Previews {
    /// The service, its cache filled from the store.
    pub async fn new(
        store: Store,
        sandboxes: Sandboxes,
        settings: PreviewSettings,
        node: Node,
    ) -> Result<Previews, StoreError> {
        let cache = store
            .all_previews()
            .await?
            .into_iter()
            .map(|p| ((p.sandbox_id.clone(), p.port), Arc::new(p)))
            .collect();
        Ok(Previews {
            inner: Arc::new(Inner {
                store,
                sandboxes,
                settings,
                listen_port: AtomicU16::new(0),
                cache: RwLock::new(cache),
                client: tunnel::TunnelClient::new(node),
            }),
        })
    }

    /// Records the port the server listens on (URLs show it by default).
    pub fn set_listen_port(&self, port: u16) {
        self.inner.listen_port.store(port, Ordering::Relaxed);
    }

    /// The settings.
    pub fn settings(&self) -> &PreviewSettings {
        &self.inner.settings
    }

    /// Creates (or replaces) the preview of `req.port` on sandbox `id`.
    pub async fn create(
        &self,
        caller: &Caller,
        id: &str,
        req: CreatePreviewRequest,
    ) -> Result<Preview, PreviewError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        if req.port == 0 {
            return Err(PreviewError::Invalid(
                "port: must be between 1 and 65535".into(),
            ));
        }
        let domain = match req.domain {
            Some(d) => host::normalize_domain(&d).ok_or_else(|| {
                PreviewError::Invalid(format!("domain {d:?} is not a valid DNS name"))
            })?,
            None => self.inner.settings.domain.clone(),
        };
        let auth = req.auth.unwrap_or_default();
        let record = PreviewRecord {
            id: ids::new_id(IdKind::Preview),
            sandbox_id: entry.id.clone(),
            port: req.port,
            auth: auth_str(auth).into(),
            token: (auth == PreviewAuth::Token).then(new_token),
            domain,
            created_at: now_ms(),
        };
        self.inner.store.upsert_preview(&record).await?;
        let view = self.view(&record);
        self.inner
            .cache
            .write()
            .expect("preview cache lock")
            .insert((record.sandbox_id.clone(), record.port), Arc::new(record));
        Ok(view)
    }

    /// The previews of sandbox `id`, in port order.
    pub async fn list(&self, caller: &Caller, id: &str) -> Result<PreviewList, PreviewError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        let mut items: Vec<Preview> = self
            .inner
            .cache
            .read()
            .expect("preview cache lock")
            .values()
            .filter(|p| p.sandbox_id == entry.id)
            .map(|p| self.view(p))
            .collect();
        items.sort_by_key(|p| p.port);
        Ok(PreviewList { items })
    }

    /// The preview of `port` on sandbox `id`.
    pub async fn get(&self, caller: &Caller, id: &str, port: u16) -> Result<Preview, PreviewError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        self.lookup(&entry.id, port)
            .map(|p| self.view(&p))
            .ok_or_else(|| PreviewError::NotFound {
                sandbox: entry.id.clone(),
                port,
            })
    }

    /// Deletes the preview of `port` on sandbox `id`.
    pub async fn delete(&self, caller: &Caller, id: &str, port: u16) -> Result<(), PreviewError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        let existed = self.inner.store.delete_preview(&entry.id, port).await?;
        self.inner
            .cache
            .write()
            .expect("preview cache lock")
            .remove(&(entry.id.clone(), port));
        if existed {
            Ok(())
        } else {
            Err(PreviewError::NotFound {
                sandbox: entry.id.clone(),
                port,
            })
        }
    }

    /// The preview of `port` on `sandbox`, if both exist. A preview whose
    /// sandbox is gone (its row went with the sandbox's) is dropped here.
    pub fn lookup(&self, sandbox: &str, port: u16) -> Option<Arc<PreviewRecord>> {
        let key = (sandbox.to_string(), port);
        let found = self
            .inner
            .cache
            .read()
            .expect("preview cache lock")
            .get(&key)
            .cloned()?;
        if self.inner.sandboxes.registry().get(sandbox).is_none() {
            self.inner
                .cache
                .write()
                .expect("preview cache lock")
                .remove(&key);
            return None;
        }
        Some(found)
    }

    /// The API view of a record.
    fn view(&self, p: &PreviewRecord) -> Preview {
        let label = host::label(&p.sandbox_id, p.port);
        let settings = &self.inner.settings;
        let port = match settings.port {
            Some(0) => String::new(),
            Some(port) => format!(":{port}"),
            None => format!(":{}", self.inner.listen_port.load(Ordering::Relaxed)),
        };
        let scheme = &settings.scheme;
        Preview {
            id: p.id.clone(),
            sandbox_id: p.sandbox_id.clone(),
            port: p.port,
            auth: if p.auth == "public" {
                PreviewAuth::Public
            } else {
                PreviewAuth::Token
            },
            domain: p.domain.clone(),
            url: format!("{scheme}://{label}.{}{port}/", p.domain),
            path_url: format!(
                "{scheme}://{}{port}/v1/sandboxes/{}/ports/{}/",
                settings.domain, p.sandbox_id, p.port
            ),
            token: p.token.clone(),
            created_at: rfc3339(p.created_at),
        }
    }
}

fn auth_str(auth: PreviewAuth) -> &'static str {
    match auth {
        PreviewAuth::Public => "public",
        PreviewAuth::Token => "token",
    }
}

/// 32 random bytes, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
