//! The `codex` driver: OpenAI's Codex CLI, one `codex exec --json` per
//! turn (`codex exec resume <thread>` after the first), its JSONL events
//! mapped to items. Why not its app-server: `exec` is its documented
//! scripting interface, resumes from the same rollout files, and needs no
//! JSON-RPC session of its own; the price is that Codex cannot ask for
//! approvals in `exec`, so permission modes map to its sandbox policy
//! (`plan`: read-only; otherwise no Codex sandbox: the Warren sandbox is
//! the boundary) and `permission.requested` never comes from Codex.
//!
//! `OPENAI_BASE_URL` in the session's env points Codex at another
//! Responses API (a model provider `warren` is configured for it).

use std::collections::VecDeque;

use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::sync::mpsc;
use warren_api::session::PermissionMode;

use super::items::{self, Kind};
use super::lines::{read_line, Tail};
use super::session::{Command, Ending, SessionEntry};
use super::DriverStart;

struct Codex {
    model: Option<String>,
    mode: PermissionMode,
    base_url: Option<String>,
}

impl Codex {
    fn argv(&self, program: &str, prompt: &str, native: Option<&str>) -> Vec<String> {
        let mut argv = vec![
            program.to_string(),
            "exec".into(),
            "--json".into(),
            "--skip-git-repo-check".into(),
        ];
        match self.mode {
            PermissionMode::Plan => argv.extend(["-s".into(), "read-only".into()]),
            _ => argv.push("--dangerously-bypass-approvals-and-sandbox".into()),
        }
        if let Some(model) = &self.model {
            argv.extend(["-m".into(), model.clone()]);
        }
        if let Some(url) = &self.base_url {
            for c in [
                "model_provider=\"warren\"".to_string(),
                "model_providers.warren.name=\"warren\"".to_string(),
                format!("model_providers.warren.base_url={}", json!(url)),
                "model_providers.warren.wire_api=\"responses\"".to_string(),
                "model_providers.warren.env_key=\"OPENAI_API_KEY\"".to_string(),
            ] {
                argv.extend(["-c".into(), c]);
            }
        }
        if let Some(thread) = native {
            argv.extend(["resume".into(), thread.to_string()]);
        }
        argv.push(prompt.to_string());
        argv
    }

    fn line(&mut self, entry: &SessionEntry, v: &Value) {
        match v["type"].as_str().unwrap_or_default() {
            "thread.started" => entry.set_native(v["thread_id"].as_str(), self.model.as_deref()),
            "turn.started" => {}
            "item.started" => {}
            "item.completed" => item(entry, &v["item"], v),
            "turn.completed" => {
                let usage = &v["usage"];
                entry.emit(
                    "usage",
                    json!({
                        "input_tokens": usage["input_tokens"].as_u64().unwrap_or(0),
                        "output_tokens": usage["output_tokens"].as_u64().unwrap_or(0),
                        "cached_input_tokens": usage["cached_input_tokens"].as_u64().unwrap_or(0),
                    }),
                    Some(v.clone()),
                );
            }
            "turn.failed" | "error" => {
                let message = v["error"]["message"]
                    .as_str()
                    .or(v["message"].as_str())
                    .unwrap_or("codex failed");
                entry.emit("error", json!({ "message": message }), Some(v.clone()));
            }
            _ => {
                entry.emit("agent.unparsed", json!({ "raw": v.to_string() }), None);
            }
        }
    }
}

fn item(entry: &SessionEntry, item: &Value, raw: &Value) {
    let id = item["id"].as_str().unwrap_or("item");
    let id = format!("{id}_{}", entry.log.last_sequence() + 1);
    match item["type"].as_str().unwrap_or_default() {
        "agent_message" => message(
            entry,
            &id,
            Kind::Message,
            item["text"].as_str().unwrap_or_default(),
            raw,
        ),
        "reasoning" => message(
            entry,
            &id,
            Kind::Reasoning,
            item["text"].as_str().unwrap_or_default(),
            raw,
        ),
        "command_execution" => tool(
            entry,
            &id,
            "shell",
            &json!({ "command": item["command"] }),
            &json!({ "output": item["aggregated_output"], "exit_code": item["exit_code"] }),
            item["exit_code"].as_i64().is_some_and(|c| c != 0),
            raw,
        ),
        "file_change" => tool(
            entry,
            &id,
            "apply_patch",
            &json!({ "changes": item["changes"] }),
            &json!(item["status"]),
            item["status"] == "failed",
            raw,
        ),
        "mcp_tool_call" => tool(
            entry,
            &id,
            item["tool"].as_str().unwrap_or("mcp"),
            &item["arguments"],
            &item["result"],
            item["status"] == "failed",
            raw,
        ),
        "error" => {
            entry.emit(
                "error",
                json!({ "message": item["message"] }),
                Some(raw.clone()),
            );
        }
        _ => {
            entry.emit("agent.unparsed", json!({ "raw": raw.to_string() }), None);
        }
    }
}

