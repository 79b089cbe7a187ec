//! Mouse and keyboard through xdotool: positions checked against the
//! screen, keys checked as X key names, text passed as one argv element
//! after `--` (never through a shell), every call bounded in time.

use std::time::Duration;

use warren_api::desktop::{
    KeyboardPressRequest, KeyboardTypeRequest, MouseButton, MouseButtonRequest, MouseClickRequest,
    MouseDragRequest, MousePosition, MouseScrollRequest,
};

use std::sync::PoisonError;

use super::keys;
use super::tool::{Tool, QUICK};
use super::{Desktop, Screen};
use crate::AgentError;

/// Most characters `type` takes at once.
const MAX_TYPE_CHARS: usize = 10_000;
/// Largest delay between typed keys.
const MAX_TYPE_DELAY_MS: u32 = 1000;
/// Delay between typed keys when none is given (xdotool's own default).
const DEFAULT_TYPE_DELAY_MS: u32 = 12;
/// ASCII runs shorter than this between other characters are typed with
/// them (fewer xdotool calls for text that mixes the two).
const MIN_XDOTOOL_RUN: usize = 8;
/// Longest a `type` may take in all.
const MAX_TYPE_TIME: Duration = Duration::from_secs(120);
/// Most clicks of one `click`, and wheel steps of one `scroll`.
const MAX_CLICKS: u32 = 10;
const MAX_SCROLL: i32 = 100;
/// Longest key name or combination.
const MAX_KEY_LEN: usize = 64;
/// Modifiers `press` takes, as xdotool names them.
const MODIFIERS: &[&str] = &["ctrl", "shift", "alt", "super", "meta"];

fn button(b: MouseButton) -> &'static str {
    match b {
        MouseButton::Left => "1",
        MouseButton::Middle => "2",
        MouseButton::Right => "3",
    }
}

/// `mousemove X Y` when both are given; only one of them is an error.
fn move_args(screen: &Screen, x: Option<u32>, y: Option<u32>) -> Result<Vec<String>, AgentError> {
    match (x, y) {
        (Some(x), Some(y)) => {
            screen.check_point("x", x, "y", y)?;
            Ok(vec!["mousemove".into(), x.to_string(), y.to_string()])
        }
        (None, None) => Ok(Vec::new()),
        _ => Err(AgentError::InvalidRequest(
            "give both x and y, or neither".into(),
        )),
    }
}

/// Checks an X key name or `+` combination: printable, no spaces, short.
fn check_key(field: &str, key: &str) -> Result<(), AgentError> {
    let ok = !key.is_empty()
        && key.chars().count() <= MAX_KEY_LEN
        && !key.starts_with('-')
        && key.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if !ok {
        return Err(AgentError::InvalidRequest(format!(
            "{field} must be an X key name such as Return, a or ctrl+l (at most {MAX_KEY_LEN} characters, no spaces)"
        )));
    }
    Ok(())
}

impl Desktop {
    async fn xdotool(&self, screen: &Screen, args: Vec<String>) -> Result<Vec<u8>, AgentError> {
        let mut argv = vec!["xdotool".to_string()];
        argv.extend(args);
        Ok(Tool::new(&screen.display, argv)
            .run(self.processes())
            .await?
            .stdout)
    }

