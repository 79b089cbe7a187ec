//! Desktop (computer use, issue 15) benchmark, through a real server over
//! HTTP against a sandbox of the `desktop` template, next to the same
//! operations done natively on the host (an Xvfb at 1280×800 driven by
//! `ffmpeg -f x11grab` and `xdotool` directly, no Warren), so the ratio is
//! Warren's overhead:
//!
//! 1. **desktop start**: `desktop/start` (Xvfb + Openbox) over `BENCH_CYCLES`
//!    start/stop cycles (default 5), against starting a host Xvfb until its
//!    socket accepts; and from `POST /v1/sandboxes` to the first screenshot.
//! 2. **screenshot** at 1280×800, PNG and JPEG (`BENCH_N` rounds, default
//!    30), with the bytes of one image.
//! 3. **input round trip**: `mouse/move`, `mouse/click`, `keyboard/type` of
//!    a short string, against the same xdotool commands on the host.
//! 4. **idle memory** of the sandbox's cgroup with the display started, and
//!    with the browser started too.
//! 5. **live view**: frames per second and bytes per second of the RFB
//!    stream (`desktop/stream`, ZRLE) over `LIVE_SECS` seconds while an
//!    xterm scrolls `seq`, against an x11vnc with the agent's options on the
//!    host's Xvfb, read over loopback TCP by the same client (see
//!    [`warren_bench::rfb`]).
//!
//! Starts a `warren server` (release build, `$WARREN_BIN`) with a state
//! directory of its own (`$WARREN_BENCH_DESKTOP_STATE`, default
//! `/var/lib/warren-bench-desktop`), cgroup `warren-bench-desktop`, no
//! network; the first run builds `base` and `desktop` (minutes).
//! Run: `scripts/bench.sh desktop`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warren_bench::json_api::JsonApi;
use warren_bench::rfb::{self, Rfb};
use warren_bench::server::{BenchServer, ServerOptions};
use warren_bench::{
    cgroup_memory, env_usize, free_port, mib, print_compare, print_row, ratio_f, Guard, Samples,
};

const ADMIN_KEY: &str = "wadm_bench-admin-key-0123456789";
const CGROUP: &str = "warren-bench-desktop";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// The display of the host peer's Xvfb.
const HOST_DISPLAY: &str = ":77";
/// What `keyboard/type` types.
const TEXT: &str = "hello warren";
/// How long the live view is measured.
const LIVE_SECS: u64 = 5;
/// The encodings the live-view client accepts (noVNC's first choice).
const ENCODINGS: [i32; 3] = [rfb::ZRLE, rfb::COPY_RECT, rfb::RAW];
/// The changing content: an xterm scrolling numbers forever.
const XTERM_ARGS: [&str; 6] = [
    "-geometry",
    "100x40+0+0",
    "-e",
    "sh",
    "-c",
    "while :; do seq 1 100000; done",
];

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let state_dir = std::env::var_os("WARREN_BENCH_DESKTOP_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/warren-bench-desktop"));
    let server = BenchServer::start(&ServerOptions {
        state_dir,
        cgroup_parent: CGROUP.into(),
        network: None,
        extra_args: vec![],
        nofile: 65536,
        admin_key: ADMIN_KEY.into(),
    })
    .await?;
    eprintln!("server pid {}", server.pid());
    let http = reqwest::Client::builder().no_proxy().build()?;
    let base = server.api.base().to_string();
    let api = JsonApi::new(http.clone(), &base, ADMIN_KEY);
    api.build_template("desktop").await?;

    let n = env_usize("BENCH_N", 30);
    let cycles = env_usize("BENCH_CYCLES", 5);
    let host = host_peer(n, cycles).await?;

    // Create → desktop/start → first screenshot.
    let t0 = Instant::now();
    let id = api
        .call(
            "POST",
            "/v1/sandboxes",
            Some(
                json!({"template": "desktop", "timeout_secs": 0, "resources": {"memory_mb": 2048}}),
            ),
        )
        .await?["id"]
        .as_str()
        .context("sandbox id")?
        .to_string();
    let result = measure(&api, &http, &base, &id, t0, n, cycles).await;
    api.call("DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await?;
    drop(server);
    let ours = result?;
    report(&ours, &host);
    Ok(())
}

