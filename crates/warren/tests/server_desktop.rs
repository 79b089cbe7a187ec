//! The `desktop` template (`templates/desktop.toml`) on a real server: the
//! agent's `/v1/desktop` routes reached through the proxy as
//! `/v1/sandboxes/{id}/desktop/...`, in a sandbox made from the template.
//!
//! Checked: a route before `start` answers `desktop_not_running`; `start`
//! brings up Xvfb and Openbox as managed processes; a screenshot is a PNG
//! of the asked size; an xterm launched through `launch` shows up in
//! `windows` with its title and is closed by id; Chromium opens a local
//! page, which sees a key typed through the proxy and through the Rust
//! client; `warren desktop screenshot` saves a PNG; `stop` ends the display.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{desktop_sandbox, TestServer, ADMIN_KEY};

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_sandbox_through_the_server() {
    let (server, id) = desktop_sandbox().await;
    let path = |p: &str| format!("/v1/sandboxes/{id}/desktop/{p}");

    let (status, problem) = server
        .call("GET", &path("screenshot"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "desktop_not_running");

    let started = Instant::now();
    let (status, desktop) = server
        .call(
            "POST",
            &path("start"),
            ADMIN_KEY,
            Some(json!({"width": 1024, "height": 768})),
        )
        .await;
    assert_eq!(status, 200, "{desktop}");
    eprintln!("desktop started in {:?}", started.elapsed());
    assert_eq!(desktop["running"], true);
    assert_eq!(desktop["display"], ":0", "the first display in a sandbox");
    let names: Vec<&str> = desktop["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["xvfb", "window_manager"]);

    let resp = server
        .req(reqwest::Method::GET, &path("screenshot"), ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(png_size(&resp.bytes().await.unwrap()), (1024, 768));

    // The template's DISPLAY reaches processes started through exec.
    let (code, out) = server
        .sh(ADMIN_KEY, &id, "xdpyinfo | grep dimensions")
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1024x768"), "{out}");

    let (status, launched) = server
        .call(
            "POST",
            &path("launch"),
            ADMIN_KEY,
            Some(json!({"app": "xterm", "args": ["-T", "warren-term"]})),
        )
        .await;
    assert_eq!(status, 200, "{launched}");
    let window = wait_window(&server, &path("windows"), "warren-term").await;
    let (status, body) = server
        .call(
            "POST",
            &path(&format!("windows/{}/close", window["id"])),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // Chromium runs in the sandbox: a page that titles itself with the
    // last key, typed through the proxy.
    let page = "<title>ready</title><script>addEventListener('keydown', \
                e => document.title = 'key:' + e.key)</script>";
    let (code, out) = server
        .sh(ADMIN_KEY, &id, &format!("echo \"{page}\" > /tmp/page.html"))
        .await;
    assert_eq!(code, 0, "{out}");
    let (status, opened) = server
        .call(
            "POST",
            &path("open"),
            ADMIN_KEY,
            Some(json!({"target": "file:///tmp/page.html"})),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    let browser = wait_window(&server, &path("windows"), "ready - Chromium").await;
    let (status, body) = server
        .call(
            "POST",
            &path(&format!("windows/{}/focus", browser["id"])),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = server
        .call(
            "POST",
            &path("keyboard/type"),
            ADMIN_KEY,
            Some(json!({"text": "k"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    wait_window(&server, &path("windows"), "key:k - Chromium").await;

    // The Rust client and the CLI.
    let client = warren_client::Client::new(&server.base, Some(ADMIN_KEY)).unwrap();
    let desktop = client.sandbox(&id).desktop();
    assert!(desktop.status().await.unwrap().running);
    desktop.type_text("z").await.unwrap();
    wait_window(&server, &path("windows"), "key:z - Chromium").await;
    desktop.move_mouse(100, 50).await.unwrap();
    let pos = desktop.mouse_position().await.unwrap();
    assert_eq!((pos.x, pos.y), (100, 50));
    let err = desktop.move_mouse(5000, 0).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(warren_client::ErrorCode::InvalidRequest),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let out = server
        .warren(ADMIN_KEY)
        .args(["desktop", "screenshot", &id, "-o"])
        .arg(&shot)
        .args(["--scale", "0.5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(png_size(&std::fs::read(&shot).unwrap()), (512, 384));

    let (status, stopped) = server.call("POST", &path("stop"), ADMIN_KEY, None).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["running"], false);
    let (status, problem) = server
        .call("GET", &path("mouse/position"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "desktop_not_running");
}

/// Waits until a window titled `title` is listed; returns it.
async fn wait_window(server: &TestServer, path: &str, title: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, list) = server.call("GET", path, ADMIN_KEY, None).await;
        assert_eq!(status, 200, "{list}");
        if let Some(w) = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["title"] == title)
        {
            return w.clone();
        }
        assert!(Instant::now() < deadline, "no window {title:?} in {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