    /// Moves the pointer.
    pub async fn mouse_move(&self, to: MousePosition) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        let args = move_args(&screen, Some(to.x), Some(to.y))?;
        self.xdotool(&screen, args).await.map(drop)
    }

    /// Clicks `count` times, at `x`, `y` if given.
    pub async fn mouse_click(&self, req: MouseClickRequest) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        let count = req.count.unwrap_or(1);
        if !(1..=MAX_CLICKS).contains(&count) {
            return Err(AgentError::InvalidRequest(format!(
                "count must be between 1 and {MAX_CLICKS}"
            )));
        }
        let mut args = move_args(&screen, req.x, req.y)?;
        // xdotool sleeps its delay (default 100 ms) after every click, the
        // last one too: none for a single click.
        let delay = if count > 1 { "80" } else { "0" };
        args.extend(["click", "--repeat", &count.to_string(), "--delay", delay].map(String::from));
        args.push(button(req.button).into());
        self.xdotool(&screen, args).await.map(drop)
    }

    /// Presses (`down`) or releases a button, at `x`, `y` if given.
    pub async fn mouse_button(
        &self,
        req: MouseButtonRequest,
        down: bool,
    ) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        let mut args = move_args(&screen, req.x, req.y)?;
        args.push(if down { "mousedown" } else { "mouseup" }.into());
        args.push(button(req.button).into());
        self.xdotool(&screen, args).await.map(drop)
    }

    /// Presses at the start, moves in steps, releases at the end.
    pub async fn mouse_drag(&self, req: MouseDragRequest) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        screen.check_point("start_x", req.start_x, "start_y", req.start_y)?;
        screen.check_point("end_x", req.end_x, "end_y", req.end_y)?;
        let b = button(req.button);
        let mut args = vec![
            "mousemove".to_string(),
            req.start_x.to_string(),
            req.start_y.to_string(),
            "mousedown".into(),
            b.into(),
        ];
        // A few intermediate moves, so applications see a drag.
        const STEPS: i64 = 5;
        for i in 1..=STEPS {
            let at = |a: u32, b: u32| (a as i64 + (b as i64 - a as i64) * i / STEPS).to_string();
            args.extend([
                "sleep".into(),
                "0.02".into(),
                "mousemove".into(),
                at(req.start_x, req.end_x),
                at(req.start_y, req.end_y),
            ]);
        }
        args.extend(["mouseup".into(), b.into()]);
        self.xdotool(&screen, args).await.map(drop)
    }

    /// Turns the wheel: `dy` down (negative: up), `dx` right (negative: left).
    pub async fn mouse_scroll(&self, req: MouseScrollRequest) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        for (field, v) in [("dx", req.dx), ("dy", req.dy)] {
            if !(-MAX_SCROLL..=MAX_SCROLL).contains(&v) {
                return Err(AgentError::InvalidRequest(format!(
                    "{field} must be between -{MAX_SCROLL} and {MAX_SCROLL}"
                )));
            }
        }
        let mut args = move_args(&screen, req.x, req.y)?;
        for (steps, negative, positive) in [(req.dy, "4", "5"), (req.dx, "6", "7")] {
            if steps != 0 {
                let b = if steps < 0 { negative } else { positive };
                let steps = steps.unsigned_abs().to_string();
                args.extend(["click", "--repeat", &steps, "--delay", "20", b].map(String::from));
            }
        }
        if args.is_empty() {
            return Ok(());
        }
        self.xdotool(&screen, args).await.map(drop)
    }

    /// Where the pointer is.
    pub async fn mouse_position(&self) -> Result<MousePosition, AgentError> {
        let screen = self.screen().await?;
        let out = self
            .xdotool(&screen, vec!["getmouselocation".into(), "--shell".into()])
            .await?;
        let text = String::from_utf8_lossy(&out);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('=')?.parse::<u32>().ok())
        };
        match (field("X"), field("Y")) {
            (Some(x), Some(y)) => Ok(MousePosition { x, y }),
            _ => Err(AgentError::ToolFailed {
                tool: "xdotool".into(),
                detail: format!("unexpected getmouselocation output {text:?}"),
            }),
        }
    }

    /// Types `text` key by key: runs of ASCII through xdotool, the rest
    /// (which xdotool would type by remapping a key for a moment, and lose)
    /// in-process, see [`keys`].
    pub async fn keyboard_type(&self, req: KeyboardTypeRequest) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        let chars = req.text.chars().count();
        if chars > MAX_TYPE_CHARS || req.text.contains('\0') {
            return Err(AgentError::InvalidRequest(format!(
                "text must be at most {MAX_TYPE_CHARS} characters, without NUL"
            )));
        }
        let delay = req.delay_ms.unwrap_or(DEFAULT_TYPE_DELAY_MS);
        if delay > MAX_TYPE_DELAY_MS {
            return Err(AgentError::InvalidRequest(format!(
                "delay_ms must be at most {MAX_TYPE_DELAY_MS}"
            )));
        }
        let needed =
            Duration::from_millis(delay as u64 * chars as u64 * 2) + keys::binding_time(&req.text);
        if needed > MAX_TYPE_TIME {
            return Err(AgentError::InvalidRequest(format!(
                "text with this delay_ms would take longer than {} s; send it in parts",
                MAX_TYPE_TIME.as_secs()
            )));
        }
        for (text, xdotool) in type_runs(&req.text) {
            if xdotool {
                let argv = vec![
                    "xdotool".to_string(),
                    "type".into(),
                    "--delay".into(),
                    delay.to_string(),
                    "--".into(),
                    text,
                ];
                let mut tool = Tool::new(&screen.display, argv);
                tool.timeout = QUICK + needed;
                tool.run(self.processes()).await?;
            } else {
                self.type_unmapped(&screen, text, delay, QUICK + needed)
                    .await?;
            }
        }
        Ok(())
    }

    /// Types `text` through [`keys`](super::keys), off the runtime.
    async fn type_unmapped(
        &self,
        screen: &Screen,
        text: String,
        delay: u32,
        limit: Duration,
    ) -> Result<(), AgentError> {
        let server = self
            .current()
            .map(|r| r.processes[0].1.clone())
            .ok_or(AgentError::DesktopNotRunning)?;
        let (display, keys) = (screen.display.clone(), self.keys.clone());
        let delay = Duration::from_millis(delay as u64);
        tokio::task::spawn_blocking(move || {
            let mut bindings = keys.lock().unwrap_or_else(PoisonError::into_inner);
            keys::type_text(&display, &server, &mut bindings, &text, delay, limit)
        })
        .await
        .map_err(|e| AgentError::ToolFailed {
            tool: "x11 keyboard".into(),
            detail: format!("the typing task: {e}"),
        })?
    }

    /// Presses and releases a key or combination with `modifiers` held.
    pub async fn keyboard_press(&self, req: KeyboardPressRequest) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        check_key("key", &req.key)?;
        let mut combo = String::new();
        for m in &req.modifiers {
            let m = m.to_ascii_lowercase();
            let m = if m == "control" {
                "ctrl".to_string()
            } else {
                m
            };
            if !MODIFIERS.contains(&m.as_str()) {
                return Err(AgentError::InvalidRequest(format!(
                    "modifiers: {m:?} is not one of {}",
                    MODIFIERS.join(", ")
                )));
            }
            combo.push_str(&m);
            combo.push('+');
        }
        combo.push_str(&req.key);
        let args = ["key", "--clearmodifiers", "--", &combo]
            .map(String::from)
            .to_vec();
        self.xdotool(&screen, args).await.map(drop)
    }

    /// Holds (`down`) or releases a key.
    pub async fn keyboard_key(&self, key: &str, down: bool) -> Result<(), AgentError> {
        let screen = self.screen().await?;
        check_key("key", key)?;
        let action = if down { "keydown" } else { "keyup" };
        let args = [action, "--", key].map(String::from).to_vec();
        self.xdotool(&screen, args).await.map(drop)
    }
}

