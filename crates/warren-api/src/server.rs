//! Request and response bodies of the control plane (`warren server`):
//! sandboxes, tenants, API keys and templates. The agent routes a sandbox
//! exposes under `/v1/sandboxes/{id}/...` use the types of [`crate::agent`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Lifecycle state of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    /// Its disk and processes are being set up; calls on it answer 409.
    Creating,
    /// Its agent answers; commands can run.
    Running,
    /// No process runs; the disk is kept. `start` brings it back.
    Stopped,
    /// Asleep: no process runs and it holds no memory; its disk is kept.
    /// `wake` (or, with `auto_wake`, any agent call) starts it again.
    Hibernated,
    /// It failed to start or died unexpectedly; `start` retries, `delete` removes it.
    Error,
    /// Being destroyed; gone (404) moments later.
    Destroyed,
}

impl SandboxState {
    /// The snake_case name, as on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Creating => "creating",
            SandboxState::Running => "running",
            SandboxState::Stopped => "stopped",
            SandboxState::Hibernated => "hibernated",
            SandboxState::Error => "error",
            SandboxState::Destroyed => "destroyed",
        }
    }

    /// Every state, in lifecycle order.
    pub const ALL: [SandboxState; 6] = [
        SandboxState::Creating,
        SandboxState::Running,
        SandboxState::Stopped,
        SandboxState::Hibernated,
        SandboxState::Error,
        SandboxState::Destroyed,
    ];
}

impl std::str::FromStr for SandboxState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SandboxState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown sandbox state {s:?}"))
    }
}

/// Requested limits; an absent field takes the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesRequest {
    /// CPUs, fractional allowed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory limit in MiB (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Maximum number of tasks (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Most the sandbox's disk may take beyond its template, in MiB
    /// (default: the server's `--default-disk-mb`); writes past it fail
    /// with "Disk quota exceeded". Enforced by the btrfs storage driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mb: Option<u64>,
}

/// The limits a sandbox runs with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxResources {
    /// CPUs (fractional allowed).
    pub cpus: f64,
    /// Memory limit in MiB.
    pub memory_mb: u64,
    /// Maximum number of tasks.
    pub pids: u64,
    /// Most the disk may take beyond its template, MiB; null for no limit.
    pub disk_mb: Option<u64>,
}

/// Outbound network policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Egress {
    /// The public internet (never the host, other sandboxes, link-local
    /// (cloud metadata), loopback, multicast or private ranges).
    Allow,
    /// Nothing but what `allow` names; with an empty `allow`, loopback only.
    #[default]
    Deny,
}

/// Network settings of a sandbox, as shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    /// `allow` (the public internet) or `deny`.
    #[serde(default)]
    pub egress: Egress,
    /// With `egress: "deny"`: the only destinations admitted. IPv4
    /// addresses, IPv4 CIDRs, host names (exactly that name) and `*.domain`
    /// (any name under it); names are admitted through the sandbox's
    /// resolver. Link-local (cloud metadata), loopback and multicast space
    /// is never reached, and private ranges only on a server started with
    /// `--allow-private-egress`: a CIDR wholly inside such space is a 400,
    /// a wider one (`0.0.0.0/0`) opens only what may be reached.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Network settings asked for on create or `PATCH` (the whole policy is
/// replaced). `egress` defaults to `deny` when `allow` is given and to the
/// server's default (`allow` unless configured otherwise) when not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkRequest {
    /// `allow` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Egress>,
    /// Destinations admitted under `egress: "deny"`: IPv4 addresses and
    /// CIDRs, host names and `*.domain` wildcards (at most 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
}

/// `POST /v1/sandboxes`: every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    /// Template name (default `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Idle timeout: with no API activity for this long the sandbox is
    /// stopped (default 300; 0 disables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Lifetime: the sandbox is destroyed this long after creation (plus
    /// extensions). Absent: it lives until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Default environment of every process in the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envs: Option<BTreeMap<String, String>>,
    /// Free-form key/value pairs, filterable with `metadata.KEY=VALUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Key/value labels, filterable with `label=KEY=VALUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// CPU, memory and pid limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesRequest>,
    /// Network policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRequest>,
    /// Take a checkpoint after every `processes/run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_checkpoint: Option<bool>,
    /// Start from this checkpoint's disk instead of the template's (its
    /// environment and working directory too; `envs` go over them). The
    /// checkpoint's patches run before the sandbox is handed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_checkpoint: Option<String>,
    /// How many automatic checkpoints to keep, newest first (1 to 10000,
    /// default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_checkpoint_keep: Option<u32>,
    /// While hibernated, a call to an agent route wakes the sandbox first
    /// (default false: such calls answer 409); and the idle timeout
    /// hibernates it instead of stopping it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_wake: Option<bool>,
}

