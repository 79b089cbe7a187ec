"""``sandbox.desktop`` and ``sandbox.desktop.browser`` (sync and async)
against a real server and a real ``desktop`` sandbox: a local page that
records the last mouse button and key is driven by ``left_click``,
``write`` and ``press`` and read back through ``browser.text()``; window
lists carry ``truncated``, ``launch`` runs as a user and a recording with
``max_seconds`` ends by itself.

The ``desktop`` template lives in the shared test pool: this file runs
through ``cargo nextest run -p warren --test sdk_desktop``, which starts a
server with it and passes ``WARREN_DESKTOP_URL``/``WARREN_DESKTOP_API_KEY``.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from typing import Awaitable, Callable, Iterator, List, Optional, Tuple, TypeVar

import httpx
import pytest

from warren import (
    AsyncDesktop,
    AsyncSandbox,
    ConflictError,
    InvalidRequestError,
    Recording,
    Sandbox,
    WarrenError,
    Window,
)

URL = os.environ.get("WARREN_DESKTOP_URL")
KEY = os.environ.get("WARREN_DESKTOP_API_KEY")
pytestmark = pytest.mark.skipif(
    not URL, reason="no desktop server: run `cargo nextest run -p warren --test sdk_desktop`"
)

PAGE = """<title>ready</title>
<body style="margin:0;height:100vh">
<p id="c">none</p><p id="k">none</p><p id="t">typed:</p>
<script>
addEventListener('mousedown', (e) => { c.textContent = 'down:' + e.button; });
addEventListener('contextmenu', (e) => e.preventDefault());
addEventListener('keydown', (e) => {
  k.textContent = 'key:' + e.key;
  if (e.key.length === 1) t.textContent += e.key;
});
</script>"""

T = TypeVar("T")


def wait_for(check: Callable[[], Optional[T]], what: str, timeout: float = 20.0) -> T:
    """Polls ``check`` until it returns something other than ``None``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


