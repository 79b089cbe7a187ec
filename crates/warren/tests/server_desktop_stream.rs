//! The desktop's live view on a real server and a real `desktop` sandbox:
//! `/v1/sandboxes/{id}/desktop/stream` is an RFB byte stream over a
//! WebSocket, through the server's proxy.
//!
//! Checked: before `start` the stream is `409 desktop_not_running`; an
//! interactive stream completes the RFB handshake at the desktop's size,
//! delivers rectangles, and its PointerEvents move the pointer, while a
//! view-only stream's do not; live-view tokens from `stream/url` open that
//! sandbox's stream only, expire, refuse tampering, and a view-only token
//! forces view-only; past 4 viewers a stream is `429 too_many_requests`;
//! `warren desktop view --no-open` prints a URL whose token works; `stop`
//! ends the viewers. Prints the stream's frames per second and bytes per
//! second while an xterm scrolls `seq` (`yes` would not do: its
//! screen never changes) (see `rfb::measure`).

// The benchmark's RFB client (bench/src/rfb.rs), one copy for both.
#[allow(dead_code)]
#[path = "../../../bench/src/rfb.rs"]
mod rfb;
mod server_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{desktop_sandbox, TestServer, ADMIN_KEY};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WIDTH: u16 = 800;
const HEIGHT: u16 = 600;

fn ws_request(server: &TestServer, path: &str, auth: Auth<'_>) -> Request {
    let url = format!("{}{path}", server.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    match auth {
        Auth::Key(key) => {
            headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
            headers.insert("sec-websocket-protocol", "binary".parse().unwrap());
        }
        Auth::Token(token) => {
            headers.insert(
                "sec-websocket-protocol",
                format!("binary, warren.token.{token}").parse().unwrap(),
            );
        }
    }
    request
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Key(&'a str),
    Token(&'a str),
}

/// Opens a stream; the refusal's status and problem code otherwise.
async fn open(server: &TestServer, path: &str, auth: Auth<'_>) -> Result<Ws, (u16, String)> {
    match tokio_tungstenite::connect_async(ws_request(server, path, auth)).await {
        Ok((ws, response)) => {
            assert_eq!(
                response.headers()["sec-websocket-protocol"],
                "binary",
                "noVNC's subprotocol is answered"
            );
            Ok(ws)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body: Value = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((
                res.status().as_u16(),
                body["code"].as_str().unwrap_or("").to_string(),
            ))
        }
        Err(e) => panic!("connecting {path}: {e}"),
    }
}

async fn rfb_open(
    server: &TestServer,
    path: &str,
    auth: Auth<'_>,
) -> rfb::Rfb<MaybeTlsStream<TcpStream>> {
    let ws = open(server, path, auth).await.expect("the stream opens");
    let rfb = tokio::time::timeout(
        Duration::from_secs(20),
        rfb::Rfb::handshake(ws, &[rfb::ZRLE, rfb::COPY_RECT, rfb::RAW]),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    assert_eq!((rfb.init.width, rfb.init.height), (WIDTH, HEIGHT));
    rfb
}

async fn position(server: &TestServer, id: &str) -> (u64, u64) {
    let (status, pos) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/desktop/mouse/position"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{pos}");
    (pos["x"].as_u64().unwrap(), pos["y"].as_u64().unwrap())
}

/// Waits up to 10 s for the pointer to be at `want`.
async fn pointer_reaches(server: &TestServer, id: &str, want: (u64, u64)) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if position(server, id).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Live viewers listed in the desktop's status.
async fn viewers(server: &TestServer, id: &str) -> usize {
    let (_, status) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/desktop/status"),
            ADMIN_KEY,
            None,
        )
        .await;
    status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("vnc"))
        .count()
}

async fn stream_url(server: &TestServer, id: &str, key: &str, body: Value) -> (u16, Value) {
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/desktop/stream/url"),
            key,
            Some(body),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_through_the_server() {
    let (server, id) = desktop_sandbox().await;
    let stream = format!("/v1/sandboxes/{id}/desktop/stream");
    let path = |p: &str| format!("/v1/sandboxes/{id}/desktop/{p}");

    let refused = open(&server, &stream, Auth::Key(ADMIN_KEY)).await.err();
    assert_eq!(refused, Some((409, "desktop_not_running".into())));

    let (status, desktop) = server
        .call(
            "POST",
            &path("start"),
            ADMIN_KEY,
            Some(json!({"width": WIDTH, "height": HEIGHT})),
        )
        .await;
    assert_eq!(status, 200, "{desktop}");

    // Interactive: a full update has rectangles; the pointer follows.
    let mut live = rfb_open(&server, &stream, Auth::Key(ADMIN_KEY)).await;
    live.request_update(false).await.unwrap();
    let update = tokio::time::timeout(Duration::from_secs(20), live.next_update())
        .await
        .expect("an update in time")
        .unwrap();
    assert!(update.rects > 0 && update.bytes > 0, "{update:?}");
    live.pointer(100, 200, 0).await.unwrap();
    assert!(pointer_reaches(&server, &id, (100, 200)).await);

    // View-only: the same message moves nothing.
    let mut watching = rfb_open(
        &server,
        &format!("{stream}?view_only=true"),
        Auth::Key(ADMIN_KEY),
    )
    .await;
    watching.pointer(300, 400, 0).await.unwrap();
    watching.request_update(false).await.unwrap();
    watching.next_update().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(position(&server, &id).await, (100, 200));

    // Both viewers are in the status.
    let (_, status) = server.call("GET", &path("status"), ADMIN_KEY, None).await;
    let names: Vec<&str> = status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"vnc") && names.contains(&"vnc_view_only"),
        "{status}"
    );
    assert_eq!(status["running"], true, "{status}");

    // The cap: 4 viewers; a fifth is refused until one leaves.
    let mut more = Vec::new();
    for _ in 0..2 {
        more.push(open(&server, &stream, Auth::Key(ADMIN_KEY)).await.unwrap());
    }
    let refused = open(&server, &stream, Auth::Key(ADMIN_KEY)).await.err();
    assert_eq!(refused, Some((429, "too_many_requests".into())));
    for ws in more {
        drop(ws);
    }
    watching.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while viewers(&server, &id).await != 1 {
        assert!(
            Instant::now() < deadline,
            "viewers leave the status when they go"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    tokens(&server, &id, &stream).await;
    cli_view(&server, &id, &stream).await;
    measure_with_a_scrolling_terminal(&server, &id, &mut live).await;

    // Stopping the desktop ends the viewers.
    let (status, stopped) = server.call("POST", &path("stop"), ADMIN_KEY, None).await;
    assert_eq!(status, 200, "{stopped}");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            live.request_update(true).await?;
            live.next_update().await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), rfb::Error>(())
    })
    .await
    .expect("the stream ends with the desktop");
    assert!(ended.is_err());
}

