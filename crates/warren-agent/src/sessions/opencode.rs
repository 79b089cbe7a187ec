//! The `opencode` driver: OpenCode's `opencode run --format json`, one
//! process per turn (`--session <id>` after the first), the prompt on
//! stdin (an argument would be quoted by OpenCode). Its events are whole
//! parts (text, tool uses once finished, step ends with tokens and cost).
//! Why not `opencode acp`: `run` starts faster per turn and needs no
//! JSON-RPC session; in `run`, OpenCode rejects what its config says to
//! ask about, so Warren gives it no such config and the Warren sandbox is
//! the boundary (`permission.requested` never comes from OpenCode).
//!
//! The session's env can carry `OPENCODE_CONFIG_CONTENT` (providers, the
//! model); the driver turns off OpenCode's update and model-list fetches.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::items::Kind;
use super::session::{Command, Ending, SessionEntry};
use super::turns::{self, TurnAgent};
use super::DriverStart;

struct OpenCode {
    model: Option<String>,
    /// Tokens and cost of the turn's steps, reported as one `usage`.
    usage: (u64, u64, f64),
}

impl TurnAgent for OpenCode {
    fn argv(&self, program: &str, _prompt: &str, native: Option<&str>) -> Vec<String> {
        let mut argv = vec![
            program.to_string(),
            "run".into(),
            "--format".into(),
            "json".into(),
        ];
        if let Some(model) = &self.model {
            argv.extend(["--model".into(), model.clone()]);
        }
        if let Some(session) = native {
            argv.extend(["--session".into(), session.to_string()]);
        }
        argv
    }

    fn stdin(&self, prompt: &str) -> Option<String> {
        Some(prompt.to_string())
    }

    fn env(&self, env: &mut BTreeMap<String, String>) {
        for key in [
            "OPENCODE_DISABLE_MODELS_FETCH",
            "OPENCODE_DISABLE_AUTOUPDATE",
        ] {
            env.entry(key.into()).or_insert_with(|| "1".into());
        }
    }

    fn line(&mut self, entry: &SessionEntry, v: &Value) {
        if let Some(session) = v["sessionID"].as_str() {
            entry.set_native(Some(session), None);
        }
        let part = &v["part"];
        let id = part["id"].as_str().unwrap_or("part");
        match v["type"].as_str().unwrap_or_default() {
            "step_start" => {}
            "text" => turns::message(
                entry,
                id,
                Kind::Message,
                part["text"].as_str().unwrap_or_default(),
                v,
            ),
            "reasoning" => turns::message(
                entry,
                id,
                Kind::Reasoning,
                part["text"].as_str().unwrap_or_default(),
                v,
            ),
            "tool_use" => {
                let state = &part["state"];
                let failed = state["status"] == "error";
                let output = if failed {
                    &state["error"]
                } else {
                    &state["output"]
                };
                let call = part["callID"].as_str().unwrap_or(id);
                turns::tool(
                    entry,
                    call,
                    part["tool"].as_str().unwrap_or("tool"),
                    &state["input"],
                    output,
                    failed,
                    v,
                );
            }
            "step_finish" => {
                let tokens = &part["tokens"];
                self.usage.0 += tokens["input"].as_u64().unwrap_or(0);
                self.usage.1 += tokens["output"].as_u64().unwrap_or(0);
                self.usage.2 += part["cost"].as_f64().unwrap_or(0.0);
            }
            "error" => {
                let message = v["error"]["data"]["message"]
                    .as_str()
                    .or(v["error"]["message"].as_str())
                    .unwrap_or("opencode failed");
                entry.emit("error", json!({ "message": message }), Some(v.clone()));
            }
            _ => {
                entry.emit("agent.unparsed", json!({ "raw": v.to_string() }), None);
            }
        }
    }

    fn turn_done(&mut self, entry: &SessionEntry) {
        let (input, output, cost) = std::mem::take(&mut self.usage);
        entry.emit(
            "usage",
            json!({ "input_tokens": input, "output_tokens": output, "cost_usd": cost }),
            None,
        );
    }
}

/// Runs an OpenCode session until its command channel closes.
pub async fn run(start: DriverStart, commands: mpsc::UnboundedReceiver<Command>) -> Ending {
    let model = start.entry.options().model;
    let agent = OpenCode {
        model,
        usage: (0, 0, 0.0),
    };
    turns::run(start, agent, commands).await
}
