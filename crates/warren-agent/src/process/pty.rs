//! Pseudo-terminals: opening a pair, sizing it, and the master's I/O on the
//! tokio reactor.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// A freshly opened pseudo-terminal pair.
pub struct PtyPair {
    /// The agent's side.
    pub master: OwnedFd,
    /// The process's side (stdin, stdout and stderr of the child).
    pub slave: OwnedFd,
}

/// Opens a pty pair sized `cols`×`rows`. Both fds are close-on-exec from the
/// start, so no concurrently spawned child inherits them by accident.
pub fn open(cols: u16, rows: u16) -> io::Result<PtyPair> {
    // SAFETY: posix_openpt takes flags and returns a new fd or -1.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by posix_openpt and is owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: grantpt/unlockpt take the master fd, which is open.
    if unsafe { libc::grantpt(master.as_raw_fd()) } != 0
        || unsafe { libc::unlockpt(master.as_raw_fd()) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // TIOCGPTPEER opens the slave through the master, with no path lookup in
    // /dev/pts (which may belong to another devpts instance in a sandbox).
    // SAFETY: the ioctl takes open flags as its argument and returns a new fd.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the ioctl and is owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(fd) };
    set_size(&master, cols, rows)?;
    Ok(PtyPair { master, slave })
}

/// Sets the terminal size; the kernel sends SIGWINCH to the foreground group.
pub fn set_size(master: &impl AsRawFd, cols: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct, which lives on our stack.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The master registered on the reactor (non-blocking).
pub type Master = AsyncFd<File>;

/// Makes the master non-blocking and registers it on the reactor.
pub fn into_async(master: OwnedFd) -> io::Result<Master> {
    set_nonblocking(&master)?;
    // SAFETY: the File owns the fd and lives inside the AsyncFd, so the fd
    // stays open and unchanged for the AsyncFd's whole lifetime.
    unsafe { AsyncFd::register(File::from(master)) }.map_err(|e| e.into_parts().1)
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an open fd we own; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reads what the terminal has; `Ok(0)` once every slave fd is closed (the
/// kernel reports that as EIO).
pub async fn read(master: &Master, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    loop {
        let mut guard = master.readable().await?;
        match guard.try_io(|fd| fd.get_ref().read(buf)) {
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// Writes all of `data` to the terminal.
pub async fn write_all(master: &Master, mut data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    while !data.is_empty() {
        let mut guard = master.writable().await?;
        match guard.try_io(|fd| fd.get_ref().write(data)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
