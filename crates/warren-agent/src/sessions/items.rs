//! The item shapes of API.md, built one way for every driver: messages,
//! reasoning, tool calls, tool results and status items, each announced
//! (`item.started`), streamed (`item.delta`) and finished (`item.completed`).

use serde_json::{json, Value};

use super::session::SessionEntry;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text from the user or the assistant.
    Message,
    /// The model's reasoning.
    Reasoning,
    /// A tool the agent calls.
    ToolCall,
    /// What a tool call returned.
    ToolResult,
    /// A note about the turn (interrupted, ...).
    Status,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Reasoning => "reasoning",
            Kind::ToolCall => "tool_call",
            Kind::ToolResult => "tool_result",
            Kind::Status => "status",
        }
    }
}

/// An item's object: `{item_id, kind, role?, status, content}`.
pub fn item(item_id: &str, kind: Kind, role: Option<&str>, status: &str, content: Value) -> Value {
    let mut item = json!({
        "item_id": item_id,
        "kind": kind.as_str(),
        "status": status,
        "content": content,
    });
    if let Some(role) = role {
        item["role"] = json!(role);
    }
    item
}

/// Text content: `[{type: "text", text}]`.
pub fn text(text: &str) -> Value {
    json!([{ "type": "text", "text": text }])
}

/// Tool-call content: `[{type: "tool_call", call_id, tool, input}]`.
pub fn tool_call(call_id: &str, tool: &str, input: &Value) -> Value {
    json!([{ "type": "tool_call", "call_id": call_id, "tool": tool, "input": input }])
}

/// Tool-result content: `[{type: "tool_result", call_id, output, is_error}]`.
pub fn tool_result(call_id: &str, output: &Value, is_error: bool) -> Value {
    json!([{ "type": "tool_result", "call_id": call_id, "output": output, "is_error": is_error }])
}

impl SessionEntry {
    /// `item.started` of an item with no content yet.
    pub fn item_started(&self, item_id: &str, kind: Kind, role: Option<&str>, raw: Option<Value>) {
        let item = item(item_id, kind, role, "in_progress", json!([]));
        self.emit("item.started", json!({ "item": item }), raw);
    }

    /// `item.delta`: a piece of an item's text.
    pub fn item_delta(&self, item_id: &str, delta: &str, raw: Option<Value>) {
        self.emit(
            "item.delta",
            json!({ "item_id": item_id, "delta": delta }),
            raw,
        );
    }

    /// `item.completed` with the item's whole content.
    pub fn item_completed(&self, item: Value, raw: Option<Value>) {
        self.emit("item.completed", json!({ "item": item }), raw);
    }
}