/// A sandbox as `GET /v1/sandboxes/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sandbox {
    /// `sbx_…`.
    pub id: String,
    /// Lifecycle state.
    pub state: SandboxState,
    /// The template its disk was made from.
    pub template: String,
    /// Owning tenant; null for sandboxes created with the admin key.
    pub tenant_id: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// When the sandbox is destroyed (creation + `ttl_secs` + extensions);
    /// null when it has no ttl.
    pub expires_at: Option<String>,
    /// Last API activity (RFC 3339 UTC); the idle timeout counts from here.
    pub last_active_at: String,
    /// Idle timeout in seconds (0: never stopped for idleness).
    pub timeout_secs: u64,
    /// Lifetime in seconds, if any.
    pub ttl_secs: Option<u64>,
    /// Free-form key/value pairs.
    pub metadata: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Limits.
    pub resources: SandboxResources,
    /// Network policy.
    pub network: NetworkPolicy,
    /// Whether a checkpoint is taken after every `processes/run`.
    pub auto_checkpoint: bool,
    /// How many automatic checkpoints are kept.
    pub auto_checkpoint_keep: u32,
    /// Whether an agent call wakes the sandbox while it is hibernated.
    pub auto_wake: bool,
    /// The checkpoint its disk was made from, if any.
    pub from_checkpoint: Option<String>,
}

/// A page of sandboxes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SandboxList {
    /// Sandboxes in creation order.
    pub items: Vec<Sandbox>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/events`: a sandbox's state changed (the SSE event `sandbox`),
/// sent once the change is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SandboxEvent {
    /// `sbx_…`.
    pub sandbox_id: String,
    /// Its new state; `destroyed` when it is gone.
    pub state: SandboxState,
    /// When the change was committed (RFC 3339 UTC, milliseconds).
    pub time: String,
    /// The owning tenant, on the admin key's stream only (absent there too
    /// for the admin's own sandboxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// `GET /v1/events`: the subscriber fell behind and `missed` events of its
/// stream were dropped (the SSE event `lagged`); the stream goes on, and
/// the subscriber should list its sandboxes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventsLagged {
    /// How many events were dropped.
    pub missed: u64,
}

/// `PATCH /v1/sandboxes/{id}`: given fields replace the stored ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSandboxRequest {
    /// New metadata (replaces all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// New labels (replace all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// New idle timeout in seconds (0 disables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// New network policy, applied to a running sandbox at once (no
    /// restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRequest>,
}

/// Who may open a preview URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewAuth {
    /// Anyone with the URL.
    Public,
    /// Only requests carrying the preview's token (`X-Warren-Preview-Token`
    /// header, `?token=`, or the cookie set after a `?token=` visit).
    #[default]
    Token,
}

/// `POST /v1/sandboxes/{id}/previews`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePreviewRequest {
    /// The TCP port inside the sandbox (1 to 65535).
    pub port: u16,
    /// `public` or `token` (default `token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<PreviewAuth>,
    /// The domain under which the URL is made (`{port}-{id}.{domain}`);
    /// default: the server's `--preview-domain`. Point a wildcard DNS
    /// record (and TLS) of this domain at the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// A preview URL: a sandbox port reachable through the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preview {
    /// `prv_…`.
    pub id: String,
    /// The sandbox.
    pub sandbox_id: String,
    /// The port inside the sandbox.
    pub port: u16,
    /// Who may open it.
    pub auth: PreviewAuth,
    /// The domain of its URL.
    pub domain: String,
    /// Open this: `{scheme}://{port}-{id without sbx_}.{domain}[:{port}]/`.
    pub url: String,
    /// The same preview by path, for hosts without wildcard DNS.
    pub path_url: String,
    /// The token of a `token` preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// The previews of a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviewList {
    /// In port order.
    pub items: Vec<Preview>,
}

/// `POST /v1/sandboxes/{id}/extend`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// Seconds added to `expires_at` (counted from now if it has passed);
    /// the idle clock restarts too.
    pub seconds: u64,
}

