//! The desktop's browser: one Chromium, a managed process of the
//! supervisor, on the desktop's display (or headless), with its DevTools
//! endpoint on loopback only. `/v1/desktop/browser/cdp` forwards a
//! WebSocket to that endpoint (see `http/browser.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::time::Instant;
use warren_api::agent::{ProcessState, SignalSpec, StartRequest};
use warren_api::desktop::{
    BrowserNavigateRequest, BrowserPage, BrowserStartRequest, BrowserStatus, ImageFormat, WaitUntil,
};

use super::cdp::{self, Page};
use super::Desktop;
use crate::process::Supervisor;
use crate::AgentError;

/// Names the browser may be installed under, tried in order.
const PROGRAMS: [&str; 2] = ["chromium", "chromium-browser"];
/// How long the browser gets to write its `DevToolsActivePort`.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The most page text returned, in bytes.
const MAX_TEXT: usize = 1 << 20;
/// The longest URL accepted.
const MAX_URL: usize = 8192;

/// A running browser.
#[derive(Debug, Clone)]
struct Running {
    process_id: String,
    headless: bool,
    port: u16,
    /// The browser target's WebSocket path (`/devtools/browser/…`).
    ws_path: String,
    profile: Arc<Profile>,
}

/// The browser's profile directory (with Chromium's temporary files),
/// removed once no one holds it: at `stop`, or when the agent's state is
/// dropped (as when a test ends, even by a panic).
#[derive(Debug)]
struct Profile(PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The desktop's browser. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct Browser {
    running: Arc<Mutex<Option<Running>>>,
    /// Serializes `start` and `stop`.
    lifecycle: Arc<tokio::sync::Mutex<()>>,
}

/// Checks a URL's scheme: http, https, file and about only.
pub fn check_url(url: &str) -> Result<(), AgentError> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    let ok = url.len() <= MAX_URL
        && matches!(scheme.as_deref(), Some("http" | "https" | "file" | "about"));
    if ok {
        Ok(())
    } else {
        Err(AgentError::InvalidRequest(format!(
            "url must be an http, https, file or about URL of at most {MAX_URL} bytes"
        )))
    }
}

impl Browser {
    fn current(&self) -> Option<Running> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn alive(processes: &Supervisor, id: &str) -> bool {
        matches!(processes.get(id, None).await, Ok(p) if p.status == ProcessState::Running)
    }

    /// The browser's DevTools WebSocket URL on loopback, or
    /// `BrowserNotRunning` (also when it has exited).
    pub async fn devtools_url(&self, processes: &Supervisor) -> Result<String, AgentError> {
        let running = self.current().ok_or(AgentError::BrowserNotRunning)?;
        if !Self::alive(processes, &running.process_id).await {
            return Err(AgentError::BrowserNotRunning);
        }
        Ok(format!(
            "ws://127.0.0.1:{}{}",
            running.port, running.ws_path
        ))
    }

