//! The desktop's browser (`/v1/sandboxes/{id}/desktop/browser/...`):
//! Chromium started and stopped, driven by a few high-level routes
//! (navigate, page text, accessibility snapshot, click and fill by ref,
//! screenshot), and its DevTools endpoint for CDP clients.

use bytes::Bytes;
use serde_json::json;
use warren_api::desktop::{
    BrowserClickRequest, BrowserFillRequest, BrowserNavigateRequest, BrowserPage,
    BrowserScreenshotQuery, BrowserSnapshot, BrowserStartRequest, BrowserStatus, ImageFormat,
    MouseScrollRequest, WaitUntil,
};

use crate::error::Result;
use crate::Desktop;

/// The browser of one sandbox's desktop (from [`Desktop::browser`]).
#[derive(Debug, Clone)]
pub struct Browser {
    desktop: Desktop,
}

impl Desktop {
    /// Its browser (Chromium with DevTools on the sandbox's loopback).
    pub fn browser(&self) -> Browser {
        Browser {
            desktop: self.clone(),
        }
    }

    /// Scrolls the wheel at the pointer: positive `dy` down, positive `dx`
    /// right, in steps.
    pub async fn scroll(&self, dx: i32, dy: i32) -> Result<()> {
        let body = MouseScrollRequest {
            dx,
            dy,
            ..MouseScrollRequest::default()
        };
        self.post("mouse/scroll", &body).await
    }
}

impl Browser {
    fn path(&self, rest: &str) -> String {
        self.desktop.path(&format!("browser/{rest}"))
    }

    /// Starts Chromium (on the display, or headless), at `url` if given.
    pub async fn start(&self, request: &BrowserStartRequest) -> Result<BrowserStatus> {
        let http = self.desktop.client.http();
        http.json(http.post(&self.path("start")).json(request))
            .await
    }

    /// Stops it.
    pub async fn stop(&self) -> Result<BrowserStatus> {
        let http = self.desktop.client.http();
        http.json(http.post(&self.path("stop")).json(&json!({})))
            .await
    }

    /// Whether it runs.
    pub async fn status(&self) -> Result<BrowserStatus> {
        let http = self.desktop.client.http();
        http.json(http.get(&self.path("status"))).await
    }

    /// Loads `url` in the first page and waits for its `load` event.
    pub async fn navigate(&self, url: &str) -> Result<BrowserPage> {
        let http = self.desktop.client.http();
        let body = BrowserNavigateRequest {
            url: url.to_string(),
            wait_until: WaitUntil::Load,
        };
        http.json(http.post(&self.path("navigate")).json(&body))
            .await
    }

    /// The first page's URL, title and text.
    pub async fn text(&self) -> Result<BrowserPage> {
        let http = self.desktop.client.http();
        http.json(http.get(&self.path("text"))).await
    }

    /// The page's accessibility tree, with a ref per element.
    pub async fn snapshot(&self) -> Result<BrowserSnapshot> {
        let http = self.desktop.client.http();
        http.json(http.get(&self.path("snapshot"))).await
    }

    /// Clicks the element of `snapshot` with this ref.
    pub async fn click(&self, element: &str) -> Result<()> {
        let http = self.desktop.client.http();
        let body = BrowserClickRequest {
            element: element.to_string(),
        };
        http.empty(http.post(&self.path("click")).json(&body)).await
    }

    /// Types `text` into the element of `snapshot` with this ref.
    pub async fn fill(&self, element: &str, text: &str) -> Result<()> {
        let http = self.desktop.client.http();
        let body = BrowserFillRequest {
            element: element.to_string(),
            text: text.to_string(),
        };
        http.empty(http.post(&self.path("fill")).json(&body)).await
    }

    /// The page's viewport as PNG or JPEG.
    pub async fn screenshot(&self, format: ImageFormat) -> Result<Bytes> {
        let http = self.desktop.client.http();
        let query = BrowserScreenshotQuery { format };
        let resp = http
            .send(http.get(&self.path("screenshot")).query(&query))
            .await?;
        Ok(resp.bytes().await?)
    }

    /// The `ws://` (or `wss://`) URL of its DevTools endpoint through the
    /// server, for CDP clients (Playwright's `connectOverCDP`), with the
    /// key in its query (`access_token`, which the server strips).
    pub fn cdp_url(&self) -> String {
        let http = self.desktop.client.http();
        http.ws_url(&self.path("cdp"), &[])
    }
}
