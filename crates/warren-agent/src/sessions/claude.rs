//! The `claude` driver: Claude Code in its own streaming mode, one process
//! for the whole session.
//!
//! `claude -p --input-format stream-json --output-format stream-json
//! --verbose --include-partial-messages --permission-prompt-tool stdio`:
//! prompts go in as `user` lines on stdin, and stdout carries `stream_event`
//! lines (the Messages API's own stream: text, thinking and tool-input
//! deltas), one `assistant` line per finished content block, `user` lines
//! with tool results, and a `result` per turn (usage, cumulative cost).
//! Tool permissions arrive as `control_request` `can_use_tool` and are
//! answered with a `control_response` (`allow` with the input, or `deny`);
//! an interrupt is a `control_request` of its own. Why this mode rather
//! than ACP: it is Claude Code itself with no adapter to install, its
//! session file is the one `--resume` reads, and every line maps directly.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use warren_api::session::{PermissionDecision, PermissionMode};

use super::items::{self, Kind};
use super::lines::{read_line, JsonProcess};
use super::session::{Command, Ending, Reply, SessionEntry};
use super::DriverStart;

/// Longest stdout line mapped; longer ones are cut (and then unparsed).
const MAX_LINE: usize = 8 << 20;

/// The `--permission-mode` of a Warren permission mode.
fn mode(mode: PermissionMode) -> &'static str {
    match mode {
        PermissionMode::Default => "default",
        PermissionMode::AcceptEdits => "acceptEdits",
        PermissionMode::Plan => "plan",
        PermissionMode::Bypass => "bypassPermissions",
    }
}

/// The command line of a session.
pub fn argv(start: &DriverStart) -> Vec<String> {
    let options = start.entry.options();
    let program = start
        .program
        .as_ref()
        .map_or_else(|| "claude".to_string(), |p| p.display().to_string());
    let mut argv: Vec<String> = [
        program.as_str(),
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--permission-prompt-tool",
        "stdio",
        "--permission-mode",
        mode(options.permission_mode),
    ]
    .map(String::from)
    .to_vec();
    argv.extend(["--max-turns".into(), options.max_turns.to_string()]);
    if let Some(model) = &options.model {
        argv.extend(["--model".into(), model.clone()]);
    }
    if let Some(prompt) = &options.system_prompt {
        argv.extend(["--system-prompt".into(), prompt.clone()]);
    }
    if !options.allowed_tools.is_empty() {
        argv.push("--allowedTools".into());
        argv.extend(options.allowed_tools.iter().cloned());
    }
    if !options.mcp_servers.is_empty() {
        argv.extend([
            "--mcp-config".into(),
            json!({ "mcpServers": options.mcp_servers }).to_string(),
        ]);
    }
    if let Some(resume) = &start.resume {
        argv.extend(["--resume".into(), resume.clone()]);
    }
    argv
}

