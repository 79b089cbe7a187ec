"""``sandbox.desktop`` (sync): the sandbox's display driven by mouse,
keyboard, windows, applications, screenshots and recordings, in the shape
of E2B Desktop where it fits; ``desktop.browser`` is its Chromium and
``desktop.stream`` its live view."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, TypeVar, Union

from .._desktop import Call, DesktopCalls
from .._http import SyncTransport
from ..desktop_models import (
    BrowserPage,
    BrowserSnapshot,
    BrowserStatus,
    CdpEndpoint,
    DesktopStatus,
    Launched,
    Recording,
    StreamUrl,
    Window,
    WindowList,
)

T = TypeVar("T")


class _Base:
    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._calls = DesktopCalls(sandbox_id)

    def _do(self, call: Call[T]) -> T:
        response = self._transport.request(
            call.method, call.path, json_body=call.json_body, params=call.params
        )
        return call.parse(response)


class DesktopStream(_Base):
    """The desktop's live view: ``sandbox.desktop.stream``."""

    def get_url(self, *, view_only: bool = False, ttl_seconds: int = 3600) -> StreamUrl:
        """A URL of a page showing the desktop live, to open or share until
        it expires (``ttl_seconds``, 1 to 86400)."""
        return self._do(self._calls.stream_url(view_only, ttl_seconds))


class Browser(_Base):
    """The desktop's Chromium: ``sandbox.desktop.browser``."""

    def start(self, url: Optional[str] = None, *, headless: bool = False) -> BrowserStatus:
        """Starts Chromium at ``url`` (default ``about:blank``), on the
        desktop's display unless ``headless``; a running one is left as is."""
        return self._do(self._calls.browser_start(url, headless))

    def stop(self) -> BrowserStatus:
        """Stops it."""
        return self._do(self._calls.browser_stop())

    def status(self) -> BrowserStatus:
        """Whether it runs."""
        return self._do(self._calls.browser_status())

    def navigate(self, url: str, *, wait_until: str = "load") -> BrowserPage:
        """Loads ``url`` in the first page; answers after ``load`` (or
        ``domcontentloaded``)."""
        return self._do(self._calls.navigate(url, wait_until))

    def text(self) -> BrowserPage:
        """The first page's URL, title and text."""
        return self._do(self._calls.text())

    def snapshot(self) -> BrowserSnapshot:
        """The page's accessibility tree, with a ref per element."""
        return self._do(self._calls.snapshot())

    def click(self, ref: str) -> None:
        """Clicks the element of :meth:`snapshot` with this ref."""
        self._do(self._calls.browser_click(ref))

    def fill(self, ref: str, text: str) -> None:
        """Types ``text`` into the element with this ref, replacing its value."""
        self._do(self._calls.fill(ref, text))

    def screenshot(self, *, format: str = "png") -> bytes:
        """The page's viewport as ``png`` or ``jpeg``."""
        return self._do(self._calls.browser_screenshot(format))

    def cdp_url(self) -> CdpEndpoint:
        """The DevTools endpoint through the server, for Playwright's
        ``chromium.connect_over_cdp(cdp.url, headers=cdp.headers)``."""
        config = self._transport.config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        return CdpEndpoint(url=config.ws_url(self._calls.path("browser/cdp")), headers=headers)


