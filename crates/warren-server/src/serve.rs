//! Running the server.
//!
//! Start-up order: the state directory; the admin key (printed once when it
//! is generated); the database (migrated); the storage pool (mounted if it
//! lives in an image); the namespace runtime; reconciliation with what runs
//! on the machine; then the listener and the reaper.
//!
//! Shutdown protocol: on SIGTERM or SIGINT the listener stops accepting,
//! event streams (`GET /v1/events`) end, other open requests get
//! [`SHUTDOWN_GRACE`] to finish (streams are cut after it),
//! the reaper flushes recorded activity, the database is closed. Sandboxes
//! are left running: the next start reattaches them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use warren_runtime::namespaces::NamespaceRuntime;
use warren_runtime::network::Network;
use warren_runtime::storage::{Pool, StorageError};
use warren_runtime::RuntimeError;

use crate::auth::admin_key::{self, AdminKeyError, Source};
use crate::auth::Auth;
use crate::checkpoints::Checkpoints;
use crate::host::HostLimits;
use crate::metrics::Metrics;
use crate::node::{Node, NodeError};
use crate::previews::Previews;
use crate::reconcile::{reconcile, ReconcileError};
use crate::sandboxes::registry::Registry;
use crate::sandboxes::Sandboxes;
use crate::store::{Store, StoreError};
use crate::templates::Templates;
use crate::tenants::Tenants;
use crate::{http, lifecycle, proxy, AppState, ServerConfig, Services};

/// How long open requests may run on after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// File name of the database in the state directory.
pub const DATABASE: &str = "warren.db";

/// Failures of start-up and serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state directory could not be made.
    #[error("state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The admin key could not be read or written.
    #[error(transparent)]
    AdminKey(#[from] AdminKeyError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The storage pool could not be opened.
    #[error("opening the storage pool: {0}")]
    Pool(StorageError),
    /// The runtime could not be set up.
    #[error("setting up the runtime: {0}")]
    Runtime(RuntimeError),
    /// The run directories could not be made.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Reconciliation failed.
    #[error("reconciling sandboxes: {0}")]
    Reconcile(#[from] ReconcileError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Installing the signal handlers failed.
    #[error("installing signal handlers: {0}")]
    Signals(std::io::Error),
    /// A start-up task panicked.
    #[error("start-up task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Starts the server and serves until SIGTERM or SIGINT.
pub async fn run(config: ServerConfig) -> Result<(), ServeError> {
    let signals = StopSignals::install()?;
    std::fs::create_dir_all(&config.state_dir).map_err(|source| ServeError::StateDir {
        path: config.state_dir.clone(),
        source,
    })?;
    let state_dir_error = |source| ServeError::StateDir {
        path: config.state_dir.clone(),
        source,
    };
    restrict_state_dir(&config.state_dir).map_err(state_dir_error)?;
    let admin = admin_key::resolve(config.admin_key.as_deref(), &config.state_dir)?;
    if let Source::Generated(path) = &admin.source {
        // Shown once: afterwards it is only in the 0600 file.
        println!(
            "warren: generated the admin key (saved in {}):\n{}",
            path.display(),
            admin.key
        );
    }
    let store = open_store(&config.state_dir).await?;

    let state_dir = config.state_dir.clone();
    let (driver, cgroup_parent) = (config.storage, config.cgroup_parent.clone());
    let network_config = config.network.clone();
    let (pool, runtime) = tokio::task::spawn_blocking(move || {
        let pool = Pool::open(&state_dir, driver).map_err(ServeError::Pool)?;
        let mut runtime =
            NamespaceRuntime::with_cgroup_parent(&cgroup_parent).map_err(ServeError::Runtime)?;
        // Without its network a server still runs sandboxes, with loopback only.
        match network_config.map(Network::open) {
            Some(Ok(network)) => runtime = runtime.with_network(network),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "outbound network unavailable: sandboxes get loopback only")
            }
            None => tracing::info!("outbound network disabled: sandboxes get loopback only"),
        }
        // Nothing builds yet: whatever a build or an import left in the
        // pool's tmp/ belongs to a process that is gone.
        let swept = warren_runtime::template::sweep_tmp(&pool);
        if swept > 0 {
            tracing::info!(swept, "removed leftovers of interrupted template builds");
        }
        Ok::<_, ServeError>((pool, runtime))
    })
    .await??;
    let mut limits = config.limits.clone();
    if runtime.network().is_none() {
        limits.default_egress = warren_runtime::Egress::Deny;
    }
    tracing::info!(driver = pool.driver().name(), root = %pool.root().display(), "storage pool ready");
    if config.extra_ca_pem.is_some() {
        tracing::info!("sandboxes and template builds trust the extra CA certificates");
    }
    let state_dir = pool.state_dir().to_path_buf();
    let node = Node::new(
        Arc::new(runtime),
        pool,
        &state_dir,
        config.warren_binary.clone(),
    )?
    .with_extra_ca(config.extra_ca_pem.clone());

    let metrics = Metrics::new();
    let templates = Templates::new(node.clone(), config.base_template.clone());
    let sandboxes = Sandboxes::new(
        store.clone(),
        Registry::default(),
        node.clone(),
        templates.clone(),
        metrics.clone(),
        limits.clone(),
        HostLimits::detect(),
        config.pools.clone(),
    );
    // Before the pool starts: what it made before a restart is an orphan.
    reconcile(&sandboxes).await?;
    let checkpoints = Checkpoints::new(sandboxes.clone());
    if let Err(e) = checkpoints.sweep().await {
        tracing::error!(error = %e, "sweeping leftovers of checkpoint operations");
    }
    let previews = Previews::new(
        store.clone(),
        sandboxes.clone(),
        config.previews.clone(),
        node.clone(),
    )
    .await?;

    let e2b_key =
        crate::e2b::token::TokenKey::load_or_create(&config.state_dir).map_err(|source| {
            ServeError::StateDir {
                path: config.state_dir.join(crate::e2b::token::FILE_NAME),
                source,
            }
        })?;
    let stream_tokens = crate::auth::stream_token::StreamTokens::new(e2b_key.clone());
    let e2b = crate::e2b::E2b::new(
        sandboxes.clone(),
        checkpoints.clone(),
        previews.clone(),
        e2b_key,
    )
    .await?;
    let auth = Auth::new(admin.key, store.clone(), stream_tokens);
    let state = AppState::new(Services {
        tenants: Tenants::new(store.clone(), auth.clone()),
        agent: proxy::AgentClient::new(node.clone()),
        sandboxes: sandboxes.clone(),
        checkpoints,
        templates,
        auth,
        metrics,
        store: store.clone(),
        previews: previews.clone(),
        limits,
        e2b,
    });
    let app = http::router(state);
    let listener = bind(&config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    previews.set_listen_port(addr.port());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reaper = tokio::spawn(lifecycle::run(
        sandboxes.clone(),
        config.limits.reaper_interval,
        stop_rx.clone(),
    ));
    let refiller = tokio::spawn(sandboxes.clone().run_pool(stop_rx.clone()));
    let mut stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        // `into_make_service`: each connection gets a clone of the router
        // (one `Arc`). Served as a plain `Router`, axum rebuilds every
        // route's stack for each new connection (`Router::with_state`),
        // about 1.4 ms of CPU here: 50 clients connecting at once waited
        // 70 ms for their first answer.
        axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    });
    tracing::info!(%addr, state_dir = %config.state_dir.display(), "warren server listening");
    println!("warren server listening on http://{addr}");

    signals.wait().await;
    tracing::info!("stopping: sandboxes keep running");
    let _ = stop_tx.send(true);
    // Event streams never end by themselves: end them, so that they do not
    // hold the graceful shutdown up.
    store.events().close();
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::info!("cutting the streams still open");
    }
    let _ = reaper.await;
    // Its ready sandboxes are destroyed; a restart would remove them anyway.
    if tokio::time::timeout(SHUTDOWN_GRACE, refiller)
        .await
        .is_err()
    {
        tracing::warn!(
            "the warm pool's sandboxes were not all destroyed; the next start removes them"
        );
    }
    store.close().await;
    Ok(())
}

