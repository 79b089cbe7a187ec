//! The desktop's browser through the server: Playwright (`playwright-core`
//! from npm, no browser download, cached in the shared test pool) on this
//! host connects over CDP to `ws://SERVER/v1/sandboxes/{id}/desktop/browser/cdp`
//! with a bearer key, and reads the title of a page Chromium shows inside a
//! `desktop` sandbox.

mod server_common;

use std::process::Command;

use serde_json::json;
use server_common::{desktop_sandbox, playwright, ADMIN_KEY};

/// The Node script: connect over CDP, wait for the page, print its title.
const SCRIPT: &str = r#"
const { chromium } = require('playwright-core');
(async () => {
  const [url, key] = process.argv.slice(2);
  const browser = await chromium.connectOverCDP(url, { headers: { Authorization: 'Bearer ' + key }, timeout: 30000 });
  const page = browser.contexts()[0].pages()[0];
  await page.waitForFunction(() => document.title === 'warren cdp', null, { timeout: 30000 });
  console.log('TITLE=' + await page.title());
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playwright_connects_over_cdp_through_the_server() {
    let dir = playwright();
    let (server, id) = desktop_sandbox().await;
    let path = |p: &str| format!("/v1/sandboxes/{id}/desktop/{p}");

    let (status, problem) = server
        .call("GET", &path("browser/cdp"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "browser_not_running");

    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "printf '<title>warren cdp</title><p>hi</p>' > /tmp/page.html",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (status, desktop) = server
        .call("POST", &path("start"), ADMIN_KEY, Some(json!({})))
        .await;
    assert_eq!(status, 200, "{desktop}");
    let (status, browser) = server
        .call(
            "POST",
            &path("browser/start"),
            ADMIN_KEY,
            Some(json!({"url": "file:///tmp/page.html"})),
        )
        .await;
    assert_eq!(status, 200, "{browser}");
    assert_eq!(browser["running"], true);

    let ws = format!(
        "{}/v1/sandboxes/{id}/desktop/browser/cdp",
        server.base.replacen("http://", "ws://", 1)
    );
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), SCRIPT).unwrap();
    let out = tokio::task::spawn_blocking({
        let script = script.path().to_path_buf();
        let dir = dir.to_path_buf();
        move || {
            Command::new("node")
                .arg(&script)
                .args([ws.as_str(), ADMIN_KEY])
                .env("NODE_PATH", dir.join("node_modules"))
                .output()
                .expect("node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("TITLE=warren cdp"),
        "node: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, stopped) = server
        .call("POST", &path("browser/stop"), ADMIN_KEY, Some(json!({})))
        .await;
    assert_eq!((status, stopped["running"].as_bool()), (200, Some(false)));
}
