//! The Rust SDK (`warren-client`) against a real server: sandboxes and
//! their lifecycle, output as a Stream, stdin and signals, files (streamed
//! both ways, tar in and out), the PTY handle, time travel, and errors that
//! carry the problem code. Also runs the Rust quickstart of `docs/`.

mod server_common;

#[allow(dead_code)]
#[path = "../../warren-client/examples/quickstart.rs"]
mod quickstart;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use server_common::{TestServer, ADMIN_KEY};
use warren_client::{
    Client, CreatePatchRequest, CreateSandboxRequest, Error, ErrorCode, ListFilter, OutputEvent,
    PatchSandboxRequest, PreviewAuth, PtyEvent, PtyOptions, SandboxState, SignalSpec, StartRequest,
    StreamKind, WatchItem,
};

fn client(server: &TestServer) -> Client {
    Client::new(&server.base, Some(ADMIN_KEY)).expect("client")
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_quickstart_runs() {
    let server = TestServer::start().await;
    quickstart::quickstart(&client(&server))
        .await
        .expect("the quickstart");
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/quickstart-rust.md"
    ))
    .expect("docs/quickstart-rust.md");
    let example = include_str!("../../warren-client/examples/quickstart.rs");
    let body = example
        .split_once("/// Every step of the quickstart, on `client`.\n")
        .expect("marker")
        .1;
    assert!(
        doc.contains(body.trim()),
        "docs/quickstart-rust.md must show examples/quickstart.rs as it is"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_processes_and_errors() {
    let server = TestServer::start().await;
    let client = client(&server);

    let mut sandbox = client
        .create(&CreateSandboxRequest {
            labels: labels(&[("suite", "client")]),
            envs: labels(&[("GREETING", "hey")]),
            ttl_secs: Some(600),
            ..CreateSandboxRequest::default()
        })
        .await
        .expect("create");
    assert_eq!(sandbox.info().unwrap().state, SandboxState::Running);
    let other = client
        .create(&CreateSandboxRequest::default())
        .await
        .unwrap();

    // Lists: filters, pages.
    let filter = ListFilter {
        labels: vec![("suite".into(), "client".into())],
        ..ListFilter::default()
    };
    let page = client.list(&filter).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, sandbox.id());
    let first = client
        .list(&ListFilter {
            limit: Some(1),
            ..ListFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert!(first.next_cursor.is_some());
    let all = client.list_all(&ListFilter::default()).await.unwrap();
    let mut ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    let mut want = vec![sandbox.id(), other.id()];
    want.sort();
    assert_eq!(ids, want);

    // Patch, extend, timeout.
    let patched = sandbox
        .patch(&PatchSandboxRequest {
            metadata: labels(&[("owner", "tests")]),
            ..PatchSandboxRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(patched.metadata["owner"], "tests");
    let before = sandbox.info().unwrap().expires_at.clone().unwrap();
    let after = sandbox
        .extend(3600)
        .await
        .unwrap()
        .expires_at
        .clone()
        .unwrap();
    assert!(after > before, "{after} > {before}");
    assert_eq!(sandbox.set_timeout(900).await.unwrap().timeout_secs, 900);

    // run, spawn with a Stream of output in order, exit codes.
    let out = sandbox.run("echo $GREETING; exit 4").await.unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), ("hey\n", Some(4)));
    let process = sandbox
        .spawn("echo a; echo b >&2; printf '\\377'; exit 9")
        .await
        .unwrap();
    let events: Vec<OutputEvent> = process.output().map(|e| e.expect("event")).collect().await;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    for event in &events[..events.len() - 1] {
        match event {
            OutputEvent::Output {
                stream: StreamKind::Stdout,
                data,
                ..
            } => stdout.extend_from_slice(data),
            OutputEvent::Output { data, .. } => stderr.extend_from_slice(data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stdout, b"a\n\xff", "binary output survives");
    assert_eq!(stderr, b"b\n");
    let OutputEvent::Exit(status) = events.last().unwrap() else {
        panic!("the stream ends with exit: {events:?}");
    };
    assert_eq!(status.exit_code, Some(9));
    // Resuming from a cursor replays from that byte on. (Which of stdout
    // and stderr came first is a race between two pipes, so compare with
    // what the first read saw from the second chunk's cursor.)
    let chunks: Vec<(u64, Vec<u8>)> = events
        .iter()
        .filter_map(|e| match e {
            OutputEvent::Output { cursor, data, .. } => Some((*cursor, data.to_vec())),
            _ => None,
        })
        .collect();
    assert!(chunks.len() >= 2, "{events:?}");
    let from = chunks[1].0;
    assert!(from > 0);
    let expected: Vec<u8> = chunks[1..].iter().flat_map(|(_, d)| d.clone()).collect();
    let resumed: Vec<OutputEvent> = process
        .output_from(from)
        .map(|e| e.expect("event"))
        .collect()
        .await;
    let OutputEvent::Output { cursor, .. } = &resumed[0] else {
        panic!("{resumed:?}");
    };
    assert_eq!(*cursor, from);
    let replayed: Vec<u8> = resumed
        .iter()
        .filter_map(|e| match e {
            OutputEvent::Output { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(replayed, expected, "the replay from cursor {from}");
    assert!(matches!(resumed.last(), Some(OutputEvent::Exit(_))));
    let shown = format!("{client:?}");
    assert!(
        !shown.contains(ADMIN_KEY) && shown.contains("redacted"),
        "{shown}"
    );

    // stdin, signals, wait.
    let cat = sandbox
        .spawn_with(&StartRequest {
            argv: Some(vec!["cat".into()]),
            ..StartRequest::default()
        })
        .await
        .unwrap();
    cat.write_stdin(b"one ").await.unwrap();
    cat.close_stdin(b"two\n").await.unwrap();
    let mut cat = cat;
    assert_eq!(cat.wait().await.unwrap().exit_code, Some(0));
    let logs = cat.logs(0).await.unwrap();
    let text: String = logs
        .chunks
        .iter()
        .map(|c| String::from_utf8(warren_client::chunk_bytes(c).unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(text, "one two\n");
    let mut sleeper = sandbox.spawn("sleep 600").await.unwrap();
    sleeper
        .signal(SignalSpec::Name("SIGTERM".into()))
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), sleeper.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!((status.exit_code, status.signal), (None, Some(15)));
    assert_eq!(status.code(), 143);
    let listed = sandbox.processes().await.unwrap();
    assert!(listed.iter().any(|p| p.id == sleeper.id()));
    let again = sandbox.process(sleeper.id()).await.unwrap();
    assert_eq!(again.pid(), sleeper.pid());

    // Lifecycle.
    assert_eq!(sandbox.stop().await.unwrap().state, SandboxState::Stopped);
    assert_eq!(sandbox.start().await.unwrap().state, SandboxState::Running);
    assert_eq!(
        sandbox.hibernate().await.unwrap().state,
        SandboxState::Hibernated
    );
    let asleep = sandbox.run("true").await.unwrap_err();
    assert_eq!(asleep.code(), Some(ErrorCode::Conflict), "{asleep}");
    assert_eq!(sandbox.wake().await.unwrap().state, SandboxState::Running);
    sandbox.stop().await.unwrap();
    let connected = client.connect(sandbox.id()).await.unwrap();
    assert_eq!(connected.info().unwrap().state, SandboxState::Running);
    assert_eq!(connected.run("echo back").await.unwrap().stdout, "back\n");
    sandbox.hibernate().await.unwrap();
    let connected = client.connect(sandbox.id()).await.unwrap();
    assert_eq!(connected.info().unwrap().state, SandboxState::Running);
    assert_eq!(
        sandbox.refresh().await.unwrap().state,
        SandboxState::Running
    );

    // Errors carry the problem code, status and detail.
    match client.get("sbx_doesnotexist").await.unwrap_err() {
        Error::Api {
            code,
            status,
            detail,
        } => {
            assert_eq!((code, status), (ErrorCode::SandboxNotFound, 404));
            assert!(!detail.is_empty());
        }
        other => panic!("expected a problem, got {other:?}"),
    }
    let stranger = Client::new(&server.base, Some("not-a-key")).unwrap();
    let denied = stranger.list(&ListFilter::default()).await.unwrap_err();
    assert_eq!(denied.code(), Some(ErrorCode::Unauthorized));
    let missing = sandbox.process("proc_nope").await.unwrap_err();
    assert_eq!(missing.code(), Some(ErrorCode::ProcessNotFound));
    assert!(matches!(
        Client::new("ftp://x", None).unwrap_err(),
        Error::InvalidUrl(_)
    ));
    let nowhere = Client::new("http://127.0.0.1:1", None).unwrap();
    assert!(matches!(
        nowhere.list(&ListFilter::default()).await.unwrap_err(),
        Error::Transport(_)
    ));

    other.delete().await.unwrap();
    sandbox.delete().await.unwrap();
    assert_eq!(
        sandbox.delete().await.unwrap_err().code(),
        Some(ErrorCode::SandboxNotFound)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_pty_and_time_travel() {
    let server = TestServer::start().await;
    let client = client(&server);
    let mut sandbox = client
        .create(&CreateSandboxRequest::default())
        .await
        .unwrap();
    let files = sandbox.files();

    // A streamed body in and out, unchanged.
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..64u32)
        .map(|i| Ok(Bytes::from(vec![i as u8; 64 * 1024])))
        .collect();
    let written = files
        .write_stream("/tmp/big/blob.bin", futures::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(written.bytes, 64 * 64 * 1024);
    let mut read = 0usize;
    let mut stream = files.read_stream("/tmp/big/blob.bin").await.unwrap();
    let mut at = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for (i, b) in chunk.iter().enumerate() {
            assert_eq!(*b as usize, (at + i) / (64 * 1024));
        }
        at += chunk.len();
        read += chunk.len();
    }
    assert_eq!(read, 64 * 64 * 1024);

    // The small operations.
    files
        .write_mode("/tmp/x.sh", "#!/bin/sh\necho run\n", Some("755"))
        .await
        .unwrap();
    assert_eq!(sandbox.run("/tmp/x.sh").await.unwrap().stdout, "run\n");
    let stat = files.stat("/tmp/x.sh").await.unwrap();
    assert!(stat.exists && stat.is_file && stat.mode & 0o777 == 0o755);
    assert!(!files.exists("/tmp/none").await.unwrap());
    files.mkdir("/tmp/d/e").await.unwrap();
    files
        .rename("/tmp/x.sh", "/tmp/d/e/y.sh", false)
        .await
        .unwrap();
    let names: Vec<String> = files
        .list("/tmp/d/e")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["y.sh"]);
    files.edit("/tmp/d/e/y.sh", "run", "ran").await.unwrap();
    let conflict = files.edit("/tmp/d/e/y.sh", "zzz", "q").await.unwrap_err();
    assert_eq!(conflict.code(), Some(ErrorCode::EditConflict));
    assert_eq!(
        files.read("/tmp/none").await.unwrap_err().code(),
        Some(ErrorCode::FileNotFound)
    );
    let not_empty = files.remove("/tmp/d", false).await.unwrap_err();
    assert!(not_empty.code().is_some(), "{not_empty}");
    files.remove("/tmp/d", true).await.unwrap();
    assert!(!files.exists("/tmp/d").await.unwrap());

    // Tar in, tar out.
    let mut builder = tar::Builder::new(Vec::new());
    for (name, body) in [("a.txt", "alpha\n"), ("sub/b.txt", "beta\n")] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, body.as_bytes())
            .unwrap();
    }
    let tarball = builder.into_inner().unwrap();
    files.upload("/tmp/up", tarball).await.unwrap();
    assert_eq!(
        files.read_text("/tmp/up/sub/b.txt").await.unwrap(),
        "beta\n"
    );
    let mut tar_bytes = Vec::new();
    let mut download = files.download("/tmp/up").await.unwrap();
    while let Some(chunk) = download.next().await {
        tar_bytes.extend_from_slice(&chunk.unwrap());
    }
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut found = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            found.insert(entry.path().unwrap().display().to_string(), body);
        }
    }
    assert_eq!(
        found.get("a.txt").map(String::as_str),
        Some("alpha\n"),
        "{found:?}"
    );
    assert_eq!(found.get("sub/b.txt").map(String::as_str), Some("beta\n"));

    // The PTY handle: a terminal of the asked size, resized, exit code.
    let mut pty = sandbox.pty(Some("bash --norc"), 90, 20).await.unwrap();
    pty.send(b"stty size\n").await.unwrap();
    let mut screen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut resized = false;
    let status = loop {
        let event = tokio::time::timeout_at(deadline, pty.recv())
            .await
            .unwrap_or_else(|_| panic!("the terminal stalled: {screen:?}"))
            .unwrap();
        match event {
            Some(PtyEvent::Output(bytes)) => screen.push_str(&String::from_utf8_lossy(&bytes)),
            Some(PtyEvent::Exit(status)) => break status,
            Some(PtyEvent::Dropped { .. }) => {}
            None => panic!("closed without exit: {screen:?}"),
        }
        if !resized && screen.contains("20 90") {
            resized = true;
            pty.resize(120, 40).await.unwrap();
            pty.send(b"stty size; exit 6\n").await.unwrap();
        }
    };
    assert!(screen.contains("40 120"), "{screen:?}");
    assert_eq!(status.exit_code, Some(6));

    // Time travel.
    files.write("/root/v.txt", "one").await.unwrap();
    let checkpoint = sandbox.checkpoint(Some("one")).await.unwrap();
    files.write("/root/v.txt", "two").await.unwrap();
    let listed = sandbox.checkpoints().await.unwrap();
    assert!(listed
        .iter()
        .any(|c| c.id == checkpoint.id && c.name == "one"));
    assert!(client
        .checkpoints()
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == checkpoint.id));
    assert_eq!(client.checkpoint(&checkpoint.id).await.unwrap().name, "one");
    sandbox.restore(&checkpoint.id).await.unwrap();
    assert_eq!(files.read_text("/root/v.txt").await.unwrap(), "one");
    let (forks, fork_checkpoint) = sandbox.fork(2).await.unwrap();
    assert_eq!(forks.len(), 2);
    for fork in &forks {
        assert_eq!(fork.files().read_text("/root/v.txt").await.unwrap(), "one");
    }
    let revived = client
        .create_from_checkpoint(&checkpoint.id, &CreateSandboxRequest::default())
        .await
        .unwrap();
    assert_eq!(
        revived.info().unwrap().from_checkpoint.as_deref(),
        Some(checkpoint.id.as_str())
    );
    assert_eq!(
        revived.files().read_text("/root/v.txt").await.unwrap(),
        "one"
    );
    client.delete_checkpoint(&fork_checkpoint).await.unwrap();
    assert_eq!(
        client
            .checkpoint(&fork_checkpoint)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::CheckpointNotFound)
    );
    assert!(client
        .templates()
        .await
        .unwrap()
        .iter()
        .any(|t| t.name == "base"));
    for s in forks.iter().chain([&revived, &sandbox]) {
        s.delete().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_previews_patches_wipe_transfer_and_admin() {
    let server = TestServer::start().await;
    let client = client(&server);
    let mut sandbox = client
        .create(&CreateSandboxRequest::default())
        .await
        .unwrap();

    // Watch: ready first, then the changes.
    let files = sandbox.files();
    files.mkdir("/tmp/watched").await.unwrap();
    let mut watch = files.watch("/tmp/watched", false).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("ready in time")
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchItem::Ready), "{first:?}");
    files.write("/tmp/watched/new.txt", "x").await.unwrap();
    let change = loop {
        let item = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        if let WatchItem::Change(change) = item {
            break change;
        }
    };
    assert!(change.path.ends_with("new.txt"), "{change:?}");
    drop(watch);

    // Previews.
    let preview = sandbox
        .create_preview(8080, PreviewAuth::Token)
        .await
        .unwrap();
    assert_eq!(preview.port, 8080);
    assert!(preview.token.is_some());
    assert_eq!(sandbox.previews().await.unwrap().len(), 1);
    sandbox.delete_preview(8080).await.unwrap();
    assert!(sandbox.previews().await.unwrap().is_empty());
    assert_eq!(
        sandbox.delete_preview(8080).await.unwrap_err().code(),
        Some(ErrorCode::PreviewNotFound)
    );

    // Patches run in sandboxes made from the checkpoint; wipe resets the disk.
    files.write("/root/kept.txt", "kept").await.unwrap();
    let checkpoint = sandbox.checkpoint(None).await.unwrap();
    let patch = client
        .add_patch(
            &checkpoint.id,
            &CreatePatchRequest {
                script: "echo patched > /root/patched.txt".into(),
                name: Some("mark".into()),
                timeout_ms: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(client.patches(&checkpoint.id).await.unwrap().len(), 1);
    let child = client
        .create_from_checkpoint(&checkpoint.id, &CreateSandboxRequest::default())
        .await
        .unwrap();
    assert_eq!(
        child.files().read_text("/root/patched.txt").await.unwrap(),
        "patched\n"
    );
    client
        .delete_patch(&checkpoint.id, &patch.id)
        .await
        .unwrap();
    assert!(client.patches(&checkpoint.id).await.unwrap().is_empty());
    sandbox.wipe().await.unwrap();
    assert!(!files.exists("/root/kept.txt").await.unwrap());

    // Export and import, streamed.
    let mut export = client
        .export_checkpoint(&checkpoint.id, None)
        .await
        .unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = export.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let imported = client.import_checkpoint(bytes).await.unwrap();
    assert!(imported.imported);
    let revived = client
        .create_from_checkpoint(&imported.id, &CreateSandboxRequest::default())
        .await
        .unwrap();
    assert_eq!(
        revived.files().read_text("/root/kept.txt").await.unwrap(),
        "kept"
    );

    // Admin: a tenant, its key, revocation.
    let tenant = client.create_tenant("cli-tests", Some(2)).await.unwrap();
    let key = client.create_key(&tenant.id).await.unwrap();
    assert!(client
        .tenants()
        .await
        .unwrap()
        .iter()
        .any(|t| t.id == tenant.id));
    assert_eq!(client.keys(&tenant.id).await.unwrap().len(), 1);
    let as_tenant = Client::new(&server.base, Some(&key.key)).unwrap();
    assert!(as_tenant
        .list_all(&ListFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        as_tenant.get(sandbox.id()).await.unwrap_err().code(),
        Some(ErrorCode::SandboxNotFound),
        "another tenant's sandbox does not exist"
    );
    client.delete_key(&key.id).await.unwrap();
    assert_eq!(
        as_tenant
            .list(&ListFilter::default())
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::Unauthorized)
    );
    for s in [&child, &revived, &sandbox] {
        s.delete().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pty_delivers_every_short_commands_exit_and_output() {
    // A short command's output, exit frame and close can arrive together
    // with the handshake's answer; none of it may be lost (100 in a row).
    let server = TestServer::start().await;
    let client = client(&server);
    let sandbox = client
        .create(&CreateSandboxRequest::default())
        .await
        .unwrap();
    for i in 0..100 {
        let cmd = format!("echo short-{i}; exit {}", i % 7);
        let mut pty = sandbox.pty(Some(&cmd), 80, 24).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut screen = String::new();
        let status = loop {
            match tokio::time::timeout_at(deadline, pty.recv())
                .await
                .expect("the exit in time")
                .expect("a terminal event")
            {
                Some(PtyEvent::Output(bytes)) => screen.push_str(&String::from_utf8_lossy(&bytes)),
                Some(PtyEvent::Exit(status)) => break status,
                Some(PtyEvent::Dropped { .. }) => {}
                None => panic!("command {i}: the terminal closed before its exit ({screen:?})"),
            }
        };
        assert_eq!(status.exit_code, Some(i % 7), "command {i}");
        assert!(
            screen.contains(&format!("short-{i}")),
            "command {i}: {screen:?}"
        );
    }
    sandbox.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_and_terminals_run_as_a_user() {
    let server = TestServer::start().await;
    let client = client(&server);
    let sandbox = client
        .create(&CreateSandboxRequest::default())
        .await
        .unwrap();

    let out = sandbox
        .run_as("user", "cd; id -un; echo $HOME; pwd")
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "user\n/home/user\n/home/user\n");

    let process = sandbox
        .spawn_with(&StartRequest {
            cmd: Some("id -u; sudo -n id -u".into()),
            user: Some("user".into()),
            cwd: Some("/home/user".into()),
            ..StartRequest::default()
        })
        .await
        .unwrap();
    let events: Vec<OutputEvent> = process
        .output()
        .map(|e| e.unwrap())
        .collect::<Vec<_>>()
        .await;
    let mut stdout = Vec::new();
    for event in &events {
        if let OutputEvent::Output {
            stream: StreamKind::Stdout,
            data,
            ..
        } = event
        {
            stdout.extend_from_slice(data);
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "1000\n0\n", "{events:?}");

    let mut pty = sandbox
        .pty_with(&PtyOptions {
            cmd: Some("echo \"i am $(id -un) in $PWD\"; exit 3".into()),
            user: Some("user".into()),
            cwd: Some("/home/user".into()),
            ..PtyOptions::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut screen = String::new();
    let status = loop {
        match tokio::time::timeout_at(deadline, pty.recv())
            .await
            .expect("the exit in time")
            .unwrap()
        {
            Some(PtyEvent::Output(bytes)) => screen.push_str(&String::from_utf8_lossy(&bytes)),
            Some(PtyEvent::Exit(status)) => break status,
            Some(PtyEvent::Dropped { .. }) => {}
            None => panic!("closed without exit: {screen:?}"),
        }
    };
    assert_eq!(status.exit_code, Some(3), "{screen:?}");
    assert!(screen.contains("i am user in /home/user"), "{screen:?}");

    let err = sandbox.run_as("nobody-here", "true").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidRequest), "{err}");
    sandbox.delete().await.unwrap();
}
