"""Where the server is and how to authenticate: explicit arguments win, then
``WARREN_URL`` and ``WARREN_API_KEY`` (the same variables every Warren
client reads)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional
from urllib.parse import quote

from ._version import __version__

DEFAULT_API_URL = "http://127.0.0.1:7070"
"""Used when neither ``api_url`` nor ``WARREN_URL`` is given."""

DEFAULT_REQUEST_TIMEOUT = 60.0
"""Seconds an ordinary request may take."""

CREATE_TIMEOUT = 900.0
"""Seconds a sandbox creation may take: the first one on a fresh server
builds the base template, which takes minutes."""


@dataclass(frozen=True)
class ConnectionConfig:
    """Resolved connection settings, shared by a sandbox and its helpers."""

    api_url: str
    api_key: Optional[str]
    request_timeout: float

    @classmethod
    def resolve(
        cls,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> ConnectionConfig:
        """Settings from the arguments, else the environment, else defaults."""
        url = api_url or os.environ.get("WARREN_URL") or DEFAULT_API_URL
        key = api_key if api_key is not None else os.environ.get("WARREN_API_KEY")
        return cls(
            api_url=url.rstrip("/"),
            api_key=key or None,
            request_timeout=request_timeout
            if request_timeout is not None
            else DEFAULT_REQUEST_TIMEOUT,
        )

    def headers(self) -> Dict[str, str]:
        """Headers sent with every request."""
        headers = {"User-Agent": f"warren-sdk-python/{__version__}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def ws_url(self, path: str) -> str:
        """The ``ws://``/``wss://`` URL of an API path."""
        if self.api_url.startswith("https://"):
            return "wss://" + self.api_url[len("https://") :] + path
        if self.api_url.startswith("http://"):
            return "ws://" + self.api_url[len("http://") :] + path
        return self.api_url + path


def seg(value: str) -> str:
    """``value`` quoted as one URL path segment."""
    return quote(value, safe="")


def sandbox_path(sandbox_id: str, rest: str = "") -> str:
    """``/v1/sandboxes/{id}`` followed by ``rest`` (which starts with ``/``)."""
    return f"/v1/sandboxes/{seg(sandbox_id)}{rest}"
