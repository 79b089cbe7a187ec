//! The Warren control plane (`warren server`): turns one Linux machine into a
//! sandbox host behind an HTTP API.
//!
//! Layout (handlers thin over domain modules; only [`store`] speaks SQL, only
//! [`node`] touches the runtime and the disks):
//! - [`config`]: [`ServerConfig`], what the command line sets.
//! - [`serve`]: start-up (state dir, admin key, database, pool, runtime,
//!   reconciliation), the listener, the reaper, shutdown.
//! - [`http`]: the axum router, one module per resource, OpenAPI.
//! - [`auth`]: admin and tenant keys, the [`auth::Caller`] of a request.
//! - [`sandboxes`]: the sandbox domain (lifecycle transitions, queries, the
//!   in-memory registry the hot path reads).
//! - [`checkpoints`]: time travel (checkpoints, restore, fork, wipe,
//!   patches, export and import).
//! - [`tenants`], [`templates`]: the other domains.
//! - [`proxy`]: agent routes forwarded over unix sockets, streamed.
//! - [`e2b`]: E2B compatibility (its control-plane routes' translation onto
//!   the domains, envd access tokens, the sandbox plane by header).
//! - [`previews`]: preview URLs (a sandbox port by Host or by path, through
//!   a tunnel the agent opens), with the sandboxes' network settings.
//! - [`events`]: committed sandbox state changes as streams
//!   (`GET /v1/events`), per tenant, bounded.
//! - [`lifecycle`]: the reaper (activity flush, idle stop, ttl destroy).
//! - [`reconcile`]: matching the database with the machine at start-up.
//! - [`node`]: runtime + storage pool + run directories.
//! - [`store`]: SQLite through sqlx.
//! - [`metrics`]: Prometheus series and the middleware that records them.
//!
//! Invariants: sandboxes are never children of the server (a `kill -9` of it
//! leaves them running); nothing is acknowledged before it is committed to
//! the database; a tenant's view of another tenant's sandbox is exactly a
//! 404 of a missing one.

pub mod auth;
pub mod checkpoints;
pub mod config;
pub mod e2b;
pub mod events;
pub mod host;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod node;
pub mod paging;
pub mod params;
pub mod previews;
pub mod proxy;
pub mod reconcile;
pub mod sandboxes;
pub mod serve;
pub mod spares;
pub mod store;
pub mod templates;
pub mod tenants;
pub mod time;

pub use config::{Limits, ServerConfig};
pub use serve::{run, ServeError};

/// Shared state handed to every handler: one `Arc` over [`Services`],
/// since axum clones it into every route as the router is built and into
/// every request.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<Services>);

impl AppState {
    /// The state of a server made of `services`.
    pub fn new(services: Services) -> Self {
        AppState(std::sync::Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The parts of the server handlers call into.
pub struct Services {
    /// Sandbox lifecycle and queries.
    pub sandboxes: sandboxes::Sandboxes,
    /// Checkpoints and what is made of them.
    pub checkpoints: checkpoints::Checkpoints,
    /// Tenants and keys.
    pub tenants: tenants::Tenants,
    /// Templates.
    pub templates: templates::Templates,
    /// Key checks.
    pub auth: auth::Auth,
    /// Metrics.
    pub metrics: metrics::Metrics,
    /// The pooled client of sandbox agents.
    pub agent: proxy::AgentClient,
    /// Preview URLs.
    pub previews: previews::Previews,
    /// The database.
    pub store: store::Store,
    /// Request limits.
    pub limits: config::Limits,
    /// E2B compatibility.
    pub e2b: e2b::E2b,
}
