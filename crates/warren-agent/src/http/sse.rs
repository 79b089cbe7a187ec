//! Small helpers shared by the streaming routes: whether a client asked
//! for server-sent events, where it asks to resume, and JSON events.

use axum::http::HeaderMap;
use axum::response::sse::Event;

/// Whether the `Accept` header asks for `text/event-stream`.
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// The `Last-Event-ID` header as a number, if it is one.
pub fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// An SSE event named `name` carrying `data` as JSON.
pub fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    // Serializing the API's plain structs cannot fail.
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Event::default().event(name).data(json)
}
