//! The `code-interpreter` template (`templates/code-interpreter.toml`) on a
//! real server: its start command runs Warren's code-interpreter server on
//! port 49999, reached here through the preview path route
//! (`/v1/sandboxes/{id}/ports/49999/...`), speaking the NDJSON API of E2B's
//! code-interpreter clients.
//!
//! Checked: state kept across executions of the default Python context;
//! stdout and stderr arrive while the code runs; an error with its
//! traceback; `plt.plot` gives a PNG result and line chart data; env vars
//! for one execution only; contexts created, listed, restarted and deleted,
//! each with its own state and working directory; bash and JavaScript/TypeScript
//! (Deno) contexts; a client
//! that goes away interrupts the kernel; a kernel that dies is replaced.

mod server_common;

use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};

const PORT: u16 = 49999;
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A server with the template, and a sandbox of it whose interpreter answers.
struct Interp {
    server: TestServer,
    /// `{server}/v1/sandboxes/{id}/ports/49999`.
    base: String,
}

impl Interp {
    async fn start() -> Interp {
        let server = TestServer::start_with(Options {
            args: vec!["--no-network".into()],
            templates: vec!["code-interpreter"],
            ..Options::default()
        })
        .await;
        let id = server
            .create(
                ADMIN_KEY,
                json!({"template": "code-interpreter", "resources": {"memory_mb": 2048}}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, preview) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/previews"),
                ADMIN_KEY,
                Some(json!({"port": PORT, "auth": "public"})),
            )
            .await;
        assert_eq!(status, 201, "{preview}");
        let base = server.url(&format!("/v1/sandboxes/{id}/ports/{PORT}"));
        let interp = Interp { server, base };
        interp.wait_healthy(&id).await;
        interp
    }

