//! The btrfs driver: a volume is a subvolume, a snapshot a btrfs snapshot.
//!
//! Every hot-path operation is one ioctl on a directory fd, never the
//! `btrfs` CLI: `BTRFS_IOC_SUBVOL_CREATE`, `BTRFS_IOC_SNAP_CREATE_V2` (with
//! `BTRFS_SUBVOL_RDONLY` for read-only snapshots), `BTRFS_IOC_SNAP_DESTROY`,
//! and `BTRFS_IOC_SUBVOL_{GET,SET}FLAGS`. Deleting a subvolume that holds
//! nested subvolumes (a sandbox can create them) fails with `ENOTEMPTY`; the
//! driver then lists the children with `BTRFS_IOC_GET_SUBVOL_ROOTREF` and
//! `BTRFS_IOC_INO_LOOKUP_USER`, deletes them depth first and retries.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{split_path, StorageDriver, StorageError};

/// The kernel ABI: constants, argument structs and ioctl wrappers from
/// `linux/btrfs.h`, kept private so that only the driver calls them.
mod sys {
    /// `BTRFS_SUBVOL_RDONLY`: the snapshot/subvolume flag for read-only.
    pub const SUBVOL_RDONLY: u64 = 1 << 1;
    /// Inode number of every subvolume's root directory.
    pub const FIRST_FREE_OBJECTID: u64 = 256;
    /// `BTRFS_PATH_NAME_MAX`.
    pub const PATH_NAME_MAX: usize = 4087;
    /// `BTRFS_SUBVOL_NAME_MAX`.
    pub const SUBVOL_NAME_MAX: usize = 4039;
    /// `BTRFS_VOL_NAME_MAX`.
    pub const VOL_NAME_MAX: usize = 255;
    /// `BTRFS_INO_LOOKUP_USER_PATH_MAX`.
    pub const INO_LOOKUP_USER_PATH_MAX: usize = 4080 - VOL_NAME_MAX - 1;
    /// `BTRFS_MAX_ROOTREF_BUFFER_NUM`.
    pub const MAX_ROOTREF_BUFFER_NUM: usize = 255;

    /// `struct btrfs_ioctl_vol_args`.
    #[repr(C)]
    pub struct VolArgs {
        pub fd: i64,
        pub name: [u8; PATH_NAME_MAX + 1],
    }

    /// `struct btrfs_ioctl_vol_args_v2` (the `size`/`qgroup_inherit` union is unused).
    #[repr(C)]
    pub struct VolArgsV2 {
        pub fd: i64,
        pub transid: u64,
        pub flags: u64,
        pub unused: [u64; 4],
        pub name: [u8; SUBVOL_NAME_MAX + 1],
    }

