//! The server under load: many clients creating, listing, patching and
//! checkpointing at once get answers, never an internal error and never
//! "database is locked"; and connections held open cost the server and the
//! agent next to nothing, so a client cannot grow them by connecting.

mod server_common;

use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_and_reads_never_fail() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        stderr_file: Some(log.path().to_path_buf()),
        ..Options::default()
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            server.create(ADMIN_KEY, json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..120 {
        let id = ids[i % ids.len()].clone();
        let (method, path, body) = match i % 6 {
            0 => ("POST", "/v1/sandboxes".to_string(), Some(json!({}))),
            1 => ("GET", "/v1/sandboxes".to_string(), None),
            2 | 3 => (
                "PATCH",
                format!("/v1/sandboxes/{id}"),
                Some(json!({"metadata": {"n": i.to_string()}})),
            ),
            4 => (
                "POST",
                format!("/v1/sandboxes/{id}/checkpoints"),
                Some(json!({"name": format!("c{i}")})),
            ),
            _ => ("GET", format!("/v1/sandboxes/{id}"), None),
        };
        let mut req = server.req(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            &path,
            ADMIN_KEY,
        );
        if let Some(body) = body {
            req = req.json(&body);
        }
        calls.spawn(async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (format!("{method} {path}"), status, body)
        });
    }
    while let Some(call) = calls.join_next().await {
        let (what, status, body) = call.unwrap();
        // A checkpoint of a sandbox mid-checkpoint may be told to wait.
        assert!(
            (200..300).contains(&status) || (status == 409 && what.ends_with("checkpoints")),
            "{what}: {status} {body}"
        );
    }
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        !text.contains("database is locked"),
        "the log says the database was locked"
    );
    assert!(!text.contains("SQLITE_BUSY"), "the log says SQLITE_BUSY");
}

/// The port `server` listens on.
fn port_of(server: &TestServer) -> u16 {
    server
        .url("")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the server's port")
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Whether `GET /v1/health` on `stream` is answered 200 (within 20 s).
fn answers_health(mut stream: &std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: warren\r\n\r\n")
        .is_ok()
        && matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200"))
}

/// Opens `n` connections to `port`, each answered once (`GET /v1/health`)
/// and then held; returns how much process `pid`'s resident memory grew
/// meanwhile, in KiB.
fn growth_for_held_connections(pid: u32, port: u16, n: usize) -> u64 {
    let answered = |stream: &std::net::TcpStream| {
        assert!(
            answers_health(stream),
            "GET /v1/health was not answered 200"
        );
    };
    let first = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    answered(&first);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = rss_kib(pid);
    let held: Vec<_> = (0..n)
        .map(|_| {
            let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            answered(&stream);
            stream
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = rss_kib(pid);
    drop(held);
    after.saturating_sub(before)
}

/// Connections the tests below open and hold.
const HELD: usize = 128;

/// How much they may grow a process, in all: a connection's buffers are a
/// few KiB. Served as a plain axum `Router`, every connection got its own
/// deep copy of every route and its state: 64 grew the debug server by
/// 18.8 MiB and the agent by 5.3 MiB (the release server by 93 MiB), so
/// any client could grow them by connecting; with the router's
/// make-service, 1.4 and 1.2 MiB.
const HELD_MAX_GROWTH_KIB: u64 = 6 << 10;

/// Held connections do not each cost the server a copy of its router.
#[tokio::test(flavor = "multi_thread")]
async fn held_connections_cost_the_server_almost_nothing() {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let port = port_of(&server);
    let pid = server.pid();
    let grew = tokio::task::spawn_blocking(move || growth_for_held_connections(pid, port, HELD))
        .await
        .unwrap();
    assert!(
        grew < HELD_MAX_GROWTH_KIB,
        "{HELD} held connections grew the server by {grew} KiB"
    );
}

/// The same for the agent, which the server connects to for a sandbox's
/// requests.
#[test]
fn held_connections_cost_the_agent_almost_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "agent",
            "--no-token",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--root")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn warren agent");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = agent.id();
    let _kill = Kill(&mut agent);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let grew = growth_for_held_connections(pid, port, HELD);
    assert!(
        grew < HELD_MAX_GROWTH_KIB,
        "{HELD} held connections grew the agent by {grew} KiB"
    );
}

/// Clients that connect while the server is busy are queued by the kernel,
/// not dropped: with the server stopped (`SIGSTOP`), 300 connections must
/// all complete their handshake within half a second, and all be answered
/// once it goes on. `TcpListener::bind` listens with a backlog of 128: the
/// kernel completed 129 and dropped the others' handshakes, which their
/// clients retry a second later at the earliest.
#[tokio::test(flavor = "multi_thread")]
async fn clients_connecting_while_the_server_is_busy_are_queued_not_dropped() {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let port = port_of(&server);
    let pid = nix::unistd::Pid::from_raw(server.pid() as i32);
    let (connected, answered) = tokio::task::spawn_blocking(move || {
        /// Continues the server however the test ends.
        struct Continue(nix::unistd::Pid);
        impl Drop for Continue {
            fn drop(&mut self) {
                let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
            }
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let resume = Continue(pid);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let clients: Vec<_> = (0..300)
            .map(|_| {
                std::thread::spawn(move || {
                    std::net::TcpStream::connect_timeout(
                        &addr,
                        std::time::Duration::from_millis(500),
                    )
                    .ok()
                })
            })
            .collect();
        let streams: Vec<_> = clients
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        let connected = streams.len();
        drop(resume);
        let answered = streams.iter().filter(|s| answers_health(s)).count();
        (connected, answered)
    })
    .await
    .unwrap();
    assert_eq!(
        connected, 300,
        "handshakes completed while the server was stopped"
    );
    assert_eq!(answered, 300, "connections answered once it went on");
}