    /// Waits for `GET /health` (the start command runs on boot).
    async fn wait_healthy(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(resp) = self
                .server
                .http
                .get(format!("{}/health", self.base))
                .send()
                .await
            {
                if resp.status() == 200 {
                    return;
                }
            }
            if Instant::now() > deadline {
                let (_, log) = self
                    .server
                    .sh(ADMIN_KEY, id, "ps aux; ls -la /opt/warren/code-interpreter")
                    .await;
                panic!("the code interpreter never answered on {PORT}:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /execute`; the NDJSON lines, each with the seconds since the
    /// request when it arrived.
    async fn execute_timed(&self, body: Value) -> Vec<(f64, Value)> {
        let start = Instant::now();
        let resp = self
            .server
            .http
            .post(format!("{}/execute", self.base))
            .json(&body)
            .send()
            .await
            .expect("execute");
        assert_eq!(resp.status(), 200, "{body}");
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        let mut stream = resp.bytes_stream();
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await
            .expect("an execution that never ends")
        {
            buf.extend_from_slice(&chunk.expect("reading the stream"));
            while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=at).collect();
                let value: Value = serde_json::from_slice(&line[..line.len() - 1])
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&line)));
                lines.push((start.elapsed().as_secs_f64(), value));
            }
        }
        assert!(buf.is_empty(), "a last line without a newline");
        let last = &lines.last().expect("no output at all").1;
        assert_eq!(last["type"], "end_of_execution", "{lines:?}");
        lines
    }

    async fn execute(&self, body: Value) -> Vec<Value> {
        self.execute_timed(body)
            .await
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    async fn run(&self, code: &str) -> Vec<Value> {
        self.execute(json!({ "code": code })).await
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .server
            .http
            .request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// The lines of one `type`.
fn of<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// The text of the main result.
fn main_text(lines: &[Value]) -> Option<String> {
    of(lines, "result")
        .into_iter()
        .find(|r| r["is_main_result"] == true)
        .and_then(|r| r["text"].as_str().map(str::to_string))
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn stdout(lines: &[Value]) -> String {
    of(lines, "stdout")
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn code_interpreter_runs_code_like_e2b() {
    let ci = Interp::start().await;

    // State persists in the default context; execution counts go up.
    let first = ci.run("x = 40\nx + 1").await;
    assert_eq!(main_text(&first).as_deref(), Some("41"), "{first:?}");
    let count = of(&first, "number_of_executions")[0]["execution_count"]
        .as_i64()
        .unwrap();
    let second = ci.run("x += 2\nx").await;
    assert_eq!(main_text(&second).as_deref(), Some("42"), "{second:?}");
    assert_eq!(
        of(&second, "number_of_executions")[0]["execution_count"],
        count + 1
    );
    // The language named explicitly is the same default context.
    let third = ci.execute(json!({"code": "x", "language": "python"})).await;
    assert_eq!(main_text(&third).as_deref(), Some("42"));

    // stdout and stderr, streamed while the code runs.
    let timed = ci
        .execute_timed(json!({"code": "import sys, time\nprint('out', flush=True)\nprint('err', file=sys.stderr, flush=True)\ntime.sleep(1.5)\nprint('done')"}))
        .await;
    let lines: Vec<Value> = timed.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(stdout(&lines), "out\ndone\n", "{lines:?}");
    let stderr = of(&lines, "stderr");
    assert_eq!(stderr[0]["text"], "err\n");
    assert!(stderr[0]["timestamp"].as_i64().unwrap() > 0);
    let first_out = timed.iter().find(|(_, v)| v["type"] == "stdout").unwrap().0;
    let end = timed.last().unwrap().0;
    assert!(
        end - first_out > 1.0,
        "stdout arrived at {first_out:.2}s, the end at {end:.2}s: not streamed"
    );

    // An error, with its traceback; nothing after it runs.
    let failed = ci
        .run("def f():\n    return 1 / 0\nprint('before')\nf()\nprint('after')")
        .await;
    let errors = of(&failed, "error");
    assert_eq!(errors.len(), 1, "{failed:?}");
    assert_eq!(errors[0]["name"], "ZeroDivisionError");
    assert_eq!(errors[0]["value"], "division by zero");
    // IPython colours its tracebacks (kept, as E2B does).
    let traceback = strip_ansi(errors[0]["traceback"].as_str().unwrap());
    assert!(traceback.contains("ZeroDivisionError"), "{traceback}");
    assert!(traceback.contains("1 / 0"), "{traceback}");
    assert_eq!(stdout(&failed), "before\n");

    // A plot is a PNG (and its data, as a line chart).
    let plot = ci
        .run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [2, 4, 8], label='growth')\nplt.title('Growth')\nplt.xlabel('time (s)')\nplt.show()")
        .await;
    let images: Vec<&Value> = of(&plot, "result")
        .into_iter()
        .filter(|r| r.get("png").is_some())
        .collect();
    assert_eq!(images.len(), 1, "{plot:?}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(images[0]["png"].as_str().unwrap())
        .expect("base64");
    assert!(png.starts_with(PNG_SIGNATURE), "not a PNG");
    assert!(png.len() > 1000);
    let chart = &images[0]["chart"];
    assert_eq!(chart["type"], "line", "{chart}");
    assert_eq!(chart["title"], "Growth");
    assert_eq!(chart["x_label"], "time (s)");
    assert_eq!(chart["x_unit"], "s");
    assert_eq!(chart["elements"][0]["label"], "growth");
    assert_eq!(
        chart["elements"][0]["points"],
        json!([[1, 2], [2, 4], [3, 8]])
    );
    // A bar chart's data.
    let bars = ci
        .run("plt.bar(['a', 'b'], [3, 5], label='sales')\nplt.show()")
        .await;
    let chart = &of(&bars, "result")[0]["chart"];
    assert_eq!(chart["type"], "bar", "{chart}");
    assert_eq!(
        chart["elements"],
        json!([{"label": "a", "group": "sales", "value": 3}, {"label": "b", "group": "sales", "value": 5}])
    );
    // Rich results: HTML of a DataFrame beside its text.
    let frame = ci
        .run("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
        .await;
    let result = of(&frame, "result")[0];
    assert!(
        result["html"].as_str().unwrap().contains("<table"),
        "{result}"
    );

    // Env vars for one execution only.
    let with_env = ci
        .execute(
            json!({"code": "import os\nos.environ['GREETING']", "env_vars": {"GREETING": "hi"}}),
        )
        .await;
    assert_eq!(
        main_text(&with_env).as_deref(),
        Some("'hi'"),
        "{with_env:?}"
    );
    let after = ci.run("os.environ.get('GREETING')").await;
    assert_eq!(main_text(&after), None, "{after:?}");

    // Bad requests.
    let (status, _) = ci
        .call(
            reqwest::Method::POST,
            "/execute",
            Some(json!({"code": "1", "context_id": "nope"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = ci
        .call(
            reqwest::Method::POST,
            "/execute",
            Some(json!({"code": "1", "language": "cobol"})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn code_interpreter_contexts_and_interrupts() {
    let ci = Interp::start().await;

    // The default Python context is listed once it exists.
    ci.run("a = 'default'").await;
    let (status, listed) = ci.call(reqwest::Method::GET, "/contexts", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["language"], "python");

    // A new context: its own state and working directory.
    let (status, ctx) = ci
        .call(
            reqwest::Method::POST,
            "/contexts",
            Some(json!({"language": "python", "cwd": "/tmp"})),
        )
        .await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["language"], "python");
    assert_eq!(ctx["cwd"], "/tmp");
    let id = ctx["id"].as_str().unwrap().to_string();
    let lines = ci
        .execute(
            json!({"code": "import os\nb = 1\nos.getcwd(), 'a' in globals()", "context_id": id}),
        )
        .await;
    assert_eq!(
        main_text(&lines).as_deref(),
        Some("('/tmp', False)"),
        "{lines:?}"
    );
    let lines = ci.execute(json!({"code": "b + 1", "context_id": id})).await;
    assert_eq!(main_text(&lines).as_deref(), Some("2"));
    let (_, listed) = ci.call(reqwest::Method::GET, "/contexts", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // Restart: same context, state gone.
    let (status, _) = ci
        .call(
            reqwest::Method::POST,
            &format!("/contexts/{id}/restart"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let lines = ci
        .execute(json!({"code": "'b' in globals()", "context_id": id}))
        .await;
    assert_eq!(main_text(&lines).as_deref(), Some("False"), "{lines:?}");

    // Delete: gone from the list, and executing in it is a 404.
    let (status, _) = ci
        .call(reqwest::Method::DELETE, &format!("/contexts/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (_, listed) = ci.call(reqwest::Method::GET, "/contexts", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (status, _) = ci
        .call(
            reqwest::Method::POST,
            "/execute",
            Some(json!({"code": "1", "context_id": id})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = ci
        .call(reqwest::Method::DELETE, &format!("/contexts/{id}"), None)
        .await;
    assert_eq!(status, 404);

    // A bash context keeps its shell variables.
    let (status, bash) = ci
        .call(
            reqwest::Method::POST,
            "/contexts",
            Some(json!({"language": "bash"})),
        )
        .await;
    assert_eq!(status, 200, "{bash}");
    let bash_id = bash["id"].as_str().unwrap();
    ci.execute(json!({"code": "N=7", "context_id": bash_id}))
        .await;
    let lines = ci
        .execute(json!({"code": "echo n=$N", "context_id": bash_id}))
        .await;
    assert_eq!(stdout(&lines), "n=7\n", "{lines:?}");

    // JavaScript and TypeScript: Deno's kernel, one default context for both.
    let js = ci
        .execute(json!({"code": "const xs = [1, 2, 3].map((x) => x * 2); console.log('js'); xs.length", "language": "javascript"}))
        .await;
    assert_eq!(stdout(&js), "js\n", "{js:?}");
    assert_eq!(main_text(&js).as_deref(), Some("3"), "{js:?}");
    let ts = ci
        .execute(json!({"code": "const n: number = xs.length * 14; n", "language": "typescript"}))
        .await;
    assert_eq!(main_text(&ts).as_deref(), Some("42"), "{ts:?}");

    // A client that goes away interrupts the execution: the next one runs
    // at once instead of after the sleep.
    let gone = ci
        .server
        .http
        .post(format!("{}/execute", ci.base))
        .json(&json!({"code": "import time\ntime.sleep(600)"}))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    if let Ok(resp) = gone {
        let _ = resp.bytes().await; // times out, dropping the connection
    }
    let started = Instant::now();
    let lines = ci.run("a").await;
    assert_eq!(main_text(&lines).as_deref(), Some("'default'"), "{lines:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the abandoned execution was not interrupted ({:?})",
        started.elapsed()
    );

    // Code that kills its kernel gets an error; the next execution runs in
    // a new kernel.
    let died = ci.run("import os\nos._exit(1)").await;
    assert_eq!(of(&died, "error")[0]["name"], "KernelError", "{died:?}");
    let lines = ci.run("'a' in globals(), 6 * 7").await;
    assert_eq!(
        main_text(&lines).as_deref(),
        Some("(False, 42)"),
        "{lines:?}"
    );
}
