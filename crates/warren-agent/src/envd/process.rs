//! `process.Process`: E2B's process service over the agent's supervisor.
//!
//! E2B names processes by pid (or by a tag given at start); each maps to a
//! managed process of the supervisor, which owns the child, its PTY, its
//! output ring and its exit. [`Table`] only remembers what E2B shows and
//! Warren does not keep: the tag and the start configuration. Output is
//! streamed from the ring by a follower: from the start for `Start`, from
//! the current end for `Connect` (envd does not replay).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use warren_api::agent::{ProcessState, SignalSpec, StartRequest as WarrenStart, StreamKind};

use super::connect::{self, Code, Envelopes, RpcError, StreamTx};
use super::{caller, resolve};
use crate::process::{ExitStatus, FollowEvent, FollowFormat, Supervisor};
use crate::AppState;

/// Most bytes of output in one data event.
const DATA_CHUNK: usize = 32 * 1024;
/// Most processes whose tag and configuration are remembered.
const MAX_REMEMBERED: usize = 4096;

/// What E2B shows of a process and Warren does not keep.
#[derive(Debug, Clone)]
struct Remembered {
    /// The supervisor's id.
    id: String,
    tag: Option<String>,
    config: ProcessConfig,
}

/// Processes started through envd, by pid.
#[derive(Clone, Default)]
pub struct Table {
    inner: Arc<Mutex<HashMap<u32, Remembered>>>,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Remembered>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets processes the supervisor no longer keeps; returns the ids
    /// of those still running.
    fn prune(&self, sup: &Supervisor) -> HashSet<String> {
        let kept: HashMap<String, (u32, bool)> = sup
            .list()
            .items
            .into_iter()
            .map(|p| (p.id, (p.pid as u32, p.state == ProcessState::Running)))
            .collect();
        self.lock()
            .retain(|pid, r| kept.get(&r.id).map(|(p, _)| p) == Some(pid));
        kept.into_iter()
            .filter(|(_, (_, running))| *running)
            .map(|(id, _)| id)
            .collect()
    }
}

