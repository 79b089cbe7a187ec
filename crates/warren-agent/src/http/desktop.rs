//! `/v1/desktop` routes: thin handlers over [`crate::desktop::Desktop`]
//! (display lifecycle, screenshots, mouse, keyboard, clipboard, windows,
//! applications). Every route but `start`, `stop` and `status` answers
//! `desktop_not_running` (409) until the desktop is started.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::doc::{routes, Routes};
use warren_api::agent::RawBytes;
use warren_api::desktop::{
    Clipboard, DesktopStartRequest, DesktopStatus, DisplayInfo, KeyRequest, KeyboardPressRequest,
    KeyboardTypeRequest, LaunchRequest, Launched, MouseButtonRequest, MouseClickRequest,
    MouseDragRequest, MousePosition, MouseScrollRequest, OpenRequest, Recording, RecordingList,
    RecordingStartRequest, RegionQuery, ScreenshotQuery, StreamQuery, WindowList,
    WindowMoveRequest, WindowResizeRequest,
};
use warren_api::extract::{Json, Query};
use warren_api::Problem;

use crate::desktop::screen::Image;
use crate::{AgentError, AppState};

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(status))
        .routes(routes!(display_info))
        .routes(routes!(stream))
        .routes(routes!(screenshot))
        .routes(routes!(screenshot_region))
        .routes(routes!(mouse_move))
        .routes(routes!(mouse_click))
        .routes(routes!(mouse_down))
        .routes(routes!(mouse_up))
        .routes(routes!(mouse_drag))
        .routes(routes!(mouse_scroll))
        .routes(routes!(mouse_position))
        .routes(routes!(keyboard_type))
        .routes(routes!(keyboard_press))
        .routes(routes!(keyboard_down))
        .routes(routes!(keyboard_up))
        .routes(routes!(get_clipboard, set_clipboard))
        .routes(routes!(list_windows))
        .routes(routes!(focus_window))
        .routes(routes!(move_window))
        .routes(routes!(resize_window))
        .routes(routes!(close_window))
        .routes(routes!(launch))
        .routes(routes!(open))
        .routes(routes!(start_recording))
        .routes(routes!(stop_recording))
        .routes(routes!(list_recordings))
        .routes(routes!(download_recording, delete_recording))
}

/// The `{id}` segment of window routes: an X window id in decimal.
pub struct WindowId(pub u32);

impl<S: Send + Sync> FromRequestParts<S> for WindowId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<u32>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(WindowId(id)),
            Err(_) => Err(Problem::invalid("id must be an X window id in decimal")),
        }
    }
}

