//! `warren session start|attach|send|ls|kill|transcript`: coding-agent
//! sessions on a terminal. The stream is rendered readably (text as it
//! streams, one line per tool call, permission prompts answered on the
//! terminal) or as JSON lines with `--json`.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};

use clap::{Args, Subcommand};
use futures::StreamExt;
use warren_client::{
    AgentSession, Client, CreateSession, PermissionDecision, PermissionMode, SessionEvent,
};

use super::cli::{print_json, print_table, CliError, CliResult, Output};

/// `warren session ...`.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Start a coding agent in a sandbox and follow its first turn.
    Start(StartArgs),
    /// Follow a session's events (from the first, or after `--after`).
    Attach {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The session (`ses_…`).
        session: String,
        /// Replay only the events after this sequence.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        out: Output,
    },
    /// Send a follow-up prompt and follow the turn it starts.
    Send {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The session (`ses_…`).
        session: String,
        /// The prompt.
        prompt: String,
        #[command(flatten)]
        out: Output,
    },
    /// List the sessions of a sandbox.
    Ls {
        /// The sandbox (`sbx_…`).
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Kill a session's agent and end the session.
    Kill {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The session (`ses_…`).
        session: String,
        #[command(flatten)]
        out: Output,
    },
    /// Write a session's native transcript (gzip) to a file.
    Transcript {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The session (`ses_…`).
        session: String,
        /// The file to write.
        #[arg(long, short)]
        output: std::path::PathBuf,
    },
}

/// `warren session start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// The first prompt.
    prompt: String,
    /// `claude`, `codex`, `opencode` or `mock`.
    #[arg(long, default_value = "claude")]
    agent: String,
    /// The model, as the agent names it.
    #[arg(long)]
    model: Option<String>,
    /// `default`, `accept_edits`, `plan` or `bypass`.
    #[arg(long, value_parser = parse_mode)]
    permission_mode: Option<PermissionMode>,
    /// The agent's working directory in the sandbox.
    #[arg(long)]
    cwd: Option<String>,
    /// Environment of the agent, K=V (credentials). Repeatable.
    #[arg(long = "env", short = 'e', value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Tools that never ask. Repeatable.
    #[arg(long = "allow")]
    allowed_tools: Vec<String>,
    /// A native session id to continue.
    #[arg(long)]
    resume: Option<String>,
    /// Keep following after the first turn, until the session ends.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    out: Output,
}

fn parse_mode(s: &str) -> Result<PermissionMode, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("{s:?}: expected default, accept_edits, plan or bypass"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

/// `warren session ...`.
pub async fn session(client: &Client, command: SessionCommand) -> CliResult {
    match command {
        SessionCommand::Start(args) => start(client, args).await,
        SessionCommand::Attach {
            id,
            session,
            after,
            out,
        } => {
            let session = client.sandbox(&id).agent().get(&session).await?;
            follow(&session, after, Until::Ended, out.json).await
        }
        SessionCommand::Send {
            id,
            session,
            prompt,
            out,
        } => {
            let session = client.sandbox(&id).agent().get(&session).await?;
            let after = session.info().last_sequence;
            session.send(&prompt).await?;
            follow(&session, after, Until::TurnEnds, out.json).await
        }
        SessionCommand::Ls { id, out } => {
            let items = client.sandbox(&id).agent().list().await?;
            if out.json {
                return print_json(&items);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.agent.to_string(),
                        format!("{:?}", s.state).to_lowercase(),
                        s.last_sequence.to_string(),
                        s.created_at.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "AGENT", "STATE", "EVENTS", "CREATED"], &rows);
            Ok(0)
        }
        SessionCommand::Kill { id, session, out } => {
            let mut session = client.sandbox(&id).agent().get(&session).await?;
            let info = session.kill().await?.clone();
            if out.json {
                return print_json(&info);
            }
            println!("{}", info.id);
            Ok(0)
        }
        SessionCommand::Transcript {
            id,
            session,
            output,
        } => {
            let session = client.sandbox(&id).agent().get(&session).await?;
            let gz = session.transcript().await?;
            std::fs::write(&output, &gz).map_err(|source| CliError::Local {
                what: "writing",
                path: output.display().to_string(),
                source,
            })?;
            Ok(0)
        }
    }
}

async fn start(client: &Client, args: StartArgs) -> CliResult {
    let request = CreateSession {
        agent: args.agent,
        prompt: Some(args.prompt),
        model: args.model,
        permission_mode: args.permission_mode,
        cwd: args.cwd,
        env: (!args.env.is_empty()).then(|| args.env.into_iter().collect::<BTreeMap<_, _>>()),
        allowed_tools: (!args.allowed_tools.is_empty()).then_some(args.allowed_tools),
        resume: args.resume,
        ..CreateSession::default()
    };
    let session = client.sandbox(&args.id).agent().start(&request).await?;
    if !args.out.json {
        eprintln!("session {}", session.id());
    }
    let until = if args.follow {
        Until::Ended
    } else {
        Until::TurnEnds
    };
    follow(&session, 0, until, args.out.json).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    TurnEnds,
    Ended,
}

