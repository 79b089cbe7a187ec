//! The btrfs driver: a volume is a subvolume, a snapshot a btrfs snapshot.
//!
//! Every hot-path operation is one ioctl on a directory fd, never the
//! `btrfs` CLI: `BTRFS_IOC_SUBVOL_CREATE`, `BTRFS_IOC_SNAP_CREATE_V2` (with
//! `BTRFS_SUBVOL_RDONLY` for read-only snapshots), `BTRFS_IOC_SNAP_DESTROY`,
//! and `BTRFS_IOC_SUBVOL_{GET,SET}FLAGS`. Deleting a subvolume that holds
//! nested subvolumes (a sandbox can create them) fails with `ENOTEMPTY`; the
//! driver then lists the children with `BTRFS_IOC_GET_SUBVOL_ROOTREF` and
//! `BTRFS_IOC_INO_LOOKUP_USER`, deletes them depth first and retries, always
//! through directory descriptors (`openat` one component at a time, and a
//! search by inode number when the kernel cannot name a directory that
//! deep), so a nested subvolume deeper than `PATH_MAX` is deleted too.

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

    /// `struct btrfs_ioctl_quota_ctl_args`.
    #[repr(C)]
    pub struct QuotaCtlArgs {
        pub cmd: u64,
        pub status: u64,
    }

    /// `BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA` (kernel 6.7 on): extents are
    /// charged to the subvolume that wrote them, so a snapshot's shared
    /// data stays its template's and only new writes count.
    pub const QUOTA_CTL_ENABLE_SIMPLE: u64 = 4;

    /// `struct btrfs_ioctl_qgroup_limit_args` (with `struct
    /// btrfs_qgroup_limit` inlined).
    #[repr(C)]
    pub struct QgroupLimitArgs {
        pub qgroupid: u64,
        pub flags: u64,
        pub max_rfer: u64,
        pub max_excl: u64,
        pub rsv_rfer: u64,
        pub rsv_excl: u64,
    }

    /// `BTRFS_QGROUP_LIMIT_MAX_RFER | BTRFS_QGROUP_LIMIT_MAX_EXCL`.
    pub const QGROUP_LIMIT_MAX_RFER_EXCL: u64 = (1 << 0) | (1 << 1);

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
    nix::ioctl_read!(
        /// `BTRFS_IOC_START_SYNC`: starts committing the running transaction
        /// (no data writeback) and returns its id.
        ioc_start_sync,
        0x94,
        24,
        u64
    );
    nix::ioctl_write_ptr!(
        /// `BTRFS_IOC_WAIT_SYNC`: waits until a transaction is committed.
        ioc_wait_sync,
        0x94,
        22,
        u64
    );
    nix::ioctl_readwrite!(
        /// `BTRFS_IOC_QUOTA_CTL`: turns quota groups on or off.
        ioc_quota_ctl,
        0x94,
        40,
        QuotaCtlArgs
    );
    nix::ioctl_read!(
        /// `BTRFS_IOC_QGROUP_LIMIT` (declared `_IOR`, though the kernel
        /// reads the struct): limits a qgroup; id 0 is the fd's subvolume.
        ioc_qgroup_limit,
        0x94,
        43,
        QgroupLimitArgs
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

/// Turns on simple quotas on the btrfs file system holding `dir`, so that
/// subvolumes can be limited ([`BtrfsDriver::limit_volume`]). Quotas
/// already on are left as they are (the kernel answers `EEXIST`, or
/// `EINVAL` when they are on in full mode, where limits work as well).
pub fn enable_quotas(dir: &Path) -> Result<(), StorageError> {
    let file = open_dir(dir, "open the pool for quotas")?;
    let mut args = QuotaCtlArgs {
        cmd: QUOTA_CTL_ENABLE_SIMPLE,
        status: 0,
    };
    // SAFETY: `file` is open and `args` a valid btrfs_ioctl_quota_ctl_args.
    match unsafe { ioc_quota_ctl(file.as_raw_fd(), &mut args) } {
        Ok(_) | Err(Errno::EEXIST | Errno::EINVAL) => Ok(()),
        Err(e) => Err(StorageError::io("enable quotas", dir, errno_io(e))),
    }
}

impl BtrfsDriver {
    /// Limits what the subvolume at `path` may write to `bytes` (`None`:
    /// no limit). With simple quotas a snapshot's shared data stays its
    /// source's: only what the volume writes itself counts. Past the limit
    /// writes fail with `EDQUOT` ("Disk quota exceeded").
    pub fn limit_volume(&self, path: &Path, bytes: Option<u64>) -> Result<(), StorageError> {
        let dir = open_dir(path, "open subvolume to limit")?;
        let max = bytes.unwrap_or(u64::MAX);
        let mut args = QgroupLimitArgs {
            qgroupid: 0,
            flags: QGROUP_LIMIT_MAX_RFER_EXCL,
            max_rfer: max,
            max_excl: max,
            rsv_rfer: 0,
            rsv_excl: 0,
        };
        // SAFETY: `dir` is open and `args` a valid btrfs_ioctl_qgroup_limit_args.
        unsafe { ioc_qgroup_limit(dir.as_raw_fd(), &mut args) }
            .map(|_| ())
            .map_err(|e| StorageError::io("limit subvolume", path, errno_io(e)))
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

/// Where a nested subvolume's entry is, inside the subvolume that holds it.
struct ChildRef {
    /// Inode number of the directory holding the entry.
    dirid: u64,
    /// That directory's path from the subvolume's root and the entry's
    /// name, when the kernel could give them (`None`: the path is longer
    /// than `BTRFS_IOC_INO_LOOKUP_USER` answers; the directory is then
    /// found by its inode number).
    located: Option<(PathBuf, std::ffi::OsString)>,
}

/// The subvolumes whose directory entry lies inside the subvolume opened as
/// `dir` (at host path `path`, for messages).
fn child_subvolumes(dir: &File, path: &Path) -> Result<Vec<ChildRef>, StorageError> {
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
        let located = match unsafe { ioc_ino_lookup_user(dir.as_raw_fd(), &mut *look) } {
            Ok(_) => Some((
                PathBuf::from(OsStr::from_bytes(cstr_bytes(&look.path))),
                OsStr::from_bytes(cstr_bytes(&look.name)).to_os_string(),
            )),
            Err(Errno::ENAMETOOLONG) => None,
            Err(e) => {
                return Err(StorageError::io(
                    "look up nested subvolume",
                    path,
                    errno_io(e),
                ))
            }
        };
        children.push(ChildRef {
            dirid: r.dirid,
            located,
        });
    }
    Ok(children)
}

/// Opens directory `name` in `dir`, never through a symlink.
fn open_dir_at(dir: &File, name: &OsStr, path: &Path) -> Result<File, StorageError> {
    let fail = |e: io::Error| StorageError::io("open directory", &path.join(name), e);
    let c_name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| fail(io::Error::from(io::ErrorKind::InvalidInput)))?;
    // SAFETY: `dir` is open and `c_name` a NUL-terminated string; the new
    // fd is owned by the returned File.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c_name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Opens `rel` (a path from the kernel, relative to `root`) one component
/// at a time, so that its length never matters.
fn walk(root: &File, rel: &Path, path: &Path) -> Result<File, StorageError> {
    let mut cur = root
        .try_clone()
        .map_err(|e| StorageError::io("dup directory", path, e))?;
    for component in rel.components() {
        if let std::path::Component::Normal(name) = component {
            cur = open_dir_at(&cur, name, path)?;
        }
    }
    Ok(cur)
}

/// Names of the subdirectories of `dir`, with their inode numbers.
fn subdirs(dir: &File, path: &Path) -> Result<Vec<(std::ffi::OsString, u64)>, StorageError> {
    let fd = nix::unistd::dup(dir.as_raw_fd())
        .map_err(|e| StorageError::io("dup directory", path, errno_io(e)))?;
    let mut handle = nix::dir::Dir::from_fd(fd)
        .map_err(|e| StorageError::io("read directory", path, errno_io(e)))?;
    let mut out = Vec::new();
    for entry in handle.iter() {
        let entry = entry.map_err(|e| StorageError::io("read directory", path, errno_io(e)))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if entry.file_type() == Some(nix::dir::Type::Directory) {
            out.push((OsStr::from_bytes(name).to_os_string(), entry.ino()));
        }
    }
    Ok(out)
}

/// Whether the open directory `dir` is the root of a subvolume (readdir
/// shows a subvolume's entry with its tree id, so only a stat tells).
fn is_subvolume_root(dir: &File, path: &Path) -> Result<bool, StorageError> {
    let meta = dir
        .metadata()
        .map_err(|e| StorageError::io("stat directory", path, e))?;
    Ok(meta.ino() == FIRST_FREE_OBJECTID)
}

/// Finds the directory with inode number `ino` in the subvolume whose root
/// is `root`, depth first, holding two descriptors at most (it climbs back
/// with `..`), however deep the tree.
fn dir_by_inode(root: &File, ino: u64, path: &Path) -> Result<File, StorageError> {
    let mut cur = root
        .try_clone()
        .map_err(|e| StorageError::io("dup directory", path, e))?;
    if ino == FIRST_FREE_OBJECTID {
        return Ok(cur);
    }
    // Per level: the subdirectories still to visit.
    let mut pending = vec![subdirs(&cur, path)?];
    while let Some(level) = pending.last_mut() {
        match level.pop() {
            Some((name, entry_ino)) => {
                let next = open_dir_at(&cur, &name, path)?;
                // Another subvolume's root: not part of this tree.
                if is_subvolume_root(&next, path)? {
                    continue;
                }
                if entry_ino == ino {
                    return Ok(next);
                }
                cur = next;
                pending.push(subdirs(&cur, path)?);
            }
            None => {
                pending.pop();
                if !pending.is_empty() {
                    cur = open_dir_at(&cur, OsStr::new(".."), path)?;
                }
            }
        }
    }
    Err(StorageError::io(
        "find the directory of a nested subvolume",
        path,
        io::Error::from(io::ErrorKind::NotFound),
    ))
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
        self.destroy_at(&parent_dir, name, path)
    }

    /// Deletes subvolume `name` of directory `parent` (host path `path`, for
    /// messages only). Nested subvolumes are reached through descriptors,
    /// never through their full paths, which a sandbox can make longer than
    /// `PATH_MAX`.
    fn destroy_at(&self, parent: &File, name: &OsStr, path: &Path) -> Result<(), StorageError> {
        let args = vol_args(name, path)?;
        // SAFETY: `parent` is open and `args` a valid, NUL-terminated
        // btrfs_ioctl_vol_args that the kernel only reads.
        let first = unsafe { ioc_snap_destroy(parent.as_raw_fd(), &*args) };
        match first {
            Ok(_) => return Ok(()),
            Err(Errno::ENOENT) => return Ok(()),
            // ENOTEMPTY: nested subvolumes; EPERM/EROFS/EACCES: the checks a
            // read-only subvolume can trip. Both are handled below.
            Err(Errno::ENOTEMPTY | Errno::EPERM | Errno::EROFS | Errno::EACCES) => {}
            Err(e) => return Err(StorageError::io("delete subvolume", path, errno_io(e))),
        }
        let dir = open_dir_at(parent, name, path)?;
        let flags = subvol_flags(&dir, path)?;
        if flags & SUBVOL_RDONLY != 0 {
            // Nested subvolumes' entries live in this one: unlinking them is a
            // write, so the read-only flag must go first.
            set_subvol_flags(&dir, path, flags & !SUBVOL_RDONLY)?;
        }
        for child in child_subvolumes(&dir, path)? {
            match child.located {
                Some((rel, child_name)) => {
                    let holder = walk(&dir, &rel, path)?;
                    self.destroy_at(&holder, &child_name, &path.join(&rel).join(&child_name))?;
                }
                None => {
                    // Too deep to be named: every subvolume in that
                    // directory goes (this one is being deleted anyway).
                    let holder = dir_by_inode(&dir, child.dirid, path)?;
                    for (entry, _) in subdirs(&holder, path)? {
                        if is_subvolume_root(&open_dir_at(&holder, &entry, path)?, path)? {
                            self.destroy_at(&holder, &entry, &path.join("…").join(&entry))?;
                        }
                    }
                }
            }
        }
        drop(dir);
        // SAFETY: same as the first attempt above.
        unsafe { ioc_snap_destroy(parent.as_raw_fd(), &*args) }
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

    /// Needs no `syncfs`: the snapshot ioctl first writes back the source
    /// subvolume's dirty data and waits for it (`btrfs_mksnapshot`:
    /// start delalloc, wait ordered extents), then commits the transaction
    /// that creates the snapshot before it returns. Only the source's own
    /// dirty data is written, not that of every volume of the file system
    /// (other sandboxes' writes cost a checkpoint nothing).
    fn snapshot_durable(&self, src: &Path, dst: &Path) -> Result<(), StorageError> {
        self.snapshot(src, dst, true)
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

    /// Commits the running transaction (`BTRFS_IOC_START_SYNC`, then
    /// `BTRFS_IOC_WAIT_SYNC`), which wakes the cleaner thread: without it,
    /// deleted subvolumes wait for the next commit, the 30 s periodic one or
    /// the next snapshot's, and are then cleaned all at once, each with a
    /// commit of its own (simple quotas drop the volume's qgroup), in the
    /// way of whatever made that snapshot. No tenant's dirty data is
    /// written back (unlike `BTRFS_IOC_SYNC` or `syncfs`).
    fn reclaim_deleted(&self, dir: &Path) -> Result<(), StorageError> {
        let file = open_dir(dir, "open the pool to commit")?;
        let mut transid = 0u64;
        // SAFETY: `file` is open and `transid` a writable u64, which is
        // what BTRFS_IOC_START_SYNC writes.
        unsafe { ioc_start_sync(file.as_raw_fd(), &mut transid) }
            .map_err(|e| StorageError::io("start a commit", dir, errno_io(e)))?;
        // SAFETY: as above; the kernel only reads the u64.
        unsafe { ioc_wait_sync(file.as_raw_fd(), &transid) }
            .map_err(|e| StorageError::io("wait for a commit", dir, errno_io(e)))?;
        Ok(())
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

    fn limit_size(&self, path: &Path, bytes: Option<u64>) -> Result<bool, StorageError> {
        self.limit_volume(path, bytes).map(|()| true)
    }

    fn is_volume(&self, path: &Path) -> bool {
        match std::fs::symlink_metadata(path) {
            Ok(m) => m.is_dir() && m.ino() == FIRST_FREE_OBJECTID && is_btrfs(path),
            Err(_) => false,
        }
    }

    /// A send stream without data between the two subvolumes; a writable
    /// `to` is first snapshotted read-only at `scratch`, deleted once the
    /// kernel is done with it.
    fn diff(
        &self,
        from: &Path,
        to: &Path,
        scratch: &Path,
        limits: super::diff::DiffLimits,
    ) -> Result<super::diff::Diff, StorageError> {
        for volume in [from, to] {
            if !self.is_volume(volume) {
                return Err(StorageError::NotFound(volume.display().to_string()));
            }
        }
        if is_readonly(to)? {
            return super::send::diff(from, to, limits, std::sync::Arc::new(()))
                .map_err(|e| StorageError::io("diff", to, e));
        }
        self.snapshot(to, scratch, true)?;
        let guard = std::sync::Arc::new(Scratch(scratch.to_path_buf()));
        super::send::diff(from, scratch, limits, guard).map_err(|e| StorageError::io("diff", to, e))
    }
}

/// A temporary read-only snapshot, deleted when the last holder drops it.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = BtrfsDriver.delete(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "deleting a diff's snapshot");
        }
    }
}

/// Whether the subvolume at `path` carries the read-only flag.
pub fn is_readonly(path: &Path) -> Result<bool, StorageError> {
    let dir = open_dir(path, "open subvolume")?;
    Ok(subvol_flags(&dir, path)? & SUBVOL_RDONLY != 0)
}
