//! Preview URLs on real sandboxes of a real server: `python3 -m http.server`
//! and a stdlib WebSocket/SSE/chunked app inside a sandbox, reached by Host
//! (`{port}-{id}.localhost`) and by path (`/v1/sandboxes/{id}/ports/{port}/`),
//! through the agent's tunnel; token auth; not-found and unreachable ports.

mod server_common;

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A stdlib-only app: `GET /sse` (three events, 100 ms apart), `GET
/// /chunked` (a chunked body in three pieces), `POST /echo` (echoes a body
/// sent with Content-Length or chunked, and the Host it was asked for),
/// `GET /ws` (a WebSocket echo).
const APP: &str = r#"
import base64, hashlib, socketserver, struct, sys, time
from http.server import BaseHTTPRequestHandler

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(3):
                self.wfile.write(b"data: tick %d\n\n" % i)
                self.wfile.flush()
                time.sleep(0.1)
            self.close_connection = True
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"one,", b"two,", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/ws":
            self.websocket()
        else:
            self.send_error(404)

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        reply = b"host=%s len=%d body=%s" % (self.headers["Host"].encode(), len(body), body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            if opcode in (1, 2):
                if len(data) < 126:
                    frame = bytes([0x80 | opcode, len(data)])
                else:
                    frame = bytes([0x80 | opcode, 126]) + struct.pack("!H", len(data))
                self.wfile.write(frame + data)
                self.wfile.flush()

class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

Server(("0.0.0.0", int(sys.argv[1])), App).serve_forever()
"#;

/// The `Host` of a preview URL (what a browser sends for it).
fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Starts `cmd` as a managed process in the sandbox.
async fn spawn(server: &TestServer, id: &str, cmd: &str) {
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            Some(json!({ "cmd": cmd })),
        )
        .await;
    assert!(status < 300, "{cmd}: {body}");
}

/// `GET base+path` with `Host: host` and no API key.
async fn get(
    server: &TestServer,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = server
        .http
        .get(server.url(path))
        .header(reqwest::header::HOST, host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

/// Polls until `port` in the sandbox answers through the path form.
async fn wait_for_port(server: &TestServer, id: &str, port: u16, token: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(("x-warren-preview-token", t));
    }
    loop {
        let resp = get(
            server,
            "127.0.0.1",
            &format!("/v1/sandboxes/{id}/ports/{port}/"),
            &headers,
        )
        .await;
        if resp.status() != 502 {
            return;
        }
        assert!(Instant::now() < deadline, "port {port} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_preview(server: &TestServer, id: &str, body: Value) -> Value {
    let (status, preview) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/previews"),
            ADMIN_KEY,
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{preview}");
    preview
}

#[tokio::test]
async fn previews_by_host_and_by_path() {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    server
        .run(
            ADMIN_KEY,
            &id,
            "mkdir -p /srv/www && echo 'hello from the sandbox' > /srv/www/index.html",
        )
        .await;
    let put = server
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{id}/files?path=/srv/app.py"),
            ADMIN_KEY,
        )
        .body(APP)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    spawn(&server, &id, "cd /srv/www && python3 -m http.server 8000").await;
    spawn(&server, &id, "python3 /srv/app.py 8001").await;

    // A public preview of the static server.
    let preview = create_preview(&server, &id, json!({ "port": 8000, "auth": "public" })).await;
    let bare = id.strip_prefix("sbx_").unwrap();
    let port = server.base.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        preview["url"],
        format!("http://8000-{bare}.localhost:{port}/")
    );
    assert!(preview.get("token").is_none(), "{preview}");
    let host = host_of(preview["url"].as_str().unwrap());
    wait_for_port(&server, &id, 8000, None).await;

    let resp = get(&server, &host, "/", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello from the sandbox\n");
    let resp = get(&server, &host, "/index.html", &[]).await;
    assert_eq!(resp.text().await.unwrap(), "hello from the sandbox\n");
    let resp = get(
        &server,
        "127.0.0.1",
        &format!("/v1/sandboxes/{id}/ports/8000/index.html"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello from the sandbox\n");
    // Without the trailing slash the path form redirects (relative links).
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(server.url(&format!("/v1/sandboxes/{id}/ports/8000?x=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("/v1/sandboxes/{id}/ports/8000/?x=1").as_str()
    );

    // A token preview of the app.
    let app = create_preview(&server, &id, json!({ "port": 8001 })).await;
    assert_eq!(app["auth"], "token");
    let token = app["token"].as_str().unwrap().to_string();
    let app_host = host_of(app["url"].as_str().unwrap());
    wait_for_port(&server, &id, 8001, Some(&token)).await;
    for (host, path) in [
        (app_host.as_str(), "/chunked".to_string()),
        (
            "127.0.0.1",
            format!("/v1/sandboxes/{id}/ports/8001/chunked"),
        ),
    ] {
        let resp = get(&server, host, &path, &[]).await;
        assert_eq!(resp.status(), 401, "{host}{path}");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "unauthorized");
        let resp = get(&server, host, &path, &[("x-warren-preview-token", "wrong")]).await;
        assert_eq!(resp.status(), 401);
        // An API key is no preview token.
        let resp = get(
            &server,
            host,
            &path,
            &[("authorization", &format!("Bearer {ADMIN_KEY}"))],
        )
        .await;
        assert_eq!(resp.status(), 401);

        let resp = get(&server, host, &path, &[("x-warren-preview-token", &token)]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "one,two,three");
        let resp = get(&server, host, &format!("{path}?token={token}"), &[]).await;
        assert_eq!(resp.status(), 200);
        let pair = format!("warren_preview={token}");
        if host == app_host {
            // A host preview has an origin of its own: the cookie keeps the
            // page's own requests in.
            let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
            assert!(cookie.starts_with(&format!("{pair};")), "{cookie}");
            for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
                assert!(cookie.contains(attribute), "{cookie}");
            }
            assert_eq!(resp.text().await.unwrap(), "one,two,three");
            let resp = get(&server, host, &path, &[("cookie", &pair)]).await;
            assert_eq!(resp.status(), 200);
        } else {
            // A path preview shares the API's origin with every other
            // sandbox's path previews: no cookie is set, none is accepted.
            assert!(
                resp.headers().get("set-cookie").is_none(),
                "{:?}",
                resp.headers()
            );
            let resp = get(&server, host, &path, &[("cookie", &pair)]).await;
            assert_eq!(resp.status(), 401);
        }
    }

    // SSE arrives event by event, not at the end.
    let resp = get(
        &server,
        &app_host,
        "/sse",
        &[("x-warren-preview-token", &token)],
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the first event in time")
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first).starts_with("data: tick 0"),
        "{first:?}"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(all.matches("data: tick").count(), 3, "{all}");

    // A chunked request body (streamed, no Content-Length) and the Host the
    // app sees.
    let pieces: Vec<Result<&'static str, std::io::Error>> = vec![Ok("abc"), Ok("def"), Ok("ghi")];
    let resp = server
        .http
        .post(server.url(&format!("/v1/sandboxes/{id}/ports/8001/echo")))
        .header("x-warren-preview-token", &token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("len=9 body=abcdefghi"), "{text}");
    let resp = server
        .http
        .post(server.url("/echo"))
        .header(reqwest::header::HOST, &app_host)
        .header("x-warren-preview-token", &token)
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.text().await.unwrap(),
        format!("host={app_host} len=5 body=plain")
    );

    // WebSocket echo by Host and by path.
    let ws_base = server.base.replace("http://", "ws://");
    for (host, path) in [
        (Some(app_host.clone()), "/ws".to_string()),
        (None, format!("/v1/sandboxes/{id}/ports/8001/ws")),
    ] {
        let mut request = format!("{ws_base}{path}").into_client_request().unwrap();
        if let Some(host) = &host {
            request.headers_mut().insert("host", host.parse().unwrap());
        }
        request
            .headers_mut()
            .insert("x-warren-preview-token", token.parse().unwrap());
        let (mut ws, resp) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket");
        assert_eq!(resp.status(), 101);
        for text in ["hello", "through a preview"] {
            ws.send(Message::Text(text.into())).await.unwrap();
            let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("an echo in time")
                .unwrap()
                .unwrap();
            assert_eq!(echoed, Message::Text(text.into()));
        }
        let big = vec![7u8; 5000];
        ws.send(Message::Binary(big.clone())).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::Binary(big));
        ws.close(None).await.unwrap();
    }

    // List, get, unknown ports, unreachable ports, delete.
    let (status, list) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/previews"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let ports: Vec<u64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [8000, 8001]);
    assert_eq!(list["items"][1]["token"], token.as_str());
    let (status, one) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/previews/8001"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["url"], app["url"]);
    let (status, problem) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/previews/9999"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "preview_not_found");
    let resp = get(&server, &format!("9999-{bare}.localhost:{port}"), "/", &[]).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "preview_not_found"
    );
    let resp = get(
        &server,
        "127.0.0.1",
        &format!("/v1/sandboxes/{id}/ports/9999/"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 404);
    // Another domain than the preview's is not this preview.
    let resp = get(&server, &format!("8000-{bare}.example.com"), "/", &[]).await;
    assert_eq!(resp.status(), 404);

    create_preview(&server, &id, json!({ "port": 8009, "auth": "public" })).await;
    let resp = get(&server, &format!("8009-{bare}.localhost:{port}"), "/", &[]).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "port_unreachable"
    );

    for bad in [
        json!({ "port": 0 }),
        json!({ "port": 70000 }),
        json!({ "port": 80, "auth": "open" }),
        json!({ "port": 80, "domain": "a b" }),
    ] {
        let (status, body) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/previews"),
                ADMIN_KEY,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let custom = create_preview(
        &server,
        &id,
        json!({ "port": 8000, "auth": "public", "domain": "Apps.Example.COM" }),
    )
    .await;
    assert_eq!(
        custom["url"],
        format!("http://8000-{bare}.apps.example.com:{port}/")
    );
    let resp = get(&server, &format!("8000-{bare}.apps.example.com"), "/", &[]).await;
    assert_eq!(resp.status(), 200);

    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/sandboxes/{id}/previews/8000"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let resp = get(&server, &format!("8000-{bare}.apps.example.com"), "/", &[]).await;
    assert_eq!(resp.status(), 404);
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/sandboxes/{id}/previews/8000"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Another tenant sees neither the sandbox nor its previews.
    let (_, key) = server.tenant("other", None).await;
    let (status, problem) = server
        .call("GET", &format!("/v1/sandboxes/{id}/previews"), &key, None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "sandbox_not_found");

    // Previews persist across a restart of the server.
    let mut server = server;
    server.kill9();
    server.spawn();
    let resp = get(
        &server,
        &app_host.replace(&port, server.base.rsplit(':').next().unwrap()),
        "/chunked",
        &[("x-warren-preview-token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "one,two,three");

    // A deleted sandbox takes its previews with it.
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
    let resp = get(
        &server,
        "127.0.0.1",
        &format!("/v1/sandboxes/{id}/ports/8001/chunked"),
        &[("x-warren-preview-token", &token)],
    )
    .await;
    assert_eq!(resp.status(), 404);
}
