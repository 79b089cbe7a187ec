//! `filesystem.Filesystem`: E2B's file service over the jailed file code
//! (`crate::files`) and its inotify watches.
//!
//! `WatchDir` streams a watch's events; the polling trio (`CreateWatcher`,
//! `GetWatcherEvents`, `RemoveWatcher`) keeps a watch running in a task that
//! buffers its events, at most [`MAX_WATCHERS`] watchers and
//! [`MAX_BUFFERED`] events each (older events are dropped past that).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use warren_api::agent::{MoveRequest, WatchEventKind};

use super::connect::{self, Code, Envelopes, RpcError};
use super::{caller, owner, resolve};
use crate::files::{EntryDetails, EntryKind, Files, WatchMessage};
use crate::process::IdNames;
use crate::AppState;

/// Most polling watchers at once.
pub const MAX_WATCHERS: usize = 32;
/// Most events a polling watcher buffers between two polls.
pub const MAX_BUFFERED: usize = 1_000;
/// Most entries one `ListDir` returns.
const MAX_LIST: usize = 100_000;

/// The polling watchers, by id.
#[derive(Clone, Default)]
pub struct Watchers {
    inner: Arc<Mutex<HashMap<String, Watcher>>>,
    next: Arc<AtomicU64>,
}

struct Watcher {
    events: Arc<Mutex<VecDeque<Value>>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // The task owns the watch stream; aborting it releases the watch.
        self.task.abort();
    }
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watcher>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PathRequest {
    path: String,
    depth: Option<Value>,
    recursive: bool,
    include_entry: bool,
    watcher_id: String,
    source: String,
    destination: String,
}

/// `POST /envd/filesystem.Filesystem/{method}`.
pub async fn handle(
    State(state): State<AppState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.config.limits.max_json_body;
    if method == "WatchDir" {
        return match Envelopes::new(body, limit).single().await {
            Ok(req) => watch_dir(state, headers, req).await,
            Err(err) => connect::stream_error(err),
        };
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return RpcError::new(Code::ResourceExhausted, "request too large").into_response()
        }
    };
    let result = async {
        let req: PathRequest = connect::decode(&bytes)?;
        let user = caller(&headers, None)?;
        unary(&state, &method, req, &user).await
    }
    .await;
    connect::unary(result)
}

async fn unary(
    state: &AppState,
    method: &str,
    req: PathRequest,
    user: &crate::process::User,
) -> Result<Value, RpcError> {
    let files = &state.files;
    let path = resolve(&req.path, user);
    match method {
        "Stat" => {
            let entry = files.describe(path).await?;
            Ok(json!({ "entry": entry_json(&entry, &IdNames::load()) }))
        }
        "ListDir" => {
            let depth = match &req.depth {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(1),
                Some(Value::String(s)) => s.parse().unwrap_or(1),
                _ => 1,
            };
            let entries = files
                .walk(path, depth.clamp(1, u32::MAX as u64) as u32, MAX_LIST)
                .await?;
            let names = IdNames::load();
            let entries: Vec<Value> = entries.iter().map(|e| entry_json(e, &names)).collect();
            Ok(json!({ "entries": entries }))
        }
        "MakeDir" => {
            let created =
                files
                    .mkdir_as(path.clone(), owner(user))
                    .await
                    .map_err(|err| match err {
                        crate::AgentError::AlreadyExists(p) => RpcError::invalid(format!(
                            "path already exists but it is not a directory: {p}"
                        )),
                        err => err.into(),
                    })?;
            if !created {
                return Err(RpcError::new(
                    Code::AlreadyExists,
                    format!("directory {path} already exists"),
                ));
            }
            let entry = files.describe(path).await?;
            Ok(json!({ "entry": entry_json(&entry, &IdNames::load()) }))
        }
        "Move" => {
            let from = resolve(&req.source, user);
            let to = resolve(&req.destination, user);
            let moved = MoveRequest {
                from,
                to: to.clone(),
                overwrite: true,
            };
            files.rename_as(moved, owner(user)).await?;
            let entry = files.describe(to).await?;
            Ok(json!({ "entry": entry_json(&entry, &IdNames::load()) }))
        }
        "Remove" => {
            // As `os.RemoveAll`: nothing there is not an error.
            match files.delete(path, true).await {
                Ok(_) | Err(crate::AgentError::FileNotFound(_)) => Ok(json!({})),
                Err(err) => Err(err.into()),
            }
        }
        "CreateWatcher" => create_watcher(state, path, req.recursive, req.include_entry).await,
        "GetWatcherEvents" => {
            let watchers = state.envd.watchers.lock();
            let watcher = watchers
                .get(&req.watcher_id)
                .ok_or_else(|| RpcError::new(Code::NotFound, "watcher not found"))?;
            let events: Vec<Value> = watcher
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
                .collect();
            Ok(json!({ "events": events }))
        }
        "RemoveWatcher" => {
            state
                .envd
                .watchers
                .lock()
                .remove(&req.watcher_id)
                .ok_or_else(|| RpcError::new(Code::NotFound, "watcher not found"))?;
            Ok(json!({}))
        }
        other => Err(RpcError::new(
            Code::Unimplemented,
            format!("filesystem.Filesystem/{other} is not implemented"),
        )),
    }
}