    /// One entry of `struct btrfs_ioctl_get_subvol_rootref_args`.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct RootRef {
        pub treeid: u64,
        pub dirid: u64,
    }

    /// `struct btrfs_ioctl_get_subvol_rootref_args`.
    #[repr(C)]
    pub struct GetSubvolRootrefArgs {
        pub min_treeid: u64,
        pub rootref: [RootRef; MAX_ROOTREF_BUFFER_NUM],
        pub num_items: u8,
        pub align: [u8; 7],
    }

    /// `struct btrfs_ioctl_ino_lookup_user_args`.
    #[repr(C)]
    pub struct InoLookupUserArgs {
        pub dirid: u64,
        pub treeid: u64,
        pub name: [u8; VOL_NAME_MAX + 1],
        pub path: [u8; INO_LOOKUP_USER_PATH_MAX],
    }

    // The kernel's structs are all exactly one page; a layout mistake here would
    // make the ioctls read or write past our buffers.
    const _: () = assert!(std::mem::size_of::<VolArgs>() == 4096);
    const _: () = assert!(std::mem::size_of::<VolArgsV2>() == 4096);
    const _: () = assert!(std::mem::size_of::<GetSubvolRootrefArgs>() == 4096);
    const _: () = assert!(std::mem::size_of::<InoLookupUserArgs>() == 4096);

    nix::ioctl_write_ptr!(
        /// `BTRFS_IOC_SUBVOL_CREATE`: creates subvolume `name` in the fd's directory.
        ioc_subvol_create,
        0x94,
        14,
        VolArgs
    );
    nix::ioctl_write_ptr!(
        /// `BTRFS_IOC_SNAP_DESTROY`: deletes subvolume `name` in the fd's directory.
        ioc_snap_destroy,
        0x94,
        15,
        VolArgs
    );
    nix::ioctl_write_ptr!(
        /// `BTRFS_IOC_SNAP_CREATE_V2`: snapshots subvolume `fd` as `name` in the ioctl fd's directory.
        ioc_snap_create_v2,
        0x94,
        23,
        VolArgsV2
    );
    nix::ioctl_read!(
        /// `BTRFS_IOC_SUBVOL_GETFLAGS`.
        ioc_subvol_getflags,
        0x94,
        25,
        u64
    );
    nix::ioctl_write_ptr!(
        /// `BTRFS_IOC_SUBVOL_SETFLAGS`.
        ioc_subvol_setflags,
        0x94,
        26,
        u64
    );
    nix::ioctl_readwrite!(
        /// `BTRFS_IOC_GET_SUBVOL_ROOTREF`: subvolumes whose dentry is in the fd's subvolume.
        ioc_get_subvol_rootref,
        0x94,
        61,
        GetSubvolRootrefArgs
    );
    nix::ioctl_readwrite!(
        /// `BTRFS_IOC_INO_LOOKUP_USER`: name and path of a child subvolume.
        ioc_ino_lookup_user,
        0x94,
        62,
        InoLookupUserArgs
    );
}

use sys::*;

/// Volumes are btrfs subvolumes; see the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct BtrfsDriver;

impl BtrfsDriver {
    /// A driver; it holds no state (every call opens what it acts on).
    pub fn new() -> Self {
        BtrfsDriver
    }
}

/// Whether `path` is on a btrfs file system.
pub fn is_btrfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
        .unwrap_or(false)
}

fn open_dir(path: &Path, op: &'static str) -> Result<File, StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound(path.display().to_string()),
            _ => StorageError::io(op, path, e),
        })
}

