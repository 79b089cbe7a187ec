//! `keyboard/type` of text outside the keymap (accents, CJK) is typed whole
//! on a fresh X server: xdotool types such a character by remapping a spare
//! keycode, and the first remap after the server starts used to lose a
//! character. Three fresh desktops, Chromium on each with an input that
//! shows its value in the page; the value read back through
//! `browser/text` must be exactly the text typed; then the same again, and
//! more distinct characters than the keymap has spare keys for.

mod common;

use std::time::{Duration, Instant};

use common::TestAgent;
use serde_json::{json, Value};

/// An input that shows its value, in brackets, as the page's text.
const PAGE: &str = "<!doctype html><html><head><title>typing</title></head><body>\
<input id=i autofocus oninput=\"document.getElementById('o').textContent='['+this.value+']'\">\
<div id=o>[]</div></body></html>";

const TEXT: &str = "aé日本z";
/// More distinct characters outside the keymap than it has spare keys.
const MANY: &str = "αβγδεζηθικλμνξοπρστυφχψω";

/// The page's text once it shows `want` (or after 5 s, whatever it shows).
async fn page_text(agent: &TestAgent, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, page) = agent.get("/v1/desktop/browser/text").await;
        assert_eq!(status, 200, "{page}");
        let text = page["text"].as_str().unwrap().trim().to_string();
        if text == want || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ref of the page's text box.
async fn input_ref(agent: &TestAgent) -> Value {
    let (status, snapshot) = agent.get("/v1/desktop/browser/snapshot").await;
    assert_eq!(status, 200, "{snapshot}");
    snapshot["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "textbox")
        .unwrap_or_else(|| panic!("no text box in {snapshot}"))["ref"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_text_is_typed_whole_on_a_fresh_display() {
    let agent = TestAgent::start().await;
    let page = agent.dir.path().join("page.html");
    std::fs::write(&page, PAGE).unwrap();
    let url = format!("file://{}", page.display());
    for round in 1..=3 {
        let (status, desktop) = agent
            .post("/v1/desktop/start", json!({"width": 800, "height": 600}))
            .await;
        assert_eq!(status, 200, "{desktop}");
        let (status, browser) = agent
            .post("/v1/desktop/browser/start", json!({"url": url}))
            .await;
        assert_eq!(status, 200, "{browser}");
        assert_eq!(page_text(&agent, "[]").await, "[]", "round {round}");
        let input = input_ref(&agent).await;
        let (status, clicked) = agent
            .post("/v1/desktop/browser/click", json!({"ref": input}))
            .await;
        assert_eq!(status, 204, "{clicked}");

        let (status, typed) = agent
            .post("/v1/desktop/keyboard/type", json!({"text": TEXT}))
            .await;
        assert_eq!(status, 204, "{typed}");
        let want = format!("[{TEXT}]");
        assert_eq!(page_text(&agent, &want).await, want, "round {round}");
        if round == 3 {
            // Again (the keys are bound now), then more characters than
            // the keymap has spare keys for, in the same call.
            let (status, typed) = agent
                .post(
                    "/v1/desktop/keyboard/type",
                    json!({"text": format!("{TEXT}{MANY}")}),
                )
                .await;
            assert_eq!(status, 204, "{typed}");
            let want = format!("[{TEXT}{TEXT}{MANY}]");
            assert_eq!(page_text(&agent, &want).await, want);
        }

        let (status, _) = agent.post("/v1/desktop/browser/stop", json!({})).await;
        assert_eq!(status, 200);
        let (status, _) = agent.post("/v1/desktop/stop", json!({})).await;
        assert_eq!(status, 200);
    }
}
