//! The desktop of a sandbox (`/v1/sandboxes/{id}/desktop/...`): its display,
//! screenshots, mouse, keyboard, clipboard, windows, applications and
//! recordings.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use serde::Serialize;
use warren_api::desktop::{
    Clipboard, DesktopStartRequest, DesktopStatus, DisplayInfo, KeyboardPressRequest,
    KeyboardTypeRequest, LaunchRequest, Launched, MouseButtonRequest, MouseClickRequest,
    MouseDragRequest, MousePosition, OpenRequest, Recording, RecordingList, RecordingStartRequest,
    RegionQuery, ScreenshotQuery, StreamUrl, StreamUrlRequest, Window, WindowList,
    WindowMoveRequest, WindowResizeRequest,
};

use crate::error::{Error, Result};
use crate::{Client, Sandbox};

/// The desktop of one sandbox (from [`Sandbox::desktop`]).
#[derive(Debug, Clone)]
pub struct Desktop {
    pub(crate) client: Client,
    pub(crate) sandbox_id: String,
}

impl Sandbox {
    /// Its desktop (the `desktop` template has what it needs).
    pub fn desktop(&self) -> Desktop {
        Desktop {
            client: self.client().clone(),
            sandbox_id: self.id().to_string(),
        }
    }
}

impl Desktop {
    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/v1/sandboxes/{}/desktop/{rest}", self.sandbox_id)
    }

    pub(crate) async fn post<B: Serialize>(&self, rest: &str, body: &B) -> Result<()> {
        let http = self.client.http();
        http.empty(http.post(&self.path(rest)).json(body)).await
    }

    /// Starts the display (idempotent for the same size).
    pub async fn start(&self, request: &DesktopStartRequest) -> Result<DesktopStatus> {
        let http = self.client.http();
        http.json(http.post(&self.path("start")).json(request))
            .await
    }

    /// Stops the display.
    pub async fn stop(&self) -> Result<DesktopStatus> {
        let http = self.client.http();
        http.json(http.post(&self.path("stop"))).await
    }

    /// Whether it runs, and its processes' health.
    pub async fn status(&self) -> Result<DesktopStatus> {
        let http = self.client.http();
        http.json(http.get(&self.path("status"))).await
    }

    /// A shareable live-view URL (the console's `/ui/desktop/{id}` page)
    /// whose token opens only this desktop's stream, for `ttl_seconds`
    /// (1 to 86400; the server's default 3600 when `None`); a `view_only`
    /// one can only watch.
    pub async fn stream_url(&self, view_only: bool, ttl_seconds: Option<u64>) -> Result<StreamUrl> {
        let mut request = StreamUrlRequest {
            view_only,
            ..StreamUrlRequest::default()
        };
        if let Some(ttl) = ttl_seconds {
            request.ttl_seconds = ttl;
        }
        let http = self.client.http();
        http.json(http.post(&self.path("stream/url")).json(&request))
            .await
    }

    /// The display's size and density.
    pub async fn display_info(&self) -> Result<DisplayInfo> {
        let http = self.client.http();
        http.json(http.get(&self.path("display/info"))).await
    }

    /// A screenshot: PNG by default, JPEG with `format`.
    pub async fn screenshot(&self, query: &ScreenshotQuery) -> Result<Bytes> {
        let http = self.client.http();
        let resp = http
            .send(http.get(&self.path("screenshot")).query(query))
            .await?;
        Ok(resp.bytes().await?)
    }

    /// A screenshot of a region of the screen (its position and size, and
    /// the format and scale as for [`Desktop::screenshot`]).
    pub async fn screenshot_region(&self, query: &RegionQuery) -> Result<Bytes> {
        let http = self.client.http();
        let resp = http
            .send(http.get(&self.path("screenshot/region")).query(query))
            .await?;
        Ok(resp.bytes().await?)
    }

    /// Moves the pointer.
    pub async fn move_mouse(&self, x: u32, y: u32) -> Result<()> {
        self.post("mouse/move", &MousePosition { x, y }).await
    }

    /// Clicks (button, count and position in `request`).
    pub async fn click(&self, request: &MouseClickRequest) -> Result<()> {
        self.post("mouse/click", request).await
    }

    /// Presses a button (at the position in `request`, if given) and
    /// holds it.
    pub async fn mouse_down(&self, request: &MouseButtonRequest) -> Result<()> {
        self.post("mouse/down", request).await
    }

    /// Releases a button (at the position in `request`, if given).
    pub async fn mouse_up(&self, request: &MouseButtonRequest) -> Result<()> {
        self.post("mouse/up", request).await
    }

    /// Presses at the start, moves to the end, releases there.
    pub async fn drag(&self, request: &MouseDragRequest) -> Result<()> {
        self.post("mouse/drag", request).await
    }

    /// Where the pointer is.
    pub async fn mouse_position(&self) -> Result<MousePosition> {
        let http = self.client.http();
        http.json(http.get(&self.path("mouse/position"))).await
    }

    /// Types text.
    pub async fn type_text(&self, text: &str) -> Result<()> {
        let body = KeyboardTypeRequest {
            text: text.to_string(),
            delay_ms: None,
        };
        self.post("keyboard/type", &body).await
    }

    /// Presses a key or combination (`Return`, `ctrl+l`).
    pub async fn press(&self, key: &str) -> Result<()> {
        let body = KeyboardPressRequest {
            key: key.to_string(),
            modifiers: Vec::new(),
        };
        self.post("keyboard/press", &body).await
    }

    /// The clipboard's text.
    pub async fn clipboard(&self) -> Result<String> {
        let http = self.client.http();
        let clip: Clipboard = http.json(http.get(&self.path("clipboard"))).await?;
        Ok(clip.text)
    }

    /// Puts text on the clipboard.
    pub async fn set_clipboard(&self, text: &str) -> Result<()> {
        let http = self.client.http();
        let body = Clipboard {
            text: text.to_string(),
        };
        http.empty(
            http.request(reqwest::Method::PUT, &self.path("clipboard"))
                .json(&body),
        )
        .await
    }

    /// The top-level windows.
    pub async fn windows(&self) -> Result<Vec<Window>> {
        Ok(self.window_list().await?.items)
    }

    /// The top-level windows, and whether the list was cut short
    /// (`truncated`, past the agent's limit).
    pub async fn window_list(&self) -> Result<WindowList> {
        let http = self.client.http();
        http.json(http.get(&self.path("windows"))).await
    }

    /// Moves a window's top-left corner to `x`, `y`.
    pub async fn move_window(&self, id: u32, x: i32, y: i32) -> Result<()> {
        self.post(&format!("windows/{id}/move"), &WindowMoveRequest { x, y })
            .await
    }

    /// Resizes a window.
    pub async fn resize_window(&self, id: u32, width: u32, height: u32) -> Result<()> {
        let body = WindowResizeRequest { width, height };
        self.post(&format!("windows/{id}/resize"), &body).await
    }

    /// Focuses a window.
    pub async fn focus_window(&self, id: u32) -> Result<()> {
        self.post(&format!("windows/{id}/focus"), &serde_json::json!({}))
            .await
    }

    /// Closes a window.
    pub async fn close_window(&self, id: u32) -> Result<()> {
        self.post(&format!("windows/{id}/close"), &serde_json::json!({}))
            .await
    }

    /// Starts an application on the display.
    pub async fn launch(&self, app: &str, args: &[&str]) -> Result<Launched> {
        self.launch_with(&LaunchRequest {
            app: app.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            user: None,
        })
        .await
    }

    /// Starts an application on the display, as `request.user` when given.
    pub async fn launch_with(&self, request: &LaunchRequest) -> Result<Launched> {
        let http = self.client.http();
        http.json(http.post(&self.path("launch")).json(request))
            .await
    }

    /// Opens a URL or file with its default handler.
    pub async fn open(&self, target: &str) -> Result<Launched> {
        self.open_with(&OpenRequest {
            target: target.to_string(),
            user: None,
        })
        .await
    }

    /// Opens a URL or file with its default handler, as `request.user`
    /// when given.
    pub async fn open_with(&self, request: &OpenRequest) -> Result<Launched> {
        let http = self.client.http();
        http.json(http.post(&self.path("open")).json(request)).await
    }

    /// Starts recording the screen.
    pub async fn start_recording(&self, framerate: Option<u32>) -> Result<Recording> {
        self.start_recording_with(&RecordingStartRequest {
            framerate,
            ..RecordingStartRequest::default()
        })
        .await
    }

    /// Starts recording the screen with `request`'s frame rate, and
    /// `max_seconds` after which the recording ends by itself (`done`).
    pub async fn start_recording_with(&self, request: &RecordingStartRequest) -> Result<Recording> {
        let http = self.client.http();
        http.json(http.post(&self.path("recording/start")).json(request))
            .await
    }

    /// Stops the recording and finishes its MP4.
    pub async fn stop_recording(&self) -> Result<Recording> {
        let http = self.client.http();
        http.json(http.post(&self.path("recording/stop"))).await
    }

    /// The recordings kept.
    pub async fn recordings(&self) -> Result<Vec<Recording>> {
        let http = self.client.http();
        let list: RecordingList = http.json(http.get(&self.path("recordings"))).await?;
        Ok(list.items)
    }

    /// A recording's MP4, streamed.
    pub async fn download_recording(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<Bytes>> + use<>> {
        let http = self.client.http();
        let resp = http
            .send(http.get(&self.path(&format!("recordings/{id}"))))
            .await?;
        Ok(resp.bytes_stream().map_err(Error::from))
    }

    /// Deletes a recording.
    pub async fn delete_recording(&self, id: &str) -> Result<()> {
        let http = self.client.http();
        http.empty(http.delete(&self.path(&format!("recordings/{id}"))))
            .await
    }
}
