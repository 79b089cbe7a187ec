//! The browser page's elements for agents without Playwright: `snapshot`
//! (the accessibility tree, flattened, each element with a ref) and
//! `click` and `fill` by ref. A ref is `e`, the element's backend DOM node
//! id, `_` and the page load's epoch (the start of the main frame's loader
//! id, new with each document): a ref taken before a navigation names no
//! element of the new page, even if a node there has the same id.

use serde_json::{json, Value};
use warren_api::desktop::{
    BrowserClickRequest, BrowserElement, BrowserFillRequest, BrowserSnapshot,
};

use super::browser::{within, Browser};
use super::cdp::Page;
use crate::process::Supervisor;
use crate::AgentError;

/// The most elements `snapshot` returns.
const MAX_ELEMENTS: usize = 2000;
/// The longest name or value returned, in characters.
const MAX_FIELD: usize = 1000;
/// The longest text `fill` types.
const MAX_FILL: usize = 1 << 20;
/// Roles of containers and text runs, left out unless named.
const QUIET_ROLES: [&str; 7] = [
    "none",
    "generic",
    "StaticText",
    "InlineTextBox",
    "LineBreak",
    "RootWebArea",
    "paragraph",
];

fn field(node: &Value, key: &str) -> String {
    let value = &node[key]["value"];
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    text.chars().take(MAX_FIELD).collect()
}

/// How many characters of the loader id make a ref's epoch.
const EPOCH_LEN: usize = 12;

/// The epoch of the document loaded in the page's main frame.
async fn epoch(page: &mut Page) -> Result<String, AgentError> {
    let tree = page.call("Page.getFrameTree", json!({})).await?;
    Ok(tree["frameTree"]["frame"]["loaderId"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(EPOCH_LEN)
        .collect::<String>()
        .to_ascii_lowercase())
}

/// The ref of an element of the document of `epoch`.
fn element_ref(node: u64, epoch: &str) -> String {
    format!("e{node}_{epoch}")
}

/// The backend node id and the epoch a ref names.
fn parse_ref(element: &str) -> Result<(u64, &str), AgentError> {
    element
        .strip_prefix('e')
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(node, epoch)| Some((node.parse().ok()?, epoch)))
        .filter(|(_, epoch)| !epoch.is_empty())
        .ok_or_else(|| AgentError::ElementNotFound(element.to_string()))
}

/// The backend node id of a ref, if the ref is of the document loaded now.
async fn resolve(page: &mut Page, element: &str) -> Result<u64, AgentError> {
    let (node, of) = parse_ref(element)?;
    if of != epoch(page).await? {
        return Err(AgentError::ElementNotFound(format!(
            "{element} (the page has loaded another document since the snapshot)"
        )));
    }
    Ok(node)
}

impl Browser {
    /// The first page's accessibility tree, flattened.
    pub async fn snapshot(&self, processes: &Supervisor) -> Result<BrowserSnapshot, AgentError> {
        let url = self.devtools_url(processes).await?;
        within(async {
            let mut page = Page::attach(&url).await?;
            // Before the tree: a load in between leaves the refs stale,
            // never naming nodes of the new document.
            let epoch = epoch(&mut page).await?;
            let tree = page.call("Accessibility.getFullAXTree", json!({})).await?;
            let href = page
                .call(
                    "Runtime.evaluate",
                    json!({"expression": "location.href", "returnByValue": true}),
                )
                .await?;
            let mut elements = Vec::new();
            let mut truncated = false;
            for node in tree["nodes"].as_array().into_iter().flatten() {
                let Some(id) = node["backendDOMNodeId"].as_u64() else {
                    continue;
                };
                if node["ignored"] == true {
                    continue;
                }
                let role = field(node, "role");
                let name = field(node, "name");
                if role.is_empty() || (QUIET_ROLES.contains(&role.as_str()) && name.is_empty()) {
                    continue;
                }
                if role == "StaticText" || role == "InlineTextBox" {
                    continue;
                }
                if elements.len() == MAX_ELEMENTS {
                    truncated = true;
                    break;
                }
                let value = Some(field(node, "value")).filter(|v| !v.is_empty());
                elements.push(BrowserElement {
                    element: element_ref(id, &epoch),
                    role,
                    name,
                    value,
                });
            }
            Ok(BrowserSnapshot {
                url: href["result"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                elements,
                truncated,
            })
        })
        .await
    }

    /// Clicks the middle of an element, scrolled into view first.
    pub async fn click(
        &self,
        processes: &Supervisor,
        req: BrowserClickRequest,
    ) -> Result<(), AgentError> {
        parse_ref(&req.element)?;
        let url = self.devtools_url(processes).await?;
        within(async {
            let mut page = Page::attach(&url).await?;
            let node = resolve(&mut page, &req.element).await?;
            let missing = |_| AgentError::ElementNotFound(req.element.clone());
            page.call("DOM.scrollIntoViewIfNeeded", json!({"backendNodeId": node}))
                .await
                .map_err(missing)?;
            let model = page
                .call("DOM.getBoxModel", json!({"backendNodeId": node}))
                .await
                .map_err(missing)?;
            let quad: Vec<f64> = model["model"]["content"]
                .as_array()
                .map(|q| q.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            if quad.len() != 8 {
                return Err(AgentError::ElementNotFound(req.element.clone()));
            }
            let x = (quad[0] + quad[2] + quad[4] + quad[6]) / 4.0;
            let y = (quad[1] + quad[3] + quad[5] + quad[7]) / 4.0;
            for kind in ["mousePressed", "mouseReleased"] {
                page.call(
                    "Input.dispatchMouseEvent",
                    json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
                )
                .await?;
            }
            Ok(())
        })
        .await
    }

    /// Focuses an element, clears its value and types `text` into it.
    pub async fn fill(
        &self,
        processes: &Supervisor,
        req: BrowserFillRequest,
    ) -> Result<(), AgentError> {
        if req.text.len() > MAX_FILL {
            return Err(AgentError::InvalidRequest(format!(
                "text must be at most {MAX_FILL} bytes"
            )));
        }
        parse_ref(&req.element)?;
        let url = self.devtools_url(processes).await?;
        within(async {
            let mut page = Page::attach(&url).await?;
            let node = resolve(&mut page, &req.element).await?;
            let missing = |_| AgentError::ElementNotFound(req.element.clone());
            let object = page
                .call("DOM.resolveNode", json!({"backendNodeId": node}))
                .await
                .map_err(missing)?;
            let object_id = object["object"]["objectId"]
                .as_str()
                .ok_or_else(|| AgentError::ElementNotFound(req.element.clone()))?
                .to_string();
            page.call(
                "Runtime.callFunctionOn",
                json!({
                    "objectId": object_id,
                    "functionDeclaration": "function() { this.focus(); if ('value' in this) this.value = ''; }",
                }),
            )
            .await?;
            page.call("Input.insertText", json!({"text": req.text}))
                .await?;
            Ok(())
        })
        .await
    }
}
