//! `/v1/desktop/browser` with a real Chromium (headless, so no display):
//! start on a local page, the DevTools protocol forwarded through the
//! agent's WebSocket reads the page's title, `navigate` and `text` read a
//! second page, `snapshot`, `fill` and `click` by ref drive a form,
//! `screenshot` is a PNG or a JPEG, and the errors: a bad URL scheme, the routes before start
//! and after stop.

mod common;

use std::time::Duration;

use common::TestAgent;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PAGE: &str = "<!doctype html><html><head><title>warren browser</title></head>\
<body><button id=b>Go</button><input id=i></body></html>";

async fn post(agent: &TestAgent, path: &str, body: Value) -> (u16, Value) {
    let resp = agent
        .http
        .post(agent.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The ref of the page's "Go" button in a fresh snapshot.
async fn go_button(agent: &TestAgent) -> Value {
    let snapshot: Value = agent
        .http
        .get(agent.url("/v1/desktop/browser/snapshot"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    snapshot["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"] == "button" && e["name"] == "Go")
        .unwrap_or_else(|| panic!("no button in {snapshot}"))["ref"]
        .clone()
}

/// Sends one CDP command and waits for the answer with its id.
async fn call<S>(ws: &mut S, id: u64, method: &str, params: Value) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures::Sink<Message>
        + Unpin,
    <S as futures::Sink<Message>>::Error: std::fmt::Debug,
{
    let msg = json!({"id": id, "method": method, "params": params});
    ws.send(Message::Text(msg.to_string())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let Message::Text(text) = ws.next().await.unwrap().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                return v;
            }
        }
    })
    .await
    .expect("CDP answer in time")
}