fn image(image: Image) -> Response {
    (
        [
            (header::CONTENT_TYPE, image.content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        image.bytes,
    )
        .into_response()
}

/// The whole screen as PNG (default) or JPEG at `quality`, scaled by
/// `scale`, with the pointer when `cursor` is true.
#[utoipa::path(get, path = "/v1/desktop/screenshot", tag = "desktop",
    params(ScreenshotQuery),
    responses(
        (status = 200, description = "The image", content((inline(RawBytes) = "image/png"), (inline(RawBytes) = "image/jpeg"))),
        (status = 400, description = "Bad quality or scale (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn screenshot(
    State(state): State<AppState>,
    Query(q): Query<ScreenshotQuery>,
) -> Result<Response, AgentError> {
    Ok(image(state.desktop.screenshot(q).await?))
}

/// A rectangle of the screen, which must lie on it, as `screenshot` encodes it.
#[utoipa::path(get, path = "/v1/desktop/screenshot/region", tag = "desktop",
    params(RegionQuery),
    responses(
        (status = 200, description = "The image", content((inline(RawBytes) = "image/png"), (inline(RawBytes) = "image/jpeg"))),
        (status = 400, description = "A region off the screen, bad quality or scale (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn screenshot_region(
    State(state): State<AppState>,
    Query(q): Query<RegionQuery>,
) -> Result<Response, AgentError> {
    Ok(image(state.desktop.screenshot_region(q).await?))
}

/// Starts the display (Xvfb) and the window manager (Openbox) as managed
/// processes, on the first free display. The same size again is a no-op; a
/// running desktop of another size is a `conflict`.
#[utoipa::path(post, path = "/v1/desktop/start", tag = "desktop",
    request_body = DesktopStartRequest,
    responses(
        (status = 200, description = "The desktop's status", body = DesktopStatus),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Running at another size, no free display, or Xvfb not installed (`conflict`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn start(
    State(state): State<AppState>,
    Json(req): Json<DesktopStartRequest>,
) -> Result<Json<DesktopStatus>, AgentError> {
    Ok(Json(state.desktop.start(req).await?))
}

/// Stops the window manager and the display (a no-op when not running).
#[utoipa::path(post, path = "/v1/desktop/stop", tag = "desktop",
    responses(
        (status = 200, description = "The desktop's status", body = DesktopStatus),
    ))]
async fn stop(State(state): State<AppState>) -> Json<DesktopStatus> {
    Json(state.desktop.stop().await)
}

/// Whether the desktop runs, its size, and the health of its processes.
#[utoipa::path(get, path = "/v1/desktop/status", tag = "desktop",
    responses(
        (status = 200, description = "The desktop's status", body = DesktopStatus),
    ))]
async fn status(State(state): State<AppState>) -> Json<DesktopStatus> {
    Json(state.desktop.status().await)
}

/// The live view: a WebSocket whose binary messages carry the raw RFB
/// (VNC) stream both ways, from a VNC server of its own on the display
/// (`view_only`: one that ignores all input). Offers the `binary`
/// subprotocol (noVNC's). At most 4 viewers at once.
#[utoipa::path(get, path = "/v1/desktop/stream", tag = "desktop",
    params(StreamQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`), or x11vnc is not installed (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many viewers (`too_many_requests`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn stream(
    State(state): State<AppState>,
    Query(q): Query<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    state.desktop.screen().await?;
    let upgrade = super::browser::websocket(upgrade)?;
    let viewer = state.desktop.viewer(q.view_only).await?;
    Ok(upgrade
        .protocols(["binary"])
        .on_upgrade(move |socket| viewer.pump(socket)))
}

/// The display's name, size, density and depth.
#[utoipa::path(get, path = "/v1/desktop/display/info", tag = "desktop",
    responses(
        (status = 200, description = "The display", body = DisplayInfo),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn display_info(State(state): State<AppState>) -> Result<Json<DisplayInfo>, AgentError> {
    Ok(Json(state.desktop.info().await?))
}

/// Moves the pointer.
#[utoipa::path(post, path = "/v1/desktop/mouse/move", tag = "desktop",
    request_body = MousePosition,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_move(
    State(state): State<AppState>,
    Json(req): Json<MousePosition>,
) -> Result<StatusCode, AgentError> {
    state.desktop.mouse_move(req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clicks `count` times with `button`, at `x`, `y` if given.
#[utoipa::path(post, path = "/v1/desktop/mouse/click", tag = "desktop",
    request_body = MouseClickRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_click(
    State(state): State<AppState>,
    Json(req): Json<MouseClickRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.mouse_click(req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Presses a button (at `x`, `y` if given) and holds it.
#[utoipa::path(post, path = "/v1/desktop/mouse/down", tag = "desktop",
    request_body = MouseButtonRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_down(
    State(state): State<AppState>,
    Json(req): Json<MouseButtonRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.mouse_button(req, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Releases a button (at `x`, `y` if given).
#[utoipa::path(post, path = "/v1/desktop/mouse/up", tag = "desktop",
    request_body = MouseButtonRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_up(
    State(state): State<AppState>,
    Json(req): Json<MouseButtonRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.mouse_button(req, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Drags from the start to the end position with `button` held.
#[utoipa::path(post, path = "/v1/desktop/mouse/drag", tag = "desktop",
    request_body = MouseDragRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_drag(
    State(state): State<AppState>,
    Json(req): Json<MouseDragRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.mouse_drag(req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns the wheel `dy` steps down (negative: up) and `dx` right.
#[utoipa::path(post, path = "/v1/desktop/mouse/scroll", tag = "desktop",
    request_body = MouseScrollRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_scroll(
    State(state): State<AppState>,
    Json(req): Json<MouseScrollRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.mouse_scroll(req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where the pointer is.
#[utoipa::path(get, path = "/v1/desktop/mouse/position", tag = "desktop",
    responses(
        (status = 200, description = "The position", body = MousePosition),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mouse_position(State(state): State<AppState>) -> Result<Json<MousePosition>, AgentError> {
    Ok(Json(state.desktop.mouse_position().await?))
}

/// Types text key by key, `delay_ms` apart.
#[utoipa::path(post, path = "/v1/desktop/keyboard/type", tag = "desktop",
    request_body = KeyboardTypeRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn keyboard_type(
    State(state): State<AppState>,
    Json(req): Json<KeyboardTypeRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.keyboard_type(req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Presses and releases a key or combination (`ctrl+l`), `modifiers` held.
#[utoipa::path(post, path = "/v1/desktop/keyboard/press", tag = "desktop",
    request_body = KeyboardPressRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn keyboard_press(
    State(state): State<AppState>,
    Json(req): Json<KeyboardPressRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.keyboard_press(req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Presses a key and holds it.
#[utoipa::path(post, path = "/v1/desktop/keyboard/down", tag = "desktop",
    request_body = KeyRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn keyboard_down(
    State(state): State<AppState>,
    Json(req): Json<KeyRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.keyboard_key(&req.key, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Releases a key.
#[utoipa::path(post, path = "/v1/desktop/keyboard/up", tag = "desktop",
    request_body = KeyRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The tool did not finish in time (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn keyboard_up(
    State(state): State<AppState>,
    Json(req): Json<KeyRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.keyboard_key(&req.key, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The clipboard's text (empty when it holds none).
#[utoipa::path(get, path = "/v1/desktop/clipboard", tag = "desktop",
    responses(
        (status = 200, description = "The clipboard", body = Clipboard),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_clipboard(State(state): State<AppState>) -> Result<Json<Clipboard>, AgentError> {
    Ok(Json(Clipboard {
        text: state.desktop.clipboard().await?,
    }))
}

/// Puts text on the clipboard.
#[utoipa::path(put, path = "/v1/desktop/clipboard", tag = "desktop",
    request_body = Clipboard,
    responses(
        (status = 204, description = "Done"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 1 MiB (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_clipboard(
    State(state): State<AppState>,
    Json(req): Json<Clipboard>,
) -> Result<StatusCode, AgentError> {
    state.desktop.set_clipboard(req.text).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Top-level windows: id, title, geometry and focus.
#[utoipa::path(get, path = "/v1/desktop/windows", tag = "desktop",
    responses(
        (status = 200, description = "The windows", body = WindowList),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_windows(State(state): State<AppState>) -> Result<Json<WindowList>, AgentError> {
    Ok(Json(state.desktop.windows().await?))
}

/// Raises and focuses a window.
#[utoipa::path(post, path = "/v1/desktop/windows/{id}/focus", tag = "desktop",
    params(("id" = u32, Path, description = "X window id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such window (`window_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn focus_window(
    State(state): State<AppState>,
    WindowId(id): WindowId,
) -> Result<StatusCode, AgentError> {
    state.desktop.window_focus(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a window.
#[utoipa::path(post, path = "/v1/desktop/windows/{id}/move", tag = "desktop",
    params(("id" = u32, Path, description = "X window id")),
    request_body = WindowMoveRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such window (`window_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn move_window(
    State(state): State<AppState>,
    WindowId(id): WindowId,
    Json(req): Json<WindowMoveRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.window_move(id, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resizes a window.
#[utoipa::path(post, path = "/v1/desktop/windows/{id}/resize", tag = "desktop",
    params(("id" = u32, Path, description = "X window id")),
    request_body = WindowResizeRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such window (`window_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn resize_window(
    State(state): State<AppState>,
    WindowId(id): WindowId,
    Json(req): Json<WindowResizeRequest>,
) -> Result<StatusCode, AgentError> {
    state.desktop.window_resize(id, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks a window to close, as its close button does.
#[utoipa::path(post, path = "/v1/desktop/windows/{id}/close", tag = "desktop",
    params(("id" = u32, Path, description = "X window id")),
    responses(
        (status = 204, description = "Done"),
        (status = 404, description = "No such window (`window_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn close_window(
    State(state): State<AppState>,
    WindowId(id): WindowId,
) -> Result<StatusCode, AgentError> {
    state.desktop.window_close(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts an application on the display as a managed process
/// (`/v1/processes/{id}`). Chromium run as root gets `--no-sandbox`.
#[utoipa::path(post, path = "/v1/desktop/launch", tag = "desktop",
    request_body = LaunchRequest,
    responses(
        (status = 200, description = "The process started", body = Launched),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn launch(
    State(state): State<AppState>,
    Json(req): Json<LaunchRequest>,
) -> Result<Json<Launched>, AgentError> {
    Ok(Json(state.desktop.launch(req).await?))
}

/// Opens a URL or an HTML file in Chromium, any other file with `xdg-open`.
#[utoipa::path(post, path = "/v1/desktop/open", tag = "desktop",
    request_body = OpenRequest,
    responses(
        (status = 200, description = "The process started", body = Launched),
        (status = 400, description = "Bad input, such as a position off the screen (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running (`desktop_not_running`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn open(
    State(state): State<AppState>,
    Json(req): Json<OpenRequest>,
) -> Result<Json<Launched>, AgentError> {
    Ok(Json(state.desktop.open(req).await?))
}

/// Starts recording the screen (MP4, H.264, the pointer drawn) at
/// `framerate`; at most one at a time, an hour and 1 GiB each.
#[utoipa::path(post, path = "/v1/desktop/recording/start", tag = "desktop",
    request_body = RecordingStartRequest,
    responses(
        (status = 200, description = "Recording", body = Recording),
        (status = 400, description = "Bad framerate (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not running, already recording, or too many recordings kept", body = Problem, content_type = "application/problem+json"),
    ))]
async fn start_recording(
    State(state): State<AppState>,
    Json(req): Json<RecordingStartRequest>,
) -> Result<Json<Recording>, AgentError> {
    Ok(Json(state.desktop.start_recording(req).await?))
}

/// Stops the recording and finishes its file.
#[utoipa::path(post, path = "/v1/desktop/recording/stop", tag = "desktop",
    responses(
        (status = 200, description = "The finished recording", body = Recording),
        (status = 409, description = "No recording is running (`conflict`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn stop_recording(State(state): State<AppState>) -> Result<Json<Recording>, AgentError> {
    Ok(Json(state.desktop.stop_recording().await?))
}

/// The recordings kept, oldest first.
#[utoipa::path(get, path = "/v1/desktop/recordings", tag = "desktop",
    responses((status = 200, description = "The recordings", body = RecordingList)))]
async fn list_recordings(State(state): State<AppState>) -> Result<Json<RecordingList>, AgentError> {
    Ok(Json(state.desktop.recordings().await?))
}

/// A finished recording's MP4.
#[utoipa::path(get, path = "/v1/desktop/recordings/{id}", tag = "desktop",
    params(("id" = String, Path, description = "Recording id (`rec_…`)")),
    responses(
        (status = 200, description = "The MP4", content_type = "video/mp4", body = inline(RawBytes)),
        (status = 404, description = "No such recording (`recording_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still recording (`conflict`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn download_recording(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, AgentError> {
    let (file, len) = state.desktop.recording_file(&id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}

/// Deletes a finished recording.
#[utoipa::path(delete, path = "/v1/desktop/recordings/{id}", tag = "desktop",
    params(("id" = String, Path, description = "Recording id (`rec_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such recording (`recording_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still recording (`conflict`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_recording(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, AgentError> {
    state.desktop.delete_recording(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
