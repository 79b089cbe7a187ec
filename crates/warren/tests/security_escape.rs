//! The security battery's escape probes: what a tenant with a key and code
//! in a sandbox tries first, against a real server over HTTP. Each probe is
//! an attack that must fail; SECURITY.md lists the rest of the battery (the
//! `security_*` suites) and the threat model they hold Warren to.
//!
//! - the kernel's and the host's state: mounts, new namespaces, device
//!   nodes, writes to /proc/sys, /proc/sysrq-trigger and /sys, the kernel
//!   log, the host name;
//! - the host's processes: none is visible, and ptrace of the server's host
//!   pid fails;
//! - raw syscalls that Docker's default profile refuses (module loading,
//!   kexec, bpf, perf, keyrings, handles, new mount API, reboot, clock and
//!   swap changes, ...), issued through `syscall(2)` so that no userland
//!   wrapper is in the way;
//! - socket families no sandbox needs, `AF_VSOCK` first (its sockets ignore
//!   network namespaces), by `socket(2)` and `socketpair(2)`;
//! - other tenants' ids: every route that takes a sandbox or a checkpoint
//!   id answers another tenant's id exactly like a missing one;
//! - from the host's side: a local user reaches neither a sandbox's files
//!   nor its agent's socket through the state directory.

mod server_common;

use serde_json::{json, Value};
use server_common::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_touch_the_kernel_or_the_host() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();

    for attack in [
        "mkdir -p /mnt/x && mount -t tmpfs x /mnt/x",
        "mount --bind / /mnt",
        "umount -l /proc",
        "unshare -U true",
        "unshare -m true",
        "unshare -n true",
        "unshare -p -f true",
        "mknod /tmp/sda b 8 0",
        "mknod /tmp/mem c 1 1",
        "echo 1 > /proc/sys/kernel/sysrq",
        "echo b > /proc/sysrq-trigger",
        "echo 1 > /proc/sys/vm/drop_caches",
        "echo x > /sys/kernel/uevent_helper",
        "touch /sys/fs/cgroup/x",
        "dmesg",
        "hostname other",
        "echo 0 > /proc/sys/kernel/randomize_va_space",
        "cat /dev/kmsg",
        "ls /dev/sda /dev/vda /dev/loop0",
    ] {
        let (code, out) = server.sh(&key, id, attack).await;
        assert_ne!(code, 0, "{attack:?} succeeded in a tenant's sandbox: {out}");
    }

    // No host process is visible, and the server cannot be traced.
    let server_pid = server.pid();
    let (code, out) = server
        .sh(
            &key,
            id,
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("warren server") && !out.contains("systemd") && !out.contains("sshd"),
        "host processes are visible from a sandbox: {out}"
    );
    let ptrace = format!(
        "python3 -c 'import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); \
         r = libc.ptrace(16, {server_pid}, 0, 0); print(r, ctypes.get_errno())'"
    );
    let (code, out) = server.sh(&key, id, &ptrace).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("-1 "),
        "PTRACE_ATTACH of the host's server: {out}"
    );

    // Raw syscalls Docker's default profile refuses: each must fail.
    let syscalls: &[(&str, i64)] = &[
        ("kexec_load", 246),
        ("kexec_file_load", 320),
        ("init_module", 175),
        ("finit_module", 313),
        ("delete_module", 176),
        ("bpf", 321),
        ("perf_event_open", 298),
        ("keyctl", 250),
        ("add_key", 248),
        ("request_key", 249),
        ("open_by_handle_at", 304),
        ("swapon", 167),
        ("swapoff", 168),
        ("reboot", 169),
        ("iopl", 172),
        ("ioperm", 173),
        ("settimeofday", 164),
        ("clock_settime", 227),
        ("acct", 163),
        ("pivot_root", 155),
        ("mount", 165),
        ("umount2", 166),
        ("setns", 308),
        ("syslog", 103),
        ("quotactl", 179),
        ("lookup_dcookie", 212),
        ("fsopen", 430),
        ("fsmount", 432),
        ("move_mount", 429),
        ("open_tree", 428),
        ("mount_setattr", 442),
    ];
    let table: Vec<String> = syscalls
        .iter()
        .map(|(name, nr)| format!("('{name}', {nr})"))
        .collect();
    // Arguments that would make each call do something if it were allowed
    // are not needed: a refused call fails before it reads them. Every
    // argument is a harmless null or zero (reboot's magic numbers are
    // deliberately wrong, so even a host root would get EINVAL).
    let script = format!(
        "import ctypes\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.syscall.restype = ctypes.c_long\n\
         for name, nr in [{}]:\n\
         \x20   ctypes.set_errno(0)\n\
         \x20   r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(-1), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))\n\
         \x20   print(name, r, ctypes.get_errno())\n",
        table.join(", ")
    );
    let (code, out) = server
        .sh(
            &key,
            id,
            &format!("cat > /tmp/probe.py <<'EOF'\n{script}EOF\npython3 /tmp/probe.py"),
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (eperm, enosys) = (libc::EPERM as i64, libc::ENOSYS as i64);
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, ret, errno] = fields[..] else {
            panic!("unexpected probe output: {out}")
        };
        let (ret, errno): (i64, i64) = (ret.parse().unwrap(), errno.parse().unwrap());
        assert_eq!(ret, -1, "{name} succeeded in a sandbox: {out}");
        assert!(
            errno == eperm || errno == enosys,
            "{name} was not refused by the filter or the capability set (errno {errno}): {out}"
        );
    }
    assert_eq!(out.lines().count(), syscalls.len(), "{out}");

    // vsock sockets ignore network namespaces: refused (EAFNOSUPPORT), by
    // socket(2) and by socketpair(2) (which creates its sockets through the
    // family first; unfiltered, vsock answers EOPNOTSUPP only after that).
    let (code, out) = server.sh(
        &key,
        id,
        "python3 -c 'import socket\nfor make in (socket.socket, socket.socketpair):\n    try:\n        make(socket.AF_VSOCK, socket.SOCK_STREAM)\n        print(\"opened\")\n    except OSError as e:\n        print(e.errno)'",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let refused = libc::EAFNOSUPPORT.to_string();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [refused.as_str(), refused.as_str()],
        "AF_VSOCK by socket(2), then by socketpair(2): {out}"
    );

    // The sandbox's mount table names no host path of the server's state
    // (its own or another server's pool, run directories or roots): its
    // pieces are bound from staged mounts and file systems of their own.
    let (code, mounts) = server.sh(&key, id, "cat /proc/self/mountinfo").await;
    assert_eq!(code, 0, "{mounts}");
    assert!(mounts.contains(" /run/warren "), "{mounts}");
    for host_path in [
        server.state_dir.to_str().unwrap(),
        "/var/cache/",
        "/var/lib/warren",
    ] {
        assert!(
            !mounts.contains(host_path),
            "the sandbox's mountinfo shows the host path {host_path}:\n{mounts}"
        );
    }

    // And a root user's ordinary life still works.
    let (code, out) = server
        .sh(
            &key,
            id,
            "echo ok > /root/f && chown nobody /root/f && cat /root/f && ps -e >/dev/null",
        )
        .await;
    assert_eq!((code, out.trim()), (0, "ok"));
}

