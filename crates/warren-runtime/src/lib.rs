//! Isolation and storage for sandboxes. Knows nothing of HTTP, tenants or the
//! database: the server hands it a [`SandboxSpec`] and a storage path and gets
//! back a running, isolated `warren agent`.
//!
//! The two seams are traits:
//! - [`Runtime`]: starts, stops, freezes and finds sandboxes
//!   ([`namespaces::NamespaceRuntime`] today; a micro-VM later).
//! - [`storage::StorageDriver`]: templates, writable roots and read-only
//!   snapshots ([`storage::btrfs::BtrfsDriver`], [`storage::copy::CopyDriver`]).
//!
//! Layout: [`spec`] (what a sandbox is made of), [`namespaces`] (clone, mounts,
//! pivot_root, uid maps, capabilities, seccomp; the code that runs in the
//! single-threaded `warren __sandbox-init` helper), [`cgroups`] (v2 and v1/hybrid),
//! [`storage`] (drivers and the btrfs pool), [`gate`] (a start begun before
//! its root exists), [`template`] (debootstrap, spec
//! builds, OCI import), [`network`] (egress policies: veths, nftables, the
//! sandboxes' resolver).

pub mod cgroups;
pub mod gate;
pub mod namespaces;
pub mod network;
pub mod spec;
pub mod storage;
pub mod template;
pub mod trust;

pub use network::{Egress, NetworkPolicy};
pub use spec::{
    namespace_owner, Resources, SandboxSpec, OWNER_UID_BASE, OWNER_UID_COUNT, SANDBOX_ID_BASE,
    SANDBOX_ID_COUNT,
};

/// Errors of the runtime seam.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The sandbox could not be started; `stage` names the step that failed.
    #[error("starting sandbox {id} failed at {stage}: {reason}")]
    Start {
        /// Sandbox id.
        id: String,
        /// Step that failed (e.g. "clone", "pivot_root", "cgroup").
        stage: String,
        /// What the failing step reported.
        reason: String,
    },
    /// An operation on cgroups failed.
    #[error("cgroup {op} for {id}: {source}")]
    Cgroup {
        /// Operation.
        op: &'static str,
        /// Sandbox id.
        id: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Requested resources exceed what the host has.
    #[error("{0}")]
    ResourcesTooLarge(String),
    /// Requested resources are malformed or too small to run a sandbox.
    #[error("{0}")]
    InvalidResources(String),
    /// No running sandbox with this id.
    #[error("sandbox {0} is not running")]
    NotRunning(String),
    /// A sandbox with this id is already running.
    #[error("sandbox {0} is already running")]
    AlreadyRunning(String),
    /// The sandbox's network could not be set up, changed or removed.
    #[error("network of sandbox {id}: {source}")]
    Network {
        /// Sandbox id.
        id: String,
        /// Cause.
        source: network::NetworkError,
    },
    /// The policy asks for an interface and this runtime has no network.
    #[error("sandbox {0} asks for outbound network, which this runtime does not provide")]
    NetworkUnavailable(String),
    /// A connection to a sandbox's agent socket reached something other than
    /// that sandbox's agent (the sandbox tampered with its run directory).
    #[error("the agent socket of sandbox {id} is not its agent: {reason}")]
    UntrustedAgent {
        /// Sandbox id.
        id: String,
        /// What was found instead.
        reason: String,
    },
}

/// A started sandbox as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Started {
    /// Host pid of the sandbox's PID 1 (the agent).
    pub pid: i32,
    /// The agent's unix socket on the host side.
    pub agent_socket: std::path::PathBuf,
}

