//! Lifecycle on a real server: sandboxes outlive a `kill -9` of the server
//! and are reattached (the dead marked, orphans removed) by the next start;
//! the idle timeout stops a sandbox; the ttl destroys it; a stop signal at
//! any moment of start-up is a graceful stop; a server started under
//! `nohup` does not pass its ignored SIGHUP on to its sandboxes.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::json;
use server_common::{Options, TestServer, ADMIN_KEY};
use warren_runtime::storage::btrfs::BtrfsDriver;
use warren_runtime::storage::StorageDriver;
use warren_runtime::Runtime;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_restart_reattaches_marks_the_dead_and_removes_orphans() {
    let mut server = TestServer::start().await;
    let (_, key) = server.tenant("t", None).await;
    let alive = server
        .create(&key, json!({"labels": {"role": "alive"}}))
        .await;
    let doomed = server.create(&key, json!({})).await;
    let (alive, doomed) = (
        alive["id"].as_str().unwrap().to_string(),
        doomed["id"].as_str().unwrap().to_string(),
    );
    server.run(&key, &alive, "echo before > /root/state").await;
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{alive}/processes"),
            &key,
            Some(json!({"cmd": "sleep 300"})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let sleeper = proc_["id"].as_str().unwrap().to_string();

    server.kill9();
    let runtime = server.runtime();
    let agent_pid = runtime
        .pid(&alive)
        .expect("the sandbox outlives the server");
    // While the server is down: one sandbox dies, and an orphan disk appears
    // (as an interrupted create would leave).
    runtime.stop(&doomed).unwrap();
    let orphan = "sbx_orphanorphanorphanor";
    let orphan_disk = server.state_dir.join("pool/sandboxes").join(orphan);
    BtrfsDriver::new().create_volume(&orphan_disk).unwrap();

    server.spawn();
    let (status, sandbox) = server
        .call("GET", &format!("/v1/sandboxes/{alive}"), &key, None)
        .await;
    assert_eq!(
        (status, sandbox["state"].as_str()),
        (200, Some("running")),
        "{sandbox}"
    );
    assert_eq!(
        runtime.pid(&alive),
        Some(agent_pid),
        "reattached, not restarted"
    );
    let out = server.run(&key, &alive, "cat /root/state").await;
    assert_eq!(out["stdout"], "before\n");
    let (status, proc_) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{alive}/processes/{sleeper}"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        (status, proc_["state"].as_str()),
        (200, Some("running")),
        "{proc_}"
    );
    let (_, dead) = server
        .call("GET", &format!("/v1/sandboxes/{doomed}"), &key, None)
        .await;
    assert_eq!(dead["state"], "stopped", "{dead}");
    assert!(!orphan_disk.exists(), "the orphan disk was not removed");
    // The dead one starts again on its disk.
    let (status, started) = server
        .call("POST", &format!("/v1/sandboxes/{doomed}/start"), &key, None)
        .await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("running")),
        "{started}"
    );
    server.run(&key, &doomed, "true").await;
    let (_, list) = server
        .call("GET", "/v1/sandboxes?label=role=alive", &key, None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_and_not_its_sandboxes() {
    let mut server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    // An open stream does not hold the shutdown up for long.
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(json!({"cmd": "sleep 300"})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let follow = server
        .req(
            reqwest::Method::GET,
            &format!(
                "/v1/sandboxes/{id}/processes/{}/logs?follow=true",
                proc_["id"].as_str().unwrap()
            ),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(follow.status(), 200);
    let pid = server.runtime().pid(&id).expect("running");
    tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10)));
    drop(follow);
    assert_eq!(
        server.runtime().pid(&id),
        Some(pid),
        "the sandbox went down with the server"
    );
    server.spawn();
    let out = server.run(ADMIN_KEY, &id, "echo back").await;
    assert_eq!(out["stdout"], "back\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_idle_timeout_stops_a_sandbox() {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({"timeout_secs": 2})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    // Activity keeps it running past its timeout.
    let busy_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < busy_until {
        server.run(ADMIN_KEY, &id, "true").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let (_, still) = server
        .call("GET", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(still["state"], "running", "stopped while in use: {still}");
    // Idle: stopped within a few seconds of the timeout; the disk is kept.
    let (_, stopped) = server
        .wait_for(&id, Duration::from_secs(15), |_, s| s["state"] == "stopped")
        .await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(server.runtime().pid(&id), None);
    assert_eq!(server.sandbox_volumes(), vec![id.clone()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ttl_destroys_a_sandbox() {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({"ttl_secs": 2})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let (created, expires) = (
        sandbox["created_at"].as_str().unwrap(),
        sandbox["expires_at"].as_str().unwrap(),
    );
    assert!(
        expires > created,
        "expires_at {expires} is not after {created}"
    );
    let (status, gone) = server
        .wait_for(&id, Duration::from_secs(15), |status, _| status == 404)
        .await;
    assert_eq!(status, 404, "still there: {gone}");
    assert!(server.sandbox_volumes().is_empty());
    assert!(server.runtime().known().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_signal_during_start_up_is_a_graceful_stop() {
    // SIGTERM while the server is still starting (a service manager
    // stopping it right after a start): caught, and a clean exit once it
    // is up, never the default action's kill.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        stderr_file: Some(log.clone()),
        ..Options::default()
    })
    .await;
    for round in 0..3 {
        tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)));
        let _listening = server.spawn_process();
        // Its first log line: started, not yet listening.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
            assert!(Instant::now() < deadline, "round {round}: no log line");
            std::thread::sleep(Duration::from_millis(1));
        }
        let early = std::fs::read_to_string(&log).unwrap();
        assert!(
            !early.contains("warren server listening"),
            "round {round}: too late to test: {early}"
        );
        tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)));
        server.spawn();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_under_nohup_gives_its_sandboxes_default_signals() {
    let server = TestServer::start_with(Options {
        nohup: true,
        ..Options::default()
    })
    .await;
    let (_, key) = server.tenant("t", None).await;
    let id = server.create(&key, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // No signal ignored or blocked, in a process of the sandbox (but 32 and
    // 33, which glibc's posix_spawn leaves ignored in every child it makes
    // and keeps for itself)...
    let (code, out) = server
        .sh(&key, &id, "grep -E '^Sig(Ign|Blk):' /proc/self/status")
        .await;
    assert_eq!(code, 0, "{out}");
    let mask = |name: &str| {
        let line = out.lines().find_map(|l| l.strip_prefix(name)).expect(&out);
        u64::from_str_radix(line.trim(), 16).expect(&out)
    };
    let glibc_internal = (1u64 << 31) | (1 << 32);
    assert_eq!(mask("SigBlk:"), 0, "{out}");
    assert_eq!(
        mask("SigIgn:") & !glibc_internal,
        0,
        "a sandbox's process inherited the server's ignored signals: {out}"
    );
    // ...so a hang-up ends one (ignored, it would sleep its 20 s and exit 0).
    let (code, out) = server
        .sh(&key, &id, "sleep 20 & p=$!; kill -HUP $p; wait $p; echo $?")
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().any(|l| l == "129"),
        "SIGHUP did not end the process: {out}"
    );
}

/// The soft and hard "Max open files" of `pid`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_raises_its_open_file_limit_for_thousands_of_sandboxes() {
    use std::os::unix::process::CommandExt;
    let state = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_warren"));
    command
        .args(["server", "--listen", "127.0.0.1:0", "--storage", "copy"])
        .args(["--no-network", "--pool", "base=0", "--cgroup-parent"])
        .arg(format!("warren-test-fds-{}", std::process::id()))
        .arg("--state-dir")
        .arg(state.path())
        .env("WARREN_ADMIN_KEY", ADMIN_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) },
        0
    );
    let hard = hard.rlim_max;
    assert!(hard > 1024, "this test needs a hard limit over 1024");
    // SAFETY: setrlimit is async-signal-safe and touches no parent memory.
    unsafe {
        command.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let limits = loop {
        let limits = open_file_limits(pid);
        if limits.0 != "1024" || std::time::Instant::now() > deadline {
            break limits;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(limits, (hard.to_string(), hard.to_string()));
}
