//! Bounded line reading of what agent processes print: a line longer than
//! the limit is cut (the rest read and dropped), never buffered whole, so a
//! process printing without newlines costs the agent a bounded amount.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::process::{Child, Supervisor};

/// Reads one line into `line` (cleared first, newline removed, cut at
/// `max` bytes). Returns the bytes consumed: 0 at end of stream.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    line.clear();
    let mut total = 0;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        total += used;
        reader.consume(used);
        if done.is_some() {
            return Ok(total);
        }
    }
}

/// The last few lines of a stream (an agent's stderr), for the message of
/// a `session.ended` with `reason: "error"`.
#[derive(Debug, Default)]
pub struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    /// Lines kept.
    const KEEP: usize = 20;
    /// Longest line kept.
    const LINE: usize = 1000;

    /// Adds a line, forgetting the oldest beyond [`Self::KEEP`].
    pub fn push(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(&line[..line.len().min(Self::LINE)]);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if self.lines.len() == Self::KEEP {
            self.lines.pop_front();
        }
        self.lines.push_back(text.to_string());
    }

    /// The lines, joined with newlines.
    pub fn text(&self) -> String {
        Vec::from(self.lines.clone()).join("\n")
    }

    /// Keeps the tail of `stream` (an agent's stderr) until it closes;
    /// [`TailTask::text`] after the process has exited.
    pub fn of(stream: impl AsyncRead + Unpin + Send + 'static) -> TailTask {
        let tail = Arc::new(Mutex::new(Tail::default()));
        let task = {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                while let Ok(n) = read_line(&mut reader, &mut line, 64 * 1024).await {
                    if n == 0 {
                        break;
                    }
                    tail.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(&line);
                }
            })
        };
        TailTask { tail, task }
    }
}

/// An agent process spoken to in JSON lines: one writer task (so that
/// concurrent answers never interleave), its stdout to read line by line,
/// the tail of its stderr kept.
pub struct JsonProcess {
    /// The process; dropping it kills its group.
    pub child: Child,
    /// Messages to write to its stdin, one JSON line each.
    pub write: mpsc::UnboundedSender<Value>,
    /// The writer task (abort it to close stdin).
    pub writer: tokio::task::JoinHandle<()>,
    /// Its stdout.
    pub stdout: BufReader<pipe::Receiver>,
    /// Its stderr's last lines.
    pub tail: TailTask,
}

impl JsonProcess {
    /// Starts `argv` in `cwd` with `env` through the supervisor.
    pub fn spawn(
        processes: &Supervisor,
        argv: &[String],
        cwd: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<JsonProcess, String> {
        let name = argv.first().cloned().unwrap_or_default();
        let mut child = processes
            .spawn_child(argv, cwd, env)
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(format!("the pipes of {name} are missing"));
        };
        let (write, mut rx) = mpsc::unbounded_channel::<Value>();
        let writer = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                let mut bytes = serde_json::to_vec(&message).unwrap_or_default();
                bytes.push(b'\n');
                if stdin.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        Ok(JsonProcess {
            child,
            write,
            writer,
            stdout: BufReader::new(stdout),
            tail: Tail::of(stderr),
        })
    }
}

/// The tail of a stream being read (see [`Tail::of`]).
pub struct TailTask {
    tail: Arc<Mutex<Tail>>,
    task: tokio::task::JoinHandle<()>,
}

impl TailTask {
    /// Waits for the stream to close, then returns its last lines.
    pub async fn text(self) -> String {
        let _ = self.task.await;
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_next_line_is_intact() {
        let data = format!("{}\nshort\nlast", "x".repeat(100));
        let mut reader = tokio::io::BufReader::with_capacity(16, data.as_bytes());
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 101);
        assert_eq!(line, b"xxxxxxxxxx");
        read_line(&mut reader, &mut line, 10).await.unwrap();
        assert_eq!(line, b"short");
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 4);
        assert_eq!(line, b"last");
        assert_eq!(read_line(&mut reader, &mut line, 10).await.unwrap(), 0);
    }
}
