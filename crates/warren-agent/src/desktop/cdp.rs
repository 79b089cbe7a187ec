//! A small DevTools protocol client for the browser's high-level routes:
//! one WebSocket per call, attached to the first page target, JSON-RPC ids,
//! and a deadline on the whole call.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::AgentError;

/// The largest message read from the browser.
const MAX_MESSAGE: usize = 64 << 20;
/// How long one high-level call may take, all its commands together.
pub const CALL_LIMIT: Duration = Duration::from_secs(30);

/// A connection to the browser, attached to its first page.
pub struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
}

fn failed(detail: impl Into<String>) -> AgentError {
    AgentError::ToolFailed {
        tool: "chromium".into(),
        detail: detail.into(),
    }
}

impl Page {
    /// Connects to the browser endpoint `url` and attaches to its first page.
    pub async fn attach(url: &str) -> Result<Page, AgentError> {
        let config = WebSocketConfig {
            max_message_size: Some(MAX_MESSAGE),
            max_frame_size: Some(MAX_MESSAGE),
            ..WebSocketConfig::default()
        };
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .map_err(|_| AgentError::BrowserNotRunning)?;
        let mut page = Page {
            ws,
            session: String::new(),
            next_id: 0,
        };
        let targets = page.call("Target.getTargets", json!({})).await?;
        let target = targets["targetInfos"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .ok_or_else(|| failed("the browser has no page open"))?
            .to_string();
        let attached = page
            .call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        page.session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| failed("no session for the page"))?
            .to_string();
        Ok(page)
    }

    /// Sends one command (to the page once attached) and returns its
    /// result; events that arrive meanwhile are dropped.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, AgentError> {
        let id = self.send(method, params).await?;
        loop {
            let message = self.next().await?;
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    return Err(failed(format!(
                        "{method}: {}",
                        error["message"].as_str().unwrap_or("error")
                    )));
                }
                return Ok(message["result"].clone());
            }
        }
    }

    /// Sends a command without waiting; its id.
    pub async fn send(&mut self, method: &str, params: Value) -> Result<u64, AgentError> {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::Text(message.to_string()))
            .await
            .map_err(|_| AgentError::BrowserNotRunning)?;
        Ok(self.next_id)
    }

    /// Waits for the event `method` of the page.
    pub async fn event(&mut self, method: &str) -> Result<Value, AgentError> {
        loop {
            let message = self.next().await?;
            if message["method"] == method && message["sessionId"] == self.session.as_str() {
                return Ok(message["params"].clone());
            }
        }
    }

    /// The next JSON message from the browser.
    async fn next(&mut self) -> Result<Value, AgentError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).map_err(|_| failed("a bad CDP message"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    return Err(AgentError::BrowserNotRunning)
                }
                Some(Ok(_)) => {}
            }
        }
    }
}