/// Tokens: scope, expiry, tampering, view-only forced, other tenants.
async fn tokens(server: &TestServer, id: &str, stream: &str) {
    let (status, minted) = stream_url(server, id, ADMIN_KEY, json!({"ttl_seconds": 60})).await;
    assert_eq!(status, 200, "{minted}");
    let token = minted["token"].as_str().unwrap().to_string();
    let url = minted["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("{}/ui/desktop/{id}#token={token}", server.base)
    );
    assert_eq!(minted["view_only"], false);
    assert!(
        minted["expires_at"].as_str().unwrap().ends_with('Z'),
        "{minted}"
    );

    // An interactive token drives the pointer.
    let mut by_token = rfb_open(server, stream, Auth::Token(&token)).await;
    by_token.pointer(10, 20, 0).await.unwrap();
    assert!(pointer_reaches(server, id, (10, 20)).await);
    by_token.close().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while viewers(server, id).await != 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only that sandbox's stream route.
    let other = open(
        server,
        "/v1/sandboxes/sbx_other/desktop/stream",
        Auth::Token(&token),
    )
    .await;
    assert_eq!(other.err(), Some((401, "unauthorized".into())));
    let resp = server
        .http
        .get(server.url(&format!("/v1/sandboxes/{id}/desktop/status")))
        .header("sec-websocket-protocol", format!("warren.token.{token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a token opens no other route");

    // Tampered, expired.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let refused = open(server, stream, Auth::Token(&forged)).await.err();
    assert_eq!(refused, Some((401, "unauthorized".into())));
    let (_, short) = stream_url(server, id, ADMIN_KEY, json!({"ttl_seconds": 1})).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = open(
        server,
        stream,
        Auth::Token(short["token"].as_str().unwrap()),
    )
    .await
    .err();
    assert_eq!(refused, Some((401, "unauthorized".into())));
    for ttl in [0, 86_401] {
        let (status, problem) =
            stream_url(server, id, ADMIN_KEY, json!({"ttl_seconds": ttl})).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_request"))
        );
    }

    // A view-only token cannot ask for input.
    let (_, watch) = stream_url(server, id, ADMIN_KEY, json!({"view_only": true})).await;
    assert_eq!(watch["view_only"], true);
    let mut viewer = rfb_open(
        server,
        &format!("{stream}?view_only=false"),
        Auth::Token(watch["token"].as_str().unwrap()),
    )
    .await;
    viewer.pointer(50, 60, 0).await.unwrap();
    viewer.request_update(false).await.unwrap();
    viewer.next_update().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(position(server, id).await, (10, 20));
    viewer.close().await;

    // Another tenant's key cannot mint for this sandbox.
    let (_, key) = server.tenant("stranger", None).await;
    let (status, problem) = stream_url(server, id, &key, json!({})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("sandbox_not_found"))
    );
}

