"""``sandbox.desktop`` (async): the sandbox's display driven by mouse,
keyboard, windows, applications, screenshots and recordings, in the shape
of E2B Desktop where it fits; ``desktop.browser`` is its Chromium and
``desktop.stream`` its live view."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, TypeVar, Union

from .._desktop import Call, DesktopCalls
from .._http import AsyncTransport
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
    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._calls = DesktopCalls(sandbox_id)

    async def _do(self, call: Call[T]) -> T:
        response = await self._transport.request(
            call.method, call.path, json_body=call.json_body, params=call.params
        )
        return call.parse(response)


class AsyncDesktopStream(_Base):
    """The desktop's live view: ``sandbox.desktop.stream``."""

    async def get_url(self, *, view_only: bool = False, ttl_seconds: int = 3600) -> StreamUrl:
        """A URL of a page showing the desktop live, to open or share until
        it expires (``ttl_seconds``, 1 to 86400)."""
        return await self._do(self._calls.stream_url(view_only, ttl_seconds))


class AsyncBrowser(_Base):
    """The desktop's Chromium: ``sandbox.desktop.browser``."""

    async def start(self, url: Optional[str] = None, *, headless: bool = False) -> BrowserStatus:
        """Starts Chromium at ``url`` (default ``about:blank``), on the
        desktop's display unless ``headless``; a running one is left as is."""
        return await self._do(self._calls.browser_start(url, headless))

    async def stop(self) -> BrowserStatus:
        """Stops it."""
        return await self._do(self._calls.browser_stop())

    async def status(self) -> BrowserStatus:
        """Whether it runs."""
        return await self._do(self._calls.browser_status())

    async def navigate(self, url: str, *, wait_until: str = "load") -> BrowserPage:
        """Loads ``url`` in the first page; answers after ``load`` (or
        ``domcontentloaded``)."""
        return await self._do(self._calls.navigate(url, wait_until))

    async def text(self) -> BrowserPage:
        """The first page's URL, title and text."""
        return await self._do(self._calls.text())

    async def snapshot(self) -> BrowserSnapshot:
        """The page's accessibility tree, with a ref per element."""
        return await self._do(self._calls.snapshot())

    async def click(self, ref: str) -> None:
        """Clicks the element of :meth:`snapshot` with this ref."""
        await self._do(self._calls.browser_click(ref))

    async def fill(self, ref: str, text: str) -> None:
        """Types ``text`` into the element with this ref, replacing its value."""
        await self._do(self._calls.fill(ref, text))

    async def screenshot(self, *, format: str = "png") -> bytes:
        """The page's viewport as ``png`` or ``jpeg``."""
        return await self._do(self._calls.browser_screenshot(format))

    def cdp_url(self) -> CdpEndpoint:
        """The DevTools endpoint through the server, for Playwright's
        ``chromium.connect_over_cdp(cdp.url, headers=cdp.headers)``."""
        config = self._transport.config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        return CdpEndpoint(url=config.ws_url(self._calls.path("browser/cdp")), headers=headers)