#[tokio::test]
async fn browser_over_cdp() {
    let agent = TestAgent::start().await;
    let cdp = format!("ws://{}/v1/desktop/browser/cdp", agent.addr);

    // Before start: the CDP route is a problem, not an upgrade.
    let err = tokio_tungstenite::connect_async(cdp.as_str())
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("expected an HTTP answer, got {err:?}");
    };
    assert_eq!(resp.status(), 409);
    let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["code"], "browser_not_running");

    // A bad scheme, and a headed start without a desktop.
    let (status, problem) = post(
        &agent,
        "/v1/desktop/browser/start",
        json!({"url": "javascript:alert(1)", "headless": true}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, problem) = post(&agent, "/v1/desktop/browser/start", json!({})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("desktop_not_running"))
    );

    let page = agent.dir.path().join("page.html");
    std::fs::write(&page, PAGE).unwrap();
    let url = format!("file://{}", page.display());
    let (status, started) = post(
        &agent,
        "/v1/desktop/browser/start",
        json!({"url": url, "headless": true}),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["running"], true);
    assert_eq!(started["headless"], true);
    assert!(started["devtools_port"].as_u64().unwrap() > 0);
    // Chromium's singleton socket is in its profile, which stop removes,
    // not in a directory of /tmp left behind when Chromium is killed.
    let profile = std::env::temp_dir().join(format!("warren-browser-{}", std::process::id()));
    let socket = std::fs::read_link(profile.join("SingletonSocket")).unwrap();
    assert!(socket.starts_with(&profile), "{}", socket.display());
    // Started again: the same browser.
    let (_, again) = post(
        &agent,
        "/v1/desktop/browser/start",
        json!({"headless": true}),
    )
    .await;
    assert_eq!(again["process_id"], started["process_id"]);

    // Through the agent's WebSocket: the page target and its title.
    let (mut ws, _) = tokio_tungstenite::connect_async(cdp.as_str())
        .await
        .unwrap();
    let version = call(&mut ws, 1, "Browser.getVersion", json!({})).await;
    assert!(
        version["result"]["product"]
            .as_str()
            .unwrap()
            .contains("Chrome"),
        "{version}"
    );
    let mut title = String::new();
    for _ in 0..100 {
        let targets = call(&mut ws, 2, "Target.getTargets", json!({})).await;
        let infos = targets["result"]["targetInfos"].as_array().unwrap().clone();
        if let Some(t) = infos.iter().find(|t| t["type"] == "page") {
            title = t["title"].as_str().unwrap_or_default().to_string();
            if title == "warren browser" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(title, "warren browser");
    drop(ws);

    // navigate and text: a second page, its text read back.
    let second = agent.dir.path().join("second.html");
    std::fs::write(
        &second,
        "<title>second</title><script>document.addEventListener('DOMContentLoaded', \
         () => document.body.append('added by script'))</script><p>hello page</p>",
    )
    .unwrap();
    let second_url = format!("file://{}", second.display());
    let (status, page) = post(
        &agent,
        "/v1/desktop/browser/navigate",
        json!({"url": second_url, "wait_until": "load"}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["title"], "second");
    assert_eq!(page["url"], second_url);
    let text: Value = agent
        .http
        .get(agent.url("/v1/desktop/browser/text"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = text["text"].as_str().unwrap();
    assert!(
        body.contains("hello page") && body.contains("added by script"),
        "{text}"
    );
    assert_eq!(text["truncated"], false);

    // snapshot, fill and click by ref: the button shows the input's value.
    let form = agent.dir.path().join("form.html");
    std::fs::write(
        &form,
        "<title>form</title><input id=i aria-label=Name>\
         <button onclick=\"document.getElementById('o').textContent='got:'+\
         document.getElementById('i').value\">Go</button><p id=o>none</p>",
    )
    .unwrap();
    let form_served = form.clone();
    let (status, page) = post(
        &agent,
        "/v1/desktop/browser/navigate",
        json!({"url": format!("file://{}", form.display()), "wait_until": "domcontentloaded"}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let snapshot: Value = agent
        .http
        .get(agent.url("/v1/desktop/browser/snapshot"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let elements = snapshot["elements"].as_array().unwrap();
    let find = |role: &str, name: &str| {
        elements
            .iter()
            .find(|e| e["role"] == role && e["name"] == name)
            .unwrap_or_else(|| panic!("no {role} {name} in {snapshot}"))["ref"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (input, button) = (find("textbox", "Name"), find("button", "Go"));
    let (status, body) = post(
        &agent,
        "/v1/desktop/browser/fill",
        json!({"ref": input, "text": "hello warren"}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = post(&agent, "/v1/desktop/browser/click", json!({"ref": button})).await;
    assert_eq!(status, 204, "{body}");
    let text: Value = agent
        .http
        .get(agent.url("/v1/desktop/browser/text"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        text["text"].as_str().unwrap().contains("got:hello warren"),
        "{text}"
    );
    for (format, magic) in [("png", &b"\x89PNG"[..]), ("jpeg", &b"\xff\xd8\xff"[..])] {
        let resp = agent
            .http
            .get(agent.url(&format!("/v1/desktop/browser/screenshot?format={format}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{format}");
        assert_eq!(resp.headers()["content-type"], format!("image/{format}"));
        assert!(resp.bytes().await.unwrap().starts_with(magic), "{format}");
    }
    // After a navigation the old refs name nothing, even where the new
    // document has a node of the same id: the same form from two sites,
    // each the first document of its own renderer, whose node ids start over.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A task per connection: Chromium may preconnect sockets it never uses.
        while let Ok((mut tcp, _)) = server.accept().await {
            let form = form_served.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let page = std::fs::read_to_string(&form).unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    page.len()
                );
                let _ = tcp.write_all((head + &page).as_bytes()).await;
            });
        }
    });
    let (status, page) = post(
        &agent,
        "/v1/desktop/browser/navigate",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let old = go_button(&agent).await;
    let (status, page) = post(
        &agent,
        "/v1/desktop/browser/navigate",
        json!({"url": format!("http://localhost:{port}/")}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // A snapshot of the new page gives its nodes their ids (the same
    // numbers as the old page's), as an agent looking again would.
    let new_button = go_button(&agent).await;
    assert_ne!(new_button, old);
    for (path, body) in [
        ("click", json!({"ref": old})),
        ("fill", json!({"ref": old, "text": "stale"})),
    ] {
        let (status, problem) = post(&agent, &format!("/v1/desktop/browser/{path}"), body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("element_not_found")),
            "{path}: {problem}"
        );
    }
    let text: Value = agent
        .http
        .get(agent.url("/v1/desktop/browser/text"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(text["text"].as_str().unwrap().contains("none"), "{text}");
    let (status, body) = post(
        &agent,
        "/v1/desktop/browser/click",
        json!({"ref": new_button}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    for body in [
        json!({"ref": "e99999999"}),
        json!({"ref": "e5"}),
        json!({"ref": "e5_"}),
        json!({"ref": "nonsense"}),
    ] {
        let (status, problem) = post(&agent, "/v1/desktop/browser/click", body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("element_not_found"))
        );
    }

    let (status, problem) = post(
        &agent,
        "/v1/desktop/browser/navigate",
        json!({"url": "ftp://example.com/", "wait_until": "domcontentloaded"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request"))
    );

    let (status, stopped) = post(&agent, "/v1/desktop/browser/stop", json!({})).await;
    assert_eq!((status, stopped["running"].as_bool()), (200, Some(false)));
    assert!(!profile.exists(), "{} left", profile.display());
    let status: Value = agent
        .http
        .get(agent.url("/v1/desktop/browser/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["running"], false);
    let err = tokio_tungstenite::connect_async(cdp.as_str())
        .await
        .unwrap_err();
    assert!(matches!(err, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 409));
    let (status, problem) = post(
        &agent,
        "/v1/desktop/browser/navigate",
        json!({"url": "about:blank"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("browser_not_running"))
    );
}
