//! `/v1/files` over real HTTP on real files: reads, writes, ranges, modes,
//! atomicity, list, stat, mkdir, move, delete, edit and their problem codes.

mod common;
mod files_support;

use std::os::unix::fs::{symlink, PermissionsExt};

use common::TestAgent;
use files_support::*;
use serde_json::json;

fn all_bytes(repeat: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(256 * repeat).collect()
}

#[tokio::test]
async fn binary_round_trip() {
    let agent = TestAgent::start().await;
    let data = all_bytes(1000);
    let (status, body) = put(&agent, "bin/all.bytes", data.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bytes"], data.len());
    assert_eq!(body["path"], "bin/all.bytes");
    assert_eq!(
        std::fs::read(agent.dir.path().join("bin/all.bytes")).unwrap(),
        data
    );

    let resp = agent
        .http
        .get(agent.url("/v1/files"))
        .query(&[("path", "bin/all.bytes")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        resp.headers()["content-length"],
        data.len().to_string().as_str()
    );
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), data);

    // Absolute paths work too, and an empty file is fine.
    let abs = agent.dir.path().join("empty");
    let (status, _) = put(&agent, abs.to_str().unwrap(), Vec::new()).await;
    assert_eq!(status, 200);
    assert_eq!(get(&agent, abs.to_str().unwrap()).await, (200, Vec::new()));
}

#[tokio::test]
async fn ranges() {
    let agent = TestAgent::start().await;
    let data = all_bytes(4); // 1024 bytes
    std::fs::write(agent.dir.path().join("r"), &data).unwrap();
    let fetch = |range: &'static str| {
        let req = agent
            .http
            .get(agent.url("/v1/files"))
            .query(&[("path", "r")])
            .header("range", range);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let content_range = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_string());
            let len = resp.headers().get("content-length").cloned();
            let body = resp.bytes().await.unwrap().to_vec();
            if let Some(len) = len {
                assert_eq!(len.to_str().unwrap(), body.len().to_string());
            }
            (status, content_range, body)
        }
    };
    let (s, cr, body) = fetch("bytes=0-9").await;
    assert_eq!((s, cr.as_deref()), (206, Some("bytes 0-9/1024")));
    assert_eq!(body, &data[..10]);
    let (s, cr, body) = fetch("bytes=1000-").await;
    assert_eq!((s, cr.as_deref()), (206, Some("bytes 1000-1023/1024")));
    assert_eq!(body, &data[1000..]);
    let (s, cr, body) = fetch("bytes=-5").await;
    assert_eq!((s, cr.as_deref()), (206, Some("bytes 1019-1023/1024")));
    assert_eq!(body, &data[1019..]);
    let (s, cr, body) = fetch("bytes=1020-5000").await;
    assert_eq!((s, cr.as_deref()), (206, Some("bytes 1020-1023/1024")));
    assert_eq!(body, &data[1020..]);
    // Malformed or multiple ranges are ignored: the whole file.
    for ignored in ["bytes=9-1", "bytes=x-y", "bytes=0-1,5-6", "lines=1-2"] {
        let (s, cr, body) = fetch(ignored).await;
        assert_eq!((s, cr), (200, None), "{ignored}");
        assert_eq!(body, data, "{ignored}");
    }
    // Unsatisfiable: 416 problem with `Content-Range: bytes */size`.
    for bad in ["bytes=1024-", "bytes=5000-6000", "bytes=-0"] {
        let (s, cr, body) = fetch(bad).await;
        assert_eq!((s, cr.as_deref()), (416, Some("bytes */1024")), "{bad}");
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "range_not_satisfiable");
    }
}

