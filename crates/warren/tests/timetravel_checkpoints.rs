//! Time travel through a real server on real sandboxes: checkpoints, restore
//! in place (history branches, `discard_later`), forks, wipe, tenant
//! isolation, `from_checkpoint`, and what outlives what.

mod server_common;

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

async fn checkpoint(server: &TestServer, key: &str, sbx: &str, body: Value) -> Value {
    let (status, ckpt) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            key,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "checkpoint: {ckpt}");
    ckpt
}

async fn names(server: &TestServer, key: &str, sbx: &str) -> Vec<String> {
    let (status, list) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

async fn stdout(server: &TestServer, key: &str, sbx: &str, cmd: &str) -> String {
    server.run(key, sbx, cmd).await["stdout"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_in_place_branches_history_and_forks_diverge() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("alpha", None).await;
    let (_, other) = server.tenant("beta", None).await;
    let sbx = id_of(
        &server
            .create(
                &key,
                json!({"envs": {"COLOUR": "teal"}, "metadata": {"owner": "me"}}),
            )
            .await,
    );

    server.run(&key, &sbx, "echo one > /root/f").await;
    let first = checkpoint(&server, &key, &sbx, json!({"name": "first"})).await;
    let first_id = id_of(&first);
    assert!(first_id.starts_with("ckpt_"), "{first}");
    assert_eq!(first["name"], "first");
    assert_eq!(first["sandbox_id"], sbx.as_str());
    assert_eq!(first["template"], "base");
    assert_eq!(first["auto"], false);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(first.get("command").is_none(), "{first}");

    server
        .run(&key, &sbx, "echo two > /root/f; echo late > /root/late")
        .await;
    // An empty body is fine: the name defaults.
    let (status, second) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 201, "{second}");
    let second_id = id_of(&second);
    assert!(second["name"].as_str().unwrap().starts_with("manual_"));
    assert_eq!(
        names(&server, &key, &sbx).await,
        ["first", second["name"].as_str().unwrap()]
    );

    // Another tenant sees none of it.
    for path in [
        format!("/v1/checkpoints/{first_id}"),
        format!("/v1/checkpoints/{first_id}/patches"),
    ] {
        let (status, problem) = server.call("GET", &path, &other, None).await;
        assert_eq!(status, 404, "{path}: {problem}");
        assert_eq!(problem["code"], "checkpoint_not_found");
    }
    let (status, problem) = server
        .call(
            "DELETE",
            &format!("/v1/checkpoints/{first_id}"),
            &other,
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("checkpoint_not_found"))
    );
    let (status, problem) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            &other,
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("sandbox_not_found"))
    );
    let (status, list) = server.call("GET", "/v1/checkpoints", &other, None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 0));
    let (status, _) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &other,
            Some(json!({"from_checkpoint": first_id})),
        )
        .await;
    assert_eq!(status, 404, "another tenant's checkpoint is not found");

    // Restore in place: same id, env and metadata; the later file is gone.
    let (status, restored) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/restore"),
            &key,
            Some(json!({"checkpoint_id": first_id})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["id"], sbx.as_str());
    assert_eq!(restored["state"], "running");
    assert_eq!(restored["metadata"]["owner"], "me");
    assert_eq!(
        stdout(
            &server,
            &key,
            &sbx,
            "cat /root/f; ls /root/late 2>&1; echo $COLOUR"
        )
        .await,
        "one\nls: cannot access '/root/late': No such file or directory\nteal\n"
    );
    // History branches: the later checkpoint is still there and can be
    // restored too.
    assert_eq!(names(&server, &key, &sbx).await.len(), 2);
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/restore"),
            &key,
            Some(json!({"checkpoint_id": second_id})),
        )
        .await;
    assert_eq!(
        stdout(&server, &key, &sbx, "cat /root/f /root/late").await,
        "two\nlate\n"
    );
    // discard_later drops what came after.
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/restore"),
            &key,
            Some(json!({"checkpoint_id": first_id, "discard_later": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(names(&server, &key, &sbx).await, ["first"]);
    let (status, _) = server
        .call("GET", &format!("/v1/checkpoints/{second_id}"), &key, None)
        .await;
    assert_eq!(status, 404);

    // Forks: independent copies of the moment.
    let (status, forked) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/fork"),
            &key,
            Some(json!({"count": 2})),
        )
        .await;
    assert_eq!(status, 201, "{forked}");
    let forks: Vec<String> = forked["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(forks.len(), 2);
    assert!(forks.iter().all(|f| f != &sbx) && forks[0] != forks[1]);
    for item in forked["items"].as_array().unwrap() {
        assert_eq!(item["state"], "running");
        assert_eq!(item["metadata"]["owner"], "me", "forks keep metadata");
    }
    let fork_ckpt = forked["checkpoint_id"].as_str().unwrap().to_string();
    for (fork, word) in forks.iter().zip(["left", "right"]) {
        server
            .run(&key, fork, &format!("echo {word} > /root/f"))
            .await;
    }
    for (fork, word) in forks.iter().zip(["left", "right"]) {
        assert_eq!(
            stdout(&server, &key, fork, "cat /root/f; echo $COLOUR").await,
            format!("{word}\nteal\n")
        );
    }
    assert_eq!(stdout(&server, &key, &sbx, "cat /root/f").await, "one\n");

    // Deleting the checkpoint leaves its forks working.
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/checkpoints/{fork_ckpt}"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = server
        .call("GET", &format!("/v1/checkpoints/{fork_ckpt}"), &key, None)
        .await;
    assert_eq!(status, 404);
    assert!(!server
        .state_dir
        .join("pool/checkpoints")
        .join(&fork_ckpt)
        .exists());
    for (fork, word) in forks.iter().zip(["left", "right"]) {
        server.run(&key, fork, "echo more >> /root/f").await;
        assert_eq!(
            stdout(&server, &key, fork, "cat /root/f").await,
            format!("{word}\nmore\n")
        );
    }

    // from_checkpoint: a new sandbox with the checkpoint's disk and env.
    let (status, problem) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &key,
            Some(json!({"from_checkpoint": first_id, "template": "other"})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request")),
        "{problem}"
    );
    let made = server
        .create(
            &key,
            json!({"from_checkpoint": first_id, "envs": {"EXTRA": "1"}}),
        )
        .await;
    assert_eq!(made["from_checkpoint"], first_id.as_str());
    assert_eq!(made["template"], "base");
    let made = id_of(&made);
    assert_eq!(
        stdout(&server, &key, &made, "cat /root/f; echo $COLOUR $EXTRA").await,
        "one\nteal 1\n"
    );

    // Wipe: back to the template, no checkpoint taken.
    let (status, wiped) = server
        .call("POST", &format!("/v1/sandboxes/{made}/wipe"), &key, None)
        .await;
    assert_eq!(status, 200, "{wiped}");
    assert_eq!(wiped["id"], made.as_str());
    assert_eq!(
        server.run(&key, &made, "cat /root/f").await["exit_code"],
        1,
        "the file is gone after a wipe"
    );
    assert_eq!(names(&server, &key, &made).await.len(), 0);

    // A named checkpoint outlives its sandbox and still makes sandboxes.
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{sbx}"), &key, None)
        .await;
    assert_eq!(status, 204);
    let (status, kept) = server
        .call("GET", &format!("/v1/checkpoints/{first_id}"), &key, None)
        .await;
    assert_eq!(status, 200, "{kept}");
    let (status, list) = server
        .call(
            "GET",
            &format!("/v1/checkpoints?sandbox_id={sbx}"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let again = id_of(
        &server
            .create(&key, json!({"from_checkpoint": first_id}))
            .await,
    );
    assert_eq!(stdout(&server, &key, &again, "cat /root/f").await, "one\n");

    // Bad input gets problems, not 500s.
    for (path, body, code) in [
        (
            format!("/v1/sandboxes/{made}/restore"),
            json!({"checkpoint_id": "ckpt_nope"}),
            "checkpoint_not_found",
        ),
        (
            format!("/v1/sandboxes/{made}/restore"),
            json!({}),
            "invalid_request",
        ),
        (
            format!("/v1/sandboxes/{made}/fork"),
            json!({"count": 0}),
            "invalid_request",
        ),
        (
            format!("/v1/sandboxes/{made}/checkpoints"),
            json!({"name": "a\u{7}b"}),
            "invalid_request",
        ),
        (
            format!("/v1/sandboxes/{made}/checkpoints"),
            json!({"colour": "red"}),
            "invalid_request",
        ),
        (
            "/v1/sandboxes/sbx_aaaaaaaaaaaaaaaaaaaa/checkpoints".to_string(),
            json!({}),
            "sandbox_not_found",
        ),
    ] {
        let (status, problem) = server.call("POST", &path, &key, Some(body)).await;
        assert_eq!(problem["code"], code, "{path}: {status} {problem}");
    }
    let (status, problem) = server
        .call(
            "POST",
            "/v1/sandboxes",
            &key,
            Some(json!({"auto_checkpoint_keep": 0})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");

    // The admin sees every tenant's checkpoints.
    let (status, all) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{first_id}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{all}");
}

/// The source's latest tick (its clock loop writes one every 10 ms).
async fn tick(server: &TestServer, key: &str, sbx: &str) -> u64 {
    // 0 until the loop has written its first.
    let out = stdout(server, key, sbx, "cat /root/tick 2>/dev/null || echo 0").await;
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("a tick, not {out:?}"))
}

/// Waits (5 s at most) until the source's clock loop has ticked past `after`.
async fn ticks_past(server: &TestServer, key: &str, sbx: &str, after: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = tick(server, key, sbx).await;
        if now > after {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the source stays frozen after a fork (tick {now})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A fork of one sandbox starts while its checkpoint is taken: the child
/// and the checkpoint must still hold the source's disk of one moment, the
/// source must run on, and a refused fork must leave nothing behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_fork_of_one_and_its_checkpoint_hold_one_moment_and_a_refused_one_leaves_nothing() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("gamma", Some(3)).await;
    let sbx = id_of(
        &server
            .create(&key, json!({"metadata": {"team": "red"}}))
            .await,
    );
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/processes"),
            &key,
            Some(json!({"cmd": "n=0; while true; do n=$((n+1)); echo $n > /root/tick.new; mv /root/tick.new /root/tick; sleep 0.01; done"})),
        )
        .await;
    assert_eq!(status, 201);
    let first = ticks_past(&server, &key, &sbx, 0).await;
    server.run(&key, &sbx, "echo before > /root/f").await;

    let (status, forked) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/fork"),
            &key,
            Some(json!({"name": "one"})),
        )
        .await;
    assert_eq!(status, 201, "{forked}");
    let items = forked["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{forked}");
    let child = id_of(&items[0]);
    let ckpt = forked["checkpoint_id"].as_str().unwrap().to_string();
    assert_eq!(items[0]["metadata"]["team"], "red", "{forked}");
    assert_eq!(items[0]["from_checkpoint"], ckpt.as_str(), "{forked}");
    assert_eq!(items[0]["state"], "running", "{forked}");

    // The source was thawed: its clock runs on.
    let at_fork = tick(&server, &key, &sbx).await;
    assert!(at_fork >= first);
    ticks_past(&server, &key, &sbx, at_fork).await;

    // The checkpoint is recorded when the fork answers, and holds what the
    // child holds: the file, and the clock's tick of the same moment.
    let (status, got) = server
        .call("GET", &format!("/v1/checkpoints/{ckpt}"), &key, None)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["name"], "one");
    assert_eq!(got["sandbox_id"], sbx.as_str());
    assert_eq!(names(&server, &key, &sbx).await, vec!["one".to_string()]);
    let from = id_of(&server.create(&key, json!({"from_checkpoint": ckpt})).await);
    let child_state = stdout(&server, &key, &child, "cat /root/f /root/tick").await;
    assert_eq!(
        stdout(&server, &key, &from, "cat /root/f /root/tick").await,
        child_state,
        "the fork and its checkpoint hold one moment"
    );
    assert!(child_state.starts_with("before\n"), "{child_state}");

    // Then they diverge.
    server.run(&key, &sbx, "echo after > /root/f").await;
    server.run(&key, &child, "echo child > /root/f").await;
    assert_eq!(stdout(&server, &key, &sbx, "cat /root/f").await, "after\n");
    assert_eq!(
        stdout(&server, &key, &child, "cat /root/f").await,
        "child\n"
    );
    assert_eq!(
        stdout(&server, &key, &from, "cat /root/f").await,
        "before\n"
    );

    // At its quota (3 sandboxes), the tenant's fork is refused, and leaves
    // no checkpoint, volume or frozen source behind.
    let volumes = server.sandbox_volumes();
    let checkpoint_dir = server.state_dir.join("pool/checkpoints");
    let checkpoints = server_common::list_dir(&checkpoint_dir);
    let (status, refused) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/fork"),
            &key,
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(refused["code"], "quota_exceeded", "{status} {refused}");
    assert_eq!(server.sandbox_volumes(), volumes);
    assert_eq!(server_common::list_dir(&checkpoint_dir), checkpoints);
    assert_eq!(names(&server, &key, &sbx).await, vec!["one".to_string()]);
    let now = tick(&server, &key, &sbx).await;
    ticks_past(&server, &key, &sbx, now).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_checkpointed_sandbox_survives_rm_rf_by_restoring() {
    let server = TestServer::start().await;
    let sbx = server
        .create(
            ADMIN_KEY,
            json!({"auto_checkpoint": true, "auto_checkpoint_keep": 3}),
        )
        .await;
    assert_eq!(sbx["auto_checkpoint"], true);
    assert_eq!(sbx["auto_checkpoint_keep"], 3);
    let sbx = id_of(&sbx);

    let before = server
        .run(
            ADMIN_KEY,
            &sbx,
            "mkdir -p /home/ann && echo notes > /home/ann/notes && echo keep > /root/keep",
        )
        .await;
    let before_ckpt = before["checkpoint"]
        .as_str()
        .expect("a checkpoint id")
        .to_string();
    assert!(before_ckpt.starts_with("ckpt_"), "{before}");
    // /etc/hosts is a mount (bound from the run directory, as in Docker),
    // which rm cannot remove: everything else in /etc goes.
    let wreck = "rm -rf /home /etc 2>/dev/null; test ! -e /etc/os-release && test ! -e /home";
    let disaster = server.run(ADMIN_KEY, &sbx, wreck).await;
    assert_eq!(disaster["exit_code"], 0, "{disaster}");
    assert!(disaster["checkpoint"].as_str().is_some());
    let broken = server.run(ADMIN_KEY, &sbx, "cat /etc/os-release").await;
    assert_ne!(broken["exit_code"], 0, "/etc is gone");

    let (status, ckpt) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{before_ckpt}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(ckpt["name"].as_str().unwrap().starts_with("cmd_"), "{ckpt}");
    assert_eq!(ckpt["auto"], true);
    assert_eq!(ckpt["exit_code"], 0);
    assert!(ckpt["command"]
        .as_str()
        .unwrap()
        .starts_with("mkdir -p /home/ann"));
    let (_, after) = server
        .call(
            "GET",
            &format!(
                "/v1/checkpoints/{}",
                disaster["checkpoint"].as_str().unwrap()
            ),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(after["command"], wreck);

    let (status, restored) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/restore"),
            ADMIN_KEY,
            Some(json!({"checkpoint_id": before_ckpt})),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    let healed = server
        .run(
            ADMIN_KEY,
            &sbx,
            "grep -q Debian /etc/os-release && echo ok; cat /home/ann/notes /root/keep",
        )
        .await;
    assert_eq!(healed["stdout"], "ok\nnotes\nkeep\n", "{healed}");

    // A failing command is still a completed run: checkpointed with its code.
    let failed = server.run(ADMIN_KEY, &sbx, "exit 3").await;
    let (_, ckpt) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{}", failed["checkpoint"].as_str().unwrap()),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(ckpt["exit_code"], 3);
    // A refused request (no command) takes none and passes through.
    let (status, problem) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/processes/run"),
            ADMIN_KEY,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400, "{problem}");

    // Retention keeps the newest 3 automatic checkpoints.
    let mut last = Vec::new();
    for i in 0..4 {
        let out = server.run(ADMIN_KEY, &sbx, &format!("echo {i}")).await;
        last.push(out["checkpoint"].as_str().unwrap().to_string());
    }
    let (_, list) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            ADMIN_KEY,
            None,
        )
        .await;
    let kept: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(kept, last[1..], "{list}");
    assert_eq!(
        server_common::list_dir(&server.state_dir.join("pool/checkpoints")).len(),
        3,
        "older volumes are deleted too"
    );
    // A named checkpoint is not subject to retention.
    let named = id_of(&checkpoint(&server, ADMIN_KEY, &sbx, json!({"name": "mine"})).await);
    for _ in 0..4 {
        server.run(ADMIN_KEY, &sbx, "true").await;
    }
    let (status, _) = server
        .call("GET", &format!("/v1/checkpoints/{named}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200);

    // Automatic checkpoints go with their sandbox; named ones stay.
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{sbx}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
    let (_, list) = server
        .call(
            "GET",
            &format!("/v1/checkpoints?sandbox_id={sbx}"),
            ADMIN_KEY,
            None,
        )
        .await;
    let left: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(left, std::slice::from_ref(&named));
    assert_eq!(
        server_common::list_dir(&server.state_dir.join("pool/checkpoints")),
        [named]
    );
}

/// Every 16-byte line of a 1 MiB version written by the writer below, or a
/// description of how the file is torn.
fn version_of(data: &[u8]) -> Result<u64, String> {
    if data.len() != 1 << 20 {
        return Err(format!("{} bytes, not 1 MiB", data.len()));
    }
    let first = &data[..16];
    if let Some(at) = data.chunks(16).position(|line| line != first) {
        return Err(format!(
            "torn at byte {}: {:?} then {:?}",
            at * 16,
            String::from_utf8_lossy(first),
            String::from_utf8_lossy(&data[at * 16..at * 16 + 16])
        ));
    }
    std::str::from_utf8(&first[..15])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not a version line: {first:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_of_a_file_rewritten_in_a_loop_holds_one_whole_version() {
    let server = TestServer::start().await;
    let sbx = id_of(&server.create(ADMIN_KEY, json!({})).await);
    // Rewrites the same 1 MiB in place, one pwrite per version, as fast as
    // it can: each version is 65536 copies of its 16-byte number line.
    let writer = "import os\n\
        fd = os.open('/root/f', os.O_RDWR | os.O_CREAT, 0o644)\n\
        i = 0\n\
        while True:\n\
        \x20   i += 1\n\
        \x20   os.pwrite(fd, (b'%015d\\n' % i) * 65536, 0)\n";
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/processes"),
            ADMIN_KEY,
            Some(json!({"argv": ["python3", "-c", writer]})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let progress = || async {
        let out = server.run(ADMIN_KEY, &sbx, "head -c 15 /root/f").await;
        out["stdout"]
            .as_str()
            .unwrap_or_default()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while progress().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut versions = Vec::new();
    let mut last = String::new();
    for i in 0..20 {
        let ckpt =
            id_of(&checkpoint(&server, ADMIN_KEY, &sbx, json!({"name": format!("c{i}")})).await);
        let data = std::fs::read(
            server
                .state_dir
                .join("pool/checkpoints")
                .join(&ckpt)
                .join("root/f"),
        )
        .expect("the checkpoint's copy of the file");
        versions.push(version_of(&data).unwrap_or_else(|torn| panic!("checkpoint {i}: {torn}")));
        last = ckpt;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    versions.dedup();
    assert!(
        versions.len() > 1,
        "the writer ran between checkpoints: {versions:?}"
    );
    // Thawed after each: the writer goes on.
    let before = progress().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(progress().await > before, "the writer was left frozen");

    // A sandbox made from the checkpoint reads the same whole version.
    let made = id_of(
        &server
            .create(ADMIN_KEY, json!({"from_checkpoint": last}))
            .await,
    );
    let resp = server
        .req(
            reqwest::Method::GET,
            &format!("/v1/sandboxes/{made}/files?path=/root/f"),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let data = resp.bytes().await.unwrap();
    assert_eq!(version_of(&data), Ok(*versions.last().unwrap()));
}