/// Splits `text` into runs, each with whether xdotool types it: ASCII
/// runs, but for short ones between other characters.
fn type_runs(text: &str) -> Vec<(String, bool)> {
    let mut segments: Vec<(&str, bool)> = Vec::new();
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        let ascii = first.is_ascii();
        let len = rest
            .find(|c: char| c.is_ascii() != ascii)
            .unwrap_or(rest.len());
        segments.push((&rest[..len], ascii));
        rest = &rest[len..];
    }
    let last = segments.len().saturating_sub(1);
    let mut runs: Vec<(String, bool)> = Vec::new();
    for (i, (segment, ascii)) in segments.into_iter().enumerate() {
        let between = i > 0 && i < last;
        let xdotool = ascii && (segment.len() >= MIN_XDOTOOL_RUN || !between);
        match runs.last_mut() {
            Some((run, x)) if *x == xdotool => run.push_str(segment),
            _ => runs.push((segment.to_string(), xdotool)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_runs_go_to_xdotool() {
        let runs = |t: &str| type_runs(t);
        let run = |t: &str, x: bool| (t.to_string(), x);
        assert_eq!(runs(""), []);
        assert_eq!(runs("hello"), [run("hello", true)]);
        assert_eq!(
            runs("aé日本z"),
            [run("a", true), run("é日本", false), run("z", true)]
        );
        // Short ASCII gaps go with the characters around them.
        assert_eq!(
            runs("é é, long ascii run ü"),
            [
                run("é é", false),
                run(", long ascii run ", true),
                run("ü", false)
            ]
        );
    }
}
