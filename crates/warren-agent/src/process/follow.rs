//! Following a managed process's output: replay from a cursor, then live,
//! with no gap between the two and no silent drop.
//!
//! A follower owns nothing but its cursor: it pulls from the ring at its own
//! pace, so a slow reader never holds memory or blocks the process. Each
//! step arms the output notification *before* reading the ring, so output
//! appended between the read and the wait still wakes it. When the writer
//! has lapped the reader, the next step says how many bytes were lost and
//! resumes at the oldest byte kept.

use std::sync::Arc;

use base64::Engine;
use warren_api::agent::{Encoding, OutputChunk, StreamKind};

use super::managed::Managed;
use super::reaper::ExitStatus;
use super::ring::Read;

/// One step of a follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// Output bytes of one stream.
    Output {
        /// Their stream.
        stream: StreamKind,
        /// Cursor of the first byte.
        cursor: u64,
        /// The bytes (never empty).
        data: Vec<u8>,
    },
    /// Output asked for had left the ring; the follow resumes at `cursor`.
    Dropped {
        /// How many bytes were lost.
        bytes: u64,
        /// Where reading resumed.
        cursor: u64,
    },
    /// The process exited and every byte of its output has been returned.
    Exit {
        /// How it ended.
        status: ExitStatus,
        /// Cursor one past the last output byte.
        cursor: u64,
    },
}

/// A reader of one process's output.
pub struct Follower {
    proc: Arc<Managed>,
    cursor: u64,
    max_chunk: usize,
    utf8: bool,
    finished: bool,
}

impl Follower {
    /// A follower from `cursor`, returning chunks of at most `max_chunk`
    /// bytes; with `utf8`, chunks do not split UTF-8 sequences.
    pub(super) fn new(proc: Arc<Managed>, cursor: u64, max_chunk: usize, utf8: bool) -> Self {
        Follower {
            proc,
            cursor,
            max_chunk,
            utf8,
            finished: false,
        }
    }

    /// The next event; `None` after `Exit`. Cancel-safe: nothing is consumed
    /// unless the event is returned.
    pub async fn next(&mut self) -> Option<FollowEvent> {
        if self.finished {
            return None;
        }
        loop {
            let proc = self.proc.clone();
            let changed = proc.output_changed();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if let Some(event) = self.step() {
                return Some(event);
            }
            changed.await;
        }
    }

    /// What the ring has at the cursor now, without waiting.
    fn step(&mut self) -> Option<FollowEvent> {
        let (read, exit) = self.proc.read(self.cursor, self.max_chunk, self.utf8);
        match read {
            Read::Data { stream, bytes } => {
                let cursor = self.cursor;
                self.cursor += bytes.len() as u64;
                Some(FollowEvent::Output {
                    stream,
                    cursor,
                    data: bytes,
                })
            }
            Read::Lost { resume } => {
                let bytes = resume - self.cursor;
                self.cursor = resume;
                Some(FollowEvent::Dropped {
                    bytes,
                    cursor: resume,
                })
            }
            Read::Empty => {
                let exit = exit?;
                self.finished = true;
                Some(FollowEvent::Exit {
                    status: exit.status,
                    cursor: self.cursor,
                })
            }
        }
    }
}

/// Output as carried in JSON: UTF-8 text when it is, base64 otherwise.
pub fn output_chunk(stream: StreamKind, cursor: u64, data: &[u8]) -> OutputChunk {
    let (data, encoding) = match std::str::from_utf8(data) {
        Ok(text) => (text.to_string(), Encoding::Utf8),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(data),
            Encoding::Base64,
        ),
    };
    OutputChunk {
        stream,
        cursor,
        data,
        encoding,
    }
}
