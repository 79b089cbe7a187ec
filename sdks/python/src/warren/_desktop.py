"""The requests of ``sandbox.desktop`` and ``sandbox.desktop.browser``,
shared by the sync and async clients: each method builds a :class:`Call`
(what to send, how to read the answer) that the client then sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar, Union

import httpx

from ._config import sandbox_path, seg
from ._http import Query, parse_json
from ._json import as_object, get_int, get_list, get_str
from .desktop_models import (
    BrowserPage,
    BrowserSnapshot,
    BrowserStatus,
    DesktopStatus,
    Launched,
    Recording,
    StreamUrl,
    WindowList,
)

T = TypeVar("T")

MouseButton = str
"""``left``, ``right`` or ``middle``."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the parser of its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json_body: Any = None
    params: Query = None


def _none(_: httpx.Response) -> None:
    return None


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _obj(what: str) -> Callable[[httpx.Response], Dict[str, Any]]:
    return lambda response: dict(as_object(parse_json(response), what))


def _query(**values: Optional[Union[str, int, float, bool]]) -> Query:
    pairs: List[Tuple[str, str]] = []
    for key, value in values.items():
        if value is None:
            continue
        pairs.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return pairs or None


class DesktopCalls:
    """The requests of one sandbox's desktop."""

    def __init__(self, sandbox_id: str) -> None:
        self._sandbox_id = sandbox_id

    def path(self, rest: str) -> str:
        """``/v1/sandboxes/{id}/desktop/{rest}``."""
        return sandbox_path(self._sandbox_id, f"/desktop/{rest}")

    def _post(self, rest: str, body: Dict[str, Any]) -> Call[None]:
        clean = {k: v for k, v in body.items() if v is not None}
        return Call("POST", self.path(rest), _none, json_body=clean)

    def _status(self, method: str, rest: str, body: Any = None) -> Call[DesktopStatus]:
        return Call(
            method,
            self.path(rest),
            lambda r: DesktopStatus.from_json(_obj("desktop status")(r)),
            json_body=body,
        )

    def start(
        self, width: Optional[int], height: Optional[int], dpi: Optional[int]
    ) -> Call[DesktopStatus]:
        body = {
            k: v for k, v in (("width", width), ("height", height), ("dpi", dpi)) if v is not None
        }
        return self._status("POST", "start", body)

    def stop(self) -> Call[DesktopStatus]:
        return self._status("POST", "stop")

    def status(self) -> Call[DesktopStatus]:
        return self._status("GET", "status")

    def screenshot(
        self,
        region: Optional[Tuple[int, int, int, int]],
        format: Optional[str],
        quality: Optional[int],
        scale: Optional[float],
        cursor: Optional[bool],
    ) -> Call[bytes]:
        params = _query(format=format, quality=quality, scale=scale, cursor=cursor) or []
        if region is None:
            return Call("GET", self.path("screenshot"), _bytes, params=params or None)
        x, y, width, height = region
        params += _query(x=x, y=y, width=width, height=height) or []
        return Call("GET", self.path("screenshot/region"), _bytes, params=params)

    def move_mouse(self, x: int, y: int) -> Call[None]:
        return self._post("mouse/move", {"x": x, "y": y})

    def click(
        self, button: MouseButton, count: int, x: Optional[int], y: Optional[int]
    ) -> Call[None]:
        return self._post("mouse/click", {"x": x, "y": y, "button": button, "count": count})

    def mouse_button(self, down: bool, button: MouseButton) -> Call[None]:
        return self._post("mouse/down" if down else "mouse/up", {"button": button})

    def drag(self, start: Tuple[int, int], end: Tuple[int, int]) -> Call[None]:
        body = {"start_x": start[0], "start_y": start[1], "end_x": end[0], "end_y": end[1]}
        return self._post("mouse/drag", body)

    def scroll(self, direction: str, amount: int) -> Call[None]:
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
        return self._post("mouse/scroll", {"dx": 0, "dy": -amount if direction == "up" else amount})

    def cursor_position(self) -> Call[Tuple[int, int]]:
        def parse(r: httpx.Response) -> Tuple[int, int]:
            obj = _obj("position")(r)
            return get_int(obj, "x"), get_int(obj, "y")

        return Call("GET", self.path("mouse/position"), parse)

    def screen_size(self) -> Call[Tuple[int, int]]:
        def parse(r: httpx.Response) -> Tuple[int, int]:
            obj = _obj("display info")(r)
            return get_int(obj, "width"), get_int(obj, "height")

        return Call("GET", self.path("display/info"), parse)

    def write(self, text: str, delay_ms: Optional[int]) -> Call[None]:
        return self._post("keyboard/type", {"text": text, "delay_ms": delay_ms})

    def press(self, key: Union[str, Sequence[str]]) -> Call[None]:
        return self._post("keyboard/press", {"key": key if isinstance(key, str) else "+".join(key)})

    def get_clipboard(self) -> Call[str]:
        return Call("GET", self.path("clipboard"), lambda r: get_str(_obj("clipboard")(r), "text"))

    def set_clipboard(self, text: str) -> Call[None]:
        return Call("PUT", self.path("clipboard"), _none, json_body={"text": text})

    def windows(self) -> Call[WindowList]:
        return Call("GET", self.path("windows"), lambda r: WindowList.from_json(_obj("windows")(r)))

    def window(
        self, window_id: int, action: str, body: Optional[Dict[str, Any]] = None
    ) -> Call[None]:
        return self._post(f"windows/{int(window_id)}/{action}", body or {})

    def _launched(self, rest: str, body: Dict[str, Any]) -> Call[Launched]:
        return Call(
            "POST",
            self.path(rest),
            lambda r: Launched.from_json(_obj("process")(r)),
            json_body=body,
        )

    def open(self, target: str, user: Optional[str]) -> Call[Launched]:
        body: Dict[str, Any] = {"target": target}
        if user is not None:
            body["user"] = user
        return self._launched("open", body)

    def launch(self, app: str, args: Sequence[str], user: Optional[str]) -> Call[Launched]:
        body: Dict[str, Any] = {"app": app, "args": list(args)}
        if user is not None:
            body["user"] = user
        return self._launched("launch", body)

    def _recording(self, rest: str, body: Any = None) -> Call[Recording]:
        return Call(
            "POST",
            self.path(rest),
            lambda r: Recording.from_json(_obj("recording")(r)),
            json_body=body,
        )

    def start_recording(
        self, framerate: Optional[int], max_seconds: Optional[int]
    ) -> Call[Recording]:
        body = {"framerate": framerate, "max_seconds": max_seconds}
        return self._recording("recording/start", {k: v for k, v in body.items() if v is not None})

    def stop_recording(self) -> Call[Recording]:
        return self._recording("recording/stop")

    def list_recordings(self) -> Call[List[Recording]]:
        def parse(r: httpx.Response) -> List[Recording]:
            items = get_list(_obj("recordings")(r), "items")
            return [Recording.from_json(as_object(i, "recording")) for i in items]

        return Call("GET", self.path("recordings"), parse)

    def recording(self, method: str, recording_id: str) -> Call[bytes]:
        return Call(method, self.path(f"recordings/{seg(recording_id)}"), _bytes)

    def stream_url(self, view_only: bool, ttl_seconds: int) -> Call[StreamUrl]:
        body = {"view_only": view_only, "ttl_seconds": ttl_seconds}
        return Call(
            "POST",
            self.path("stream/url"),
            lambda r: StreamUrl.from_json(_obj("stream url")(r)),
            json_body=body,
        )

    # The browser.

    def _browser_status(self, method: str, rest: str, body: Any = None) -> Call[BrowserStatus]:
        return Call(
            method,
            self.path(f"browser/{rest}"),
            lambda r: BrowserStatus.from_json(_obj("browser status")(r)),
            json_body=body,
        )

    def browser_start(self, url: Optional[str], headless: bool) -> Call[BrowserStatus]:
        body: Dict[str, Any] = {"headless": headless}
        if url is not None:
            body["url"] = url
        return self._browser_status("POST", "start", body)

    def browser_stop(self) -> Call[BrowserStatus]:
        return self._browser_status("POST", "stop", {})

    def browser_status(self) -> Call[BrowserStatus]:
        return self._browser_status("GET", "status")

    def _page(self, method: str, rest: str, body: Any = None) -> Call[BrowserPage]:
        return Call(
            method,
            self.path(f"browser/{rest}"),
            lambda r: BrowserPage.from_json(_obj("page")(r)),
            json_body=body,
        )

    def navigate(self, url: str, wait_until: str) -> Call[BrowserPage]:
        return self._page("POST", "navigate", {"url": url, "wait_until": wait_until})

    def text(self) -> Call[BrowserPage]:
        return self._page("GET", "text")

    def snapshot(self) -> Call[BrowserSnapshot]:
        return Call(
            "GET",
            self.path("browser/snapshot"),
            lambda r: BrowserSnapshot.from_json(_obj("snapshot")(r)),
        )

    def browser_click(self, ref: str) -> Call[None]:
        return self._post("browser/click", {"ref": ref})

    def fill(self, ref: str, text: str) -> Call[None]:
        return self._post("browser/fill", {"ref": ref, "text": text})

    def browser_screenshot(self, format: str) -> Call[bytes]:
        return Call("GET", self.path("browser/screenshot"), _bytes, params=_query(format=format))
