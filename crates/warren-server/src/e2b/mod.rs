//! E2B compatibility, server side: the control plane E2B's SDKs call
//! (`/sandboxes`, `/v2/sandboxes`, `/snapshots`, ...) as a thin translation
//! onto Warren's domains, and the sandbox plane they reach by header
//! (`E2b-Sandbox-Id`, see [`plane`]).
//!
//! - [`wire`]: E2B's JSON shapes; [`error`]: E2B's error body.
//! - [`token`]: envd access tokens (HMAC of the sandbox id under a secret
//!   in the state directory).
//! - this module: create, connect, set timeout, kill, pause, with E2B's
//!   semantics: `timeout` is a time to live from now (default 300 s), kept
//!   as the sandbox's deadline (`expires_at`); at the deadline the sandbox
//!   is destroyed, or hibernated when it was created with `autoPause` (the
//!   reaper reads `e2b_sandboxes`). Pausing is Warren's hibernate: files are
//!   kept, memory and processes are not.
//! - [`views`]: get and list; [`extras`]: snapshots (checkpoints), fork,
//!   metrics, logs, network.
//!
//! Ids: E2B's `sandboxID` is the Warren id without `sbx_`; every route
//! takes both forms. Another tenant's sandbox is a 404, as on `/v1`.

pub mod error;
pub mod extras;
pub mod plane;
pub mod token;
pub mod views;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warren_api::envd::ENVD_VERSION;
use warren_api::ids::IdKind;
use warren_api::server::{CreateSandboxRequest, Egress, NetworkRequest, Sandbox};

pub use error::E2bError;
use token::TokenKey;
use wire::{NetworkConfig, NewSandbox, SandboxCreated};

use crate::auth::Caller;
use crate::checkpoints::Checkpoints;
use crate::previews::Previews;
use crate::proxy::AgentClient;
use crate::sandboxes::registry::Phase;
use crate::sandboxes::Sandboxes;
use crate::store::{E2bRecord, Store, StoreError};
use crate::time::now_ms;

/// E2B's default time to live, seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// `clientID` of every sandbox.
pub const CLIENT_ID: &str = "warren";

/// E2B's template ids that name a Warren template of another name.
const TEMPLATE_ALIASES: &[(&str, &str)] = &[("code-interpreter-v1", "code-interpreter")];

/// The E2B service; cheap to clone.
#[derive(Clone)]
pub struct E2b {
    inner: Arc<Inner>,
}

struct Inner {
    sandboxes: Sandboxes,
    checkpoints: Checkpoints,
    previews: Previews,
    store: Store,
    agent: AgentClient,
    key: TokenKey,
    /// `e2b_sandboxes` rows by sandbox id, for the sandbox plane's hot path
    /// (written after the store). A std lock: held for a map operation only.
    rows: RwLock<HashMap<String, Arc<E2bRecord>>>,
}

/// The Warren id (`sbx_…`) of an id in either form.
pub fn warren_id(id: &str) -> String {
    if id.starts_with(IdKind::Sandbox.prefix()) {
        id.to_string()
    } else {
        format!("{}{id}", IdKind::Sandbox.prefix())
    }
}

/// E2B's form of a sandbox id (without `sbx_`).
pub fn e2b_id(id: &str) -> String {
    id.strip_prefix(IdKind::Sandbox.prefix())
        .unwrap_or(id)
        .to_string()
}

/// What a `templateID` names: a template, or a snapshot (checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Warren template.
    Template(String),
    /// A checkpoint (`ckpt_…`), as `POST /sandboxes/{id}/snapshots` made.
    Checkpoint(String),
}

/// The Warren source of an E2B `templateID` (default `base`).
pub fn source(template_id: Option<&str>) -> Source {
    let id = template_id.map(str::trim).filter(|t| !t.is_empty());
    let id = id.unwrap_or("base");
    if id.starts_with(IdKind::Checkpoint.prefix()) {
        return Source::Checkpoint(id.to_string());
    }
    let name = TEMPLATE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == id)
        .map_or(id, |(_, name)| name);
    Source::Template(name.to_string())
}

/// Warren's network request for E2B's options: `allow_internet_access:
/// false` or `denyOut: ["0.0.0.0/0"]` is egress `deny` (with `allowOut`
/// admitted); `true` is `allow`; nothing is the server's default.
pub fn network_request(
    allow_internet_access: Option<bool>,
    network: Option<&NetworkConfig>,
) -> Result<Option<NetworkRequest>, E2bError> {
    let deny_out = network.and_then(|n| n.deny_out.clone()).unwrap_or_default();
    let allow_out = network
        .and_then(|n| n.allow_out.clone())
        .unwrap_or_default();
    let deny_all = deny_out.iter().any(|d| d == "0.0.0.0/0");
    if let Some(other) = deny_out.iter().find(|d| *d != "0.0.0.0/0") {
        return Err(E2bError::invalid(format!(
            "network.denyOut: only \"0.0.0.0/0\" (everything) is supported, not {other:?}; \
             admit destinations with allowOut instead"
        )));
    }
    if allow_internet_access == Some(false) || deny_all {
        return Ok(Some(NetworkRequest {
            egress: Some(Egress::Deny),
            allow: Some(if allow_internet_access == Some(false) {
                Vec::new()
            } else {
                allow_out
            }),
        }));
    }
    Ok(allow_internet_access.map(|_| NetworkRequest {
        egress: Some(Egress::Allow),
        allow: None,
    }))
}