/// `WatchDir`: a start event, then the events of the directory.
async fn watch_dir(state: AppState, headers: HeaderMap, req: PathRequest) -> Response {
    let user = match caller(&headers, None) {
        Ok(user) => user,
        Err(err) => return connect::stream_error(err),
    };
    let path = resolve(&req.path, &user);
    let mut watch = match state.files.watch(path.clone(), req.recursive).await {
        Ok(watch) => watch,
        Err(err) => return connect::stream_error(err.into()),
    };
    let (tx, response) = connect::stream();
    let keepalive = connect::keepalive(&headers);
    let deadline = connect::timeout(&headers);
    let files = state.files.clone();
    tokio::spawn(async move {
        if !tx.send(&json!({ "start": {} })).await {
            return;
        }
        let far = Duration::from_secs(365 * 24 * 3600);
        let period = keepalive.unwrap_or(far);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let expiry = tokio::time::sleep(deadline.unwrap_or(far));
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                message = watch.next() => {
                    let Some(message) = message else {
                        tx.end(None).await;
                        return;
                    };
                    for event in translate(&files, &path, message, req.include_entry).await {
                        if !tx.send(&json!({ "filesystem": event })).await {
                            return;
                        }
                    }
                }
                _ = ticks.tick(), if keepalive.is_some() => {
                    if !tx.send(&json!({ "keepalive": {} })).await {
                        return;
                    }
                }
                _ = &mut expiry, if deadline.is_some() => {
                    tx.end(Some(RpcError::new(Code::DeadlineExceeded, "the call's deadline passed"))).await;
                    return;
                }
                _ = tx.closed() => return,
            }
        }
    });
    response
}

async fn create_watcher(
    state: &AppState,
    path: String,
    recursive: bool,
    include_entry: bool,
) -> Result<Value, RpcError> {
    if state.envd.watchers.lock().len() >= MAX_WATCHERS {
        return Err(RpcError::new(
            Code::ResourceExhausted,
            format!("too many watchers (limit {MAX_WATCHERS})"),
        ));
    }
    let mut watch = state.files.watch(path.clone(), recursive).await?;
    let events: Arc<Mutex<VecDeque<Value>>> = Arc::default();
    let buffer = events.clone();
    let files = state.files.clone();
    let task = tokio::spawn(async move {
        while let Some(message) = watch.next().await {
            for event in translate(&files, &path, message, include_entry).await {
                let mut buffer = buffer.lock().unwrap_or_else(PoisonError::into_inner);
                if buffer.len() >= MAX_BUFFERED {
                    buffer.pop_front();
                }
                buffer.push_back(event);
            }
        }
    });
    let n = state.envd.watchers.next.fetch_add(1, Ordering::Relaxed);
    let id = format!("watcher-{n}-{}", std::process::id());
    state.envd.watchers.lock().insert(
        id.clone(),
        Watcher {
            events,
            task: task.abort_handle(),
        },
    );
    Ok(json!({ "watcherId": id }))
}

