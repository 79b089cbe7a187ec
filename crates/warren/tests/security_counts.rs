//! The security battery's attack on the kernel's per-user counts, as a
//! tenant against a real server: a sandbox that takes every inotify instance
//! it can leaves host root and another tenant's sandbox able to make theirs.
//! (Each sandbox's user namespace has an owner uid of its own; owned by host
//! root, they all shared root's 128.)

mod server_common;

use serde_json::json;
use server_common::TestServer;

/// Takes inotify instances until the kernel refuses, prints how many and
/// the errno, then holds them.
const HOARD: &str = "nohup python3 -c '
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
n = 0
while libc.inotify_init1(0) >= 0:
    n += 1
print(n, ctypes.get_errno(), flush=True)
time.sleep(600)
' > /tmp/hoard 2>&1 &
for i in $(seq 200); do [ -s /tmp/hoard ] && break; sleep 0.05; done
cat /tmp/hoard";

/// Makes one inotify instance; prints its descriptor or the errno.
const ONE: &str = "python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
print(fd if fd >= 0 else -ctypes.get_errno())
'";

/// The host uid owning the user namespace of sandbox `id`'s init
/// (`NS_GET_OWNER_UID` on `/proc/<pid>/ns/user`).
fn namespace_owner_of(server: &TestServer, id: &str) -> u32 {
    use std::os::fd::AsRawFd;
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    let pid = std::fs::read_to_string(server.state_dir.join("run").join(id).join("pid"))
        .expect("the sandbox's pid file");
    let ns = std::fs::File::open(format!("/proc/{}/ns/user", pid.trim())).unwrap();
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer given.
    let rc = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_OWNER_UID, &mut uid) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    uid
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_cannot_exhaust_inotify_for_the_host_or_other_tenants() {
    let server = TestServer::start().await;
    let (_, mallory) = server.tenant("mallory", None).await;
    let (_, alice) = server.tenant("alice", None).await;
    let hoarder = server.create(&mallory, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let neighbour = server.create(&alice, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Each namespace's owner is a uid of its own from the owner range (the
    // id's, or one picked at random for namespaces made ahead), not host
    // root.
    let range = warren_runtime::OWNER_UID_BASE
        ..warren_runtime::OWNER_UID_BASE + warren_runtime::OWNER_UID_COUNT;
    let owners: Vec<u32> = [&hoarder, &neighbour]
        .into_iter()
        .map(|id| namespace_owner_of(&server, id))
        .collect();
    for owner in &owners {
        assert!(range.contains(owner), "{owners:?}");
    }
    assert_ne!(owners[0], owners[1]);

    let (code, out) = server.sh(&mallory, &hoarder, HOARD).await;
    assert_eq!(code, 0, "{out}");
    let mut fields = out.split_whitespace();
    let taken: u32 = fields.next().and_then(|n| n.parse().ok()).expect(&out);
    let errno: i32 = fields.next().and_then(|n| n.parse().ok()).expect(&out);
    assert_eq!(
        errno,
        libc::EMFILE,
        "the hoarder stopped on its limit: {out}"
    );
    assert!(taken > 0, "{out}");
    eprintln!("the hoarder took {taken} inotify instances");

    // Host root (this test) still makes one.
    // SAFETY: inotify_init1 takes flags only; the descriptor is closed.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    let host_errno = std::io::Error::last_os_error();
    if fd >= 0 {
        // SAFETY: `fd` is ours.
        unsafe { libc::close(fd) };
    }
    assert!(
        fd >= 0,
        "host root cannot make an inotify instance while a sandbox holds {taken}: {host_errno}"
    );

    // So does another tenant's sandbox.
    let (code, out) = server.sh(&alice, &neighbour, ONE).await;
    assert_eq!(code, 0, "{out}");
    let fd: i32 = out.trim().parse().expect(&out);
    assert!(
        fd >= 0,
        "another tenant's sandbox cannot make an inotify instance (errno {}) while a sandbox holds {taken}",
        -fd
    );

    // And the hoarder's own limit is its own: a second sandbox of the same
    // tenant is not starved either.
    let second = server.create(&mallory, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, out) = server.sh(&mallory, &second, ONE).await;
    assert!(out.trim().parse::<i32>().expect(&out) >= 0, "{out}");
}

/// Adds inotify watches on new files in `/tmp` until the kernel refuses;
/// prints how many and the errno.
const WATCHES: &str = "python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
assert fd >= 0, ctypes.get_errno()
os.mkdir(\"/tmp/w\")
n = 0
while n < 300000:
    path = \"/tmp/w/%d\" % n
    open(path, \"w\").close()
    if libc.inotify_add_watch(fd, path.encode(), 2) < 0:
        break
    n += 1
print(n, ctypes.get_errno())
'";

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_counts_stop_at_its_own_limits() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let id = server.create(&key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Every limit is set in the sandbox's own namespace, and it cannot
    // change them.
    let (code, out) = server
        .sh(
            &key,
            &id,
            "for f in /proc/sys/user/max_*; do echo ${f##*/} $(cat $f); done; echo 99 > /proc/sys/user/max_inotify_watches && echo raised",
        )
        .await;
    assert_ne!(code, 0, "{out}");
    assert!(
        !out.contains("raised"),
        "the sandbox raised its limit: {out}"
    );
    for (name, value) in warren_runtime::namespaces::USER_COUNT_LIMITS {
        if std::path::Path::new("/proc/sys/user").join(name).exists() {
            assert!(
                out.lines().any(|l| l == format!("{name} {value}")),
                "{name} is not {value} in the sandbox:\n{out}"
            );
        }
    }

    // The watch limit holds below the host's per-user one (192k here).
    let limit = warren_runtime::namespaces::USER_COUNT_LIMITS
        .iter()
        .find(|(name, _)| *name == "max_inotify_watches")
        .unwrap()
        .1;
    let host: u64 = std::fs::read_to_string("/proc/sys/user/max_inotify_watches")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        host > limit,
        "the host's own limit ({host}) would stop it first"
    );
    let (code, out) = server.sh(&key, &id, WATCHES).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        format!("{limit} {}", libc::ENOSPC),
        "watches taken and the errno that stopped them"
    );
}