    /// Starts the browser; idempotent while one runs (its status is
    /// returned). On the desktop's display unless `headless`.
    pub async fn start(
        &self,
        desktop: &Desktop,
        req: BrowserStartRequest,
    ) -> Result<BrowserStatus, AgentError> {
        let url = req.url.unwrap_or_else(|| "about:blank".into());
        check_url(&url)?;
        let processes = desktop.processes();
        let _held = self.lifecycle.lock().await;
        if self.devtools_url(processes).await.is_ok() {
            return Ok(self.status(processes).await);
        }
        self.stop_locked(processes).await;
        let program = PROGRAMS
            .iter()
            .find(|p| processes.find_program(p).is_some())
            .ok_or_else(|| {
                AgentError::Missing(
                    "chromium is not installed: use the desktop template, or install chromium"
                        .into(),
                )
            })?;
        let mut env = BTreeMap::new();
        if !req.headless {
            env.insert("DISPLAY".to_string(), desktop.screen().await?.display);
        }
        let profile = std::env::temp_dir().join(format!("warren-browser-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|source| AgentError::Io {
            op: "create the browser's profile directory",
            source,
        })?;
        let mut argv = vec![
            program.to_string(),
            format!("--user-data-dir={}", profile.display()),
            "--remote-debugging-address=127.0.0.1".into(),
            "--remote-debugging-port=0".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-dev-shm-usage".into(),
            // Chromium's sandbox needs user namespaces (or a set-uid helper)
            // that a Warren sandbox's seccomp profile refuses, and Chromium
            // refuses to run as root with it; the Warren sandbox is the
            // isolation boundary.
            "--no-sandbox".into(),
        ];
        if req.headless {
            argv.push("--headless=new".into());
        }
        argv.push(url);
        // Chromium's singleton socket goes in a fresh directory of TMPDIR,
        // left behind when Chromium is killed: keep it in the profile,
        // which stop removes.
        env.insert("TMPDIR".to_string(), profile.display().to_string());
        let info = processes.start(StartRequest {
            argv: Some(argv),
            env: Some(env),
            ..StartRequest::default()
        })?;
        let active = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + READY_WAIT;
        let (port, ws_path) = loop {
            if let Some(found) = std::fs::read_to_string(&active)
                .ok()
                .and_then(|text| parse_active_port(&text))
            {
                break found;
            }
            if Instant::now() > deadline || !Self::alive(processes, &info.id).await {
                end(processes, &info.id).await;
                let _ = std::fs::remove_dir_all(&profile);
                return Err(AgentError::ToolFailed {
                    tool: program.to_string(),
                    detail: "the browser did not open its DevTools port".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some(Running {
            process_id: info.id,
            headless: req.headless,
            port,
            ws_path,
            profile: Arc::new(Profile(profile)),
        });
        Ok(self.status(processes).await)
    }

    /// Stops the browser (a no-op when none runs).
    pub async fn stop(&self, processes: &Supervisor) -> BrowserStatus {
        let _held = self.lifecycle.lock().await;
        self.stop_locked(processes).await;
        self.status(processes).await
    }

    async fn stop_locked(&self, processes: &Supervisor) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            end(processes, &running.process_id).await;
            let _ = std::fs::remove_dir_all(&running.profile.0);
        }
    }

    /// Whether the browser runs, and how.
    pub async fn status(&self, processes: &Supervisor) -> BrowserStatus {
        match self.current() {
            Some(r) if Self::alive(processes, &r.process_id).await => BrowserStatus {
                running: true,
                headless: Some(r.headless),
                process_id: Some(r.process_id),
                devtools_port: Some(r.port),
            },
            _ => BrowserStatus {
                running: false,
                headless: None,
                process_id: None,
                devtools_port: None,
            },
        }
    }
}

impl Browser {
    /// Loads `url` in the first page; answers at its `load` or
    /// `DOMContentLoaded` event.
    pub async fn navigate(
        &self,
        processes: &Supervisor,
        req: BrowserNavigateRequest,
    ) -> Result<BrowserPage, AgentError> {
        check_url(&req.url)?;
        let url = self.devtools_url(processes).await?;
        within(async {
            let mut page = Page::attach(&url).await?;
            page.call("Page.enable", json!({})).await?;
            let nav = page.call("Page.navigate", json!({"url": req.url})).await?;
            if let Some(error) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
                return Err(AgentError::ToolFailed {
                    tool: "chromium".into(),
                    detail: format!("navigation failed: {error}"),
                });
            }
            // A same-document navigation has no loader and fires no event.
            if nav.get("loaderId").is_some() {
                page.event(match req.wait_until {
                    WaitUntil::Load => "Page.loadEventFired",
                    WaitUntil::Domcontentloaded => "Page.domContentEventFired",
                })
                .await?;
            }
            describe(&mut page, false).await
        })
        .await
    }

    /// The first page's viewport as PNG or JPEG.
    pub async fn screenshot(
        &self,
        processes: &Supervisor,
        format: ImageFormat,
    ) -> Result<Vec<u8>, AgentError> {
        let url = self.devtools_url(processes).await?;
        let format = match format {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        };
        within(async {
            let mut page = Page::attach(&url).await?;
            let shot = page
                .call("Page.captureScreenshot", json!({"format": format}))
                .await?;
            let data = shot["data"].as_str().unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| AgentError::ToolFailed {
                    tool: "chromium".into(),
                    detail: "a screenshot that is not base64".into(),
                })
        })
        .await
    }

    /// The first page's URL, title and `document.body.innerText` (capped).
    pub async fn text(&self, processes: &Supervisor) -> Result<BrowserPage, AgentError> {
        let url = self.devtools_url(processes).await?;
        within(async {
            let mut page = Page::attach(&url).await?;
            describe(&mut page, true).await
        })
        .await
    }
}

/// Runs a high-level call within [`cdp::CALL_LIMIT`].
pub(super) async fn within<T>(
    call: impl std::future::Future<Output = Result<T, AgentError>>,
) -> Result<T, AgentError> {
    tokio::time::timeout(cdp::CALL_LIMIT, call)
        .await
        .map_err(|_| AgentError::ToolTimedOut {
            tool: "chromium".into(),
            secs: cdp::CALL_LIMIT.as_secs(),
        })?
}

/// The page's URL, title and, when `with_text`, its text.
async fn describe(page: &mut Page, with_text: bool) -> Result<BrowserPage, AgentError> {
    let expression = if with_text {
        "[location.href, document.title, document.body ? document.body.innerText : '']"
    } else {
        "[location.href, document.title]"
    };
    let value = page
        .call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )
        .await?;
    let value = &value["result"]["value"];
    let field = |i: usize| value[i].as_str().unwrap_or_default().to_string();
    let (text, truncated) = if with_text {
        let mut text = field(2);
        let truncated = text.len() > MAX_TEXT;
        if truncated {
            let mut end = MAX_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        (Some(text), truncated)
    } else {
        (None, false)
    };
    Ok(BrowserPage {
        url: field(0),
        title: field(1),
        text,
        truncated,
    })
}

/// SIGTERM, then SIGKILL after a grace; the process is forgotten.
async fn end(processes: &Supervisor, id: &str) {
    let _ = processes.signal(id, &SignalSpec::Name("TERM".into()));
    let _ = processes.get(id, Some(STOP_GRACE)).await;
    if let Err(e) = processes.remove(id, true).await {
        tracing::warn!(process = %id, error = %e, "browser did not end");
    }
}

/// `DevToolsActivePort`: the port on the first line, the browser target's
/// path on the second (both written before the file is complete).
fn parse_active_port(text: &str) -> Option<(u16, String)> {
    let mut lines = text.lines();
    let port = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    path.starts_with("/devtools/browser/")
        .then(|| (port, path.to_string()))
}
