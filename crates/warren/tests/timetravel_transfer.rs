//! Moving a checkpoint between servers with separate state directories:
//! export, import, and a sandbox made from the import, with the btrfs send
//! stream between btrfs servers and the gzipped tar to and from a server on
//! the copy driver. Broken, truncated and hostile imports are refused and
//! leave nothing behind.

mod server_common;

use serde_json::{json, Value};
use server_common::{list_dir, Options, TestServer, ADMIN_KEY};

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// Files with content, owner, mode, a symlink and an xattr; and a leaner
/// disk (the usual image diet: no apt lists or caches, docs, locales),
/// which keeps the copy driver's full copies quick.
const SETUP: &str = "echo secret > /root/owned && chown 1000:1000 /root/owned && \
    chmod 640 /root/owned && ln -s owned /root/link && \
    python3 -c \"import os; os.setxattr('/root/owned', 'user.colour', b'teal')\" && \
    rm -rf /var/lib/apt/lists /var/cache/apt /usr/share/doc /usr/share/man /usr/share/locale";

/// What [`SETUP`] made, as one line each.
const CHECK: &str = "python3 -c \"import os; s = os.stat('/root/owned'); \
    print(s.st_uid, s.st_gid, oct(s.st_mode & 0o7777)); print(os.readlink('/root/link')); \
    print(os.getxattr('/root/owned', 'user.colour').decode())\"; cat /root/link; echo $COLOUR";

const EXPECTED: &str = "1000 1000 0o640\nowned\nteal\nsecret\nblue\n";

async fn export(server: &TestServer, key: &str, ckpt: &str, query: &str) -> Vec<u8> {
    let resp = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/checkpoints/{ckpt}/export{query}"),
            key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "export");
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.warren.checkpoint"
    );
    resp.bytes().await.expect("the whole export").to_vec()
}

