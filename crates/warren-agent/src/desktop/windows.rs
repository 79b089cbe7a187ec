//! Windows (listed by wmctrl, acted on by wmctrl and xdotool), the
//! clipboard (xclip), and applications started on the display (`launch`,
//! `open`) as managed processes.

use std::collections::BTreeMap;

use warren_api::agent::StartRequest;
use warren_api::desktop::{
    LaunchRequest, Launched, OpenRequest, Window, WindowList, WindowMoveRequest,
    WindowResizeRequest,
};

use super::tool::Tool;
use super::{Desktop, Screen};
use crate::AgentError;

/// Longest a move or resize waits for the window manager to apply it.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Most bytes of clipboard text.
pub const MAX_CLIPBOARD_BYTES: usize = 1 << 20;
/// Most arguments of `launch`, and bytes of one argument or `open` target.
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 8192;
/// Largest window size and offset `move` and `resize` take.
const MAX_WINDOW_DIM: u32 = 16384;
/// Programs that are Chromium, which refuses to run as root without
/// `--no-sandbox`.
const CHROMIUMS: &[&str] = &["chromium", "chromium-browser", "google-chrome"];
/// What `open` gives Chromium besides the target.
const BROWSER_ARGS: &[&str] = &["--no-first-run", "--no-default-browser-check"];

/// Most windows listed; past it, or past the tool's 1 MiB of output, the
/// list is cut and marked truncated.
const MAX_WINDOWS: usize = 1000;

/// Parses `wmctrl -lG`: `ID DESKTOP X Y W H HOST TITLE...`. Output `cut`
/// at its cap ends in a partial line, which is dropped. At most
/// [`MAX_WINDOWS`]; the bool says whether windows were left out.
fn parse_wmctrl(text: &str, focused: Option<u32>, cut: bool) -> (Vec<Window>, bool) {
    let complete = if cut {
        text.rfind('\n').map_or("", |end| &text[..end])
    } else {
        text
    };
    let mut windows: Vec<Window> = complete
        .lines()
        .filter_map(|line| {
            let mut rest = line;
            let mut fields = Vec::with_capacity(7);
            for _ in 0..7 {
                rest = rest.trim_start();
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                fields.push(&rest[..end]);
                rest = &rest[end..];
            }
            let id = u32::from_str_radix(fields[0].strip_prefix("0x")?, 16).ok()?;
            Some(Window {
                id,
                title: rest.trim().to_string(),
                x: fields[2].parse().ok()?,
                y: fields[3].parse().ok()?,
                width: fields[4].parse().ok()?,
                height: fields[5].parse().ok()?,
                focused: focused == Some(id),
            })
        })
        .take(MAX_WINDOWS + 1)
        .collect();
    let over = windows.len() > MAX_WINDOWS;
    windows.truncate(MAX_WINDOWS);
    (windows, cut || over)
}

fn check_arg(field: &str, arg: &str) -> Result<(), AgentError> {
    if arg.len() > MAX_ARG_BYTES || arg.contains('\0') {
        return Err(AgentError::InvalidRequest(format!(
            "{field} must be at most {MAX_ARG_BYTES} bytes, without NUL"
        )));
    }
    Ok(())
}

impl Desktop {
    /// The windows on `screen`, and whether the list was cut.
    async fn windows_on(&self, screen: &Screen) -> Result<(Vec<Window>, bool), AgentError> {
        // wmctrl reads the client list, then each window's properties: a
        // window destroyed in between (one just closed) fails the whole
        // listing with an X `BadWindow`, so a failure is retried twice.
        let mut attempt = 0;
        let list = loop {
            let listed = Tool {
                truncate_stdout: true,
                ..Tool::new(&screen.display, ["wmctrl", "-lG"])
            }
            .run(self.processes())
            .await;
            match listed {
                Err(AgentError::ToolFailed { .. }) if attempt < 2 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                listed => break listed?,
            }
        };
        // No active window is an error exit of xdotool, and no focus.
        let focused = Tool::new(&screen.display, ["xdotool", "getactivewindow"])
            .run(self.processes())
            .await
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
        Ok(parse_wmctrl(
            &String::from_utf8_lossy(&list.stdout),
            focused,
            list.truncated,
        ))
    }

    /// Top-level windows with their titles, geometry and focus.
    pub async fn windows(&self) -> Result<WindowList, AgentError> {
        let screen = self.screen().await?;
        let (items, truncated) = self.windows_on(&screen).await?;
        Ok(WindowList { items, truncated })
    }

    /// The screen, once window `id` is known to be on it.
    async fn window(&self, id: u32) -> Result<Screen, AgentError> {
        Ok(self.window_now(id).await?.0)
    }

    /// The screen and window `id` as it is now.
    async fn window_now(&self, id: u32) -> Result<(Screen, Window), AgentError> {
        let screen = self.screen().await?;
        let found = self
            .windows_on(&screen)
            .await?
            .0
            .into_iter()
            .find(|w| w.id == id);
        match found {
            Some(window) => Ok((screen, window)),
            None => Err(AgentError::WindowNotFound(id)),
        }
    }

