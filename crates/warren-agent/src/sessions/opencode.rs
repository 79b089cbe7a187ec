//! The `opencode` driver: OpenCode through the Agent Client Protocol
//! (`opencode acp`: JSON-RPC 2.0, one message per line on stdio), one
//! process per session.
//!
//! Why ACP here (and not `opencode run`, the per-turn mode): under `run`,
//! OpenCode rejects every tool its config says to ask about, so a person
//! could never be asked; under ACP it sends `session/request_permission`
//! and waits, and streams text as `agent_message_chunk`s. The permission
//! mode becomes OpenCode's own `permission` config (`default`: edits, shell
//! and web fetches ask; `accept_edits`: shell and fetches ask; `plan`:
//! edits and shell are denied; `bypass`: nothing asks), merged into the
//! session's `OPENCODE_CONFIG_CONTENT` unless that sets `permission`
//! itself. A resumed session is `session/load`ed (its replayed history is
//! not re-emitted). The driver turns off OpenCode's update and model-list
//! fetches.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use warren_api::session::{PermissionDecision, PermissionMode};

use super::items::{self, Kind};
use super::lines::{read_line, JsonProcess};
use super::session::{Command, Ending, SessionEntry};
use super::DriverStart;

/// Longest line mapped.
const MAX_LINE: usize = 8 << 20;
/// Request ids of the driver's own calls.
const INITIALIZE: u64 = 1;
const OPEN: u64 = 2;

/// OpenCode's `permission` config for a Warren permission mode.
fn permission(mode: PermissionMode) -> Value {
    match mode {
        PermissionMode::Default => json!({ "edit": "ask", "bash": "ask", "webfetch": "ask" }),
        PermissionMode::AcceptEdits => json!({ "edit": "allow", "bash": "ask", "webfetch": "ask" }),
        PermissionMode::Plan => json!({ "edit": "deny", "bash": "deny", "webfetch": "ask" }),
        PermissionMode::Bypass => json!({ "edit": "allow", "bash": "allow", "webfetch": "allow" }),
    }
}

/// `OPENCODE_CONFIG_CONTENT` with the mode's permissions (and the model)
/// merged in, unless the caller's config sets them.
fn config(
    given: Option<&String>,
    mode: PermissionMode,
    model: Option<&str>,
) -> Result<String, String> {
    let mut config = match given {
        Some(text) => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or("OPENCODE_CONFIG_CONTENT is not a JSON object")?,
        None => json!({}),
    };
    let object = config.as_object_mut().ok_or("not an object")?;
    object
        .entry("permission")
        .or_insert_with(|| permission(mode));
    if let Some(model) = model {
        object.insert("model".into(), json!(model));
    }
    object.entry("autoupdate").or_insert(json!(false));
    Ok(config.to_string())
}

