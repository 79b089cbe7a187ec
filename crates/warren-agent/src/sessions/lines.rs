//! Bounded line reading of what agent processes print: a line longer than
//! the limit is cut (the rest read and dropped), never buffered whole, so a
//! process printing without newlines costs the agent a bounded amount.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};

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