    /// Waits, at most [`SETTLE`], until window `id` shows `applied`: the
    /// window manager applies a move, a resize or a focus after the request
    /// that asked for it has returned, and a caller that lists the windows
    /// (or types) next must see it applied. A window manager may also refuse
    /// or adjust it (a maximized window, a minimum size), so running out of
    /// time is no error.
    async fn window_settled(&self, screen: &Screen, id: u32, applied: impl Fn(&Window) -> bool) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let now = self.windows_on(screen).await;
            let done = match &now {
                Ok((windows, _)) => windows.iter().find(|w| w.id == id).is_none_or(&applied),
                Err(_) => true,
            };
            if done || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Raises and focuses a window; returns once the window manager made
    /// it the active window (at most [`SETTLE`]), so that keys typed next
    /// go to it: `wmctrl` returns as soon as it has asked.
    pub async fn window_focus(&self, id: u32) -> Result<(), AgentError> {
        let screen = self.window(id).await?;
        let argv = ["wmctrl", "-i", "-a", &format!("{id:#x}")].map(String::from);
        Tool::new(&screen.display, argv)
            .run(self.processes())
            .await?;
        self.window_settled(&screen, id, |w| w.focused).await;
        Ok(())
    }

    /// Moves a window's top-left corner.
    pub async fn window_move(&self, id: u32, req: WindowMoveRequest) -> Result<(), AgentError> {
        let max = MAX_WINDOW_DIM as i32;
        if !(-max..=max).contains(&req.x) || !(-max..=max).contains(&req.y) {
            return Err(AgentError::InvalidRequest(format!(
                "x and y must be between -{max} and {max}"
            )));
        }
        let (screen, before) = self.window_now(id).await?;
        let argv = [
            "xdotool",
            "windowmove",
            &id.to_string(),
            &req.x.to_string(),
            &req.y.to_string(),
        ];
        Tool::new(&screen.display, argv.map(String::from))
            .run(self.processes())
            .await?;
        self.window_settled(&screen, id, |w| {
            (w.x, w.y) == (req.x, req.y) || (w.x, w.y) != (before.x, before.y)
        })
        .await;
        Ok(())
    }

    /// Resizes a window.
    pub async fn window_resize(&self, id: u32, req: WindowResizeRequest) -> Result<(), AgentError> {
        if !(1..=MAX_WINDOW_DIM).contains(&req.width) || !(1..=MAX_WINDOW_DIM).contains(&req.height)
        {
            return Err(AgentError::InvalidRequest(format!(
                "width and height must be between 1 and {MAX_WINDOW_DIM}"
            )));
        }
        let (screen, before) = self.window_now(id).await?;
        let argv = [
            "xdotool",
            "windowsize",
            &id.to_string(),
            &req.width.to_string(),
            &req.height.to_string(),
        ];
        Tool::new(&screen.display, argv.map(String::from))
            .run(self.processes())
            .await?;
        self.window_settled(&screen, id, |w| {
            (w.width, w.height) == (req.width, req.height)
                || (w.width, w.height) != (before.width, before.height)
        })
        .await;
        Ok(())
    }

    /// Asks a window to close (as its close button does).
    pub async fn window_close(&self, id: u32) -> Result<(), AgentError> {
        let screen = self.window(id).await?;
        let argv = ["wmctrl", "-i", "-c", &format!("{id:#x}")].map(String::from);
        Tool::new(&screen.display, argv)
            .run(self.processes())
            .await
            .map(drop)
    }

