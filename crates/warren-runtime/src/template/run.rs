//! Running programs for template builds: their output as progress lines,
//! and build steps inside a rootfs as the sandbox's root.
//!
//! A step runs in a new user namespace mapping ids `0..65536` to
//! `SANDBOX_ID_BASE..`, so that every file it creates is owned by the
//! shifted ids, plus new mount and pid namespaces, chrooted into the rootfs,
//! with the host's network (apt needs it). We write the id maps ourselves
//! (Debian's `unshare --map-users` needs `newuidmap` and `/etc/subuid`): the
//! child unshares its user namespace before exec, hands us its pid through a
//! pipe, and waits on a second pipe until we have written its maps. It then
//! execs util-linux `unshare` for the mount and pid namespaces, which runs
//! [`STEP_SCRIPT`].
//!
//! The rootfs lives under the 0700 state directory, out of the step's
//! reach: before it makes its user namespace, the child (still host root)
//! binds the rootfs over [`STAGED_ROOT`] in a private mount namespace of its
//! own ([`stage_root`]), and the step works there.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::users::Ident;
use super::TemplateError;
use crate::{SANDBOX_ID_BASE, SANDBOX_ID_COUNT};

/// Sets up `/dev` (with its own devpts), `/proc` and DNS in the rootfs (host tools, new mount
/// namespace), then chroots and runs the step with `sh -c` in its workdir.
/// Arguments: rootfs, workdir, command, path of the host's `chroot`, and
/// for a step run as a user `uid:gid` and its groups (`g1,g2`), else two
/// empty strings. A user's working directory must exist (a root step makes
/// its own if missing; a Dockerfile's `WORKDIR` is a step that makes it).
const STEP_SCRIPT: &str = r#"set -eu
root=$1
sbxpath=$PATH
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p "$root/dev" "$root/proc"
mount -t tmpfs -o mode=755,nosuid,size=16m warren-dev "$root/dev"
for n in null zero full random urandom tty; do
  : > "$root/dev/$n"
  mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 warren-pts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev warren-shm "$root/dev/shm"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
if [ -f "$root/etc/resolv.conf" ] && [ ! -L "$root/etc/resolv.conf" ]; then
  mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
fi
if [ -n "${WARREN_EXTRA_CA:-}" ]; then
  mkdir -p "$root/run/warren"
  mount -t tmpfs -o mode=755,nosuid,nodev,size=16m warren-ca "$root/run/warren"
  printf '%s\n' "$WARREN_EXTRA_CA" > "$root/run/warren/extra-ca.pem"
  { "$4" "$root" /bin/cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true
    printf '%s\n' "$WARREN_EXTRA_CA"; } > "$root/run/warren/ca-bundle.pem"
  unset WARREN_EXTRA_CA
fi
PATH=$sbxpath
if [ -n "$5" ]; then
  exec "$4" --userspec="$5" --groups="$6" "$root" /bin/sh -c 'cd "$1" && exec /bin/sh -c "$2"' warren-step "$2" "$3"
fi
exec "$4" "$root" /bin/sh -c 'mkdir -p "$1" && cd "$1" && exec /bin/sh -c "$2"' warren-step "$2" "$3"
"#;

/// The variable that hands a step script the extra CA certificates (PEM);
/// the script writes them under `/run/warren` (a tmpfs of the step's own,
/// so no layer keeps them) as [`crate::trust`] describes.
pub(crate) const EXTRA_CA_VAR: &str = "WARREN_EXTRA_CA";

/// Where the child binds the rootfs for the step (see the module docs): a
/// directory every host has and anyone may traverse.
const STAGED_ROOT: &std::ffi::CStr = c"/tmp";

/// Runs `cmd` with stdout and stderr merged, handing each output line to
/// `progress`; fails with the last lines when it exits unsuccessfully.
pub(crate) fn run_streaming(
    cmd: &mut Command,
    step: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(), TemplateError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let spawn_err = |source| TemplateError::Spawn {
        program: program.clone(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(spawn_err)?)
        .stderr(writer);
    let spawned = cmd.spawn();
    // `cmd` holds the pipe's write end: replace it, or we never see EOF.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = spawned.map_err(spawn_err)?;
    let tail = relay_lines(reader, progress);
    let status = child.wait().map_err(spawn_err)?;
    if status.success() {
        Ok(())
    } else {
        Err(TemplateError::StepFailed {
            step: step.to_string(),
            status: status.to_string(),
            output: tail.into_iter().collect::<Vec<_>>().join("\n"),
        })
    }
}

/// Forwards lines to `progress` until EOF; returns the last 20.
fn relay_lines(reader: impl Read, progress: &mut dyn FnMut(&str)) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(20);
    for line in BufReader::new(reader).split(b'\n') {
        let Ok(line) = line else {
            break;
        };
        let text = String::from_utf8_lossy(&line);
        // Progress meters redraw with '\r': keep the final state.
        let text = text.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
        progress(text);
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(text.to_string());
    }
    tail
}

