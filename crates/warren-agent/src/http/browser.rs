//! `/v1/desktop/browser` routes: the desktop's Chromium
//! ([`crate::desktop::browser::Browser`]) started, stopped, and its
//! DevTools protocol forwarded over a WebSocket, so Playwright's
//! `connectOverCDP` and other CDP clients drive it from outside.

use std::sync::{Arc, LazyLock};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as CdpMessage;

use super::doc::{routes, Routes};
use warren_api::agent::RawBytes;
use warren_api::desktop::{
    BrowserClickRequest, BrowserFillRequest, BrowserNavigateRequest, BrowserPage, BrowserSnapshot,
    BrowserStartRequest, BrowserStatus,
};
use warren_api::desktop::{BrowserScreenshotQuery, ImageFormat};
use warren_api::extract::Json;
use warren_api::extract::Query;
use warren_api::{ErrorCode, Problem};

use crate::{AgentError, AppState};

/// The largest CDP message forwarded either way (screenshots are large).
const MAX_MESSAGE: usize = 64 << 20;
/// DevTools connections open at once.
const MAX_CONNECTIONS: usize = 8;

static CONNECTIONS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(MAX_CONNECTIONS)));

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(status))
        .routes(routes!(cdp))
        .routes(routes!(navigate))
        .routes(routes!(text))
        .routes(routes!(snapshot))
        .routes(routes!(click))
        .routes(routes!(fill))
        .routes(routes!(screenshot))
}

/// Starts Chromium on the desktop's display (or headless) as a managed
/// process, with a fresh profile and its DevTools port on loopback. A
/// running browser is left as it is (its status is returned).
#[utoipa::path(post, path = "/v1/desktop/browser/start", tag = "desktop",
    request_body = BrowserStartRequest,
    responses(
        (status = 200, description = "The browser's status", body = BrowserStatus),
        (status = 400, description = "A URL of another scheme than http, https, file or about (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The desktop is not running and `headless` is false (`desktop_not_running`), or chromium is not installed (`conflict`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn start(
    State(state): State<AppState>,
    Json(req): Json<BrowserStartRequest>,
) -> Result<Json<BrowserStatus>, AgentError> {
    Ok(Json(state.browser.start(&state.desktop, req).await?))
}

/// Stops the browser (a no-op when it is not running).
#[utoipa::path(post, path = "/v1/desktop/browser/stop", tag = "desktop",
    responses(
        (status = 200, description = "The browser's status", body = BrowserStatus),
    ))]
async fn stop(State(state): State<AppState>) -> Json<BrowserStatus> {
    Json(state.browser.stop(&state.processes).await)
}

/// Whether the browser runs, and how.
#[utoipa::path(get, path = "/v1/desktop/browser/status", tag = "desktop",
    responses(
        (status = 200, description = "The browser's status", body = BrowserStatus),
    ))]
async fn status(State(state): State<AppState>) -> Json<BrowserStatus> {
    Json(state.browser.status(&state.processes).await)
}

