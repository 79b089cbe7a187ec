//! Isolation of real sandboxes: each test boots Debian bookworm sandboxes
//! with the namespace runtime (needs root, cgroups and user namespaces, as in
//! CI) and checks from inside, through the agent's HTTP API, and from the
//! host.

#[path = "isolation/harness.rs"]
mod harness;
#[path = "isolation/rootfs.rs"]
mod rootfs;

use std::time::Duration;

use harness::{cgroup_dirs, eventually, proc_status_field, TestSandbox};
use warren_runtime::namespaces::caps;
use warren_runtime::{Resources, Runtime, SANDBOX_ID_BASE};

#[test]
fn sandbox_runs_debian_with_its_own_hostname_and_processes() {
    let sbx = TestSandbox::start("basic", Resources::default());
    assert!(sbx
        .ok("cat /etc/os-release")
        .contains("Debian GNU/Linux 12"));
    assert_eq!(sbx.ok("hostname").trim(), sbx.id());
    assert_eq!(sbx.ok("cat /proc/sys/kernel/hostname").trim(), sbx.id());
    // Only the agent (PID 1) and what it runs: no host process is visible.
    let ps = sbx.ok("ps -e -o pid=,comm=");
    let procs: Vec<(u32, String)> = ps
        .lines()
        .map(|l| {
            let (pid, comm) = l.trim().split_once(' ').expect("pid and comm");
            (pid.parse().expect("pid"), comm.trim().to_string())
        })
        .collect();
    assert_eq!(procs[0], (1, "warren".to_string()), "{ps}");
    assert!(
        procs
            .iter()
            .all(|(_, comm)| ["warren", "sh", "ps"].contains(&comm.as_str())),
        "unexpected processes: {ps}"
    );
    let pids_in_proc = sbx.ok("ls /proc | grep -c '^[0-9]'");
    assert!(
        pids_in_proc.trim().parse::<u32>().unwrap() <= 4,
        "{pids_in_proc}"
    );
    // Loopback only.
    let links = sbx.ok("ip -o link show");
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    eprintln!("start latency (debug build): {:?}", sbx.start_time);
}
