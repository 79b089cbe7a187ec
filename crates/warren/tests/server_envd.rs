//! envd, E2B's in-sandbox API, as the agent of a real sandbox serves it
//! under `/envd`: requests go over HTTP/1.1 to the sandbox's agent socket,
//! as the server forwards E2B's SDK calls (with the user in
//! `x-warren-envd-user`). Connect framing (unary JSON, enveloped streams,
//! end-of-stream, keepalives, error codes), `process.Process`,
//! `filesystem.Filesystem`, and `/files` uploads and downloads.

mod server_common;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

/// A client of one sandbox's agent socket.
struct Envd {
    socket: PathBuf,
}

/// A streamed answer, read one envelope at a time.
struct Frames {
    body: Incoming,
    buf: Vec<u8>,
}

impl Frames {
    /// The next envelope: (flags, JSON), or `None` at the end of the body.
    async fn next(&mut self) -> Option<(u8, Value)> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() >= 5 + len {
                    let frame: Vec<u8> = self.buf.drain(..5 + len).collect();
                    let value = serde_json::from_slice(&frame[5..]).expect("JSON message");
                    return Some((frame[0], value));
                }
            }
            let frame = tokio::time::timeout(Duration::from_secs(30), self.body.frame())
                .await
                .expect("a frame within 30 s")?
                .expect("body frame");
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    /// The next event message, skipping keepalives.
    async fn event(&mut self) -> Value {
        loop {
            let (flags, value) = self.next().await.expect("another message");
            assert_eq!(flags, 0, "end of stream instead of an event: {value}");
            let keepalive =
                value.get("keepalive").is_some() || value.pointer("/event/keepalive").is_some();
            if !keepalive {
                return value;
            }
        }
    }

    /// Reads to the end event: (stdout, stderr, pty output, end event),
    /// then checks the end-of-stream envelope is `{}`.
    async fn finish(&mut self) -> (String, String, String, Value) {
        let (mut out, mut err, mut pty) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            let event = self.event().await;
            if let Some(data) = event.pointer("/event/data") {
                for (key, sink) in [
                    ("stdout", &mut out),
                    ("stderr", &mut err),
                    ("pty", &mut pty),
                ] {
                    if let Some(b64) = data.get(key).and_then(Value::as_str) {
                        sink.extend(b64d(b64));
                    }
                }
            } else if let Some(end) = event.pointer("/event/end") {
                let end = end.clone();
                let (flags, trailer) = self.next().await.expect("end of stream");
                assert_eq!((flags, trailer), (2, json!({})));
                let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
                return (text(out), text(err), text(pty), end);
            } else {
                panic!("unexpected event {event}");
            }
        }
    }
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn b64d(data: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64")
}

fn envelope(value: &Value) -> Vec<u8> {
    let json = serde_json::to_vec(value).unwrap();
    let mut out = vec![0];
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    out
}

impl Envd {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> hyper::Response<Incoming> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .expect("connect to the agent socket");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("http://agent/envd{path}"))
            .header("host", "agent");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("request")
    }

    /// A unary call: (HTTP status, JSON answer).
    async fn unary(&self, method: &str, user: Option<&str>, body: Value) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(user) = user {
            headers.push(("x-warren-envd-user", user));
        }
        let resp = self
            .send(
                "POST",
                &format!("/{method}"),
                &headers,
                body.to_string().into_bytes(),
            )
            .await;
        let status = resp.status().as_u16();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "application/json", "{method}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).expect("JSON answer"))
    }

    /// A server-streaming call.
    async fn stream(
        &self,
        method: &str,
        user: Option<&str>,
        extra: &[(&str, &str)],
        body: Value,
    ) -> Frames {
        let mut headers = vec![("content-type", "application/connect+json")];
        if let Some(user) = user {
            headers.push(("x-warren-envd-user", user));
        }
        headers.extend_from_slice(extra);
        let resp = self
            .send("POST", &format!("/{method}"), &headers, envelope(&body))
            .await;
        assert_eq!(resp.status(), 200, "{method}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/connect+json",
            "{method}"
        );
        Frames {
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }

    /// A stream expected to end at once with an error; its Connect code.
    async fn stream_error(&self, method: &str, user: Option<&str>, body: Value) -> String {
        let mut frames = self.stream(method, user, &[], body).await;
        let (flags, end) = frames.next().await.expect("end of stream");
        assert_eq!(flags, 2, "{end}");
        end["error"]["code"]
            .as_str()
            .expect("error code")
            .to_string()
    }

    async fn start(&self, user: Option<&str>, cmd: &str, extra: Value) -> Frames {
        let mut body = json!({ "process": { "cmd": "/bin/bash", "args": ["-l", "-c", cmd] } });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.stream("process.Process/Start", user, &[], body).await
    }
}