/// Runs an OpenCode session until its command channel closes or the
/// process exits.
pub async fn run(start: DriverStart, mut commands: mpsc::UnboundedReceiver<Command>) -> Ending {
    let entry = start.entry.clone();
    let options = entry.options();
    let mut env = start.env.clone();
    for key in [
        "OPENCODE_DISABLE_MODELS_FETCH",
        "OPENCODE_DISABLE_AUTOUPDATE",
    ] {
        env.entry(key.into()).or_insert_with(|| "1".into());
    }
    match config(
        env.get("OPENCODE_CONFIG_CONTENT"),
        options.permission_mode,
        options.model.as_deref(),
    ) {
        Ok(text) => {
            env.insert("OPENCODE_CONFIG_CONTENT".into(), text);
        }
        Err(e) => return error(None, e.to_string()),
    }
    let program = start
        .program
        .as_ref()
        .map_or_else(|| "opencode".to_string(), |p| p.display().to_string());
    let cwd = start.cwd.display().to_string();
    let JsonProcess {
        mut child,
        write: write_tx,
        writer,
        stdout: mut reader,
        tail,
    } = match JsonProcess::spawn(&start.processes, &[program, "acp".into()], &cwd, &env) {
        Ok(process) => process,
        Err(message) => return error(None, message),
    };

    let mut acp = Acp {
        entry: entry.clone(),
        write: write_tx,
        cwd,
        resume: start.resume.clone(),
        session: None,
        loading: true,
        next_id: 10,
        in_flight: None,
        queue: VecDeque::new(),
        text: None,
        tools: HashMap::new(),
        turn: 0,
        fatal: None,
    };
    acp.send(INITIALIZE, "initialize", json!({
        "protocolVersion": 1,
        "clientCapabilities": { "fs": { "readTextFile": false, "writeTextFile": false }, "terminal": false },
    }));
    let mut line = Vec::new();
    let mut open = true;
    loop {
        tokio::select! {
            read = read_line(&mut reader, &mut line, MAX_LINE) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    acp.line(&line);
                    if let Some(message) = acp.fatal.take() {
                        writer.abort();
                        return error(None, message);
                    }
                }
            },
            command = commands.recv(), if open => match command {
                Some(Command::Prompt(text)) => acp.prompt(text),
                Some(Command::Interrupt) => acp.interrupt(),
                None => {
                    open = false;
                    writer.abort();
                    child.signal(libc::SIGTERM);
                }
            },
        }
    }
    writer.abort();
    let status = (&mut child.exit).await;
    let tail = tail.text().await;
    if !open || status.code == Some(0) {
        return Ending::completed();
    }
    error(
        status.code.or(status.signal.map(|s| 128 + s)),
        if tail.is_empty() {
            "opencode exited".into()
        } else {
            tail
        },
    )
}

fn error(exit_code: Option<i32>, message: String) -> Ending {
    Ending {
        reason: "error",
        exit_code,
        message: Some(message),
    }
}

/// The client side of one ACP session.
struct Acp {
    entry: Arc<SessionEntry>,
    write: mpsc::UnboundedSender<Value>,
    cwd: String,
    resume: Option<String>,
    /// OpenCode's session id, once opened.
    session: Option<String>,
    /// While `session/load` replays history: nothing is emitted.
    loading: bool,
    next_id: u64,
    /// The id of the `session/prompt` call in progress.
    in_flight: Option<u64>,
    queue: VecDeque<String>,
    /// The text item being streamed: (id, kind, text so far).
    text: Option<(String, Kind, String)>,
    /// Tool calls seen: id → (tool name, latest input).
    tools: HashMap<String, (String, Value)>,
    turn: u64,
    /// Set when the session cannot go on (no session could be opened).
    fatal: Option<String>,
}

impl Acp {
    fn send(&self, id: u64, method: &str, params: Value) {
        let _ = self
            .write
            .send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
    }

    fn reply(&self, id: &Value, result: Value) {
        let _ = self
            .write
            .send(json!({ "jsonrpc": "2.0", "id": id, "result": result }));
    }

    fn prompt(&mut self, text: String) {
        self.queue.push_back(text);
        self.next_prompt();
    }

    fn next_prompt(&mut self) {
        if self.in_flight.is_some() || self.loading {
            return;
        }
        let (Some(session), Some(text)) = (self.session.clone(), self.queue.pop_front()) else {
            return;
        };
        self.turn += 1;
        self.entry.turn_started();
        self.entry.item_completed(
            items::item(
                &format!("user_{}", self.turn),
                Kind::Message,
                Some("user"),
                "completed",
                items::text(&text),
            ),
            None,
        );
        self.next_id += 1;
        self.in_flight = Some(self.next_id);
        self.send(
            self.next_id,
            "session/prompt",
            json!({ "sessionId": session, "prompt": [{ "type": "text", "text": text }] }),
        );
    }

    fn interrupt(&mut self) {
        self.entry.cancel_pending();
        if let (Some(session), Some(_)) = (&self.session, self.in_flight) {
            let _ = self.write.send(json!({
                "jsonrpc": "2.0",
                "method": "session/cancel",
                "params": { "sessionId": session },
            }));
        }
    }

