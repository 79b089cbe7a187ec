//! `warren desktop click|move|type|press|scroll|windows|open|launch` (the
//! binary as a child process) against a real `desktop` sandbox, and the
//! Rust client's `Browser`: a local page in the desktop's Chromium records
//! the last mouse button and key, and its text is read back through the
//! browser's page-text route.

mod server_common;

use std::time::{Duration, Instant};

use serde_json::Value;
use server_common::{desktop_sandbox, TestServer, ADMIN_KEY};
use warren_client::{BrowserStartRequest, Client, ErrorCode, ImageFormat};

/// The page: the last button pressed, the last key, the characters typed.
const PAGE: &str = r#"<title>ready</title>
<body style="margin:0;height:100vh">
<p id="c">none</p><p id="k">none</p><p id="t">typed:</p>
<script>
addEventListener('mousedown', (e) => { c.textContent = 'down:' + e.button; });
addEventListener('dblclick', () => { c.textContent = 'double'; });
addEventListener('contextmenu', (e) => e.preventDefault());
addEventListener('keydown', (e) => {
  k.textContent = 'key:' + e.key;
  if (e.key.length === 1) t.textContent += e.key;
});
</script>"#;

/// Polls `warren desktop windows ID --json` until a window's title starts
/// with `prefix` and its geometry held still for one poll; returns it.
async fn window(server: &TestServer, id: &str, prefix: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last: Option<Value> = None;
    loop {
        let list: Value = serde_json::from_str(&ok(server, &["windows", id, "--json"]).await)
            .expect("windows --json");
        if let Some(w) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["title"].as_str().unwrap_or("").starts_with(prefix))
        {
            if last.as_ref() == Some(w) {
                return w.clone();
            }
            last = Some(w.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no still window {prefix:?} in {list}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Runs `warren desktop ARGS...`, asserts it succeeded, returns its stdout.
async fn ok(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["desktop"];
    all.extend_from_slice(args);
    server.cli_ok(ADMIN_KEY, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_desktop_input_drives_a_page_read_back_through_the_browser() {
    let (server, id) = desktop_sandbox().await;
    let client = Client::new(&server.base, Some(ADMIN_KEY)).unwrap();
    let desktop = client.sandbox(&id).desktop();
    let browser = desktop.browser();

    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            &format!("cat > /tmp/page.html <<'EOF'\n{PAGE}\nEOF"),
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let err = browser.text().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BrowserNotRunning), "{err}");
    ok(&server, &["start", &id]).await;
    let started = browser
        .start(&BrowserStartRequest {
            url: Some("file:///tmp/page.html".into()),
            headless: false,
        })
        .await
        .unwrap();
    assert!(started.running);
    assert!(browser.status().await.unwrap().running);
    let win = window(&server, &id, "ready").await;
    let (cx, cy) = (
        win["x"].as_i64().unwrap() + win["width"].as_i64().unwrap() / 2,
        win["y"].as_i64().unwrap() + win["height"].as_i64().unwrap() / 2,
    );
    let (cx, cy) = (cx.to_string(), cy.to_string());

    // Reads the page's text until it contains `want`.
    let page_shows = |want: &'static str| {
        let browser = browser.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let page = browser.text().await.unwrap();
                let text = page.text.unwrap_or_default();
                if text.contains(want) {
                    return text;
                }
                assert!(Instant::now() < deadline, "no {want:?} in {text:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    ok(&server, &["click", &id, &cx, &cy, "--button", "right"]).await;
    page_shows("down:2").await;
    ok(&server, &["click", &id, &cx, &cy, "--double"]).await;
    page_shows("double").await;
    ok(&server, &["click", &id, &cx, &cy]).await;
    page_shows("down:0").await;
    ok(&server, &["type", &id, "hi"]).await;
    ok(&server, &["press", &id, "shift+x", "Return"]).await;
    let text = page_shows("key:Enter").await;
    assert!(text.contains("typed:hiX"), "{text:?}");

    ok(&server, &["move", &id, "40", "30"]).await;
    let pos = desktop.mouse_position().await.unwrap();
    assert_eq!((pos.x, pos.y), (40, 30));
    ok(&server, &["scroll", &id, "--up", "--amount", "3"]).await;
    ok(&server, &["scroll", &id]).await;
    let out = server
        .cli(ADMIN_KEY, &["desktop", "click", &id, "5000", "10"])
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid_request"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The browser's other routes through the Rust client.
    let page = browser.navigate("file:///tmp/page.html").await.unwrap();
    assert_eq!(page.title, "ready");
    let snapshot = browser.snapshot().await.unwrap();
    assert!(snapshot.url.ends_with("/tmp/page.html"), "{}", snapshot.url);
    let shot = browser.screenshot(ImageFormat::Png).await.unwrap();
    assert!(shot.starts_with(b"\x89PNG"));
    assert!(browser.cdp_url().starts_with("ws://"));

    // launch, open and the window table.
    let proc = ok(&server, &["launch", &id, "xterm", "-T", "cli-term"]).await;
    assert!(proc.trim().starts_with("proc_"), "{proc}");
    window(&server, &id, "cli-term").await;
    let table = ok(&server, &["windows", &id]).await;
    assert!(
        table.starts_with("ID") && table.contains("cli-term"),
        "{table}"
    );
    let proc = ok(&server, &["open", &id, "file:///tmp/page.html"]).await;
    assert!(proc.trim().starts_with("proc_"), "{proc}");

    assert!(!browser.stop().await.unwrap().running);
    ok(&server, &["stop", &id]).await;
}
