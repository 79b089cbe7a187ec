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
    /// The `warren` binary on the host, whose zygote (or helper) starts the
    /// sandbox and whose agent its init becomes (nothing of it is mounted
    /// in the sandbox).
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
    /// Extra CA certificates (PEM) the sandbox's programs trust besides its
    /// image's store (see [`crate::trust`]).
    #[serde(default)]
    pub extra_ca_pem: Option<String>,
    /// The CA bundle bound read-only at `/run/warren/ca-bundle.pem`: a host
    /// file shared by every sandbox whose image store is the same
    /// ([`crate::trust::shared_bundle`]). Without it, a sandbox with
    /// `extra_ca_pem` has its init write its own.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
}

/// First host uid (and gid) of the range sandbox ids map onto: uid 0 in a
/// sandbox is this uid on the host. All sandboxes share the range (templates
/// are shifted into it once, at build time); namespaces keep them apart.
pub const SANDBOX_ID_BASE: u32 = 100_000;

/// Number of ids mapped into each sandbox (0..65535 inside).
pub const SANDBOX_ID_COUNT: u32 = 65_536;

/// First host uid of the range that owns sandboxes' user namespaces (see
/// [`namespace_owner`]). No process runs as these uids; they only carry
/// the kernel's per-user counts.
pub const OWNER_UID_BASE: u32 = 0x4000_0000;

/// Number of uids in the owner range.
pub const OWNER_UID_COUNT: u32 = 0x2000_0000;

/// The host uid that owns sandbox `id`'s user namespace.
///
/// The kernel charges per-user counts (inotify instances and watches, user
/// namespaces, message queues, ...) made inside a user namespace to its
/// owner at every level above it. Owned by host root, every sandbox would
/// share root's counts with root and with every other sandbox: one holding
/// 128 inotify instances made `inotify_init1` fail for all of them. Each
/// sandbox's namespace is owned by a uid of its own instead, picked from
/// [`OWNER_UID_BASE`]'s range by a hash of the id: two live sandboxes share
/// counts only if their ids collide there (about one pair in a million at
/// 500 sandboxes), and never with host root. (Namespaces made ahead of a
/// start, `namespaces::shells`, get a uid of the range at random: the same
/// odds.)
pub fn namespace_owner(id: &str) -> u32 {
    // FNV-1a: stable across builds and machines.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    OWNER_UID_BASE + (hash % u64::from(OWNER_UID_COUNT)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_owners_are_stable_spread_and_outside_the_sandbox_ids() {
        assert_eq!(
            namespace_owner("sbx_abc"),
            namespace_owner("sbx_abc"),
            "stable"
        );
        let owners: std::collections::HashSet<u32> = (0..1000)
            .map(|i| namespace_owner(&format!("sbx_{i:020}")))
            .collect();
        assert_eq!(owners.len(), 1000, "no collision among 1000 ids");
        for owner in owners {
            assert!((OWNER_UID_BASE..OWNER_UID_BASE + OWNER_UID_COUNT).contains(&owner));
            assert!(owner >= SANDBOX_ID_BASE + SANDBOX_ID_COUNT, "{owner}");
            assert!(
                owner < u32::MAX >> 1,
                "{owner} fits tools that read uids as i32"
            );
        }
    }
}