/// The state directory is root's alone (0700): it holds the database, the
/// pool with every sandbox's files, and the run directories. Sandboxes reach
/// their own pieces through mounts staged by host root (see
/// `warren_runtime::namespaces::mounts::stage`), not through this path.
fn restrict_state_dir(state_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state_dir)?.permissions().mode() & 0o7777;
    if mode != 0o700 {
        tracing::info!(dir = %state_dir.display(), was = format!("{mode:o}"), "making the state dir root's alone (0700)");
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens the database, creating its file readable by root only first: it
/// holds key hashes and sandbox environments.
async fn open_store(state_dir: &Path) -> Result<Store, ServeError> {
    let path = state_dir.join(DATABASE);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(ServeError::StateDir {
                path: path.clone(),
                source,
            })
        }
    }
    Ok(Store::open(&path).await?)
}

/// SIGTERM and SIGINT, caught from the start of [`run`]: a stop signal
/// that arrives while the server starts (or just as it says it listens) is
/// a graceful stop once it is up, never the default action's kill.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, ServeError> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).map_err(ServeError::Signals)?,
            int: signal(SignalKind::interrupt()).map_err(ServeError::Signals)?,
        })
    }

    /// Returns at the first signal (at once if one came already).
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Connections the kernel completes and queues before the server accepts
/// them (capped by `net.core.somaxconn`). `TcpListener::bind` asks for
/// 128: clients beyond that, connecting while the server is busy, have
/// their handshakes dropped and retried a second later.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (`HOST:PORT`; the first address it resolves to) as
/// `TcpListener::bind` does, with [`LISTEN_BACKLOG`].
async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let resolved = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let socket = if resolved.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    socket.listen(LISTEN_BACKLOG)
}
