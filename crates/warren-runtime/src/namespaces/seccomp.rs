//! The sandbox's seccomp filter: Docker's default profile as a denylist.
//!
//! Docker's profile is an allowlist, but what it leaves out is a short list of
//! syscalls that reach host-global kernel state (keyrings, modules, kexec,
//! clocks, swap, accounting, BPF, perf, mounts, handle-based opens, ...). We
//! deny exactly those with `EPERM`, which keeps every new harmless syscall
//! working. On top:
//! - `clone` and `unshare` with any namespace flag, and `setns`, are denied:
//!   no nested user namespaces (they would hand a process a full capability
//!   set over new namespaces and a large kernel attack surface);
//! - `clone3` answers `ENOSYS`, as in Docker: its flags live in memory a
//!   filter cannot read, and `ENOSYS` makes glibc fall back to `clone`;
//! - `socket` and `socketpair` of a family no sandbox needs answer
//!   `EAFNOSUPPORT` ([`DENIED_FAMILIES`]): `AF_VSOCK` above all, whose
//!   sockets ignore network namespaces and reach the host (or its
//!   hypervisor), and the rarely used protocol families behind many kernel
//!   bugs (`io_uring`, which could create sockets past the filter, is
//!   denied whole);
//! - a foreign architecture (and the x32 ABI) kills the process.
//!
//! `ptrace`, `process_vm_readv`/`writev` and `personality` stay allowed, as
//! in Docker on kernels from 4.8 on (ptrace cannot cross the pid namespace).

use std::io;

/// `struct seccomp_data` offsets: syscall number, architecture, first argument
/// (low 32 bits on little-endian hosts, where every namespace flag lives).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LO: u32 = 16;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Syscall numbers with this bit set are the x32 ABI on x86_64.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Every namespace flag of clone(2) and unshare(2).
pub const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP
    | 0x80/* CLONE_NEWTIME */) as u32;

/// Syscalls denied with EPERM on every architecture.
const DENIED: &[libc::c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_fanotify_init,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_get_mempolicy,
    libc::SYS_init_module,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_io_uring_setup,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_mbind,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_name_to_handle_at,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pidfd_getfd,
    libc::SYS_pivot_root,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_set_mempolicy,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS_umount2,
    libc::SYS_userfaultfd,
    libc::SYS_vhangup,
];

/// Syscalls that exist only on x86_64 (legacy and port I/O ones).
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = &[
    libc::SYS_ioperm,
    libc::SYS_iopl,
    libc::SYS_nfsservctl,
    libc::SYS_sysfs,
    libc::SYS__sysctl,
    libc::SYS_uselib,
    libc::SYS_ustat,
];
#[cfg(target_arch = "aarch64")]
const DENIED_ARCH: &[libc::c_long] = &[];

/// Socket families refused to sandboxes, by `socket(2)` and
/// `socketpair(2)` alike: vsock (it ignores network namespaces), key
/// management, and old or hardware-bound protocols. Unix, IPv4, IPv6,
/// netlink, packet and the crypto API (`AF_ALG`) stay open.
pub const DENIED_FAMILIES: &[libc::c_int] = &[
    libc::AF_AX25,
    libc::AF_IPX,
    libc::AF_APPLETALK,
    libc::AF_NETROM,
    libc::AF_ATMPVC,
    libc::AF_X25,
    libc::AF_ROSE,
    libc::AF_DECnet,
    libc::AF_KEY,
    libc::AF_RDS,
    libc::AF_PPPOX,
    libc::AF_LLC,
    libc::AF_CAN,
    libc::AF_TIPC,
    libc::AF_BLUETOOTH,
    libc::AF_ISDN,
    libc::AF_PHONET,
    libc::AF_IEEE802154,
    libc::AF_CAIF,
    libc::AF_NFC,
    libc::AF_VSOCK,
    41, // AF_KCM
    42, // AF_QIPCRTR
    43, // AF_SMC
    45, // AF_MCTP
];

// Classic BPF opcodes (linux/bpf_common.h): class | size/op | mode/source.
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const BPF_JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
#[cfg(target_arch = "x86_64")]
const BPF_JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_ALU_AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

/// Errors of installing the filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("setting no_new_privs: {0}")]
    NoNewPrivs(io::Error),
    /// The kernel refused the filter.
    #[error("loading the seccomp filter: {0}")]
    Load(io::Error),
}

