//! The desktop: a virtual X display (Xvfb) with a window manager (Openbox),
//! both managed processes of the supervisor, driven by mouse, keyboard,
//! window and screenshot operations (`/v1/desktop`).
//!
//! - this module: [`Desktop`], the display's lifecycle (`start`, `stop`,
//!   `status`) and the [`Screen`] every other operation runs against;
//! - [`input`]: mouse and keyboard (xdotool), and [`keys`] typing what
//!   the keymap lacks (XTest, in-process);
//! - [`screen`]: screenshots (ffmpeg's x11grab, one frame as PNG or JPEG);
//! - [`recording`]: screen recordings (ffmpeg to MP4), kept on disk;
//! - [`windows`]: windows (wmctrl, xdotool), clipboard (xclip), `launch`
//!   and `open`;
//! - [`browser`]: Chromium with its DevTools port on loopback, and
//!   [`cdp`] the small DevTools client of its high-level routes,
//!   [`elements`] the page's accessibility snapshot, `click` and `fill`;
//! - [`stream`]: the live view, one `x11vnc -inetd` per viewer;
//! - [`tool`]: bounded runs of those tools (argv only, a time limit each).
//!
//! Nothing here knows of sandboxes: on any host with Xvfb installed it
//! works the same, on the first free display number.

pub mod browser;
pub mod cdp;
pub mod elements;
pub mod input;
pub mod keys;
pub mod recording;
pub mod screen;
pub mod stream;
pub mod tool;
pub mod windows;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use warren_api::agent::{ProcessState, SignalSpec, StartRequest};
use warren_api::desktop::{DesktopProcess, DesktopStartRequest, DesktopStatus, DisplayInfo};

use self::tool::Tool;
use crate::config::DefaultEnv;
use crate::process::Supervisor;
use crate::AgentError;

/// Default screen size and density.
const DEFAULT_WIDTH: u32 = 1280;
const DEFAULT_HEIGHT: u32 = 800;
const DEFAULT_DPI: u32 = 96;
/// Bounds of the screen size and density a caller may ask for.
const MIN_DIM: u32 = 64;
const MAX_WIDTH: u32 = 7680;
const MAX_HEIGHT: u32 = 4320;
const MAX_DPI: u32 = 600;
/// Bits per pixel of the display.
const DEPTH: u32 = 24;
/// Display numbers tried, from 0.
const DISPLAYS: u32 = 64;
/// How long the X server and the window manager get to come up.
const READY_WAIT: Duration = Duration::from_secs(15);
/// A display lock file this old without a server behind it is stale.
const STALE_LOCK_AGE: Duration = Duration::from_secs(10);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The display the operations run against: its name and size.
#[derive(Debug, Clone)]
pub struct Screen {
    /// `:N`.
    pub display: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Screen {
    /// Checks that `x`, `y` is on the screen; the error names the fields.
    pub fn check_point(&self, fx: &str, x: u32, fy: &str, y: u32) -> Result<(), AgentError> {
        if x >= self.width || y >= self.height {
            return Err(AgentError::InvalidRequest(format!(
                "{fx}, {fy} = {x}, {y} is off the screen: {fx} must be below {}, {fy} below {}",
                self.width, self.height
            )));
        }
        Ok(())
    }
}

/// A running desktop.
#[derive(Debug, Clone)]
struct Running {
    screen: Screen,
    dpi: u32,
    /// Managed process ids of the X server and the window manager.
    processes: Vec<(&'static str, String, i32)>,
    /// `DISPLAY` in the default environment before `start` set it to this
    /// display (`stop` puts it back).
    display_before: Option<String>,
}

/// The desktop of this agent. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Desktop {
    processes: Supervisor,
    running: Arc<Mutex<Option<Running>>>,
    /// The recording being made.
    recording: Arc<Mutex<Option<recording::Current>>>,
    /// The agent's state directory (recordings go under it).
    state_dir: PathBuf,
    /// Serializes `start` and `stop` (of the desktop and of recordings).
    lifecycle: Arc<tokio::sync::Mutex<()>>,
    /// The live view's viewers.
    viewers: stream::Viewers,
    /// The default environment of processes, whose `DISPLAY` names the
    /// running display.
    env: DefaultEnv,
    /// Keysyms bound to spare keycodes for typing.
    keys: Arc<Mutex<keys::Bindings>>,
}

impl Desktop {
    /// A desktop, not started, whose processes `processes` supervises,
    /// whose recordings go under `state_dir`, and whose display `env` (the
    /// default environment of processes) names while it runs.
    pub fn new(processes: Supervisor, state_dir: PathBuf, env: DefaultEnv) -> Self {
        Desktop {
            processes,
            running: Arc::default(),
            recording: Arc::default(),
            state_dir,
            lifecycle: Arc::default(),
            viewers: stream::Viewers::default(),
            env,
            keys: Arc::default(),
        }
    }

    /// The supervisor tools and applications run under.
    pub fn processes(&self) -> &Supervisor {
        &self.processes
    }