/// Loads a URL in the browser's first page; answers at its `load` (or
/// `DOMContentLoaded`) event, within 30 s.
#[utoipa::path(post, path = "/v1/desktop/browser/navigate", tag = "desktop",
    request_body = BrowserNavigateRequest,
    responses(
        (status = 200, description = "The page loaded", body = BrowserPage),
        (status = 400, description = "A URL of another scheme than http, https, file or about (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The navigation failed (`internal`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within 30 s (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn navigate(
    State(state): State<AppState>,
    Json(req): Json<BrowserNavigateRequest>,
) -> Result<Json<BrowserPage>, AgentError> {
    Ok(Json(state.browser.navigate(&state.processes, req).await?))
}

/// The first page's URL, title and `document.body.innerText` (at most 1 MiB).
#[utoipa::path(get, path = "/v1/desktop/browser/text", tag = "desktop",
    responses(
        (status = 200, description = "The page and its text", body = BrowserPage),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within 30 s (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn text(State(state): State<AppState>) -> Result<Json<BrowserPage>, AgentError> {
    Ok(Json(state.browser.text(&state.processes).await?))
}

/// The first page's accessibility tree, flattened to elements with refs
/// (at most 2000).
#[utoipa::path(get, path = "/v1/desktop/browser/snapshot", tag = "desktop",
    responses(
        (status = 200, description = "The page's elements", body = BrowserSnapshot),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within 30 s (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn snapshot(State(state): State<AppState>) -> Result<Json<BrowserSnapshot>, AgentError> {
    Ok(Json(state.browser.snapshot(&state.processes).await?))
}

/// Clicks an element of `snapshot` by its ref (in the middle of its box,
/// scrolled into view).
#[utoipa::path(post, path = "/v1/desktop/browser/click", tag = "desktop",
    request_body = BrowserClickRequest,
    responses(
        (status = 204, description = "Clicked"),
        (status = 404, description = "No element with this ref (`element_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within 30 s (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn click(
    State(state): State<AppState>,
    Json(req): Json<BrowserClickRequest>,
) -> Result<StatusCode, AgentError> {
    state.browser.click(&state.processes, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the value of an element of `snapshot` with `text`, typed in.
#[utoipa::path(post, path = "/v1/desktop/browser/fill", tag = "desktop",
    request_body = BrowserFillRequest,
    responses(
        (status = 204, description = "Filled"),
        (status = 400, description = "Text over 1 MiB (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No element with this ref (`element_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within 30 s (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn fill(
    State(state): State<AppState>,
    Json(req): Json<BrowserFillRequest>,
) -> Result<StatusCode, AgentError> {
    state.browser.fill(&state.processes, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The first page's viewport as PNG (default) or JPEG.
#[utoipa::path(get, path = "/v1/desktop/browser/screenshot", tag = "desktop",
    params(BrowserScreenshotQuery),
    responses(
        (status = 200, description = "The image", content((inline(RawBytes) = "image/png"), (inline(RawBytes) = "image/jpeg"))),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "No answer within 30 s (`timeout`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn screenshot(
    State(state): State<AppState>,
    Query(q): Query<BrowserScreenshotQuery>,
) -> Result<Response, AgentError> {
    let kind = match q.format {
        ImageFormat::Png => "image/png",
        ImageFormat::Jpeg => "image/jpeg",
    };
    let bytes = state.browser.screenshot(&state.processes, q.format).await?;
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// The browser's DevTools protocol (CDP) over a WebSocket: every message
/// is forwarded to the browser target's endpoint and back, up to 64 MiB
/// each, at most 8 connections at once.
#[utoipa::path(get, path = "/v1/desktop/browser/cdp", tag = "desktop",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The browser is not running (`browser_not_running`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many DevTools connections (`too_many_requests`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cdp(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    let url = state.browser.devtools_url(&state.processes).await?;
    let upgrade = websocket(upgrade)?;
    let permit = CONNECTIONS.clone().try_acquire_owned().map_err(|_| {
        Problem::new(
            ErrorCode::TooManyRequests,
            format!("at most {MAX_CONNECTIONS} DevTools connections at once"),
        )
    })?;
    let config = WebSocketConfig {
        max_message_size: Some(MAX_MESSAGE),
        max_frame_size: Some(MAX_MESSAGE),
        ..WebSocketConfig::default()
    };
    let (browser, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), false)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "browser DevTools connection failed");
                Problem::from(AgentError::BrowserNotRunning)
            })?;
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| forward(socket, browser, permit)))
}

/// The upgrade of a WebSocket route, or `invalid_request` for a request
/// that is not a WebSocket handshake.
pub(crate) fn websocket(
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, Problem> {
    upgrade.map_err(|rejection| {
        Problem::invalid(format!(
            "{}: this route needs a WebSocket client",
            rejection.body_text()
        ))
    })
}

/// Pumps messages both ways until either side closes.
async fn forward<S>(
    client: WebSocket,
    browser: tokio_tungstenite::WebSocketStream<S>,
    _permit: OwnedSemaphorePermit,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut client_tx, mut client_rx) = client.split();
    let (mut browser_tx, mut browser_rx) = browser.split();
    let up = async {
        while let Some(Ok(message)) = client_rx.next().await {
            let message = match message {
                Message::Text(text) => CdpMessage::Text(text.as_str().to_owned()),
                Message::Binary(bytes) => CdpMessage::Binary(bytes.to_vec()),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if browser_tx.send(message).await.is_err() {
                break;
            }
        }
        let _ = browser_tx.close().await;
    };
    let down = async {
        while let Some(Ok(message)) = browser_rx.next().await {
            let message = match message {
                CdpMessage::Text(text) => Message::Text(text.into()),
                CdpMessage::Binary(bytes) => Message::Binary(bytes.into()),
                CdpMessage::Close(_) => break,
                _ => continue,
            };
            if client_tx.send(message).await.is_err() {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
