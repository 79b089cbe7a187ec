//! Loop devices through the kernel's ioctls (`LOOP_CTL_GET_FREE`,
//! `LOOP_CONFIGURE`, `LOOP_CLR_FD`), and the mount table.
//!
//! Devices are attached with `LO_FLAGS_AUTOCLEAR`: the kernel detaches one by
//! itself when its file system is unmounted, so a pool leaves no loop device
//! behind even when the process that mounted it is gone.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// `LO_FLAGS_AUTOCLEAR`.
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LO_FLAGS_DIRECT_IO`: skip the backing file's page cache, so that pool
/// data is not cached twice (once per file system).
const LO_FLAGS_DIRECT_IO: u32 = 16;
/// `LO_NAME_SIZE`.
const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

// Request numbers from `linux/loop.h` (plain numbers, not _IO-encoded).
const LOOP_CLR_FD: u32 = 0x4C01;
const LOOP_CONFIGURE: u32 = 0x4C0A;
const LOOP_CTL_GET_FREE: u32 = 0x4C82;

nix::ioctl_none_bad!(
    /// `LOOP_CTL_GET_FREE` on /dev/loop-control: a free device's number.
    loop_ctl_get_free,
    LOOP_CTL_GET_FREE
);
nix::ioctl_write_ptr_bad!(
    /// `LOOP_CONFIGURE`: binds a backing file and sets flags in one call.
    loop_configure,
    LOOP_CONFIGURE,
    LoopConfig
);
nix::ioctl_none_bad!(
    /// `LOOP_CLR_FD`: unbinds the backing file.
    loop_clr_fd,
    LOOP_CLR_FD
);

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// An attached loop device, kept open until the caller has mounted it (the
/// autoclear flag detaches it on the last close after an unmount).
pub(crate) struct LoopDevice {
    pub(crate) path: PathBuf,
    _file: File,
}

/// Loop devices currently backed by `image` (normally zero or one).
pub(crate) fn devices_backed_by(image: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().starts_with(b"loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        if Path::new(backing.trim_end_matches('\n')) == image {
            found.push(Path::new("/dev").join(&name));
        }
    }
    found.sort();
    found
}

/// Attaches `image` (an absolute, canonical path) to a free loop device.
pub(crate) fn attach(image: &Path) -> io::Result<LoopDevice> {
    let backing = OpenOptions::new().read(true).write(true).open(image)?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let mut last = io::Error::from(io::ErrorKind::ResourceBusy);
    // Another process can take the device between GET_FREE and CONFIGURE
    // (EBUSY): ask for the next free one.
    for _ in 0..32 {
        // SAFETY: `control` is an open /dev/loop-control; LOOP_CTL_GET_FREE
        // takes no argument and returns a device number.
        let n = unsafe { loop_ctl_get_free(control.as_raw_fd()) }.map_err(errno_io)?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let dev = OpenOptions::new().read(true).write(true).open(&path)?;
        match configure(&dev, &backing, image) {
            Ok(()) => return Ok(LoopDevice { path, _file: dev }),
            Err(Errno::EBUSY) => last = errno_io(Errno::EBUSY),
            Err(e) => return Err(errno_io(e)),
        }
    }
    Err(last)
}

fn configure(dev: &File, backing: &File, image: &Path) -> Result<(), Errno> {
    let mut config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        // SAFETY: LoopInfo64 is plain integers and byte arrays; all-zero is
        // the kernel's "unset" for every field.
        info: unsafe { std::mem::zeroed() },
        reserved: [0; 8],
    };
    let name = image.as_os_str().as_bytes();
    let len = name.len().min(LO_NAME_SIZE - 1);
    config.info.lo_file_name[..len].copy_from_slice(&name[..len]);
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    // SAFETY: `dev` and `backing` are open for the call; `config` is a valid
    // loop_config (size asserted) that the kernel only reads.
    match unsafe { loop_configure(dev.as_raw_fd(), &config) } {
        // Direct I/O needs the backing file system's support; without it,
        // plain buffered I/O is still correct.
        Err(Errno::EINVAL) => {
            config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
            // SAFETY: as above.
            unsafe { loop_configure(dev.as_raw_fd(), &config) }.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Detaches `dev`; a device already detached is not an error.
pub(crate) fn detach(dev: &Path) -> io::Result<()> {
    let file = match OpenOptions::new().read(true).open(dev) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // SAFETY: `file` is an open loop device; LOOP_CLR_FD takes no argument.
    match unsafe { loop_clr_fd(file.as_raw_fd()) } {
        Ok(_) | Err(Errno::ENXIO) => Ok(()),
        Err(e) => Err(errno_io(e)),
    }
}

/// The file system type mounted at exactly `path` (canonical), if any.
pub(crate) fn mount_fstype(path: &Path) -> io::Result<Option<String>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut found = None;
    for line in table.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else {
            continue;
        };
        if unescape(mount_point) != path {
            continue;
        }
        let mut rest = line.split(" - ");
        rest.next();
        // The last mount on a path is the visible one.
        found = rest
            .next()
            .and_then(|s| s.split(' ').next())
            .map(str::to_string);
    }
    Ok(found)
}

/// Mount points at or below `path` (canonical), deepest first.
pub(crate) fn mounts_under(path: &Path) -> io::Result<Vec<PathBuf>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .filter(|mp| mp.starts_with(path))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/a\040b"), Path::new("/a b"));
        assert_eq!(unescape("/plain"), Path::new("/plain"));
        assert_eq!(unescape(r"/end\"), Path::new(r"/end\"));
    }
}
