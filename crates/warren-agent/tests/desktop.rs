//! `/v1/desktop` on a real display: an agent on this host starts Xvfb and
//! Openbox (installed by `scripts/test-deps.sh`), opens a local page in
//! Chromium that puts the last key and click in its title, and drives it
//! through the API, and records the screen. One desktop for the file (one test), killed with the
//! agent's processes even when an assertion fails.

mod common;

use std::time::{Duration, Instant};

use common::TestAgent;
use serde_json::{json, Value};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 600;

/// The page: its title and text are the last key pressed or the last
/// click's position in the page.
const PAGE: &str = r#"<!doctype html>
<html><head><title>ready</title></head>
<body style="margin:0;height:100vh;background:#fff">
<div id="s" style="font:48px sans-serif">ready</div>
<script>
function show(t) {
  document.title = t;
  document.getElementById('s').textContent = t;
}
addEventListener('keydown', e => show('key:' + e.key));
addEventListener('mousedown', e => show('click:' + e.clientX + ',' + e.clientY));
</script></body></html>"#;

/// ffprobe's view of a video file's format and streams; it must read it.
/// The agent in this process reaps children too, so the wait may find the
/// exit status gone (ECHILD): then ffprobe runs again.
fn ffprobe(path: &std::path::Path) -> Value {
    let run = || {
        std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=format_name,duration:stream=codec_name,width,height",
                "-of",
                "json",
            ])
            .arg(path)
            .output()
    };
    let probe = (0..5)
        .find_map(|_| run().ok())
        .expect("ffprobe ran (its exit status was reaped by the agent each time)");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    serde_json::from_slice(&probe.stdout).unwrap()
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

struct Api<'a>(&'a TestAgent);