/// `body` with every occurrence of `id` replaced, so two answers about two
/// different missing ids compare equal.
fn anonymized(body: &Value, id: &str) -> String {
    body.to_string().replace(id, "ID")
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenants_ids_answer_like_missing_ones() {
    let server = TestServer::start().await;
    let (_, alice) = server.tenant("alice", None).await;
    let (_, mallory) = server.tenant("mallory", None).await;
    let sandbox = server.create(&alice, json!({})).await;
    let sbx = sandbox["id"].as_str().unwrap().to_string();
    let (status, checkpoint) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            &alice,
            Some(json!({"name": "secret"})),
        )
        .await;
    assert_eq!(status, 201, "{checkpoint}");
    let ckpt = checkpoint["id"].as_str().unwrap().to_string();
    let missing_sbx = "sbx_0000000000000000000a";
    let missing_ckpt = "ckpt_0000000000000000000a";

    let probes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/sandboxes/{sbx}".into(), None),
        (
            "PATCH",
            "/v1/sandboxes/{sbx}".into(),
            Some(json!({"labels": {"x": "y"}})),
        ),
        (
            "POST",
            "/v1/sandboxes/{sbx}/processes/run".into(),
            Some(json!({"cmd": "id"})),
        ),
        ("GET", "/v1/sandboxes/{sbx}/processes".into(), None),
        (
            "GET",
            "/v1/sandboxes/{sbx}/files?path=/etc/hostname".into(),
            None,
        ),
        (
            "POST",
            "/v1/sandboxes/{sbx}/checkpoints".into(),
            Some(json!({"name": "x"})),
        ),
        ("GET", "/v1/sandboxes/{sbx}/checkpoints".into(), None),
        (
            "POST",
            "/v1/sandboxes/{sbx}/fork".into(),
            Some(json!({"count": 1})),
        ),
        (
            "POST",
            "/v1/sandboxes/{sbx}/extend".into(),
            Some(json!({"seconds": 60})),
        ),
        ("POST", "/v1/sandboxes/{sbx}/stop".into(), None),
        ("POST", "/v1/sandboxes/{sbx}/hibernate".into(), None),
        ("GET", "/v1/sandboxes/{sbx}/previews".into(), None),
        ("POST", "/v1/sandboxes/{sbx}/wipe".into(), None),
        (
            "POST",
            "/v1/sandboxes/{sbx}/previews".into(),
            Some(json!({"port": 8000})),
        ),
        (
            "GET",
            "/v1/sandboxes/{sbx}/processes/proc_0000000000000000000a/ws".into(),
            None,
        ),
        ("DELETE", "/v1/sandboxes/{sbx}".into(), None),
        ("GET", "/v1/checkpoints/{ckpt}".into(), None),
        ("GET", "/v1/checkpoints/{ckpt}/export".into(), None),
        ("GET", "/v1/checkpoints/{ckpt}/patches".into(), None),
        ("GET", "/v1/checkpoints/{ckpt}/diff".into(), None),
        ("DELETE", "/v1/checkpoints/{ckpt}".into(), None),
    ];
    for (method, template, body) in &probes {
        let theirs = template.replace("{sbx}", &sbx).replace("{ckpt}", &ckpt);
        let missing = template
            .replace("{sbx}", missing_sbx)
            .replace("{ckpt}", missing_ckpt);
        let (status, answer) = server.call(method, &theirs, &mallory, body.clone()).await;
        let (missing_status, missing_answer) =
            server.call(method, &missing, &mallory, body.clone()).await;
        assert_eq!(status, 404, "{method} {theirs} as another tenant: {answer}");
        assert_eq!(
            (status, anonymized(&answer, &sbx).replace(&ckpt, "ID")),
            (
                missing_status,
                anonymized(&missing_answer, missing_sbx).replace(missing_ckpt, "ID")
            ),
            "{method} {template}: another tenant's id answers unlike a missing one"
        );
    }
    // A sandbox made from, and a restore to, another tenant's checkpoint.
    let (status, answer) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &mallory,
            Some(json!({"from_checkpoint": ckpt})),
        )
        .await;
    assert_eq!(status, 404, "from_checkpoint of another tenant's: {answer}");
    let own = server.create(&mallory, json!({})).await;
    let own = own["id"].as_str().unwrap();
    let (status, answer) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{own}/restore"),
            &mallory,
            Some(json!({"checkpoint_id": ckpt})),
        )
        .await;
    assert_eq!(
        status, 404,
        "restore to another tenant's checkpoint: {answer}"
    );

    // Nothing of it touched Alice's sandbox or checkpoint.
    let out = server.run(&alice, &sbx, "echo still-mine").await;
    assert_eq!(out["stdout"], "still-mine\n");
    let (status, _) = server
        .call("GET", &format!("/v1/checkpoints/{ckpt}"), &alice, None)
        .await;
    assert_eq!(status, 200);
}