/// A watch message as envd's events (fsnotify's view: a rename is the old
/// name renamed and the new one created). `name` is relative to the
/// watched directory.
async fn translate(files: &Files, root: &str, message: WatchMessage, include: bool) -> Vec<Value> {
    let WatchMessage::Event(event) = message else {
        return Vec::new();
    };
    let relative = |path: &str| -> String {
        path.strip_prefix(root)
            .map(|rest| rest.trim_start_matches('/').to_string())
            .unwrap_or_else(|| path.to_string())
    };
    let mut out = Vec::new();
    let mut push = |kind: &str, path: &str| out.push((kind.to_string(), path.to_string()));
    match event.kind {
        WatchEventKind::Create => push("EVENT_TYPE_CREATE", &event.path),
        // A directory's own modify is an attribute change (writes inside it
        // are the entries' events): fsnotify's chmod.
        WatchEventKind::Modify if event.is_dir => push("EVENT_TYPE_CHMOD", &event.path),
        WatchEventKind::Modify => push("EVENT_TYPE_WRITE", &event.path),
        WatchEventKind::Delete => push("EVENT_TYPE_REMOVE", &event.path),
        WatchEventKind::Rename => {
            if let Some(from) = &event.from {
                push("EVENT_TYPE_RENAME", from);
            }
            push("EVENT_TYPE_CREATE", &event.path);
        }
    }
    let mut events = Vec::new();
    for (kind, path) in out {
        if path == root {
            // The watched directory itself went away: the stream ends next.
            continue;
        }
        let mut value = json!({ "name": relative(&path), "type": kind });
        if include && kind != "EVENT_TYPE_REMOVE" && kind != "EVENT_TYPE_RENAME" {
            if let Ok(entry) = files.describe(path).await {
                value["entry"] = entry_json(&entry, &IdNames::load());
            }
        }
        events.push(value);
    }
    events
}

/// `filesystem.EntryInfo` as envd fills it: a symlink has its target's type
/// and permission bits, `symlinkTarget` and `isSymlink`.
pub fn entry_json(entry: &EntryDetails, names: &IdNames) -> Value {
    let file_type = match entry.resolved_kind {
        Some(EntryKind::File) => "FILE_TYPE_FILE",
        Some(EntryKind::Directory) => "FILE_TYPE_DIRECTORY",
        Some(EntryKind::Symlink) => "FILE_TYPE_SYMLINK",
        _ => "FILE_TYPE_UNSPECIFIED",
    };
    let (secs, nanos) = entry.mtime;
    let mut value = json!({
        "name": entry.name,
        "type": file_type,
        "path": entry.path,
        "size": entry.size.to_string(),
        "mode": entry.perm,
        "permissions": permissions(entry.lstat_mode),
        "owner": names.user(entry.uid),
        "group": names.group(entry.gid),
        "modifiedTime": timestamp(secs, nanos),
    });
    if !entry.metadata.is_empty() {
        value["metadata"] = json!(entry.metadata);
    }
    if let Some(target) = &entry.symlink_target {
        value["symlinkTarget"] = json!(target);
        value["isSymlink"] = json!(true);
    }
    value
}

/// A mode as Go's `FileMode.String()` prints it (`drwxr-xr-x`, `Lrwxrwxrwx`).
fn permissions(mode: u32) -> String {
    let mut out = String::new();
    match mode & libc::S_IFMT {
        libc::S_IFDIR => out.push('d'),
        libc::S_IFLNK => out.push('L'),
        libc::S_IFIFO => out.push('p'),
        libc::S_IFSOCK => out.push('S'),
        libc::S_IFBLK => out.push('D'),
        libc::S_IFCHR => out.push_str("Dc"),
        _ => {}
    }
    if mode & libc::S_ISUID != 0 {
        out.push('u');
    }
    if mode & libc::S_ISGID != 0 {
        out.push('g');
    }
    if mode & libc::S_ISVTX != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    out
}

/// A protobuf `Timestamp` in JSON: RFC 3339 in UTC with nanoseconds.
fn timestamp(secs: i64, nanos: i64) -> String {
    let millis = crate::files::rfc3339(secs, 0);
    // `…:SS.000Z` → `…:SS.nnnnnnnnnZ`.
    let base = millis.trim_end_matches(".000Z");
    format!("{base}.{:09}Z", nanos.clamp(0, 999_999_999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_read_like_go() {
        assert_eq!(permissions(libc::S_IFREG | 0o644), "-rw-r--r--");
        assert_eq!(permissions(libc::S_IFDIR | 0o755), "drwxr-xr-x");
        assert_eq!(permissions(libc::S_IFLNK | 0o777), "Lrwxrwxrwx");
        assert_eq!(timestamp(0, 5), "1970-01-01T00:00:00.000000005Z");
    }
}
