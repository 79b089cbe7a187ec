//! Recovery from what breaks a sandbox behind the API's back:
//! - a server killed between a checkpoint's freeze and its thaw leaves the
//!   sandbox frozen; the next start finds it and thaws it, so the sandbox
//!   answers again instead of hanging every request forever;
//! - the agent (the sandbox's PID 1) killed from outside: the sandbox goes
//!   to `error` (one found running after a restart too), and `start` brings
//!   it back on its kept disk;
//! - a server killed in the middle of a template build: the build's step
//!   dies with it, and the next start removes its temporary volume.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::json;
use server_common::{TestServer, ADMIN_KEY};
use warren_runtime::Runtime;

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_thaws_sandboxes_a_crash_left_frozen() {
    let mut server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    server.run(ADMIN_KEY, &id, "echo before > /root/f").await;

    // What a crash mid-checkpoint leaves: the freezer on, the server gone.
    let runtime = server.runtime();
    runtime.freeze(&id).expect("freezing the sandbox");
    assert!(runtime.is_frozen(&id));
    server.kill9();
    server.spawn();

    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
        )
        .json(&json!({"cmd": "cat /root/f"}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("a run after the restart answers (the sandbox is not frozen)");
    assert_eq!(resp.status(), 200);
    let out: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(out["stdout"], "before\n");
    assert!(!runtime.is_frozen(&id), "the sandbox is still frozen");
    let (status, body) = server
        .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("running")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_agent_puts_the_sandbox_in_error_and_start_recovers_it() {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    server.run(ADMIN_KEY, &id, "echo kept > /root/f").await;

    kill_agent(&server, &id);
    let (_, body) = server
        .wait_for(&id, Duration::from_secs(60), |_, b| b["state"] == "error")
        .await;
    assert_eq!(
        body["state"], "error",
        "a sandbox without its agent: {body}"
    );
    let (status, answer) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes/run"),
            ADMIN_KEY,
            Some(json!({"cmd": "true"})),
        )
        .await;
    assert_eq!(status, 409, "a run in a failed sandbox: {answer}");

    let (status, started) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/start"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("running")),
        "{started}"
    );
    let out = server.run(ADMIN_KEY, &id, "cat /root/f").await;
    assert_eq!(out["stdout"], "kept\n");
}

/// A sandbox found running by a restarted server is watched as one it
/// started: its agent killed after the restart puts it in `error` too.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_killed_after_a_restart_puts_its_sandbox_in_error() {
    let mut server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    server.kill9();
    // The server listens once it has reconciled (and watched) the sandbox.
    server.spawn();
    let out = server.run(ADMIN_KEY, &id, "echo reattached").await;
    assert_eq!(out["stdout"], "reattached\n");

    kill_agent(&server, &id);
    let (_, body) = server
        .wait_for(&id, Duration::from_secs(30), |_, b| b["state"] == "error")
        .await;
    assert_eq!(body["state"], "error", "{body}");
}

/// SIGKILLs the sandbox's agent, its PID 1, from the host.
fn kill_agent(server: &TestServer, id: &str) {
    let agent = server.runtime().pid(id).expect("the agent's host pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killing the agent");
}

/// Host pids whose root directory is one of the volumes in `dir` (a build
/// step chrooted into a temporary volume).
fn rooted_under(dir: &std::path::Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    // By inode: a step sees its root through a bind mount of its own, so
    // the path its root shows is not the volume's.
    let volumes: Vec<(u64, u64)> = server_common::list_dir(dir)
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/root"))
                .is_ok_and(|root| volumes.contains(&(root.dev(), root.ino())))
        })
        .collect()
}

/// Names in the pool's tmp/ other than lock files.
fn tmp_leftovers(server: &TestServer) -> Vec<String> {
    server_common::list_dir(&server.state_dir.join("pool/tmp"))
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_in_a_template_build_leaves_nothing_after_the_restart() {
    let mut server = TestServer::start().await;
    let build = server
        .req(reqwest::Method::POST, "/v1/templates/slow/build", ADMIN_KEY)
        .body("run = [\"touch /started; sleep 300\"]")
        .send();
    let build = tokio::spawn(build);

    // Wait for the step to run in its temporary volume.
    let tmp = server.state_dir.join("pool/tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    let step = loop {
        let pids = rooted_under(&tmp);
        if !pids.is_empty() {
            break pids;
        }
        assert!(Instant::now() < deadline, "the build step never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!tmp_leftovers(&server).is_empty());

    server.kill9();
    let _ = build.await;
    // The step dies with the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while step
        .iter()
        .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "build step {step:?} outlived the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.spawn();
    assert_eq!(tmp_leftovers(&server), Vec::<String>::new());
    let (status, templates) = server.call("GET", "/v1/templates", ADMIN_KEY, None).await;
    assert_eq!(status, 200, "{templates}");
    assert!(
        !templates.to_string().contains("\"slow\""),
        "a template whose build was cut exists: {templates}"
    );
}
