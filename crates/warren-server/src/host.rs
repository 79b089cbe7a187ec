//! What this machine has: the ceiling for a sandbox's requested resources.

/// CPU, memory and pid ceilings of the host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostLimits {
    /// CPUs this process may run on.
    pub cpus: f64,
    /// Total memory in MiB.
    pub memory_mb: u64,
    /// The kernel's `pid_max`.
    pub pids: u64,
}

impl HostLimits {
    /// Reads the limits from the running kernel (`/proc`).
    pub fn detect() -> HostLimits {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0);
        let memory_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_mem_total_kib(&text))
            .map(|kib| kib / 1024)
            .unwrap_or(u64::MAX);
        let pids = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4_194_304);
        HostLimits {
            cpus,
            memory_mb,
            pids,
        }
    }
}

fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_host() {
        let host = HostLimits::detect();
        assert!(host.cpus >= 1.0);
        assert!(host.memory_mb > 64);
        assert!(host.pids >= 1024);
        assert_eq!(
            parse_mem_total_kib("MemTotal:       24683916 kB\nMemFree: 1 kB\n"),
            Some(24_683_916)
        );
    }
}
