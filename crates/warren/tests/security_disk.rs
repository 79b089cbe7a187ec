//! The security battery's attacks on the host's disk and memory through a
//! sandbox's writable mounts, as a tenant against a real server:
//!
//! - the run directory (`/run/warren`, the host side of the agent's socket)
//!   takes a few MiB and a few inodes, never the host's disk;
//! - a full `/tmp` or `/dev/shm` answers ENOSPC, and the sandbox's agent
//!   keeps answering (tmpfs pages would otherwise leave the OOM killer only
//!   the agent to kill).

mod server_common;

use serde_json::json;
use server_common::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn the_run_directory_cannot_fill_the_host() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();

    let (code, out) = server
        .sh(&key, id, "head -c 209715200 /dev/zero > /run/warren/big")
        .await;
    assert_ne!(code, 0, "200 MB landed in the run directory: {out}");
    assert!(out.contains("No space left"), "{out}");
    let host_side = server.state_dir.join("run").join(id).join("big");
    let size = std::fs::metadata(&host_side).map(|m| m.len()).unwrap_or(0);
    assert!(size <= 8 << 20, "{size} bytes on the host");
    server.sh(&key, id, "rm -f /run/warren/big").await;

    let out = server
        .run(
            &key,
            id,
            "for i in $(seq 20000); do touch /run/warren/f$i 2>/dev/null || break; done; ls /run/warren | wc -l",
        )
        .await;
    let files: usize = out["stdout"]
        .as_str()
        .and_then(|n| n.trim().parse().ok())
        .expect("a count");
    assert!(files < 100, "{files} files in the run directory");

    // The sandbox still answers, and its delete leaves no mount behind.
    let (code, out) = server.sh(&key, id, "echo alive").await;
    assert_eq!((code, out.trim()), (0, "alive"));
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), &key, None)
        .await;
    assert_eq!(status, 204);
    assert!(
        server_common::mounts_under(&server.state_dir.join("run")).is_empty(),
        "{:?}",
        server_common::mounts_under(&server.state_dir.join("run"))
    );
    assert!(server.run_dirs().is_empty(), "{:?}", server.run_dirs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_tmpfs_is_enospc_and_the_sandbox_stays_healthy() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let sandbox = server
        .create(&key, json!({ "resources": { "memory_mb": 256 } }))
        .await;
    let id = sandbox["id"].as_str().unwrap();

    for target in ["/tmp/fill", "/dev/shm/fill", "/run/fill"] {
        let (code, out) = server
            .sh(&key, id, &format!("head -c 314572800 /dev/zero > {target}"))
            .await;
        assert_ne!(code, 0, "300 MB fit in {target} of a 256 MiB sandbox");
        assert!(out.contains("No space left"), "{target}: {out}");
        // Full, the sandbox still runs commands.
        let (code, out) = server.sh(&key, id, "echo alive").await;
        assert_eq!((code, out.trim()), (0, "alive"), "after filling {target}");
    }
    let (_, sandbox) = server
        .call("GET", &format!("/v1/sandboxes/{id}"), &key, None)
        .await;
    assert_eq!(sandbox["state"], "running", "{sandbox}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nested_subvolume_deeper_than_path_max_does_not_block_the_delete() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();

    // 30 directories of 200 bytes (6000 bytes, past PATH_MAX), then a
    // subvolume there (BTRFS_IOC_SUBVOL_CREATE on the directory).
    let script = r#"
import fcntl, os, struct
os.chdir("/root")
for _ in range(30):
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
fd = os.open(".", os.O_RDONLY)
fcntl.ioctl(fd, 0x5000940E, bytearray(struct.pack("q", 0) + b"sv".ljust(4088, b"\0")))
os.chdir("sv")
open("inside", "w").write("x")
print("nested")
"#;
    let out = server
        .run(
            &key,
            id,
            &format!("cat > /tmp/deep.py <<'EOF'\n{script}EOF\npython3 /tmp/deep.py"),
        )
        .await;
    assert_eq!(out["stdout"], "nested\n", "{out}");

    let (status, body) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), &key, None)
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(
        server.sandbox_volumes().is_empty(),
        "{:?}",
        server.sandbox_volumes()
    );
    // The disk itself is deleted in the background, nested volume and all.
    let trash = server.trash_after_quiet().await;
    assert!(trash.is_empty(), "{trash:?}");
}

/// Writes 200 MB in sandbox `id`, whose disk is limited to 64 MiB, and
/// checks that the write fails for lack of space.
async fn stops_at_its_limit(server: &TestServer, key: &str, id: &str, what: &str) {
    let (code, out) = server
        .sh(key, id, "head -c 209715200 /dev/zero > /root/big; sync")
        .await;
    assert!(
        out.contains("Disk quota exceeded") || out.contains("No space left"),
        "200 MB written past {what}'s limit ({code}): {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_stops_at_its_disk_limit_and_others_notice_nothing() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("mallory", None).await;
    let small = server
        .create(&key, json!({ "resources": { "disk_mb": 64 } }))
        .await;
    assert_eq!(small["resources"]["disk_mb"], 64, "{small}");
    let small = small["id"].as_str().unwrap();
    let other = server.create(&key, json!({})).await;
    assert_eq!(other["resources"]["disk_mb"], 10240, "{other}");
    let other = other["id"].as_str().unwrap();

    stops_at_its_limit(&server, &key, small, "a 64 MiB sandbox").await;
    let (code, out) = server.sh(&key, small, "rm /root/big && echo alive").await;
    assert_eq!((code, out.trim()), (0, "alive"));
    // A fork's disk (a snapshot, begun before its start) has the limit too.
    let (status, forked) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{small}/fork"),
            &key,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{forked}");
    let child = forked["items"][0]["id"].as_str().unwrap();
    assert_eq!(forked["items"][0]["resources"]["disk_mb"], 64, "{forked}");
    stops_at_its_limit(&server, &key, child, "its fork").await;
    let (code, out) = server
        .sh(
            &key,
            other,
            "head -c 104857600 /dev/zero > /root/big && sync && stat -c %s /root/big",
        )
        .await;
    assert_eq!((code, out.trim()), (0, "104857600"), "{out}");

    let (status, problem) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &key,
            Some(json!({ "resources": { "disk_mb": 1 } })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("resources.disk_mb"));
}