#[tokio::test]
async fn put_creates_parents_and_honours_mode() {
    let agent = TestAgent::start().await;
    let mode_of = |p: &str| {
        std::fs::metadata(agent.dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let put_mode = |path: &'static str, mode: &'static str| {
        let req = agent
            .http
            .put(agent.url("/v1/files"))
            .query(&[("path", path), ("mode", mode)])
            .body("#!/bin/sh\n");
        async move { json(req.send().await.unwrap()).await }
    };
    let (status, body) = put_mode("deep/er/run.sh", "0755").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mode_of("deep/er/run.sh"), 0o755);
    assert!(agent.dir.path().join("deep/er").is_dir());
    assert_eq!(put_mode("secret", "600").await.0, 200);
    assert_eq!(mode_of("secret"), 0o600);
    // Without `mode`, a replaced file keeps its mode.
    assert_eq!(put(&agent, "secret", "new").await.0, 200);
    assert_eq!(mode_of("secret"), 0o600);
    assert_eq!(
        std::fs::read_to_string(agent.dir.path().join("secret")).unwrap(),
        "new"
    );
    for bad in ["999", "rwx", "-1", "77777", ""] {
        let answer = put_mode("bad", bad).await;
        assert_problem(&answer, 400, "invalid_request");
        assert!(!agent.dir.path().join("bad").exists());
    }
}

#[tokio::test]
async fn writes_are_atomic_and_leave_no_temporary_files() {
    let agent = TestAgent::start().await;
    let a = vec![b'a'; 4 << 20];
    let b = vec![b'b'; 4 << 20];
    assert_eq!(put(&agent, "swap", a.clone()).await.0, 200);
    // Readers racing with writers see one whole version, never a mix.
    let writer = async {
        for i in 0..8 {
            let body = if i % 2 == 0 { b.clone() } else { a.clone() };
            assert_eq!(put(&agent, "swap", body).await.0, 200);
        }
    };
    let reader = async {
        for _ in 0..16 {
            let (status, body) = get(&agent, "swap").await;
            assert_eq!(status, 200);
            assert_eq!(body.len(), 4 << 20);
            assert!(body.iter().all(|&c| c == body[0]), "torn read");
        }
    };
    tokio::join!(writer, reader);
    assert_eq!(names(agent.dir.path()), vec!["swap"]);

    // A body that fails halfway leaves the old file and no temporary file.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(vec![b'x'; 1 << 20]),
        Err(std::io::Error::other("client gives up")),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let result = agent
        .http
        .put(agent.url("/v1/files"))
        .query(&[("path", "swap")])
        .body(body)
        .send()
        .await;
    assert!(result.is_err(), "the request itself must fail");
    // The agent notices the cut body on its own schedule.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while names(agent.dir.path()) != vec!["swap"] && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(names(agent.dir.path()), vec!["swap"]);
    let (_, body) = get(&agent, "swap").await;
    assert!(body.iter().all(|&c| c == b'a'));
}

#[tokio::test]
async fn read_errors_are_problems() {
    let agent = TestAgent::start().await;
    std::fs::create_dir(agent.dir.path().join("dir")).unwrap();
    let answer = get_json(&agent, "/v1/files", &[("path", "missing")]).await;
    assert_problem(&answer, 404, "file_not_found");
    let answer = get_json(&agent, "/v1/files", &[("path", "dir")]).await;
    assert_problem(&answer, 400, "is_a_directory");
    let answer = get_json(&agent, "/v1/files", &[("path", "")]).await;
    assert_problem(&answer, 400, "invalid_request");
    let answer = get_json(&agent, "/v1/files", &[]).await;
    assert_problem(&answer, 400, "invalid_request");
    let answer = get_json(&agent, "/v1/files", &[("path", "missing/../x\0")]).await;
    assert_problem(&answer, 400, "invalid_request");
    let answer = get_json(&agent, "/v1/files", &[("path", "/dev/null")]).await;
    assert_problem(&answer, 400, "invalid_request");
    // A FIFO must not hang the request.
    let fifo = agent.dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let answer = get_json(&agent, "/v1/files", &[("path", "fifo")]).await;
    assert_problem(&answer, 400, "invalid_request");
    // Writing over a directory.
    let answer = put(&agent, "dir", "x").await;
    assert_problem(&answer, 400, "is_a_directory");
    // Writing below a file.
    std::fs::write(agent.dir.path().join("plain"), "x").unwrap();
    let answer = put(&agent, "plain/child", "x").await;
    assert_problem(&answer, 400, "not_a_directory");
}

#[tokio::test]
async fn stat_never_404s() {
    let agent = TestAgent::start().await;
    let answer = get_json(&agent, "/v1/files/stat", &[("path", "nope/nothing")]).await;
    assert_eq!(answer.0, 200);
    assert_eq!(
        answer.1,
        json!({"exists": false, "is_file": false, "is_dir": false, "size": 0, "mode": 0, "modified_at": null})
    );
    std::fs::write(agent.dir.path().join("f"), "hello").unwrap();
    std::fs::set_permissions(agent.dir.path().join("f"), PermissionsExt::from_mode(0o640)).unwrap();
    let (status, st) = get_json(&agent, "/v1/files/stat", &[("path", "f")]).await;
    assert_eq!(status, 200);
    assert_eq!(st["exists"], true);
    assert_eq!(st["is_file"], true);
    assert_eq!(st["is_dir"], false);
    assert_eq!(st["size"], 5);
    assert_eq!(st["mode"], 0o640);
    let modified = st["modified_at"].as_str().unwrap();
    assert!(
        modified.ends_with('Z') && modified.len() == 24,
        "{modified}"
    );
    // Below a file, and a dangling symlink, are missing, not errors.
    let (_, st) = get_json(&agent, "/v1/files/stat", &[("path", "f/below")]).await;
    assert_eq!(st["exists"], false);
    symlink("gone", agent.dir.path().join("dangling")).unwrap();
    let (_, st) = get_json(&agent, "/v1/files/stat", &[("path", "dangling")]).await;
    assert_eq!(st["exists"], false);
    let (_, st) = get_json(&agent, "/v1/files/stat", &[("path", ".")]).await;
    assert_eq!(
        (st["exists"].clone(), st["is_dir"].clone()),
        (json!(true), json!(true))
    );
}

#[tokio::test]
async fn list_describes_entries_sorted() {
    let agent = TestAgent::start().await;
    let root = agent.dir.path();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("b.txt"), "12345").unwrap();
    std::fs::write(root.join("a.txt"), "1").unwrap();
    std::fs::set_permissions(root.join("a.txt"), PermissionsExt::from_mode(0o600)).unwrap();
    symlink("sub", root.join("link")).unwrap();
    let (status, list) = get_json(&agent, "/v1/files/list", &[("path", ".")]).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a.txt", "b.txt", "link", "sub"]);
    assert_eq!(items[0]["path"], "./a.txt");
    assert_eq!(items[0]["mode"], 0o600);
    assert_eq!(items[0]["size"], 1);
    assert_eq!(items[0]["is_dir"], false);
    assert_eq!(items[1]["size"], 5);
    assert_eq!(items[2]["is_symlink"], true);
    assert_eq!(items[2]["is_dir"], true);
    assert_eq!(items[3]["is_dir"], true);
    assert_eq!(items[3]["is_symlink"], false);
    assert!(items[3]["modified_at"].as_str().unwrap().ends_with('Z'));

    let abs = root.join("sub");
    let (_, list) = get_json(&agent, "/v1/files/list", &[("path", abs.to_str().unwrap())]).await;
    assert_eq!(list["items"], json!([]));
    let answer = get_json(&agent, "/v1/files/list", &[("path", "a.txt")]).await;
    assert_problem(&answer, 400, "not_a_directory");
    let answer = get_json(&agent, "/v1/files/list", &[("path", "missing")]).await;
    assert_problem(&answer, 404, "file_not_found");
}