class Desktop(_Base):
    """The desktop of a sandbox (the ``desktop`` template): ``sandbox.desktop``."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        super().__init__(transport, sandbox_id)
        self.browser = Browser(transport, sandbox_id)
        """The desktop's Chromium."""
        self.stream = DesktopStream(transport, sandbox_id)
        """The live view."""

    def start(
        self,
        *,
        width: Optional[int] = None,
        height: Optional[int] = None,
        dpi: Optional[int] = None,
    ) -> DesktopStatus:
        """Starts the display and window manager (default 1280x800, 96 dpi)."""
        return self._do(self._calls.start(width, height, dpi))

    def stop(self) -> DesktopStatus:
        """Stops the display and what runs on it."""
        return self._do(self._calls.stop())

    def status(self) -> DesktopStatus:
        """Whether it runs, and its processes' health."""
        return self._do(self._calls.status())

    def screenshot(
        self,
        *,
        format: Optional[str] = None,
        quality: Optional[int] = None,
        scale: Optional[float] = None,
        cursor: Optional[bool] = None,
    ) -> bytes:
        """The screen as ``png`` (default) or ``jpeg``."""
        return self._do(self._calls.screenshot(None, format, quality, scale, cursor))

    def screenshot_region(
        self,
        x: int,
        y: int,
        width: int,
        height: int,
        *,
        format: Optional[str] = None,
        quality: Optional[int] = None,
        scale: Optional[float] = None,
        cursor: Optional[bool] = None,
    ) -> bytes:
        """A rectangle of the screen as ``png`` (default) or ``jpeg``."""
        region = (x, y, width, height)
        return self._do(self._calls.screenshot(region, format, quality, scale, cursor))

    def move_mouse(self, x: int, y: int) -> None:
        """Moves the pointer."""
        self._do(self._calls.move_mouse(x, y))

    def left_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Clicks the left button at ``x``, ``y`` (default: where the pointer is)."""
        self._do(self._calls.click("left", 1, x, y))

    def right_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Clicks the right button."""
        self._do(self._calls.click("right", 1, x, y))

    def middle_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Clicks the middle button."""
        self._do(self._calls.click("middle", 1, x, y))

    def double_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Double-clicks the left button."""
        self._do(self._calls.click("left", 2, x, y))

    def mouse_press(self, button: str = "left") -> None:
        """Holds a button down where the pointer is."""
        self._do(self._calls.mouse_button(True, button))

    def mouse_release(self, button: str = "left") -> None:
        """Releases a button where the pointer is."""
        self._do(self._calls.mouse_button(False, button))

    def drag(self, start: Tuple[int, int], end: Tuple[int, int]) -> None:
        """Presses the left button at ``start``, moves, releases at ``end``."""
        self._do(self._calls.drag(start, end))

    def scroll(self, direction: str = "down", amount: int = 1) -> None:
        """Turns the wheel ``amount`` steps ``up`` or ``down``."""
        self._do(self._calls.scroll(direction, amount))

    def get_cursor_position(self) -> Tuple[int, int]:
        """Where the pointer is, ``(x, y)``."""
        return self._do(self._calls.cursor_position())

    def get_screen_size(self) -> Tuple[int, int]:
        """The screen's ``(width, height)``."""
        return self._do(self._calls.screen_size())

    def write(self, text: str, *, delay_ms: Optional[int] = None) -> None:
        """Types text as key strokes."""
        self._do(self._calls.write(text, delay_ms))

    def press(self, key: Union[str, Sequence[str]]) -> None:
        """Presses a key (``Return``, ``ctrl+l``), or keys held together
        (``["ctrl", "l"]``)."""
        self._do(self._calls.press(key))

    def get_clipboard(self) -> str:
        """The clipboard's text."""
        return self._do(self._calls.get_clipboard())

    def set_clipboard(self, text: str) -> None:
        """Puts text on the clipboard."""
        self._do(self._calls.set_clipboard(text))

    def get_windows(self) -> List[Window]:
        """The top-level windows, in stacking order."""
        return (self._do(self._calls.windows())).items

    def list_windows(self) -> WindowList:
        """The top-level windows, with ``truncated`` when there were more
        than listed."""
        return self._do(self._calls.windows())

    def focus_window(self, window_id: int) -> None:
        """Gives a window the input focus."""
        self._do(self._calls.window(window_id, "focus"))

    def move_window(self, window_id: int, x: int, y: int) -> None:
        """Moves a window."""
        self._do(self._calls.window(window_id, "move", {"x": x, "y": y}))

    def resize_window(self, window_id: int, width: int, height: int) -> None:
        """Resizes a window."""
        self._do(self._calls.window(window_id, "resize", {"width": width, "height": height}))

    def close_window(self, window_id: int) -> None:
        """Closes a window."""
        self._do(self._calls.window(window_id, "close"))

    def open(self, target: str, *, user: Optional[str] = None) -> Launched:
        """Opens a URL or file with its default handler, as ``user`` (a
        sandbox user) when given."""
        return self._do(self._calls.open(target, user))

    def launch(self, app: str, args: Sequence[str] = (), *, user: Optional[str] = None) -> Launched:
        """Starts an application on the display, as ``user`` when given."""
        return self._do(self._calls.launch(app, args, user))

    def start_recording(
        self, *, framerate: Optional[int] = None, max_seconds: Optional[int] = None
    ) -> Recording:
        """Starts recording the screen (one recording at a time); it ends by
        itself, as ``done``, after ``max_seconds`` (default and at most 3600)."""
        return self._do(self._calls.start_recording(framerate, max_seconds))

    def stop_recording(self) -> Recording:
        """Stops the recording and finishes its MP4."""
        return self._do(self._calls.stop_recording())

    def list_recordings(self) -> List[Recording]:
        """The recordings kept, oldest first."""
        return self._do(self._calls.list_recordings())

    def download_recording(self, recording_id: str) -> bytes:
        """A recording's MP4."""
        return self._do(self._calls.recording("GET", recording_id))

    def delete_recording(self, recording_id: str) -> None:
        """Deletes a recording."""
        self._do(self._calls.recording("DELETE", recording_id))
