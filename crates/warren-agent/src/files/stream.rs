//! Streaming reads (with `Range`) and atomic streaming writes.
//!
//! A read is a `tokio::fs::File` positioned at the range's start and limited
//! to its length, so a slow client holds no thread and at most one chunk in
//! memory. A write goes to a temporary file in the target's directory
//! (`.warren-<pid>-<n>.tmp`) in vectored writes of about 1 MiB (one on the
//! blocking pool while the next arrives, the body's buffers never copied)
//! and is renamed over the target only once the whole body has arrived: a
//! reader sees the old file or the new one, never half of one. A failed or
//! abandoned write removes its temporary file ([`AtomicFile`]'s `Drop`).

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;
use warren_api::agent::FileWritten;

use super::jail::{file_type, fs_error, Entry};
use super::Files;
use crate::AgentError;

/// Size of the chunks a read is sent in.
const READ_CHUNK: usize = 256 << 10;
/// Writes are batched to this size before they go to the disk.
const WRITE_CHUNK: usize = 1 << 20;
/// Most buffers one `writev` takes (the kernel's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;
/// Prefix and suffix of temporary files (hidden from watches).
pub(crate) const TMP_PREFIX: &str = ".warren-";
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Distinguishes the temporary files of one agent process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A byte range `[start, start + len)` of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Number of bytes (at least 1).
    pub len: u64,
}

impl ByteRange {
    /// Parses a `Range` header against a file of `size` bytes.
    ///
    /// `Ok(None)` means "send the whole file": RFC 9110 lets a server ignore
    /// a malformed header, another unit, or several ranges. A well-formed
    /// range that selects no byte is [`AgentError::RangeNotSatisfiable`].
    pub fn parse(header: &str, size: u64) -> Result<Option<ByteRange>, AgentError> {
        let unsatisfiable = AgentError::RangeNotSatisfiable { size };
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return Ok(None);
        };
        if spec.contains(',') {
            return Ok(None);
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return Ok(None);
        };
        let (first, last) = (first.trim(), last.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if first.is_empty() {
            // `-n`: the last n bytes.
            if !digits(last) {
                return Ok(None);
            }
            let n = last.parse::<u64>().unwrap_or(u64::MAX);
            if n == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            let start = size.saturating_sub(n);
            return Ok(Some(ByteRange {
                start,
                len: size - start,
            }));
        }
        if !digits(first) || !(last.is_empty() || digits(last)) {
            return Ok(None);
        }
        let start = first.parse::<u64>().unwrap_or(u64::MAX);
        let end = if last.is_empty() {
            u64::MAX
        } else {
            last.parse::<u64>().unwrap_or(u64::MAX)
        };
        if end < start {
            return Ok(None);
        }
        if start >= size {
            return Err(unsatisfiable);
        }
        let end = end.min(size - 1);
        Ok(Some(ByteRange {
            start,
            len: end - start + 1,
        }))
    }
}

/// An open file ready to be streamed.
pub struct FileRead {
    /// The file, positioned at the first byte to send.
    file: tokio::fs::File,
    /// The file's size.
    pub size: u64,
    /// The range asked for, `None` for the whole file.
    pub range: Option<ByteRange>,
}

impl FileRead {
    /// How many bytes the body carries.
    pub fn len(&self) -> u64 {
        self.range.map_or(self.size, |r| r.len)
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body: exactly [`FileRead::len`] bytes, read in chunks as the
    /// client takes them.
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        let len = self.len();
        ReaderStream::with_capacity(self.file.take(len), READ_CHUNK)
    }
}

