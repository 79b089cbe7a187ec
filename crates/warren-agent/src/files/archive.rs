//! Tar upload and download, both streamed.
//!
//! Upload: the request body flows through a bounded channel into a blocking
//! task that reads it as a tar archive and extracts each entry as it
//! arrives. Entries are placed with the `*at` calls relative to the target
//! directory's fd, walking one component at a time without following
//! symlinks; an entry that is absolute, contains `..`, or would pass through
//! a symlink is refused (so a symlink entry cannot carry a later entry out of
//! the target or the jail). Regular files are written atomically with their
//! mode and mtime; owners are not restored (files belong to the agent's
//! user). Directory modes are applied at the end, so a read-only directory
//! can still receive its entries. Devices and FIFOs are skipped.
//!
//! Download: a blocking task walks the tree (again fd-relative, symlinks
//! archived as symlinks, never followed) and writes the archive into a
//! bounded channel that is the response body; it runs only as fast as the
//! client reads. Entry names are relative to the directory (`a.txt`,
//! `sub/b.txt`), or the file's own name, so uploading a download to another
//! path makes a copy.
//!
//! Both hold a blocking-pool thread for the transfer's duration (the `tar`
//! crate is synchronous), unlike plain `GET` and `PUT`.

use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::UnlinkatFlags;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use warren_api::agent::FileWritten;

use super::jail::{file_type, fs_error, lstat_at, Entry, OpenError};
use super::ops::{open_at, read_names};
use super::stream::AtomicFile;
use super::Files;
use crate::AgentError;

/// Size of the chunks moved through the channels.
const CHUNK: usize = 256 << 10;
/// Chunks in flight per channel: memory per transfer is about CHUNK × DEPTH.
const DEPTH: usize = 8;

/// The body of a download: tar bytes produced as they are read.
pub type TarStream = ReceiverStream<io::Result<Bytes>>;