/// A jump target while assembling: patched into offsets at the end.
#[derive(Clone, Copy)]
enum Target {
    Next,
    Allow,
    Eperm,
    Enosys,
    CheckArg0,
    CheckFamily,
    Eafnosupport,
}

/// The filter program, assembled for this architecture.
pub fn program() -> Vec<libc::sock_filter> {
    // (code, k, jump if true, jump if false)
    let mut code: Vec<(u16, u32, Target, Target)> = Vec::new();
    let stmt = |code: u16, k: u32| (code, k, Target::Next, Target::Next);
    code.push(stmt(BPF_LD_W_ABS, OFF_ARCH));
    code.push((BPF_JMP_JEQ_K, AUDIT_ARCH, Target::Next, Target::Next));
    // Placeholder for the kill on a foreign architecture: jf skips here.
    let arch_check = code.len() - 1;
    code.push(stmt(BPF_RET_K, RET_KILL_PROCESS));
    code.push(stmt(BPF_LD_W_ABS, OFF_NR));
    #[cfg(target_arch = "x86_64")]
    code.push((BPF_JMP_JGE_K, X32_SYSCALL_BIT, Target::Eperm, Target::Next));
    for &nr in DENIED.iter().chain(DENIED_ARCH) {
        code.push((BPF_JMP_JEQ_K, nr as u32, Target::Eperm, Target::Next));
    }
    code.push((
        BPF_JMP_JEQ_K,
        libc::SYS_clone3 as u32,
        Target::Enosys,
        Target::Next,
    ));
    for nr in [libc::SYS_clone, libc::SYS_unshare] {
        code.push((BPF_JMP_JEQ_K, nr as u32, Target::CheckArg0, Target::Next));
    }
    // socketpair(2) creates its sockets through the family as socket(2)
    // does (and some families, TIPC among them, hand back working ones).
    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        code.push((BPF_JMP_JEQ_K, nr as u32, Target::CheckFamily, Target::Next));
    }
    code.push(stmt(BPF_RET_K, RET_ALLOW));
    let check_arg0 = code.len();
    code.push(stmt(BPF_LD_W_ABS, OFF_ARG0_LO));
    code.push(stmt(BPF_ALU_AND_K, NAMESPACE_FLAGS));
    code.push((BPF_JMP_JEQ_K, 0, Target::Allow, Target::Eperm));
    let check_family = code.len();
    code.push(stmt(BPF_LD_W_ABS, OFF_ARG0_LO));
    for &family in DENIED_FAMILIES {
        code.push((
            BPF_JMP_JEQ_K,
            family as u32,
            Target::Eafnosupport,
            Target::Next,
        ));
    }
    code.push(stmt(BPF_RET_K, RET_ALLOW));
    let allow = code.len();
    code.push(stmt(BPF_RET_K, RET_ALLOW));
    let eperm = code.len();
    code.push(stmt(BPF_RET_K, RET_ERRNO | libc::EPERM as u32));
    let enosys = code.len();
    code.push(stmt(BPF_RET_K, RET_ERRNO | libc::ENOSYS as u32));
    let eafnosupport = code.len();
    code.push(stmt(BPF_RET_K, RET_ERRNO | libc::EAFNOSUPPORT as u32));

    let resolve = |at: usize, target: Target| -> u8 {
        let to = match target {
            Target::Next => at + 1,
            Target::Allow => allow,
            Target::Eperm => eperm,
            Target::Enosys => enosys,
            Target::CheckArg0 => check_arg0,
            Target::CheckFamily => check_family,
            Target::Eafnosupport => eafnosupport,
        };
        u8::try_from(to - at - 1).expect("seccomp jump fits in 8 bits")
    };
    code.iter()
        .enumerate()
        .map(|(at, &(code, k, jt, jf))| {
            let (jt, jf) = if at == arch_check {
                // Equal: skip the kill; otherwise fall into it.
                (1, 0)
            } else if code & 0x07 == 0x05 {
                (resolve(at, jt), resolve(at, jf))
            } else {
                (0, 0)
            };
            libc::sock_filter { code, jt, jf, k }
        })
        .collect()
}

