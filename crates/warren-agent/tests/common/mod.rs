//! Test harness: a real agent serving real HTTP on a loopback port.
//!
//! Each test gets its own agent (own workdir, own supervisor) bound to
//! 127.0.0.1:0, served by the same router `warren agent` uses. The server task
//! lives on the test's tokio runtime and ends with it.

#![allow(dead_code)]

pub mod process;

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use warren_agent::{AgentConfig, AppState};

/// A running agent and a client for it.
pub struct TestAgent {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Keep-alive client.
    pub http: reqwest::Client,
    /// The agent's workdir (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The agent's state, for shutdown in tests.
    pub state: AppState,
}

impl TestAgent {
    /// An agent with a fresh temporary workdir and default limits.
    pub async fn start() -> TestAgent {
        Self::start_with(|_| {}).await
    }

    /// An agent whose config is adjusted by `f` (workdir already set).
    pub async fn start_with(f: impl FnOnce(&mut AgentConfig)) -> TestAgent {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = AgentConfig::for_tests(dir.path());
        f(&mut config);
        let state = AppState::new(config);
        let app = warren_agent::http::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestAgent {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            dir,
            state,
        }
    }

    /// Full URL of a path such as `/v1/health`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for TestAgent {
    /// Kills every process group the agent still runs, so a failed test
    /// leaves nothing behind.
    fn drop(&mut self) {
        self.state.processes.kill_all();
    }
}