impl E2b {
    /// The service over Warren's domains, its row cache filled from the
    /// store.
    pub async fn new(
        sandboxes: Sandboxes,
        checkpoints: Checkpoints,
        previews: Previews,
        key: TokenKey,
    ) -> Result<E2b, StoreError> {
        let store = sandboxes.store().clone();
        let rows = store
            .all_e2b()
            .await?
            .into_iter()
            .map(|r| (r.sandbox_id.clone(), Arc::new(r)))
            .collect();
        let agent = AgentClient::new(sandboxes.node().clone());
        Ok(E2b {
            inner: Arc::new(Inner {
                sandboxes,
                checkpoints,
                previews,
                store,
                agent,
                key,
                rows: RwLock::new(rows),
            }),
        })
    }

    /// The envd access tokens.
    pub fn key(&self) -> &TokenKey {
        &self.inner.key
    }

    /// The E2B row of sandbox `id` (`sbx_…`), if the E2B routes made it.
    /// The row of a sandbox that is gone (its row went with the sandbox's,
    /// e.g. at its deadline) is dropped here.
    pub fn row(&self, id: &str) -> Option<Arc<E2bRecord>> {
        let found = self
            .inner
            .rows
            .read()
            .expect("e2b rows lock")
            .get(id)
            .cloned()?;
        if self.inner.sandboxes.registry().get(id).is_none() {
            self.inner.rows.write().expect("e2b rows lock").remove(id);
            return None;
        }
        Some(found)
    }

    async fn save_row(&self, row: E2bRecord) -> Result<(), StoreError> {
        self.inner.store.upsert_e2b(&row).await?;
        self.inner
            .rows
            .write()
            .expect("e2b rows lock")
            .insert(row.sandbox_id.clone(), Arc::new(row));
        Ok(())
    }

    /// What create, connect and fork answer for a sandbox.
    fn created(&self, sandbox: &Sandbox) -> SandboxCreated {
        let row = self.row(&sandbox.id);
        SandboxCreated {
            template_id: sandbox.template.clone(),
            sandbox_id: e2b_id(&sandbox.id),
            client_id: CLIENT_ID.into(),
            envd_version: ENVD_VERSION.into(),
            envd_access_token: self.inner.key.envd_token(&sandbox.id),
            traffic_access_token: row.and_then(|r| r.traffic_token.clone()),
            domain: None,
        }
    }

    /// `POST /sandboxes`, `POST /v2/sandboxes`.
    pub async fn create(
        &self,
        caller: &Caller,
        req: NewSandbox,
    ) -> Result<SandboxCreated, E2bError> {
        let timeout = req.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout == 0 {
            return Err(E2bError::invalid("timeout must be at least 1 second"));
        }
        let network = network_request(req.allow_internet_access, req.network.as_ref())?;
        let (template, from_checkpoint) = match source(req.template_id.as_deref()) {
            Source::Template(name) => (Some(name), None),
            Source::Checkpoint(id) => (None, Some(id)),
        };
        let public = req
            .network
            .as_ref()
            .and_then(|n| n.allow_public_traffic)
            .unwrap_or(true);
        let create = CreateSandboxRequest {
            template,
            from_checkpoint,
            // No idle timeout: E2B's timeout is a time to live.
            timeout_secs: Some(0),
            ttl_secs: Some(timeout),
            envs: req.env_vars,
            metadata: req.metadata,
            network,
            auto_wake: Some(req.auto_resume.is_some_and(|a| a.enabled)),
            ..CreateSandboxRequest::default()
        };
        let sandbox = self.inner.sandboxes.create(caller, create).await?;
        let row = E2bRecord {
            sandbox_id: sandbox.id.clone(),
            auto_pause: req.auto_pause.unwrap_or(false),
            timeout_secs: timeout as i64,
            public_traffic: public,
            traffic_token: (!public).then(token::random_token),
        };
        if let Err(err) = self.save_row(row).await {
            if let Err(e) = self.inner.sandboxes.delete(caller, &sandbox.id).await {
                tracing::error!(id = %sandbox.id, error = %e, "removing a sandbox whose E2B row failed");
            }
            return Err(E2bError::store(err));
        }
        Ok(self.created(&sandbox))
    }

