//! Request and response bodies of the agent's desktop API (`/v1/desktop`,
//! forwarded by the server as `/v1/sandboxes/{id}/desktop/...`): a virtual
//! display driven by mouse, keyboard, windows and screenshots. Bodies follow
//! sandbox-agent's desktop API where it has one, in snake_case.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/desktop/start`: the display's size; every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DesktopStartRequest {
    /// Screen width in pixels (default 1280).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Screen height in pixels (default 800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Dots per inch (default 96).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpi: Option<u32>,
}

/// One process of the desktop (the X server, the window manager).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DesktopProcess {
    /// Its role: `xvfb`, `window_manager`, or a live viewer's VNC server
    /// (`vnc`, `vnc_view_only`; `process_id` is then `viewer-N`).
    pub name: String,
    /// Its managed process id (`/v1/processes/{id}`).
    pub process_id: String,
    /// Its pid.
    pub pid: u32,
    /// Whether it is still running.
    pub running: bool,
}

/// `GET /v1/desktop/status`, and the answer of `start` and `stop`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DesktopStatus {
    /// Whether the display is up (and every desktop process runs).
    pub running: bool,
    /// The X display, such as `:0`, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Screen width in pixels, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Screen height in pixels, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Dots per inch, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpi: Option<u32>,
    /// The desktop's processes and their health.
    pub processes: Vec<DesktopProcess>,
}

/// `GET /v1/desktop/display/info`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DisplayInfo {
    /// The X display, such as `:0`.
    pub display: String,
    /// Screen width in pixels.
    pub width: u32,
    /// Screen height in pixels.
    pub height: u32,
    /// Dots per inch.
    pub dpi: u32,
    /// Bits per pixel.
    pub depth: u32,
}

/// Image format of a screenshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// Lossless PNG (the default).
    #[default]
    Png,
    /// JPEG at `quality`.
    Jpeg,
}

/// Query of `GET /v1/desktop/screenshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScreenshotQuery {
    /// `png` (default) or `jpeg`.
    #[serde(default)]
    #[param(inline)]
    pub format: ImageFormat,
    /// JPEG quality, 1 to 100 (default 80).
    #[serde(default)]
    pub quality: Option<u32>,
    /// Scale factor, above 0 and at most 1 (default 1).
    #[serde(default)]
    pub scale: Option<f64>,
    /// Draw the mouse pointer (default false).
    #[serde(default)]
    pub cursor: Option<bool>,
}

/// Query of `GET /v1/desktop/screenshot/region`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegionQuery {
    /// Left edge in screen pixels.
    pub x: u32,
    /// Top edge in screen pixels.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `png` (default) or `jpeg`.
    #[serde(default)]
    #[param(inline)]
    pub format: ImageFormat,
    /// JPEG quality, 1 to 100 (default 80).
    #[serde(default)]
    pub quality: Option<u32>,
    /// Scale factor, above 0 and at most 1 (default 1).
    #[serde(default)]
    pub scale: Option<f64>,
    /// Draw the mouse pointer (default false).
    #[serde(default)]
    pub cursor: Option<bool>,
}

/// A mouse button.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MouseButton {
    /// Button 1 (the default).
    #[default]
    Left,
    /// Button 2.
    Middle,
    /// Button 3.
    Right,
}

/// `POST /v1/desktop/mouse/move`, and `GET /v1/desktop/mouse/position`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MousePosition {
    /// Horizontal position in screen pixels.
    pub x: u32,
    /// Vertical position in screen pixels.
    pub y: u32,
}

/// `POST /v1/desktop/mouse/click`: at `x`, `y` if given, else where the
/// pointer is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MouseClickRequest {
    /// Horizontal position (with `y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<u32>,
    /// Vertical position (with `x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<u32>,
    /// The button (default `left`).
    #[serde(default)]
    pub button: MouseButton,
    /// Clicks, 1 to 10 (default 1; 2 is a double click).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// `POST /v1/desktop/mouse/down` and `up`: at `x`, `y` if given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MouseButtonRequest {
    /// Horizontal position (with `y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<u32>,
    /// Vertical position (with `x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<u32>,
    /// The button (default `left`).
    #[serde(default)]
    pub button: MouseButton,
}