/// `POST /v1/admin/tenants`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Unique name, 1 to 64 characters.
    pub name: String,
    /// Most sandboxes the tenant may have creating or running at once; null
    /// for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sandboxes: Option<u32>,
    /// Most sandboxes the tenant may have at all, stopped and hibernated
    /// ones included; null for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_sandboxes: Option<u32>,
    /// Most memory (MiB) over the tenant's sandboxes holding compute; null
    /// for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// Most CPUs over the tenant's sandboxes holding compute; null for no
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpus: Option<f64>,
    /// Most disk (MiB) over all the tenant's sandboxes, stopped ones
    /// included: the sum of their `resources.disk_mb`; null for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disk_mb: Option<u64>,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    /// `ten_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Quota on creating and running sandboxes; null for no limit.
    pub max_sandboxes: Option<u32>,
    /// Quota on all sandboxes, stopped ones included; null for no limit.
    pub max_total_sandboxes: Option<u32>,
    /// Quota on memory (MiB) of sandboxes holding compute; null for none.
    pub max_memory_mb: Option<u64>,
    /// Quota on CPUs of sandboxes holding compute; null for no limit.
    pub max_cpus: Option<f64>,
    /// Quota on the disk (MiB, the sum of `resources.disk_mb`) of all
    /// sandboxes; null for no limit.
    #[serde(default)]
    pub max_disk_mb: Option<u64>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// A page of tenants.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    /// Tenants in creation order.
    pub items: Vec<Tenant>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The form of a new API key's secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// `wsk_` and 43 base64url characters.
    #[default]
    Warren,
    /// `e2b_` and 64 lowercase hex digits: what E2B's SDKs accept as
    /// `E2B_API_KEY`, and a Warren key all the same.
    E2b,
}

/// `POST /v1/admin/tenants/{id}/keys` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// `warren` (default) or `e2b`.
    #[serde(default)]
    pub format: KeyFormat,
}

/// A new API key: the only time the key itself is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    /// `key_…`, used to revoke it.
    pub id: String,
    /// The secret, for `Authorization: Bearer`. Only its hash is stored.
    pub key: String,
    /// The tenant it acts for.
    pub tenant_id: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// An API key as listed (without the secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyInfo {
    /// `key_…`.
    pub id: String,
    /// The tenant it acts for.
    pub tenant_id: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// The keys of one tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    /// Keys in creation order.
    pub items: Vec<ApiKeyInfo>,
}

/// A template sandboxes are created from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Template {
    /// Name, as given to `POST /v1/sandboxes`.
    pub name: String,
    /// Working directory of processes in sandboxes made from it.
    pub workdir: String,
    /// Default environment of sandboxes made from it.
    pub env: BTreeMap<String, String>,
    /// The command its sandboxes start on every boot (a managed process),
    /// if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<TemplateStart>,
    /// RFC 3339 UTC, when it was built.
    pub created_at: String,
    /// What the build that answers with this template did, one entry per
    /// layer (only in the answer of a build).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<TemplateLayer>,
}

/// A template's start command: exactly one of `cmd` and `argv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateStart {
    /// A shell command line, run by `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// A program and its arguments, exec'd directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The user it runs as (root when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The port it accepts connections on once ready; a sandbox's boot
    /// waits for it (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_port: Option<u16>,
}

/// One layer of a template build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateLayer {
    /// The step, e.g. `run make install` or `copy app.py /srv/app`.
    pub step: String,
    /// Whether it came from the layer cache.
    pub cached: bool,
}

/// Query of `POST /v1/templates/{name}/build` with a build context.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateBuildQuery {
    /// Path of the Dockerfile in the build context (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build arguments, a JSON object of strings (`{"PY":"3.11"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_args: Option<String>,
}

/// Every template on the host.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateList {
    /// Templates by name.
    pub items: Vec<Template>,
}

/// One template's warm pool: sandboxes started ahead of creates
/// (`GET /v1/admin/pools`, `PUT /v1/admin/pools/{template}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WarmPool {
    /// The template.
    pub template: String,
    /// How many ready sandboxes the server keeps (0: no pool).
    pub size: u32,
    /// How many are ready now.
    pub ready: u32,
}

/// Every template's warm pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WarmPoolList {
    /// Pools by template name.
    pub items: Vec<WarmPool>,
}

/// `PUT /v1/admin/pools/{template}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWarmPoolRequest {
    /// Ready sandboxes to keep; 0 turns the pool off and destroys its
    /// ready sandboxes.
    pub size: u32,
}
