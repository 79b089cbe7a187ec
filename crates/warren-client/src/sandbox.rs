//! One sandbox: lifecycle, commands, files, terminals, time travel.

use std::collections::BTreeMap;

use warren_api::agent::{ProcessInfo, ProcessList, RunRequest, RunResponse, StartRequest};
use warren_api::checkpoint::{
    Checkpoint, CheckpointList, CreateCheckpointRequest, ForkRequest, ForkResponse, RestoreRequest,
};
use warren_api::server::{ExtendRequest, PatchSandboxRequest, Sandbox as SandboxInfo};

use crate::error::Result;
use crate::files::Files;
use crate::process::Process;
use crate::pty::Pty;
use crate::Client;

/// How [`Sandbox::pty_with`] opens a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyOptions {
    /// Shell command line to run (default: a login shell).
    pub cmd: Option<String>,
    /// Width in columns (default 80).
    pub cols: u16,
    /// Height in rows (default 24).
    pub rows: u16,
    /// Run as this user (a name or a uid; default: the agent's own, root).
    pub user: Option<String>,
    /// Working directory (default: the sandbox's workdir).
    pub cwd: Option<String>,
    /// Environment over the sandbox's.
    pub env: Option<BTreeMap<String, String>>,
}

impl Default for PtyOptions {
    fn default() -> Self {
        PtyOptions {
            cmd: None,
            cols: 80,
            rows: 24,
            user: None,
            cwd: None,
            env: None,
        }
    }
}

/// A handle on one sandbox. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    client: Client,
    id: String,
    info: Option<SandboxInfo>,
}

impl Sandbox {
    pub(crate) fn new(client: Client, id: String) -> Sandbox {
        Sandbox {
            client,
            id,
            info: None,
        }
    }

    pub(crate) fn from_info(client: Client, info: SandboxInfo) -> Sandbox {
        Sandbox {
            client,
            id: info.id.clone(),
            info: Some(info),
        }
    }

    /// `sbx_…`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the server last said about it (`None` for a handle made with
    /// [`Client::sandbox`] and not refreshed since).
    pub fn info(&self) -> Option<&SandboxInfo> {
        self.info.as_ref()
    }

    /// Stores what the server answered about it.
    pub(crate) fn set_info(&mut self, info: SandboxInfo) -> &SandboxInfo {
        self.info.insert(info)
    }

