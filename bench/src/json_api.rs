//! A benchmark's JSON calls to a `warren server` under one key: the setup
//! and clean-up around what is timed (sandboxes, commands, checkpoints).

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Most time a set-up command may run (writing gigabytes of files).
const RUN_TIMEOUT_MS: u64 = 1_200_000;

/// JSON requests to one server with one key.
#[derive(Clone)]
pub struct JsonApi {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl JsonApi {
    /// Calls to `base` (e.g. `http://127.0.0.1:PORT`) with `key`.
    pub fn new(http: reqwest::Client, base: &str, key: &str) -> Self {
        JsonApi {
            http,
            base: base.to_string(),
            key: key.to_string(),
        }
    }

    /// The HTTP client the calls use.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The key the calls carry.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `method path` with an optional JSON body; the answer's JSON (null
    /// when it has none). Any status but 2xx is an error with its body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Builds template `name` from templates/`name`.toml of this repository
    /// (its layers are cached after the first build, which takes minutes).
    pub async fn build_template(&self, name: &str) -> anyhow::Result<()> {
        let spec =
            std::fs::read_to_string(crate::repo_root().join(format!("templates/{name}.toml")))?;
        eprintln!("building the {name} template (cached after the first run)");
        let resp = self
            .http
            .post(format!("{}/v1/templates/{name}/build", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/toml")
            .body(spec)
            .timeout(Duration::from_secs(1800))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("building {name}: {}", resp.text().await?);
        }
        Ok(())
    }

    /// Runs `cmd` in sandbox `id` through the shell; fails unless it exits 0.
    pub async fn run(&self, id: &str, cmd: &str) -> anyhow::Result<()> {
        self.sh(id, cmd).await.map(|_| ())
    }

    /// Runs `cmd` in sandbox `id` through the shell; its stdout, or an error
    /// unless it exits 0.
    pub async fn sh(&self, id: &str, cmd: &str) -> anyhow::Result<String> {
        let out = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/processes/run"),
                Some(json!({"cmd": cmd, "timeout_ms": RUN_TIMEOUT_MS})),
            )
            .await?;
        if out["exit_code"] != 0 {
            bail!("{cmd:?} in {id}: {out}");
        }
        Ok(out["stdout"].as_str().unwrap_or_default().to_string())
    }

    /// Checkpoints sandbox `id`; the checkpoint's id.
    pub async fn checkpoint(&self, id: &str) -> anyhow::Result<String> {
        let ckpt = self
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/checkpoints"),
                Some(json!({})),
            )
            .await?;
        Ok(ckpt["id"].as_str().context("checkpoint id")?.to_string())
    }

    /// Deletes checkpoint `id`.
    pub async fn delete_checkpoint(&self, id: &str) -> anyhow::Result<()> {
        self.call("DELETE", &format!("/v1/checkpoints/{id}"), None)
            .await
            .map(|_| ())
    }
}
