//! The output ring of a managed process.
//!
//! stdout and stderr go into one ring addressed by one monotonic byte
//! cursor: the first byte ever written is cursor 0, and a cursor never goes
//! back. The ring keeps the last `capacity` bytes; older ones are dropped and
//! a reader that asks for them learns exactly how many it lost. Segments
//! record where the stream changes, so each read returns bytes of one stream.
//!
//! Memory grows with the output (doubling) up to the capacity, so a process
//! that prints a line costs a few bytes, not the whole ring.

use std::collections::VecDeque;

use warren_api::agent::StreamKind;

/// Bytes from `start` on came from `stream` (until the next segment).
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    stream: StreamKind,
}

/// The ring buffer.
#[derive(Debug)]
pub struct Ring {
    /// Cursor `c` lives at `buf[c % capacity]`.
    buf: Vec<u8>,
    capacity: usize,
    /// Cursor of the oldest byte kept.
    start: u64,
    /// Cursor one past the newest byte.
    end: u64,
    /// Stream changes, oldest first; the first one starts at or before `start`.
    segments: VecDeque<Segment>,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Bytes of one stream, starting at the cursor asked for.
    Data {
        /// Their stream.
        stream: StreamKind,
        /// The bytes (never empty).
        bytes: Vec<u8>,
    },
    /// The cursor asked for has left the ring; reading resumes at `resume`.
    Lost {
        /// The oldest cursor still kept.
        resume: u64,
    },
    /// Nothing (yet) at this cursor.
    Empty,
}

/// How to cut a read.
#[derive(Debug, Clone, Copy)]
pub struct ReadOpts {
    /// Most bytes to return.
    pub max: usize,
    /// Do not split a UTF-8 sequence when its rest is in the ring or may
    /// still arrive, so text chunks stay valid UTF-8.
    pub utf8: bool,
    /// More output may still be appended (the process runs).
    pub live: bool,
}

impl Ring {
    /// An empty ring keeping at most `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> Self {
        Ring {
            buf: Vec::new(),
            capacity: capacity.max(1),
            start: 0,
            end: 0,
            segments: VecDeque::new(),
        }
    }

    /// Cursor one past the newest byte.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends output of `stream`.
    pub fn push(&mut self, stream: StreamKind, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.segments.back().map(|s| s.stream) != Some(stream) {
            self.segments.push_back(Segment {
                start: self.end,
                stream,
            });
        }
        let cap = self.capacity;
        if data.len() > cap {
            // Only the last `cap` bytes can be kept; the rest is dropped at once.
            let skip = data.len() - cap;
            self.end += skip as u64;
            data = &data[skip..];
        }
        let new_end = self.end + data.len() as u64;
        if self.buf.len() < cap {
            // While the ring has never wrapped, cursor c lives at buf[c].
            let needed = if new_end > cap as u64 {
                cap
            } else {
                (new_end as usize).max(self.buf.len() * 2).min(cap)
            };
            self.buf.resize(needed, 0);
        }
        let pos = (self.end % cap as u64) as usize;
        let first = data.len().min(cap - pos);
        self.buf[pos..pos + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.end = new_end;
        self.start = self.start.max(new_end.saturating_sub(cap as u64));
        while self.segments.len() >= 2 && self.segments[1].start <= self.start {
            self.segments.pop_front();
        }
    }

    /// Reads from `cursor` (at most `opts.max` bytes, all of one stream).
    pub fn read(&self, cursor: u64, opts: ReadOpts) -> Read {
        if cursor < self.start {
            return Read::Lost { resume: self.start };
        }
        if cursor >= self.end {
            return Read::Empty;
        }
        let idx = self.segments.partition_point(|s| s.start <= cursor) - 1;
        let segment = self.segments[idx];
        let is_last = idx + 1 == self.segments.len();
        let seg_end = self.segments.get(idx + 1).map_or(self.end, |s| s.start);
        let take_end = seg_end.min(cursor.saturating_add(opts.max.max(4) as u64));
        let mut bytes = self.copy(cursor, take_end);
        // The rest of a split character follows in this stream when the read
        // was capped, or may still arrive when it ends at the live end.
        if opts.utf8 && (take_end < seg_end || (is_last && opts.live)) {
            let cut = incomplete_utf8_tail(&bytes);
            bytes.truncate(bytes.len() - cut);
        }
        if bytes.is_empty() {
            return Read::Empty;
        }
        Read::Data {
            stream: segment.stream,
            bytes,
        }
    }

    /// Copies cursors `from..to` (all inside the ring) out.
    fn copy(&self, from: u64, to: u64) -> Vec<u8> {
        let cap = self.capacity as u64;
        let len = (to - from) as usize;
        let pos = (from % cap) as usize;
        let first = len.min(self.capacity - pos);
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.buf[pos..pos + first]);
        out.extend_from_slice(&self.buf[..len - first]);
        out
    }
}