/// A server, a sandbox with a `user` account, and an envd client for it.
async fn sandbox() -> (TestServer, String, Envd) {
    let server = TestServer::start().await;
    let sandbox = server.create(ADMIN_KEY, json!({})).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "id user >/dev/null 2>&1 || useradd -m -s /bin/bash user",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let socket = server.state_dir.join("run").join(&id).join("agent.sock");
    (server, id, Envd { socket })
}

async fn pid_of(frames: &mut Frames) -> u64 {
    let start = frames.event().await;
    start
        .pointer("/event/start/pid")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("start event first: {start}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn envd_processes_stream_run_as_users_and_take_input_signals_and_resizes() {
    let (server, id, envd) = sandbox().await;

    // Health, as envd answers it.
    let health = envd.send("GET", "/health", &[], Vec::new()).await;
    assert_eq!(health.status(), 204);

    // Without a user the call runs as `user`, in its home; both streams
    // and the end event as E2B reads them.
    let mut run = envd
        .start(
            None,
            "echo out; echo err >&2; id -un; pwd; exit 3",
            json!({}),
        )
        .await;
    assert!(pid_of(&mut run).await > 1);
    let (out, err, _, end) = run.finish().await;
    assert_eq!(out, "out\nuser\n/home/user\n");
    assert_eq!(err, "err\n");
    assert_eq!(end["exitCode"], 3);
    assert_eq!(end["exited"], true);
    assert_eq!(end["status"], "exit status 3");
    assert_eq!(end["error"], "exit status 3");

    // Root when named; envs and a relative cwd (under the home).
    let (code, _) = server.sh(ADMIN_KEY, &id, "mkdir -p /root/work").await;
    assert_eq!(code, 0);
    let mut run = envd
        .start(
            Some("root"),
            "id -un; pwd; echo $GREETING",
            json!({ "process": { "cmd": "/bin/bash", "args": ["-l", "-c", "id -un; pwd; echo $GREETING"],
                                 "envs": { "GREETING": "hi" }, "cwd": "work" } }),
        )
        .await;
    pid_of(&mut run).await;
    let (out, _, _, end) = run.finish().await;
    assert_eq!(out, "root\n/root/work\nhi\n");
    assert_eq!(end["exitCode"], 0);
    assert!(end.get("error").is_none(), "{end}");

    // Without `stdin: true`, stdin is at its end: `cat` returns at once.
    let mut run = envd.start(None, "cat; echo done", json!({})).await;
    pid_of(&mut run).await;
    assert_eq!(run.finish().await.0, "done\n");

    // With stdin and a tag: keepalives at the asked interval, input by
    // pid, a second stream attached by tag, List, then closing stdin.
    let body = json!({ "process": { "cmd": "cat" }, "stdin": true, "tag": "catter" });
    let mut cat = envd
        .stream(
            "process.Process/Start",
            None,
            &[("keepalive-ping-interval", "1")],
            body,
        )
        .await;
    let pid = pid_of(&mut cat).await;
    let (flags, keepalive) = cat.next().await.unwrap();
    assert_eq!(
        (flags, keepalive),
        (0, json!({ "event": { "keepalive": {} } }))
    );
    let mut attached = envd
        .stream(
            "process.Process/Connect",
            None,
            &[],
            json!({ "process": { "tag": "catter" } }),
        )
        .await;
    assert_eq!(pid_of(&mut attached).await, pid);
    let (status, _) = envd
        .unary(
            "process.Process/SendInput",
            None,
            json!({ "process": { "pid": pid }, "input": { "stdin": b64(b"hello\n") } }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, list) = envd.unary("process.Process/List", None, json!({})).await;
    assert_eq!(status, 200);
    let listed = list["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("{pid} not in {list}"));
    assert_eq!(listed["tag"], "catter");
    assert_eq!(listed["config"]["cmd"], "cat");
    let (status, _) = envd
        .unary(
            "process.Process/CloseStdin",
            None,
            json!({ "process": { "pid": pid } }),
        )
        .await;
    assert_eq!(status, 200);
    let (out, _, _, end) = cat.finish().await;
    assert_eq!(
        (out.as_str(), end["exitCode"].as_i64()),
        ("hello\n", Some(0))
    );
    let (out, _, _, _) = attached.finish().await;
    assert_eq!(out, "hello\n", "the attached stream saw the output too");

    // StreamInput: a start message, then data, on a client stream.
    let mut cat = envd
        .stream(
            "process.Process/Start",
            None,
            &[],
            json!({ "process": { "cmd": "head", "args": ["-n1"] }, "stdin": true }),
        )
        .await;
    let pid = pid_of(&mut cat).await;
    let mut body = envelope(&json!({ "start": { "process": { "pid": pid } } }));
    body.extend(envelope(
        &json!({ "data": { "input": { "stdin": b64(b"streamed\n") } } }),
    ));
    let resp = envd
        .send(
            "POST",
            "/process.Process/StreamInput",
            &[("content-type", "application/connect+json")],
            body,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let mut answer = Frames {
        body: resp.into_body(),
        buf: Vec::new(),
    };
    assert_eq!(answer.next().await.unwrap(), (0, json!({})));
    assert_eq!(answer.next().await.unwrap(), (2, json!({})));
    assert_eq!(cat.finish().await.0, "streamed\n");

    // A terminal: pty output, input, and a resize seen by the program.
    let mut tty = envd
        .stream(
            "process.Process/Start",
            None,
            &[],
            json!({ "process": { "cmd": "/bin/bash", "args": ["-c", "read a; stty size; read b; stty size"] },
                    "pty": { "size": { "cols": 80, "rows": 24 } } }),
        )
        .await;
    let pid = pid_of(&mut tty).await;
    let send_pty = |data: &'static [u8]| {
        envd.unary(
            "process.Process/SendInput",
            None,
            json!({ "process": { "pid": pid }, "input": { "pty": b64(data) } }),
        )
    };
    assert_eq!(send_pty(b"a\n").await.0, 200);
    let mut seen = String::new();
    while !seen.contains("24 80") {
        let event = tty.event().await;
        let data = event.pointer("/event/data/pty").and_then(Value::as_str);
        seen.push_str(&String::from_utf8_lossy(&b64d(data.expect("pty data"))));
    }
    let (status, _) = envd
        .unary(
            "process.Process/Update",
            None,
            json!({ "process": { "pid": pid }, "pty": { "size": { "cols": 100, "rows": 30 } } }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(send_pty(b"b\n").await.0, 200);
    let (_, _, pty, end) = tty.finish().await;
    assert!(pty.contains("30 100"), "{pty:?}");
    assert_eq!(end["exitCode"], 0);

    // Signals: SIGTERM ends a sleep; the pid is then unknown.
    let mut sleeper = envd.start(None, "exec sleep 60", json!({})).await;
    let pid = pid_of(&mut sleeper).await;
    // A Connect with a deadline ends with deadline_exceeded, and the
    // process runs on.
    let mut bounded = envd
        .stream(
            "process.Process/Connect",
            None,
            &[("connect-timeout-ms", "300")],
            json!({ "process": { "pid": pid } }),
        )
        .await;
    assert_eq!(pid_of(&mut bounded).await, pid);
    let (flags, end) = bounded.next().await.unwrap();
    assert_eq!(
        (flags, end["error"]["code"].as_str()),
        (2, Some("deadline_exceeded"))
    );
    let (status, _) = envd
        .unary(
            "process.Process/SendSignal",
            None,
            json!({ "process": { "pid": pid }, "signal": "SIGNAL_SIGTERM" }),
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, _, end) = sleeper.finish().await;
    assert_eq!(end["status"], "signal: terminated");
    assert_eq!(end["exited"], false);
    let (status, err) = envd
        .unary(
            "process.Process/SendSignal",
            None,
            json!({ "process": { "pid": pid }, "signal": "SIGNAL_SIGKILL" }),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    // A client reconnecting after the end still gets the exit.
    let mut late = envd
        .stream(
            "process.Process/Connect",
            None,
            &[],
            json!({ "process": { "pid": pid } }),
        )
        .await;
    assert_eq!(pid_of(&mut late).await, pid);
    assert_eq!(late.finish().await.3["status"], "signal: terminated");

    // A Start's deadline is the process's: envd kills it then.
    let mut bounded = envd
        .stream(
            "process.Process/Start",
            None,
            &[("connect-timeout-ms", "300")],
            json!({ "process": { "cmd": "sleep", "args": ["30"] } }),
        )
        .await;
    pid_of(&mut bounded).await;
    assert_eq!(bounded.finish().await.3["status"], "signal: killed");

    // Errors, with their Connect codes.
    let (status, err) = envd
        .unary(
            "process.Process/SendInput",
            None,
            json!({ "process": { "pid": 999_999 }, "input": { "stdin": "" } }),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    let (status, err) = envd.unary("process.Process/Nope", None, json!({})).await;
    assert_eq!((status, err["code"].as_str()), (501, Some("unimplemented")));
    let (status, err) = envd
        .unary("process.Process/SendInput", None, json!({ "process": "x" }))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    let code = envd
        .stream_error(
            "process.Process/Start",
            None,
            json!({ "process": { "cmd": "true", "cwd": "/nonexistent" } }),
        )
        .await;
    assert_eq!(code, "invalid_argument");
    let code = envd
        .stream_error(
            "process.Process/Start",
            Some("no-such-user"),
            json!({ "process": { "cmd": "true" } }),
        )
        .await;
    assert_eq!(code, "unauthenticated");
    let code = envd
        .stream_error(
            "process.Process/Connect",
            None,
            json!({ "process": { "tag": "nothing" } }),
        )
        .await;
    assert_eq!(code, "not_found");
}

fn multipart(boundary: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).into_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").into_bytes());
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn envd_files_and_filesystem_work_as_the_user_with_watches() {
    let (server, id, envd) = sandbox().await;
    let fs = |m: &str| format!("filesystem.Filesystem/{m}");

    // Multipart upload of several files, paths in the part names
    // (absolute and relative to the home), owned by the user.
    let resp = envd
        .send(
            "POST",
            "/files",
            &[("content-type", "multipart/form-data; boundary=XyZ")],
            multipart(
                "XyZ",
                &[
                    ("/home/user/dir/a.txt", b"alpha"),
                    ("dir/sub/b.txt", b"beta"),
                ],
            ),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let written: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        written,
        json!([
            { "name": "a.txt", "type": "file", "path": "/home/user/dir/a.txt" },
            { "name": "b.txt", "type": "file", "path": "/home/user/dir/sub/b.txt" }
        ])
    );
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "stat -c '%U %n' /home/user/dir /home/user/dir/sub /home/user/dir/sub/b.txt",
        )
        .await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "user /home/user/dir\nuser /home/user/dir/sub\nuser /home/user/dir/sub/b.txt\n"
    );

    // A gzip octet-stream upload as root, read back plain and gzipped.
    let resp = envd
        .send(
            "POST",
            "/files?path=/root/gz/c.txt&username=root",
            &[
                ("content-type", "application/octet-stream"),
                ("content-encoding", "gzip"),
                ("x-metadata-Purpose", "testing"),
            ],
            gzip(b"compressed contents"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let written: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(written[0]["metadata"], json!({ "purpose": "testing" }));
    let (_, stat) = envd
        .unary(
            "filesystem.Filesystem/Stat",
            Some("root"),
            json!({ "path": "/root/gz/c.txt" }),
        )
        .await;
    assert_eq!(stat["entry"]["metadata"], json!({ "purpose": "testing" }));
    assert_eq!(stat["entry"]["owner"], "root");
    let resp = envd
        .send(
            "GET",
            "/files?path=/root/gz/c.txt&username=root",
            &[],
            vec![],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"compressed contents");
    let resp = envd
        .send(
            "GET",
            "/files?path=dir/a.txt",
            &[("accept-encoding", "gzip")],
            vec![],
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, "alpha");

    // envd's errors on /files.
    let resp = envd.send("GET", "/files?path=missing", &[], vec![]).await;
    assert_eq!(resp.status(), 404);
    let err: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(err["code"], 404);
    let resp = envd.send("GET", "/files?path=dir", &[], vec![]).await;
    assert_eq!(resp.status(), 400);
    let resp = envd
        .send("GET", "/files?path=dir/a.txt&username=ghost", &[], vec![])
        .await;
    assert_eq!(resp.status(), 401);

    // Stat, ListDir at two depths, MakeDir (twice), Move, Remove.
    let (status, stat) = envd
        .unary(&fs("Stat"), None, json!({ "path": "dir/a.txt" }))
        .await;
    assert_eq!(status, 200);
    let entry = &stat["entry"];
    assert_eq!(entry["type"], "FILE_TYPE_FILE");
    assert_eq!(entry["path"], "/home/user/dir/a.txt");
    assert_eq!(entry["size"], "5");
    assert_eq!(entry["owner"], "user");
    assert_eq!(entry["permissions"].as_str().unwrap().len(), 10);
    assert!(entry["modifiedTime"].as_str().unwrap().ends_with('Z'));
    let (status, list) = envd
        .unary(&fs("ListDir"), None, json!({ "path": "dir", "depth": 1 }))
        .await;
    assert_eq!(status, 200);
    let names = |list: &Value| -> Vec<String> {
        list["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&list), ["/home/user/dir/a.txt", "/home/user/dir/sub"]);
    let (_, list) = envd
        .unary(&fs("ListDir"), None, json!({ "path": "dir", "depth": 2 }))
        .await;
    assert_eq!(
        names(&list),
        [
            "/home/user/dir/a.txt",
            "/home/user/dir/sub",
            "/home/user/dir/sub/b.txt"
        ]
    );
    let (status, made) = envd
        .unary(&fs("MakeDir"), None, json!({ "path": "made/deep" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(made["entry"]["type"], "FILE_TYPE_DIRECTORY");
    assert_eq!(made["entry"]["owner"], "user");
    let (status, err) = envd
        .unary(&fs("MakeDir"), None, json!({ "path": "made/deep" }))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("already_exists"))
    );
    let (status, moved) = envd
        .unary(
            &fs("Move"),
            None,
            json!({ "source": "dir/a.txt", "destination": "made/a2.txt" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(moved["entry"]["path"], "/home/user/made/a2.txt");
    let (status, err) = envd
        .unary(&fs("Stat"), None, json!({ "path": "dir/a.txt" }))
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
    let (code, _) = server
        .sh(
            ADMIN_KEY,
            &id,
            "ln -s /home/user/made/a2.txt /home/user/link",
        )
        .await;
    assert_eq!(code, 0);
    let (_, link) = envd
        .unary(&fs("Stat"), None, json!({ "path": "link" }))
        .await;
    assert_eq!(link["entry"]["symlinkTarget"], "/home/user/made/a2.txt");
    assert_eq!(link["entry"]["type"], "FILE_TYPE_FILE");
    let (status, _) = envd
        .unary(&fs("Remove"), None, json!({ "path": "dir" }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = envd
        .unary(&fs("ListDir"), None, json!({ "path": "dir" }))
        .await;
    assert_eq!(status, 404);
    // As envd: removing what is not there is fine; a directory where a
    // file is, is an invalid argument.
    let (status, _) = envd
        .unary(&fs("Remove"), None, json!({ "path": "dir" }))
        .await;
    assert_eq!(status, 200);
    let (status, err) = envd
        .unary(&fs("MakeDir"), None, json!({ "path": "link" }))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("invalid_argument"))
    );

    // WatchDir: a start event, then events named relative to the directory.
    let mut watch = envd
        .stream(
            &fs("WatchDir"),
            None,
            &[],
            json!({ "path": "made", "recursive": true, "includeEntry": true }),
        )
        .await;
    assert_eq!(watch.next().await.unwrap(), (0, json!({ "start": {} })));
    let resp = envd
        .send(
            "POST",
            "/files?path=made/deep/new.txt",
            &[("content-type", "application/octet-stream")],
            b"new".to_vec(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let event = watch.event().await;
    assert_eq!(event["filesystem"]["name"], "deep/new.txt", "{event}");
    assert_eq!(event["filesystem"]["type"], "EVENT_TYPE_CREATE");
    assert_eq!(
        event["filesystem"]["entry"]["path"],
        "/home/user/made/deep/new.txt"
    );
    drop(watch);

    // The polling watcher trio.
    let (status, created) = envd
        .unary(&fs("CreateWatcher"), None, json!({ "path": "made" }))
        .await;
    assert_eq!(status, 200);
    let watcher = created["watcherId"].as_str().unwrap().to_string();
    let (code, _) = server
        .sh(ADMIN_KEY, &id, "touch /home/user/made/polled")
        .await;
    assert_eq!(code, 0);
    let mut events = Vec::new();
    for _ in 0..50 {
        let (status, got) = envd
            .unary(
                &fs("GetWatcherEvents"),
                None,
                json!({ "watcherId": watcher }),
            )
            .await;
        assert_eq!(status, 200);
        events.extend(got["events"].as_array().unwrap().clone());
        if events.iter().any(|e| e["name"] == "polled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "polled" && e["type"] == "EVENT_TYPE_CREATE"),
        "{events:?}"
    );
    let (status, _) = envd
        .unary(&fs("RemoveWatcher"), None, json!({ "watcherId": watcher }))
        .await;
    assert_eq!(status, 200);
    let (status, err) = envd
        .unary(
            &fs("GetWatcherEvents"),
            None,
            json!({ "watcherId": watcher }),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
}
