//! Memory per sandbox or container: the host's MemAvailable drop and the
//! cgroups' own charge, over the count.

use std::time::Duration;

use crate::{cgroup_memory, meminfo_kib, mib, ratio_f};

/// Memory per sandbox (or container), in KiB.
pub struct Memory {
    /// What was measured.
    pub what: String,
    /// The host's MemAvailable drop over the count.
    pub host_kib: f64,
    /// The cgroups' usage and anonymous memory over the count.
    pub cgroups_kib: Option<(f64, f64)>,
}

impl Memory {
    /// Measures after two seconds to settle: the MemAvailable drop since
    /// `avail_before` over `n`, and (for sandboxes) that of the cgroup
    /// parent `cgroup`.
    pub async fn measure(
        what: String,
        avail_before: u64,
        n: usize,
        cgroup: Option<&str>,
    ) -> Memory {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = meminfo_kib("MemAvailable").unwrap_or(avail_before);
        let n = n.max(1) as f64;
        Memory {
            what,
            host_kib: avail_before.saturating_sub(after) as f64 / n,
            cgroups_kib: cgroup
                .and_then(cgroup_memory)
                .map(|(usage, rss)| (usage as f64 / 1024.0 / n, rss as f64 / 1024.0 / n)),
        }
    }

    /// `| what | host (vs peer) | cgroups |`.
    pub fn row(&self, peer: Option<f64>) -> String {
        let cg = self.cgroups_kib.map_or("-".into(), |(usage, rss)| {
            format!("{} ({} anonymous)", mib(usage), mib(rss))
        });
        let vs = peer.map_or(String::new(), |p| {
            format!(" ({} podman's)", ratio_f(self.host_kib, p))
        });
        format!("| {} | {}{vs} | {cg} |", self.what, mib(self.host_kib))
    }
}
