//! What a sandbox is made of, as the runtime sees it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// CPU, memory and pid limits. Zero or absent means the runtime default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// CPUs (fractional allowed), enforced by CFS quota.
    pub cpus: f64,
    /// Memory limit in MiB (swap included where the host allows).
    pub memory_mb: u64,
    /// Maximum number of tasks.
    pub pids: u64,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpus: 1.0,
            memory_mb: 512,
            pids: 512,
        }
    }
}

/// Everything needed to start one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// `sbx_…`; also the hostname and the cgroup name.
    pub id: String,
    /// The sandbox's writable root file system (a subvolume or directory).
    pub rootfs: PathBuf,
    /// Host directory bind-mounted at `/run/warren` inside; the agent's
    /// socket is `run_dir/agent.sock` on the host.
    pub run_dir: PathBuf,
    /// The `warren` binary on the host, bind-mounted read-only into the
    /// sandbox and run as PID 1 (`warren agent`).
    pub warren_binary: PathBuf,
    /// Default environment of every process in the sandbox.
    pub env: BTreeMap<String, String>,
    /// Working directory of the agent inside the sandbox.
    pub workdir: String,
    /// Limits.
    pub resources: Resources,
    /// Egress policy; specs written before networking existed have none
    /// and get loopback only.
    #[serde(default)]
    pub network: crate::network::NetworkPolicy,
}

/// First host uid (and gid) of the range sandbox ids map onto: uid 0 in a
/// sandbox is this uid on the host. All sandboxes share the range (templates
/// are shifted into it once, at build time); namespaces keep them apart.
pub const SANDBOX_ID_BASE: u32 = 100_000;

/// Number of ids mapped into each sandbox (0..65535 inside).
pub const SANDBOX_ID_COUNT: u32 = 65_536;
