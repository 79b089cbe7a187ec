//! What the zygote makes ahead of starts, while it is idle: shells (a user
//! and a network namespace) and spare cgroups. Each must end up a
//! sandbox's own, as locked down as one made at the start.

use std::time::Duration;

use super::harness::{self, eventually, TestSandbox};
use warren_runtime::Resources;

/// The host uid that owns the user namespace of the process `pid`.
fn user_namespace_owner(pid: i32) -> u32 {
    use std::os::fd::AsRawFd;
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap();
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer given.
    let rc = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_OWNER_UID, &mut uid) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    uid
}

#[test]
fn namespaces_made_ahead_are_a_sandbox_s_own_and_as_locked_down() {
    // One runtime, one zygote: the first start finds no namespaces made
    // ahead and makes its own; once the zygote has been idle it has some,
    // and the next start takes one.
    let runtime = harness::runtime();
    let start = |tag: &str| TestSandbox::start_on(&runtime, tag, Resources::default());
    let first = start("own-ns");
    std::thread::sleep(Duration::from_millis(300));
    let second = start("made-ns");
    let third = start("made-ns2");
    let owner = |sbx: &TestSandbox| user_namespace_owner(sbx.started.pid);
    assert_eq!(owner(&first), warren_runtime::namespace_owner(first.id()));
    let range = warren_runtime::OWNER_UID_BASE
        ..warren_runtime::OWNER_UID_BASE + warren_runtime::OWNER_UID_COUNT;
    for made in [&second, &third] {
        // Made ahead: an owner of its own from the range, not the id's.
        assert_ne!(owner(made), warren_runtime::namespace_owner(made.id()));
        assert!(range.contains(&owner(made)), "{}", owner(made));
    }
    assert_ne!(owner(&second), owner(&third));
    let ns = |sbx: &TestSandbox, name: &str| {
        std::fs::read_link(format!("/proc/{}/ns/{name}", sbx.started.pid)).unwrap()
    };
    for sbx in [&first, &second, &third] {
        assert_eq!(
            sbx.ok("cat /proc/self/uid_map")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["0", "100000", "65536"]
        );
        // Loopback is up (IFF_UP) and the sandbox is root in its namespace.
        let flags = sbx.ok("cat /sys/class/net/lo/flags");
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
        assert_eq!(flags & 1, 1, "lo is down in {}", sbx.id());
        assert_eq!(sbx.ok("id -u").trim(), "0");
        assert_eq!(sbx.ok("cat /proc/sys/user/max_net_namespaces").trim(), "0");
        let out = sbx.sh("unshare -n true");
        assert_ne!(out.exit_code, Some(0), "{:?}", out.raw);
        // Every namespace is its own, the network one included.
        for name in ["user", "net", "pid", "mnt", "uts", "ipc", "cgroup"] {
            for other in [&first, &second, &third] {
                if other.id() != sbx.id() {
                    assert_ne!(ns(sbx, name), ns(other, name), "{name}");
                }
            }
            assert_ne!(
                ns(sbx, name),
                std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap(),
                "{name} is the host's"
            );
        }
    }
}

/// Spare cgroups, made by the zygote while it is idle, become a start's
/// cgroups with that start's own limits; they are never listed as
/// sandboxes; a dead zygote's are removed by the next one, and a runtime
/// going away takes its own along.
#[test]
fn spare_cgroups_become_a_sandbox_s_with_its_limits_and_leave_with_the_runtime() {
    use std::sync::Arc;
    use warren_runtime::cgroups::{self, SPARE_PREFIX};
    use warren_runtime::namespaces::{shells, NamespaceRuntime};

    /// Removes the parent's spares and the parent, pass or fail (the
    /// sandboxes, dropped first, remove their own).
    struct Parent(String);
    impl Drop for Parent {
        fn drop(&mut self) {
            for h in ["cpu", "memory", "pids", "freezer", "systemd", "unified"] {
                let dir = std::path::Path::new("/sys/fs/cgroup").join(h).join(&self.0);
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let _ = std::fs::remove_dir(entry.path());
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
    let parent = Parent(format!("warren-test-spares-{}", std::process::id()));
    let host = cgroups::detect(&parent.0).unwrap();
    assert_eq!(host.name(), "v1", "spares need renamable (v1) cgroups");
    // Left by a zygote that was killed (no process has that pid).
    let stale = format!("{SPARE_PREFIX}999999999-1");
    host.make_spare(&stale, &Resources::default()).unwrap();
    let runtime = Arc::new(NamespaceRuntime::with_cgroup_parent(&parent.0).unwrap());

    // The first start brings the zygote up, which makes spares once idle.
    let a = TestSandbox::start_on(&runtime, "spare-a", Resources::default());
    assert!(
        eventually(Duration::from_secs(10), || host.spares().len()
            == shells::KEEP),
        "spares: {:?}",
        host.spares()
    );
    let before = host.spares();
    assert!(!before.contains(&stale), "{before:?}");
    let root = std::path::Path::new("/sys/fs/cgroup");
    // A rename keeps the directory's inode: that tells a spare taken from
    // one removed and made again.
    let inode = |h: &str, name: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(root.join(h).join(&parent.0).join(name))
            .map(|m| m.ino())
            .ok()
    };
    let inodes: Vec<Option<u64>> = before.iter().map(|s| inode("freezer", s)).collect();
    assert!(
        host.list().iter().all(|id| !id.starts_with(SPARE_PREFIX)),
        "{:?}",
        host.list()
    );

    // A start with limits of its own takes one and makes them its own.
    let wanted = Resources {
        cpus: 0.5,
        memory_mb: 96,
        pids: 77,
    };
    let b = TestSandbox::start_on(&runtime, "spare-b", wanted);
    let after = host.spares();
    let taken: Vec<&String> = before.iter().filter(|s| !after.contains(s)).collect();
    assert_eq!(taken.len(), 1, "before {before:?}, after {after:?}");
    let was = inodes[before.iter().position(|s| s == taken[0]).unwrap()];
    assert_eq!(
        inode("freezer", b.id()),
        was,
        "the sandbox's cgroup is the spare"
    );
    for h in ["cpu", "memory", "pids", "freezer", "systemd"] {
        assert!(!root.join(h).join(&parent.0).join(taken[0]).exists(), "{h}");
    }
    let read = |h: &str, file: &str| {
        std::fs::read_to_string(root.join(h).join(&parent.0).join(b.id()).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    assert_eq!(read("pids", "pids.max"), "77");
    // Its processes are in them, and the sandbox works.
    let procs = read("freezer", "cgroup.procs");
    assert!(
        procs.lines().any(|p| p == b.started.pid.to_string()),
        "{procs}"
    );
    assert_eq!(b.ok("echo from-a-spare").trim(), "from-a-spare");
    let listed = host.list();
    assert!(listed.contains(&b.id().to_string()), "{listed:?}");
    assert!(listed.contains(&a.id().to_string()), "{listed:?}");

    // Once the runtime is gone its zygote has removed its spares.
    drop((a, b, runtime));
    assert!(
        eventually(Duration::from_secs(5), || host.spares().is_empty()),
        "{:?}",
        host.spares()
    );
    assert_eq!(host.list(), Vec::<String>::new());
}
