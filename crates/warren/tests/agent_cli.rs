//! `warren agent` as a real process: flags, listeners, PID 1 duties (reaping
//! orphans) and a clean exit on SIGTERM that takes its processes with it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_warren");

/// An agent process, killed on drop if the test did not end it.
struct Agent {
    child: Child,
    port: u16,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_agent(prefix: &[&str], extra: &[&str]) -> Agent {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = if prefix.is_empty() {
        Command::new(BIN)
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg(BIN);
        c
    };
    cmd.args(["agent", "--listen", &listen])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("spawn warren agent");
    let agent = Agent { child, port };
    wait_health(&agent);
    agent
}

fn wait_health(agent: &Agent) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", agent.port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("agent did not listen on {}", agent.port);
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn run(agent: &Agent, body: serde_json::Value) -> serde_json::Value {
    let resp = client()
        .post(format!("http://127.0.0.1:{}/v1/processes/run", agent.port))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().unwrap()
}

fn pid_alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; treat it as dead only once reaped.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn refuses_to_start_without_a_token_choice() {
    let out = Command::new(BIN)
        .args(["agent", "--listen", "127.0.0.1:0"])
        .env_remove("WARREN_AGENT_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-token"), "stderr: {stderr}");
}

#[test]
fn serves_tcp_and_unix_with_default_env_and_workdir() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let workdir = dir.path().join("work");
    std::fs::create_dir(&workdir).unwrap();
    let agent = spawn_agent(
        &[],
        &[
            "--no-token",
            "--listen",
            &format!("unix:{}", sock.display()),
            "--workdir",
            workdir.to_str().unwrap(),
            "--env",
            "GREETING=hello from env",
        ],
    );
    let out = run(
        &agent,
        serde_json::json!({"cmd": "echo \"$GREETING\"; pwd"}),
    );
    assert_eq!(
        out["stdout"],
        format!("hello from env\n{}\n", workdir.display())
    );

    let mut unix = UnixStream::connect(&sock).expect("unix socket answers");
    unix.write_all(b"GET /v1/health HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    unix.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "reply: {reply}");
    assert!(reply.contains("\"status\":\"ok\""), "reply: {reply}");
}

#[test]
fn sigterm_stops_processes_and_exits_cleanly() {
    let mut agent = spawn_agent(&[], &["--no-token"]);
    let resp = client()
        .post(format!("http://127.0.0.1:{}/v1/processes", agent.port))
        .json(&serde_json::json!({"cmd": "sleep 1000 & sleep 1000"}))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
    let info: serde_json::Value = resp.json().unwrap();
    let pid = info["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));

    // SAFETY: kill(2) on the pid of a child this test spawned.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "agent exit status: {status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pid_alive(pid), "process {pid} outlived the agent");
}

#[test]
fn as_pid_1_it_reaps_orphans() {
    // unshare gives the agent a pid namespace of its own where it is PID 1.
    let agent = spawn_agent(
        &["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"],
        &["--no-token"],
    );
    let me = run(&agent, serde_json::json!({"cmd": "cat /proc/1/comm"}));
    assert_eq!(me["stdout"], "warren\n");
    // The shell exits at once; its background child is orphaned to PID 1.
    let out = run(&agent, serde_json::json!({"cmd": "sleep 0.2 & exit 0"}));
    assert_eq!(out["exit_code"], 0);
    std::thread::sleep(Duration::from_millis(800));
    let ps = run(
        &agent,
        serde_json::json!({"cmd": "for s in /proc/[0-9]*/stat; do cut -d' ' -f3 \"$s\"; done"}),
    );
    let states = ps["stdout"].as_str().unwrap();
    assert!(
        !states.lines().any(|s| s == "Z"),
        "zombies left: {states:?}"
    );
}
