//! Async Rust client of a Warren server.
//!
//! ```no_run
//! # async fn demo() -> warren_client::Result<()> {
//! use futures::StreamExt;
//! use warren_client::{Client, CreateSandboxRequest, OutputEvent};
//!
//! let client = Client::from_env()?; // WARREN_URL, WARREN_API_KEY
//! let sandbox = client.create(&CreateSandboxRequest::default()).await?;
//! let out = sandbox.run("echo hello").await?;
//! assert_eq!(out.stdout, "hello\n");
//!
//! let process = sandbox.spawn("for i in 1 2 3; do echo $i; done").await?;
//! let mut output = process.output();
//! while let Some(event) = output.next().await {
//!     if let OutputEvent::Output { data, .. } = event? {
//!         print!("{}", String::from_utf8_lossy(&data));
//!     }
//! }
//! sandbox.delete().await?;
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: sandboxes, checkpoints and templates of one server;
//!   [`Client::events`], the stream of their state changes
//!   ([`ServerEvent`]).
//! - [`Sandbox`]: one sandbox: lifecycle, commands (as root or any user of
//!   the sandbox: [`Sandbox::run_as`], `user` on [`RunRequest`],
//!   [`StartRequest`] and [`PtyOptions`]), [`Files`], [`Pty`], checkpoints,
//!   restore and forks.
//! - [`Process`]: a managed process whose output is a `Stream`.
//! - [`Agents`], [`AgentSession`]: coding-agent sessions and their events.
//! - [`Desktop`]: a sandbox's desktop: screenshots, mouse, keyboard,
//!   windows, recordings.
//! - [`Error`]: problems carry their stable [`ErrorCode`].
//!
//! Wire types are those of [`warren_api`], re-exported here.

mod admin;
mod browser;
mod config;
mod desktop;
mod error;
mod events;
mod files;
mod http;
mod previews;
mod process;
mod pty;
mod sandbox;
mod sessions;
mod sse;
mod timetravel;

pub use browser::Browser;
pub use config::{config_path, DEFAULT_URL};
pub use desktop::Desktop;
pub use error::{Error, Result};
pub use events::ServerEvent;
pub use files::{Files, WatchItem};
pub use process::{chunk_bytes, ExitStatus, OutputEvent, Process};
pub use pty::{Pty, PtyEvent, PtyInput, PtyOutput};
pub use sandbox::{PtyOptions, Sandbox};
pub use sessions::{AgentSession, Agents};
pub use warren_api::agent::{
    FileEntry, FileStat, LogsResponse, OutputChunk, ProcessInfo, ProcessState, RunRequest,
    RunResponse, SignalSpec, StartRequest, StreamKind, WatchEvent, WatchEventKind,
};
pub use warren_api::checkpoint::{
    Checkpoint, CheckpointDiff, CheckpointList, CreatePatchRequest, DiffChange, DiffItem, DiffKind,
    FileDiff, ForkRequest, ForkResponse, Patch,
};
pub use warren_api::desktop::{
    BrowserElement, BrowserPage, BrowserSnapshot, BrowserStartRequest, BrowserStatus, WaitUntil,
};
pub use warren_api::desktop::{
    DesktopStartRequest, DesktopStatus, DisplayInfo, ImageFormat, LaunchRequest, Launched,
    MouseButton, MouseButtonRequest, MouseClickRequest, MouseDragRequest, MousePosition,
    OpenRequest, Recording, RecordingStartRequest, RecordingStatus, RegionQuery, ScreenshotQuery,
    StreamUrl, StreamUrlRequest, Window, WindowList,
};
pub use warren_api::server::{
    ApiKeyCreated, ApiKeyInfo, CreateSandboxRequest, KeyFormat, NetworkRequest,
    PatchSandboxRequest, Preview, PreviewAuth, ResourcesRequest, Sandbox as SandboxInfo,
    SandboxEvent, SandboxList, SandboxState, Template, TemplateLayer, TemplateStart, Tenant,
    WarmPool,
};
pub use warren_api::session::{
    AgentCapabilities, AgentInfo, AgentKind, CreateSession, Event as SessionEvent, EventSource,
    PermissionDecision, PermissionMode, Session, SessionState,
};
pub use warren_api::ErrorCode;

use std::sync::Arc;

use warren_api::checkpoint::CheckpointList as WireCheckpointList;
use warren_api::server::TemplateList;

/// A connection to one Warren server. Cheap to clone: clones share the
/// connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<http::Inner>,
}

