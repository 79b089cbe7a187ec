//! The `mock` agent: deterministic, built in, no model. It exists so that
//! clients and UIs can be built and tested against every event type.
//!
//! Each prompt is one turn:
//! 1. the user's message as an item;
//! 2. with "think" in the prompt, a reasoning item;
//! 3. an assistant message streamed word by word: `Turn N. You said: P.`
//!    and, from the second turn on, `Earlier: P1 | P2 …` (the history
//!    survives restarts, restores and forks: it is the mock's native
//!    session file, `<state>/mock/<native id>.jsonl`);
//! 4. a `Write` tool call of `mock-turn-N.txt` (the prompt) in the
//!    session's cwd, under the permission mode: `bypass` and `accept_edits`
//!    write, `plan` skips, `default` asks (`permission.requested`) unless
//!    the tool is allowed; a rejection leaves the file unwritten;
//! 5. with "question", a question with the options `yes` and `no`;
//! 6. with "error", an `error` event; with "crash", the session ends with
//!    `reason: "error"` and exit code 1;
//! 7. a closing message and a `usage` event.
//!
//! With "slow" the words come 50 ms apart, so a turn can be interrupted.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use warren_api::session::{PermissionDecision, PermissionMode};

use super::items::{self, Kind};
use super::session::{Command, Ending, Reply, SessionEntry};

/// Directory (under the agent's state dir) of the mock's native sessions.
pub const MOCK_DIR: &str = "mock";

/// Runs a mock session until its command channel closes.
pub async fn run(
    entry: Arc<SessionEntry>,
    cwd: PathBuf,
    state_dir: PathBuf,
    resume: Option<String>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> Ending {
    let native = match resume {
        Some(id) => id,
        None => format!("mock-{}", &entry.id["ses_".len()..]),
    };
    let history_path = native_path(&state_dir, &native);
    let Some(history_path) = history_path else {
        return error_ending(format!("{native:?} is not a mock session id"));
    };
    let mut history = match load_history(&history_path) {
        Ok(h) => h,
        Err(e) => return error_ending(e),
    };
    entry.set_native(Some(&native), Some("mock-1"));
    let mut queue: VecDeque<String> = VecDeque::new();
    loop {
        let prompt = match queue.pop_front() {
            Some(p) => p,
            None => match commands.recv().await {
                Some(Command::Prompt(p)) => p,
                Some(Command::Interrupt) => continue,
                None => return Ending::completed(),
            },
        };
        if let Err(e) = append_history(&history_path, &prompt) {
            return error_ending(format!("cannot write the mock's history: {e}"));
        }
        let turn = Turn {
            entry: &entry,
            cwd: &cwd,
            n: history.len() + 1,
            earlier: &history,
            prompt: &prompt,
        };
        entry.turn_started();
        let outcome = {
            let run = turn.run();
            tokio::pin!(run);
            loop {
                tokio::select! {
                    outcome = &mut run => break Some(outcome),
                    command = commands.recv() => match command {
                        Some(Command::Prompt(p)) => queue.push_back(p),
                        Some(Command::Interrupt) => break None,
                        None => return Ending::completed(),
                    },
                }
            }
        };
        history.push(prompt);
        match outcome {
            Some(Ok(())) => {}
            Some(Err(ending)) => return ending,
            None => {
                entry.cancel_pending();
                let id = format!("itm_{}_interrupted", history.len());
                entry.item_completed(
                    items::item(
                        &id,
                        Kind::Status,
                        None,
                        "interrupted",
                        items::text("interrupted"),
                    ),
                    None,
                );
            }
        }
        entry.turn_done();
    }
}

fn error_ending(message: String) -> Ending {
    Ending {
        reason: "error",
        exit_code: None,
        message: Some(message),
    }
}

/// The file of a mock native session, or `None` for an id that could name
/// a path outside the mock's directory.
pub fn native_path(state_dir: &Path, native: &str) -> Option<PathBuf> {
    let ok = !native.is_empty()
        && native.len() <= 128
        && native
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| state_dir.join(MOCK_DIR).join(format!("{native}.jsonl")))
}

fn load_history(path: &Path) -> Result<Vec<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["prompt"].as_str().map(str::to_string))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read the mock's history: {e}")),
    }
}

fn append_history(path: &Path, prompt: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_vec(&json!({ "prompt": prompt })).unwrap_or_default();
    line.push(b'\n');
    file.write_all(&line)
}

struct Turn<'a> {
    entry: &'a Arc<SessionEntry>,
    cwd: &'a Path,
    n: usize,
    earlier: &'a [String],
    prompt: &'a str,
}

