//! The web console's server side: `/ui` served without a key, with a strict
//! CSP and SPA fallback; a WebSocket authenticated by a
//! `Sec-WebSocket-Protocol` credential (the browser's way, no key in a URL).

mod server_common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_without_a_key_and_with_a_strict_csp() {
    let server = TestServer::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let res = http.get(server.url("/ui")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/ui/");

    for path in ["/ui/", "/ui/sandboxes/sbx_x/terminal"] {
        let res = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-cache");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let etag = headers["etag"].clone();
        let body = res.text().await.unwrap();
        assert!(body.contains("<html"), "{body}");

        let res = http
            .get(server.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 304);
    }

    // A missing asset is a 404, never index.html served as JavaScript.
    let res = http
        .get(server.url("/ui/assets/app-NOPE.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The API still wants a key.
    let res = http.get(server.url("/v1/sandboxes")).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// A WebSocket request to `path` offering `protocols`.
fn ws_request(
    server: &TestServer,
    path: &str,
    protocols: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = format!("{}{path}", server.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    request
}

fn credential(key: &str) -> String {
    format!("warren.v1, warren.key.{}", URL_SAFE_NO_PAD.encode(key))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_authenticates_with_a_protocol_credential() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("console", None).await;
    let (_, other_key) = server.tenant("other", None).await;
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();
    let (status, proc_) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            &key,
            Some(json!({"cmd": "read line; echo got:$line"})),
        )
        .await;
    assert_eq!(status, 201, "{proc_}");
    let pid = proc_["id"].as_str().unwrap();
    let path = format!("/v1/sandboxes/{id}/processes/{pid}/ws");

    // A bad key and another tenant's key are refused before any upgrade.
    for (bad, want) in [("not-a-key", 401), (other_key.as_str(), 404)] {
        let err = tokio_tungstenite::connect_async(ws_request(&server, &path, &credential(bad)))
            .await
            .expect_err("refused");
        match err {
            tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), want),
            other => panic!("expected an HTTP refusal, got {other}"),
        }
    }

    // The tenant's own key: the server answers `warren.v1` (tungstenite
    // checks the answer names an offered protocol, as browsers do).
    let (mut ws, res) =
        tokio_tungstenite::connect_async(ws_request(&server, &path, &credential(&key)))
            .await
            .expect("ws connect");
    assert_eq!(res.headers()["sec-websocket-protocol"], "warren.v1");
    ws.send(Message::Text(r#"{"type":"stdin","data":"hello\n"}"#.into()))
        .await
        .unwrap();
    let mut output = Vec::new();
    let mut exit = None;
    let talk = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ws.next().await {
            match msg.unwrap() {
                Message::Binary(frame) => output.extend_from_slice(&frame[1..]),
                Message::Text(text) => {
                    let control: Value = serde_json::from_str(&text).unwrap();
                    if control["type"] == "exit" {
                        exit = Some(control);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(talk.is_ok(), "the WebSocket did not end");
    assert_eq!(String::from_utf8_lossy(&output), "got:hello\n");
    assert_eq!(exit.expect("an exit message")["exit_code"], 0);

    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
}
