//! `DISPLAY` in the default environment follows the desktop: `start` sets it
//! to the display it started (whatever its number, over a `DISPLAY` that
//! named another), so commands run through `/v1/processes` reach the desktop;
//! `stop` puts back what was there before (or removes it), unless someone
//! set it since. On a real Xvfb, like `desktop.rs`.

mod common;

use common::TestAgent;
use serde_json::{json, Value};

/// `$DISPLAY` (or `unset`) as a command run through the agent sees it.
async fn display(agent: &TestAgent) -> String {
    let out = agent.run(json!({"cmd": "echo \"${DISPLAY-unset}\""})).await;
    out["stdout"].as_str().unwrap().trim().to_string()
}

async fn start(agent: &TestAgent) -> String {
    let (status, desktop) = agent
        .post("/v1/desktop/start", json!({"width": 640, "height": 480}))
        .await;
    assert_eq!(status, 200, "{desktop}");
    desktop["display"].as_str().unwrap().to_string()
}

async fn stop(agent: &TestAgent) {
    let (status, desktop) = agent.post("/v1/desktop/stop", json!({})).await;
    assert_eq!((status, &desktop["running"]), (200, &json!(false)));
}

async fn patch_display(agent: &TestAgent, value: &str) {
    let resp = agent
        .http
        .patch(agent.url("/v1/environment"))
        .json(&json!({"env": {"DISPLAY": value}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_follows_the_desktop() {
    let agent = TestAgent::start().await;
    assert_eq!(display(&agent).await, "unset");

    // Started: commands see the desktop's display and can draw on it.
    let started = start(&agent).await;
    assert_eq!(display(&agent).await, started);
    let (_, env) = agent.get("/v1/environment").await;
    assert_eq!(env["env"]["DISPLAY"], json!(started), "{env}");
    let out = agent
        .run(json!({"argv": ["xdotool", "getdisplaygeometry"]}))
        .await;
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "640 480", "{out}");
    // Stopped: gone again.
    stop(&agent).await;
    assert_eq!(display(&agent).await, "unset");

    // A DISPLAY naming another display (a template's `:0` on a host where
    // the desktop lands elsewhere; never :99, past the displays tried):
    // replaced while the desktop runs, put back after.
    patch_display(&agent, ":99").await;
    let started = start(&agent).await;
    assert_ne!(started, ":99");
    assert_eq!(display(&agent).await, started);
    stop(&agent).await;
    assert_eq!(display(&agent).await, ":99");

    // One set while the desktop runs is the user's: stop keeps it.
    let started = start(&agent).await;
    assert_eq!(display(&agent).await, started);
    patch_display(&agent, ":42").await;
    stop(&agent).await;
    assert_eq!(display(&agent).await, ":42");
    let (_, env): (u16, Value) = agent.get("/v1/environment").await;
    assert_eq!(env["env"]["DISPLAY"], ":42", "{env}");
}