/// Runs `command` with `sh -c` inside `rootfs` as the sandbox's root (see
/// the module docs), or as `user` of the rootfs, with exactly `env` as its
/// environment.
pub(crate) fn run_in_rootfs(
    rootfs: &Path,
    command: &str,
    env: &BTreeMap<String, String>,
    workdir: &str,
    user: Option<&Ident>,
    step: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(), TemplateError> {
    let find = |name: &str| {
        crate::storage::find_program(name).ok_or_else(|| TemplateError::Spawn {
            program: name.to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    };
    let unshare = find("unshare")?;
    let chroot = find("chroot")?;
    let spawn_err = |source| TemplateError::Spawn {
        program: "unshare".to_string(),
        source,
    };
    // Close-on-exec from birth: other threads may be spawning too.
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (ready_r, ready_w) = nix::unistd::pipe2(cloexec).map_err(|e| spawn_err(e.into()))?;
    let (go_r, go_w) = nix::unistd::pipe2(cloexec).map_err(|e| spawn_err(e.into()))?;
    // Allocated here, used by the child: nothing is allocated after the fork.
    let source = std::ffi::CString::new(rootfs.as_os_str().as_bytes()).map_err(|_| {
        spawn_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a NUL byte in the rootfs path",
        ))
    })?;
    let staged = Path::new(std::ffi::OsStr::from_bytes(STAGED_ROOT.to_bytes()));
    let mut cmd = Command::new(unshare);
    cmd.args(["--mount", "--pid", "--fork", "--kill-child"])
        .args([
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            STEP_SCRIPT,
            "warren-step",
        ])
        .arg(staged)
        .arg(workdir)
        .arg(command)
        .arg(chroot);
    match user {
        Some(ident) => {
            let groups: Vec<String> = ident.groups.iter().map(u32::to_string).collect();
            cmd.arg(format!("{}:{}", ident.uid, ident.gid))
                .arg(groups.join(","));
        }
        None => {
            cmd.args(["", ""]);
        }
    }
    cmd.current_dir("/").env_clear().envs(env);
    let (ready_fd, go_fd) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (unshare, mount, mkdir, getpid,
    // write, read, setresgid, setgroups, setresuid) on fds that stay open
    // until the parent drops them after spawn returns, and on `source`,
    // allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            stage_root(&source)?;
            enter_user_namespace(ready_fd, go_fd)
        });
    }
    let mapper = std::thread::spawn(move || write_id_maps(ready_r, go_w));
    let result = run_streaming(&mut cmd, step, progress);
    drop(cmd);
    drop((ready_w, go_r));
    let mapped = mapper
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("id map writer panicked")));
    match (result, mapped) {
        (Ok(()), _) => Ok(()),
        (Err(TemplateError::Spawn { source, .. }), Err(map_err)) => Err(TemplateError::Spawn {
            program: "unshare".to_string(),
            source: std::io::Error::new(source.kind(), format!("{source}; id maps: {map_err}")),
        }),
        (Err(e), _) => Err(e),
    }
}

/// In the child, before exec and before its user namespace: a private mount
/// namespace in which the rootfs (`source`) is bound over [`STAGED_ROOT`]
/// (its path is looked up by host root, before the bind covers it).
fn stage_root(source: &std::ffi::CStr) -> std::io::Result<()> {
    private_mount_namespace()?;
    raw_mount(source, STAGED_ROOT, libc::MS_BIND | libc::MS_REC)
}

