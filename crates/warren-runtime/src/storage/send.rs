//! The btrfs driver's diff: which paths changed between two read-only
//! subvolumes, as btrfs itself knows it.
//!
//! `BTRFS_IOC_SEND` with the older subvolume as parent and
//! `BTRFS_SEND_FLAG_NO_FILE_DATA` compares the two trees (only what differs
//! is visited, so a few changed files in a large disk cost milliseconds) and
//! writes a stream of commands without file data into a pipe, which this
//! module reads on the calling thread while the ioctl runs on another.
//! Rebuilding the tree from the stream exactly is delicate (new inodes get
//! orphan names like `o257-12-0` first and are renamed later; directories
//! move), so instead every path the stream names is collected (both names of
//! a rename, the paths of writes, truncates, attribute changes, links,
//! unlinks, creations) and then classified by looking at it in both
//! subvolumes ([`super::diff::Collector`]). Orphan names exist in neither
//! and drop out.
//!
//! The stream is read one command at a time into one buffer (constant
//! memory besides the set of paths, which is bounded too); past the
//! deadline or the bounds, the read end is closed, which ends the ioctl
//! with `EPIPE`, and the answer is marked truncated.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;

use super::diff::{hint, Collector, Diff, DiffLimits, Tree};

/// `struct btrfs_ioctl_send_args`.
#[repr(C)]
struct SendArgs {
    send_fd: i64,
    clone_sources_count: u64,
    clone_sources: *const u64,
    parent_root: u64,
    flags: u64,
    version: u32,
    reserved: [u8; 28],
}

/// `struct btrfs_ioctl_ino_lookup_args`.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

const _: () = assert!(std::mem::size_of::<SendArgs>() == 72);
const _: () = assert!(std::mem::size_of::<InoLookupArgs>() == 4096);

/// `BTRFS_SEND_FLAG_NO_FILE_DATA`.
const FLAG_NO_FILE_DATA: u64 = 1;
/// Inode number of every subvolume's root directory.
const FIRST_FREE_OBJECTID: u64 = 256;

nix::ioctl_write_ptr!(
    /// `BTRFS_IOC_SEND`.
    ioc_send,
    0x94,
    38,
    SendArgs
);
nix::ioctl_readwrite!(
    /// `BTRFS_IOC_INO_LOOKUP`: with `treeid` 0 and the root's objectid,
    /// the id of the subvolume the fd is in (no privilege needed).
    ioc_ino_lookup,
    0x94,
    18,
    InoLookupArgs
);

/// Stream commands (`enum btrfs_send_cmd`) that name paths.
mod cmd {
    pub const MKFILE: u16 = 3;
    pub const LINK: u16 = 10;
    pub const SET_XATTR: u16 = 13;
    pub const REMOVE_XATTR: u16 = 14;
    pub const WRITE: u16 = 15;
    pub const CLONE: u16 = 16;
    pub const TRUNCATE: u16 = 17;
    pub const END: u16 = 21;
    pub const UPDATE_EXTENT: u16 = 22;
    pub const FALLOCATE: u16 = 23;
    pub const FILEATTR: u16 = 24;
    pub const ENCODED_WRITE: u16 = 25;
    pub const ENABLE_VERITY: u16 = 26;
}

/// Stream attributes (`enum btrfs_send_attr`) read here.
mod attr {
    pub const PATH: u16 = 15;
    pub const PATH_TO: u16 = 16;
    pub const PATH_LINK: u16 = 17;
    pub const DATA: u16 = 19;
}

/// Longest command accepted (v1 commands fit in 64 KiB).
const MAX_COMMAND: usize = 1 << 20;
/// Most distinct paths collected from one stream.
const MAX_PATHS: usize = 200_000;
/// Most bytes of paths collected from one stream.
const MAX_PATH_BYTES: usize = 32 << 20;

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The id of the subvolume at `path`.
fn subvolume_id(dir: &File) -> io::Result<u64> {
    let mut args = Box::new(InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; 4080],
    });
    // SAFETY: `dir` is open and `args` a live, size-asserted struct.
    unsafe { ioc_ino_lookup(dir.as_raw_fd(), &mut *args) }.map_err(errno_io)?;
    Ok(args.treeid)
}

