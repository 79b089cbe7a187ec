//! A `warren server` of a benchmark's own (its state directory, cgroup
//! parent and network), killed by pid when dropped, and a small client of
//! its HTTP API with the admin key.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::{free_port, wait_ready, warren_bin, Guard};

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--state-dir` (kept between runs: the first run builds `base`).
    pub state_dir: PathBuf,
    /// `--cgroup-parent`.
    pub cgroup_parent: String,
    /// `--network-name` and `--network-cidr`; `None`: `--no-network`.
    pub network: Option<(String, String)>,
    /// Further arguments.
    pub extra_args: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) of the server, at most this process's
    /// hard limit (raising it needs CAP_SYS_RESOURCE).
    pub nofile: u64,
    /// The admin key.
    pub admin_key: String,
}

/// A running server; killed (SIGKILL) when dropped. Its log goes to
/// `STATE_DIR/server.log`.
pub struct BenchServer {
    guard: Guard,
    /// Its API.
    pub api: Api,
}

impl BenchServer {
    /// Starts the server and waits until `/v1/health` answers.
    pub async fn start(opts: &ServerOptions) -> anyhow::Result<BenchServer> {
        std::fs::create_dir_all(&opts.state_dir)?;
        let port = free_port();
        let mut cmd = Command::new(warren_bin());
        cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--state-dir")
            .arg(&opts.state_dir)
            .args(["--cgroup-parent", &opts.cgroup_parent])
            .args(&opts.extra_args)
            .env("WARREN_ADMIN_KEY", &opts.admin_key);
        match &opts.network {
            Some((name, cidr)) => cmd.args(["--network-name", name, "--network-cidr", cidr]),
            None => cmd.arg("--no-network"),
        };
        let nofile = opts.nofile.min(hard_nofile());
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let log = opts.state_dir.join("server.log");
        let guard = Guard::spawn_logged(cmd, &log).context("starting warren server")?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&http, &format!("{base}/v1/health"), Duration::from_secs(60)).await?;
        Ok(BenchServer {
            guard,
            api: Api {
                http,
                base,
                key: opts.admin_key.clone(),
            },
        })
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }
}

/// This process's hard RLIMIT_NOFILE.
pub fn hard_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_max
}

/// A template's warm pool as `GET /v1/admin/pools` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Ready sandboxes the server keeps.
    pub size: u64,
    /// Ready now.
    pub ready: u64,
}

/// The server's API with the admin key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    /// The server's base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /v1/sandboxes` with `body`; the new sandbox's id.
    pub async fn create(&self, body: &Value) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/v1/sandboxes", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if status != 201 {
            bail!("create answered {status}: {text}");
        }
        let body: Value = serde_json::from_str(&text)?;
        Ok(body["id"].as_str().context("id")?.to_string())
    }

    /// `processes/run` of `true`; fails unless it answers 200 with exit 0.
    pub async fn run_true(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}/v1/sandboxes/{id}/processes/run", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"argv": ["true"]}))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if status != 200 {
            bail!("run answered {status}: {}", String::from_utf8_lossy(&body));
        }
        let v: Value = serde_json::from_slice(&body)?;
        if v["exit_code"].as_i64() != Some(0) {
            bail!("`true` did not exit 0: {v}");
        }
        Ok(())
    }

    /// Creates a sandbox and times it until its first `processes/run` of
    /// `true` answers. The id is returned even when the run fails, so the
    /// caller can delete it.
    pub async fn create_until_first_run(
        &self,
        body: &Value,
    ) -> (anyhow::Result<Duration>, Option<String>) {
        let start = Instant::now();
        let id = match self.create(body).await {
            Ok(id) => id,
            Err(e) => return (Err(e), None),
        };
        let ran = self.run_true(&id).await.map(|()| start.elapsed());
        (ran, Some(id))
    }

    /// `DELETE /v1/sandboxes/{id}`; 404 counts as deleted.
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .delete(format!("{}/v1/sandboxes/{id}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() && status != 404 {
            bail!("delete {id} answered {status}: {}", resp.text().await?);
        }
        Ok(())
    }

    /// Deletes `ids`, `conc` at a time; the time it took and the failures.
    pub async fn delete_all(&self, ids: Vec<String>, conc: usize) -> (Duration, usize) {
        let start = Instant::now();
        let failed = futures::stream::iter(ids)
            .map(|id| async move { self.delete(&id).await.is_err() })
            .buffer_unordered(conc)
            .filter(|failed| futures::future::ready(*failed))
            .count()
            .await;
        (start.elapsed(), failed)
    }

    /// Ids of every sandbox the server has (all pages).
    pub async fn list_ids(&self) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(format!("{}/v1/sandboxes", self.base))
                .bearer_auth(&self.key)
                .query(&[("limit", "1000")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let resp = req.send().await?;
            let status = resp.status();
            if status != 200 {
                bail!("list answered {status}");
            }
            let page: Value = resp.json().await?;
            for item in page["items"].as_array().into_iter().flatten() {
                if let Some(id) = item["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(ids),
            }
        }
    }

    /// The warm pool of `template` (size and ready 0 when it has none);
    /// `Ok(None)` when the server has no pools (`GET /v1/admin/pools`
    /// answers 404).
    pub async fn pool(&self, template: &str) -> anyhow::Result<Option<PoolState>> {
        let resp = self
            .http
            .get(format!("{}/v1/admin/pools", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        if resp.status() == 404 {
            return Ok(None);
        }
        let status = resp.status();
        if status != 200 {
            bail!("GET /v1/admin/pools answered {status}");
        }
        let list: Value = resp.json().await?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["template"] == template)
            .map_or(PoolState { size: 0, ready: 0 }, |p| PoolState {
                size: p["size"].as_u64().unwrap_or(0),
                ready: p["ready"].as_u64().unwrap_or(0),
            })
            .into())
    }

    /// Sets the warm pool of `template` to `size`.
    pub async fn set_pool(&self, template: &str, size: u64) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/v1/admin/pools/{template}", self.base))
            .bearer_auth(&self.key)
            .json(&json!({ "size": size }))
            .send()
            .await?;
        let status = resp.status();
        if status != 200 {
            bail!(
                "PUT /v1/admin/pools/{template} answered {status}: {}",
                resp.text().await?
            );
        }
        Ok(())
    }

    /// Waits until the pool of `template` has `want` ready sandboxes (and
    /// its size is `want`); the last state seen when `timeout` passes.
    pub async fn wait_pool(
        &self,
        template: &str,
        want: u64,
        timeout: Duration,
    ) -> anyhow::Result<PoolState> {
        let start = Instant::now();
        loop {
            let state = self
                .pool(template)
                .await?
                .unwrap_or(PoolState { size: 0, ready: 0 });
            if (state.ready == want && state.size == want) || start.elapsed() > timeout {
                return Ok(state);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Unmounts the loop-mounted pool of `state_dir`, if mounted (the next run
/// mounts it again and keeps its templates).
pub fn unmount_pool(state_dir: &Path) {
    let pool = state_dir.join("pool");
    if std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*pool.to_string_lossy()))
    {
        let _ = Command::new("umount").arg(&pool).status();
    }
}

/// Removes what a server leaves of its network for sandboxes that outlive
/// it (nft table `inet NAME`, bridge `NAME0`); only once none is left.
pub fn remove_network(name: &str) {
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", name])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("ip")
        .args(["link", "del", &format!("{name}0")])
        .stderr(Stdio::null())
        .status();
}