#[tokio::test]
async fn mkdir_is_mkdir_p() {
    let agent = TestAgent::start().await;
    let agent = &agent;
    let mkdir = |p: &'static str| async move {
        post_json(agent, "/v1/files/mkdir", &[("path", p)], None).await
    };
    let (status, body) = mkdir("x/y/z").await;
    assert_eq!(status, 200, "{body}");
    assert!(agent.dir.path().join("x/y/z").is_dir());
    assert_eq!(mkdir("x/y/z").await.0, 200);
    assert_eq!(mkdir("x/./y/../y/w/").await.0, 200);
    assert!(agent.dir.path().join("x/y/w").is_dir());
    std::fs::write(agent.dir.path().join("file"), "").unwrap();
    assert_problem(&mkdir("file").await, 409, "already_exists");
    assert_problem(&mkdir("file/sub").await, 400, "not_a_directory");
}

#[tokio::test]
async fn delete_files_and_directories() {
    let agent = TestAgent::start().await;
    let root = agent.dir.path();
    std::fs::create_dir_all(root.join("tree/a/b")).unwrap();
    std::fs::write(root.join("tree/a/b/f"), "x").unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    std::fs::create_dir(root.join("kept")).unwrap();
    std::fs::write(root.join("kept/precious"), "x").unwrap();
    symlink(root.join("kept"), root.join("tree/link-to-kept")).unwrap();
    std::fs::write(root.join("file"), "x").unwrap();

    assert_problem(
        &delete(&agent, &[("path", "missing")]).await,
        404,
        "file_not_found",
    );
    assert_problem(
        &delete(&agent, &[("path", "tree")]).await,
        409,
        "directory_not_empty",
    );
    assert!(root.join("tree/a/b/f").exists());
    assert_eq!(delete(&agent, &[("path", "empty")]).await.0, 200);
    assert!(!root.join("empty").exists());
    assert_eq!(delete(&agent, &[("path", "file")]).await.0, 200);
    assert!(!root.join("file").exists());
    let (status, body) = delete(&agent, &[("path", "tree"), ("recursive", "true")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!root.join("tree").exists());
    // The symlink went, not what it pointed to.
    assert!(root.join("kept/precious").exists());
    // Deleting a symlink to a directory removes the link only.
    symlink("kept", root.join("klink")).unwrap();
    assert_eq!(
        delete(&agent, &[("path", "klink"), ("recursive", "true")])
            .await
            .0,
        200
    );
    assert!(root.join("kept/precious").exists());
    assert_problem(
        &delete(&agent, &[("path", "/")]).await,
        400,
        "invalid_request",
    );
    assert_problem(
        &delete(&agent, &[("path", "x"), ("recursive", "maybe")]).await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn move_respects_overwrite() {
    let agent = TestAgent::start().await;
    let root = agent.dir.path();
    std::fs::write(root.join("a"), "A").unwrap();
    std::fs::write(root.join("b"), "B").unwrap();
    let mv = |body: serde_json::Value| post_json(&agent, "/v1/files/move", &[], Some(body));

    let answer = mv(json!({"from": "a", "to": "b"})).await;
    assert_problem(&answer, 409, "already_exists");
    assert_eq!(std::fs::read_to_string(root.join("a")).unwrap(), "A");
    assert_eq!(std::fs::read_to_string(root.join("b")).unwrap(), "B");
    let (status, body) = mv(json!({"from": "a", "to": "b", "overwrite": true})).await;
    assert_eq!((status, body["path"].clone()), (200, json!("b")));
    assert!(!root.join("a").exists());
    assert_eq!(std::fs::read_to_string(root.join("b")).unwrap(), "A");
    // Parents of the destination are created; directories move too.
    assert_eq!(mv(json!({"from": "b", "to": "new/dir/c"})).await.0, 200);
    assert_eq!(
        std::fs::read_to_string(root.join("new/dir/c")).unwrap(),
        "A"
    );
    assert_eq!(mv(json!({"from": "new", "to": "moved"})).await.0, 200);
    assert!(root.join("moved/dir/c").exists());
    assert_problem(
        &mv(json!({"from": "nope", "to": "x"})).await,
        404,
        "file_not_found",
    );
    assert_problem(
        &mv(json!({"from": "moved", "to": "moved/dir/inside"})).await,
        400,
        "invalid_request",
    );
    std::fs::create_dir_all(root.join("full/x")).unwrap();
    std::fs::create_dir(root.join("other")).unwrap();
    let answer = mv(json!({"from": "other", "to": "full", "overwrite": true})).await;
    assert_problem(&answer, 409, "directory_not_empty");
    assert_problem(&mv(json!({"from": "moved"})).await, 400, "invalid_request");
}

#[tokio::test]
async fn edit_replaces_exactly_one_occurrence() {
    let agent = TestAgent::start().await;
    let path = agent.dir.path().join("code.rs");
    std::fs::write(
        &path,
        "fn main() {\n    println!(\"hi\");\n    println!(\"hi\");\n}\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o751)).unwrap();
    let edit = |old: &str, new: &str| {
        post_json(
            &agent,
            "/v1/files/edit",
            &[],
            Some(json!({"path": "code.rs", "old_text": old, "new_text": new})),
        )
    };
    let before = std::fs::read(&path).unwrap();
    let answer = edit("println!(\"hi\");", "x").await;
    assert_problem(&answer, 409, "edit_conflict");
    assert!(
        answer.1["detail"].as_str().unwrap().contains("2 times"),
        "{}",
        answer.1
    );
    let answer = edit("absent", "x").await;
    assert_problem(&answer, 409, "edit_conflict");
    assert!(
        answer.1["detail"].as_str().unwrap().contains("0 times"),
        "{}",
        answer.1
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let (status, body) = edit("fn main() {", "fn main() -> () {").await;
    assert_eq!(status, 200, "{body}");
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.starts_with("fn main() -> () {\n"));
    assert_eq!(body["bytes"], after.len());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o751
    );
    assert_eq!(names(agent.dir.path()), vec!["code.rs"]);

    assert_problem(&edit("", "x").await, 400, "invalid_request");
    let answer = post_json(
        &agent,
        "/v1/files/edit",
        &[],
        Some(json!({"path": "missing", "old_text": "a", "new_text": "b"})),
    )
    .await;
    assert_problem(&answer, 404, "file_not_found");
    let answer = post_json(
        &agent,
        "/v1/files/edit",
        &[],
        Some(json!({"path": "code.rs"})),
    )
    .await;
    assert_problem(&answer, 400, "invalid_request");
}

#[tokio::test]
async fn writes_through_a_symlink_replace_its_target() {
    let agent = TestAgent::start().await;
    let root = agent.dir.path();
    std::fs::create_dir(root.join("real")).unwrap();
    std::fs::write(root.join("real/file"), "old").unwrap();
    symlink("real/file", root.join("link")).unwrap();
    assert_eq!(put(&agent, "link", "new").await.0, 200);
    assert!(root.join("link").is_symlink());
    assert_eq!(
        std::fs::read_to_string(root.join("real/file")).unwrap(),
        "new"
    );
    let answer = post_json(
        &agent,
        "/v1/files/edit",
        &[],
        Some(json!({"path": "link", "old_text": "new", "new_text": "edited"})),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(root.join("link").is_symlink());
    assert_eq!(
        std::fs::read_to_string(root.join("real/file")).unwrap(),
        "edited"
    );
}