    fn line(&mut self, raw: &[u8]) {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(raw) else {
            self.entry.emit(
                "agent.unparsed",
                json!({ "raw": String::from_utf8_lossy(raw) }),
                None,
            );
            return;
        };
        match (v.get("method").and_then(Value::as_str), v.get("id")) {
            (Some(method), Some(id)) => self.request(method, id.clone(), v.clone()),
            (Some("session/update"), None) => {
                if !self.loading {
                    self.update(&v);
                }
            }
            (Some(_), None) => {}
            (None, Some(id)) => self.response(id.as_u64().unwrap_or(0), &v),
            (None, None) => {
                self.entry
                    .emit("agent.unparsed", json!({ "raw": v.to_string() }), None);
            }
        }
    }

    /// Answers to the driver's own calls.
    fn response(&mut self, id: u64, v: &Value) {
        if let Some(err) = v.get("error") {
            let message = err["message"]
                .as_str()
                .unwrap_or("opencode refused the request");
            self.entry
                .emit("error", json!({ "message": message }), Some(v.clone()));
            if id == OPEN || id == INITIALIZE {
                // Without a session nothing can run: end it.
                self.fatal = Some(format!("opencode: {message}"));
            }
            if Some(id) == self.in_flight {
                self.in_flight = None;
                self.entry.turn_done();
                self.next_prompt();
            }
            return;
        }
        let result = &v["result"];
        if id == INITIALIZE {
            let params = json!({ "cwd": self.cwd, "mcpServers": [] });
            match &self.resume {
                Some(session) => {
                    let mut params = params;
                    params["sessionId"] = json!(session);
                    self.send(OPEN, "session/load", params);
                }
                None => self.send(OPEN, "session/new", params),
            }
        } else if id == OPEN {
            let session = result["sessionId"]
                .as_str()
                .map(str::to_string)
                .or_else(|| self.resume.clone());
            self.entry.set_native(session.as_deref(), None);
            self.session = session;
            self.loading = false;
            self.next_prompt();
        } else if Some(id) == self.in_flight {
            self.in_flight = None;
            self.close_text();
            let usage = &result["usage"];
            self.entry.emit(
                "usage",
                json!({
                    "input_tokens": usage["inputTokens"].as_u64().unwrap_or(0),
                    "output_tokens": usage["outputTokens"].as_u64().unwrap_or(0),
                }),
                Some(v.clone()),
            );
            if result["stopReason"] == "cancelled" {
                self.entry.item_completed(
                    items::item(
                        &format!("turn_{}_interrupted", self.turn),
                        Kind::Status,
                        None,
                        "interrupted",
                        items::text("interrupted"),
                    ),
                    None,
                );
            }
            self.entry.turn_done();
            self.next_prompt();
        }
    }