/// The changes from read-only subvolume `from` to read-only subvolume `to`
/// (same file system). `keep` is dropped once the kernel is done with the
/// subvolumes (a temporary snapshot's guard: a subvolume cannot be deleted
/// while a send reads it), which may be after this returns when the
/// deadline cut the stream short.
pub fn diff<K: Send + Sync + 'static>(
    from: &Path,
    to: &Path,
    limits: DiffLimits,
    keep: Arc<K>,
) -> io::Result<Diff> {
    let from_dir = File::open(from)?;
    let to_dir = File::open(to)?;
    let parent_root = subvolume_id(&from_dir)?;
    // The thread's own hold; this function keeps `keep` until it is done
    // looking paths up in `to`.
    let held = Arc::clone(&keep);
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(errno_io)?;
    let sender = std::thread::Builder::new()
        .name("btrfs-send".into())
        .spawn(move || {
            let args = SendArgs {
                send_fd: writer.as_raw_fd() as i64,
                clone_sources_count: 0,
                clone_sources: std::ptr::null(),
                parent_root,
                flags: FLAG_NO_FILE_DATA,
                version: 0,
                reserved: [0; 28],
            };
            // SAFETY: `to_dir` and `writer` are open for the whole call and
            // `args` is a valid btrfs_ioctl_send_args the kernel only reads.
            let res = unsafe { ioc_send(to_dir.as_raw_fd(), &args) };
            drop(writer);
            drop(to_dir);
            drop(held);
            res
        })?;
    let (a, b) = (Tree::open(from)?, Tree::open(to)?);
    let mut reader = io::BufReader::with_capacity(
        64 << 10,
        DeadlineReader {
            file: File::from(reader),
            deadline: limits.deadline,
        },
    );
    let mut paths: HashMap<Vec<u8>, u8> = HashMap::new();
    let parsed = parse(&mut reader, &mut paths, limits.deadline);
    // Closing the read end ends a send still writing (EPIPE).
    drop(reader);
    let complete = match parsed {
        Ok(complete) => complete,
        Err(e) => {
            // The ioctl's own error, when it failed, says more.
            return Err(match sender.join() {
                Ok(Err(errno)) => errno_io(errno),
                _ => e,
            });
        }
    };
    if complete {
        match sender.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(errno_io(e)),
            Err(_) => return Err(io::Error::other("the send thread panicked")),
        }
    }
    let mut collector = Collector::new(&a, &b, limits);
    if !complete {
        collector.set_truncated();
    }
    let mut sorted: Vec<(Vec<u8>, u8)> = paths.into_iter().collect();
    sorted.sort();
    for (path, hints) in sorted {
        collector.path(&path, hints)?;
    }
    let diff = collector.finish();
    drop(keep);
    Ok(diff)
}

/// A pipe whose reads fail with `TimedOut` once `deadline` passes, even
/// while the kernel is still comparing trees and writes nothing.
struct DeadlineReader {
    file: File,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsFd;
        let left = self.deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            self.file.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) if left.as_millis() <= u128::from(u16::MAX) => {
                Err(io::Error::from(io::ErrorKind::TimedOut))
            }
            // A wait longer than one poll can: poll again on the next read.
            Ok(0) => Err(io::Error::from(io::ErrorKind::Interrupted)),
            Ok(_) => self.file.read(buf),
            Err(Errno::EINTR) => Err(io::Error::from(io::ErrorKind::Interrupted)),
            Err(e) => Err(errno_io(e)),
        }
    }
}

/// Reads the stream into `paths` (each with its [`hint`]s). `Ok(false)`
/// when it stopped early: the deadline passed or too many paths.
fn parse(
    stream: &mut impl Read,
    paths: &mut HashMap<Vec<u8>, u8>,
    deadline: Instant,
) -> io::Result<bool> {
    let mut header = [0u8; 17];
    stream.read_exact(&mut header)?;
    if &header[..13] != b"btrfs-stream\0" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a send stream",
        ));
    }
    let version = u32::from_le_bytes(header[13..17].try_into().expect("4 bytes"));
    let mut bytes = 0usize;
    let mut buf = Vec::new();
    loop {
        if Instant::now() >= deadline || paths.len() >= MAX_PATHS || bytes >= MAX_PATH_BYTES {
            return Ok(false);
        }
        let mut head = [0u8; 10];
        match stream.read_exact(&mut head) {
            Ok(()) => {}
            // A stream without its end command: what was sent is complete.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(false),
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let command = u16::from_le_bytes(head[4..6].try_into().expect("2 bytes"));
        if len > MAX_COMMAND {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "send command too long",
            ));
        }
        buf.resize(len, 0);
        match stream.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(false),
            Err(e) => return Err(e),
        }
        if command == cmd::END {
            return Ok(true);
        }
        let hints = match command {
            cmd::WRITE
            | cmd::CLONE
            | cmd::TRUNCATE
            | cmd::UPDATE_EXTENT
            | cmd::FALLOCATE
            | cmd::ENCODED_WRITE
            | cmd::MKFILE => hint::DATA,
            cmd::SET_XATTR | cmd::REMOVE_XATTR | cmd::FILEATTR | cmd::ENABLE_VERITY => hint::XATTR,
            _ => 0,
        };
        for (kind, value) in attributes(&buf, version) {
            let names_path = match kind {
                attr::PATH | attr::PATH_TO => true,
                // A symlink's PATH_LINK is its target, not a path here.
                attr::PATH_LINK => command == cmd::LINK,
                _ => false,
            };
            // The first command (subvol/snapshot) names the subvolume, not
            // a path in it; it has no PATH of that kind below the root.
            if !names_path || command < cmd::MKFILE || !valid_path(value) {
                continue;
            }
            let hints = if kind == attr::PATH { hints } else { 0 };
            match paths.get_mut(value) {
                Some(h) => *h |= hints,
                None => {
                    bytes += value.len();
                    paths.insert(value.to_vec(), hints);
                }
            }
        }
    }
}

