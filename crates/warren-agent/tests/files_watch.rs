//! `/v1/files/watch`: SSE events for create, modify, rename and delete,
//! recursive watches that follow new directories, the watch limit, and
//! cleanup when the client goes away.

mod common;
mod files_support;

use std::io::Write;
use std::time::Duration;

use common::TestAgent;
use files_support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn watch(agent: &TestAgent, path: &str, recursive: bool) -> SseReader {
    let resp = agent
        .http
        .get(agent.url("/v1/files/watch"))
        .query(&[
            ("path", path),
            ("recursive", if recursive { "true" } else { "false" }),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut sse = SseReader::new(resp);
    let ready = sse.next(WAIT).await.expect("ready event");
    assert_eq!(ready.event, "ready");
    assert_eq!(ready.data["path"], path);
    assert_eq!(ready.data["recursive"], recursive);
    sse
}

/// Inotify instances this process holds.
fn inotify_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("inotify"))
        .count()
}

#[tokio::test]
async fn reports_create_modify_rename_delete() {
    let agent = TestAgent::start().await;
    let dir = agent.dir.path().join("w");
    std::fs::create_dir(&dir).unwrap();
    let mut sse = watch(&agent, "w", false).await;

    std::fs::write(dir.join("f"), "one").unwrap();
    let ev = sse.expect_fs("create", "w/f", WAIT).await;
    assert_eq!(ev.data["is_dir"], false);
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("f"))
        .unwrap()
        .write_all(b"two")
        .unwrap();
    sse.expect_fs("modify", "w/f", WAIT).await;
    std::fs::rename(dir.join("f"), dir.join("g")).unwrap();
    let ev = sse.expect_fs("rename", "w/g", WAIT).await;
    assert_eq!(ev.data["from"], "w/f");
    std::fs::remove_file(dir.join("g")).unwrap();
    sse.expect_fs("delete", "w/g", WAIT).await;
    std::fs::create_dir(dir.join("d")).unwrap();
    let ev = sse.expect_fs("create", "w/d", WAIT).await;
    assert_eq!(ev.data["is_dir"], true);

    // A write through the agent is atomic: its temporary file is not
    // reported, the target appears.
    assert_eq!(put(&agent, "w/put.txt", "x").await.0, 200);
    let ev = sse.expect_fs("create", "w/put.txt", WAIT).await;
    assert!(ev.data.get("from").is_none(), "{:?}", ev.data);
    // Not recursive: changes inside the subdirectory are not reported.
    std::fs::write(dir.join("d/inner"), "x").unwrap();
    std::fs::write(dir.join("marker"), "x").unwrap();
    loop {
        let ev = sse.next(WAIT).await.expect("marker event");
        assert_ne!(
            ev.data["path"], "w/d/inner",
            "non-recursive watch saw a nested change"
        );
        if ev.data["path"] == "w/marker" {
            break;
        }
    }
}

#[tokio::test]
async fn recursive_watch_follows_new_directories() {
    let agent = TestAgent::start().await;
    let root = agent.dir.path().join("r");
    std::fs::create_dir_all(root.join("old/sub")).unwrap();
    let mut sse = watch(&agent, "r", true).await;

    std::fs::write(root.join("old/sub/x"), "x").unwrap();
    sse.expect_fs("create", "r/old/sub/x", WAIT).await;
    std::fs::create_dir(root.join("a")).unwrap();
    sse.expect_fs("create", "r/a", WAIT).await;
    std::fs::write(root.join("a/inner"), "x").unwrap();
    sse.expect_fs("create", "r/a/inner", WAIT).await;
    // A tree made at once: whatever was created before its watch was
    // armed is still reported.
    std::fs::create_dir_all(root.join("b/c/d")).unwrap();
    std::fs::write(root.join("b/c/d/deep"), "x").unwrap();
    sse.expect_fs("create", "r/b/c/d/deep", WAIT).await;
    // A directory renamed inside the tree keeps being watched, under its new name.
    std::fs::rename(root.join("a"), root.join("z")).unwrap();
    let ev = sse.expect_fs("rename", "r/z", WAIT).await;
    assert_eq!(ev.data["from"], "r/a");
    std::fs::write(root.join("z/after"), "x").unwrap();
    sse.expect_fs("create", "r/z/after", WAIT).await;
    std::fs::remove_dir_all(root.join("b")).unwrap();
    sse.expect_fs("delete", "r/b", WAIT).await;
}

#[tokio::test]
async fn stream_ends_when_the_directory_goes() {
    let agent = TestAgent::start().await;
    std::fs::create_dir(agent.dir.path().join("gone")).unwrap();
    let mut sse = watch(&agent, "gone", false).await;
    std::fs::remove_dir(agent.dir.path().join("gone")).unwrap();
    let ev = sse.expect_fs("delete", "gone", WAIT).await;
    assert_eq!(ev.data["is_dir"], true);
    assert!(sse.next(WAIT).await.is_none(), "the stream should end");
}

#[tokio::test]
async fn watch_limit_and_cleanup() {
    let agent = TestAgent::start_with(|c| c.limits.max_watches = 1).await;
    let baseline = inotify_fds();
    let first = watch(&agent, ".", true).await;
    assert!(inotify_fds() > baseline);
    let answer = get_json(&agent, "/v1/files/watch", &[("path", ".")]).await;
    assert_problem(&answer, 429, "too_many_requests");

    // The client goes away: the watch and its inotify instance go too.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inotify_fds() != baseline {
        assert!(
            tokio::time::Instant::now() < deadline,
            "inotify instance not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _again = watch(&agent, ".", false).await;
}

#[tokio::test]
async fn watch_problems() {
    let agent = TestAgent::start().await;
    std::fs::write(agent.dir.path().join("file"), "x").unwrap();
    let answer = get_json(&agent, "/v1/files/watch", &[("path", "missing")]).await;
    assert_problem(&answer, 404, "file_not_found");
    let answer = get_json(&agent, "/v1/files/watch", &[("path", "file")]).await;
    assert_problem(&answer, 400, "not_a_directory");
    let answer = get_json(
        &agent,
        "/v1/files/watch",
        &[("path", "."), ("recursive", "yes")],
    )
    .await;
    assert_problem(&answer, 400, "invalid_request");
}
