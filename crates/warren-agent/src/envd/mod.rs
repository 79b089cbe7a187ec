//! envd, E2B's in-sandbox API, served under [`warren_api::envd::AGENT_PREFIX`]
//! so that E2B's SDKs work against Warren unchanged. The server forwards the
//! SDKs' sandbox calls here, naming the user in
//! [`warren_api::envd::USER_HEADER`].
//!
//! - [`connect`]: the Connect RPC protocol (JSON codec, envelopes,
//!   end-of-stream, errors, deadlines, keepalives);
//! - [`process`]: `process.Process` over the agent's supervisor (managed
//!   processes, PTYs, output rings and followers);
//! - [`filesystem`]: `filesystem.Filesystem` over the jailed file code and
//!   its inotify watches;
//! - [`files`]: `GET`/`POST /files` and `GET /health`;
//! - [`body`]: every request body is read to its end before the answer
//!   (or the answer closes the connection).
//!
//! These routes are E2B's protocol, not Warren's API: they are not in the
//! agent's OpenAPI document. Every call runs as a user: the one the server
//! names, else `user` when the sandbox has one, else root. Relative paths
//! resolve against that user's home; what a call creates is owned by it.

pub mod body;
pub mod connect;
pub mod files;
pub mod filesystem;
pub mod process;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use warren_api::envd::{AGENT_PREFIX, DEFAULT_USER, USER_HEADER};

use self::connect::{Code, RpcError};
use crate::process::{lookup_user, User};
use crate::AppState;

/// What envd keeps between calls: the processes it started (for their tags
/// and configurations) and its polling watchers.
#[derive(Clone, Default)]
pub struct Envd {
    processes: process::Table,
    watchers: filesystem::Watchers,
}

/// The envd routes, under [`AGENT_PREFIX`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{AGENT_PREFIX}/process.Process/{{method}}"),
            post(process::handle),
        )
        .route(
            &format!("{AGENT_PREFIX}/filesystem.Filesystem/{{method}}"),
            post(filesystem::handle),
        )
        .route(
            &format!("{AGENT_PREFIX}/files"),
            get(files::download).post(files::upload),
        )
        .route(&format!("{AGENT_PREFIX}/health"), get(files::health))
        .layer(axum::middleware::from_fn(body::whole_body))
}

/// The user a call runs as: `named` (a query parameter of `/files`), else
/// the server's header, else `user` when it exists, else root.
pub fn caller(headers: &HeaderMap, named: Option<&str>) -> Result<User, RpcError> {
    let named = named.filter(|n| !n.is_empty()).or_else(|| {
        headers
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|n| !n.is_empty())
    });
    match named {
        Some(name) => lookup_user(name).map_err(|_| {
            RpcError::new(
                Code::Unauthenticated,
                format!("invalid username: '{name}': no such user in the sandbox"),
            )
        }),
        None => lookup_user(DEFAULT_USER)
            .or_else(|_| lookup_user("0"))
            .map_err(RpcError::from),
    }
}

/// A caller's path made absolute: `~` and relative paths are under the
/// user's home; `.` and `..` are resolved lexically, as envd does.
pub fn resolve(path: &str, user: &User) -> String {
    let home = if user.home.is_empty() {
        "/"
    } else {
        &user.home
    };
    let joined = if path.is_empty() || path == "~" {
        home.to_string()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{home}/{rest}")
    } else if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{home}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The uid and gid files created for `user` get.
pub fn owner(user: &User) -> Option<(u32, u32)> {
    Some((user.uid, user.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(home: &str) -> User {
        User {
            name: "user".into(),
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            home: home.into(),
        }
    }

    #[test]
    fn paths_resolve_against_the_home() {
        let u = user("/home/user");
        assert_eq!(resolve("a.txt", &u), "/home/user/a.txt");
        assert_eq!(resolve("~/x/../y/", &u), "/home/user/y");
        assert_eq!(resolve("~", &u), "/home/user");
        assert_eq!(resolve("", &u), "/home/user");
        assert_eq!(resolve("/etc/./hosts", &u), "/etc/hosts");
        assert_eq!(resolve("/../..", &u), "/");
        assert_eq!(resolve("x", &user("/")), "/x");
    }
}