async def wait_for_async(
    check: Callable[[], Awaitable[Optional[T]]], what: str, timeout: float = 20.0
) -> T:
    """Awaits ``check`` until it returns something other than ``None``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.1)


async def first_window(desktop: AsyncDesktop, title: str) -> Optional[Window]:
    """The first window whose title is ``title``, if any."""
    return next((w for w in await desktop.get_windows() if w.title == title), None)


def png_size(data: bytes) -> Tuple[int, int]:
    """Width and height from a PNG's IHDR."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    """The module's one desktop sandbox."""
    with Sandbox.create(
        template="desktop", resources={"memory_mb": 2048}, api_url=URL, api_key=KEY
    ) as sandbox:
        yield sandbox


def test_desktop_not_running_is_a_typed_error(sbx: Sandbox) -> None:
    with pytest.raises(ConflictError) as err:
        sbx.desktop.move_mouse(1, 1)
    assert err.value.code == "desktop_not_running"


def test_click_write_press_read_back(sbx: Sandbox) -> None:
    desktop = sbx.desktop
    status = desktop.start(width=1024, height=768)
    assert status.running and (status.width, status.height) == (1024, 768)
    assert desktop.get_screen_size() == (1024, 768)
    sbx.files.write("/tmp/page.html", PAGE)
    assert desktop.browser.start("file:///tmp/page.html").running
    seen: List[Window] = []

    def still_window() -> Optional[Window]:
        # The page's window, once its geometry held still for one poll.
        w = next((w for w in desktop.get_windows() if w.title.startswith("ready")), None)
        still = w is not None and seen[-1:] == [w]
        if w is not None:
            seen.append(w)
        time.sleep(0.3)
        return w if still else None

    win = wait_for(still_window, "the page's window")
    cx, cy = win.x + win.width // 2, win.y + win.height // 2

    def page_shows(want: str) -> str:
        def check() -> Optional[str]:
            text = desktop.browser.text().text or ""
            return text if want in text else None

        return wait_for(check, f"{want!r} on the page")

    desktop.right_click(cx, cy)
    page_shows("down:2")
    desktop.left_click(cx, cy)
    assert desktop.get_cursor_position() == (cx, cy)
    desktop.write("py")
    desktop.press(["shift", "q"])
    desktop.press("Return")
    text = page_shows("key:Enter")
    assert "down:0" in text and "typed:pyQ" in text
    assert desktop.browser.text().title == "ready"

    assert png_size(desktop.screenshot()) == (1024, 768)
    assert png_size(desktop.screenshot(scale=0.5)) == (512, 384)
    assert png_size(desktop.screenshot_region(0, 0, 64, 32)) == (64, 32)
    assert desktop.screenshot(format="jpeg")[:2] == b"\xff\xd8"
    assert png_size(desktop.browser.screenshot())[0] > 0


def test_browser_routes_and_cdp_endpoint(sbx: Sandbox) -> None:
    browser = sbx.desktop.browser
    sbx.files.write(
        "/tmp/form.html",
        "<title>form</title><input aria-label='name'>"
        "<button onclick=\"document.title='sent'\">Send</button>",
    )
    assert browser.navigate("file:///tmp/form.html").title == "form"
    snap = browser.snapshot()
    box = next(e for e in snap.elements if e.role == "textbox")
    button = next(e for e in snap.elements if e.role == "button" and e.name == "Send")
    browser.fill(box.ref, "warren")
    browser.click(button.ref)
    wait_for(lambda: True if browser.text().title == "sent" else None, "the click")
    with pytest.raises(WarrenError) as err:
        browser.click("no-such-ref")
    assert err.value.status is not None and err.value.status < 500

    cdp = browser.cdp_url()
    assert cdp.url.startswith("ws://") and cdp.url.endswith("/desktop/browser/cdp")
    assert cdp.headers == {"Authorization": f"Bearer {KEY}"}
    # The endpoint answers the DevTools WebSocket handshake with these headers.
    handshake = {
        **cdp.headers,
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    http_url = "http" + cdp.url[len("ws") :]
    with httpx.stream("GET", http_url, headers=handshake, timeout=30) as response:
        assert response.status_code == 101


def test_stream_url_request_shape(sbx: Sandbox) -> None:
    sent = []
    hooks = sbx._transport._client.event_hooks["request"]
    hooks.append(sent.append)
    try:
        result = sbx.desktop.stream.get_url(view_only=True, ttl_seconds=60)
    finally:
        hooks.remove(sent.append)
    request = next(r for r in sent if r.url.path.endswith("/desktop/stream/url"))
    assert request.method == "POST"
    assert request.url.path == f"/v1/sandboxes/{sbx.sandbox_id}/desktop/stream/url"
    assert json.loads(request.content) == {"view_only": True, "ttl_seconds": 60}
    assert result.view_only is True
    assert f"/ui/desktop/{sbx.sandbox_id}#token=" in result.url
    assert result.url.split("#token=")[1] == result.token


def test_window_list_user_and_max_seconds(sbx: Sandbox) -> None:
    listed = sbx.desktop.list_windows()
    assert listed.truncated is False
    assert any(w.title.endswith("Chromium") for w in listed.items), listed
    launched = sbx.desktop.launch("sleep", ["60"], user="nobody")
    ps = sbx.exec.run(f"ps -o user= -p {launched.pid}; kill {launched.pid}")
    assert ps.stdout.strip() == "nobody", ps
    with pytest.raises(InvalidRequestError):
        sbx.desktop.open("/tmp", user="no-such-user")
    rec = sbx.desktop.start_recording(max_seconds=1)
    done = wait_for(
        lambda: next(
            (
                r
                for r in sbx.desktop.list_recordings()
                if r.recording_id == rec.recording_id and r.status != "recording"
            ),
            None,
        ),
        "the recording to end by itself",
    )
    assert done.status == "done" and done.size_bytes > 0, done
    sbx.desktop.delete_recording(rec.recording_id)


def test_bad_coordinates_and_stop(sbx: Sandbox) -> None:
    with pytest.raises(InvalidRequestError):
        sbx.desktop.left_click(5000, 5000)
    assert not sbx.desktop.browser.stop().running
    assert not sbx.desktop.stop().running


async def test_async_desktop_drives_the_same_sandbox(sbx: Sandbox) -> None:
    asbx = await AsyncSandbox.connect(sbx.sandbox_id, api_url=URL, api_key=KEY)
    try:
        desktop = asbx.desktop
        assert (await desktop.start(width=800, height=600)).running
        await desktop.move_mouse(20, 10)
        assert await desktop.get_cursor_position() == (20, 10)
        await desktop.set_clipboard("from async")
        assert await desktop.get_clipboard() == "from async"
        assert png_size(await desktop.screenshot()) == (800, 600)
        launched = await desktop.launch("xterm", ["-T", "py-term"], user="nobody")
        assert launched.process_id.startswith("proc_")
        term = await wait_for_async(lambda: first_window(desktop, "py-term"), "the xterm window")
        listed = await desktop.list_windows()
        assert listed.truncated is False and term in listed.items, listed
        ps = await asbx.exec.run(f"ps -o user= -p {launched.pid}")
        assert ps.stdout.strip() == "nobody", ps
        rec = await desktop.start_recording(framerate=5, max_seconds=1)
        assert rec.status == "recording"

        async def ended() -> Optional[Recording]:
            for r in await desktop.list_recordings():
                if r.recording_id == rec.recording_id and r.status != "recording":
                    return r
            return None

        done = await wait_for_async(ended, "the recording to end by itself")
        assert done.status == "done", done
        assert (await desktop.browser.status()).running is False
        assert not (await desktop.stop()).running
    finally:
        await asbx.close()
