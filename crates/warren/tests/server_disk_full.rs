//! The disk under the pool and the database full: a sandbox fills the file
//! system its server's state directory is on. Every request then either
//! works or fails with 507 `insufficient_storage`, never an internal error;
//! once space is freed everything works again, and after a restart the
//! database is intact and every sandbox is still there.

mod server_common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

/// A small btrfs file system of the test's own, loop-mounted; unmounted and
/// deleted on drop (after the server that uses it).
struct SmallFs {
    image: PathBuf,
    mnt: PathBuf,
}

impl SmallFs {
    fn new(size: &str) -> SmallFs {
        let tag = std::process::id();
        let image = PathBuf::from(format!("/var/tmp/warren-full-{tag}.img"));
        let mnt = PathBuf::from(format!("/var/tmp/warren-full-{tag}"));
        let fs = SmallFs { image, mnt };
        let ok = |cmd: &mut Command| assert!(cmd.status().expect("spawn").success(), "{cmd:?}");
        // Allocated up front and mounted without discard: a sparse image
        // (or one btrfs punches holes in) fills as the sandbox writes, and if
        // the host's own disk runs short under it the loop device fails
        // with EIO and btrfs goes read-only, which is a different test.
        ok(Command::new("fallocate").args(["-l", size]).arg(&fs.image));
        ok(Command::new("mkfs.btrfs")
            .args(["-q", "--nodiscard"])
            .arg(&fs.image));
        std::fs::create_dir_all(&fs.mnt).unwrap();
        ok(Command::new("mount")
            .args(["-o", "loop,nodiscard"])
            .arg(&fs.image)
            .arg(&fs.mnt));
        fs
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazily if it is still busy, so that a failed run never leaves the
        // mount behind; the loop device goes with its last user.
        let busy = !Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if busy {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
        let _ = std::fs::remove_dir(&self.mnt);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Checks that `status` is a success or a clean out-of-space problem.
fn ok_or_full(what: &str, status: u16, body: &Value) -> bool {
    if status == 507 {
        assert_eq!(body["code"], "insufficient_storage", "{what}: {body}");
        return false;
    }
    assert!(
        (200..300).contains(&status),
        "{what} on a full disk: {status} {body}"
    );
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_gives_clear_errors_and_loses_nothing() {
    let fs = SmallFs::new("1536M");
    let mut server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        state_dir: Some(fs.mnt.join("state")),
        ..Options::default()
    })
    .await;
    let a = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.run(ADMIN_KEY, &a, "echo kept > /root/kept").await;

    // Fill the file system from inside the sandbox.
    let out = server
        .run(ADMIN_KEY, &a, "head -c 4000000000 /dev/zero > /root/fill")
        .await;
    assert_ne!(out["exit_code"], 0, "4 GB fit on 1.5 GiB: {out}");
    assert!(
        out["stderr"].as_str().unwrap().contains("No space left"),
        "{out}"
    );

    // Full: every operation works or says so.
    let (status, body) = server
        .call("POST", "/v1/sandboxes", ADMIN_KEY, Some(json!({})))
        .await;
    let b = ok_or_full("create", status, &body).then(|| body["id"].as_str().unwrap().to_string());
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{a}/checkpoints"),
            ADMIN_KEY,
            Some(json!({"name": "full"})),
        )
        .await;
    ok_or_full("checkpoint", status, &body);
    let resp = server
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{a}/files?path=/root/more"),
            ADMIN_KEY,
        )
        .body(vec![7u8; 64 << 10])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    ok_or_full("upload", status, &body);
    let (status, body) = server
        .call(
            "PATCH",
            &format!("/v1/sandboxes/{a}"),
            ADMIN_KEY,
            Some(json!({"metadata": {"k": "v"}})),
        )
        .await;
    ok_or_full("patch", status, &body);

    // Space back: everything works again.
    let out = server
        .run(ADMIN_KEY, &a, "rm -f /root/fill /root/more && sync")
        .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    // btrfs gives freed space back once its transaction commits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let c = loop {
        let (status, body) = server
            .call("POST", "/v1/sandboxes", ADMIN_KEY, Some(json!({})))
            .await;
        if status == 201 {
            break body["id"].as_str().unwrap().to_string();
        }
        ok_or_full("create after freeing space", status, &body);
        assert!(
            std::time::Instant::now() < deadline,
            "still full a minute after freeing space: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{a}/checkpoints"),
            ADMIN_KEY,
            Some(json!({"name": "after"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A crash loses nothing that was acknowledged.
    server.kill9();
    server.spawn();
    for id in [Some(&a), b.as_ref(), Some(&c)].into_iter().flatten() {
        let (status, body) = server
            .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
            .await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["state"], "running", "{id}: {body}");
    }
    let out = server.run(ADMIN_KEY, &a, "cat /root/kept").await;
    assert_eq!(out["stdout"], "kept\n", "{out}");

    // And the database file is sound.
    server.kill9();
    let db = server.state_dir.join("warren.db");
    let check = Command::new("python3")
        .arg("-c")
        .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('pragma locking_mode=exclusive'); print(c.execute('pragma integrity_check').fetchone()[0])")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "ok",
        "{check:?}"
    );
    drop(server);
    drop(fs);
}