/// `POST /v1/desktop/mouse/drag`: press at the start, move, release at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MouseDragRequest {
    /// Where the button goes down, horizontally.
    pub start_x: u32,
    /// Where the button goes down, vertically.
    pub start_y: u32,
    /// Where it comes up, horizontally.
    pub end_x: u32,
    /// Where it comes up, vertically.
    pub end_y: u32,
    /// The button (default `left`).
    #[serde(default)]
    pub button: MouseButton,
}

/// `POST /v1/desktop/mouse/scroll`: wheel steps; positive `dy` scrolls
/// down, positive `dx` right. At `x`, `y` if given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MouseScrollRequest {
    /// Horizontal position (with `y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<u32>,
    /// Vertical position (with `x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<u32>,
    /// Horizontal steps, -100 to 100.
    #[serde(default)]
    pub dx: i32,
    /// Vertical steps, -100 to 100.
    #[serde(default)]
    pub dy: i32,
}

/// `POST /v1/desktop/keyboard/type`: text typed as key strokes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeyboardTypeRequest {
    /// The text (at most 10000 characters).
    pub text: String,
    /// Delay between keys in milliseconds, 0 to 1000 (default 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u32>,
}

/// `POST /v1/desktop/keyboard/press`: a key or a combination, pressed and
/// released.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeyboardPressRequest {
    /// An X key name (`Return`, `a`, `F5`, `Page_Down`) or a combination
    /// with `+` (`ctrl+l`).
    pub key: String,
    /// Modifiers held around the key (`ctrl`, `shift`, `alt`, `super`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<String>,
}

/// `POST /v1/desktop/keyboard/down` and `up`: one key held or released.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeyRequest {
    /// An X key name, as in `press`.
    pub key: String,
}

/// `GET` and `PUT /v1/desktop/clipboard`: the clipboard's text.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Clipboard {
    /// The text (at most 1 MiB).
    pub text: String,
}

/// One top-level window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Window {
    /// The X window id.
    pub id: u32,
    /// Its title.
    pub title: String,
    /// Left edge in screen pixels.
    pub x: i32,
    /// Top edge in screen pixels.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether it has the input focus.
    pub focused: bool,
}

/// `GET /v1/desktop/windows`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WindowList {
    /// Top-level windows, in stacking order of the window manager.
    pub items: Vec<Window>,
    /// Whether windows were left out: at most 1000 are listed (and at
    /// most 1 MiB of the window manager's list is read).
    #[serde(default)]
    pub truncated: bool,
}

/// `POST /v1/desktop/windows/{id}/move`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WindowMoveRequest {
    /// New left edge.
    pub x: i32,
    /// New top edge.
    pub y: i32,
}

/// `POST /v1/desktop/windows/{id}/resize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WindowResizeRequest {
    /// New width, at least 1.
    pub width: u32,
    /// New height, at least 1.
    pub height: u32,
}

/// `POST /v1/desktop/launch`: an application started on the display.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LaunchRequest {
    /// The program, looked up in `PATH`.
    pub app: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Run as this user (a name from `/etc/passwd`, or a numeric uid), as
    /// `user` of `/v1/processes`. Default: the agent's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `POST /v1/desktop/open`: a file or URL opened with its default handler
/// (URLs and HTML files in Chromium, other files with `xdg-open`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OpenRequest {
    /// An `http(s)://` or `file://` URL, or a path.
    pub target: String,
    /// Run as this user (a name from `/etc/passwd`, or a numeric uid), as
    /// `user` of `/v1/processes`. Default: the agent's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The answer of `launch` and `open`: the managed process started.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Launched {
    /// Its managed process id (`/v1/processes/{id}`).
    pub process_id: String,
    /// Its pid.
    pub pid: u32,
}

/// `POST /v1/desktop/recording/start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RecordingStartRequest {
    /// Frames per second, 1 to 30 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framerate: Option<u32>,
    /// Longest the recording may run, 1 to 3600 seconds (default 3600):
    /// it then ends by itself, as it does at 1 GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seconds: Option<u32>,
}

/// Whether a recording is still being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    /// ffmpeg is still writing it.
    Recording,
    /// Finished: its MP4 can be downloaded.
    Done,
    /// ffmpeg ended by itself without finishing the file (it crashed or
    /// was killed): what it wrote can be downloaded, but may not play.
    Failed,
}

/// A recording of the screen (MP4, H.264).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recording {
    /// Its id (`rec_...`).
    pub id: String,
    /// Still recording, done, or failed.
    pub status: RecordingStatus,
    /// The file's size so far.
    pub size_bytes: u64,
    /// When it was last written (RFC 3339).
    pub modified_at: String,
}