/// `warren desktop view ID --no-open` prints a URL whose token opens the stream.
async fn cli_view(server: &TestServer, id: &str, stream: &str) {
    let out = server
        .warren(ADMIN_KEY)
        .env_remove("DISPLAY")
        .args([
            "desktop",
            "view",
            id,
            "--view-only",
            "--ttl",
            "120",
            "--no-open",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap();
    let (page, token) = url
        .trim()
        .split_once("#token=")
        .expect("a token in the fragment");
    assert_eq!(page, format!("{}/ui/desktop/{id}", server.base));
    let page = server.http.get(page).send().await.unwrap();
    assert_eq!(page.status(), 200, "the console serves the page");
    let viewer = rfb_open(server, stream, Auth::Token(token)).await;
    viewer.close().await;
}

/// Frames and bytes per second of the stream while an xterm scrolls.
async fn measure_with_a_scrolling_terminal(
    server: &TestServer,
    id: &str,
    live: &mut rfb::Rfb<MaybeTlsStream<TcpStream>>,
) {
    let (status, launched) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/desktop/launch"),
            ADMIN_KEY,
            Some(json!({"app": "xterm", "args": ["-geometry", "100x40+0+0", "-e", "seq", "999999999"]})),
        )
        .await;
    assert_eq!(status, 200, "{launched}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let m = tokio::time::timeout(
        Duration::from_secs(30),
        rfb::measure(live, Duration::from_secs(10)),
    )
    .await
    .expect("the measurement ends")
    .unwrap();
    eprintln!(
        "live view {WIDTH}x{HEIGHT}, xterm scrolling seq: {} updates ({} with rectangles) in {:?}: {:.1} fps, {:.0} bytes/s",
        m.frames,
        m.nonempty,
        m.elapsed,
        m.fps(),
        m.bytes_per_second()
    );
    assert!(m.nonempty >= 10, "{m:?}");
}

/// `/tmp/org.chromium.Chromium.*` entries (Chromium leaves them behind).
fn chromium_temps() -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir("/tmp")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("org.chromium.Chromium."))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The console's live-view page and Desktop tab in Chromium
/// (`ui/test/desktop.test.mjs`), against this server's desktop sandbox.
/// Needs the console's dependencies (`npm ci` in `ui/`, as `ui/scripts/test.sh`
/// does) and a binary built with `ui/dist`; it says so and passes without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_page_in_chromium() {
    let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    if !ui.join("node_modules/playwright-core").is_dir() || !ui.join("dist/index.html").is_file() {
        eprintln!("skipped: run `scripts/build-ui.sh` (npm ci, ui/dist) and rebuild first");
        return;
    }
    let (server, id) = desktop_sandbox().await;
    let before = chromium_temps();
    let out = tokio::process::Command::new("node")
        .current_dir(&ui)
        .args(["scripts/run-tests.mjs", "test/desktop.test.mjs"])
        .env("WARREN_TEST_URL", &server.base)
        .env("WARREN_TEST_API_KEY", ADMIN_KEY)
        .env("WARREN_TEST_DESKTOP", &id)
        .output()
        .await
        .expect("node");
    for dir in chromium_temps().difference(&before) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("# pass 1"),
        "the browser test ran: {stdout}"
    );
}