/// Runs a Codex session until its command channel closes.
pub async fn run(start: DriverStart, commands: mpsc::UnboundedReceiver<Command>) -> Ending {
    let options = start.entry.options();
    let codex = Codex {
        model: options.model,
        mode: options.permission_mode,
        base_url: start.env.get("OPENAI_BASE_URL").cloned(),
    };
    run_turns(start, codex, commands).await
}

/// Longest stdout line mapped.
const MAX_LINE: usize = 8 << 20;

/// Runs the turns of a session, one `codex exec` each, until its command
/// channel closes. Prompts that arrive during a turn wait for it; an
/// interrupt kills the turn's process group.
async fn run_turns(
    start: DriverStart,
    mut agent: Codex,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> Ending {
    let entry = start.entry.clone();
    let program = start
        .program
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let env = start.env.clone();
    let cwd = start.cwd.display().to_string();
    let mut native = start.resume.clone();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut turn = 0u64;
    loop {
        let prompt = match queue.pop_front() {
            Some(p) => p,
            None => match commands.recv().await {
                Some(Command::Prompt(p)) => p,
                Some(Command::Interrupt) => continue,
                None => return Ending::completed(),
            },
        };
        turn += 1;
        entry.turn_started();
        entry.item_completed(
            items::item(
                &format!("user_{turn}"),
                Kind::Message,
                Some("user"),
                "completed",
                items::text(&prompt),
            ),
            None,
        );
        let argv = agent.argv(&program, &prompt, native.as_deref());
        let mut child = match start.processes.spawn_child(&argv, &cwd, &env) {
            Ok(child) => child,
            Err(e) => return error(None, format!("cannot start {program}: {e}")),
        };
        // The prompt is an argument; stdin closed at once (Codex would
        // read it as more prompt).
        drop(child.stdin.take());
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return error(None, "codex's pipes are missing".into());
        };
        let tail = Tail::of(stderr);
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut interrupted = false;
        loop {
            tokio::select! {
                read = read_line(&mut reader, &mut line, MAX_LINE) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => match serde_json::from_slice::<Value>(&line) {
                        Ok(v) => agent.line(&entry, &v),
                        Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
                        Err(_) => {
                            entry.emit("agent.unparsed", json!({ "raw": String::from_utf8_lossy(&line) }), None);
                        }
                    },
                },
                command = commands.recv() => match command {
                    Some(Command::Prompt(p)) => queue.push_back(p),
                    Some(Command::Interrupt) => {
                        interrupted = true;
                        child.signal(libc::SIGINT);
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        child.signal(libc::SIGKILL);
                        break;
                    }
                    None => return Ending::completed(),
                },
            }
        }
        let status = (&mut child.exit).await;
        let tail = tail.text().await;
        if let Some(id) = entry.native_id() {
            native = Some(id);
        }
        if interrupted {
            entry.item_completed(
                items::item(
                    &format!("turn_{turn}_interrupted"),
                    Kind::Status,
                    None,
                    "interrupted",
                    items::text("interrupted"),
                ),
                None,
            );
        } else if status.code != Some(0) {
            return error(
                status.code.or(status.signal.map(|s| 128 + s)),
                if tail.is_empty() {
                    format!("{program} failed")
                } else {
                    tail
                },
            );
        }
        entry.turn_done();
    }
}

fn error(exit_code: Option<i32>, message: String) -> Ending {
    Ending {
        reason: "error",
        exit_code,
        message: Some(message),
    }
}

/// Emits a complete assistant message (started, its text as one delta,
/// completed), so clients see one shape whether or not the agent streams.
fn message(entry: &SessionEntry, id: &str, kind: Kind, text: &str, raw: &Value) {
    entry.item_started(id, kind, Some("assistant"), None);
    entry.item_delta(id, text, None);
    entry.item_completed(
        items::item(id, kind, Some("assistant"), "completed", items::text(text)),
        Some(raw.clone()),
    );
}

/// Emits a finished tool call and its result.
fn tool(
    entry: &SessionEntry,
    call: &str,
    name: &str,
    input: &Value,
    output: &Value,
    is_error: bool,
    raw: &Value,
) {
    entry.item_completed(
        items::item(
            call,
            Kind::ToolCall,
            Some("assistant"),
            "completed",
            items::tool_call(call, name, input),
        ),
        Some(raw.clone()),
    );
    entry.item_completed(
        items::item(
            &format!("{call}_result"),
            Kind::ToolResult,
            Some("tool"),
            if is_error { "failed" } else { "completed" },
            items::tool_result(call, output, is_error),
        ),
        None,
    );
}
