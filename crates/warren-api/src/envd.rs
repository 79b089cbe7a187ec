//! Constants of the E2B-compatible surface shared by the server (the E2B
//! control-plane routes) and the agent (envd, the in-sandbox API).
//!
//! Requests for the sandbox plane reach the server with an `E2b-Sandbox-Id`
//! header; the server forwards those for [`ENVD_PORT`] to the sandbox's agent
//! under [`AGENT_PREFIX`], with the user the SDK named in [`USER_HEADER`].

/// The envd version Warren reports (`envdVersion`). E2B's SDKs turn features
/// off for older versions; this is the newest version either SDK checks.
pub const ENVD_VERSION: &str = "0.6.4";

/// The port E2B's SDKs address envd on (`E2b-Sandbox-Port`).
pub const ENVD_PORT: u16 = 49983;

/// Where the agent serves envd's routes (`/envd/process.Process/Start`,
/// `/envd/files`, `/envd/health`, ...).
pub const AGENT_PREFIX: &str = "/envd";

/// Header by which the server tells the agent which user an envd request
/// runs as (decoded from the SDK's `Authorization: Basic base64(user:)`).
/// Absent: the template's default user (`user` where it exists, else root).
pub const USER_HEADER: &str = "x-warren-envd-user";

/// The user E2B's SDKs expect commands to run as when none is named.
pub const DEFAULT_USER: &str = "user";