/// Follows the events, rendering each; answers permission requests on a
/// terminal. Returns 1 when the session ended with an error.
async fn follow(session: &AgentSession, after: u64, until: Until, json: bool) -> CliResult {
    let mut events = session.events(after);
    let mut view = View::default();
    let interactive = !json && std::io::stdin().is_terminal();
    while let Some(event) = events.next().await {
        let event = event?;
        if json {
            println!("{}", serde_json::to_string(&event)?);
        } else {
            view.render(&event);
        }
        match event.type_.as_str() {
            "permission.requested" if interactive => {
                let decision = ask_permission(&event);
                let id = event.data["permission_id"].as_str().unwrap_or_default();
                session.respond(id, decision).await?;
            }
            "question.requested" if interactive => {
                let answer = ask_question(&event);
                let id = event.data["question_id"].as_str().unwrap_or_default();
                session.answer(id, answer).await?;
            }
            "session.ended" => {
                return Ok(i32::from(event.data["reason"] == "error"));
            }
            "usage" if until == Until::TurnEnds => {
                let mut s = session.clone();
                if s.refresh().await?.state == warren_client::SessionState::Idle {
                    return Ok(0);
                }
            }
            _ => {}
        }
    }
    Ok(0)
}

/// What the renderer remembers: the kind of each streamed item, and
/// whether the cursor is in the middle of a line.
#[derive(Default)]
struct View {
    kinds: HashMap<String, String>,
    mid_line: bool,
    streamed: std::collections::HashSet<String>,
}

impl View {
    fn newline(&mut self) {
        if self.mid_line {
            println!();
            self.mid_line = false;
        }
    }

    fn render(&mut self, event: &SessionEvent) {
        let data = &event.data;
        match event.type_.as_str() {
            "item.started" => {
                let item = &data["item"];
                if let (Some(id), Some(kind)) = (item["item_id"].as_str(), item["kind"].as_str()) {
                    self.kinds.insert(id.to_string(), kind.to_string());
                }
            }
            "item.delta" => {
                let id = data["item_id"].as_str().unwrap_or_default();
                let kind = self.kinds.get(id).map(String::as_str);
                if matches!(kind, Some("message") | Some("reasoning")) {
                    print!("{}", data["delta"].as_str().unwrap_or_default());
                    let _ = std::io::stdout().flush();
                    self.mid_line = true;
                    self.streamed.insert(id.to_string());
                }
            }
            "item.completed" => {
                let item = &data["item"];
                let id = item["item_id"].as_str().unwrap_or_default();
                let content = &item["content"][0];
                match item["kind"].as_str().unwrap_or_default() {
                    "message" if item["role"] == "user" => {
                        self.newline();
                        println!("> {}", content["text"].as_str().unwrap_or_default());
                    }
                    "message" | "reasoning" => {
                        if !self.streamed.contains(id) {
                            print!("{}", content["text"].as_str().unwrap_or_default());
                        }
                        self.mid_line = true;
                        self.newline();
                    }
                    "tool_call" => {
                        self.newline();
                        let input = one_line(&content["input"].to_string(), 100);
                        println!("* {}({input})", content["tool"].as_str().unwrap_or("tool"));
                    }
                    "tool_result" => {
                        let output = match &content["output"] {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let mark = if content["is_error"] == true {
                            "x"
                        } else {
                            "="
                        };
                        println!("  {mark} {}", one_line(&output, 100));
                    }
                    "status" if item["status"] != "completed" => {
                        self.newline();
                        println!("[{}]", item["status"].as_str().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            "permission.requested" => {
                self.newline();
                println!(
                    "? permission for {}: {}",
                    data["tool"].as_str().unwrap_or_default(),
                    one_line(&data["input"].to_string(), 100)
                );
            }
            "permission.resolved" => {
                println!(
                    "  permission {}",
                    data["decision"].as_str().unwrap_or_default()
                );
            }
            "question.requested" => {
                self.newline();
                println!(
                    "? {} {}",
                    data["prompt"].as_str().unwrap_or_default(),
                    data["options"]
                );
            }
            "usage" => {
                self.newline();
                eprintln!(
                    "[{} in / {} out tokens{}]",
                    data["input_tokens"],
                    data["output_tokens"],
                    data["cost_usd"]
                        .as_f64()
                        .map(|c| format!(", ${c:.4}"))
                        .unwrap_or_default()
                );
            }
            "error" => {
                self.newline();
                eprintln!("error: {}", data["message"].as_str().unwrap_or_default());
            }
            "session.ended" => {
                self.newline();
                eprintln!(
                    "[session ended: {}]",
                    data["reason"].as_str().unwrap_or_default()
                );
                if let Some(message) = data["message"].as_str() {
                    eprintln!("{message}");
                }
            }
            _ => {}
        }
    }
}

fn one_line(s: &str, max: usize) -> String {
    let line: String = s.replace('\n', " ");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line
    }
}

fn read_line(prompt: &str) -> String {
    eprint!("{prompt}");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim().to_string()
}

fn ask_permission(_event: &SessionEvent) -> PermissionDecision {
    match read_line("  allow? [y]es once, [a]lways, [n]o: ").as_str() {
        "y" | "yes" => PermissionDecision::Once,
        "a" | "always" => PermissionDecision::Always,
        _ => PermissionDecision::Reject,
    }
}

fn ask_question(_event: &SessionEvent) -> Option<Vec<String>> {
    let answer = read_line("  answer (empty to decline): ");
    (!answer.is_empty()).then(|| vec![answer])
}
