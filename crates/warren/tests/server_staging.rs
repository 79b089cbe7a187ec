//! Sandboxes are staged from the zygote's own mount namespace, which holds
//! none of the run directories the host has one of per sandbox: starting a
//! sandbox then copies a mount table that does not grow with the number of
//! sandboxes alive.

mod server_common;

use std::process::Command;

use serde_json::json;
use server_common::{TestServer, ADMIN_KEY};

/// The pid of the server's `__sandbox-zygote` child.
fn zygote_of(server_pid: u32) -> u32 {
    let children =
        std::fs::read_to_string(format!("/proc/{server_pid}/task/{server_pid}/children"))
            .unwrap_or_default();
    // The children of every thread of the server, not only its main one.
    let mut pids: Vec<u32> = children
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for task in std::fs::read_dir(format!("/proc/{server_pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let more = std::fs::read_to_string(task.join("children")).unwrap_or_default();
        pids.extend(
            more.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids.into_iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("__sandbox-zygote"))
                .unwrap_or(false)
        })
        .expect("the server has a zygote")
}

#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_are_staged_without_the_other_sandboxes_run_directories() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = server.create(ADMIN_KEY, json!({})).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (code, out) = server.sh(ADMIN_KEY, &id, "echo up").await;
        assert_eq!((code, out.trim()), (0, "up"), "sandbox {id}");
        ids.push(id);
    }

    // The host has a tmpfs on each sandbox's run directory.
    let host = server_common::mounts_under(&server.state_dir.join("run"));
    for id in &ids {
        assert!(
            host.iter().any(|m| m.ends_with(id.as_str())),
            "no run-dir mount of {id} on the host: {host:?}"
        );
    }

    // The zygote is in the host's mount namespace and holds a second one,
    // the staging namespace, in which none of them is mounted.
    let zygote = zygote_of(server.pid());
    let own = std::fs::read_link(format!("/proc/{zygote}/ns/mnt")).unwrap();
    let staging = std::fs::read_dir(format!("/proc/{zygote}/fd"))
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let target = std::fs::read_link(&path).ok()?;
            let target = target.to_string_lossy().into_owned();
            (target.starts_with("mnt:[") && std::path::Path::new(&target) != own).then_some(path)
        })
        .next()
        .expect("the zygote holds a staging mount namespace");
    let out = Command::new("nsenter")
        .arg(format!("--mount={}", staging.display()))
        .args(["cat", "/proc/self/mountinfo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.split(' ').nth(4) == Some("/")),
        "{table}"
    );
    for id in &ids {
        assert!(
            !table.contains(id.as_str()),
            "the staging namespace has {id}'s run directory: {table}"
        );
    }
    // Nor anything of the state directory (a loop-mounted pool held there
    // would stay busy after the server unmounts it).
    let state = server.state_dir.display().to_string();
    assert!(
        !table
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&state))),
        "the staging namespace has mounts of {state}: {table}"
    );
}
