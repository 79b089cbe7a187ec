//! Capabilities: the sandbox keeps Docker's default set and nothing else.
//!
//! The bounding set is what survives `execve` for root (file capabilities of
//! root's executables count as full), so it is the set that matters; the
//! effective and permitted sets are set to the same; the inheritable set is
//! cleared (as runc and moby do since CVE-2022-24769) and the
//! ambient set is cleared. All of these are capabilities over the sandbox's
//! own user namespace only.

use std::io;

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[u32] = &[
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    8,  // CAP_SETPCAP
    10, // CAP_NET_BIND_SERVICE
    13, // CAP_NET_RAW
    18, // CAP_SYS_CHROOT
    27, // CAP_MKNOD
    29, // CAP_AUDIT_WRITE
    31, // CAP_SETFCAP
];

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Errors of dropping capabilities; each names the step.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// Dropping a capability from the bounding set failed.
    #[error("dropping capability {cap} from the bounding set: {source}")]
    Bounding {
        /// Capability number.
        cap: u32,
        /// Cause.
        source: io::Error,
    },
    /// Clearing the ambient set failed.
    #[error("clearing the ambient capabilities: {0}")]
    Ambient(io::Error),
    /// capset(2) failed.
    #[error("setting the capability sets: {0}")]
    Capset(io::Error),
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Reduces every capability set of the calling thread to [`DEFAULT_CAPS`].
/// Needs CAP_SETPCAP (the sandbox's init has every capability of its user
/// namespace until this call). `/proc` must still be the host's or the
/// sandbox's (it is read for `cap_last_cap`).
pub fn drop_to_defaults() -> Result<(), CapsError> {
    let last = last_cap();
    for cap in (0..=last).filter(|c| !DEFAULT_CAPS.contains(c)) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            let source = io::Error::last_os_error();
            // Numbers above what the kernel knows answer EINVAL: nothing to drop.
            if source.raw_os_error() != Some(libc::EINVAL) {
                return Err(CapsError::Bounding { cap, source });
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(CapsError::Ambient(io::Error::last_os_error()));
    }
    let mut data = [CapData::default(); 2];
    for &cap in DEFAULT_CAPS {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        data[word].effective |= bit;
        data[word].permitted |= bit;
    }
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads one header and two data structs of the v3 layout.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(CapsError::Capset(io::Error::last_os_error()));
    }
    Ok(())
}

/// Makes the calling thread's effective capabilities its permitted ones
/// again (they are cleared when the effective uid leaves 0).
pub fn raise_effective() -> Result<(), CapsError> {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two data structs of the v3 layout.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &header as *const CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(CapsError::Capset(io::Error::last_os_error()));
    }
    for word in &mut data {
        word.effective = word.permitted;
    }
    // SAFETY: capset reads one header and two data structs of the v3 layout.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(CapsError::Capset(io::Error::last_os_error()));
    }
    Ok(())
}

/// The bounding-set mask of [`DEFAULT_CAPS`] as `/proc/<pid>/status` shows it
/// (`CapBnd:` in hex).
pub fn default_mask() -> u64 {
    DEFAULT_CAPS
        .iter()
        .fold(0u64, |mask, &cap| mask | (1u64 << cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask() {
        // The value Docker containers show as CapBnd.
        assert_eq!(default_mask(), 0x0000_0000_a804_25fb);
    }
}