/// How many trailing bytes of `b` are the start of a UTF-8 sequence whose
/// continuation bytes are missing.
fn incomplete_utf8_tail(b: &[u8]) -> usize {
    for i in 1..=b.len().min(3) {
        let c = b[b.len() - i];
        if c & 0xC0 == 0x80 {
            continue;
        }
        let need = match c {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            // ASCII, or a byte that starts no valid sequence: nothing to wait for.
            _ => 1,
        };
        return if need > i { i } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamKind::{Stderr, Stdout};

    const ALL: ReadOpts = ReadOpts {
        max: usize::MAX,
        utf8: false,
        live: false,
    };

    fn data(stream: StreamKind, s: &str) -> Read {
        Read::Data {
            stream,
            bytes: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_back_by_stream_with_one_cursor() {
        let mut r = Ring::new(64);
        r.push(Stdout, b"one ");
        r.push(Stdout, b"two ");
        r.push(Stderr, b"err");
        r.push(Stdout, b"!");
        assert_eq!(r.end(), 12);
        assert_eq!(r.read(0, ALL), data(Stdout, "one two "));
        assert_eq!(r.read(2, ALL), data(Stdout, "e two "));
        assert_eq!(r.read(8, ALL), data(Stderr, "err"));
        assert_eq!(r.read(11, ALL), data(Stdout, "!"));
        assert_eq!(r.read(12, ALL), Read::Empty);
        let capped = ReadOpts { max: 5, ..ALL };
        assert_eq!(r.read(0, capped), data(Stdout, "one t"));
    }

    #[test]
    fn wraps_and_reports_lost_bytes() {
        let mut r = Ring::new(8);
        r.push(Stdout, b"abcdef");
        r.push(Stderr, b"ghij");
        assert_eq!(r.read(0, ALL), Read::Lost { resume: 2 });
        assert_eq!(r.read(2, ALL), data(Stdout, "cdef"));
        assert_eq!(r.read(6, ALL), data(Stderr, "ghij"));
        // Larger than the ring: only the tail is kept.
        r.push(Stdout, b"0123456789xyz");
        assert_eq!(r.end(), 23);
        assert_eq!(r.read(10, ALL), Read::Lost { resume: 15 });
        assert_eq!(r.read(15, ALL), data(Stdout, "56789xyz"));
        assert_eq!(r.segments.len(), 1);
    }

    #[test]
    fn many_small_writes_match_a_reference() {
        let mut r = Ring::new(100);
        let mut all = Vec::new();
        for i in 0..500u32 {
            let chunk = format!("{i},");
            r.push(Stdout, chunk.as_bytes());
            all.extend_from_slice(chunk.as_bytes());
        }
        let start = all.len() as u64 - 100;
        assert_eq!(
            r.read(start, ALL),
            data(Stdout, std::str::from_utf8(&all[start as usize..]).unwrap())
        );
    }

    #[test]
    fn keeps_utf8_sequences_whole() {
        let mut r = Ring::new(64);
        let euro = "€".as_bytes(); // 3 bytes
        r.push(Stdout, b"a");
        r.push(Stdout, &euro[..2]);
        let live = ReadOpts {
            max: 64,
            utf8: true,
            live: true,
        };
        assert_eq!(r.read(0, live), data(Stdout, "a"));
        assert_eq!(r.read(1, live), Read::Empty);
        // Once the process has exited, the partial sequence is all there is.
        let done = ReadOpts {
            live: false,
            ..live
        };
        assert_eq!(
            r.read(1, done),
            Read::Data {
                stream: Stdout,
                bytes: euro[..2].to_vec()
            }
        );
        r.push(Stdout, &euro[2..]);
        assert_eq!(r.read(1, live), data(Stdout, "€"));
        // A capped read backs off to the character boundary.
        let capped = ReadOpts { max: 5, ..live };
        r.push(Stdout, "€".as_bytes());
        assert_eq!(r.read(0, capped), data(Stdout, "a€"));
        assert_eq!(incomplete_utf8_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_utf8_tail(&[0xff, 0xfe]), 0);
    }
}
