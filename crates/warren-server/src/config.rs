//! Server configuration: what `warren server` flags set.

use std::path::PathBuf;
use std::time::Duration;

use warren_runtime::storage::Driver;
use warren_runtime::template::BaseOptions;
use warren_runtime::Resources;

/// Everything the server needs to know at start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `HOST:PORT` to serve the API on.
    pub listen: String,
    /// Database, admin key, storage pool and run directories live here.
    pub state_dir: PathBuf,
    /// Storage driver of the pool.
    pub storage: Driver,
    /// The admin key from the environment; `None`: read or generate
    /// `STATE_DIR/admin.key`.
    pub admin_key: Option<String>,
    /// The `warren` binary: run as every sandbox's agent, and as the
    /// single-threaded helper that creates containers.
    pub warren_binary: PathBuf,
    /// Name of the cgroup every sandbox's cgroup is created under. Two
    /// servers on one machine need different ones, or each would take the
    /// other's sandboxes for orphans.
    pub cgroup_parent: String,
    /// How the `base` template is built on first use (suite, mirror,
    /// debootstrap's package cache).
    pub base_template: BaseOptions,
    /// The sandbox network (egress); `None`: every sandbox has loopback
    /// only.
    pub network: Option<warren_runtime::network::NetworkConfig>,
    /// How preview URLs are made.
    pub previews: crate::previews::PreviewSettings,
    /// Extra CA certificates (PEM) every sandbox and template build trusts
    /// besides its image's store: a TLS-intercepting proxy's, say.
    pub extra_ca_pem: Option<String>,
    /// Ready sandboxes kept per template (the warm pool; 0 or absent: none).
    pub pools: std::collections::BTreeMap<String, u32>,
    /// Limits and timings.
    pub limits: Limits,
}

/// Limits on requests and the timing of background work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON body of a control-plane route (agent routes stream their
    /// bodies through and are limited by the agent).
    pub max_json_body: usize,
    /// Idle timeout of sandboxes that do not ask for one.
    pub default_timeout_secs: u64,
    /// Largest idle timeout.
    pub max_timeout_secs: u64,
    /// Largest ttl, and largest single extension.
    pub max_ttl_secs: u64,
    /// Resources of sandboxes that do not ask for some.
    pub default_resources: Resources,
    /// Most CPUs one sandbox may ask for (`None`: the host's).
    pub max_cpus: Option<f64>,
    /// Most memory (MiB) one sandbox may ask for (`None`: half the host's).
    pub max_memory_mb: Option<u64>,
    /// Most tasks one sandbox may ask for.
    pub max_pids: u64,
    /// Disk limit (MiB beyond the template) of sandboxes that ask for none
    /// (`None`: no limit).
    pub default_disk_mb: Option<u64>,
    /// Most disk one sandbox may ask for, MiB (`None`: no maximum).
    pub max_disk_mb: Option<u64>,
    /// Egress of sandboxes that do not ask for a policy (`deny` when the
    /// server has no outbound network).
    pub default_egress: warren_runtime::Egress,
    /// Whether allow-lists may name private ranges (`--allow-private-egress`;
    /// the runtime's network is told the same).
    pub allow_private_egress: bool,
    /// Most entries in `metadata`, `labels` or `envs`.
    pub max_map_entries: usize,
    /// Longest key of `metadata`, `labels` or `envs`.
    pub max_key_len: usize,
    /// Longest value of `metadata`, `labels` or `envs`.
    pub max_value_len: usize,
    /// Most requests in flight (agent calls, open streams and terminals,
    /// preview requests) on one sandbox.
    pub max_requests_per_sandbox: usize,
    /// Most requests in flight over all of one tenant's sandboxes.
    pub max_requests_per_tenant: usize,
    /// How often the reaper flushes activity and looks for idle and expired
    /// sandboxes.
    pub reaper_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_body: 1 << 20,
            default_timeout_secs: 300,
            max_timeout_secs: 30 * 24 * 3600,
            max_ttl_secs: 365 * 24 * 3600,
            default_resources: Resources::default(),
            max_cpus: None,
            max_memory_mb: None,
            max_pids: 4096,
            default_disk_mb: Some(10 * 1024),
            max_disk_mb: None,
            default_egress: warren_runtime::Egress::Allow,
            allow_private_egress: false,
            max_map_entries: 256,
            max_key_len: 256,
            max_value_len: 16 * 1024,
            max_requests_per_sandbox: 256,
            max_requests_per_tenant: 1024,
            reaper_interval: Duration::from_secs(1),
        }
    }
}