impl Files {
    /// Opens a regular file for reading, honouring a `Range` header.
    pub async fn read(&self, path: String, range: Option<String>) -> Result<FileRead, AgentError> {
        let (file, size, range) = self
            .blocking(move |inner| {
                let rel = inner.jail.relative(&path)?;
                // O_NONBLOCK: opening a FIFO must not hang the request.
                let fd = inner
                    .jail
                    .open(&rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
                    .map_err(|e| e.into_agent("open", &path))?;
                let st = nix::sys::stat::fstat(fd.as_raw_fd())
                    .map_err(|e| fs_error("stat", &path, e))?;
                match file_type(&st) {
                    SFlag::S_IFREG => {}
                    SFlag::S_IFDIR => return Err(AgentError::IsADirectory(path)),
                    _ => return Err(AgentError::NotARegularFile(path)),
                }
                let size = st.st_size.max(0) as u64;
                let range = match range {
                    Some(header) => ByteRange::parse(&header, size)?,
                    None => None,
                };
                let mut file = std::fs::File::from(fd);
                if let Some(r) = range {
                    file.seek(SeekFrom::Start(r.start))
                        .map_err(|source| AgentError::Fs {
                            op: "seek",
                            path: path.clone(),
                            source,
                        })?;
                }
                Ok((file, size, range))
            })
            .await?;
        Ok(FileRead {
            file: tokio::fs::File::from_std(file),
            size,
            range,
        })
    }

    /// Writes a body to `path` atomically (temporary file, then rename),
    /// creating missing parents. `mode` is octal text such as `644`.
    pub async fn write<S, E>(
        &self,
        path: String,
        mode: Option<String>,
        body: S,
    ) -> Result<FileWritten, AgentError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let mode = mode.as_deref().map(parse_mode).transpose()?;
        self.write_as(path, mode, None, body).await
    }

    /// [`Files::write`] with the file, and the parents it creates, owned by
    /// `owner` (uid, gid) when given (for writes on behalf of a user).
    pub async fn write_as<S, E>(
        &self,
        path: String,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
        body: S,
    ) -> Result<FileWritten, AgentError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let user = path.clone();
        let mut tmp = self
            .blocking(move |inner| {
                let rel = inner.jail.relative(&user)?;
                let entry = inner.jail.entry_following_as(&rel, true, owner, &user)?;
                let tmp = AtomicFile::create(entry, mode, &user)?;
                if let Some((uid, gid)) = owner {
                    let fd = tmp.file.as_ref().map(|f| f.as_raw_fd());
                    if let Some(fd) = fd {
                        nix::unistd::fchown(fd, Some(uid.into()), Some(gid.into()))
                            .map_err(|e| fs_error("chown", &user, e))?;
                    }
                }
                Ok(tmp)
            })
            .await?;
        let write_err = |source| AgentError::Fs {
            op: "write",
            path: path.clone(),
            source,
        };
        // A second descriptor of the temporary file for the writer tasks;
        // the `AtomicFile` keeps its own for the rename (or the cleanup).
        let file = Arc::new(tmp.file().try_clone().map_err(write_err)?);
        let mut batch = Batch::default();
        let mut in_flight: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
        let mut total = 0u64;
        let mut body = std::pin::pin!(body);
        loop {
            let chunk = body.next().await;
            let last = chunk.is_none();
            if let Some(chunk) = chunk {
                let chunk = chunk.map_err(|e| AgentError::BodyRead(e.to_string()))?;
                total += chunk.len() as u64;
                batch.push(chunk);
            }
            if batch.is_full() || (last && !batch.chunks.is_empty()) {
                // One batch on the disk while the next one arrives.
                if let Some(previous) = in_flight.take() {
                    join_write(previous).await.map_err(write_err)?;
                }
                let chunks = std::mem::take(&mut batch).chunks;
                let file = file.clone();
                in_flight = Some(tokio::task::spawn_blocking(move || {
                    write_chunks(&file, &chunks)
                }));
            }
            if last {
                break;
            }
        }
        if let Some(previous) = in_flight.take() {
            join_write(previous).await.map_err(write_err)?;
        }
        drop(file);
        let written = path.clone();
        self.blocking(move |_| tmp.commit(&written)).await?;
        Ok(FileWritten { path, bytes: total })
    }
}