impl Files {
    /// Extracts a tar body under the directory `path` (created if missing).
    /// Returns the number of file bytes written.
    pub async fn upload<S, E>(&self, path: String, body: S) -> Result<FileWritten, AgentError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let limit = self.inner.config.limits.max_upload_bytes;
        let user = path.clone();
        let target = self
            .blocking(move |inner| {
                let rel = inner.jail.relative(&user)?;
                inner.jail.mkdir_all(&rel).map_err(|e| match e {
                    OpenError::Sys(Errno::ENOTDIR) => AgentError::NotADirectory(user.clone()),
                    e => e.into_agent("create directory", &user),
                })
            })
            .await?;
        let (tx, rx) = mpsc::channel(DEPTH);
        let user = path.clone();
        let extractor = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx,
                current: Bytes::new(),
            };
            extract(&target, reader, &user)
        });

        let mut received = 0u64;
        let mut body = std::pin::pin!(body);
        let pumped = loop {
            let chunk = match body.next().await {
                None => break Ok(()),
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => break Err(AgentError::BodyRead(e.to_string())),
            };
            received += chunk.len() as u64;
            if received > limit {
                break Err(AgentError::TooLarge {
                    what: "tar upload",
                    limit,
                });
            }
            if tx.send(Ok(chunk)).await.is_err() {
                // The extractor stopped early; its result says why.
                break Ok(());
            }
        };
        if pumped.is_err() {
            // Make the extractor stop instead of taking the cut as the end.
            let _ = tx.send(Err(io::Error::other("upload aborted"))).await;
        }
        drop(tx);
        let extracted = extractor.await.map_err(|e| AgentError::Io {
            op: "tar extraction task",
            source: io::Error::other(e.to_string()),
        })?;
        pumped?;
        let bytes = extracted?;
        Ok(FileWritten { path, bytes })
    }

    /// A tar of the file or directory at `path`, produced while it is sent.
    pub async fn download(&self, path: String) -> Result<TarStream, AgentError> {
        let (fd, st, name) = self
            .blocking(move |inner| {
                let rel = inner.jail.relative(&path)?;
                let fd = inner
                    .jail
                    .open(&rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
                    .map_err(|e| e.into_agent("open", &path))?;
                let st = nix::sys::stat::fstat(fd.as_raw_fd())
                    .map_err(|e| fs_error("stat", &path, e))?;
                let kind = file_type(&st);
                if kind != SFlag::S_IFDIR && kind != SFlag::S_IFREG {
                    return Err(AgentError::NotARegularFile(path));
                }
                let name = Path::new(&path)
                    .file_name()
                    .map_or_else(|| OsString::from("file"), OsStr::to_os_string);
                Ok((fd, st, name))
            })
            .await?;
        let (tx, rx) = mpsc::channel(DEPTH);
        tokio::task::spawn_blocking(move || {
            let writer = ChannelWriter {
                tx: tx.clone(),
                buf: BytesMut::new(),
            };
            let mut builder = tar::Builder::new(writer);
            let built = if file_type(&st) == SFlag::S_IFDIR {
                append_tree(&mut builder, &fd, Path::new(""))
            } else {
                append_file(&mut builder, fd, &st, Path::new(&name))
            };
            let finished = built
                .and_then(|()| builder.into_inner())
                .and_then(|mut writer| writer.flush());
            if let Err(e) = finished {
                // The client is gone (nothing to tell), or the tree changed
                // under us: end the body with an error so the client sees a
                // cut transfer rather than a short, valid-looking archive.
                tracing::debug!(error = %e, "tar download ended early");
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

/// Reads the bytes the request pump sends.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Sends what the tar builder writes, in chunks, to the response body.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Extracts every entry of `reader` under `target`; returns the file bytes written.
fn extract(target: &OwnedFd, reader: ChannelReader, user: &str) -> Result<u64, AgentError> {
    let mut archive = tar::Archive::new(reader);
    let mut written = 0u64;
    let mut dir_modes: Vec<(Vec<OsString>, u32)> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    for entry in archive.entries().map_err(AgentError::InvalidTar)? {
        let mut entry = entry.map_err(AgentError::InvalidTar)?;
        let raw = entry.path().map_err(AgentError::InvalidTar)?.into_owned();
        let shown = format!("{user}/{}", raw.display());
        let comps = safe_components(&raw)?;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().ok();
        if comps.is_empty() {
            // `./`: the target itself; nothing to create.
            continue;
        }
        if kind.is_dir() {
            walk(target, &comps, true, &raw)?;
            dir_modes.push((comps, mode));
            continue;
        }
        let (parent_comps, name) = comps.split_at(comps.len() - 1);
        let parent = walk(target, parent_comps, true, &raw)?;
        let name = name[0].clone();
        if kind.is_file() || kind == tar::EntryType::Continuous || kind.is_gnu_sparse() {
            let stat = lstat_at(&parent, &name).map_err(|e| fs_error("stat", &shown, e))?;
            let mut file = AtomicFile::create(Entry { parent, name, stat }, Some(mode), &shown)?;
            loop {
                let n = entry.read(&mut buf).map_err(AgentError::InvalidTar)?;
                if n == 0 {
                    break;
                }
                file.file()
                    .write_all(&buf[..n])
                    .map_err(|source| AgentError::Fs {
                        op: "write",
                        path: shown.clone(),
                        source,
                    })?;
                written += n as u64;
            }
            if let Some(secs) = mtime {
                let t = TimeSpec::new(secs.min(i64::MAX as u64) as i64, 0);
                let _ = nix::sys::stat::futimens(file.file().as_raw_fd(), &t, &t);
            }
            file.commit(&shown)?;
        } else if kind.is_symlink() {
            let target_text = entry
                .link_name()
                .map_err(AgentError::InvalidTar)?
                .ok_or_else(|| {
                    AgentError::UnsafeTarEntry(shown.clone(), "symlink without target")
                })?;
            remove_non_dir(&parent, &name, &shown)?;
            nix::unistd::symlinkat(&*target_text, Some(parent.as_raw_fd()), &*name)
                .map_err(|e| fs_error("symlink", &shown, e))?;
        } else if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(AgentError::InvalidTar)?
                .ok_or_else(|| {
                    AgentError::UnsafeTarEntry(shown.clone(), "hard link without target")
                })?;
            let link_comps = safe_components(&link)?;
            let Some((src_name, src_parent)) = link_comps.split_last() else {
                return Err(AgentError::UnsafeTarEntry(
                    shown,
                    "hard link to the target itself",
                ));
            };
            let src_dir = walk(target, src_parent, false, &link)?;
            remove_non_dir(&parent, &name, &shown)?;
            nix::unistd::linkat(
                Some(src_dir.as_raw_fd()),
                &**src_name,
                Some(parent.as_raw_fd()),
                &*name,
                nix::fcntl::AtFlags::empty(),
            )
            .map_err(|e| fs_error("link", &shown, e))?;
        }
        // Devices, FIFOs and global headers are skipped: a sandbox upload
        // has no use for them and device nodes are a hazard.
    }
    // Deepest first, so a read-only parent is closed after its children.
    for (comps, mode) in dir_modes.iter().rev() {
        let (name, parents) = comps.split_last().expect("non-empty");
        // A directory removed or replaced meanwhile keeps what it has.
        let Ok(parent) = walk(target, parents, false, Path::new("")) else {
            continue;
        };
        if let Ok(dir) = open_at(&parent, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            let _ = nix::sys::stat::fchmod(dir.as_raw_fd(), Mode::from_bits_truncate(*mode));
        }
    }
    Ok(written)
}

/// The normal components of an entry's path; absolute paths and `..` are refused.
fn safe_components(path: &Path) -> Result<Vec<OsString>, AgentError> {
    let mut comps = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => comps.push(name.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(AgentError::UnsafeTarEntry(
                    path.display().to_string(),
                    "it contains ..",
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(AgentError::UnsafeTarEntry(
                    path.display().to_string(),
                    "it is absolute",
                ))
            }
        }
    }
    Ok(comps)
}

/// Opens (and with `create`, makes) the directories `comps` under `base`,
/// never following a symlink.
fn walk(
    base: &OwnedFd,
    comps: &[OsString],
    create: bool,
    entry: &Path,
) -> Result<OwnedFd, AgentError> {
    let shown = || entry.display().to_string();
    let mut dir = open_at(base, OsStr::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| fs_error("open", &shown(), e))?;
    for name in comps {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        dir = match open_at(&dir, name, flags) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                match nix::sys::stat::mkdirat(
                    Some(dir.as_raw_fd()),
                    &**name,
                    Mode::from_bits_truncate(0o777),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(fs_error("mkdir", &shown(), e)),
                }
                open_at(&dir, name, flags).map_err(|e| fs_error("open", &shown(), e))?
            }
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                let is_link = matches!(
                    lstat_at(&dir, name),
                    Ok(Some(st)) if file_type(&st) == SFlag::S_IFLNK
                );
                return Err(if is_link {
                    AgentError::UnsafeTarEntry(shown(), "it passes through a symlink")
                } else {
                    AgentError::NotADirectory(shown())
                });
            }
            Err(e) => return Err(fs_error("open", &shown(), e)),
        };
    }
    Ok(dir)
}

/// Clears `name` in `dir` for a new link: a file or symlink there is
/// removed; a directory is an error.
fn remove_non_dir(dir: &OwnedFd, name: &OsStr, shown: &str) -> Result<(), AgentError> {
    match nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => Err(AgentError::IsADirectory(shown.to_string())),
        Err(e) => Err(fs_error("replace", shown, e)),
    }
}

