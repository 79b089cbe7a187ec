"""What ``sandbox.desktop`` and ``sandbox.desktop.browser`` return: plain,
immutable dataclasses parsed from the agent's desktop API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional

from ._json import (
    JsonObject,
    as_object,
    get_bool,
    get_int,
    get_list,
    get_opt_int,
    get_opt_str,
    get_str,
    get_time,
)

__all__ = [
    "DesktopProcess",
    "DesktopStatus",
    "Window",
    "Launched",
    "Recording",
    "StreamUrl",
    "BrowserStatus",
    "BrowserPage",
    "BrowserElement",
    "BrowserSnapshot",
    "CdpEndpoint",
]


@dataclass(frozen=True)
class DesktopProcess:
    """One process of the desktop (the X server, the window manager)."""

    name: str
    process_id: str
    pid: int
    running: bool


@dataclass(frozen=True)
class DesktopStatus:
    """Whether the desktop runs, its size and its processes' health."""

    running: bool
    display: Optional[str] = None
    """The X display (``:0``), while running."""
    width: Optional[int] = None
    height: Optional[int] = None
    dpi: Optional[int] = None
    processes: List[DesktopProcess] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: JsonObject) -> DesktopStatus:
        """Parses a desktop status."""
        procs = [as_object(p, "process") for p in get_list(obj, "processes")]
        return cls(
            running=get_bool(obj, "running"),
            display=get_opt_str(obj, "display"),
            width=get_opt_int(obj, "width"),
            height=get_opt_int(obj, "height"),
            dpi=get_opt_int(obj, "dpi"),
            processes=[
                DesktopProcess(
                    name=get_str(p, "name"),
                    process_id=get_str(p, "process_id"),
                    pid=get_int(p, "pid"),
                    running=get_bool(p, "running"),
                )
                for p in procs
            ],
        )


@dataclass(frozen=True)
class Window:
    """One top-level window."""

    window_id: int
    """The X window id."""
    title: str
    x: int
    y: int
    width: int
    height: int
    focused: bool

    @classmethod
    def from_json(cls, obj: JsonObject) -> Window:
        """Parses a window."""
        return cls(
            window_id=get_int(obj, "id"),
            title=get_str(obj, "title"),
            x=get_int(obj, "x"),
            y=get_int(obj, "y"),
            width=get_int(obj, "width"),
            height=get_int(obj, "height"),
            focused=get_bool(obj, "focused"),
        )


@dataclass(frozen=True)
class WindowList:
    """The top-level windows, and whether the list was cut short."""

    items: List[Window]
    truncated: bool
    """More windows than the agent lists (1000) are open."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> WindowList:
        """Parses a window list."""
        return cls(
            items=[Window.from_json(as_object(w, "window")) for w in get_list(obj, "items")],
            truncated=get_bool(obj, "truncated", False),
        )


@dataclass(frozen=True)
class Launched:
    """The process ``launch`` or ``open`` started."""

    process_id: str
    pid: int

    @classmethod
    def from_json(cls, obj: JsonObject) -> Launched:
        """Parses a launched process."""
        return cls(process_id=get_str(obj, "process_id"), pid=get_int(obj, "pid"))


@dataclass(frozen=True)
class Recording:
    """A recording of the screen (MP4)."""

    recording_id: str
    """``rec_…``."""
    status: str
    """``recording`` or ``done``."""
    size_bytes: int
    modified_at: datetime

    @classmethod
    def from_json(cls, obj: JsonObject) -> Recording:
        """Parses a recording."""
        return cls(
            recording_id=get_str(obj, "id"),
            status=get_str(obj, "status"),
            size_bytes=get_int(obj, "size_bytes"),
            modified_at=get_time(obj, "modified_at"),
        )


@dataclass(frozen=True)
class StreamUrl:
    """A shareable URL of the desktop's live view."""

    url: str
    """The page showing the desktop; its token is in the fragment."""
    token: str = field(repr=False)
    view_only: bool
    expires_at: datetime

    @classmethod
    def from_json(cls, obj: JsonObject) -> StreamUrl:
        """Parses a stream URL."""
        return cls(
            url=get_str(obj, "url"),
            token=get_str(obj, "token"),
            view_only=get_bool(obj, "view_only"),
            expires_at=get_time(obj, "expires_at"),
        )


@dataclass(frozen=True)
class BrowserStatus:
    """Whether the desktop's browser runs."""

    running: bool
    headless: Optional[bool] = None
    process_id: Optional[str] = None
    devtools_port: Optional[int] = None

    @classmethod
    def from_json(cls, obj: JsonObject) -> BrowserStatus:
        """Parses a browser status."""
        headless = obj.get("headless")
        return cls(
            running=get_bool(obj, "running"),
            headless=headless if isinstance(headless, bool) else None,
            process_id=get_opt_str(obj, "process_id"),
            devtools_port=get_opt_int(obj, "devtools_port"),
        )


@dataclass(frozen=True)
class BrowserPage:
    """The page the browser shows (``text`` from ``browser.text()`` only)."""

    url: str
    title: str
    text: Optional[str] = None
    truncated: bool = False

    @classmethod
    def from_json(cls, obj: JsonObject) -> BrowserPage:
        """Parses a page."""
        return cls(
            url=get_str(obj, "url"),
            title=get_str(obj, "title"),
            text=get_opt_str(obj, "text"),
            truncated=get_bool(obj, "truncated", False),
        )


@dataclass(frozen=True)
class BrowserElement:
    """One element of the page's accessibility tree."""

    ref: str
    """Its ref for ``browser.click`` and ``browser.fill``."""
    role: str
    name: str
    value: Optional[str] = None


@dataclass(frozen=True)
class BrowserSnapshot:
    """The page's accessibility tree, flattened in document order."""

    url: str
    elements: List[BrowserElement]
    truncated: bool

    @classmethod
    def from_json(cls, obj: JsonObject) -> BrowserSnapshot:
        """Parses a snapshot."""
        items = [as_object(e, "element") for e in get_list(obj, "elements")]
        return cls(
            url=get_str(obj, "url"),
            elements=[
                BrowserElement(
                    ref=get_str(e, "ref"),
                    role=get_str(e, "role"),
                    name=get_str(e, "name"),
                    value=get_opt_str(e, "value"),
                )
                for e in items
            ],
            truncated=get_bool(obj, "truncated", False),
        )


@dataclass(frozen=True)
class CdpEndpoint:
    """What a CDP client needs: Playwright's
    ``chromium.connect_over_cdp(cdp.url, headers=cdp.headers)``."""

    url: str
    """``ws://`` or ``wss://`` URL of the DevTools endpoint through the server."""
    headers: Dict[str, str] = field(repr=False)
    """The headers carrying the API key."""