async fn import(server: &TestServer, key: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = server
        .req(reqwest::Method::POST, "/v1/checkpoints/import", key)
        .header("content-type", "application/vnd.warren.checkpoint")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The header of an export: its JSON line.
fn header(export: &[u8]) -> Value {
    let mut lines = export.splitn(3, |b| *b == b'\n');
    assert_eq!(lines.next(), Some(&b"WARREN-CHECKPOINT 1"[..]));
    serde_json::from_slice(lines.next().unwrap()).unwrap()
}

/// Entries time travel left in a server's `pool/tmp`.
fn leftovers(server: &TestServer) -> Vec<String> {
    list_dir(&server.state_dir.join("pool/tmp"))
        .into_iter()
        .filter(|n| n.starts_with("tt-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_round_trips_between_servers_and_drivers() {
    let origin = TestServer::start().await;
    let other_btrfs = TestServer::start_with(Options {
        no_base: true,
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let copy = TestServer::start_with(Options {
        copy_driver: true,
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;

    let sbx = id_of(
        &origin
            .create(ADMIN_KEY, json!({"envs": {"COLOUR": "blue"}}))
            .await,
    );
    let out = origin.run(ADMIN_KEY, &sbx, SETUP).await;
    assert_eq!(out["exit_code"], 0, "{out}");
    let (status, ckpt) = origin
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            ADMIN_KEY,
            Some(json!({"name": "travel"})),
        )
        .await;
    assert_eq!(status, 201);
    let ckpt = id_of(&ckpt);

    // btrfs to btrfs: a send stream.
    let stream = export(&origin, ADMIN_KEY, &ckpt, "").await;
    let head = header(&stream);
    assert_eq!(head["format"], "btrfs-send");
    assert_eq!(head["name"], "travel");
    assert_eq!(head["sandbox_id"], sbx.as_str());
    assert_eq!(head["template"], "base");
    let (_, tenant_key) = other_btrfs.tenant("importer", None).await;
    let (_, stranger) = other_btrfs.tenant("stranger", None).await;
    // The kernel parses a send stream as host root: a tenant may not send
    // one, the admin may.
    let (status, problem) = import(&other_btrfs, &tenant_key, stream.clone()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("forbidden")),
        "{problem}"
    );
    // Refused at the header while the client still sends a large body: the
    // answer gets through, not a reset connection.
    let mut large = stream[..stream.iter().position(|b| *b == b'\n').unwrap() + 1].to_vec();
    large.extend(serde_json::to_vec(&head).unwrap());
    large.push(b'\n');
    large.resize(large.len() + (16 << 20), 0);
    for _ in 0..20 {
        let (status, problem) = import(&other_btrfs, &tenant_key, large.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));
        let (status, problem) = import(&copy, ADMIN_KEY, large.clone()).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_request"))
        );
    }
    let (status, imported) = import(&other_btrfs, ADMIN_KEY, stream.clone()).await;
    assert_eq!(status, 201, "{imported}");
    assert!(imported["tenant_id"].is_null(), "{imported}");
    // A tenant imports the same disk as a gzipped tar.
    let tenant_tar = export(&origin, ADMIN_KEY, &ckpt, "?format=tar-gzip").await;
    let (status, imported) = import(&other_btrfs, &tenant_key, tenant_tar).await;
    assert_eq!(status, 201, "{imported}");
    let imported_id = id_of(&imported);
    assert_ne!(imported_id, ckpt, "a new id on the new server");
    assert_eq!(imported["imported"], true);
    assert_eq!(imported["name"], "travel");
    assert_eq!(imported["sandbox_id"], sbx.as_str());
    assert!(imported["tenant_id"].as_str().is_some());
    let (status, _) = other_btrfs
        .call(
            "GET",
            &format!("/v1/checkpoints/{imported_id}"),
            &stranger,
            None,
        )
        .await;
    assert_eq!(status, 404, "the importer's tenant owns it");
    let made = other_btrfs
        .create(&tenant_key, json!({"from_checkpoint": imported_id}))
        .await;
    let out = other_btrfs.run(&tenant_key, &id_of(&made), CHECK).await;
    assert_eq!(out["stdout"], EXPECTED, "{out}");

    // btrfs to copy: the copy driver cannot take a send stream, and says so.
    let (status, problem) = import(&copy, ADMIN_KEY, stream.clone()).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("tar-gzip"),
        "{problem}"
    );
    // A gzipped tar it can.
    let tarball = export(&origin, ADMIN_KEY, &ckpt, "?format=tar-gzip").await;
    assert_eq!(header(&tarball)["format"], "tar-gzip");
    let (status, on_copy) = import(&copy, ADMIN_KEY, tarball).await;
    assert_eq!(status, 201, "{on_copy}");
    let on_copy = id_of(&on_copy);
    let made = copy
        .create(ADMIN_KEY, json!({"from_checkpoint": on_copy}))
        .await;
    let out = copy.run(ADMIN_KEY, &id_of(&made), CHECK).await;
    assert_eq!(out["stdout"], EXPECTED, "{out}");

    // And back: the copy server exports a tar by default.
    let back = export(&copy, ADMIN_KEY, &on_copy, "").await;
    assert_eq!(header(&back)["format"], "tar-gzip");
    let (status, problem) = copy
        .call(
            "GET",
            &format!("/v1/checkpoints/{on_copy}/export?format=btrfs-send"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, home) = import(&other_btrfs, ADMIN_KEY, back).await;
    assert_eq!(status, 201, "{home}");
    let made = other_btrfs
        .create(ADMIN_KEY, json!({"from_checkpoint": id_of(&home)}))
        .await;
    let out = other_btrfs.run(ADMIN_KEY, &id_of(&made), CHECK).await;
    assert_eq!(out["stdout"], EXPECTED, "{out}");

    // Refused imports leave nothing behind.
    let volumes = list_dir(&other_btrfs.state_dir.join("pool/checkpoints"));
    let truncated = stream[..stream.len() / 2].to_vec();
    for (what, body) in [
        ("garbage", b"GIF89a and so on\n{}\n".to_vec()),
        ("nothing", Vec::new()),
        ("a truncated stream", truncated),
        ("a header alone", stream[..stream.len().min(200)].to_vec()),
    ] {
        let (status, problem) = import(&other_btrfs, ADMIN_KEY, body).await;
        assert_eq!(status, 400, "{what}: {problem}");
        assert_eq!(problem["code"], "invalid_request", "{what}");
    }
    assert_eq!(
        list_dir(&other_btrfs.state_dir.join("pool/checkpoints")),
        volumes
    );
    assert_eq!(leftovers(&other_btrfs), Vec::<String>::new());

    // A device node outside /dev could reach a host device: refused.
    let dir = tempfile::tempdir().unwrap();
    for sub in ["dev", "root"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    for node in ["dev/null", "root/disk"] {
        let path = std::ffi::CString::new(dir.path().join(node).to_str().unwrap()).unwrap();
        // SAFETY: mknod with a valid NUL-terminated path.
        let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(rc, 0, "mknod {node}");
    }
    // Owned inside the sandboxes' range, as a real disk is: the node is
    // what gets it refused.
    for path in [".", "dev", "root", "dev/null", "root/disk"] {
        std::os::unix::fs::lchown(dir.path().join(path), Some(100_000), Some(100_000)).unwrap();
    }
    let tar = std::process::Command::new("tar")
        .args(["--create", "--gzip", "--numeric-owner", "--file=-", "-C"])
        .arg(dir.path())
        .arg(".")
        .output()
        .unwrap();
    assert!(tar.status.success());
    let mut hostile = head.clone();
    hostile["format"] = json!("tar-gzip");
    let mut body = b"WARREN-CHECKPOINT 1\n".to_vec();
    body.extend(serde_json::to_vec(&hostile).unwrap());
    body.push(b'\n');
    body.extend(tar.stdout);
    for server in [&other_btrfs, &copy] {
        let (status, problem) = import(server, ADMIN_KEY, body.clone()).await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("/root/disk: a device node outside /dev"),
            "{problem}"
        );
        assert_eq!(leftovers(server), Vec::<String>::new());
    }
}