/// `GET /v1/desktop/recordings`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordingList {
    /// Recordings, oldest first.
    pub items: Vec<Recording>,
}

/// `POST /v1/desktop/browser/start`: where the browser opens and how.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BrowserStartRequest {
    /// The first page (http, https, file or about; default `about:blank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Run without a display (default false: on the desktop's display,
    /// which must be started).
    #[serde(default)]
    pub headless: bool,
}

/// `GET /v1/desktop/browser/status`, and the answer of `start` and `stop`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserStatus {
    /// Whether the browser is running.
    pub running: bool,
    /// Whether it runs without a display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headless: Option<bool>,
    /// Its managed process id (`proc_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<String>,
    /// Its DevTools port on the sandbox's loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devtools_port: Option<u16>,
}

/// `POST /v1/desktop/browser/click`: an element of `snapshot`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserClickRequest {
    /// The element's `ref` from `snapshot`.
    #[serde(rename = "ref")]
    pub element: String,
}

/// `POST /v1/desktop/browser/fill`: text typed into an element of
/// `snapshot`, replacing its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserFillRequest {
    /// The element's `ref` from `snapshot`.
    #[serde(rename = "ref")]
    pub element: String,
    /// The text (at most 1 MiB).
    pub text: String,
}

/// One element of the page's accessibility tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserElement {
    /// Its ref for `click` and `fill`, stable while the page stays loaded.
    #[serde(rename = "ref")]
    pub element: String,
    /// Its accessibility role (`button`, `textbox`, `link`, ...).
    pub role: String,
    /// Its accessible name.
    pub name: String,
    /// Its value, for inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `GET /v1/desktop/browser/snapshot`: the page's accessibility tree,
/// flattened in document order, at most 2000 elements.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserSnapshot {
    /// The page's URL.
    pub url: String,
    /// The elements with a role other than a container's, or a name.
    pub elements: Vec<BrowserElement>,
    /// Whether elements were left out at the limit.
    pub truncated: bool,
}

/// When `navigate` answers: after the page's `load` event (default) or its
/// `DOMContentLoaded`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitUntil {
    /// The `load` event.
    #[default]
    Load,
    /// The `DOMContentLoaded` event.
    Domcontentloaded,
}

/// `POST /v1/desktop/browser/navigate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserNavigateRequest {
    /// An http, https, file or about URL.
    pub url: String,
    /// When to answer (default `load`).
    #[serde(default)]
    pub wait_until: WaitUntil,
}

/// The page the browser shows: `navigate`'s answer, and `text`'s with the
/// page's text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrowserPage {
    /// The page's URL.
    pub url: String,
    /// The page's title.
    pub title: String,
    /// `document.body.innerText` (`text` only), at most 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether `text` was cut at its limit.
    #[serde(default)]
    pub truncated: bool,
}

/// Query of `GET /v1/desktop/browser/screenshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BrowserScreenshotQuery {
    /// `png` (default) or `jpeg`.
    #[serde(default)]
    #[param(inline)]
    pub format: ImageFormat,
}

/// Query of `GET /v1/desktop/stream`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Watch only: the viewer's keyboard and mouse never reach the display.
    #[serde(default)]
    pub view_only: bool,
}

/// Body of `POST /v1/sandboxes/{id}/desktop/stream/url` (a server route).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamUrlRequest {
    /// A token that can only watch (default false).
    #[serde(default)]
    pub view_only: bool,
    /// Seconds the token is valid, 1 to 86400 (default 3600).
    #[serde(default = "default_stream_ttl")]
    pub ttl_seconds: u64,
}

impl Default for StreamUrlRequest {
    fn default() -> Self {
        StreamUrlRequest {
            view_only: false,
            ttl_seconds: default_stream_ttl(),
        }
    }
}

fn default_stream_ttl() -> u64 {
    3600
}

/// A shareable live-view URL and the token in it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StreamUrl {
    /// The console's page, `<origin>/ui/desktop/{id}#token=<token>`.
    pub url: String,
    /// The token, offered as the WebSocket subprotocol
    /// `warren.token.<token>` on `/v1/sandboxes/{id}/desktop/stream`.
    pub token: String,
    /// Whether the token can only watch.
    pub view_only: bool,
    /// When the token stops opening streams (RFC 3339).
    pub expires_at: String,
}