/// A header with the metadata of `st`.
fn header_for(st: &FileStat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(st.st_mode & 0o7777);
    header.set_uid(u64::from(st.st_uid));
    header.set_gid(u64::from(st.st_gid));
    header.set_mtime(st.st_mtime.max(0) as u64);
    header
}

/// Appends a regular file. A file that shrinks while it is read is padded
/// with zeros to the size in its header, so the archive stays well formed.
fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    fd: OwnedFd,
    st: &FileStat,
    path: &Path,
) -> io::Result<()> {
    let size = st.st_size.max(0) as u64;
    let mut header = header_for(st, tar::EntryType::Regular, size);
    let data = std::fs::File::from(fd)
        .take(size)
        .chain(io::repeat(0))
        .take(size);
    builder.append_data(&mut header, path, data)
}

/// Appends the contents of the directory `dir` under `prefix`, in name order.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    prefix: &Path,
) -> io::Result<()> {
    let mut names = read_names(dir)?;
    names.sort();
    for name in names {
        let path: PathBuf = prefix.join(&name);
        // Entries that vanish while we walk are left out.
        let Some(st) = lstat_at(dir, &name)? else {
            continue;
        };
        match file_type(&st) {
            SFlag::S_IFDIR => {
                let child = match open_at(dir, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                    Ok(child) => child,
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut header = header_for(&st, tar::EntryType::Directory, 0);
                builder.append_data(&mut header, &path, io::empty())?;
                append_tree(builder, &child, &path)?;
            }
            SFlag::S_IFREG => {
                let file = match open_at(dir, &name, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
                    Ok(file) => file,
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let st = nix::sys::stat::fstat(file.as_raw_fd())?;
                append_file(builder, file, &st, &path)?;
            }
            SFlag::S_IFLNK => {
                let target = match nix::fcntl::readlinkat(Some(dir.as_raw_fd()), &*name) {
                    Ok(target) => target,
                    Err(Errno::ENOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut header = header_for(&st, tar::EntryType::Symlink, 0);
                builder.append_link(&mut header, &path, &target)?;
            }
            // Sockets, FIFOs and devices have no content to carry.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escaping_entries() {
        assert!(safe_components(Path::new("/etc/passwd")).is_err());
        assert!(safe_components(Path::new("a/../../b")).is_err());
        assert_eq!(
            safe_components(Path::new("./a/b/")).unwrap(),
            vec![OsString::from("a"), OsString::from("b")]
        );
    }
}