    /// The client it belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/sandboxes/{}{rest}", self.id)
    }

    async fn lifecycle(&mut self, action: &str) -> Result<&SandboxInfo> {
        let http = self.client.http();
        let info: SandboxInfo = http.json(http.post(&self.path(action))).await?;
        Ok(self.info.insert(info))
    }

    /// Asks the server for its current state.
    pub async fn refresh(&mut self) -> Result<&SandboxInfo> {
        let http = self.client.http();
        let info: SandboxInfo = http.json(http.get(&self.path(""))).await?;
        Ok(self.info.insert(info))
    }

    /// Changes its metadata, labels, idle timeout or network policy.
    pub async fn patch(&mut self, patch: &PatchSandboxRequest) -> Result<&SandboxInfo> {
        let http = self.client.http();
        let info: SandboxInfo = http
            .json(
                http.request(reqwest::Method::PATCH, &self.path(""))
                    .json(patch),
            )
            .await?;
        Ok(self.info.insert(info))
    }

    /// Sets the idle timeout.
    pub async fn set_timeout(&mut self, seconds: u64) -> Result<&SandboxInfo> {
        self.patch(&PatchSandboxRequest {
            timeout_secs: Some(seconds),
            ..PatchSandboxRequest::default()
        })
        .await
    }

    /// Destroys it.
    pub async fn delete(&self) -> Result<()> {
        let http = self.client.http();
        http.empty(http.delete(&self.path(""))).await
    }

    /// Pushes its expiry `seconds` further.
    pub async fn extend(&mut self, seconds: u64) -> Result<&SandboxInfo> {
        let http = self.client.http();
        let info: SandboxInfo = http
            .json(
                http.post(&self.path("/extend"))
                    .json(&ExtendRequest { seconds }),
            )
            .await?;
        Ok(self.info.insert(info))
    }

    /// Stops every process, keeping the disk.
    pub async fn stop(&mut self) -> Result<&SandboxInfo> {
        self.lifecycle("/stop").await
    }

    /// Starts it again after `stop`.
    pub async fn start(&mut self) -> Result<&SandboxInfo> {
        self.lifecycle("/start").await
    }

    /// Puts it to sleep: no compute, disk kept.
    pub async fn hibernate(&mut self) -> Result<&SandboxInfo> {
        self.lifecycle("/hibernate").await
    }

    /// Wakes it from hibernation.
    pub async fn wake(&mut self) -> Result<&SandboxInfo> {
        self.lifecycle("/wake").await
    }

    /// Runs a shell command line to completion. A non-zero exit is a
    /// result, not an error.
    pub async fn run(&self, cmd: &str) -> Result<RunResponse> {
        self.run_with(&RunRequest {
            cmd: Some(cmd.to_string()),
            ..RunRequest::default()
        })
        .await
    }

    /// Runs a shell command line to completion as `user` (a name from the
    /// sandbox's `/etc/passwd`, such as `base`'s `user`, or a numeric uid),
    /// with that user's uid, groups and `HOME`.
    pub async fn run_as(&self, user: &str, cmd: &str) -> Result<RunResponse> {
        self.run_with(&RunRequest {
            cmd: Some(cmd.to_string()),
            user: Some(user.to_string()),
            ..RunRequest::default()
        })
        .await
    }

    /// Runs a command with every option of [`RunRequest`].
    pub async fn run_with(&self, request: &RunRequest) -> Result<RunResponse> {
        let http = self.client.http();
        http.json(http.post(&self.path("/processes/run")).json(request))
            .await
    }

    /// Starts a shell command line in the background.
    pub async fn spawn(&self, cmd: &str) -> Result<Process> {
        self.spawn_with(&StartRequest {
            cmd: Some(cmd.to_string()),
            ..StartRequest::default()
        })
        .await
    }

    /// Starts a process with every option of [`StartRequest`].
    pub async fn spawn_with(&self, request: &StartRequest) -> Result<Process> {
        let http = self.client.http();
        let info: ProcessInfo = http
            .json(http.post(&self.path("/processes")).json(request))
            .await?;
        Ok(Process::new(self.client.clone(), self.id.clone(), info))
    }

    /// A process by id (`proc_…`) or pid.
    pub async fn process(&self, id: &str) -> Result<Process> {
        let http = self.client.http();
        let info: ProcessInfo = http
            .json(http.get(&self.path(&format!("/processes/{id}"))))
            .await?;
        Ok(Process::new(self.client.clone(), self.id.clone(), info))
    }

    /// Every managed process the agent holds.
    pub async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let http = self.client.http();
        let list: ProcessList = http.json(http.get(&self.path("/processes"))).await?;
        Ok(list.items)
    }

    /// Opens a terminal running `cmd` (default: a login shell) of the given size.
    pub async fn pty(&self, cmd: Option<&str>, cols: u16, rows: u16) -> Result<Pty> {
        self.pty_with(&PtyOptions {
            cmd: cmd.map(str::to_string),
            cols,
            rows,
            ..PtyOptions::default()
        })
        .await
    }

    /// Opens a terminal with every option of [`PtyOptions`] (as a user,
    /// in a directory, with more environment).
    pub async fn pty_with(&self, options: &PtyOptions) -> Result<Pty> {
        let process = self
            .spawn_with(&StartRequest {
                cmd: Some(
                    options
                        .cmd
                        .clone()
                        .unwrap_or_else(|| "exec bash -l || exec sh".to_string()),
                ),
                cwd: options.cwd.clone(),
                env: options.env.clone(),
                user: options.user.clone(),
                tty: true,
                cols: Some(options.cols),
                rows: Some(options.rows),
                ..StartRequest::default()
            })
            .await?;
        Pty::attach(process).await
    }

    /// Its coding-agent sessions.
    pub fn agent(&self) -> crate::Agents {
        crate::Agents::new(self.client.clone(), self.id.clone())
    }

    /// Its files.
    pub fn files(&self) -> Files {
        Files::new(self.client.clone(), self.id.clone())
    }

    /// Takes a checkpoint of its disk.
    pub async fn checkpoint(&self, name: Option<&str>) -> Result<Checkpoint> {
        let http = self.client.http();
        let body = CreateCheckpointRequest {
            name: name.map(str::to_string),
        };
        http.json(http.post(&self.path("/checkpoints")).json(&body))
            .await
    }

    /// Its checkpoints, in creation order.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let http = self.client.http();
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = http.get(&self.path("/checkpoints"));
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: CheckpointList = http.json(req).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Gives it the disk of `checkpoint_id`, in place.
    pub async fn restore(&mut self, checkpoint_id: &str) -> Result<&SandboxInfo> {
        let http = self.client.http();
        let body = RestoreRequest {
            checkpoint_id: checkpoint_id.to_string(),
            discard_later: None,
        };
        let info: SandboxInfo = http
            .json(http.post(&self.path("/restore")).json(&body))
            .await?;
        Ok(self.info.insert(info))
    }

    /// Makes `count` new sandboxes from a checkpoint of this one.
    pub async fn fork(&self, count: u32) -> Result<(Vec<Sandbox>, String)> {
        let http = self.client.http();
        let body = ForkRequest {
            count: Some(count),
            name: None,
        };
        let forked: ForkResponse = http
            .json(http.post(&self.path("/fork")).json(&body))
            .await?;
        let sandboxes = forked
            .items
            .into_iter()
            .map(|info| Sandbox::from_info(self.client.clone(), info))
            .collect();
        Ok((sandboxes, forked.checkpoint_id))
    }
}
