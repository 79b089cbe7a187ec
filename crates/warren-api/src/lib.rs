//! Wire types shared by every Warren component.
//!
//! - [`problem`]: the RFC 7807 error body and its stable [`problem::ErrorCode`]s.
//! - [`ids`]: prefixed random identifiers (`sbx_`, `proc_`, ...).
//! - [`agent`]: request and response bodies of the in-sandbox agent API.
//! - [`server`]: request and response bodies of the control plane.
//! - [`session`]: coding-agent sessions, their events and transcripts.
//! - [`checkpoint`]: checkpoints, restore, forks, patches (time travel).
//! - [`desktop`]: the agent's desktop API (display, input, windows, screenshots).
//! - [`envd`]: constants of the E2B-compatible surface (envd version, port, headers).
//! - `extract` (feature `axum`): axum extractors whose rejections are problems.
//!
//! Nothing here performs I/O; the crate is safe to use from clients, the
//! server and the agent alike.

pub mod agent;
pub mod checkpoint;
pub mod desktop;
pub mod envd;
#[cfg(feature = "axum")]
pub mod extract;
pub mod ids;
pub mod problem;
pub mod server;
pub mod session;

pub use problem::{ErrorCode, Problem};

/// The version every component reports in `/v1/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
