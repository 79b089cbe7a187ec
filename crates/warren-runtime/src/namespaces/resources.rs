//! A sandbox's resources as the runtime takes them: zeros become the
//! defaults, and nothing may be below what the agent needs or above what
//! the host has.

use crate::{Resources, RuntimeError};

/// Smallest memory limit a sandbox can run its agent in.
const MIN_MEMORY_MB: u64 = 16;
/// Smallest pids limit that leaves the agent room to run commands.
const MIN_PIDS: u64 = 8;

/// Resources with zeros replaced by the defaults, checked against the host.
pub fn validate_resources(requested: &Resources) -> Result<Resources, RuntimeError> {
    let defaults = Resources::default();
    let cpus = if requested.cpus == 0.0 {
        defaults.cpus
    } else {
        requested.cpus
    };
    let memory_mb = if requested.memory_mb == 0 {
        defaults.memory_mb
    } else {
        requested.memory_mb
    };
    let pids = if requested.pids == 0 {
        defaults.pids
    } else {
        requested.pids
    };
    if !cpus.is_finite() || cpus < 0.01 {
        return Err(RuntimeError::InvalidResources(format!(
            "cpus must be at least 0.01, got {cpus}"
        )));
    }
    if memory_mb < MIN_MEMORY_MB {
        return Err(RuntimeError::InvalidResources(format!(
            "memory_mb must be at least {MIN_MEMORY_MB}, got {memory_mb}"
        )));
    }
    if pids < MIN_PIDS {
        return Err(RuntimeError::InvalidResources(format!(
            "pids must be at least {MIN_PIDS}, got {pids}"
        )));
    }
    let Host {
        cpus: host_cpus,
        memory_mb: host_mb,
        pid_max,
    } = *host();
    if cpus > host_cpus as f64 {
        return Err(RuntimeError::ResourcesTooLarge(format!(
            "cpus {cpus} exceeds the host's {host_cpus}"
        )));
    }
    if memory_mb > host_mb {
        return Err(RuntimeError::ResourcesTooLarge(format!(
            "memory_mb {memory_mb} exceeds the host's {host_mb} MiB"
        )));
    }
    if pids > pid_max {
        return Err(RuntimeError::ResourcesTooLarge(format!(
            "pids {pids} exceeds the host's pid_max {pid_max}"
        )));
    }
    Ok(Resources {
        cpus,
        memory_mb,
        pids,
    })
}

/// What the host has, against which every start's resources are checked.
#[derive(Debug, Clone, Copy)]
struct Host {
    cpus: usize,
    memory_mb: u64,
    pid_max: u64,
}

/// The host's CPUs, memory and `pid_max`, read once: `available_parallelism`
/// reads the process's cgroup and `/proc/self/mountinfo`, which holds a
/// line per live sandbox's run directory, so a start that asked each time
/// cost more the more sandboxes were alive.
fn host() -> &'static Host {
    static HOST: std::sync::OnceLock<Host> = std::sync::OnceLock::new();
    HOST.get_or_init(|| Host {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_mb: host_memory_mb(),
        pid_max: std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(4_194_304),
    })
}

/// Total RAM of the host in MiB.
fn host_memory_mb() -> u64 {
    // SAFETY: sysinfo fills the zeroed struct it is given.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable sysinfo struct.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return u64::MAX;
    }
    (info.totalram as u64).saturating_mul(info.mem_unit as u64) >> 20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_resources_become_defaults() {
        let r = validate_resources(&Resources {
            cpus: 0.0,
            memory_mb: 0,
            pids: 0,
        })
        .unwrap();
        assert_eq!(r, Resources::default());
    }

    #[test]
    fn resources_over_the_host_are_refused() {
        let too_many_cpus = Resources {
            cpus: 10_000.0,
            ..Resources::default()
        };
        assert!(matches!(
            validate_resources(&too_many_cpus),
            Err(RuntimeError::ResourcesTooLarge(_))
        ));
        let too_much_memory = Resources {
            memory_mb: u64::MAX >> 21,
            ..Resources::default()
        };
        assert!(matches!(
            validate_resources(&too_much_memory),
            Err(RuntimeError::ResourcesTooLarge(_))
        ));
        let tiny = Resources {
            memory_mb: 1,
            ..Resources::default()
        };
        assert!(matches!(
            validate_resources(&tiny),
            Err(RuntimeError::InvalidResources(_))
        ));
        let nan = Resources {
            cpus: f64::NAN,
            ..Resources::default()
        };
        assert!(matches!(
            validate_resources(&nan),
            Err(RuntimeError::InvalidResources(_))
        ));
    }
}