/// Runs a Claude Code session until its command channel closes or the
/// process exits.
pub async fn run(start: DriverStart, mut commands: mpsc::UnboundedReceiver<Command>) -> Ending {
    let entry = start.entry.clone();
    let mut env = start.env.clone();
    // Root inside a sandbox: Claude Code refuses bypassPermissions as root
    // unless told it is in a sandbox, which it is.
    env.entry("IS_SANDBOX".into()).or_insert_with(|| "1".into());
    env.entry("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into())
        .or_insert_with(|| "1".into());
    let argv = argv(&start);
    let cwd = start.cwd.display().to_string();
    let JsonProcess {
        mut child,
        write: write_tx,
        writer,
        stdout: mut reader,
        tail,
    } = match JsonProcess::spawn(&start.processes, &argv, &cwd, &env) {
        Ok(process) => process,
        Err(message) => return error(None, message),
    };
    let mut mapper = Mapper::new(entry.clone(), write_tx.clone());
    let mut line = Vec::new();
    let mut next_request = 0u64;
    let mut stdin_open = true;
    loop {
        tokio::select! {
            read = read_line(&mut reader, &mut line, MAX_LINE) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => mapper.line(&line),
            },
            command = commands.recv(), if stdin_open => match command {
                Some(Command::Prompt(text)) => {
                    next_request += 1;
                    let id = format!("user_{next_request}");
                    entry.item_completed(
                        items::item(&id, Kind::Message, Some("user"), "completed", items::text(&text)),
                        None,
                    );
                    let _ = write_tx.send(json!({
                        "type": "user",
                        "message": { "role": "user", "content": text },
                    }));
                }
                Some(Command::Interrupt) => {
                    next_request += 1;
                    entry.cancel_pending();
                    let _ = write_tx.send(json!({
                        "type": "control_request",
                        "request_id": format!("warren_{next_request}"),
                        "request": { "subtype": "interrupt" },
                    }));
                }
                None => {
                    // The session is being closed: end stdin, and Claude
                    // exits after its turn.
                    stdin_open = false;
                    writer.abort();
                }
            },
        }
    }
    mapper.abort_requests();
    writer.abort();
    let status = (&mut child.exit).await;
    let tail = tail.text().await;
    match status.code {
        Some(0) => Ending::completed(),
        code => error(
            code.or(status.signal.map(|s| 128 + s)),
            if tail.is_empty() {
                "claude exited".into()
            } else {
                tail
            },
        ),
    }
}

fn error(exit_code: Option<i32>, message: String) -> Ending {
    Ending {
        reason: "error",
        exit_code,
        message: Some(message),
    }
}

/// Maps Claude Code's stdout lines to events.
struct Mapper {
    entry: Arc<SessionEntry>,
    write: mpsc::UnboundedSender<Value>,
    /// The item of the content block being streamed (by block index).
    open: HashMap<u64, (String, Kind)>,
    message_id: String,
    /// `total_cost_usd` of the last `result` (it is cumulative).
    cost_so_far: f64,
    /// Permission answers being awaited, by Claude's request id.
    requests: HashMap<String, tokio::task::JoinHandle<()>>,
    blocks: u64,
}

impl Mapper {
    fn new(entry: Arc<SessionEntry>, write: mpsc::UnboundedSender<Value>) -> Self {
        Mapper {
            entry,
            write,
            open: HashMap::new(),
            message_id: String::new(),
            cost_so_far: 0.0,
            requests: HashMap::new(),
            blocks: 0,
        }
    }

    fn abort_requests(&mut self) {
        for (_, task) in self.requests.drain() {
            task.abort();
        }
    }

    fn unparsed(&self, raw: &[u8]) {
        self.entry.emit(
            "agent.unparsed",
            json!({ "raw": String::from_utf8_lossy(raw) }),
            None,
        );
    }

    fn line(&mut self, raw: &[u8]) {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(raw) else {
            return self.unparsed(raw);
        };
        let entry = self.entry.clone();
        match v["type"].as_str().unwrap_or_default() {
            "system" => {
                if v["subtype"] == "init" {
                    entry.set_native(v["session_id"].as_str(), v["model"].as_str());
                }
            }
            "stream_event" => self.stream_event(&v),
            "assistant" => self.assistant(&v),
            "user" => self.user(&v),
            "result" => self.result(&v),
            "control_request" => self.control_request(v),
            "control_cancel_request" => {
                if let Some(task) = v["request_id"]
                    .as_str()
                    .and_then(|id| self.requests.remove(id))
                {
                    task.abort();
                }
                entry.cancel_pending();
            }
            "control_response" | "keep_alive" | "rate_limit_event" => {}
            _ => self.unparsed(raw),
        }
    }