impl Api<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.0.http.request(method, self.0.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A POST that must answer 204.
    async fn act(&self, path: &str, body: Value) {
        let (status, problem) = self.call("POST", path, Some(body)).await;
        assert_eq!(status, 204, "{path}: {problem}");
    }

    /// A problem's status and code.
    async fn problem(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let (status, problem) = self.call(method, path, body).await;
        (
            status,
            problem["code"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// A recording once it is no longer `recording` (within 20 s).
    async fn recording_settled(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, list) = self.call("GET", "/v1/desktop/recordings", None).await;
            assert_eq!(status, 200, "{list}");
            let rec = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("{id} not in {list}"))
                .clone();
            if rec["status"] != "recording" {
                return rec;
            }
            assert!(Instant::now() < deadline, "{id} still recording: {rec}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn image(&self, query: &str) -> (String, Vec<u8>) {
        let resp = self
            .0
            .http
            .get(self.0.url(&format!("/v1/desktop/screenshot{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "screenshot{query}");
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        (kind, resp.bytes().await.unwrap().to_vec())
    }

    /// The first window whose title contains `text`, waiting for it.
    async fn window(&self, text: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, list) = self.call("GET", "/v1/desktop/windows", None).await;
            assert_eq!(status, 200, "{list}");
            let found = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["title"].as_str().unwrap().contains(text));
            if let Some(w) = found {
                return w.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no window with {text:?} in {list}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no window's title contains `text`.
    async fn window_gone(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, list) = self.call("GET", "/v1/desktop/windows", None).await;
            assert_eq!(status, 200, "{list}");
            let titles: Vec<&str> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["title"].as_str().unwrap())
                .collect();
            if !titles.iter().any(|t| t.contains(text)) {
                return;
            }
            assert!(Instant::now() < deadline, "{text:?} still in {titles:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_on_a_real_display() {
    let agent = TestAgent::start_with(|config| {
        // Chromium's profile goes in the test's own directory.
        let home = config.workdir.display().to_string();
        config.env.extend([("HOME".to_string(), home)].into());
    })
    .await;
    let api = Api(&agent);

    // Nothing works before `start`.
    for (method, path, body) in [
        ("GET", "/v1/desktop/screenshot", None),
        ("GET", "/v1/desktop/windows", None),
        ("POST", "/v1/desktop/mouse/click", Some(json!({}))),
        ("GET", "/v1/desktop/display/info", None),
    ] {
        let got = api.problem(method, path, body).await;
        assert_eq!(got, (409, "desktop_not_running".into()), "{path}");
    }
    let (status, desktop) = api.call("GET", "/v1/desktop/status", None).await;
    assert_eq!((status, &desktop["running"]), (200, &json!(false)));

    // Start: Xvfb and Openbox as managed processes; idempotent.
    let started = Instant::now();
    let size = json!({"width": WIDTH, "height": HEIGHT});
    let (status, desktop) = api
        .call("POST", "/v1/desktop/start", Some(size.clone()))
        .await;
    assert_eq!(status, 200, "{desktop}");
    eprintln!("desktop started in {:?}", started.elapsed());
    assert_eq!(desktop["running"], true, "{desktop}");
    let names: Vec<&str> = desktop["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["xvfb", "window_manager"]);
    let (status, again) = api.call("POST", "/v1/desktop/start", Some(size)).await;
    assert_eq!((status, &again["display"]), (200, &desktop["display"]));
    let other = api
        .problem(
            "POST",
            "/v1/desktop/start",
            Some(json!({"width": 1024, "height": 768})),
        )
        .await;
    assert_eq!(other, (409, "conflict".into()));
    let (_, info) = api.call("GET", "/v1/desktop/display/info", None).await;
    assert_eq!(
        (&info["width"], &info["height"], &info["depth"]),
        (&json!(WIDTH), &json!(HEIGHT), &json!(24))
    );

    // Screenshots: PNG of the size asked, a region, scaled, JPEG.
    let timer = Instant::now();
    let (kind, png) = api.image("").await;
    eprintln!(
        "PNG screenshot at {WIDTH}x{HEIGHT} in {:?}",
        timer.elapsed()
    );
    assert_eq!(kind, "image/png");
    assert_eq!(png_size(&png), (WIDTH, HEIGHT));
    let (_, region) = api.image("/region?x=10&y=20&width=100&height=50").await;
    assert_eq!(png_size(&region), (100, 50));
    let (_, half) = api.image("?scale=0.5&cursor=true").await;
    assert_eq!(png_size(&half), (WIDTH / 2, HEIGHT / 2));
    let (kind, jpeg) = api.image("?format=jpeg&quality=50").await;
    assert_eq!(kind, "image/jpeg");
    assert_eq!(&jpeg[..3], b"\xff\xd8\xff", "a JPEG");

    // Bad input: positions off the screen, bad values, unknown windows.
    for (path, body, field) in [
        ("/v1/desktop/mouse/move", json!({"x": WIDTH, "y": 0}), "x"),
        (
            "/v1/desktop/mouse/click",
            json!({"x": 5, "y": HEIGHT + 1}),
            "y",
        ),
        ("/v1/desktop/mouse/click", json!({"x": 5}), "x"),
        (
            "/v1/desktop/mouse/drag",
            json!({"start_x": 0, "start_y": 0, "end_x": 9999, "end_y": 0}),
            "end_x",
        ),
        ("/v1/desktop/mouse/scroll", json!({"dy": 1000}), "dy"),
        ("/v1/desktop/keyboard/press", json!({"key": "a b"}), "key"),
        (
            "/v1/desktop/keyboard/press",
            json!({"key": "a", "modifiers": ["hyper"]}),
            "modifiers",
        ),
        (
            "/v1/desktop/keyboard/type",
            json!({"text": "x", "delay_ms": 5000}),
            "delay_ms",
        ),
    ] {
        let (status, problem) = api.call("POST", path, Some(body.clone())).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_request")),
            "{path} {body}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{path}: {problem}"
        );
    }
    let (status, problem) = api
        .call(
            "GET",
            "/v1/desktop/screenshot/region?x=700&y=0&width=200&height=10",
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_request")),
        "{problem}"
    );
    let (status, _) = api
        .call("GET", "/v1/desktop/screenshot?quality=0&format=jpeg", None)
        .await;
    assert_eq!(status, 400);
    for path in [
        "/v1/desktop/windows/12345/focus",
        "/v1/desktop/windows/12345/close",
    ] {
        assert_eq!(
            api.problem("POST", path, None).await,
            (404, "window_not_found".into())
        );
    }
    let (status, _) = api
        .call("POST", "/v1/desktop/windows/abc/focus", None)
        .await;
    assert_eq!(status, 400);

    // The page in Chromium, through `open`.
    let page = agent.dir.path().join("page.html");
    std::fs::write(&page, PAGE).unwrap();
    let (status, opened) = api
        .call(
            "POST",
            "/v1/desktop/open",
            Some(json!({"target": page.display().to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    let window = api.window("ready").await;
    // Chromium's singleton socket is in the agent's state, not in /tmp.
    let socket =
        std::fs::read_link(agent.dir.path().join(".config/chromium/SingletonSocket")).unwrap();
    assert!(
        socket.starts_with(agent.dir.path().join(".warren/chromium-tmp")),
        "{}",
        socket.display()
    );
    let id = window["id"].as_u64().unwrap();
    api.act(
        &format!("/v1/desktop/windows/{id}/move"),
        json!({"x": 0, "y": 0}),
    )
    .await;
    api.act(
        &format!("/v1/desktop/windows/{id}/resize"),
        json!({"width": WIDTH - 100, "height": HEIGHT - 100}),
    )
    .await;
    api.act(&format!("/v1/desktop/windows/{id}/focus"), json!({}))
        .await;
    let window = api.window("ready").await;
    assert_eq!(window["focused"], true, "{window}");
    assert!(
        window["width"].as_u64().unwrap() <= (WIDTH - 100) as u64,
        "{window}"
    );
    // Wait for the page to paint, then keep its picture.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, before) = api.image("").await;

    // Keys: typed text, a named key, a modifier.
    api.act("/v1/desktop/keyboard/type", json!({"text": "q"}))
        .await;
    api.window("key:q").await;
    let (_, typed) = api.image("").await;
    assert_ne!(typed, before, "the screen changed with the page");
    assert_eq!(png_size(&typed), (WIDTH, HEIGHT));
    // Beyond ASCII (xdotool maps a spare keycode; the page's keydown sees
    // no `key` for it, so only the call is checked), and text that looks
    // like options.
    api.act("/v1/desktop/keyboard/type", json!({"text": "é日本"}))
        .await;
    api.act("/v1/desktop/keyboard/type", json!({"text": "--help"}))
        .await;
    api.window("key:p").await;
    api.act("/v1/desktop/keyboard/press", json!({"key": "Return"}))
        .await;
    api.window("key:Enter").await;
    api.act(
        "/v1/desktop/keyboard/press",
        json!({"key": "b", "modifiers": ["shift"]}),
    )
    .await;
    api.window("key:B").await;
    api.act("/v1/desktop/keyboard/down", json!({"key": "x"}))
        .await;
    api.act("/v1/desktop/keyboard/up", json!({"key": "x"}))
        .await;
    api.window("key:x").await;

    // Clicks land where asked: two clicks 30 and 20 pixels apart are 30
    // and 20 pixels apart in the page.
    let (cx, cy) = (
        window["x"].as_u64().unwrap() as u32 + 200,
        window["y"].as_u64().unwrap() as u32 + 200,
    );
    api.act("/v1/desktop/mouse/click", json!({"x": cx, "y": cy}))
        .await;
    let first = api.window("click:").await;
    let at = |w: &Value| -> (i64, i64) {
        let title = w["title"].as_str().unwrap();
        let xy = title
            .split("click:")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let (x, y) = xy.split_once(',').unwrap();
        (x.parse().unwrap(), y.parse().unwrap())
    };
    let (x1, y1) = at(&first);
    api.act(
        "/v1/desktop/mouse/click",
        json!({"x": cx + 30, "y": cy + 20, "button": "left"}),
    )
    .await;
    let second = api.window(&format!("click:{},{}", x1 + 30, y1 + 20)).await;
    assert_eq!(at(&second), (x1 + 30, y1 + 20));
    let (status, pos) = api.call("GET", "/v1/desktop/mouse/position", None).await;
    assert_eq!((status, pos), (200, json!({"x": cx + 30, "y": cy + 20})));
    let (_, clicked) = api.image("").await;
    assert_ne!(clicked, typed, "the screen changed with the click");
    api.act("/v1/desktop/mouse/move", json!({"x": cx, "y": cy}))
        .await;
    api.act("/v1/desktop/mouse/down", json!({"button": "left"}))
        .await;
    api.act("/v1/desktop/mouse/up", json!({"button": "left"}))
        .await;
    api.window(&format!("click:{x1},{y1}")).await;
    api.act(
        "/v1/desktop/mouse/drag",
        json!({"start_x": cx + 5, "start_y": cy, "end_x": cx + 60, "end_y": cy + 40}),
    )
    .await;
    api.window(&format!("click:{},{y1}", x1 + 5)).await;
    api.act("/v1/desktop/mouse/scroll", json!({"dy": 3, "dx": -1}))
        .await;

    // The clipboard.
    let (status, _) = api
        .call(
            "PUT",
            "/v1/desktop/clipboard",
            Some(json!({"text": "héllo, warren"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, clip) = api.call("GET", "/v1/desktop/clipboard", None).await;
    assert_eq!((status, clip), (200, json!({"text": "héllo, warren"})));

    // A recording: about two seconds of typing, a playable MP4.
    let (status, rec) = api
        .call(
            "POST",
            "/v1/desktop/recording/start",
            Some(json!({"framerate": 10})),
        )
        .await;
    assert_eq!(
        (status, &rec["status"]),
        (200, &json!("recording")),
        "{rec}"
    );
    let rec_id = rec["id"].as_str().unwrap().to_string();
    let rec_path = format!("/v1/desktop/recordings/{rec_id}");
    assert_eq!(
        api.problem("GET", &rec_path, None).await,
        (409, "conflict".into())
    );
    assert_eq!(
        api.problem("POST", "/v1/desktop/recording/start", Some(json!({})))
            .await,
        (409, "conflict".into())
    );
    let recorded = Instant::now();
    for key in ["r", "e", "c"] {
        api.act("/v1/desktop/keyboard/type", json!({"text": key}))
            .await;
        api.window(&format!("key:{key}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, done) = api.call("POST", "/v1/desktop/recording/stop", None).await;
    let seconds = recorded.elapsed().as_secs_f64();
    assert_eq!((status, &done["status"]), (200, &json!("done")), "{done}");
    assert!(done["size_bytes"].as_u64().unwrap() > 0, "{done}");
    let (_, list) = api.call("GET", "/v1/desktop/recordings", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let resp = agent.http.get(agent.url(&rec_path)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    let mp4 = agent.dir.path().join("rec.mp4");
    std::fs::write(&mp4, resp.bytes().await.unwrap()).unwrap();
    let probe = ffprobe(&mp4);
    assert!(
        probe["format"]["format_name"]
            .as_str()
            .unwrap()
            .contains("mp4"),
        "{probe}"
    );
    assert_eq!(probe["streams"][0]["codec_name"], "h264", "{probe}");
    assert_eq!(
        (
            &probe["streams"][0]["width"],
            &probe["streams"][0]["height"]
        ),
        (&json!(WIDTH), &json!(HEIGHT))
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        duration > 1.0 && duration <= seconds + 0.5,
        "{duration} s of {seconds} s: {probe}"
    );
    let (status, _) = api.call("DELETE", &rec_path, None).await;
    assert_eq!(status, 204);
    assert_eq!(
        api.problem("GET", &rec_path, None).await,
        (404, "recording_not_found".into())
    );
    assert_eq!(
        api.problem("DELETE", "/v1/desktop/recordings/rec_nope", None)
            .await,
        (404, "recording_not_found".into())
    );
    assert_eq!(
        api.problem("POST", "/v1/desktop/recording/stop", None)
            .await,
        (409, "conflict".into())
    );

    // A recording that ends by itself at its cap is reaped as done, playable,
    // with no `recording/stop`; one whose ffmpeg is killed is reaped as failed.
    for bad in [0, 3601] {
        assert_eq!(
            api.problem(
                "POST",
                "/v1/desktop/recording/start",
                Some(json!({"max_seconds": bad}))
            )
            .await,
            (400, "invalid_request".into())
        );
    }
    let (status, rec) = api
        .call(
            "POST",
            "/v1/desktop/recording/start",
            Some(json!({"max_seconds": 1})),
        )
        .await;
    assert_eq!(status, 200, "{rec}");
    let capped = rec["id"].as_str().unwrap().to_string();
    let done = api.recording_settled(&capped).await;
    assert_eq!(done["status"], "done", "{done}");
    let resp = agent
        .http
        .get(agent.url(&format!("/v1/desktop/recordings/{capped}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mp4 = agent.dir.path().join("capped.mp4");
    std::fs::write(&mp4, resp.bytes().await.unwrap()).unwrap();
    let probe = ffprobe(&mp4);
    assert_eq!(probe["streams"][0]["codec_name"], "h264", "{probe}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(duration > 0.0 && duration <= 1.5, "{duration} s: {probe}");
    let (status, rec) = api
        .call("POST", "/v1/desktop/recording/start", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{rec}");
    let killed = rec["id"].as_str().unwrap().to_string();
    let (_, procs) = api.call("GET", "/v1/processes", None).await;
    let ffmpeg = procs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["argv"][0] == "ffmpeg" && p["state"] == "running")
        .unwrap_or_else(|| panic!("no ffmpeg in {procs}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = api
        .call(
            "POST",
            &format!("/v1/processes/{ffmpeg}/signal"),
            Some(json!({"signal": "KILL"})),
        )
        .await;
    assert_eq!(status, 204);
    let failed = api.recording_settled(&killed).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    for id in [&capped, &killed] {
        let (status, _) = api
            .call("DELETE", &format!("/v1/desktop/recordings/{id}"), None)
            .await;
        assert_eq!(status, 204, "{id}");
    }

    // launch runs as `user` when given (checked as /v1/processes checks it),
    // else as the agent's own user.
    let (status, launched) = api
        .call(
            "POST",
            "/v1/desktop/launch",
            Some(json!({"app": "sleep", "args": ["60"], "user": "nobody"})),
        )
        .await;
    assert_eq!(status, 200, "{launched}");
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", launched["pid"])).unwrap();
    let uid = proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(uid, "65534", "{proc_status}");
    let (status, _) = api
        .call(
            "POST",
            &format!(
                "/v1/processes/{}/signal",
                launched["process_id"].as_str().unwrap()
            ),
            Some(json!({"signal": "KILL"})),
        )
        .await;
    assert_eq!(status, 204);
    let unknown = api
        .problem(
            "POST",
            "/v1/processes",
            Some(json!({"argv": ["true"], "user": "no-such-user"})),
        )
        .await;
    assert_eq!(unknown.0, 400, "{unknown:?}");
    for (path, body) in [
        ("launch", json!({"app": "true", "user": "no-such-user"})),
        ("open", json!({"target": "/tmp", "user": "no-such-user"})),
    ] {
        assert_eq!(
            api.problem("POST", &format!("/v1/desktop/{path}"), Some(body))
                .await,
            unknown,
            "{path}"
        );
    }

    // Close the window; stop the desktop.
    api.act(&format!("/v1/desktop/windows/{id}/close"), json!({}))
        .await;
    api.window_gone("click:").await;
    let (status, stopped) = api.call("POST", "/v1/desktop/stop", None).await;
    assert_eq!(
        (status, &stopped["running"]),
        (200, &json!(false)),
        "{stopped}"
    );
    let got = api.problem("GET", "/v1/desktop/screenshot", None).await;
    assert_eq!(got, (409, "desktop_not_running".into()));
    let (_, processes) = api.call("GET", "/v1/processes", None).await;
    for p in processes["items"].as_array().unwrap() {
        let argv0 = p["argv"][0].as_str().unwrap_or_default();
        assert!(argv0 != "Xvfb" && argv0 != "openbox", "{p}");
    }
}