    /// The clipboard's text (empty when it holds none).
    pub async fn clipboard(&self) -> Result<String, AgentError> {
        let screen = self.screen().await?;
        let mut tool = Tool::new(&screen.display, ["xclip", "-selection", "clipboard", "-o"]);
        tool.max_stdout = MAX_CLIPBOARD_BYTES;
        match tool.run(self.processes()).await {
            Ok(out) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            // xclip fails when no client owns the clipboard.
            Err(AgentError::ToolFailed { .. }) => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// Puts text on the clipboard (xclip keeps serving it in the background
    /// until another client takes the clipboard).
    pub async fn set_clipboard(&self, text: String) -> Result<(), AgentError> {
        if text.len() > MAX_CLIPBOARD_BYTES {
            return Err(AgentError::TooLarge {
                what: "clipboard text",
                limit: MAX_CLIPBOARD_BYTES as u64,
            });
        }
        let screen = self.screen().await?;
        let mut tool = Tool::new(&screen.display, ["xclip", "-selection", "clipboard", "-i"]);
        tool.stdin = Some(text.into_bytes());
        tool.run(self.processes()).await.map(drop)
    }

    /// Starts `app` with `args` on the display, as a managed process.
    pub async fn launch(&self, req: LaunchRequest) -> Result<Launched, AgentError> {
        if req.app.is_empty() || req.args.len() > MAX_ARGS {
            return Err(AgentError::InvalidRequest(format!(
                "app must be non-empty, with at most {MAX_ARGS} args"
            )));
        }
        check_arg("app", &req.app)?;
        for arg in &req.args {
            check_arg("args", arg)?;
        }
        let mut argv = vec![req.app];
        argv.extend(req.args);
        self.start_app(argv, req.user).await
    }

    /// Opens a URL or an HTML file in Chromium, anything else with
    /// `xdg-open`.
    pub async fn open(&self, req: OpenRequest) -> Result<Launched, AgentError> {
        let target = req.target;
        check_arg("target", &target)?;
        if target.is_empty() || target.starts_with('-') {
            return Err(AgentError::InvalidRequest(
                "target must be a URL or a path, not empty nor starting with '-'".into(),
            ));
        }
        let lower = target.to_ascii_lowercase();
        let web = ["http://", "https://", "file://"]
            .iter()
            .any(|p| lower.starts_with(p))
            || lower.ends_with(".html")
            || lower.ends_with(".htm");
        let argv = if web {
            let mut argv = vec!["chromium".to_string()];
            argv.extend(BROWSER_ARGS.iter().map(|a| a.to_string()));
            argv.push(target);
            argv
        } else {
            vec!["xdg-open".to_string(), target]
        };
        self.start_app(argv, req.user).await
    }

    /// Starts an app on the display as `user` (default: the agent's own,
    /// as for `/v1/processes`, which checks the user).
    async fn start_app(
        &self,
        mut argv: Vec<String>,
        user: Option<String>,
    ) -> Result<Launched, AgentError> {
        let screen = self.screen().await?;
        let name = argv[0].rsplit('/').next().unwrap_or_default().to_string();
        // Chromium's sandbox needs namespaces a Warren sandbox's seccomp
        // profile refuses (whatever the user), and Chromium refuses to run
        // as root with it; the Warren sandbox is the boundary (as for the
        // agent's browser).
        let mut env = BTreeMap::from([("DISPLAY".to_string(), screen.display)]);
        if CHROMIUMS.contains(&name.as_str()) && !argv.iter().any(|a| a == "--no-sandbox") {
            argv.insert(1, "--no-sandbox".into());
        }
        // Chromium's singleton socket goes in a fresh directory of TMPDIR,
        // left behind when Chromium is killed: keep those in one directory
        // of the agent's state, not in the system's /tmp (for the agent's
        // own user: another may not write there).
        if CHROMIUMS.contains(&name.as_str()) && user.is_none() {
            let tmp = self.state_dir.join("chromium-tmp");
            std::fs::create_dir_all(&tmp).map_err(|source| AgentError::Io {
                op: "creating Chromium's temporary directory",
                source,
            })?;
            env.insert("TMPDIR".to_string(), tmp.display().to_string());
        }
        let info = self.processes().start(StartRequest {
            argv: Some(argv),
            env: Some(env),
            user,
            ..StartRequest::default()
        })?;
        Ok(Launched {
            process_id: info.id,
            pid: info.pid as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wmctrl_lines_parse_with_spaces_in_titles() {
        let text = "0x00a00003  0 10   35   484  316  host  My  page - Chromium\n\
                    0x00c00001 -1 0    0    1280 800  N/A \nbad line\n";
        let (w, truncated) = parse_wmctrl(text, Some(0xa00003), false);
        assert!(!truncated);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].id, 0xa00003);
        assert_eq!(w[0].title, "My  page - Chromium");
        assert_eq!(
            (w[0].x, w[0].y, w[0].width, w[0].height),
            (10, 35, 484, 316)
        );
        assert!(w[0].focused);
        assert_eq!(w[1].title, "");
        assert!(!w[1].focused);
    }

    #[test]
    fn a_long_window_list_is_cut_and_marked() {
        let line = |n: usize| format!("0x{n:08x}  0 0 0 100 100 host {}\n", "t".repeat(100));
        let text: String = (0..20_000).map(line).collect();
        assert!(text.len() > 1 << 20);
        // As the tool gives it: cut at 1 MiB, mid-line.
        let cut = &text[..1 << 20];
        let (w, truncated) = parse_wmctrl(cut, None, true);
        assert!(truncated);
        assert_eq!(w.len(), MAX_WINDOWS);
        assert_eq!(w[MAX_WINDOWS - 1].id, (MAX_WINDOWS - 1) as u32);
        // Fewer complete lines than the cap: all kept, the partial one dropped.
        let short = &text[..line(0).len() * 3 + 20];
        let (w, truncated) = parse_wmctrl(short, None, true);
        assert_eq!((w.len(), truncated), (3, true));
        assert!(w.iter().all(|w| w.title.len() == 100));
        // Many windows in full output: cut at the cap too.
        let (w, truncated) = parse_wmctrl(&text, None, false);
        assert_eq!((w.len(), truncated), (MAX_WINDOWS, true));
    }
}
