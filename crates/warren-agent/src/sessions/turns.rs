//! Agents run once per turn (Codex's `exec`): a process
//! per prompt, resumed from the native session the first turn reported,
//! its JSON lines mapped by the agent's [`TurnAgent`]. Prompts that arrive
//! during a turn wait for it; an interrupt kills the turn's process group.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::items::{self, Kind};
use super::lines::{read_line, Tail};
use super::session::{Command, Ending, SessionEntry};
use super::DriverStart;

/// Longest stdout line mapped.
const MAX_LINE: usize = 8 << 20;

/// What differs between per-turn agents.
pub trait TurnAgent: Send {
    /// The command line of one turn (`native`: the session to continue).
    fn argv(&self, program: &str, prompt: &str, native: Option<&str>) -> Vec<String>;
    /// What to write to the turn's stdin (then closed).
    fn stdin(&self, prompt: &str) -> Option<String>;
    /// Adds what the agent needs to the environment.
    fn env(&self, env: &mut BTreeMap<String, String>);
    /// Maps one JSON line of the agent's output.
    fn line(&mut self, entry: &SessionEntry, v: &Value);
    /// The turn's process has exited (successfully).
    fn turn_done(&mut self, _entry: &SessionEntry) {}
}

/// Runs a per-turn agent's session until its command channel closes.
pub async fn run(
    start: DriverStart,
    mut agent: impl TurnAgent,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> Ending {
    let entry = start.entry.clone();
    let program = start
        .program
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut env = start.env.clone();
    agent.env(&mut env);
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
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return error(None, "the agent's pipes are missing".into());
        };
        if let Some(text) = agent.stdin(&prompt) {
            let _ = stdin.write_all(text.as_bytes()).await;
        }
        drop(stdin);
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
        } else {
            agent.turn_done(&entry);
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
pub fn message(entry: &SessionEntry, id: &str, kind: Kind, text: &str, raw: &Value) {
    entry.item_started(id, kind, Some("assistant"), None);
    entry.item_delta(id, text, None);
    entry.item_completed(
        items::item(id, kind, Some("assistant"), "completed", items::text(text)),
        Some(raw.clone()),
    );
}

/// Emits a finished tool call and its result.
pub fn tool(
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
