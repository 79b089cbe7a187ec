//! A session's event log: numbered events, kept in memory and appended to
//! `events.jsonl` in the session's directory, so a checkpoint of the sandbox
//! holds the conversation's stream as it was.
//!
//! Readers ask for the events after a sequence and then wait on
//! [`EventLog::changed`] for more: replay and live are one loop over one log,
//! so a reader that reconnects with its last sequence misses nothing.
//!
//! The file is written by the agent but lives on the sandbox's disk, where
//! sandbox code can change it: loading it is bounded (line and total sizes)
//! and tolerant (a line that does not parse, or a torn last line, is skipped).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::watch;
use warren_api::session::{Event, EventSource};

use crate::process::rfc3339;

/// File name of the log in a session's directory.
pub const EVENTS_FILE: &str = "events.jsonl";
/// Largest event line loaded back from disk; longer ones are skipped.
const MAX_LOADED_LINE: usize = 8 << 20;
/// Most bytes of `events.jsonl` loaded back at start.
const MAX_LOADED_BYTES: u64 = 256 << 20;

/// The events of one session.
pub struct EventLog {
    session_id: String,
    path: PathBuf,
    inner: Mutex<Inner>,
    last: watch::Sender<u64>,
}

struct Inner {
    events: Vec<Arc<Event>>,
    file: Option<File>,
    /// Whether the session has ended: readers stop at the end of the log.
    closed: bool,
}

impl EventLog {
    /// A new, empty log at `dir/events.jsonl`.
    pub fn create(session_id: &str, dir: &Path) -> std::io::Result<EventLog> {
        let path = dir.join(EVENTS_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(EventLog::with(session_id, path, Vec::new(), Some(file)))
    }

    /// The log of an earlier agent (after a restart, a restore or in a
    /// fork), loaded from `dir/events.jsonl`. Events keep their sequences;
    /// new ones follow the last one loaded.
    pub fn load(session_id: &str, dir: &Path) -> std::io::Result<EventLog> {
        let path = dir.join(EVENTS_FILE);
        let mut events: Vec<Arc<Event>> = Vec::new();
        if let Ok(file) = File::open(&path) {
            let mut reader = BufReader::new(file.take(MAX_LOADED_BYTES));
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = read_bounded_line(&mut reader, &mut line)?;
                if n == 0 {
                    break;
                }
                if line.last() != Some(&b'\n') {
                    break; // a torn last line: the agent died mid-write
                }
                let Ok(event) = serde_json::from_slice::<Event>(&line) else {
                    continue;
                };
                let expected = events.last().map_or(1, |e| e.sequence + 1);
                if event.sequence == expected && event.session_id == session_id {
                    events.push(Arc::new(event));
                }
            }
        }
        // Rewrite what was kept, so a torn or foreign tail does not sit
        // between the old events and the new ones.
        let tmp = path.with_extension("jsonl.tmp");
        {
            let mut out = File::create(&tmp)?;
            for event in &events {
                out.write_all(&line_of(event))?;
            }
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        let file = OpenOptions::new().append(true).open(&path)?;
        Ok(EventLog::with(session_id, path, events, Some(file)))
    }

    fn with(session_id: &str, path: PathBuf, events: Vec<Arc<Event>>, file: Option<File>) -> Self {
        let last = events.last().map_or(0, |e| e.sequence);
        EventLog {
            session_id: session_id.to_string(),
            path,
            inner: Mutex::new(Inner {
                events,
                file,
                closed: false,
            }),
            last: watch::Sender::new(last),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event and returns its sequence. A failed write to disk is
    /// logged; the event stays in memory and is delivered all the same.
    pub fn append(&self, type_: &str, source: EventSource, data: Value, raw: Option<Value>) -> u64 {
        let mut inner = self.inner();
        let sequence = inner.events.len() as u64 + first_sequence(&inner.events);
        let event = Arc::new(Event {
            sequence,
            time: rfc3339(SystemTime::now()),
            session_id: self.session_id.clone(),
            type_: type_.to_string(),
            source,
            data,
            raw,
        });
        if let Some(file) = inner.file.as_mut() {
            if let Err(e) = file.write_all(&line_of(&event)) {
                tracing::warn!(session = %self.session_id, path = %self.path.display(), error = %e,
                    "cannot append to the session's event file; events stay in memory");
                inner.file = None;
            }
        }
        inner.events.push(event);
        drop(inner);
        self.last.send_replace(sequence);
        sequence
    }

    /// Up to `limit` events after sequence `after`, oldest first.
    pub fn after(&self, after: u64, limit: usize) -> Vec<Arc<Event>> {
        let inner = self.inner();
        let first = first_sequence(&inner.events);
        let start = after.saturating_sub(first - 1) as usize;
        inner
            .events
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The newest sequence (0 before the first event).
    pub fn last_sequence(&self) -> u64 {
        *self.last.borrow()
    }

    /// Marks the log complete: followers end once they have read it all.
    pub fn close(&self) {
        self.inner().closed = true;
        self.last.send_modify(|_| {});
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner().closed
    }

    /// Reopens a closed log (a session resumed after it had ended).
    pub fn reopen(&self) {
        self.inner().closed = false;
    }

    /// A receiver that wakes when an event is appended or the log closes.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }
}

/// Sequences start at 1; a loaded log starts wherever its first event is.
fn first_sequence(events: &[Arc<Event>]) -> u64 {
    events.first().map_or(1, |e| e.sequence)
}

fn line_of(event: &Event) -> Vec<u8> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Reads one line of at most [`MAX_LOADED_LINE`] bytes; a longer one is
/// consumed and returned empty-but-terminated (so it fails to parse).
fn read_bounded_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        if line.len() + n <= MAX_LOADED_LINE {
            line.extend_from_slice(chunk);
        } else {
            line.clear();
            line.push(b'!');
        }
        total += n;
        reader.consume(n);
        if done {
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reloaded_log_keeps_its_sequences_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::create("ses_a", dir.path()).unwrap();
        assert_eq!(
            log.append(
                "item.delta",
                EventSource::Agent,
                json!({"delta": "a"}),
                None
            ),
            1
        );
        assert_eq!(
            log.append(
                "item.delta",
                EventSource::Agent,
                json!({"delta": "b"}),
                None
            ),
            2
        );
        drop(log);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(EVENTS_FILE))
            .unwrap();
        f.write_all(b"{\"sequence\":3,\"torn").unwrap();
        drop(f);

        let log = EventLog::load("ses_a", dir.path()).unwrap();
        assert_eq!(log.last_sequence(), 2);
        assert_eq!(log.append("usage", EventSource::Agent, json!({}), None), 3);
        let all = log.after(0, 100);
        assert_eq!(
            all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(log.after(2, 100)[0].type_, "usage");
        let text = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
    }
}
