//! The machine under the control plane: the runtime that runs sandboxes, the
//! storage pool that holds their disks, and the host-side run directories.
//!
//! Everything here blocks (syscalls, ioctls, child processes); async callers
//! go through `spawn_blocking`. Knows nothing of tenants or the database.
//!
//! Layout under the state directory (the pool's own is in
//! [`warren_runtime::storage`]):
//!
//! ```text
//! STATE_DIR/run/<id>/        host side of the sandbox's /run/warren
//! STATE_DIR/run/<id>/agent.sock   the agent's socket, which the proxy dials
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use warren_api::ids::{self, IdKind};
use warren_runtime::storage::{Pool, StorageError};
use warren_runtime::{Runtime, RuntimeError, SandboxSpec, Started};

/// File name of the agent's socket in a sandbox's run directory.
pub const AGENT_SOCKET: &str = "agent.sock";

/// Failures of storage and run directories.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No template with this name on the host.
    #[error("no template named {0:?}")]
    TemplateNotFound(String),
    /// A storage operation failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A run directory could not be made or removed.
    #[error("{op} run directory {path}: {source}")]
    RunDir {
        /// What was done.
        op: &'static str,
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Files of a new root read ahead, in the order they are needed: what a
/// sandbox's init reads as it starts (`/etc/hosts` to name the host; the
/// image's CA store is read once per store, `warren_runtime::trust`), then
/// what a first command runs on, in the order `exec` reads it (the
/// shell of `cmd`, the loader, its cache, libc, then `true`, bash and its
/// library). The reads are queued at once and the disk serves them in
/// turn, so the init never waits behind a shell, nor the shell behind
/// bash. The agent is the server's own binary, already loaded
/// (`warren_runtime::namespaces::set_agent_main`).
const READ_AHEAD: [&str; 9] = [
    "etc/hosts",
    "bin/sh",
    "lib64/ld-linux-x86-64.so.2",
    "etc/ld.so.cache",
    "lib/x86_64-linux-gnu/libc.so.6",
    "bin/true",
    "bin/dash",
    "bin/bash",
    "lib/x86_64-linux-gnu/libtinfo.so.6",
];

/// Reads [`READ_AHEAD`] in the new root `root`, so that their pages are
/// cached when its sandbox starts: a snapshot's files share their data
/// with their source's on disk but not in the page cache, so each new root
/// (a spare, a fork's, a restore's) would otherwise read its shell and libc
/// from disk again at its first command (3 ms more for it).
pub(crate) fn read_ahead(root: &Path) {
    warren_runtime::storage::warm(root, &READ_AHEAD);
}

/// Whether `err` (or any error in its chain) says that a file system is
/// full: `ENOSPC`, `EDQUOT`, or SQLite's "database or disk is full". Some
/// causes are only text by the time they get here (a helper's report), so
/// the messages count too.
pub fn is_out_of_space(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
                return true;
            }
        }
        let text = e.to_string();
        if text.contains("No space left on device")
            || text.contains("Disk quota exceeded")
            || text.contains("database or disk is full")
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Where a prepared sandbox's root comes from ([`Node::prepare`]).
enum Root<'a> {
    /// Made from template `name` (a spare, or a snapshot now) unless it
    /// exists; `warm` for a warm pool's own sandbox.
    Template { name: &'a str, warm: bool },
    /// A snapshot of sandbox `0`'s root, made elsewhere and maybe not yet.
    SnapshotOf(&'a str),
}

impl NodeError {
    /// Whether the error means the template does not exist.
    pub fn is_template_not_found(&self) -> bool {
        matches!(self, NodeError::TemplateNotFound(_))
    }

    /// Whether the runtime refused the sandbox's resources (too large for
    /// the host, or too small to run in).
    pub fn is_bad_resources(&self) -> bool {
        matches!(
            self,
            NodeError::Runtime(
                RuntimeError::ResourcesTooLarge(_) | RuntimeError::InvalidResources(_)
            )
        )
    }
}

/// Directory of the state dir where servers before the in-process agent
/// kept a copy of its loader and libraries; removed at start.
const OLD_AGENT_LIBS_DIR: &str = "agent-libs";

/// Where the CA bundles sandboxes share are kept, under the storage pool's
/// root (and, before, under the state directory, where it is removed).
///
/// Not on the state directory's own file system: every start clones the
/// bundle's mount (`open_tree`), and the kernel then checks each mount
/// below that one, which for the host's `/` includes every live sandbox's
/// run directory (0.3 ms per start with 1,000 alive). The pool's mount has
/// none below it.
const CA_BUNDLES_DIR: &str = "ca-bundles";

/// The runtime, the pool and the run directories; cheap to clone.
#[derive(Clone)]
pub struct Node {
    runtime: Arc<dyn Runtime>,
    pool: Pool,
    run_root: PathBuf,
    /// `POOL/ca-bundles`: the CA bundles sandboxes share
    /// (`warren_runtime::trust`), emptied at every start.
    ca_bundles: PathBuf,
    warren_binary: PathBuf,
    extra_ca: Option<String>,
    /// Roots snapshotted ahead of time for each template in use.
    spares: crate::spares::Spares,
}

impl Node {
    /// A node whose sandboxes are started by `warren_binary`'s zygote (and
    /// run its agent).
    pub fn new(
        runtime: Arc<dyn Runtime>,
        pool: Pool,
        state_dir: &Path,
        warren_binary: PathBuf,
    ) -> Result<Node, NodeError> {
        let run_root = state_dir.join("run");
        std::fs::create_dir_all(&run_root).map_err(|source| NodeError::RunDir {
            op: "create",
            path: run_root.clone(),
            source,
        })?;
        let ca_bundles = pool.root().join(CA_BUNDLES_DIR);
        // Bundles of an earlier run are made again as needed; sandboxes
        // still running keep theirs (a bind mount holds the file itself).
        for dir in [&ca_bundles, &state_dir.join(CA_BUNDLES_DIR)] {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %dir.display(), error = %e, "emptying the shared CA bundles");
                }
            }
        }
        let old_libs = state_dir.join(OLD_AGENT_LIBS_DIR);
        if old_libs.exists() {
            if let Err(e) = std::fs::remove_dir_all(&old_libs) {
                tracing::warn!(path = %old_libs.display(), error = %e, "removing an old copy of the agent's libraries");
            }
        }
        Ok(Node {
            runtime,
            pool,
            run_root,
            ca_bundles,
            warren_binary,
            extra_ca: None,
            spares: crate::spares::Spares::default(),
        })
    }

    /// Says that a proxied request to sandbox `id` ended (a spare-root
    /// refill waits for a new sandbox's first: [`crate::spares`]).
    pub fn request_ended(&self, id: &str) {
        self.spares.request_ended(id);
    }

    /// The count of creates in flight, which spare-root refills wait out
    /// (the server's create path holds it up: [`crate::sandboxes`]).
    pub fn creates_in_flight(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.spares.in_flight()
    }

    /// Hands every sandbox and template build these extra CA certificates
    /// (PEM; see `warren_runtime::trust`).
    pub fn with_extra_ca(mut self, pem: Option<String>) -> Self {
        self.extra_ca = pem;
        self
    }

    /// The extra CA certificates sandboxes get, if any.
    pub fn extra_ca(&self) -> Option<&str> {
        self.extra_ca.as_deref()
    }

    /// The storage pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// `STATE_DIR/run`: every sandbox's run directory is in here.
    pub fn run_root(&self) -> &Path {
        &self.run_root
    }

    /// Connects to sandbox `id`'s agent socket and checks, before anything is
    /// sent, that the listener is that sandbox's own agent (see
    /// [`Runtime::verify_agent`]); a planted symlink answers
    /// `PermissionDenied`. A sandbox's first request takes the connection
    /// its start made and checked instead
    /// ([`Runtime::take_agent_connection`]).
    pub async fn connect_agent(&self, id: &str) -> std::io::Result<tokio::net::UnixStream> {
        // A new sandbox's first request: the connection its start made and
        // checked.
        if let Some(connection) = self.runtime.take_agent_connection(id) {
            connection.set_nonblocking(true)?;
            return tokio::net::UnixStream::from_std(connection);
        }
        let stream = tokio::net::UnixStream::connect(self.run_dir(id).join(AGENT_SOCKET)).await?;
        self.runtime
            .verify_agent(id, std::os::fd::AsFd::as_fd(&stream))
            .map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string())
            })?;
        Ok(stream)
    }

    /// The host side of a sandbox's `/run/warren`.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run_root.join(id)
    }

    fn template_path(&self, template: &str) -> Result<PathBuf, NodeError> {
        self.pool.template_path(template).map_err(|e| match e {
            StorageError::InvalidName(_) => NodeError::TemplateNotFound(template.to_string()),
            other => NodeError::Storage(other),
        })
    }

    /// Makes the sandbox's writable root (a snapshot of the template, taken
    /// ahead of time when a spare one is ready: [`crate::spares`]) and its
    /// empty run directory; returns the spec to start it with.
    pub fn prepare(
        &self,
        id: &str,
        template: &str,
        env: BTreeMap<String, String>,
        workdir: String,
        resources: warren_runtime::Resources,
        network: warren_runtime::NetworkPolicy,
    ) -> Result<SandboxSpec, NodeError> {
        let root = Root::Template {
            name: template,
            warm: false,
        };
        self.prepare_for(id, root, env, workdir, resources, network)
    }

    /// [`Node::prepare`] for a warm pool's own sandbox, which gets no
    /// request until it is handed over: a spare root taken for it is
    /// refilled without waiting for one.
    pub fn prepare_warm(
        &self,
        id: &str,
        template: &str,
        env: BTreeMap<String, String>,
        workdir: String,
        resources: warren_runtime::Resources,
        network: warren_runtime::NetworkPolicy,
    ) -> Result<SandboxSpec, NodeError> {
        let root = Root::Template {
            name: template,
            warm: true,
        };
        self.prepare_for(id, root, env, workdir, resources, network)
    }

    /// [`Node::prepare`] for a root that another sandbox's snapshot is
    /// still making (a fork's child: [`Node::start_gated`]): nothing is made
    /// here but the run directory. The shared CA bundle is chosen from
    /// `source`'s root, which the child's is a snapshot of (its store file
    /// keeps its inode and times there).
    pub fn prepare_snapshot_of(
        &self,
        id: &str,
        source: &str,
        env: BTreeMap<String, String>,
        workdir: String,
        resources: warren_runtime::Resources,
        network: warren_runtime::NetworkPolicy,
    ) -> Result<SandboxSpec, NodeError> {
        self.prepare_for(
            id,
            Root::SnapshotOf(source),
            env,
            workdir,
            resources,
            network,
        )
    }

    fn prepare_for(
        &self,
        id: &str,
        root: Root<'_>,
        env: BTreeMap<String, String>,
        workdir: String,
        resources: warren_runtime::Resources,
        network: warren_runtime::NetworkPolicy,
    ) -> Result<SandboxSpec, NodeError> {
        let rootfs = self.pool.sandbox_path(id)?;
        // The root whose image store the CA bundle is chosen from.
        let store_root = match root {
            Root::Template { name, warm } => {
                self.make_root(id, name, warm, &rootfs)?;
                rootfs.clone()
            }
            Root::SnapshotOf(source) => self.pool.sandbox_path(source)?,
        };
        let run_dir = self.run_dir(id);
        self.reset_run_dir(&run_dir)?;
        let ca_bundle = self.ca_bundle(id, &store_root);
        Ok(SandboxSpec {
            id: id.to_string(),
            rootfs,
            run_dir,
            warren_binary: self.warren_binary.clone(),
            env,
            workdir,
            resources,
            network,
            extra_ca_pem: self.extra_ca.clone(),
            ca_bundle,
        })
    }

    /// Makes sandbox `id`'s root at `rootfs` from `template` unless it is
    /// there already (a restart of a stopped sandbox).
    fn make_root(
        &self,
        id: &str,
        template: &str,
        warm: bool,
        rootfs: &Path,
    ) -> Result<(), NodeError> {
        if self.pool.driver().is_volume(rootfs) {
            return Ok(());
        }
        let _busy = self.pool.busy();
        let source = self.template_path(template)?;
        if !self.pool.driver().is_volume(&source) {
            return Err(NodeError::TemplateNotFound(template.to_string()));
        }
        let awaited = (!warm).then_some(id);
        if !self
            .spares
            .take(&self.pool, template, &source, rootfs, awaited)
        {
            self.pool.driver().snapshot(&source, rootfs, false)?;
        }
        Ok(())
    }

    /// The shared CA bundle for the root `rootfs`, when sandboxes get extra
    /// certificates (`warren_runtime::trust::shared_bundle`); `None` leaves
    /// the sandbox's init to write its own.
    fn ca_bundle(&self, id: &str, rootfs: &Path) -> Option<PathBuf> {
        let extra = self.extra_ca.as_deref()?;
        warren_runtime::trust::shared_bundle(&self.ca_bundles, rootfs, extra)
            .inspect_err(|e| {
                tracing::warn!(sandbox = id, error = %e, "no shared CA bundle: the sandbox writes its own");
            })
            .ok()
            .flatten()
    }

    fn reset_run_dir(&self, run_dir: &Path) -> Result<(), NodeError> {
        self.remove_run_dir(run_dir)?;
        std::fs::create_dir_all(run_dir).map_err(|source| NodeError::RunDir {
            op: "create",
            path: run_dir.to_path_buf(),
            source,
        })
    }

    fn remove_run_dir(&self, run_dir: &Path) -> Result<(), NodeError> {
        warren_runtime::namespaces::remove_run_dir(run_dir).map_err(|source| NodeError::RunDir {
            op: "remove",
            path: run_dir.to_path_buf(),
            source,
        })
    }

    /// [`read_ahead`] in sandbox `id`'s root, on a thread of its own: for a
    /// sandbox about to start on a fork's or a restore's new snapshot, whose
    /// first command then finds its shell and libraries on their way. Called
    /// as soon as the root is in place: the reads go on while the sandbox
    /// starts (the start itself reads almost nothing), 1 to 2 ms off a
    /// fork's or a restore's first command here for 0.3 ms on its answer.
    /// A spare root is read ahead when it is made.
    pub fn read_root_ahead(&self, id: &str) {
        let Ok(root) = self.pool.sandbox_path(id) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || read_ahead(&root));
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "cannot start a read-ahead thread");
        }
    }

    /// Limits sandbox `id`'s disk to `disk_mb` MiB beyond its template
    /// (`None`: no limit). Applied at every start, so a restored or forked
    /// disk gets it too. The copy driver cannot enforce it (its volumes are
    /// plain directories); that is logged, not refused.
    pub fn limit_disk(&self, id: &str, disk_mb: Option<u64>) -> Result<(), NodeError> {
        let rootfs = self.pool.sandbox_path(id)?;
        let enforced = self
            .pool
            .driver()
            .limit_size(&rootfs, disk_mb.map(|mb| mb << 20))?;
        if !enforced && disk_mb.is_some() {
            tracing::debug!(sandbox = id, "the storage driver cannot limit disks");
        }
        Ok(())
    }

    /// Changes a running sandbox's cpu, memory and pids limits.
    pub fn set_resources(
        &self,
        id: &str,
        resources: &warren_runtime::Resources,
    ) -> Result<(), NodeError> {
        Ok(self.runtime.set_resources(id, resources)?)
    }

    /// Starts a prepared sandbox; `init_exists` gets its init's host pid as
    /// soon as there is one, before the agent is ready
    /// ([`Runtime::start_reporting`](warren_runtime::Runtime::start_reporting)).
    pub fn start(
        &self,
        spec: &SandboxSpec,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, NodeError> {
        let _busy = self.pool.busy();
        Ok(self.runtime.start_reporting(spec, init_exists)?)
    }

    /// [`Node::start`] of a sandbox whose root is still being made
    /// ([`warren_runtime::gate`]): it goes as far as it can without the
    /// root until `gate` opens.
    pub fn start_gated(
        &self,
        spec: &SandboxSpec,
        gate: warren_runtime::gate::RootGate,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, NodeError> {
        let _busy = self.pool.busy();
        Ok(self.runtime.start_gated(spec, gate, init_exists)?)
    }

    /// Stops a sandbox's processes; its disk is kept.
    pub fn stop(&self, id: &str) -> Result<(), NodeError> {
        Ok(self.runtime.stop(id)?)
    }

    /// Stops a sandbox if it runs and removes its disk and run directory.
    /// Removing what is already gone is not an error. The disk leaves its
    /// place at once and is deleted when the pool is quiet
    /// ([`Pool::discard`]).
    pub fn destroy(&self, id: &str) -> Result<(), NodeError> {
        self.runtime.stop(id)?;
        let rootfs = self.pool.sandbox_path(id)?;
        self.pool.discard(&rootfs)?;
        self.remove_run_dir(&self.run_dir(id))
    }

    /// Sandboxes whose init exited since the last call (see
    /// [`Runtime::exits`]: the cost is what exited, not what runs).
    pub fn exits(&self) -> Vec<String> {
        self.runtime.exits()
    }

    /// Watches the init of a sandbox found running after a restart, for
    /// [`Node::exits`].
    pub fn watch(&self, id: &str) {
        self.runtime.watch(id)
    }

    /// Host pid of the sandbox's init, if it runs.
    pub fn pid(&self, id: &str) -> Option<i32> {
        self.runtime.pid(id)
    }

    /// Freezes a sandbox.
    pub fn freeze(&self, id: &str) -> Result<(), NodeError> {
        Ok(self.runtime.freeze(id)?)
    }

    /// Thaws a frozen sandbox.
    pub fn thaw(&self, id: &str) -> Result<(), NodeError> {
        Ok(self.runtime.thaw(id)?)
    }

    /// Whether a sandbox's processes are frozen.
    pub fn is_frozen(&self, id: &str) -> bool {
        self.runtime.is_frozen(id)
    }

    /// What the sandbox's cgroups have counted (memory now, CPU time so far).
    pub fn usage(&self, id: &str) -> warren_runtime::cgroups::Usage {
        self.runtime.usage(id)
    }

    /// Applies an egress policy to a running sandbox.
    pub fn set_network(
        &self,
        id: &str,
        policy: &warren_runtime::NetworkPolicy,
    ) -> Result<(), NodeError> {
        Ok(self.runtime.set_network(id, policy)?)
    }

    /// Whether sandboxes can be given outbound access.
    pub fn egress_available(&self) -> bool {
        self.runtime.egress_available()
    }

    /// Ids of sandboxes the runtime finds running.
    pub fn running(&self) -> Vec<String> {
        self.runtime.running()
    }

    /// Ids of sandboxes with a disk or a run directory on this host: what a
    /// restart must account for.
    pub fn sandboxes_on_disk(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let sandboxes_dir = self.pool.root().join("sandboxes");
        for dir in [sandboxes_dir.as_path(), self.run_root.as_path()] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str() {
                    if ids::is_valid(IdKind::Sandbox, name) && !ids.iter().any(|i| i == name) {
                        ids.push(name.to_string());
                    }
                }
            }
        }
        ids
    }
}