    /// `POST /v2/sandboxes/{id}/connect` (and `/sandboxes/{id}/connect`,
    /// `/sandboxes/{id}/resume`): wakes a paused (hibernated) or stopped
    /// sandbox and sets its time to live from now. A running sandbox's
    /// deadline only moves later. True in the answer when it was woken.
    /// With `resume_only`, a running sandbox is a 409 (E2B's old resume).
    pub async fn connect(
        &self,
        caller: &Caller,
        id: &str,
        timeout: Option<u64>,
        resume_only: bool,
    ) -> Result<(SandboxCreated, bool), E2bError> {
        let wid = warren_id(id);
        let sandboxes = &self.inner.sandboxes;
        let entry = sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        let timeout = timeout
            .or_else(|| self.row(&wid).map(|r| r.timeout_secs.max(1) as u64))
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        let (sandbox, woken) = match entry.phase() {
            Phase::Running if resume_only => {
                return Err(E2bError(warren_api::Problem::new(
                    warren_api::ErrorCode::Conflict,
                    format!("sandbox {id} is already running"),
                )))
            }
            Phase::Running => (sandboxes.get(caller, &wid).await?, false),
            Phase::Hibernated | Phase::Starting => (sandboxes.wake(caller, &wid).await?, true),
            _ => (sandboxes.start(caller, &wid).await?, true),
        };
        let mut deadline = now_ms() + timeout as i64 * 1000;
        if !woken {
            if let Some(current) = self
                .inner
                .store
                .sandbox(&wid)
                .await
                .map_err(E2bError::store)?
                .and_then(|r| r.expires_at)
            {
                deadline = deadline.max(current);
            }
        }
        self.inner
            .store
            .set_deadline(&wid, Some(deadline))
            .await
            .map_err(E2bError::store)?;
        Ok((self.created(&sandbox), woken))
    }

    /// `POST /sandboxes/{id}/timeout`: the sandbox now lives `timeout`
    /// seconds from now (sooner or later than before).
    pub async fn set_timeout(
        &self,
        caller: &Caller,
        id: &str,
        timeout: u64,
    ) -> Result<(), E2bError> {
        let wid = warren_id(id);
        let entry = self
            .inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        entry.touch();
        self.inner
            .store
            .set_deadline(&wid, Some(now_ms() + timeout as i64 * 1000))
            .await
            .map_err(E2bError::store)?;
        Ok(())
    }

    /// `DELETE /sandboxes/{id}`.
    pub async fn kill(&self, caller: &Caller, id: &str) -> Result<(), E2bError> {
        let wid = warren_id(id);
        self.inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        self.inner.sandboxes.delete(caller, &wid).await?;
        self.inner.rows.write().expect("e2b rows lock").remove(&wid);
        Ok(())
    }

    /// `POST /sandboxes/{id}/pause`: Warren's hibernate (files kept, memory
    /// and processes not); a paused sandbox has no deadline. 409 when it is
    /// paused already (the SDKs answer `false` then).
    pub async fn pause(&self, caller: &Caller, id: &str) -> Result<(), E2bError> {
        let wid = warren_id(id);
        let entry = self
            .inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        if matches!(entry.phase(), Phase::Hibernated | Phase::Stopped) {
            return Err(E2bError(warren_api::Problem::new(
                warren_api::ErrorCode::Conflict,
                format!("sandbox {id} is already paused"),
            )));
        }
        self.inner.sandboxes.hibernate(caller, &wid).await?;
        self.inner
            .store
            .set_deadline(&wid, None)
            .await
            .map_err(E2bError::store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_templates_map() {
        assert_eq!(warren_id("abc"), "sbx_abc");
        assert_eq!(warren_id("sbx_abc"), "sbx_abc");
        assert_eq!(e2b_id("sbx_abc"), "abc");
        assert_eq!(e2b_id("abc"), "abc");
        assert_eq!(source(None), Source::Template("base".into()));
        assert_eq!(source(Some("base")), Source::Template("base".into()));
        assert_eq!(
            source(Some("code-interpreter-v1")),
            Source::Template("code-interpreter".into())
        );
        assert_eq!(source(Some("mine")), Source::Template("mine".into()));
        assert_eq!(source(Some("ckpt_x")), Source::Checkpoint("ckpt_x".into()));
    }

    #[test]
    fn network_options_map_to_egress() {
        assert_eq!(network_request(None, None).unwrap(), None);
        assert_eq!(
            network_request(Some(false), None).unwrap().unwrap().egress,
            Some(Egress::Deny)
        );
        assert_eq!(
            network_request(Some(true), None).unwrap().unwrap().egress,
            Some(Egress::Allow)
        );
        let only = NetworkConfig {
            deny_out: Some(vec!["0.0.0.0/0".into()]),
            allow_out: Some(vec!["example.com".into()]),
            ..NetworkConfig::default()
        };
        let req = network_request(None, Some(&only)).unwrap().unwrap();
        assert_eq!(req.egress, Some(Egress::Deny));
        assert_eq!(req.allow, Some(vec!["example.com".to_string()]));
        let partial = NetworkConfig {
            deny_out: Some(vec!["1.2.3.4".into()]),
            ..NetworkConfig::default()
        };
        assert!(network_request(None, Some(&partial)).is_err());
    }
}