class AsyncDesktop(_Base):
    """The desktop of a sandbox (the ``desktop`` template): ``sandbox.desktop``."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        super().__init__(transport, sandbox_id)
        self.browser = AsyncBrowser(transport, sandbox_id)
        """The desktop's Chromium."""
        self.stream = AsyncDesktopStream(transport, sandbox_id)
        """The live view."""

    async def start(
        self,
        *,
        width: Optional[int] = None,
        height: Optional[int] = None,
        dpi: Optional[int] = None,
    ) -> DesktopStatus:
        """Starts the display and window manager (default 1280x800, 96 dpi)."""
        return await self._do(self._calls.start(width, height, dpi))

    async def stop(self) -> DesktopStatus:
        """Stops the display and what runs on it."""
        return await self._do(self._calls.stop())

    async def status(self) -> DesktopStatus:
        """Whether it runs, and its processes' health."""
        return await self._do(self._calls.status())

    async def screenshot(
        self,
        *,
        format: Optional[str] = None,
        quality: Optional[int] = None,
        scale: Optional[float] = None,
        cursor: Optional[bool] = None,
    ) -> bytes:
        """The screen as ``png`` (default) or ``jpeg``."""
        return await self._do(self._calls.screenshot(None, format, quality, scale, cursor))

    async def screenshot_region(
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
        return await self._do(self._calls.screenshot(region, format, quality, scale, cursor))

    async def move_mouse(self, x: int, y: int) -> None:
        """Moves the pointer."""
        await self._do(self._calls.move_mouse(x, y))

    async def left_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Clicks the left button at ``x``, ``y`` (default: where the pointer is)."""
        await self._do(self._calls.click("left", 1, x, y))

    async def right_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Clicks the right button."""
        await self._do(self._calls.click("right", 1, x, y))

    async def middle_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Clicks the middle button."""
        await self._do(self._calls.click("middle", 1, x, y))

    async def double_click(self, x: Optional[int] = None, y: Optional[int] = None) -> None:
        """Double-clicks the left button."""
        await self._do(self._calls.click("left", 2, x, y))

    async def mouse_press(self, button: str = "left") -> None:
        """Holds a button down where the pointer is."""
        await self._do(self._calls.mouse_button(True, button))

    async def mouse_release(self, button: str = "left") -> None:
        """Releases a button where the pointer is."""
        await self._do(self._calls.mouse_button(False, button))

    async def drag(self, start: Tuple[int, int], end: Tuple[int, int]) -> None:
        """Presses the left button at ``start``, moves, releases at ``end``."""
        await self._do(self._calls.drag(start, end))

    async def scroll(self, direction: str = "down", amount: int = 1) -> None:
        """Turns the wheel ``amount`` steps ``up`` or ``down``."""
        await self._do(self._calls.scroll(direction, amount))

    async def get_cursor_position(self) -> Tuple[int, int]:
        """Where the pointer is, ``(x, y)``."""
        return await self._do(self._calls.cursor_position())

    async def get_screen_size(self) -> Tuple[int, int]:
        """The screen's ``(width, height)``."""
        return await self._do(self._calls.screen_size())

    async def write(self, text: str, *, delay_ms: Optional[int] = None) -> None:
        """Types text as key strokes."""
        await self._do(self._calls.write(text, delay_ms))

    async def press(self, key: Union[str, Sequence[str]]) -> None:
        """Presses a key (``Return``, ``ctrl+l``), or keys held together
        (``["ctrl", "l"]``)."""
        await self._do(self._calls.press(key))

    async def get_clipboard(self) -> str:
        """The clipboard's text."""
        return await self._do(self._calls.get_clipboard())

    async def set_clipboard(self, text: str) -> None:
        """Puts text on the clipboard."""
        await self._do(self._calls.set_clipboard(text))

    async def get_windows(self) -> List[Window]:
        """The top-level windows, in stacking order."""
        return (await self._do(self._calls.windows())).items

    async def list_windows(self) -> WindowList:
        """The top-level windows, with ``truncated`` when there were more
        than listed."""
        return await self._do(self._calls.windows())

    async def focus_window(self, window_id: int) -> None:
        """Gives a window the input focus."""
        await self._do(self._calls.window(window_id, "focus"))

    async def move_window(self, window_id: int, x: int, y: int) -> None:
        """Moves a window."""
        await self._do(self._calls.window(window_id, "move", {"x": x, "y": y}))

    async def resize_window(self, window_id: int, width: int, height: int) -> None:
        """Resizes a window."""
        await self._do(self._calls.window(window_id, "resize", {"width": width, "height": height}))

    async def close_window(self, window_id: int) -> None:
        """Closes a window."""
        await self._do(self._calls.window(window_id, "close"))

    async def open(self, target: str, *, user: Optional[str] = None) -> Launched:
        """Opens a URL or file with its default handler, as ``user`` (a
        sandbox user) when given."""
        return await self._do(self._calls.open(target, user))

    async def launch(
        self, app: str, args: Sequence[str] = (), *, user: Optional[str] = None
    ) -> Launched:
        """Starts an application on the display, as ``user`` when given."""
        return await self._do(self._calls.launch(app, args, user))

    async def start_recording(
        self, *, framerate: Optional[int] = None, max_seconds: Optional[int] = None
    ) -> Recording:
        """Starts recording the screen (one recording at a time); it ends by
        itself, as ``done``, after ``max_seconds`` (default and at most 3600)."""
        return await self._do(self._calls.start_recording(framerate, max_seconds))

    async def stop_recording(self) -> Recording:
        """Stops the recording and finishes its MP4."""
        return await self._do(self._calls.stop_recording())

    async def list_recordings(self) -> List[Recording]:
        """The recordings kept, oldest first."""
        return await self._do(self._calls.list_recordings())

    async def download_recording(self, recording_id: str) -> bytes:
        """A recording's MP4."""
        return await self._do(self._calls.recording("GET", recording_id))

    async def delete_recording(self, recording_id: str) -> None:
        """Deletes a recording."""
        await self._do(self._calls.recording("DELETE", recording_id))