/// Installs [`program`] on the calling thread (the sandbox's
/// single-threaded init, so the whole process), without no_new_privs: the
/// caller must hold CAP_SYS_ADMIN over its user namespace (the init does
/// until it drops to Docker's capabilities, after this call).
///
/// Without no_new_privs, set-id and file-capability executables work in the
/// sandbox, as in Docker's default: `sudo` in `base` takes a process of the
/// sandbox's `user` to the sandbox's root, which holds no more than the
/// bounding set over the sandbox's own user namespace. Only files owned by
/// ids the sandbox maps can grant anything (the kernel ignores the set-id
/// bit of others), the filter survives every exec, and the host sees the
/// pool `nosuid`.
pub fn install() -> Result<(), SeccompError> {
    load(&program(), false)
}

/// Loads `filter`, setting no_new_privs first when asked (which a caller
/// without CAP_SYS_ADMIN must).
fn load(filter: &[libc::sock_filter], no_new_privs: bool) -> Result<(), SeccompError> {
    // SAFETY: prctl with integer arguments only.
    if no_new_privs && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SeccompError::NoNewPrivs(io::Error::last_os_error()));
    }
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel
    // copies the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(SeccompError::Load(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child with the filter installed; returns its exit
    /// code. Forking keeps the filter away from the test harness's threads.
    fn in_filtered_child(f: fn() -> i32) -> i32 {
        // Assembled before the fork: the child of a multithreaded test
        // process should not allocate.
        let filter = program();
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = match load(&filter, true) {
                    Ok(()) => f(),
                    Err(_) => 100,
                };
                // SAFETY: leaving the forked child without running destructors.
                unsafe { libc::_exit(code) }
            }
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status), "child died: {status:#x}");
                libc::WEXITSTATUS(status)
            }
            _ => panic!("fork failed"),
        }
    }

    fn errno() -> i32 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    #[test]
    fn denied_syscalls_fail_with_eperm_and_others_work() {
        let code = in_filtered_child(|| {
            // SAFETY: raw syscalls with harmless arguments.
            unsafe {
                if libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno() != libc::EPERM {
                    return 1;
                }
                if libc::syscall(libc::SYS_bpf, 0, 0, 0) != -1 || errno() != libc::EPERM {
                    return 2;
                }
                if libc::unshare(libc::CLONE_NEWUSER) != -1 || errno() != libc::EPERM {
                    return 3;
                }
                if libc::syscall(libc::SYS_clone3, 0, 0) != -1 || errno() != libc::ENOSYS {
                    return 4;
                }
                if libc::getpid() <= 0 {
                    return 5;
                }
                // unshare without namespace flags stays allowed.
                if libc::unshare(libc::CLONE_FILES) != 0 {
                    return 6;
                }
                // vsock ignores network namespaces: refused; the families
                // programs need still open.
                if libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) != -1
                    || errno() != libc::EAFNOSUPPORT
                {
                    return 7;
                }
                for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
                    let fd = libc::socket(family, libc::SOCK_STREAM, 0);
                    if fd < 0 {
                        return 8;
                    }
                    libc::close(fd);
                }
                let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE);
                if fd < 0 {
                    return 9;
                }
                libc::close(fd);
                // socketpair(2) goes through the family too: refused alike
                // (unfiltered, vsock's answer is EOPNOTSUPP, after creating
                // a socket); Unix pairs still work.
                let mut pair = [-1; 2];
                for family in [libc::AF_VSOCK, libc::AF_TIPC, libc::AF_KEY] {
                    if libc::socketpair(family, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) != -1
                        || errno() != libc::EAFNOSUPPORT
                    {
                        return 10;
                    }
                }
                if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) != 0 {
                    return 11;
                }
                libc::close(pair[0]);
                libc::close(pair[1]);
            }
            0
        });
        assert_eq!(code, 0, "check {code} failed");
    }

    #[test]
    fn plain_fork_still_works_under_the_filter() {
        let code = in_filtered_child(|| {
            // SAFETY: fork in a single-threaded child; the grandchild exits at once.
            unsafe {
                match libc::fork() {
                    0 => libc::_exit(7),
                    pid if pid > 0 => {
                        let mut status = 0;
                        libc::waitpid(pid, &mut status, 0);
                        if libc::WEXITSTATUS(status) == 7 {
                            0
                        } else {
                            1
                        }
                    }
                    _ => 2,
                }
            }
        });
        assert_eq!(code, 0);
    }
}