/// What one side measured.
#[derive(Default)]
struct Figures {
    start: Samples,
    create_to_shot: Option<Duration>,
    png: Samples,
    png_bytes: usize,
    jpeg: Samples,
    jpeg_bytes: usize,
    mouse_move: Samples,
    click: Samples,
    typing: Samples,
    mem_display: Option<(u64, u64)>,
    mem_browser: Option<(u64, u64)>,
    live: Option<(f64, f64)>,
}

async fn measure(
    api: &JsonApi,
    http: &reqwest::Client,
    base: &str,
    id: &str,
    created: Instant,
    n: usize,
    cycles: usize,
) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    let d = format!("/v1/sandboxes/{id}/desktop");
    let start_body = json!({"width": WIDTH, "height": HEIGHT});
    api.call("POST", &format!("{d}/start"), Some(start_body.clone()))
        .await?;
    shot(http, base, id, "png").await?;
    f.create_to_shot = Some(created.elapsed());
    for _ in 0..cycles {
        api.call("POST", &format!("{d}/stop"), None).await?;
        let t = Instant::now();
        api.call("POST", &format!("{d}/start"), Some(start_body.clone()))
            .await?;
        f.start.push(t.elapsed());
    }
    for _ in 0..n {
        let t = Instant::now();
        f.png_bytes = shot(http, base, id, "png").await?;
        f.png.push(t.elapsed());
        let t = Instant::now();
        f.jpeg_bytes = shot(http, base, id, "jpeg").await?;
        f.jpeg.push(t.elapsed());
    }
    for i in 0..n {
        let (x, y) = (100 + i as u32 * 7 % 900, 100 + i as u32 * 5 % 500);
        let t = Instant::now();
        api.call(
            "POST",
            &format!("{d}/mouse/move"),
            Some(json!({"x": x, "y": y})),
        )
        .await?;
        f.mouse_move.push(t.elapsed());
        let t = Instant::now();
        api.call(
            "POST",
            &format!("{d}/mouse/click"),
            Some(json!({"x": x, "y": y})),
        )
        .await?;
        f.click.push(t.elapsed());
        let t = Instant::now();
        api.call(
            "POST",
            &format!("{d}/keyboard/type"),
            Some(json!({"text": TEXT})),
        )
        .await?;
        f.typing.push(t.elapsed());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    f.mem_display = cgroup_memory(CGROUP);
    api.call("POST", &format!("{d}/browser/start"), Some(json!({})))
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    f.mem_browser = cgroup_memory(CGROUP);
    api.call(
        "POST",
        &format!("{d}/launch"),
        Some(json!({"app": "xterm", "args": XTERM_ARGS})),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ws = base.replacen("http", "ws", 1);
    f.live = Some(live_view(&format!("{ws}/v1/sandboxes/{id}/desktop/stream")).await?);
    Ok(f)
}

/// `GET …/desktop/screenshot?format=`; the bytes of the image.
async fn shot(http: &reqwest::Client, base: &str, id: &str, format: &str) -> anyhow::Result<usize> {
    let resp = http
        .get(format!("{base}/v1/sandboxes/{id}/desktop/screenshot"))
        .query(&[("format", format)])
        .bearer_auth(ADMIN_KEY)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("screenshot: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(body.len())
}

/// The same operations on the host: an Xvfb at 1280×800 driven by ffmpeg
/// and xdotool directly.
async fn host_peer(n: usize, cycles: usize) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    let socket = format!("/tmp/.X11-unix/X{}", &HOST_DISPLAY[1..]);
    let xvfb = || {
        let mut cmd = Command::new("Xvfb");
        cmd.args([
            HOST_DISPLAY,
            "-screen",
            "0",
            &format!("{WIDTH}x{HEIGHT}x24"),
            "-nolisten",
            "tcp",
        ]);
        Guard::spawn(cmd)
    };
    let mut display = None;
    for _ in 0..cycles {
        drop(display.take());
        let t = Instant::now();
        let g = xvfb()?;
        wait_socket(&socket)?;
        f.start.push(t.elapsed());
        display = Some(g);
    }
    let _display = match display {
        Some(g) => g,
        None => {
            let g = xvfb()?;
            wait_socket(&socket)?;
            g
        }
    };
    for _ in 0..n {
        let t = Instant::now();
        f.png_bytes = host_run(&ffmpeg_shot(true))?;
        f.png.push(t.elapsed());
        let t = Instant::now();
        f.jpeg_bytes = host_run(&ffmpeg_shot(false))?;
        f.jpeg.push(t.elapsed());
    }
    for i in 0..n {
        let (x, y) = (
            (100 + i * 7 % 900).to_string(),
            (100 + i * 5 % 500).to_string(),
        );
        let t = Instant::now();
        host_run(&["xdotool", "mousemove", &x, &y])?;
        f.mouse_move.push(t.elapsed());
        let t = Instant::now();
        host_run(&["xdotool", "mousemove", &x, &y, "click", "1"])?;
        f.click.push(t.elapsed());
        let t = Instant::now();
        host_run(&["xdotool", "type", "--", TEXT])?;
        f.typing.push(t.elapsed());
    }
    f.live = Some(host_live_view().await?);
    Ok(f)
}

/// The host's live view: an xterm scrolling on the host Xvfb, and an
/// x11vnc with the agent's options (desktop/stream.rs) listening on a
/// loopback port instead of connecting back, read by the same client.
/// Both processes are stopped when this returns, error or not.
async fn host_live_view() -> anyhow::Result<(f64, f64)> {
    let mut xterm = Command::new("xterm");
    xterm.args(XTERM_ARGS).env("DISPLAY", HOST_DISPLAY);
    let _xterm = Guard::spawn(xterm)?;
    let port = free_port();
    let mut vnc = Command::new("x11vnc");
    vnc.args(["-q", "-display", HOST_DISPLAY, "-localhost", "-rfbport"])
        .arg(port.to_string())
        .args([
            "-once",
            "-nopw",
            "-noxdamage",
            "-nobell",
            "-noxrecord",
            "-cursor",
            "arrow",
        ])
        .env("DISPLAY", HOST_DISPLAY);
    let _vnc = Guard::spawn(vnc)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let tcp = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(tcp) => break tcp,
            Err(e) if Instant::now() > deadline => bail!("x11vnc on port {port}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    tcp.set_nodelay(true)?;
    let rfb = Rfb::handshake_plain(tcp, &ENCODINGS)
        .await
        .map_err(|e| anyhow::anyhow!("host x11vnc: {e}"))?;
    measure_live(rfb).await
}

/// The argv of one 1280×800 frame as PNG (or JPEG) on stdout.
fn ffmpeg_shot(png: bool) -> Vec<&'static str> {
    let mut argv = vec![
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "x11grab",
        "-draw_mouse",
        "0",
        "-video_size",
        "1280x800",
        "-i",
        HOST_DISPLAY,
        "-frames:v",
        "1",
    ];
    if png {
        argv.extend(["-c:v", "png", "-compression_level", "1"]);
    } else {
        argv.extend(["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "7"]);
    }
    argv.extend(["-f", "image2pipe", "-"]);
    argv
}

/// Runs `argv` on the host display; the bytes of its stdout. A client that
/// could not open the display is run again (up to 5 times, within the
/// timed span): on this host XOpenDisplay fails now and then under load.
fn host_run(argv: &[&str]) -> anyhow::Result<usize> {
    let mut attempts = 0;
    loop {
        let out = Command::new(argv[0])
            .args(&argv[1..])
            .env("DISPLAY", HOST_DISPLAY)
            .output()
            .with_context(|| format!("running {}", argv[0]))?;
        if out.status.success() {
            return Ok(out.stdout.len());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        attempts += 1;
        if attempts >= 5 || !err.contains("Can't open display") {
            bail!("{argv:?}: {err}");
        }
    }
}

/// Waits until the X socket accepts a connection.
fn wait_socket(path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if Instant::now() > deadline {
            bail!("{path} did not accept within 10 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Live-view frames per second and bytes per second over the stream
/// WebSocket at `ws_url` (`GET /v1/sandboxes/{id}/desktop/stream`, raw RFB
/// bytes, the admin key as a bearer token), while the screen changes.
async fn live_view(ws_url: &str) -> anyhow::Result<(f64, f64)> {
    let mut request = ws_url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {ADMIN_KEY}").parse()?);
    headers.insert("sec-websocket-protocol", "binary".parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("opening the live view")?;
    let rfb = Rfb::handshake(ws, &ENCODINGS)
        .await
        .map_err(|e| anyhow::anyhow!("live view: {e}"))?;
    measure_live(rfb).await
}

/// A full update, then [`rfb::measure`] over [`LIVE_SECS`]: (non-empty
/// frames per second, bytes per second). Closes the connection.
async fn measure_live<S>(mut rfb: Rfb<S>) -> anyhow::Result<(f64, f64)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let span = Duration::from_secs(LIVE_SECS);
    let m = tokio::time::timeout(span * 4, async {
        rfb.request_update(false).await?;
        rfb.next_update().await?;
        rfb::measure(&mut rfb, span).await
    })
    .await;
    rfb.close().await;
    let m = m
        .context("the live view stalled")?
        .map_err(|e| anyhow::anyhow!("live view: {e}"))?;
    eprintln!(
        "live view: {} updates ({} with rectangles) in {:?}",
        m.frames, m.nonempty, m.elapsed
    );
    Ok((m.fps(), m.bytes_per_second()))
}

fn report(ours: &Figures, host: &Figures) {
    println!("\n## Desktop ({WIDTH}x{HEIGHT}), Warren over HTTP vs the host (Xvfb + ffmpeg/xdotool, no Warren)\n");
    print_compare(
        "desktop start (display up)",
        &ours.start,
        "host Xvfb",
        &host.start,
    );
    if let Some(d) = ours.create_to_shot {
        let mut s = Samples::default();
        s.push(d);
        print_row("sandbox create → first screenshot", &s);
    }
    print_compare("screenshot PNG", &ours.png, "host ffmpeg", &host.png);
    print_compare("screenshot JPEG", &ours.jpeg, "host ffmpeg", &host.jpeg);
    println!(
        "| image bytes | PNG {} JPEG {} | host PNG {} JPEG {} |",
        ours.png_bytes, ours.jpeg_bytes, host.png_bytes, host.jpeg_bytes
    );
    print_compare(
        "mouse/move",
        &ours.mouse_move,
        "host xdotool",
        &host.mouse_move,
    );
    print_compare("mouse/click", &ours.click, "host xdotool", &host.click);
    print_compare(
        &format!("keyboard/type {:?}", TEXT),
        &ours.typing,
        "host xdotool",
        &host.typing,
    );
    let mem = |m: Option<(u64, u64)>| {
        m.map_or("-".into(), |(usage, anon)| {
            format!(
                "usage {} anon {}",
                mib(usage as f64 / 1024.0),
                mib(anon as f64 / 1024.0)
            )
        })
    };
    println!(
        "| idle memory, display started | {} |",
        mem(ours.mem_display)
    );
    println!(
        "| idle memory, browser started | {} |",
        mem(ours.mem_browser)
    );
    if let (Some((fps, bps)), Some((host_fps, host_bps))) = (ours.live, host.live) {
        println!(
            "| live view fps (ZRLE, xterm scrolling) | warren {fps:.1} | host x11vnc {host_fps:.1} | ratio {} |",
            ratio_f(fps, host_fps)
        );
        println!(
            "| live view bandwidth | warren {:.1} kB/s | host x11vnc {:.1} kB/s | ratio {} |",
            bps / 1e3,
            host_bps / 1e3,
            ratio_f(bps, host_bps)
        );
    }
}