/// `process.ProcessConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessConfig {
    cmd: String,
    args: Vec<String>,
    envs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cwd: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Pty {
    size: Option<Size>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Size {
    cols: Option<Value>,
    rows: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StartRequest {
    process: Option<ProcessConfig>,
    pty: Option<Pty>,
    tag: Option<String>,
    stdin: Option<bool>,
}

/// `process.ProcessSelector`: a pid or a tag.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Selector {
    pid: Option<Value>,
    tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Selected {
    process: Option<Selector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Input {
    stdin: Option<String>,
    pty: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SendInputRequest {
    process: Option<Selector>,
    input: Option<Input>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SendSignalRequest {
    process: Option<Selector>,
    signal: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateRequest {
    process: Option<Selector>,
    pty: Option<Pty>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamInputRequest {
    start: Option<Selected>,
    data: Option<StreamData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamData {
    input: Option<Input>,
}

/// `POST /envd/process.Process/{method}`.
pub async fn handle(
    State(state): State<AppState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.config.limits.max_json_body;
    match method.as_str() {
        "Start" => match Envelopes::new(body, limit).single().await {
            Ok(req) => start(state, headers, req).await,
            Err(err) => connect::stream_error(err),
        },
        "Connect" => match Envelopes::new(body, limit).single().await {
            Ok(req) => attach(state, headers, req).await,
            Err(err) => connect::stream_error(err),
        },
        "StreamInput" => stream_input(state, Envelopes::new(body, limit)).await,
        "List" | "SendInput" | "SendSignal" | "Update" | "CloseStdin" => {
            let bytes = match axum::body::to_bytes(body, limit).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return RpcError::new(Code::ResourceExhausted, "request too large")
                        .into_response_unary()
                }
            };
            connect::unary(unary(&state, &method, &bytes).await)
        }
        other => RpcError::new(
            Code::Unimplemented,
            format!("process.Process/{other} is not implemented"),
        )
        .into_response_unary(),
    }
}

impl RpcError {
    fn into_response_unary(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

async fn unary(state: &AppState, method: &str, body: &[u8]) -> Result<Value, RpcError> {
    let sup = &state.processes;
    let table = &state.envd.processes;
    match method {
        "List" => {
            let running = table.prune(sup);
            let remembered = table.lock().clone();
            let mut processes: Vec<(u32, Value)> = remembered
                .into_iter()
                .filter(|(_, r)| running.contains(&r.id))
                .map(|(pid, r)| {
                    let mut info = json!({ "config": r.config, "pid": pid });
                    if let Some(tag) = r.tag {
                        info["tag"] = json!(tag);
                    }
                    (pid, info)
                })
                .collect();
            processes.sort_by_key(|(pid, _)| *pid);
            let processes: Vec<Value> = processes.into_iter().map(|(_, v)| v).collect();
            Ok(json!({ "processes": processes }))
        }
        "SendInput" => {
            let req: SendInputRequest = connect::decode(body)?;
            let id = select(state, req.process.as_ref())?;
            let data = input_bytes(req.input)?;
            sup.check_stdin_size(data.len())?;
            sup.write_stdin(&id, &data, false).await?;
            Ok(json!({}))
        }
        "CloseStdin" => {
            let req: Selected = connect::decode(body)?;
            let id = select(state, req.process.as_ref())?;
            sup.write_stdin(&id, &[], true).await?;
            Ok(json!({}))
        }
        "SendSignal" => {
            let req: SendSignalRequest = connect::decode(body)?;
            let id = select(state, req.process.as_ref())?;
            let signal = parse_signal(req.signal.as_ref())?;
            sup.signal(&id, &SignalSpec::Number(signal))?;
            Ok(json!({}))
        }
        "Update" => {
            let req: UpdateRequest = connect::decode(body)?;
            let id = select(state, req.process.as_ref())?;
            if let Some(size) = req.pty.and_then(|p| p.size) {
                let cols = dim(size.cols.as_ref())?.unwrap_or(80);
                let rows = dim(size.rows.as_ref())?.unwrap_or(24);
                sup.resize(&id, cols, rows)?;
            }
            Ok(json!({}))
        }
        _ => Err(RpcError::new(Code::Unimplemented, "no such method")),
    }
}

/// `Start`: spawns, then streams start, data and end events.
async fn start(state: AppState, headers: HeaderMap, req: StartRequest) -> Response {
    let prepared = (|| {
        let user = caller(&headers, None)?;
        let config = req
            .process
            .clone()
            .filter(|c| !c.cmd.is_empty())
            .ok_or_else(|| RpcError::invalid("process.cmd is required"))?;
        let cwd = resolve(config.cwd.as_deref().unwrap_or(""), &user);
        let size = req.pty.as_ref().map(|p| p.size.as_ref());
        let (cols, rows) = match size {
            Some(Some(size)) => (dim(size.cols.as_ref())?, dim(size.rows.as_ref())?),
            _ => (None, None),
        };
        let mut argv = vec![config.cmd.clone()];
        argv.extend(config.args.iter().cloned());
        let start = WarrenStart {
            cmd: None,
            argv: Some(argv),
            cwd: Some(cwd),
            env: (!config.envs.is_empty()).then(|| config.envs.clone()),
            user: Some(user.name.clone()),
            stdin: None,
            timeout_ms: connect::timeout(&headers).map(|t| t.as_millis() as u64),
            tty: req.pty.is_some(),
            cols,
            rows,
        };
        Ok::<_, RpcError>((config, start))
    })();
    let (config, start) = match prepared {
        Ok(p) => p,
        Err(err) => return connect::stream_error(err),
    };
    let tty = start.tty;
    let info = match state.processes.start(start) {
        Ok(info) => info,
        Err(err) => return connect::stream_error(err.into()),
    };
    let follower = match state
        .processes
        .follow(&info.id, Some(0), FollowFormat::Bytes, DATA_CHUNK)
    {
        Ok(f) => f,
        Err(err) => return connect::stream_error(err.into()),
    };
    // Without `stdin: true` a piped process reads end-of-file at once, as
    // under envd; a terminal always takes input.
    if !tty && req.stdin != Some(true) {
        let _ = state.processes.write_stdin(&info.id, &[], true).await;
    }
    let pid = info.pid as u32;
    {
        let table = &state.envd.processes;
        table.prune(&state.processes);
        let mut remembered = table.lock();
        if remembered.len() < MAX_REMEMBERED {
            remembered.insert(
                pid,
                Remembered {
                    id: info.id.clone(),
                    tag: req.tag,
                    config,
                },
            );
        }
    }
    let (tx, response) = connect::stream();
    let keepalive = connect::keepalive(&headers);
    tokio::spawn(pump(tx, pid, tty, follower, keepalive, None));
    response
}

/// `Connect`: streams a running process's events from now on.
async fn attach(state: AppState, headers: HeaderMap, req: Selected) -> Response {
    let found = select_in(&state, req.process.as_ref(), true).and_then(|id| {
        let info = state
            .processes
            .list()
            .items
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| RpcError::new(Code::NotFound, "process not found"))?;
        let follower = state.processes.follow(
            &id,
            Some(info.output_cursor),
            FollowFormat::Bytes,
            DATA_CHUNK,
        )?;
        Ok((info, follower))
    });
    let (info, follower) = match found {
        Ok(found) => found,
        Err(err) => return connect::stream_error(err),
    };
    let (tx, response) = connect::stream();
    let keepalive = connect::keepalive(&headers);
    let deadline = connect::timeout(&headers);
    tokio::spawn(pump(
        tx,
        info.pid as u32,
        info.tty,
        follower,
        keepalive,
        deadline,
    ));
    response
}

/// Sends the start event, then output and keepalives until the end event
/// (or the deadline, or the client leaving).
async fn pump(
    tx: StreamTx,
    pid: u32,
    tty: bool,
    mut follower: crate::process::Follower,
    keepalive: Option<Duration>,
    deadline: Option<Duration>,
) {
    if !tx
        .send(&json!({ "event": { "start": { "pid": pid } } }))
        .await
    {
        return;
    }
    let far = Duration::from_secs(365 * 24 * 3600);
    let period = keepalive.unwrap_or(far);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let expiry = tokio::time::sleep(deadline.unwrap_or(far));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            event = follower.next() => match event {
                Some(FollowEvent::Output { stream, data, .. }) => {
                    let key = match (tty, stream) {
                        (true, _) => "pty",
                        (false, StreamKind::Stderr) => "stderr",
                        (false, _) => "stdout",
                    };
                    let data = base64::engine::general_purpose::STANDARD.encode(&data);
                    if !tx.send(&json!({ "event": { "data": { key: data } } })).await {
                        return;
                    }
                }
                Some(FollowEvent::Dropped { .. }) => {}
                Some(FollowEvent::Exit { status, .. }) => {
                    if tx.send(&json!({ "event": { "end": end_event(status) } })).await {
                        tx.end(None).await;
                    }
                    return;
                }
                None => {
                    tx.end(None).await;
                    return;
                }
            },
            _ = ticks.tick(), if keepalive.is_some() => {
                if !tx.send(&json!({ "event": { "keepalive": {} } })).await {
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
}

/// The end event as envd reports it (Go's `ProcessState`).
fn end_event(status: ExitStatus) -> Value {
    match (status.code, status.signal) {
        (Some(code), _) => {
            let text = format!("exit status {code}");
            let mut end = json!({ "exitCode": code, "exited": true, "status": text });
            if code != 0 {
                end["error"] = json!(text);
            }
            end
        }
        (None, signal) => {
            let text = format!("signal: {}", signal_name(signal.unwrap_or(0)));
            json!({ "exitCode": -1, "exited": false, "status": text, "error": text })
        }
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGKILL => "killed".into(),
        libc::SIGTERM => "terminated".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGHUP => "hangup".into(),
        libc::SIGPIPE => "broken pipe".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        libc::SIGABRT => "aborted".into(),
        n => format!("signal {n}"),
    }
}

/// `StreamInput`: a start message naming the process, then input messages.
async fn stream_input(state: AppState, mut body: Envelopes) -> Response {
    let mut id = None;
    let result: Result<(), RpcError> = async {
        while let Some(msg) = body.next::<StreamInputRequest>().await? {
            if let Some(start) = msg.start {
                id = Some(select(&state, start.process.as_ref())?);
            }
            if let Some(data) = msg.data {
                let id = id
                    .as_deref()
                    .ok_or_else(|| RpcError::invalid("the first message must be start"))?;
                let bytes = input_bytes(data.input)?;
                state.processes.check_stdin_size(bytes.len())?;
                state.processes.write_stdin(id, &bytes, false).await?;
            }
        }
        Ok(())
    }
    .await;
    let (tx, response) = connect::stream();
    tokio::spawn(async move {
        match result {
            Ok(()) => {
                if tx.send(&json!({})).await {
                    tx.end(None).await;
                }
            }
            Err(err) => tx.end(Some(err)).await,
        }
    });
    response
}

/// The supervisor id of the process a selector names: a running one, or
/// with `exited`, also one that has exited and is still kept (so a client
/// that reconnects after the end still gets the exit, as under envd).
fn select_in(
    state: &AppState,
    selector: Option<&Selector>,
    exited: bool,
) -> Result<String, RpcError> {
    let selector = selector.ok_or_else(|| RpcError::invalid("process selector is required"))?;
    let known = state.processes.list().items;
    let usable = |id: &str| {
        known
            .iter()
            .any(|p| p.id == id && (exited || p.state == ProcessState::Running))
    };
    let remembered = state.envd.processes.lock().clone();
    if let Some(pid) = &selector.pid {
        let pid = number(pid).ok_or_else(|| RpcError::invalid("pid must be a number"))?;
        let by_table = u32::try_from(pid)
            .ok()
            .and_then(|pid| remembered.get(&pid))
            .map(|r| r.id.clone())
            .filter(|id| usable(id));
        // Else a process started through Warren's own API (the newest with
        // this pid).
        let by_supervisor = || {
            known
                .iter()
                .rev()
                .find(|p| p.pid as i64 == pid && usable(&p.id))
                .map(|p| p.id.clone())
        };
        return by_table.or_else(by_supervisor).ok_or_else(|| {
            RpcError::new(Code::NotFound, format!("process with pid {pid} not found"))
        });
    }
    if let Some(tag) = &selector.tag {
        return remembered
            .values()
            .filter(|r| r.tag.as_deref() == Some(tag) && usable(&r.id))
            .map(|r| r.id.clone())
            .next()
            .ok_or_else(|| {
                RpcError::new(Code::NotFound, format!("process with tag {tag} not found"))
            });
    }
    Err(RpcError::invalid("process selector needs a pid or a tag"))
}

/// The supervisor id of the running process a selector names.
fn select(state: &AppState, selector: Option<&Selector>) -> Result<String, RpcError> {
    select_in(state, selector, false)
}

/// A proto3 JSON integer (a number, or a string of one).
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn dim(value: Option<&Value>) -> Result<Option<u16>, RpcError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match number(v) {
            Some(0) => Ok(None),
            Some(n) if (1..=1000).contains(&n) => Ok(Some(n as u16)),
            _ => Err(RpcError::invalid("pty size must be between 1 and 1000")),
        },
    }
}

/// The signal of a `SendSignal`: `SIGNAL_SIGKILL`/`SIGNAL_SIGTERM` or their numbers.
fn parse_signal(value: Option<&Value>) -> Result<i32, RpcError> {
    let signal = match value {
        Some(Value::String(name)) => match name.as_str() {
            "SIGNAL_SIGKILL" => Some(libc::SIGKILL),
            "SIGNAL_SIGTERM" => Some(libc::SIGTERM),
            other => other.parse().ok(),
        },
        Some(Value::Number(n)) => n.as_i64().map(|n| n as i32),
        _ => None,
    };
    match signal {
        Some(s) if s == libc::SIGKILL || s == libc::SIGTERM => Ok(s),
        _ => Err(RpcError::invalid(
            "signal must be SIGNAL_SIGTERM or SIGNAL_SIGKILL",
        )),
    }
}

/// The bytes of a `ProcessInput` (stdin or pty, base64).
fn input_bytes(input: Option<Input>) -> Result<Vec<u8>, RpcError> {
    let data = input.and_then(|i| i.stdin.or(i.pty)).unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| RpcError::invalid(format!("input is not valid base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_events_read_like_go() {
        let ok = end_event(ExitStatus {
            code: Some(0),
            signal: None,
        });
        assert_eq!(ok["status"], "exit status 0");
        assert!(ok.get("error").is_none());
        let failed = end_event(ExitStatus {
            code: Some(3),
            signal: None,
        });
        assert_eq!(failed["error"], "exit status 3");
        let killed = end_event(ExitStatus {
            code: None,
            signal: Some(libc::SIGKILL),
        });
        assert_eq!(killed["status"], "signal: killed");
        assert_eq!(killed["exitCode"], -1);
        assert_eq!(killed["exited"], false);
    }

    #[test]
    fn signals_and_numbers_parse() {
        assert_eq!(parse_signal(Some(&json!("SIGNAL_SIGKILL"))).unwrap(), 9);
        assert_eq!(parse_signal(Some(&json!(15))).unwrap(), 15);
        assert!(parse_signal(Some(&json!("SIGNAL_UNSPECIFIED"))).is_err());
        assert_eq!(number(&json!("42")), Some(42));
    }
}