/// Lets `cmd` (run as host root) use device nodes and set-id files in
/// `dir`, which lies on the pool, mounted `nosuid,nodev` for everyone else:
/// before exec, the child makes a private mount namespace of its own and
/// binds `dir` onto itself without those flags. Nothing of it reaches the
/// host's mount table, and whatever the program mounts under `dir` (as
/// debootstrap mounts `/proc` there) goes away with it.
pub(crate) fn with_devices_in(cmd: &mut Command, dir: &Path) -> Result<(), TemplateError> {
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| TemplateError::io("stage", dir, std::io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: the closure makes raw system calls only (no allocation, no
    // locks), as required between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            private_mount_namespace()?;
            raw_mount(&target, &target, libc::MS_BIND)?;
            raw_mount(c"", &target, libc::MS_BIND | libc::MS_REMOUNT)
        });
    }
    Ok(())
}

/// Between fork and exec: a new mount namespace in which every mount is
/// private, so nothing done in it reaches the host.
fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: unshare takes flags only; no allocation, no locks.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    raw_mount(c"", c"/", libc::MS_REC | libc::MS_PRIVATE)
}

/// Between fork and exec: mount(2) without a file system type or data (a
/// bind, a remount or a propagation change); an empty `source` is none.
fn raw_mount(
    source: &std::ffi::CStr,
    target: &std::ffi::CStr,
    flags: libc::c_ulong,
) -> std::io::Result<()> {
    let source = if source.is_empty() {
        std::ptr::null()
    } else {
        source.as_ptr()
    };
    // SAFETY: NUL-terminated strings that outlive the call; no allocation,
    // no locks.
    let rc = unsafe {
        libc::mount(
            source,
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// In the child, before exec: new user namespace, report our pid, wait for
/// the maps, become its root.
fn enter_user_namespace(ready: i32, go: i32) -> std::io::Result<()> {
    // SAFETY: raw system calls on plain integers and stack buffers; no
    // allocation, no locks, as required between fork and exec.
    unsafe {
        if libc::unshare(libc::CLONE_NEWUSER) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let pid = libc::getpid().to_ne_bytes();
        if libc::write(ready, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
        let mut ok = 0u8;
        if libc::read(go, (&mut ok as *mut u8).cast(), 1) != 1 || ok != 1 {
            return Err(std::io::Error::from_raw_os_error(libc::EPERM));
        }
        if libc::setresgid(0, 0, 0) != 0
            || libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresuid(0, 0, 0) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // A build step dies with the process that runs the build: a crash of
        // the server must not leave it running in a volume the next start
        // sweeps away (`unshare --kill-child` takes the rest of the step).
        // Set last: a change of credentials clears it.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In the parent: wait for the child's pid, write its uid and gid maps, and
/// tell it to go on (or not, if writing failed).
fn write_id_maps(ready: OwnedFd, go: OwnedFd) -> std::io::Result<()> {
    let mut pid = [0u8; 4];
    let mut ready = std::fs::File::from(ready);
    // EOF here means the child died (or spawn failed) before unsharing.
    ready.read_exact(&mut pid)?;
    let pid = i32::from_ne_bytes(pid);
    let map = format!("0 {SANDBOX_ID_BASE} {SANDBOX_ID_COUNT}\n");
    let result = std::fs::write(format!("/proc/{pid}/uid_map"), &map)
        .and_then(|()| std::fs::write(format!("/proc/{pid}/gid_map"), &map));
    let verdict = [u8::from(result.is_ok())];
    nix::unistd::write(&go, &verdict)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes a device node in a directory on a `nodev` mount and writes to
    /// it, as debootstrap's own check does; `Ok` if that worked.
    fn mknod_and_open(dir: &Path, with_devices: bool) -> Result<(), String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("mknod \"$1/null\" c 1 3 && echo test > \"$1/null\"; rc=$?; rm -f \"$1/null\"; exit $rc")
            .arg("sh")
            .arg(dir);
        if with_devices {
            with_devices_in(&mut cmd, dir).map_err(|e| e.to_string())?;
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    #[test]
    fn a_program_given_devices_in_a_dir_opens_them_on_a_nodev_mount() {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("pool");
        std::fs::create_dir(&mnt).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &mnt,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOSUID,
            Some("size=1m"),
        )
        .expect("a nodev tmpfs (the tests run as root)");
        let target = mnt.join("rootfs");
        std::fs::create_dir(&target).unwrap();
        let plain = mknod_and_open(&target, false);
        let staged = mknod_and_open(&target, true);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(
            plain.is_err(),
            "the nodev mount let a device be opened: the test proves nothing"
        );
        staged.expect("the program could not open its device node");
        let target = target.to_str().unwrap();
        assert!(
            !mounts.lines().any(|l| l.contains(target)),
            "the program's bind reached the host's mount table:\n{mounts}"
        );
    }
}
