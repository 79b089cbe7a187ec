//! The sandbox domain: what the control-plane routes do, independent of HTTP.
//!
//! - [`transitions`]: create (from a template or a checkpoint), delete,
//!   stop, start; [`hibernate`]: hibernate, wake, auto-wake. Each runs
//!   in a task of its own, so a client that hangs up mid-way does not leave
//!   a half-made or half-destroyed sandbox; each holds the sandbox's
//!   operation lock, writes the database, and only then updates the registry.
//! - [`query`]: get, list, patch, extend.
//! - [`startup`]: the template's start command, started on every boot.
//! - [`pool`]: the warm pool: sandboxes started ahead of creates, handed
//!   over to their owner by a create.
//! - [`registry`]: the in-memory phases and activity the proxy reads.
//! - [`validate`]: checks of requests.
//!
//! Visibility: a tenant's lookup of another tenant's sandbox fails exactly
//! like a lookup of an id that does not exist ([`SandboxError::NotFound`]).

pub mod concurrency;
mod error;
mod hibernate;
pub mod network;
pub mod pool;
mod query;
pub mod registry;
mod seeded;
mod startup;
mod transitions;
pub mod validate;

pub(crate) use transitions::Asked;

use std::future::Future;
use std::sync::Arc;

use warren_api::ids::{self, IdKind};
use warren_api::server::{Sandbox, SandboxResources};

pub use error::SandboxError;
pub use query::ListQuery;
use registry::{Entry, Phase, Registry};

use crate::auth::Caller;
use crate::config::Limits;
use crate::host::HostLimits;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::proxy::AgentClient;
use crate::store::{SandboxRecord, Store};
use crate::templates::Templates;
use crate::time::rfc3339;

struct Inner {
    store: Store,
    registry: Registry,
    node: Node,
    templates: Templates,
    metrics: Metrics,
    limits: Limits,
    host: HostLimits,
    /// Runs the patches of checkpoints sandboxes are made from.
    agent: AgentClient,
    /// Requests in flight per tenant ([`concurrency`]).
    in_flight: concurrency::TenantCounts,
    /// The warm pools ([`pool`]).
    pools: pool::Pools,
}

/// The sandbox service; cheap to clone.
#[derive(Clone)]
pub struct Sandboxes {
    inner: Arc<Inner>,
}

impl Sandboxes {
    /// The service over its store, registry and node, with warm pools of
    /// these sizes per template (see [`pool`]; nothing is made until
    /// [`Sandboxes::run_pool`] runs).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        registry: Registry,
        node: Node,
        templates: Templates,
        metrics: Metrics,
        limits: Limits,
        host: HostLimits,
        pools: impl IntoIterator<Item = (String, u32)>,
    ) -> Self {
        let agent = AgentClient::new(node.clone());
        Sandboxes {
            inner: Arc::new(Inner {
                agent,
                in_flight: concurrency::TenantCounts::default(),
                pools: pool::Pools::new(pools).counting_in(node.creates_in_flight()),
                store,
                registry,
                node,
                templates,
                metrics,
                limits,
                host,
            }),
        }
    }

    /// The registry the proxy and the reaper read.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The node (runtime and storage).
    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// The sandbox `id` if `caller` may see it.
    pub fn entry(&self, caller: &Caller, id: &str) -> Result<Arc<Entry>, SandboxError> {
        let not_found = || SandboxError::NotFound(id.to_string());
        if !ids::is_valid(IdKind::Sandbox, id) {
            return Err(not_found());
        }
        let entry = self.inner.registry.get(id).ok_or_else(not_found)?;
        if !caller.can_see(entry.tenant.as_deref()) {
            return Err(not_found());
        }
        Ok(entry)
    }

    /// The running sandbox `id` for a proxied agent call; records activity.
    pub fn entry_for_proxy(&self, caller: &Caller, id: &str) -> Result<Arc<Entry>, SandboxError> {
        let entry = self.entry(caller, id)?;
        match entry.phase() {
            Phase::Running => {
                entry.touch();
                Ok(entry)
            }
            phase => Err(SandboxError::Conflict {
                id: id.to_string(),
                phase: phase.as_str(),
            }),
        }
    }
}

/// Fails with 409 while the sandbox is being created or destroyed.
pub(crate) fn ensure_settled(entry: &Entry) -> Result<(), SandboxError> {
    match entry.phase() {
        phase @ (Phase::Creating | Phase::Destroying) => Err(SandboxError::Conflict {
            id: entry.id.clone(),
            phase: phase.as_str(),
        }),
        _ => Ok(()),
    }
}

/// Runs `fut` in its own task so that it completes even if the request that
/// started it is dropped (client gone, server shutting down a connection).
async fn detached<T: Send + 'static>(
    op: &'static str,
    fut: impl Future<Output = Result<T, SandboxError>> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::spawn(fut)
        .await
        .map_err(|source| SandboxError::Task { op, source })?
}

/// Runs blocking node work on the blocking pool.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, crate::node::NodeError> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| SandboxError::Task { op, source })?
        .map_err(SandboxError::Node)
}

/// The API view of a stored sandbox; activity not yet flushed to the
/// database is taken from the registry.
pub(crate) fn view(record: &SandboxRecord, entry: Option<&Entry>) -> Sandbox {
    let last_active = entry
        .map(|e| e.last_active().max(record.last_active_at))
        .unwrap_or(record.last_active_at);
    Sandbox {
        id: record.id.clone(),
        state: record.state.api(),
        template: record.template.clone(),
        tenant_id: record.tenant_id.clone(),
        created_at: rfc3339(record.created_at),
        expires_at: record.expires_at.map(rfc3339),
        last_active_at: rfc3339(last_active),
        timeout_secs: record.timeout_secs,
        ttl_secs: record.ttl_secs,
        metadata: record.metadata.clone(),
        labels: record.labels.clone(),
        resources: SandboxResources {
            cpus: record.resources.cpus,
            memory_mb: record.resources.memory_mb,
            pids: record.resources.pids,
            disk_mb: record.disk_mb,
        },
        network: network::view(&record.network),
        auto_checkpoint: record.auto_checkpoint,
        auto_checkpoint_keep: record.auto_checkpoint_keep,
        auto_wake: record.auto_wake,
        from_checkpoint: record.from_checkpoint.clone(),
    }
}
