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

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use warren_api::session::PermissionMode;

use super::items::Kind;
use super::session::{Command, Ending, SessionEntry};
use super::turns::{self, TurnAgent};
use super::DriverStart;

struct Codex {
    model: Option<String>,
    mode: PermissionMode,
    base_url: Option<String>,
}

impl TurnAgent for Codex {
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

    fn stdin(&self, _prompt: &str) -> Option<String> {
        None
    }

    fn env(&self, _env: &mut BTreeMap<String, String>) {}

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
        "agent_message" => turns::message(
            entry,
            &id,
            Kind::Message,
            item["text"].as_str().unwrap_or_default(),
            raw,
        ),
        "reasoning" => turns::message(
            entry,
            &id,
            Kind::Reasoning,
            item["text"].as_str().unwrap_or_default(),
            raw,
        ),
        "command_execution" => turns::tool(
            entry,
            &id,
            "shell",
            &json!({ "command": item["command"] }),
            &json!({ "output": item["aggregated_output"], "exit_code": item["exit_code"] }),
            item["exit_code"].as_i64().is_some_and(|c| c != 0),
            raw,
        ),
        "file_change" => turns::tool(
            entry,
            &id,
            "apply_patch",
            &json!({ "changes": item["changes"] }),
            &json!(item["status"]),
            item["status"] == "failed",
            raw,
        ),
        "mcp_tool_call" => turns::tool(
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
    turns::run(start, codex, commands).await
}
