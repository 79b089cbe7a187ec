//! Bounded runs of the desktop's external tools (xdotool, wmctrl, xclip,
//! ffmpeg): argv only (never a shell), `DISPLAY` and a UTF-8 locale set, stdin fed, stdout kept
//! up to a cap, and the whole process group killed at the time limit, so no
//! request ever hangs on a tool.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::process::{ExitStatus, Supervisor};
use crate::AgentError;

/// How long the usual tool call may take.
pub const QUICK: Duration = Duration::from_secs(10);
/// Most stderr bytes kept for the log.
const MAX_STDERR: usize = 16 * 1024;
/// After the tool exits, how long to read pipes that a child it forked
/// (xclip serving the clipboard) may hold open.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// What a tool wrote.
pub struct Output {
    /// Its stdout (at most the cap asked for).
    pub stdout: Vec<u8>,
    /// Whether stdout was cut at the cap (only with `truncate_stdout`).
    pub truncated: bool,
}

/// One tool invocation.
pub struct Tool<'a> {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The X display it talks to.
    pub display: &'a str,
    /// Bytes for its stdin, which is then closed.
    pub stdin: Option<Vec<u8>>,
    /// Its time limit.
    pub timeout: Duration,
    /// Most stdout bytes accepted; more is an error.
    pub max_stdout: usize,
    /// Keep the first `max_stdout` bytes of a longer stdout instead of
    /// failing.
    pub truncate_stdout: bool,
}

impl<'a> Tool<'a> {
    /// `argv` on `display` with the quick time limit and a 1 MiB stdout cap.
    pub fn new<S: Into<String>>(display: &'a str, argv: impl IntoIterator<Item = S>) -> Self {
        Tool {
            argv: argv.into_iter().map(Into::into).collect(),
            display,
            stdin: None,
            timeout: QUICK,
            max_stdout: 1 << 20,
            truncate_stdout: false,
        }
    }

    /// Runs it; a non-zero exit is [`AgentError::ToolFailed`].
    pub async fn run(self, processes: &Supervisor) -> Result<Output, AgentError> {
        let Tool {
            argv,
            display,
            stdin,
            timeout,
            max_stdout,
            truncate_stdout,
        } = self;
        let name = argv[0].clone();
        // A UTF-8 locale, or xdotool cannot type text beyond ASCII.
        let env = BTreeMap::from([
            ("DISPLAY".to_string(), display.to_string()),
            ("LC_ALL".to_string(), "C.UTF-8".to_string()),
        ]);
        let mut child = processes.spawn_child(&argv, "/", &env)?;
        let mut stdout_pipe = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stdin_pipe = child.stdin.take();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut overflow, mut ignored) = (false, false);
        let work = async {
            let io = async {
                tokio::join!(
                    fill(&mut stdout_pipe, &mut out, max_stdout, &mut overflow),
                    fill(&mut stderr_pipe, &mut err, MAX_STDERR, &mut ignored),
                    feed(stdin_pipe, stdin),
                )
            };
            tokio::pin!(io);
            tokio::select! {
                _ = &mut io => (&mut child.exit).await,
                status = &mut child.exit => {
                    let _ = tokio::time::timeout(DRAIN_GRACE, &mut io).await;
                    status
                }
            }
        };
        let status = tokio::time::timeout(timeout, work).await;
        // Dropping `child` kills its group unless it was reaped already.
        drop(child);
        let status = status.map_err(|_| AgentError::ToolTimedOut {
            tool: name.clone(),
            secs: timeout.as_secs(),
        })?;
        if overflow && !truncate_stdout {
            return Err(AgentError::ToolFailed {
                tool: name,
                detail: format!("more than {} bytes of output", max_stdout),
            });
        }
        check(&name, status, &err)?;
        Ok(Output {
            stdout: out,
            truncated: overflow,
        })
    }
}

fn check(name: &str, status: ExitStatus, stderr: &[u8]) -> Result<(), AgentError> {
    if status.code == Some(0) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(stderr);
    let text: String = text.trim().chars().take(500).collect();
    Err(AgentError::ToolFailed {
        tool: name.to_string(),
        detail: match (status.code, status.signal) {
            (Some(code), _) => format!("exit code {code}: {text}"),
            (_, Some(signal)) => format!("killed by signal {signal}: {text}"),
            _ => text,
        },
    })
}

/// Reads `pipe` to its end into `buf`, keeping at most `max` bytes; sets
/// `overflow` when there was more (and drains the rest).
async fn fill(
    pipe: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
    overflow: &mut bool,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = max - buf.len();
                if n > room {
                    *overflow = true;
                }
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// Writes `data` to stdin and closes it; a tool that exits without reading
/// makes the write fail, which is fine.
async fn feed(pipe: Option<tokio::net::unix::pipe::Sender>, data: Option<Vec<u8>>) {
    if let Some(mut pipe) = pipe {
        if let Some(data) = data {
            let _ = pipe.write_all(&data).await;
        }
    }
}