/// Runs `argv` as host uid and gid 65534 (a local user with no business in
/// Warren's state); its exit status and output.
fn as_nobody(argv: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(argv)
        .output()
        .expect("setpriv");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn local_host_users_reach_neither_sandbox_files_nor_agents() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start().await;
    let (_, key) = server.tenant("alice", None).await;
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();
    let (code, out) = server
        .sh(
            &key,
            id,
            "echo tenant-data > /opt/readable && chmod 644 /opt/readable",
        )
        .await;
    assert_eq!(code, 0, "{out}");

    let mode = std::fs::metadata(&server.state_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "state dir mode {mode:o}");

    // The sandbox's files, world-readable inside, are not readable from
    // the host by a local user who knows (or lists, from the cgroup tree)
    // the sandbox's id.
    let file = server
        .state_dir
        .join("pool/sandboxes")
        .join(id)
        .join("opt/readable");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "tenant-data\n");
    let (read, out) = as_nobody(&["cat", file.to_str().unwrap()]);
    assert!(!read, "a local user read a tenant's file: {out}");
    assert!(out.contains("Permission denied"), "{out}");

    // Nor can they talk to its agent (which trusts whoever reaches its
    // socket).
    let socket = server.state_dir.join("run").join(id).join("agent.sock");
    assert!(socket.exists(), "{}", socket.display());
    let (connected, out) = as_nobody(&[
        "python3",
        "-c",
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('connected')",
        socket.to_str().unwrap(),
    ]);
    assert!(!connected, "a local user reached the agent: {out}");
    assert!(out.contains("Permission denied"), "{out}");

    // And the sandbox itself works as before.
    let (code, out) = server.sh(&key, id, "cat /opt/readable").await;
    assert_eq!((code, out.as_str()), (0, "tenant-data\n"));
}