/// Filters and page of [`Client::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only sandboxes in this state.
    pub state: Option<SandboxState>,
    /// `(key, value)` labels that must all match.
    pub labels: Vec<(String, String)>,
    /// `(key, value)` metadata that must all match.
    pub metadata: Vec<(String, String)>,
    /// Items per page (server default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Client {
    /// A client of the server at `url` (`http://host:port`), authenticating
    /// with `api_key` when given.
    pub fn new(url: &str, api_key: Option<&str>) -> Result<Client> {
        Ok(Client {
            inner: Arc::new(http::Inner::new(url, api_key)?),
        })
    }

    /// A client configured by `WARREN_URL` and `WARREN_API_KEY`, else by
    /// `url` and `api_key` in [`config_path`], else [`DEFAULT_URL`] without
    /// a key.
    pub fn from_env() -> Result<Client> {
        let (url, key) = config::resolve()?;
        Client::new(&url, key.as_deref())
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    pub(crate) fn http(&self) -> &http::Inner {
        &self.inner
    }

    /// Creates a sandbox; it is running when this returns.
    pub async fn create(&self, request: &CreateSandboxRequest) -> Result<Sandbox> {
        let info: SandboxInfo = self
            .inner
            .json(self.inner.post("/v1/sandboxes").json(request))
            .await?;
        Ok(Sandbox::from_info(self.clone(), info))
    }

    /// One page of sandboxes.
    pub async fn list(&self, filter: &ListFilter) -> Result<SandboxList> {
        let mut query: Vec<(String, String)> = Vec::new();
        if let Some(state) = filter.state {
            query.push(("state".into(), state.as_str().into()));
        }
        for (k, v) in &filter.labels {
            query.push(("label".into(), format!("{k}={v}")));
        }
        for (k, v) in &filter.metadata {
            query.push((format!("metadata.{k}"), v.clone()));
        }
        if let Some(limit) = filter.limit {
            query.push(("limit".into(), limit.to_string()));
        }
        if let Some(cursor) = &filter.cursor {
            query.push(("cursor".into(), cursor.clone()));
        }
        self.inner
            .json(self.inner.get("/v1/sandboxes").query(&query))
            .await
    }

    /// Every sandbox matching `filter`, following the pages.
    pub async fn list_all(&self, filter: &ListFilter) -> Result<Vec<SandboxInfo>> {
        let mut filter = filter.clone();
        let mut all = Vec::new();
        loop {
            let page = self.list(&filter).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => return Ok(all),
            }
        }
    }

    /// Fetches a sandbox (`sandbox_not_found` when there is none).
    pub async fn get(&self, id: &str) -> Result<Sandbox> {
        let info: SandboxInfo = self
            .inner
            .json(self.inner.get(&format!("/v1/sandboxes/{id}")))
            .await?;
        Ok(Sandbox::from_info(self.clone(), info))
    }

    /// Fetches a sandbox and makes it ready to run commands: a stopped one
    /// is started, a hibernated one woken.
    pub async fn connect(&self, id: &str) -> Result<Sandbox> {
        let mut sandbox = self.get(id).await?;
        match sandbox.info().map(|info| info.state) {
            Some(SandboxState::Stopped) => {
                sandbox.start().await?;
            }
            Some(SandboxState::Hibernated) => {
                sandbox.wake().await?;
            }
            _ => {}
        }
        Ok(sandbox)
    }

    /// A handle on sandbox `id` without asking the server (calls on it
    /// fail with `sandbox_not_found` if it does not exist).
    pub fn sandbox(&self, id: &str) -> Sandbox {
        Sandbox::new(self.clone(), id.to_string())
    }

    /// Every checkpoint the caller can see, in creation order.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self.inner.get("/v1/checkpoints");
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: WireCheckpointList = self.inner.json(req).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// One checkpoint.
    pub async fn checkpoint(&self, id: &str) -> Result<Checkpoint> {
        self.inner
            .json(self.inner.get(&format!("/v1/checkpoints/{id}")))
            .await
    }

    /// Deletes a checkpoint (sandboxes made from it keep working).
    pub async fn delete_checkpoint(&self, id: &str) -> Result<()> {
        self.inner
            .empty(self.inner.delete(&format!("/v1/checkpoints/{id}")))
            .await
    }

    /// Creates a sandbox from a checkpoint's disk.
    pub async fn create_from_checkpoint(
        &self,
        checkpoint_id: &str,
        request: &CreateSandboxRequest,
    ) -> Result<Sandbox> {
        let mut request = request.clone();
        request.from_checkpoint = Some(checkpoint_id.to_string());
        self.create(&request).await
    }

    /// The templates of the server.
    pub async fn templates(&self) -> Result<Vec<Template>> {
        let list: TemplateList = self.inner.json(self.inner.get("/v1/templates")).await?;
        Ok(list.items)
    }

    /// Builds (or rebuilds) template `name` from a spec.toml's text (admin
    /// key); answers when the build is done.
    pub async fn build_template(&self, name: &str, spec: impl Into<String>) -> Result<Template> {
        self.inner
            .json(
                self.inner
                    .post(&format!("/v1/templates/{name}/build"))
                    .header("content-type", "application/toml")
                    .body(spec.into()),
            )
            .await
    }

    /// Builds (or rebuilds) template `name` from a Dockerfile (admin key):
    /// `context` is the build context as an uncompressed tar archive, which
    /// holds the Dockerfile at `dockerfile` (default `Dockerfile`);
    /// `build_args` are `--build-arg` values. Answers when the build is
    /// done, with the layers it reused and made.
    pub async fn build_template_dockerfile(
        &self,
        name: &str,
        context: impl Into<reqwest::Body>,
        dockerfile: Option<&str>,
        build_args: &std::collections::BTreeMap<String, String>,
    ) -> Result<Template> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(path) = dockerfile {
            query.push(("dockerfile", path.to_string()));
        }
        if !build_args.is_empty() {
            let json = serde_json::to_string(build_args).expect("strings serialize");
            query.push(("build_args", json));
        }
        self.inner
            .json(
                self.inner
                    .post(&format!("/v1/templates/{name}/build"))
                    .query(&query)
                    .header("content-type", "application/x-tar")
                    .body(context),
            )
            .await
    }

    /// Imports template `name` from an OCI image layout or `docker save`
    /// tarball, streamed from `image` (admin key).
    pub async fn import_template(
        &self,
        name: &str,
        image: impl Into<reqwest::Body>,
    ) -> Result<Template> {
        self.inner
            .json(
                self.inner
                    .post(&format!("/v1/templates/{name}/import"))
                    .header("content-type", "application/x-tar")
                    .body(image),
            )
            .await
    }

    /// Deletes a template.
    pub async fn delete_template(&self, name: &str) -> Result<()> {
        self.inner
            .empty(self.inner.delete(&format!("/v1/templates/{name}")))
            .await
    }
}