    fn stream_event(&mut self, v: &Value) {
        let event = &v["event"];
        let raw = Some(v.clone());
        match event["type"].as_str().unwrap_or_default() {
            "message_start" => {
                self.message_id = event["message"]["id"].as_str().unwrap_or("msg").to_string();
            }
            "content_block_start" => {
                let index = event["index"].as_u64().unwrap_or(0);
                let block = &event["content_block"];
                let (id, kind, role) = match block["type"].as_str().unwrap_or_default() {
                    "tool_use" => (
                        block["id"].as_str().unwrap_or("tool").to_string(),
                        Kind::ToolCall,
                        "assistant",
                    ),
                    "thinking" | "redacted_thinking" => {
                        (self.block_id(index), Kind::Reasoning, "assistant")
                    }
                    _ => (self.block_id(index), Kind::Message, "assistant"),
                };
                self.entry.item_started(&id, kind, Some(role), raw);
                self.open.insert(index, (id, kind));
            }
            "content_block_delta" => {
                let index = event["index"].as_u64().unwrap_or(0);
                let Some((id, _)) = self.open.get(&index) else {
                    return;
                };
                let delta = &event["delta"];
                let text = delta["text"]
                    .as_str()
                    .or_else(|| delta["thinking"].as_str())
                    .or_else(|| delta["partial_json"].as_str());
                if let Some(text) = text {
                    self.entry.item_delta(id, text, raw);
                }
            }
            _ => {}
        }
    }

    fn block_id(&self, index: u64) -> String {
        format!("{}_{index}", self.message_id)
    }