/// Copies `name` into a NUL-terminated fixed buffer, refusing names btrfs
/// cannot hold (too long, with a '/' or a NUL).
fn fill_name(buf: &mut [u8], name: &OsStr, path: &Path) -> Result<(), StorageError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > VOL_NAME_MAX || bytes.contains(&b'/') || bytes.contains(&0)
    {
        return Err(StorageError::io(
            "volume name",
            path,
            io::Error::from(io::ErrorKind::InvalidFilename),
        ));
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

fn vol_args(name: &OsStr, path: &Path) -> Result<Box<VolArgs>, StorageError> {
    let mut args = Box::new(VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    });
    fill_name(&mut args.name, name, path)?;
    Ok(args)
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn subvol_flags(dir: &File, path: &Path) -> Result<u64, StorageError> {
    let mut flags = 0u64;
    // SAFETY: `dir` is an open fd for the whole call and `flags` is a valid,
    // writable u64, which is what BTRFS_IOC_SUBVOL_GETFLAGS writes.
    unsafe { ioc_subvol_getflags(dir.as_raw_fd(), &mut flags) }
        .map_err(|e| StorageError::io("get subvolume flags", path, errno_io(e)))?;
    Ok(flags)
}

fn set_subvol_flags(dir: &File, path: &Path, flags: u64) -> Result<(), StorageError> {
    // SAFETY: `dir` is an open fd and `flags` a valid u64 the kernel only reads.
    unsafe { ioc_subvol_setflags(dir.as_raw_fd(), &flags) }
        .map_err(|e| StorageError::io("set subvolume flags", path, errno_io(e)))?;
    Ok(())
}

/// Paths of the subvolumes whose directory entry lies inside the subvolume
/// opened as `dir` (at host path `path`).
fn child_subvolumes(dir: &File, path: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut refs = Vec::new();
    let mut args = Box::new(GetSubvolRootrefArgs {
        min_treeid: 0,
        rootref: [RootRef {
            treeid: 0,
            dirid: 0,
        }; MAX_ROOTREF_BUFFER_NUM],
        num_items: 0,
        align: [0; 7],
    });
    loop {
        // SAFETY: `args` is a live, properly laid out (size-asserted) struct
        // the kernel reads `min_treeid` from and fills in; `dir` is open.
        let res = unsafe { ioc_get_subvol_rootref(dir.as_raw_fd(), &mut *args) };
        let more = match res {
            Ok(_) => false,
            // More than one buffer of children: the kernel filled this one and
            // advanced `min_treeid` for the next call.
            Err(Errno::EOVERFLOW) => true,
            Err(e) => {
                return Err(StorageError::io(
                    "list nested subvolumes",
                    path,
                    errno_io(e),
                ))
            }
        };
        refs.extend_from_slice(&args.rootref[..args.num_items as usize]);
        if !more {
            break;
        }
    }
    let mut children = Vec::with_capacity(refs.len());
    for r in refs {
        let mut look = Box::new(InoLookupUserArgs {
            dirid: r.dirid,
            treeid: r.treeid,
            name: [0; VOL_NAME_MAX + 1],
            path: [0; INO_LOOKUP_USER_PATH_MAX],
        });
        // SAFETY: as above: a live, size-asserted struct and an open fd; the
        // kernel NUL-terminates `name` and `path` within their buffers.
        unsafe { ioc_ino_lookup_user(dir.as_raw_fd(), &mut *look) }
            .map_err(|e| StorageError::io("look up nested subvolume", path, errno_io(e)))?;
        let rel = cstr_bytes(&look.path);
        let name = cstr_bytes(&look.name);
        let rel = Path::new(OsStr::from_bytes(rel));
        children.push(path.join(rel).join(OsStr::from_bytes(name)));
    }
    Ok(children)
}

fn cstr_bytes(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

impl BtrfsDriver {
    /// Deletes the subvolume at `path`, handling nested subvolumes and the
    /// read-only flag on the slow path only.
    fn destroy(&self, path: &Path) -> Result<(), StorageError> {
        let (parent, name) = split_path(path)?;
        let parent_dir = open_dir(parent, "open parent of subvolume")?;
        let args = vol_args(name, path)?;
        // SAFETY: `parent_dir` is open and `args` a valid, NUL-terminated
        // btrfs_ioctl_vol_args that the kernel only reads.
        let first = unsafe { ioc_snap_destroy(parent_dir.as_raw_fd(), &*args) };
        match first {
            Ok(_) => return Ok(()),
            Err(Errno::ENOENT) => return Ok(()),
            // ENOTEMPTY: nested subvolumes; EPERM/EROFS/EACCES: the checks a
            // read-only subvolume can trip. Both are handled below.
            Err(Errno::ENOTEMPTY | Errno::EPERM | Errno::EROFS | Errno::EACCES) => {}
            Err(e) => return Err(StorageError::io("delete subvolume", path, errno_io(e))),
        }
        let dir = open_dir(path, "open subvolume")?;
        let flags = subvol_flags(&dir, path)?;
        if flags & SUBVOL_RDONLY != 0 {
            // Nested subvolumes' entries live in this one: unlinking them is a
            // write, so the read-only flag must go first.
            set_subvol_flags(&dir, path, flags & !SUBVOL_RDONLY)?;
        }
        for child in child_subvolumes(&dir, path)? {
            self.destroy(&child)?;
        }
        drop(dir);
        // SAFETY: same as the first attempt above.
        unsafe { ioc_snap_destroy(parent_dir.as_raw_fd(), &*args) }
            .map(|_| ())
            .map_err(|e| StorageError::io("delete subvolume", path, errno_io(e)))
    }
}

impl StorageDriver for BtrfsDriver {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn create_volume(&self, path: &Path) -> Result<(), StorageError> {
        let (parent, name) = split_path(path)?;
        let parent_dir = open_dir(parent, "open parent of new subvolume")?;
        let args = vol_args(name, path)?;
        // SAFETY: `parent_dir` is open and `args` a valid, NUL-terminated
        // btrfs_ioctl_vol_args that the kernel only reads.
        match unsafe { ioc_subvol_create(parent_dir.as_raw_fd(), &*args) } {
            Ok(_) => Ok(()),
            Err(Errno::EEXIST) => Err(StorageError::AlreadyExists(path.display().to_string())),
            Err(e) => Err(StorageError::io("create subvolume", path, errno_io(e))),
        }
    }

    fn snapshot(&self, src: &Path, dst: &Path, readonly: bool) -> Result<(), StorageError> {
        if !self.is_volume(src) {
            return Err(if src.exists() {
                StorageError::NotAVolume(src.display().to_string())
            } else {
                StorageError::NotFound(src.display().to_string())
            });
        }
        let source = open_dir(src, "open snapshot source")?;
        let (parent, name) = split_path(dst)?;
        let parent_dir = open_dir(parent, "open parent of snapshot")?;
        let mut args = Box::new(VolArgsV2 {
            fd: source.as_raw_fd() as i64,
            transid: 0,
            flags: if readonly { SUBVOL_RDONLY } else { 0 },
            unused: [0; 4],
            name: [0; SUBVOL_NAME_MAX + 1],
        });
        fill_name(&mut args.name, name, dst)?;
        // SAFETY: `parent_dir` and `source` (whose fd is in `args`) stay open
        // for the call; `args` is a valid btrfs_ioctl_vol_args_v2 the kernel
        // only reads.
        match unsafe { ioc_snap_create_v2(parent_dir.as_raw_fd(), &*args) } {
            Ok(_) => Ok(()),
            Err(Errno::EEXIST) => Err(StorageError::AlreadyExists(dst.display().to_string())),
            Err(e) => Err(StorageError::io("snapshot", dst, errno_io(e))),
        }
    }

    fn delete(&self, path: &Path) -> Result<(), StorageError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("stat volume", path, e)),
            Ok(_) if !self.is_volume(path) => {
                return Err(StorageError::NotAVolume(path.display().to_string()))
            }
            Ok(_) => {}
        }
        self.destroy(path)
    }

    fn set_readonly(&self, path: &Path, readonly: bool) -> Result<(), StorageError> {
        if !self.is_volume(path) {
            return Err(StorageError::NotAVolume(path.display().to_string()));
        }
        let dir = open_dir(path, "open subvolume")?;
        let flags = subvol_flags(&dir, path)?;
        let wanted = if readonly {
            flags | SUBVOL_RDONLY
        } else {
            flags & !SUBVOL_RDONLY
        };
        if wanted != flags {
            set_subvol_flags(&dir, path, wanted)?;
        }
        Ok(())
    }

    fn is_volume(&self, path: &Path) -> bool {
        match std::fs::symlink_metadata(path) {
            Ok(m) => m.is_dir() && m.ino() == FIRST_FREE_OBJECTID && is_btrfs(path),
            Err(_) => false,
        }
    }
}

/// Whether the subvolume at `path` carries the read-only flag.
pub fn is_readonly(path: &Path) -> Result<bool, StorageError> {
    let dir = open_dir(path, "open subvolume")?;
    Ok(subvol_flags(&dir, path)? & SUBVOL_RDONLY != 0)
}