/// The isolation seam: how sandboxes are run.
///
/// Implementations must not make sandboxes children of the calling process:
/// a `kill -9` of the server leaves them running, and [`Runtime::running`]
/// finds them again after a restart.
pub trait Runtime: Send + Sync + 'static {
    /// Starts the sandbox and returns once its agent accepts connections on
    /// `spec.run_dir/agent.sock`.
    fn start(&self, spec: &SandboxSpec) -> Result<Started, RuntimeError> {
        self.start_reporting(spec, &mut |_| {})
    }
    /// [`Runtime::start`], calling `init_exists` with the host pid of the
    /// sandbox's PID 1 as soon as it exists, before the sandbox is set up
    /// and its agent is ready (the server records the sandbox as running
    /// meanwhile). A start that fails after that call removes the sandbox as
    /// any failed start does.
    fn start_reporting(
        &self,
        spec: &SandboxSpec,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, RuntimeError>;
    /// [`Runtime::start_reporting`] begun before the sandbox's root exists
    /// ([`gate`]): the start goes only as far as it can without the root
    /// until `gate` opens, and fails there if the root will not be made
    /// (removing what it made, as any failed start does). The default waits
    /// for the gate, then starts.
    fn start_gated(
        &self,
        spec: &SandboxSpec,
        gate: gate::RootGate,
        init_exists: &mut dyn FnMut(i32),
    ) -> Result<Started, RuntimeError> {
        if !gate.wait() {
            return Err(RuntimeError::Start {
                id: spec.id.clone(),
                stage: "root".into(),
                reason: "the sandbox's root was not made".into(),
            });
        }
        self.start_reporting(spec, init_exists)
    }
    /// Kills every process of the sandbox and removes its cgroups and mounts.
    /// Stopping a sandbox that is not running is not an error.
    fn stop(&self, id: &str) -> Result<(), RuntimeError>;
    /// Host pid of the sandbox's PID 1 if it is running.
    fn pid(&self, id: &str) -> Option<i32>;
    /// Ids of the sandboxes whose PID 1 has exited since the last call, each
    /// once (the reaper's check; it costs what exited, not what runs).
    /// Covers every sandbox this runtime started and every one it was asked
    /// to [`Runtime::watch`]; a sandbox being stopped is not reported.
    fn exits(&self) -> Vec<String>;
    /// Watches the PID 1 of the running sandbox `id`, which this runtime did
    /// not start (found running after a restart), for [`Runtime::exits`]; if
    /// it is gone already, the next call reports it.
    fn watch(&self, id: &str);
    /// Freezes every process of the sandbox (cgroup freezer).
    fn freeze(&self, id: &str) -> Result<(), RuntimeError>;
    /// Thaws a frozen sandbox.
    fn thaw(&self, id: &str) -> Result<(), RuntimeError>;
    /// Whether the sandbox's processes are frozen (or being frozen): after a
    /// crash in the middle of a checkpoint, the freezer stays on until
    /// someone thaws it.
    fn is_frozen(&self, id: &str) -> bool;
    /// Ids of every sandbox this runtime finds running on the machine (after
    /// a restart: the ones to reattach).
    fn running(&self) -> Vec<String>;
    /// Applies an egress policy to the running sandbox `id` without
    /// restarting it (idempotent: a restarted server applies every running
    /// sandbox's stored policy again).
    fn set_network(&self, id: &str, policy: &NetworkPolicy) -> Result<(), RuntimeError>;
    /// Whether sandboxes can be given outbound access at all.
    fn egress_available(&self) -> bool;
    /// Changes the cpu, memory and pids limits of the running sandbox `id`
    /// (zeros are the defaults, as at start).
    fn set_resources(&self, id: &str, resources: &Resources) -> Result<(), RuntimeError>;
    /// What the sandbox's cgroups have counted (memory now, CPU time so
    /// far); nothing by default.
    fn usage(&self, _id: &str) -> cgroups::Usage {
        cgroups::Usage::default()
    }
    /// Checks that `connection`, just made to the sandbox's agent socket,
    /// reached that sandbox's own agent. A sandbox's root owns its run
    /// directory and can replace `agent.sock` with a symlink to another
    /// sandbox's socket (or a host socket), so callers check every new
    /// connection before sending anything on it.
    fn verify_agent(
        &self,
        id: &str,
        connection: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), RuntimeError>;
    /// A connection to the sandbox's agent that its start made and checked
    /// (the listener is the sandbox's PID 1) and nobody has used yet, if it
    /// is still open: the first request to a new sandbox goes on it instead
    /// of connecting and checking again. Handed out once; a stop or the
    /// next start drops it. None by default.
    fn take_agent_connection(&self, _id: &str) -> Option<std::os::unix::net::UnixStream> {
        None
    }
}