    /// One finished content block (Claude prints one `assistant` line per
    /// block, before the block's `content_block_stop`).
    fn assistant(&mut self, v: &Value) {
        let raw = Some(v.clone());
        let blocks = v["message"]["content"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for block in blocks {
            let kind = match block["type"].as_str().unwrap_or_default() {
                "tool_use" => Kind::ToolCall,
                "thinking" | "redacted_thinking" => Kind::Reasoning,
                _ => Kind::Message,
            };
            let id = if kind == Kind::ToolCall {
                block["id"].as_str().unwrap_or("tool").to_string()
            } else {
                // The open block of this kind, or (without partial
                // messages) a new id.
                let open = self
                    .open
                    .iter()
                    .filter(|(_, (_, k))| *k == kind)
                    .max_by_key(|(i, _)| **i)
                    .map(|(i, (id, _))| (*i, id.clone()));
                match open {
                    Some((index, id)) => {
                        self.open.remove(&index);
                        id
                    }
                    None => {
                        self.blocks += 1;
                        format!(
                            "{}_b{}",
                            v["message"]["id"].as_str().unwrap_or("msg"),
                            self.blocks
                        )
                    }
                }
            };
            let content = match kind {
                Kind::ToolCall => {
                    let tool = block["name"].as_str().unwrap_or_default();
                    items::tool_call(&id, tool, &block["input"])
                }
                Kind::Reasoning => items::text(block["thinking"].as_str().unwrap_or_default()),
                _ => items::text(block["text"].as_str().unwrap_or_default()),
            };
            self.entry.item_completed(
                items::item(&id, kind, Some("assistant"), "completed", content),
                raw.clone(),
            );
        }
    }

    /// Tool results (and Claude's own notes, such as an interruption).
    fn user(&mut self, v: &Value) {
        let raw = Some(v.clone());
        let content = &v["message"]["content"];
        let Some(blocks) = content.as_array() else {
            return;
        };
        for block in blocks {
            match block["type"].as_str().unwrap_or_default() {
                "tool_result" => {
                    let call = block["tool_use_id"].as_str().unwrap_or_default();
                    let is_error = block["is_error"].as_bool().unwrap_or(false);
                    let id = format!("{call}_result");
                    self.entry.item_completed(
                        items::item(
                            &id,
                            Kind::ToolResult,
                            Some("tool"),
                            if is_error { "failed" } else { "completed" },
                            items::tool_result(call, &block["content"], is_error),
                        ),
                        raw.clone(),
                    );
                }
                "text" => {
                    let text = block["text"].as_str().unwrap_or_default();
                    if text.starts_with("[Request interrupted") {
                        let id = v["uuid"].as_str().unwrap_or("interrupted").to_string();
                        self.entry.item_completed(
                            items::item(&id, Kind::Status, None, "interrupted", items::text(text)),
                            raw.clone(),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// The end of a turn: usage, errors, idle.
    fn result(&mut self, v: &Value) {
        let raw = Some(v.clone());
        self.entry.set_native(v["session_id"].as_str(), None);
        let total = v["total_cost_usd"].as_f64().unwrap_or(self.cost_so_far);
        let cost = (total - self.cost_so_far).max(0.0);
        self.cost_so_far = total;
        let usage = &v["usage"];
        let mut data = json!({
            "input_tokens": usage["input_tokens"].as_u64().unwrap_or(0),
            "output_tokens": usage["output_tokens"].as_u64().unwrap_or(0),
            "cost_usd": cost,
        });
        for key in ["cache_read_input_tokens", "cache_creation_input_tokens"] {
            if let Some(n) = usage[key].as_u64() {
                data[key] = json!(n);
            }
        }
        self.entry.emit("usage", data, raw.clone());
        let subtype = v["subtype"].as_str().unwrap_or_default();
        if v["is_error"] == true && subtype != "error_during_execution" {
            let message = v["errors"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|m| !m.is_empty())
                .or_else(|| v["result"].as_str().map(str::to_string))
                .unwrap_or_else(|| subtype.to_string());
            self.entry
                .emit("error", json!({ "message": message, "kind": subtype }), raw);
        }
        self.open.clear();
        self.entry.turn_done();
    }

    /// `can_use_tool`: a person decides (Claude's questions and plan
    /// approval arrive the same way, as the tools `AskUserQuestion` and
    /// `ExitPlanMode`).
    fn control_request(&mut self, v: Value) {
        let request = &v["request"];
        if request["subtype"] != "can_use_tool" {
            return;
        }
        let Some(request_id) = v["request_id"].as_str().map(str::to_string) else {
            return;
        };
        let tool = request["tool_name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let input = request["input"].clone();
        let entry = self.entry.clone();
        let write = self.write.clone();
        let id = request_id.clone();
        let task = tokio::spawn(async move {
            let response = match tool.as_str() {
                "AskUserQuestion" => ask_user_question(&entry, input, v).await,
                "ExitPlanMode" => {
                    let plan = input["plan"]
                        .as_str()
                        .unwrap_or("Approve the plan?")
                        .to_string();
                    match entry
                        .ask_question(&plan, vec!["approve".into(), "reject".into()], Some(v))
                        .await
                    {
                        Reply::Answers(a) if a.first().map(String::as_str) == Some("approve") => {
                            allow(&input)
                        }
                        _ => deny("The user did not approve the plan."),
                    }
                }
                _ => match entry.ask_permission(&tool, input.clone(), Some(v)).await {
                    PermissionDecision::Reject => deny("The user rejected this tool use."),
                    _ => allow(&input),
                },
            };
            let _ = write.send(json!({
                "type": "control_response",
                "response": { "subtype": "success", "request_id": id, "response": response },
            }));
        });
        self.requests.retain(|_, t| !t.is_finished());
        self.requests.insert(request_id, task);
    }
}

fn allow(input: &Value) -> Value {
    json!({ "behavior": "allow", "updatedInput": input })
}

fn deny(message: &str) -> Value {
    json!({ "behavior": "deny", "message": message })
}

/// Claude's `AskUserQuestion`: `{questions: [{question, options: [{label}]}]}`;
/// the answers go back in the tool's input, keyed by question.
async fn ask_user_question(entry: &Arc<SessionEntry>, input: Value, raw: Value) -> Value {
    let questions = input["questions"].as_array().cloned().unwrap_or_default();
    let prompt = questions
        .iter()
        .filter_map(|q| q["question"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let options: Vec<String> = questions
        .first()
        .and_then(|q| q["options"].as_array())
        .map(|o| {
            o.iter()
                .filter_map(|o| o["label"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match entry.ask_question(&prompt, options, Some(raw)).await {
        Reply::Answers(answers) => {
            let mut map = serde_json::Map::new();
            for (q, a) in questions.iter().zip(answers) {
                if let Some(q) = q["question"].as_str() {
                    map.insert(q.to_string(), json!(a));
                }
            }
            let mut input = input;
            input["answers"] = Value::Object(map);
            allow(&input)
        }
        Reply::Rejected => deny("The user declined to answer."),
    }
}