/// Body chunks waiting to be written together with one `writev`.
#[derive(Default)]
struct Batch {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Batch {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    fn is_full(&self) -> bool {
        self.len >= WRITE_CHUNK || self.chunks.len() >= MAX_IOVECS
    }
}

/// Writes `chunks` in order with vectored writes: the body's buffers go to
/// the kernel without being copied into one.
fn write_chunks(file: &std::fs::File, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = slices.len().min(MAX_IOVECS);
        match (&*file).write_vectored(&slices[..n]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn join_write(task: tokio::task::JoinHandle<std::io::Result<()>>) -> std::io::Result<()> {
    task.await
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// Parses an octal permission mode: `644`, `0755`, `0o600`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, AgentError> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let valid = !digits.is_empty()
        && digits.len() <= 5
        && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if valid && mode <= 0o7777 => Ok(mode),
        _ => Err(AgentError::InvalidRequest(format!(
            "mode must be octal permission bits such as 644 or 0755, got {text:?}"
        ))),
    }
}

/// A temporary file in the target's directory, renamed over the target by
/// [`AtomicFile::commit`] and removed if dropped before that.
pub(crate) struct AtomicFile {
    parent: OwnedFd,
    tmp: OsString,
    name: OsString,
    file: Option<std::fs::File>,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file for `entry`. The new file gets `mode`, or
    /// the mode and owner of the file it replaces, or 0666 minus the umask.
    pub(crate) fn create(
        entry: Entry,
        mode: Option<u32>,
        user: &str,
    ) -> Result<AtomicFile, AgentError> {
        if let Some(st) = &entry.stat {
            if file_type(st) == SFlag::S_IFDIR {
                return Err(AgentError::IsADirectory(user.to_string()));
            }
        }
        let (tmp, fd) = loop {
            let tmp = OsString::from(format!(
                "{TMP_PREFIX}{}-{}{TMP_SUFFIX}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match nix::fcntl::openat(
                Some(entry.parent.as_raw_fd()),
                &*tmp,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o666),
            ) {
                Ok(fd) => break (tmp, fd),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(fs_error("create temporary file for", user, e)),
            }
        };
        // SAFETY: openat just returned this descriptor and nothing else owns it.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let atomic = AtomicFile {
            parent: entry.parent,
            tmp,
            name: entry.name,
            file: Some(file),
            committed: false,
        };
        let existing = entry.stat.filter(|st| file_type(st) == SFlag::S_IFREG);
        atomic.apply_metadata(mode, existing.as_ref(), user)?;
        Ok(atomic)
    }

    fn apply_metadata(
        &self,
        mode: Option<u32>,
        existing: Option<&FileStat>,
        user: &str,
    ) -> Result<(), AgentError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let fd = file.as_raw_fd();
        if let Some(st) = existing {
            // Keep the owner of the file being replaced; only root can, and
            // failing to is not a reason to refuse the write.
            let _ = nix::unistd::fchown(fd, Some(st.st_uid.into()), Some(st.st_gid.into()));
        }
        if let Some(bits) = mode.or(existing.map(|st| st.st_mode & 0o7777)) {
            nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(bits))
                .map_err(|e| fs_error("chmod", user, e))?;
        }
        Ok(())
    }

    /// The open temporary file (for writing).
    pub(crate) fn file(&mut self) -> &mut std::fs::File {
        self.file.as_mut().expect("file present until commit")
    }

    /// Renames the temporary file over the target.
    pub(crate) fn commit(mut self, user: &str) -> Result<(), AgentError> {
        drop(self.file.take());
        let fd = self.parent.as_raw_fd();
        nix::fcntl::renameat(Some(fd), &*self.tmp, Some(fd), &*self.name).map_err(|e| match e {
            Errno::EISDIR => AgentError::IsADirectory(user.to_string()),
            e => fs_error("rename into place", user, e),
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = nix::unistd::unlinkat(
                Some(self.parent.as_raw_fd()),
                &*self.tmp,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(header: &str, size: u64) -> Option<(u64, u64)> {
        ByteRange::parse(header, size)
            .unwrap()
            .map(|r| (r.start, r.len))
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(range("bytes=90-", 100), Some((90, 10)));
        assert_eq!(range("bytes=-10", 100), Some((90, 10)));
        assert_eq!(range("bytes=-1000", 100), Some((0, 100)));
        assert_eq!(range("bytes=50-1000", 100), Some((50, 50)));
        // Ignored: malformed, other units, several ranges.
        assert_eq!(range("bytes=a-b", 100), None);
        assert_eq!(range("items=0-1", 100), None);
        assert_eq!(range("bytes=0-1,3-4", 100), None);
        assert_eq!(range("bytes=5-1", 100), None);
        // Unsatisfiable.
        assert!(ByteRange::parse("bytes=100-", 100).is_err());
        assert!(ByteRange::parse("bytes=-0", 100).is_err());
        assert!(ByteRange::parse("bytes=0-", 0).is_err());
    }

    #[test]
    fn parses_modes() {
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert_eq!(parse_mode("0755").unwrap(), 0o755);
        assert_eq!(parse_mode("0o600").unwrap(), 0o600);
        assert_eq!(parse_mode("4755").unwrap(), 0o4755);
        for bad in ["", "8", "rwx", "77777", "-1", "0o"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