/// Whether a stream path can be looked up: relative, no empty, `.` or `..`
/// component.
fn valid_path(path: &[u8]) -> bool {
    !path.is_empty()
        && path
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// The `(type, value)` attributes of one command's payload.
fn attributes(mut buf: &[u8], version: u32) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let kind = u16::from_le_bytes([buf[0], buf[1]]);
        if version >= 2 && kind == attr::DATA {
            // v2's data attribute has no length: it runs to the end.
            let value = &buf[2..];
            buf = &[];
            return Some((kind, value));
        }
        let len = u16::from_le_bytes([buf[2], buf[3]]) as usize;
        let end = (4 + len).min(buf.len());
        let value = &buf[4..end];
        buf = &buf[end..];
        Some((kind, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend((value.len() as u16).to_le_bytes());
        out.extend(value);
        out
    }

    fn command(cmd: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
        let payload: Vec<u8> = attrs.concat();
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend(cmd.to_le_bytes());
        out.extend([0; 4]);
        out.extend(payload);
        out
    }

    #[test]
    fn collects_every_named_path_with_its_hints() {
        let mut stream = b"btrfs-stream\0".to_vec();
        stream.extend(1u32.to_le_bytes());
        stream.extend(command(2, &[tlv(attr::PATH, b"snap")]));
        stream.extend(command(cmd::MKFILE, &[tlv(attr::PATH, b"o260-7-0")]));
        stream.extend(command(
            9, // rename
            &[
                tlv(attr::PATH, b"o260-7-0"),
                tlv(attr::PATH_TO, b"home/new"),
            ],
        ));
        stream.extend(command(
            8, // symlink
            &[
                tlv(attr::PATH, b"home/l"),
                tlv(attr::PATH_LINK, b"/etc/passwd"),
            ],
        ));
        stream.extend(command(
            cmd::LINK,
            &[
                tlv(attr::PATH, b"home/h"),
                tlv(attr::PATH_LINK, b"home/old"),
            ],
        ));
        stream.extend(command(cmd::UPDATE_EXTENT, &[tlv(attr::PATH, b"home/new")]));
        stream.extend(command(cmd::SET_XATTR, &[tlv(attr::PATH, b"home/x")]));
        stream.extend(command(11, &[tlv(attr::PATH, b"../escape")]));
        stream.extend(command(cmd::END, &[]));
        stream.extend(command(11, &[tlv(attr::PATH, b"after/end")]));
        let mut paths = HashMap::new();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        assert!(parse(&mut &stream[..], &mut paths, far).unwrap());
        let mut got: Vec<(String, u8)> = paths
            .into_iter()
            .map(|(p, h)| (String::from_utf8(p).unwrap(), h))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("home/h".to_string(), 0),
                ("home/l".to_string(), 0),
                ("home/new".to_string(), hint::DATA),
                ("home/old".to_string(), 0),
                ("home/x".to_string(), hint::XATTR),
                ("o260-7-0".to_string(), hint::DATA),
            ]
        );
    }

    #[test]
    fn a_silent_stream_ends_at_the_deadline() {
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut writer = File::from(writer);
        let mut header = b"btrfs-stream\0".to_vec();
        header.extend(1u32.to_le_bytes());
        std::io::Write::write_all(&mut writer, &header).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_millis(200);
        let mut stream = DeadlineReader {
            file: File::from(reader),
            deadline,
        };
        let mut paths = HashMap::new();
        assert!(
            !parse(&mut stream, &mut paths, deadline).unwrap(),
            "truncated"
        );
        assert!(Instant::now() < deadline + std::time::Duration::from_secs(1));
        drop(writer);
    }

    #[test]
    fn refuses_what_is_not_a_stream() {
        let mut paths = HashMap::new();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        assert!(parse(&mut &b"tar-archive-nope-nope"[..], &mut paths, far).is_err());
    }
}