    fn current(&self) -> Option<Running> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The running display, or `DesktopNotRunning` (also when its X server
    /// has exited).
    pub async fn screen(&self) -> Result<Screen, AgentError> {
        let running = self.current().ok_or(AgentError::DesktopNotRunning)?;
        let (_, xvfb, _) = &running.processes[0];
        if !self.alive(xvfb).await {
            return Err(AgentError::DesktopNotRunning);
        }
        Ok(running.screen)
    }

    async fn alive(&self, id: &str) -> bool {
        matches!(self.processes.get(id, None).await, Ok(p) if p.status == ProcessState::Running)
    }

    /// Starts the display and the window manager, and names the display in
    /// `DISPLAY` of the default environment (what `PATCH /v1/environment`
    /// edits), so processes started from then on use it. Idempotent for
    /// the same size; a running desktop of another size is a conflict.
    pub async fn start(&self, req: DesktopStartRequest) -> Result<DesktopStatus, AgentError> {
        let width = bounded(
            "width",
            req.width.unwrap_or(DEFAULT_WIDTH),
            MIN_DIM,
            MAX_WIDTH,
        )?;
        let height = bounded(
            "height",
            req.height.unwrap_or(DEFAULT_HEIGHT),
            MIN_DIM,
            MAX_HEIGHT,
        )?;
        let dpi = bounded("dpi", req.dpi.unwrap_or(DEFAULT_DPI), 24, MAX_DPI)?;
        let _held = self.lifecycle.lock().await;
        if let Some(running) = self.current() {
            if self.screen().await.is_ok() {
                let s = &running.screen;
                if (s.width, s.height, running.dpi) != (width, height, dpi) {
                    return Err(AgentError::DesktopConflict(format!(
                        "the desktop is running at {}x{} and {} dpi; stop it first to change that",
                        s.width, s.height, running.dpi
                    )));
                }
                return Ok(self.status().await);
            }
            // Its X server died: clear what is left and start again.
            self.stop_locked().await;
        }
        for program in ["Xvfb", "openbox"] {
            if self.processes.find_program(program).is_none() {
                return Err(AgentError::Missing(format!(
                    "{program} is not installed: use the desktop template, or install xvfb and openbox"
                )));
            }
        }
        let (screen, xvfb) = self.start_xvfb(width, height, dpi).await?;
        let mut running = Running {
            screen,
            dpi,
            processes: vec![xvfb],
            display_before: None,
        };
        match self.start_wm(&running.screen.display).await {
            Ok(wm) => running.processes.push(wm),
            Err(e) => {
                self.end(&running.processes).await;
                return Err(e);
            }
        }
        // Commands, terminals and sessions started from now on see this
        // display, whatever its number; a DISPLAY set before is put back
        // by `stop`.
        running.display_before = self
            .env
            .swap("DISPLAY", Some(running.screen.display.clone()));
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some(running);
        Ok(self.status().await)
    }

    /// Starts Xvfb on the first free display; waits for its socket.
    async fn start_xvfb(
        &self,
        width: u32,
        height: u32,
        dpi: u32,
    ) -> Result<(Screen, (&'static str, String, i32)), AgentError> {
        for n in 0..DISPLAYS {
            if display_taken(n) {
                continue;
            }
            let argv = [
                "Xvfb".to_string(),
                format!(":{n}"),
                "-screen".into(),
                "0".into(),
                format!("{width}x{height}x{DEPTH}"),
                "-dpi".into(),
                dpi.to_string(),
                "-nolisten".into(),
                "tcp".into(),
                "-noreset".into(),
                "-ac".into(),
                "+extension".into(),
                "RANDR".into(),
            ];
            let info = self.processes.start(StartRequest {
                argv: Some(argv.to_vec()),
                ..StartRequest::default()
            })?;
            let socket = format!("/tmp/.X11-unix/X{n}");
            let deadline = Instant::now() + READY_WAIT;
            loop {
                // Ours once it listens and holds the display's lock (another
                // server, of another agent on this host, may have won it).
                if std::os::unix::net::UnixStream::connect(&socket).is_ok()
                    && lock_pid(n) == Some(info.pid)
                {
                    let screen = Screen {
                        display: format!(":{n}"),
                        width,
                        height,
                    };
                    return Ok((screen, ("xvfb", info.id, info.pid)));
                }
                if !self.alive(&info.id).await {
                    // Another server took this display first: the next one.
                    let _ = self.processes.remove(&info.id, true).await;
                    break;
                }
                if Instant::now() > deadline {
                    self.end(&[("xvfb", info.id, info.pid)]).await;
                    return Err(AgentError::ToolTimedOut {
                        tool: "Xvfb".into(),
                        secs: READY_WAIT.as_secs(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Err(AgentError::DesktopConflict(format!(
            "no free X display among :0 to :{}",
            DISPLAYS - 1
        )))
    }

    /// Starts Openbox; waits until it lists the screen's windows
    /// (`wmctrl -l`: Openbox answers `wmctrl -m` a moment before it has a
    /// client list, and a window listing in that moment failed).
    async fn start_wm(&self, display: &str) -> Result<(&'static str, String, i32), AgentError> {
        let info = self.processes.start(StartRequest {
            argv: Some(vec!["openbox".into(), "--sm-disable".into()]),
            env: Some(BTreeMap::from([("DISPLAY".into(), display.into())])),
            ..StartRequest::default()
        })?;
        let wm = ("window_manager", info.id, info.pid);
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if Tool::new(display, ["wmctrl", "-l"])
                .run(&self.processes)
                .await
                .is_ok()
            {
                return Ok(wm);
            }
            if Instant::now() > deadline || !self.alive(&wm.1).await {
                self.end(std::slice::from_ref(&wm)).await;
                return Err(AgentError::ToolFailed {
                    tool: "openbox".into(),
                    detail: "the window manager did not come up".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the desktop (a no-op when it is not running) and puts back the
    /// `DISPLAY` the default environment had before `start` (or removes
    /// it), unless it was set to something else since.
    pub async fn stop(&self) -> DesktopStatus {
        let _held = self.lifecycle.lock().await;
        self.stop_locked().await;
        self.status().await
    }

    async fn stop_locked(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.viewers.end_all();
        if let Some(running) = running {
            // Unless someone set DISPLAY since `start` (theirs stays).
            self.env.swap_if(
                "DISPLAY",
                Some(&running.screen.display),
                running.display_before,
            );
            self.end_recording().await;
            // The window manager first, the X server last.
            let mut processes = running.processes;
            processes.reverse();
            self.end(&processes).await;
        }
    }

    /// SIGTERM to each process (so Xvfb removes its lock and socket), then
    /// SIGKILL after a grace; each is forgotten by the supervisor.
    async fn end(&self, processes: &[(&'static str, String, i32)]) {
        for (_, id, _) in processes {
            let _ = self.processes.signal(id, &SignalSpec::Name("TERM".into()));
            let _ = self.processes.get(id, Some(STOP_GRACE)).await;
            if let Err(e) = self.processes.remove(id, true).await {
                tracing::warn!(process = %id, error = %e, "desktop process did not end");
            }
        }
    }

    /// The desktop's state and its processes' health.
    pub async fn status(&self) -> DesktopStatus {
        let Some(running) = self.current() else {
            return DesktopStatus {
                running: false,
                display: None,
                width: None,
                height: None,
                dpi: None,
                processes: Vec::new(),
            };
        };
        let mut processes = Vec::new();
        for (name, id, pid) in &running.processes {
            processes.push(DesktopProcess {
                name: name.to_string(),
                process_id: id.clone(),
                pid: *pid as u32,
                running: self.alive(id).await,
            });
        }
        let running_all = processes.iter().all(|p| p.running);
        processes.extend(self.viewers.processes());
        DesktopStatus {
            running: running_all,
            display: Some(running.screen.display),
            width: Some(running.screen.width),
            height: Some(running.screen.height),
            dpi: Some(running.dpi),
            processes,
        }
    }

    /// The display's name, size, density and depth.
    pub async fn info(&self) -> Result<DisplayInfo, AgentError> {
        let screen = self.screen().await?;
        let dpi = self.current().map_or(DEFAULT_DPI, |r| r.dpi);
        Ok(DisplayInfo {
            display: screen.display,
            width: screen.width,
            height: screen.height,
            dpi,
            depth: DEPTH,
        })
    }
}

/// Whether display `n` has a live X server: one accepts connections on its
/// socket. A lock file without one is stale (left by a server that was
/// killed, or kept on a disk across a hibernation, where its pid may now
/// be another process's) and is removed, so the sandbox keeps display :0.
fn display_taken(n: u32) -> bool {
    let socket = format!("/tmp/.X11-unix/X{n}");
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return true;
    }
    let lock = format!("/tmp/.X{n}-lock");
    let Ok(meta) = std::fs::metadata(&lock) else {
        return false;
    };
    // A server that is starting has a lock and no socket yet, for moments.
    let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
    if age.is_none_or(|age| age < STALE_LOCK_AGE) {
        return true;
    }
    let _ = std::fs::remove_file(&lock);
    let _ = std::fs::remove_file(&socket);
    false
}

/// The process id in display `n`'s lock file.
fn lock_pid(n: u32) -> Option<i32> {
    std::fs::read_to_string(format!("/tmp/.X{n}-lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn bounded(field: &str, value: u32, min: u32, max: u32) -> Result<u32, AgentError> {
    if !(min..=max).contains(&value) {
        return Err(AgentError::InvalidRequest(format!(
            "{field} must be between {min} and {max}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_display_locks_are_cleared_and_young_ones_kept() {
        // Display 63: the last one tried, free on a test host.
        let lock = "/tmp/.X63-lock";
        if std::os::unix::net::UnixStream::connect("/tmp/.X11-unix/X63").is_ok() {
            return;
        }
        std::fs::write(lock, "      4242\n").unwrap();
        assert!(display_taken(63), "a lock being made is respected");
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(!display_taken(63), "a stale lock frees the display");
        assert!(!std::path::Path::new(lock).exists());
    }
}