    /// Calls from OpenCode: permission requests wait for a person; file
    /// system calls are not offered (OpenCode writes its files itself).
    fn request(&mut self, method: &str, id: Value, v: Value) {
        match method {
            "session/request_permission" => {
                let params = &v["params"];
                let call = &params["toolCall"];
                let call_id = call["toolCallId"].as_str().unwrap_or_default();
                let tool = self
                    .tools
                    .get(call_id)
                    .map(|(name, _)| name.clone())
                    .or_else(|| call["kind"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "tool".into());
                let input = call["rawInput"].clone();
                let options = params["options"].as_array().cloned().unwrap_or_default();
                let entry = self.entry.clone();
                let write = self.write.clone();
                tokio::spawn(async move {
                    let decision = entry.ask_permission(&tool, input, Some(v.clone())).await;
                    let kind = match decision {
                        PermissionDecision::Once => "allow_once",
                        PermissionDecision::Always => "allow_always",
                        PermissionDecision::Reject => "reject_once",
                    };
                    let option = options
                        .iter()
                        .find(|o| o["kind"] == kind)
                        .and_then(|o| o["optionId"].as_str())
                        .unwrap_or(match decision {
                            PermissionDecision::Once => "once",
                            PermissionDecision::Always => "always",
                            PermissionDecision::Reject => "reject",
                        })
                        .to_string();
                    let _ = write.send(json!({
                        "jsonrpc": "2.0",
                        "id": id,
                        "result": { "outcome": { "outcome": "selected", "optionId": option } },
                    }));
                });
            }
            m if m.starts_with("fs/") => self.reply(&id, Value::Null),
            _ => {
                let _ = self.write.send(json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": { "code": -32601, "message": format!("{method} is not offered") },
                }));
            }
        }
    }

    fn close_text(&mut self) {
        if let Some((id, kind, text)) = self.text.take() {
            self.entry.item_completed(
                items::item(
                    &id,
                    kind,
                    Some("assistant"),
                    "completed",
                    items::text(&text),
                ),
                None,
            );
        }
    }

    fn update(&mut self, v: &Value) {
        let update = &v["params"]["update"];
        let raw = Some(v.clone());
        match update["sessionUpdate"].as_str().unwrap_or_default() {
            kind @ ("agent_message_chunk" | "agent_thought_chunk") => {
                let kind = if kind == "agent_message_chunk" {
                    Kind::Message
                } else {
                    Kind::Reasoning
                };
                let id = update["messageId"].as_str().map_or_else(
                    || format!("turn_{}_{:?}", self.turn, kind),
                    |m| format!("{m}_{kind:?}"),
                );
                if self.text.as_ref().is_none_or(|(open, _, _)| *open != id) {
                    self.close_text();
                    self.entry.item_started(&id, kind, Some("assistant"), None);
                    self.text = Some((id.clone(), kind, String::new()));
                }
                let chunk = update["content"]["text"].as_str().unwrap_or_default();
                if let Some((_, _, text)) = self.text.as_mut() {
                    text.push_str(chunk);
                }
                self.entry.item_delta(&id, chunk, raw);
            }
            "tool_call" => {
                self.close_text();
                let id = update["toolCallId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let name = update["title"].as_str().unwrap_or("tool").to_string();
                self.entry
                    .item_started(&id, Kind::ToolCall, Some("assistant"), raw);
                self.tools.insert(id, (name, update["rawInput"].clone()));
            }
            "tool_call_update" => {
                let id = update["toolCallId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let Some((name, input)) = self.tools.get_mut(&id) else {
                    return;
                };
                if update["rawInput"]
                    .as_object()
                    .is_some_and(|o| !o.is_empty())
                {
                    *input = update["rawInput"].clone();
                }
                let status = update["status"].as_str().unwrap_or_default();
                if status != "completed" && status != "failed" {
                    return;
                }
                let (name, input) = (name.clone(), input.clone());
                let failed = status == "failed";
                let output = update["rawOutput"]["output"]
                    .as_str()
                    .map(|s| json!(s))
                    .or_else(|| {
                        update["content"][0]["content"]["text"]
                            .as_str()
                            .map(|s| json!(s))
                    })
                    .unwrap_or_else(|| update["rawOutput"].clone());
                self.entry.item_completed(
                    items::item(
                        &id,
                        Kind::ToolCall,
                        Some("assistant"),
                        "completed",
                        items::tool_call(&id, &name, &input),
                    ),
                    raw.clone(),
                );
                self.entry.item_completed(
                    items::item(
                        &format!("{id}_result"),
                        Kind::ToolResult,
                        Some("tool"),
                        if failed { "failed" } else { "completed" },
                        items::tool_result(&id, &output, failed),
                    ),
                    None,
                );
            }
            "user_message_chunk"
            | "available_commands_update"
            | "plan"
            | "current_mode_update"
            | "config_option_update"
            | "session_info_update"
            | "usage_update" => {}
            _ => {
                self.entry
                    .emit("agent.unparsed", json!({ "raw": v.to_string() }), None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_becomes_opencode_permissions_unless_the_config_sets_them() {
        let merged: Value =
            serde_json::from_str(&config(None, PermissionMode::Default, Some("p/m")).unwrap())
                .unwrap();
        assert_eq!(merged["permission"]["bash"], "ask");
        assert_eq!(merged["model"], "p/m");
        let own = r#"{"permission": {"bash": "allow"}, "provider": {}}"#.to_string();
        let merged: Value =
            serde_json::from_str(&config(Some(&own), PermissionMode::Default, None).unwrap())
                .unwrap();
        assert_eq!(merged["permission"], json!({"bash": "allow"}));
        assert!(merged["provider"].is_object());
        assert!(config(Some(&"[1]".to_string()), PermissionMode::Bypass, None).is_err());
    }
}