impl Turn<'_> {
    fn id(&self, what: &str) -> String {
        format!("itm_{}_{what}", self.n)
    }

    async fn run(&self) -> Result<(), Ending> {
        let entry = self.entry;
        let slow = self.prompt.contains("slow");
        entry.item_completed(
            items::item(
                &self.id("user"),
                Kind::Message,
                Some("user"),
                "completed",
                items::text(self.prompt),
            ),
            None,
        );
        if self.prompt.contains("think") {
            let id = self.id("reasoning");
            entry.item_started(&id, Kind::Reasoning, None, None);
            let thought = format!("The user asked: {}", self.prompt);
            entry.item_delta(&id, &thought, None);
            entry.item_completed(
                items::item(
                    &id,
                    Kind::Reasoning,
                    None,
                    "completed",
                    items::text(&thought),
                ),
                None,
            );
        }
        let mut reply = format!("Turn {}. You said: {}.", self.n, self.prompt);
        if !self.earlier.is_empty() {
            reply.push_str(&format!(" Earlier: {}.", self.earlier.join(" | ")));
        }
        if slow {
            reply.push_str(&" and so on".repeat(40));
        }
        self.stream_message(&self.id("reply"), &reply, slow).await;

        self.write_file().await;

        let mut closing = format!("Done with turn {}.", self.n);
        if self.prompt.contains("question") {
            let answer = entry
                .ask_question("Proceed?", vec!["yes".into(), "no".into()], None)
                .await;
            closing = match answer {
                Reply::Answers(a) => format!("You answered {}. {closing}", a.join(", ")),
                Reply::Rejected => format!("No answer. {closing}"),
            };
        }
        if self.prompt.contains("error") {
            entry.emit(
                "error",
                json!({ "message": "the mock agent reports an error, as asked" }),
                None,
            );
        }
        if self.prompt.contains("crash") {
            return Err(Ending {
                reason: "error",
                exit_code: Some(1),
                message: Some("the mock agent crashed, as asked".into()),
            });
        }
        self.stream_message(&self.id("done"), &closing, false).await;
        let words = |s: &str| s.split_whitespace().count() as u64;
        entry.emit(
            "usage",
            json!({
                "input_tokens": words(self.prompt),
                "output_tokens": words(&reply) + words(&closing),
                "cost_usd": 0.0,
            }),
            None,
        );
        Ok(())
    }

    async fn stream_message(&self, id: &str, text: &str, slow: bool) {
        let entry = self.entry;
        entry.item_started(id, Kind::Message, Some("assistant"), None);
        for (i, word) in text.split_inclusive(' ').enumerate() {
            if slow && i > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            entry.item_delta(id, word, None);
        }
        entry.item_completed(
            items::item(
                id,
                Kind::Message,
                Some("assistant"),
                "completed",
                items::text(text),
            ),
            None,
        );
    }

    /// The turn's tool call: `Write mock-turn-N.txt`, under the permission mode.
    async fn write_file(&self) {
        let entry = self.entry;
        let call = self.id("call");
        let file = format!("mock-turn-{}.txt", self.n);
        let input = json!({ "file_path": file, "content": self.prompt });
        entry.item_completed(
            items::item(
                &call,
                Kind::ToolCall,
                Some("assistant"),
                "completed",
                items::tool_call(&call, "Write", &input),
            ),
            None,
        );
        let mode = entry.options().permission_mode;
        let allowed = match mode {
            PermissionMode::Bypass | PermissionMode::AcceptEdits => Some(true),
            PermissionMode::Plan => None,
            PermissionMode::Default => {
                let decision = entry.ask_permission("Write", input.clone(), None).await;
                Some(decision != PermissionDecision::Reject)
            }
        };
        let (status, output, is_error) = match allowed {
            None => ("skipped", json!("plan mode: nothing was changed"), false),
            Some(false) => ("rejected", json!("permission denied"), true),
            Some(true) => match std::fs::write(self.cwd.join(&file), self.prompt) {
                Ok(()) => (
                    "completed",
                    json!(format!("wrote {} bytes to {file}", self.prompt.len())),
                    false,
                ),
                Err(e) => ("failed", json!(format!("cannot write {file}: {e}")), true),
            },
        };
        let result = self.id("result");
        entry.item_completed(
            items::item(
                &result,
                Kind::ToolResult,
                Some("tool"),
                status,
                items::tool_result(&call, &output, is_error),
            ),
            None,
        );
    }
}
