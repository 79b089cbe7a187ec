//! E2B's JSON shapes, as its SDKs send and read them (field names in
//! E2B's camelCase, `templateID`/`sandboxID` spelled as E2B spells them).
//! Unknown fields are ignored, as E2B's API does: newer SDKs send options
//! (`mcp`, `iam`, `volumeMounts`) this server has no counterpart for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /sandboxes` and `POST /v2/sandboxes`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    /// Template id or alias (`base`, `code-interpreter-v1`, a Warren
    /// template name, or a snapshot id).
    #[serde(rename = "templateID")]
    pub template_id: Option<String>,
    /// Time to live in seconds (default 300).
    pub timeout: Option<u64>,
    /// At the end of its time to live the sandbox is paused, not killed.
    pub auto_pause: Option<bool>,
    /// Paused sandboxes resume on their next request.
    pub auto_resume: Option<AutoResume>,
    /// Ignored: traffic to envd always needs its access token.
    pub secure: Option<bool>,
    /// `false`: no egress at all.
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
    /// Egress rules and whether ports are public.
    pub network: Option<NetworkConfig>,
    /// Free-form key/value pairs.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Environment of every process.
    pub env_vars: Option<BTreeMap<String, String>>,
}

/// `autoResume` of a create.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
pub struct AutoResume {
    /// Whether a paused sandbox wakes on its next request.
    #[serde(default)]
    pub enabled: bool,
}

/// E2B's network options (create and `PUT /sandboxes/{id}/network`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    /// Destinations admitted (with `denyOut: ["0.0.0.0/0"]`).
    pub allow_out: Option<Vec<String>>,
    /// Destinations refused; only everything (`0.0.0.0/0`) is supported.
    pub deny_out: Option<Vec<String>>,
    /// `false`: ports need the `e2b-traffic-access-token` header.
    pub allow_public_traffic: Option<bool>,
    /// `PUT /network` spells internet access here.
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
}

/// The answer of create, connect and fork: how to reach the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxCreated {
    /// The template it was made from.
    #[serde(rename = "templateID")]
    pub template_id: String,
    /// The sandbox id without `sbx_`.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    /// Always `warren`.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// [`warren_api::envd::ENVD_VERSION`].
    pub envd_version: String,
    /// The `X-Access-Token` of the sandbox plane.
    pub envd_access_token: String,
    /// The token of a sandbox whose ports are not public.
    pub traffic_access_token: Option<String>,
    /// Null: the SDK's own domain (or `E2B_SANDBOX_URL`).
    pub domain: Option<String>,
}

/// `GET /sandboxes/{id}` and the items of the lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxDetail {
    /// The template it was made from.
    #[serde(rename = "templateID")]
    pub template_id: String,
    /// The sandbox id without `sbx_`.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    /// Always `warren`.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// When it was created (RFC 3339).
    pub started_at: String,
    /// When its time to live ends (RFC 3339; far away when it has none).
    pub end_at: String,
    /// [`warren_api::envd::ENVD_VERSION`].
    pub envd_version: String,
    /// CPUs (rounded up).
    pub cpu_count: u64,
    /// Memory limit, MiB.
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
    /// Disk limit, MiB (0: none).
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u64,
    /// `running` or `paused`.
    pub state: String,
    /// Free-form key/value pairs.
    pub metadata: BTreeMap<String, String>,
    /// Only on `GET /sandboxes/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    /// Whether egress is open (only on `GET /sandboxes/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_internet_access: Option<bool>,
    /// Null: the SDK's own domain.
    pub domain: Option<String>,
    /// What the end of its time to live does (only on `GET /sandboxes/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// `lifecycle` of a sandbox's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// `kill` or `pause`.
    pub on_timeout: String,
    /// Whether a paused sandbox resumes on its next request.
    pub auto_resume: bool,
}

/// `POST /v2/sandboxes/{id}/connect` and `/sandboxes/{id}/resume`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ConnectSandbox {
    /// Time to live from now, in seconds (default: the one it was created
    /// with, else 300).
    pub timeout: Option<u64>,
}

/// `POST /sandboxes/{id}/timeout`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TimeoutRequest {
    /// Time to live from now, in seconds.
    pub timeout: u64,
}

/// `POST /sandboxes/{id}/snapshots`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SnapshotRequest {
    /// A name for the snapshot.
    pub name: Option<String>,
}

/// A snapshot (a Warren checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotInfo {
    /// The checkpoint id; usable as `templateID` of a create.
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    /// The checkpoint's name.
    pub names: Vec<String>,
}

/// `POST /sandboxes/{id}/fork`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ForkRequest {
    /// Time to live of the forks in seconds.
    pub timeout: Option<u64>,
    /// How many forks (default 1).
    pub count: Option<u32>,
}

/// One fork's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForkResult {
    /// The new sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxCreated>,
    /// Why it was not made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// One sample of a sandbox's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetric {
    /// When it was taken (RFC 3339).
    pub timestamp: String,
    /// The same in unix seconds.
    pub timestamp_unix: i64,
    /// CPUs of the sandbox.
    pub cpu_count: u64,
    /// CPU use in percent of its CPUs.
    pub cpu_used_pct: f64,
    /// Memory used, bytes.
    pub mem_used: u64,
    /// Memory limit, bytes.
    pub mem_total: u64,
    /// Page cache, bytes.
    pub mem_cache: u64,
    /// Disk used, bytes.
    pub disk_used: u64,
    /// Disk limit, bytes.
    pub disk_total: u64,
}

/// `GET /sandboxes/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxesWithMetrics {
    /// Sandbox id → its latest sample.
    pub sandboxes: BTreeMap<String, SandboxMetric>,
}

/// One log line of the old shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxLog {
    /// RFC 3339.
    pub timestamp: String,
    /// The line.
    pub line: String,
}

/// One structured log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxLogEntry {
    /// RFC 3339.
    pub timestamp: String,
    /// The message.
    pub message: String,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// Extra fields.
    pub fields: BTreeMap<String, String>,
}

/// `GET /sandboxes/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxLogs {
    /// Lines.
    pub logs: Vec<SandboxLog>,
    /// The same as entries.
    pub log_entries: Vec<SandboxLogEntry>,
}

/// `GET /v2/sandboxes/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxLogsV2 {
    /// Entries.
    pub logs: Vec<SandboxLogEntry>,
}

/// E2B's error body: the HTTP status again, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong.
    pub message: String,
}
