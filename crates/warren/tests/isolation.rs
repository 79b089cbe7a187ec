//! Isolation of real sandboxes: each test boots Debian bookworm sandboxes
//! with the namespace runtime (needs root, cgroups and user namespaces, as in
//! CI) and checks from inside, through the agent's HTTP API, and from the
//! host.

#[path = "isolation/harness.rs"]
mod harness;
#[path = "isolation/rootfs.rs"]
mod rootfs;
// What the zygote makes ahead of starts: namespaces and cgroups.
#[path = "isolation/ahead.rs"]
mod ahead;

use std::time::Duration;

use harness::{cgroup_dirs, eventually, is_alive, proc_status_field, TestSandbox};
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

#[test]
fn sandbox_root_is_an_unprivileged_host_uid_with_docker_caps_and_seccomp() {
    let sbx = TestSandbox::start("uid", Resources::default());
    let pid = sbx.started.pid;
    let base = SANDBOX_ID_BASE.to_string();
    for field in ["Uid", "Gid"] {
        let ids = proc_status_field(pid, field).expect("host status");
        assert!(
            ids.split_whitespace().all(|id| id == base),
            "host {field}: {ids}"
        );
    }
    // In the sandbox's cgroup in every hierarchy it joins (v1 controllers,
    // name=systemd, and the cgroup2 tree of a hybrid or v2 host).
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let own = format!("/{}/{}", harness::CGROUP_PARENT, sbx.id());
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (
            fields.next(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let joined = [
            "",
            "cpu",
            "cpuacct",
            "cpu,cpuacct",
            "memory",
            "pids",
            "freezer",
            "name=systemd",
        ];
        if joined.contains(&controllers) {
            assert_eq!(path, own, "{line}");
        }
    }
    // Not a child of the process that started it.
    let ppid: i32 = proc_status_field(pid, "PPid").unwrap().parse().unwrap();
    assert_ne!(ppid, std::process::id() as i32);

    assert_eq!(sbx.ok("id -u").trim(), "0");
    let map = sbx.ok("cat /proc/self/uid_map");
    let map: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(map, ["0", base.as_str(), "65536"]);
    let status = sbx.ok("cat /proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name}:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("{name} missing from {status}"))
    };
    let docker = format!("{:016x}", caps::default_mask());
    assert_eq!(field("CapBnd"), docker);
    assert_eq!(field("CapEff"), docker);
    assert_eq!(field("CapAmb"), "0000000000000000");
    assert_eq!(field("CapInh"), "0000000000000000");
    // Set-id executables work (sudo in `base`), as in Docker's default.
    assert_eq!(field("NoNewPrivs"), "0");
    assert_eq!(field("Seccomp"), "2");
}

#[test]
fn sandbox_cannot_mount_unshare_or_touch_host_kernel_state() {
    let sbx = TestSandbox::start("deny", Resources::default());
    let fails = |cmd: &str| {
        let out = sbx.sh(cmd);
        assert_ne!(out.exit_code, Some(0), "{cmd:?} succeeded: {:?}", out.raw);
    };
    fails("mkdir -p /mnt && mount -t tmpfs x /mnt");
    fails("umount /proc");
    fails("unshare -U true");
    fails("unshare -m true");
    fails("mknod /tmp/mem c 1 1");
    fails("touch /sys/kernel/x");
    fails("echo 1 > /proc/sys/kernel/sysrq");
    fails("echo b > /proc/sysrq-trigger");
    fails("dmesg");
    fails("hostname other");
    // Masked: reads as empty instead of host kernel memory and timers.
    for masked in ["keys", "timer_list"] {
        let cmd = format!("wc -c < /proc/{masked}");
        assert_eq!(sbx.ok(&cmd).trim(), "0", "/proc/{masked} is not masked");
    }
    // What a normal root user does still works.
    sbx.ok("echo hi > /dev/null && head -c 8 /dev/urandom | wc -c");
    sbx.ok("test -c /dev/pts/ptmx && test -L /dev/ptmx && test -d /dev/shm");
    sbx.ok("apt-config dump >/dev/null && chown nobody /tmp && touch /tmp/x && rm /tmp/x");
    sbx.ok("test -S /run/warren/agent.sock && ! test -e /run/warren-bin");
    assert_eq!(
        sbx.ok("findmnt -no OPTIONS /sys").split(',').next(),
        Some("ro")
    );
}

#[test]
fn sandboxes_do_not_see_each_others_files_or_processes() {
    let a = TestSandbox::start("a", Resources::default());
    let b = TestSandbox::start("b", Resources::default());
    a.ok("echo secret > /root/only-in-a && sleep 60 >/dev/null 2>&1 &");
    assert_eq!(a.ok("cat /root/only-in-a").trim(), "secret");
    let out = b.sh("cat /root/only-in-a");
    assert_ne!(out.exit_code, Some(0), "{:?}", out.raw);
    assert!(!b.ok("ps -e -o comm=").contains("sleep"));
    assert_eq!(b.ok("ls /run/warren"), "agent.log\nagent.sock\npid\n");
}

#[test]
fn memory_hog_is_killed_inside_its_limit_and_the_agent_survives() {
    let sbx = TestSandbox::start(
        "oom",
        Resources {
            memory_mb: 64,
            ..Resources::default()
        },
    );
    // tail keeps the whole "line" of zeros in memory.
    let out = sbx.sh_with("head -c 1G /dev/zero | tail | wc -c", 60_000);
    assert_ne!(
        out.stdout.trim(),
        "1073741824",
        "the hog finished: {:?}",
        out.raw
    );
    let oom = harness::cgroup_read(sbx.id(), ("memory", "memory.oom_control"), "memory.events")
        .expect("memory cgroup");
    assert!(harness::keyed(&oom, "oom_kill").unwrap_or(0) >= 1, "{oom}");
    if let Some(peak) = harness::cgroup_read(
        sbx.id(),
        ("memory", "memory.max_usage_in_bytes"),
        "memory.peak",
    ) {
        assert!(
            peak.trim().parse::<u64>().unwrap() <= 64 << 20,
            "peak {peak}"
        );
    }
    assert!(sbx.healthy(Duration::from_secs(5)));
    assert_eq!(sbx.ok("echo alive").trim(), "alive");
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let limit = 64;
    let sbx = TestSandbox::start(
        "bomb",
        Resources {
            pids: limit,
            ..Resources::default()
        },
    );
    let pids_current = || {
        harness::cgroup_read(sbx.id(), ("pids", "pids.current"), "pids.current")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut peak = 0;
    let mut answered_during = false;
    std::thread::scope(|s| {
        // timeout puts itself and the bomb in one process group and kills
        // the whole group at the end; until then the bomb keeps refilling
        // every slot that frees up.
        let bomb = s.spawn(|| {
            sbx.sh_with(
                "timeout -s KILL 3 bash -c 'bomb() { bomb | bomb & }; bomb; sleep 5'",
                30_000,
            )
        });
        while !bomb.is_finished() {
            peak = peak.max(pids_current());
            if peak >= limit - 8 && !answered_during {
                answered_during = sbx.healthy(Duration::from_secs(5));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = bomb.join().expect("bomb thread");
        assert_eq!(
            out.raw["duration_ms"].as_u64().map(|ms| ms >= 2_500),
            Some(true),
            "the bomb did not last: {:?}",
            out.raw
        );
    });
    eprintln!("peak pids.current {peak}");
    assert!(peak <= limit, "pids.current reached {peak}");
    assert!(
        peak >= limit - 8,
        "the bomb never got near the limit: {peak}"
    );
    let events = harness::cgroup_read(sbx.id(), ("pids", "pids.events"), "pids.events").unwrap();
    assert!(harness::keyed(&events, "max").unwrap_or(0) > 0, "{events}");
    assert!(answered_during, "the agent did not answer during the bomb");
    assert!(
        eventually(Duration::from_secs(20), || sbx.sh("echo ok").stdout.trim()
            == "ok"),
        "the sandbox did not recover"
    );
}

#[test]
fn stop_leaves_no_cgroup_and_no_process_and_is_idempotent() {
    let sbx = TestSandbox::start("stop", Resources::default());
    let (id, pid) = (sbx.id().to_string(), sbx.started.pid);
    sbx.ok("sleep 60 >/dev/null 2>&1 &");
    assert_eq!(sbx.runtime.pid(&id), Some(pid));
    assert!(sbx.runtime.running().contains(&id));
    // A second start of a running sandbox is refused and harms nothing.
    assert!(matches!(
        sbx.runtime.start(&sbx.spec),
        Err(warren_runtime::RuntimeError::AlreadyRunning(_))
    ));
    assert!(sbx.healthy(Duration::from_secs(5)));
    sbx.runtime.stop(&id).expect("stop");
    assert!(!is_alive(pid));
    for dir in cgroup_dirs(&id) {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    assert_eq!(sbx.runtime.pid(&id), None);
    assert!(!sbx.runtime.running().contains(&id));
    sbx.runtime.stop(&id).expect("second stop");
    assert!(matches!(
        sbx.runtime.freeze(&id),
        Err(warren_runtime::RuntimeError::NotRunning(_))
    ));
}

#[test]
fn freeze_stops_the_agent_answering_until_thaw() {
    let sbx = TestSandbox::start("freeze", Resources::default());
    sbx.runtime.freeze(sbx.id()).expect("freeze");
    assert!(
        !sbx.healthy(Duration::from_millis(500)),
        "a frozen agent answered"
    );
    sbx.runtime.thaw(sbx.id()).expect("thaw");
    assert!(sbx.healthy(Duration::from_secs(5)));
    assert_eq!(sbx.ok("echo thawed").trim(), "thawed");
}

#[test]
fn failed_starts_name_the_stage_and_leave_nothing_behind() {
    let runtime = harness::runtime();
    let mut bad_workdir = harness::prepare("badwd", Resources::default());
    bad_workdir.spec.workdir = "relative/dir".into();
    let mut no_root = harness::prepare("noroot", Resources::default());
    no_root.spec.rootfs = no_root.run.path().join("missing");
    for (prepared, stage) in [(&bad_workdir, "workdir"), (&no_root, "rootfs")] {
        match runtime.start(&prepared.spec) {
            Err(warren_runtime::RuntimeError::Start { stage: got, .. }) => {
                assert_eq!(got, stage)
            }
            other => panic!("expected a {stage} failure, got {other:?}"),
        }
        for dir in cgroup_dirs(&prepared.spec.id) {
            assert!(!dir.exists(), "{} is left", dir.display());
        }
    }
    let mut huge = harness::prepare("huge", Resources::default());
    huge.spec.resources.cpus = 4096.0;
    assert!(matches!(
        runtime.start(&huge.spec),
        Err(warren_runtime::RuntimeError::ResourcesTooLarge(_))
    ));
}

/// A start begun before its root exists (a fork's child) gets as far as
/// its cgroups, waits for the root, then runs in it; refused, it fails at
/// the `root` stage and leaves nothing behind.
#[test]
fn a_gated_start_waits_for_its_root_and_a_refused_one_leaves_nothing() {
    use warren_runtime::gate::root_gate;
    let runtime = harness::runtime();
    for open in [true, false] {
        let mut prepared =
            harness::prepare(if open { "gated" } else { "refused" }, Resources::default());
        // The root's path exists only once the gate opens: a start that
        // did not wait would fail at the `rootfs` stage.
        let root = prepared.spec.rootfs.clone();
        let links = tempfile::tempdir().expect("a directory for the root's link");
        let later = links.path().join("root");
        prepared.spec.rootfs = later.clone();
        let id = prepared.spec.id.clone();
        let (gate, opener) = root_gate();
        let maker = std::thread::spawn(move || {
            // The start is under way meanwhile: its cgroups exist.
            let begun = eventually(Duration::from_secs(10), || {
                cgroup_dirs(&id).iter().any(|dir| dir.exists())
            });
            std::thread::sleep(Duration::from_millis(300));
            if open {
                std::os::unix::fs::symlink(&root, &later).expect("the root appears");
                opener.open();
            } else {
                drop(opener);
            }
            begun
        });
        let begun = std::time::Instant::now();
        let started = runtime.start_gated(&prepared.spec, gate, &mut |_| {});
        let took = begun.elapsed();
        // A started sandbox is stopped on drop, whatever the checks below find.
        let (sbx, refused) = match started {
            Ok(started) => (
                Some(TestSandbox::adopt(runtime.clone(), prepared, started, took)),
                None,
            ),
            Err(e) => (None, Some((e, prepared))),
        };
        assert!(
            maker.join().expect("the root's maker"),
            "the start did not begin before its root existed"
        );
        assert!(
            took >= Duration::from_millis(300),
            "the start did not wait for its root ({took:?})"
        );
        match (open, sbx, refused) {
            (true, Some(sbx), None) => assert_eq!(
                sbx.ok("cat /etc/debian_version; echo $WARREN_TEST")
                    .lines()
                    .last(),
                Some("1")
            ),
            (false, None, Some((warren_runtime::RuntimeError::Start { stage, .. }, prepared))) => {
                assert_eq!(stage, "root");
                for dir in cgroup_dirs(&prepared.spec.id) {
                    assert!(!dir.exists(), "{} is left", dir.display());
                }
            }
            (open, sbx, refused) => panic!(
                "gate opened: {open}; started: {:?}; failed: {:?}",
                sbx.map(|s| s.started.pid),
                refused.map(|(e, _)| e)
            ),
        }
    }
}

#[test]
fn the_connection_a_start_checked_serves_one_first_request_and_goes_with_a_stop() {
    use std::io::{Read, Write};
    let sbx = TestSandbox::start("handoff", Resources::default());
    let mut conn = sbx
        .runtime
        .take_agent_connection(sbx.id())
        .expect("the start's connection");
    assert!(
        sbx.runtime.take_agent_connection(sbx.id()).is_none(),
        "handed out twice"
    );
    // It reaches the agent: a request on it is answered.
    conn.write_all(b"GET /v1/health HTTP/1.1\r\nhost: agent\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // After a stop there is none to hand out (the stop drops it, and one
    // whose agent is gone reads as closed and is not handed out either).
    let other = TestSandbox::start("handoff2", Resources::default());
    other.runtime.stop(other.id()).expect("stop");
    assert!(other.runtime.take_agent_connection(other.id()).is_none());
}

/// The child half of `sandbox_outlives_the_process_that_started_it`: run as
/// a separate process, starts a sandbox from the spec in the environment,
/// prints its pid and waits to be killed.
#[test]
#[ignore = "run as a child process by sandbox_outlives_the_process_that_started_it"]
fn caller_child() {
    let Ok(spec) = std::env::var("WARREN_TEST_CALLER_SPEC") else {
        return;
    };
    let spec: warren_runtime::SandboxSpec = serde_json::from_str(&spec).unwrap();
    let started = harness::runtime().start(&spec).expect("start in the child");
    println!("STARTED {}", started.pid);
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn sandbox_outlives_the_process_that_started_it() {
    use std::io::BufRead;
    let prepared = harness::prepare("orphan", Resources::default());
    let runtime = harness::runtime();
    let mut child = harness::ChildGuard(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "caller_child",
                "--exact",
                "--include-ignored",
                "--nocapture",
            ])
            .env(
                "WARREN_TEST_CALLER_SPEC",
                serde_json::to_string(&prepared.spec).unwrap(),
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawning the caller"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let pid: i32 = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("STARTED ").map(|p| p.parse().unwrap()))
        .expect("the caller started a sandbox");
    let started = warren_runtime::Started {
        pid,
        agent_socket: prepared.spec.run_dir.join("agent.sock"),
    };
    let sbx = TestSandbox::adopt(runtime, prepared, started, Duration::ZERO);
    let caller = child.0.id() as i32;
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(!is_alive(caller));
    assert!(sbx.healthy(Duration::from_secs(5)));
    assert_eq!(sbx.ok("echo still here").trim(), "still here");
    // A runtime that did not start it (as after a server restart) finds it.
    assert_eq!(sbx.runtime.pid(sbx.id()), Some(pid));
    assert!(sbx.runtime.running().contains(&sbx.id().to_string()));
}

#[test]
fn start_latency() {
    let mut times: Vec<Duration> = (0..5)
        .map(|i| TestSandbox::start(&format!("lat{i}"), Resources::default()).start_time)
        .collect();
    times.sort();
    eprintln!(
        "start latency over 5 sequential starts: min {:?}, median {:?}, max {:?}",
        times[0], times[2], times[4]
    );
    assert!(
        times[2] < Duration::from_secs(5),
        "median start {:?}",
        times[2]
    );
}

#[test]
fn descriptors_of_the_caller_do_not_leak_into_the_sandbox() {
    use std::os::unix::fs::MetadataExt;
    // A host directory opened without O_CLOEXEC, as a careless library might.
    let dir = tempfile::tempdir().unwrap();
    let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: open(2) of a NUL-terminated path; closed at the end.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(fd >= 0);
    let leaked = std::fs::metadata(dir.path()).unwrap();
    let sbx = TestSandbox::start("fds", Resources::default());
    for entry in std::fs::read_dir(format!("/proc/{}/fd", sbx.started.pid)).unwrap() {
        let Ok(meta) = std::fs::metadata(entry.unwrap().path()) else {
            continue;
        };
        assert!(
            (meta.dev(), meta.ino()) != (leaked.dev(), leaked.ino()),
            "the caller's directory descriptor reached the sandbox"
        );
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
}

#[test]
fn a_socket_planted_in_the_run_dir_is_not_trusted_as_the_agent() {
    use std::os::fd::AsFd;
    let a = TestSandbox::start("plant_a", Resources::default());
    let b = TestSandbox::start("plant_b", Resources::default());
    let connect = |sbx: &TestSandbox| {
        std::os::unix::net::UnixStream::connect(&sbx.started.agent_socket).expect("connect")
    };
    a.runtime
        .verify_agent(a.id(), connect(&a).as_fd())
        .expect("a's own agent");
    // A's root points its socket at B's agent, hoping the server follows.
    let planted = format!(
        "rm /run/warren/agent.sock && ln -s {} /run/warren/agent.sock",
        b.started.agent_socket.display()
    );
    a.ok(&planted);
    let through_a = connect(&a);
    assert!(matches!(
        a.runtime.verify_agent(a.id(), through_a.as_fd()),
        Err(warren_runtime::RuntimeError::UntrustedAgent { .. })
    ));
    b.runtime
        .verify_agent(b.id(), connect(&b).as_fd())
        .expect("b's own agent");
}

#[test]
fn device_nodes_in_the_root_file_system_do_not_open() {
    use std::os::unix::fs::PermissionsExt;
    // A device node planted in the root (as an imported image could carry):
    // /dev/null's numbers, mode 0666, owned by the sandbox's root.
    let prepared = harness::prepare("nodev", Resources::default());
    let node = prepared.spec.rootfs.join("var/planted-null");
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .expect("mknod in the test root");
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::lchown(
        &node,
        Some(warren_runtime::SANDBOX_ID_BASE),
        Some(warren_runtime::SANDBOX_ID_BASE),
    )
    .unwrap();
    let runtime = harness::runtime();
    let begun = std::time::Instant::now();
    let started = runtime.start(&prepared.spec).expect("start");
    let sbx = TestSandbox::adopt(runtime, prepared, started, begun.elapsed());
    sbx.ok("test -c /var/planted-null");
    let out = sbx.sh("echo x > /var/planted-null");
    assert_ne!(
        out.exit_code,
        Some(0),
        "a planted device node opened: {:?}",
        out.raw
    );
    // The real /dev still works.
    sbx.ok("echo x > /dev/null");
}

#[test]
fn set_id_files_grant_only_the_sandbox_s_own_ids() {
    use std::os::unix::fs::PermissionsExt;
    // Two setuid copies of `id`: one of the sandbox's root (what `sudo` is),
    // one of host root, which the sandbox does not map.
    let prepared = harness::prepare("setid", Resources::default());
    let plant = |name: &str, owner: u32| {
        let path = prepared.spec.rootfs.join("usr/local/bin").join(name);
        std::fs::copy(prepared.spec.rootfs.join("usr/bin/id"), &path).unwrap();
        std::os::unix::fs::lchown(&path, Some(owner), Some(owner)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4755)).unwrap();
    };
    plant("id-sandbox-root", warren_runtime::SANDBOX_ID_BASE);
    plant("id-host-root", 0);
    let runtime = harness::runtime();
    let begun = std::time::Instant::now();
    let started = runtime.start(&prepared.spec).expect("start");
    let sbx = TestSandbox::adopt(runtime, prepared, started, begun.elapsed());
    let as_nobody = |cmd: &str| {
        sbx.ok(&format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups {cmd}"
        ))
    };
    assert_eq!(as_nobody("id -u").trim(), "65534");
    assert_eq!(as_nobody("/usr/local/bin/id-sandbox-root -u").trim(), "0");
    assert_eq!(as_nobody("/usr/local/bin/id-host-root -u").trim(), "65534");
}

#[test]
fn the_ca_bundle_is_the_shared_one_read_only_or_else_the_sandbox_s_own() {
    let cert = |n: &str| format!("-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n");
    let pem = cert("EXTRA");
    let store = format!("{}{}", cert("ONE"), cert("TWO"));
    let with_store = |tag: &str| {
        let mut prepared = harness::prepare(tag, Resources::default());
        let certs = prepared.spec.rootfs.join("etc/ssl/certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(certs.join("ca-certificates.crt"), &store).unwrap();
        prepared.spec.extra_ca_pem = Some(pem.clone());
        prepared
    };
    let bundle = format!("{store}{pem}");
    // Without a shared bundle, the init writes the sandbox's own.
    let prepared = with_store("ownca");
    let runtime = harness::runtime();
    let started = runtime.start(&prepared.spec).expect("start");
    let own = TestSandbox::adopt(runtime, prepared, started, Duration::ZERO);
    assert_eq!(own.ok("cat /run/warren/ca-bundle.pem"), bundle);
    assert_eq!(own.ok("cat /run/warren/extra-ca.pem"), pem);
    own.ok("echo appended >> /run/warren/ca-bundle.pem");

    // With one, it is mounted there read-only and nothing is copied.
    let dir = tempfile::tempdir().unwrap();
    let mut prepared = with_store("sharedca");
    let shared = warren_runtime::trust::shared_bundle(dir.path(), &prepared.spec.rootfs, &pem)
        .expect("a shared bundle")
        .expect("a store small enough to share");
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), bundle);
    prepared.spec.ca_bundle = Some(shared);
    let runtime = harness::runtime();
    let started = runtime.start(&prepared.spec).expect("start");
    let sbx = TestSandbox::adopt(runtime, prepared, started, Duration::ZERO);
    assert_eq!(sbx.ok("cat /run/warren/ca-bundle.pem"), bundle);
    assert_eq!(sbx.ok("cat /run/warren/extra-ca.pem"), pem);
    let mounted = sbx.ok("grep ' /run/warren/ca-bundle.pem ' /proc/self/mountinfo");
    assert!(mounted.contains(" ro,"), "{mounted}");
    let out = sbx.sh("echo x >> /run/warren/ca-bundle.pem");
    assert_ne!(out.exit_code, Some(0), "{:?}", out.raw);
}

/// The reaper's question, which sandboxes died: an init killed from outside
/// is reported once; a stopped sandbox never; a sandbox found running by
/// another runtime (a restarted server) once it is watched.
#[test]
fn an_init_killed_from_outside_is_reported_once_and_a_stopped_one_never() {
    let runtime = harness::runtime();
    let start = |tag: &str| TestSandbox::start_on(&runtime, tag, Resources::default());
    let (killed, stopped, reattached) = (start("exit-k"), start("exit-s"), start("exit-r"));
    let kill = |sbx: &TestSandbox| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sbx.started.pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap()
    };
    assert_eq!(runtime.exits(), Vec::<String>::new());

    // The first exits a runtime reports, waiting for some.
    let first_exits = |runtime: &dyn Runtime| {
        let mut reported = Vec::new();
        assert!(eventually(Duration::from_secs(10), || {
            reported.extend(runtime.exits());
            !reported.is_empty()
        }));
        reported
    };
    kill(&killed);
    assert_eq!(first_exits(runtime.as_ref()), [killed.id().to_string()]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(runtime.exits(), Vec::<String>::new());

    runtime.stop(stopped.id()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(runtime.exits(), Vec::<String>::new());

    // Another runtime, as after a restart, knows nothing until it watches.
    let other = harness::runtime();
    other.watch(reattached.id());
    other.watch(killed.id());
    assert_eq!(other.exits(), [killed.id().to_string()]);
    kill(&reattached);
    assert_eq!(first_exits(other.as_ref()), [reattached.id().to_string()]);
}
