//! The `warren` CLI against a real server: the binary under test runs as a
//! child process with `WARREN_URL` and `WARREN_API_KEY`, and speaks to a
//! real `warren server` with real sandboxes.

mod server_common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use server_common::{TestServer, ADMIN_KEY};

/// Runs `warren ARGS... --json`-style commands and parses their stdout.
async fn json(server: &TestServer, args: &[&str]) -> Value {
    let text = server.cli_ok(ADMIN_KEY, args).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("warren {args:?}: {e}: {text}"))
}

/// Kills (by pid) and reaps a child this test started, even on panic.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait_timeout(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.0.as_mut().expect("child");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.0 = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "warren did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_exec_cp_checkpoints_fork_and_rm() {
    let server = TestServer::start().await;

    let created = json(
        &server,
        &[
            "create",
            "--label",
            "suite=cli",
            "--env",
            "GREETING=hi",
            "--memory-mb",
            "256",
            "--ttl",
            "900",
            "--json",
        ],
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("sbx_"), "{created}");
    assert_eq!(created["state"], "running");
    assert_eq!(created["labels"]["suite"], "cli");
    assert_eq!(created["resources"]["memory_mb"], 256);

    // exec: output on the right streams, the exit code becomes warren's.
    let out = server
        .cli(
            ADMIN_KEY,
            &[
                "exec",
                &id,
                "--",
                "sh",
                "-c",
                "echo $GREETING; echo oops >&2; exit 7",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let line = server
        .cli_ok(ADMIN_KEY, &["exec", &id, "echo $((6*7)) | tr 2 9"])
        .await;
    assert_eq!(line, "49\n", "one argument is a shell command line");
    let collected = json(&server, &["exec", "--json", &id, "--", "printf", "a b"]).await;
    assert_eq!(collected["stdout"], "a b");
    assert_eq!(collected["exit_code"], 0);
    let piped = {
        let mut cmd = server.warren(ADMIN_KEY);
        cmd.args(["exec", "-i", &id, "--", "tr", "a-z", "A-Z"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut guard = ChildGuard(Some(cmd.spawn().expect("spawn")));
        let child = guard.0.as_mut().unwrap();
        child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(guard.wait_timeout(Duration::from_secs(30)).success());
        text
    };
    assert_eq!(piped, "SHOUT\n", "-i forwards stdin and closes it at EOF");

    // Output arrives live: the first line while the command still runs.
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.args([
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "echo first; sleep 4; echo second",
    ])
    .stdout(Stdio::piped());
    let mut guard = ChildGuard(Some(cmd.spawn().expect("spawn")));
    let mut stdout = guard.0.as_mut().unwrap().stdout.take().unwrap();
    let started = Instant::now();
    let mut first = [0u8; 6];
    tokio::task::block_in_place(|| stdout.read_exact(&mut first)).expect("first line");
    assert_eq!(&first, b"first\n");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the first line waited for the end: {:?}",
        started.elapsed()
    );
    assert!(guard.0.as_mut().unwrap().try_wait().unwrap().is_none());
    let mut rest = String::new();
    tokio::task::block_in_place(|| stdout.read_to_string(&mut rest)).unwrap();
    assert_eq!(rest, "second\n");
    assert!(tokio::task::block_in_place(|| guard.wait_timeout(Duration::from_secs(30))).success());

    // cp: a binary file both ways, then a directory tree both ways.
    let local = tempfile::tempdir().expect("tempdir");
    let blob: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let src = local.path().join("blob.bin");
    std::fs::write(&src, &blob).unwrap();
    server
        .cli_ok(
            ADMIN_KEY,
            &["cp", src.to_str().unwrap(), &format!("{id}:/tmp/blob.bin")],
        )
        .await;
    let sum = server
        .cli_ok(ADMIN_KEY, &["exec", &id, "--", "wc", "-c", "/tmp/blob.bin"])
        .await;
    assert!(sum.starts_with("300000 "), "{sum}");
    let back = local.path().join("back.bin");
    server
        .cli_ok(
            ADMIN_KEY,
            &["cp", &format!("{id}:/tmp/blob.bin"), back.to_str().unwrap()],
        )
        .await;
    assert_eq!(std::fs::read(&back).unwrap(), blob);

    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("a/deep")).unwrap();
    std::fs::write(tree.join("top.txt"), "top\n").unwrap();
    std::fs::write(tree.join("a/deep/leaf.txt"), "leaf\n").unwrap();
    std::fs::write(tree.join("a/data.bin"), &blob[..1000]).unwrap();
    server
        .cli_ok(
            ADMIN_KEY,
            &["cp", tree.to_str().unwrap(), &format!("{id}:/tmp/tree")],
        )
        .await;
    let listed = server
        .cli_ok(
            ADMIN_KEY,
            &[
                "exec",
                &id,
                "cd /tmp/tree && find . -type f | sort && cat a/deep/leaf.txt",
            ],
        )
        .await;
    assert_eq!(listed, "./a/data.bin\n./a/deep/leaf.txt\n./top.txt\nleaf\n");
    // Into an existing directory: the copy keeps its name.
    server
        .cli_ok(ADMIN_KEY, &["exec", &id, "mkdir -p /tmp/into"])
        .await;
    server
        .cli_ok(
            ADMIN_KEY,
            &["cp", tree.to_str().unwrap(), &format!("{id}:/tmp/into")],
        )
        .await;
    server
        .cli_ok(
            ADMIN_KEY,
            &["exec", &id, "test -f /tmp/into/tree/a/deep/leaf.txt"],
        )
        .await;
    let down = local.path().join("down");
    server
        .cli_ok(
            ADMIN_KEY,
            &["cp", &format!("{id}:/tmp/tree"), down.to_str().unwrap()],
        )
        .await;
    assert_eq!(
        std::fs::read_to_string(down.join("top.txt")).unwrap(),
        "top\n"
    );
    assert_eq!(
        std::fs::read_to_string(down.join("a/deep/leaf.txt")).unwrap(),
        "leaf\n"
    );
    assert_eq!(
        std::fs::read(down.join("a/data.bin")).unwrap(),
        &blob[..1000]
    );
    let missing = server
        .cli(
            ADMIN_KEY,
            &["cp", &format!("{id}:/tmp/nothing"), down.to_str().unwrap()],
        )
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: file_not_found:"));

    // ls and inspect, as tables and as JSON.
    let table = server.cli_ok(ADMIN_KEY, &["ls"]).await;
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&id) && table.contains("suite=cli"),
        "{table}"
    );
    let listed = json(&server, &["ls", "--label", "suite=cli", "--json"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let none = json(&server, &["ls", "--label", "suite=other", "--json"]).await;
    assert_eq!(none, Value::Array(vec![]));
    let inspected = json(&server, &["inspect", &id, "--json"]).await;
    assert_eq!(inspected["id"], id.as_str());
    assert_eq!(inspected["state"], "running");
    let human = server.cli_ok(ADMIN_KEY, &["inspect", &id]).await;
    assert!(
        human.contains("state:") && human.contains("running"),
        "{human}"
    );

    // Checkpoints, restore in place, fork.
    server
        .cli_ok(ADMIN_KEY, &["exec", &id, "echo v1 > /root/state.txt"])
        .await;
    let checkpoint = server
        .cli_ok(ADMIN_KEY, &["checkpoint", "create", &id, "--name", "v1"])
        .await;
    let checkpoint = checkpoint.trim().to_string();
    assert!(checkpoint.starts_with("ckpt_"), "{checkpoint}");
    server
        .cli_ok(ADMIN_KEY, &["exec", &id, "echo v2 > /root/state.txt"])
        .await;
    let listed = json(&server, &["checkpoint", "ls", &id, "--json"]).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == checkpoint.as_str() && c["name"] == "v1"),
        "{listed}"
    );
    let table = server.cli_ok(ADMIN_KEY, &["checkpoint", "ls"]).await;
    assert!(table.contains(&checkpoint), "{table}");
    server
        .cli_ok(ADMIN_KEY, &["restore", &id, &checkpoint])
        .await;
    assert_eq!(
        server
            .cli_ok(ADMIN_KEY, &["exec", &id, "cat /root/state.txt"])
            .await,
        "v1\n"
    );
    let forked = json(&server, &["fork", &id, "--json"]).await;
    let fork_id = forked["items"][0]["id"]
        .as_str()
        .expect("fork id")
        .to_string();
    assert_ne!(fork_id, id);
    assert_eq!(
        server
            .cli_ok(ADMIN_KEY, &["exec", &fork_id, "cat /root/state.txt"])
            .await,
        "v1\n"
    );
    server.cli_ok(ADMIN_KEY, &["rm", &fork_id]).await;
    server
        .cli_ok(ADMIN_KEY, &["checkpoint", "rm", &checkpoint])
        .await;
    let gone = server
        .cli(ADMIN_KEY, &["checkpoint", "rm", &checkpoint])
        .await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("checkpoint_not_found"));

    // extend: a sandbox without a ttl gets one.
    let extended = server.cli_ok(ADMIN_KEY, &["extend", &id, "3600"]).await;
    assert!(
        extended.starts_with(&format!("{id} expires at 20")),
        "{extended}"
    );
    assert!(!json(&server, &["inspect", &id, "--json"]).await["expires_at"].is_null());

    // hibernate and wake.
    assert_eq!(
        server.cli_ok(ADMIN_KEY, &["hibernate", &id]).await,
        format!("{id} hibernated\n")
    );
    assert_eq!(
        server.cli_ok(ADMIN_KEY, &["wake", &id]).await,
        format!("{id} running\n")
    );
    assert_eq!(
        server
            .cli_ok(ADMIN_KEY, &["exec", &id, "cat /root/state.txt"])
            .await,
        "v1\n"
    );

    // rm, after which the sandbox is gone in plain words.
    assert_eq!(
        server.cli_ok(ADMIN_KEY, &["rm", &id]).await,
        format!("{id}\n")
    );
    let out = server.cli(ADMIN_KEY, &["inspect", &id]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: sandbox_not_found: "), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn run_makes_an_ephemeral_sandbox_and_logs_replays_output() {
    let server = TestServer::start().await;
    let out = server.cli(ADMIN_KEY, &["run", "--", "echo", "hi"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let out = server.cli(ADMIN_KEY, &["run", "exit 3"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        json(&server, &["ls", "--json"]).await,
        Value::Array(vec![]),
        "run destroys its sandbox"
    );

    // logs of a managed process, replayed and followed.
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();
    let (status, process) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(serde_json::json!({"cmd": "echo one; sleep 1; echo two >&2"})),
        )
        .await;
    assert_eq!(status, 201, "{process}");
    let pid = process["id"].as_str().unwrap();
    let followed = server.cli(ADMIN_KEY, &["logs", &id, pid, "--follow"]).await;
    assert!(followed.status.success(), "{followed:?}");
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&followed.stderr), "two\n");
    let table = server.cli_ok(ADMIN_KEY, &["ps", &id]).await;
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(pid) && table.contains("exited 0"), "{table}");
    let listed = json(&server, &["ps", &id, "--json"]).await;
    assert_eq!(listed[0]["id"], pid);
    let replayed = json(&server, &["logs", &id, pid, "--json"]).await;
    assert_eq!(replayed["exited"], true);
    assert_eq!(replayed["chunks"].as_array().unwrap().len(), 2);

    // Bad input and a missing server in plain words.
    let out = server.cli(ADMIN_KEY, &["create", "--label", "nokey"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not KEY=VALUE"));
    let out = server
        .cli(ADMIN_KEY, &["create", "--template", "no-such-template"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: template_not_found: "),
        "{out:?}"
    );
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.env("WARREN_API_KEY", "wrong").args(["ls"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: unauthorized: "),
        "{out:?}"
    );

    let templates = server.cli_ok(ADMIN_KEY, &["template", "ls"]).await;
    assert!(
        templates.lines().any(|l| l.starts_with("base ")),
        "{templates}"
    );
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}

/// Reads everything the pty master says into a channel, from a thread.
fn pump_master(master: &OwnedFd) -> mpsc::Receiver<Vec<u8>> {
    let mut reader = std::fs::File::from(master.try_clone().expect("dup master"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Collects pty output until `needle` appears (panics after `timeout`).
fn expect(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut String, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            Err(_) => panic!("no {needle:?} on the terminal; saw {seen:?}"),
        }
    }
}

fn set_size(fd: &OwnedFd, cols: u16, rows: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from a valid struct; the fd is
    // an open pty master owned by this test.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    assert_eq!(rc, 0, "TIOCSWINSZ");
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_is_an_interactive_terminal_with_resize_and_detach() {
    let server = TestServer::start().await;
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();

    let not_a_tty = server.cli(ADMIN_KEY, &["shell", &id]).await;
    assert_eq!(not_a_tty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_a_tty.stderr).contains("needs a terminal"));

    let size = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.args(["shell", &id])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut guard = ChildGuard(Some(cmd.spawn().expect("spawn warren shell")));
    let rx = pump_master(&pty.master);
    let mut master = std::fs::File::from(pty.master.try_clone().unwrap());
    let mut seen = String::new();
    tokio::task::block_in_place(|| {
        master.write_all(b"echo $((6*7))\n").unwrap();
        expect(&rx, &mut seen, "42\r\n", Duration::from_secs(30));
        master.write_all(b"stty size\n").unwrap();
        expect(&rx, &mut seen, "30 100", Duration::from_secs(30));
        // The local terminal grows; SIGWINCH carries it to the sandbox.
        set_size(&pty.master, 132, 50);
        let pid = nix::unistd::Pid::from_raw(guard.0.as_ref().unwrap().id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGWINCH).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            master.write_all(b"stty size\n").unwrap();
            if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(500)) {
                seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            if seen.contains("50 132") {
                break;
            }
            assert!(Instant::now() < deadline, "no resize: {seen:?}");
        }
        master.write_all(b"exit 5\n").unwrap();
        let status = guard.wait_timeout(Duration::from_secs(30));
        assert_eq!(status.code(), Some(5), "the shell's exit code: {seen:?}");
    });

    // Ctrl-] detaches and leaves the shell running.
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.args(["shell", &id])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut guard = ChildGuard(Some(cmd.spawn().expect("spawn warren shell")));
    let rx = pump_master(&pty.master);
    let mut master = std::fs::File::from(pty.master.try_clone().unwrap());
    let mut seen = String::new();
    tokio::task::block_in_place(|| {
        master.write_all(b"echo ready\n").unwrap();
        expect(&rx, &mut seen, "ready\r\n", Duration::from_secs(30));
        master.write_all(&[0x1d]).unwrap();
        expect(&rx, &mut seen, "detached", Duration::from_secs(30));
        assert!(guard.wait_timeout(Duration::from_secs(30)).success());
    });
    let (_, processes) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            None,
        )
        .await;
    let running = processes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["tty"] == true && p["state"] == "running")
        .count();
    assert_eq!(running, 1, "the detached shell keeps running: {processes}");
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_quickstart_runs() {
    let server = TestServer::start().await;
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/quickstart-cli.md"
    ))
    .expect("docs/quickstart-cli.md");
    let mut script = String::from("set -euo pipefail\n");
    let mut blocks = 0;
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("\n```sh\n") {
        let body = &rest[start + 7..];
        let end = body.find("\n```").expect("closed block");
        script.push_str(&body[..end]);
        script.push('\n');
        blocks += 1;
        rest = &body[end..];
    }
    assert!(blocks >= 6, "found {blocks} sh blocks");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_warren")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("WARREN_URL", &server.base)
        .env("WARREN_API_KEY", ADMIN_KEY);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("bash"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the quickstart failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "hello from sbx_",
        "exited with 3",
        "PIPED THROUGH",
        "hi from python",
        "main.py",
        "gone",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert!(stderr.contains("error: sandbox_not_found: "), "{stderr}");
    assert_eq!(
        json(&server, &["ls", "--json"]).await,
        Value::Array(vec![]),
        "the quickstart cleans up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_is_read_when_the_environment_is_silent() {
    let server = TestServer::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join(".config/warren");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("url = \"{}\"\napi_key = \"{ADMIN_KEY}\"\n", server.base),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.args(["ls", "--json"])
        .env_remove("WARREN_URL")
        .env_remove("WARREN_API_KEY")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // The environment wins over the file.
    std::fs::write(config.join("config.toml"), "url = \"http://127.0.0.1:1\"\n").unwrap();
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.args(["ls", "--json"]).env("HOME", home.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // A broken file is reported in plain words.
    std::fs::write(config.join("config.toml"), "url = [").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.args(["ls"])
        .env_remove("WARREN_URL")
        .env_remove("WARREN_API_KEY")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: reading ") && stderr.contains("config.toml"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cp_shows_progress_on_a_terminal_only() {
    let server = TestServer::start().await;
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();
    let local = tempfile::tempdir().expect("tempdir");
    let src = local.path().join("big.bin");
    std::fs::write(&src, vec![7u8; 3 << 20]).unwrap();
    let dest = format!("{id}:/tmp/big.bin");

    // stderr a pipe: nothing but errors there.
    let out = server
        .cli(ADMIN_KEY, &["cp", src.to_str().unwrap(), &dest])
        .await;
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");

    // stderr a terminal: a progress line with the total.
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.args(["cp", &dest, local.path().join("back.bin").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let mut guard = ChildGuard(Some(cmd.spawn().expect("spawn")));
    let rx = pump_master(&pty.master);
    let mut seen = String::new();
    tokio::task::block_in_place(|| {
        expect(
            &rx,
            &mut seen,
            "3.0 MiB / 3.0 MiB (100%)",
            Duration::from_secs(30),
        );
        assert!(guard.wait_timeout(Duration::from_secs(30)).success());
    });
    assert!(seen.contains("/tmp/big.bin -> "), "{seen:?}");
    assert_eq!(
        std::fs::read(local.path().join("back.bin")).unwrap().len(),
        3 << 20
    );
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_export_and_import_through_files() {
    let server = TestServer::start().await;
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();
    server
        .cli_ok(ADMIN_KEY, &["exec", &id, "echo carried > /root/cargo.txt"])
        .await;
    let checkpoint = server
        .cli_ok(ADMIN_KEY, &["checkpoint", "create", &id])
        .await
        .trim()
        .to_string();
    let local = tempfile::tempdir().expect("tempdir");
    let file = local.path().join("export.wck");
    let exported = json(
        &server,
        &[
            "checkpoint",
            "export",
            &checkpoint,
            file.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size > 0);
    assert_eq!(exported["bytes"], size);
    let imported = json(
        &server,
        &["checkpoint", "import", file.to_str().unwrap(), "--json"],
    )
    .await;
    let new_checkpoint = imported["id"].as_str().expect("id").to_string();
    assert_ne!(new_checkpoint, checkpoint);
    assert_eq!(imported["imported"], true);
    let revived = server
        .cli_ok(ADMIN_KEY, &["create", "--from-checkpoint", &new_checkpoint])
        .await;
    let revived = revived.trim();
    assert_eq!(
        server
            .cli_ok(ADMIN_KEY, &["exec", revived, "cat /root/cargo.txt"])
            .await,
        "carried\n"
    );
    let missing = server
        .cli(ADMIN_KEY, &["checkpoint", "import", "/nonexistent/export"])
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr)
        .starts_with("error: opening /nonexistent/export: "));
    server.cli_ok(ADMIN_KEY, &["rm", &id, revived]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_reaches_the_remote_command() {
    let server = TestServer::start().await;
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();
    let mut cmd = server.warren(ADMIN_KEY);
    cmd.args(["exec", &id, "--", "sh", "-c", "echo started; sleep 600"])
        .stdout(Stdio::piped());
    let mut guard = ChildGuard(Some(cmd.spawn().expect("spawn")));
    let mut stdout = guard.0.as_mut().unwrap().stdout.take().unwrap();
    let mut line = [0u8; 8];
    tokio::task::block_in_place(|| stdout.read_exact(&mut line)).expect("started");
    assert_eq!(&line, b"started\n");
    let pid = nix::unistd::Pid::from_raw(guard.0.as_ref().unwrap().id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::task::block_in_place(|| guard.wait_timeout(Duration::from_secs(30)));
    assert_eq!(
        status.code(),
        Some(130),
        "128 + SIGINT, as a shell reports it"
    );
    let processes = json(&server, &["ps", &id, "--json"]).await;
    assert!(
        processes
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "exited"),
        "nothing keeps running: {processes}"
    );
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}
