//! 200 create/delete cycles through a real server leave nothing behind: no
//! mount, subvolume, cgroup, loop device, run directory or process.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::json;
use server_common::{TestServer, ADMIN_KEY};

const CYCLES: usize = 200;
/// Cycles run by this many clients at once (sequential within each).
const WORKERS: usize = 4;

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_create_delete_cycles_leave_nothing_behind() {
    let server = TestServer::start().await;
    // Loop devices of this server's state dir (other processes on the
    // machine may attach their own meanwhile).
    let state = server.state_dir.display().to_string();
    let own_loops = || {
        server_common::loop_devices()
            .into_iter()
            .filter(|l| l.contains(&state))
            .collect::<Vec<_>>()
    };
    let loops_before = own_loops();
    let mounts_before = server_common::mounts_under(&server.state_dir);
    let begun = Instant::now();
    let worker = |w: usize| {
        let server = &server;
        async move {
            for i in 0..CYCLES / WORKERS {
                let sandbox = server.create(ADMIN_KEY, json!({})).await;
                let id = sandbox["id"].as_str().unwrap();
                // Every few cycles, do some work in it first.
                if i % 10 == w {
                    server
                        .run(ADMIN_KEY, id, "echo x > /root/f; sleep 0.01 &")
                        .await;
                }
                let (status, body) = server
                    .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
                    .await;
                assert_eq!(status, 204, "{body}");
            }
        }
    };
    futures::future::join_all((0..WORKERS).map(worker)).await;
    eprintln!("{CYCLES} cycles in {:?}", begun.elapsed());

    let (_, list) = server.call("GET", "/v1/sandboxes", ADMIN_KEY, None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    assert!(
        server.sandbox_volumes().is_empty(),
        "{:?}",
        server.sandbox_volumes()
    );
    let trash = server.trash_after_quiet().await;
    assert!(trash.is_empty(), "deleted disks never deleted: {trash:?}");
    assert!(server.run_dirs().is_empty(), "{:?}", server.run_dirs());
    assert!(
        server.runtime().known().is_empty(),
        "{:?}",
        server.runtime().known()
    );
    // A sandbox's init is reparented to the host's init when its helper
    // exits, so the host's init reaps it; give it a moment to.
    let reaped_by = Instant::now() + Duration::from_secs(20);
    while !server_common::processes_in(&server.cgroup_parent).is_empty()
        && Instant::now() < reaped_by
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "every sandbox process gone {:?} after the first create",
        begun.elapsed()
    );
    assert_eq!(
        server_common::processes_in(&server.cgroup_parent),
        Vec::<i32>::new()
    );
    // Nothing but the zygote's spare cgroups (made ahead of starts, a few
    // at most, removed with it).
    for dir in server_common::cgroup_dirs(&server.cgroup_parent) {
        let (spares, children): (Vec<_>, Vec<_>) = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .partition(|name| name.starts_with(warren_runtime::cgroups::SPARE_PREFIX));
        assert!(children.is_empty(), "{}: {children:?}", dir.display());
        assert!(
            spares.len() <= warren_runtime::namespaces::shells::KEEP,
            "{}: {spares:?}",
            dir.display()
        );
    }
    assert_eq!(
        server_common::mounts_under(&server.state_dir),
        mounts_before
    );
    assert_eq!(own_loops(), loops_before);
    let (_, metrics) = server.call("GET", "/metrics", ADMIN_KEY, None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains(&format!(
            "warren_sandbox_create_duration_seconds_count {CYCLES}"
        )),
        "{metrics}"
    );
}
