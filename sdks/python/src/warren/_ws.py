"""Shared pieces of the terminal WebSocket (``/processes/{id}/ws``): the
default shell, frame decoding and handshake error mapping."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Union

from ._config import ConnectionConfig, sandbox_path, seg
from ._wire import Command, exit_status
from .errors import (
    NetworkError,
    ProtocolError,
    WarrenError,
    WarrenTimeoutError,
    error_for,
    error_from_response,
)
from .models import ExitStatus

DEFAULT_SHELL: List[str] = ["/bin/bash", "-i", "-l"]
"""What ``pty.create`` runs when no ``cmd`` is given."""

OPEN_TIMEOUT = 30.0
"""Seconds the WebSocket handshake may take."""

STREAM_STDOUT = 1
"""First byte of an output frame from stdout (2 is stderr)."""


def shell_body(
    cmd: Optional[Command],
    cols: int,
    rows: int,
    cwd: Optional[str],
    env: Optional[Mapping[str, str]],
    user: Optional[str] = None,
) -> Dict[str, Any]:
    """The ``POST /processes`` body of a terminal."""
    body: Dict[str, Any] = {"tty": True, "cols": cols, "rows": rows}
    if cmd is None:
        body["argv"] = list(DEFAULT_SHELL)
    elif isinstance(cmd, str):
        body["cmd"] = cmd
    else:
        body["argv"] = list(cmd)
    if cwd is not None:
        body["cwd"] = cwd
    if user is not None:
        body["user"] = user
    if env is not None:
        body["env"] = dict(env)
    return body


def attach_url(config: ConnectionConfig, sandbox_id: str, process_id: str) -> str:
    """The attach WebSocket URL of a process, replaying from the first byte kept."""
    return config.ws_url(sandbox_path(sandbox_id, f"/processes/{seg(process_id)}/ws")) + "?cursor=0"


def auth_headers(config: ConnectionConfig) -> Dict[str, str]:
    """Handshake headers (the key as a bearer token)."""
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def resize_message(cols: int, rows: int) -> str:
    """The control frame that resizes the terminal."""
    return json.dumps({"type": "resize", "cols": cols, "rows": rows})


def data_bytes(data: Union[str, bytes]) -> bytes:
    """Keystrokes as the bytes of a binary stdin frame."""
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


@dataclass
class Frame:
    """A decoded server frame: output bytes, or a control message."""

    data: Optional[bytes] = None
    stream: int = STREAM_STDOUT
    exit: Optional[ExitStatus] = None
    dropped: int = 0
    error: Optional[WarrenError] = None


def decode_frame(message: Union[str, bytes]) -> Frame:
    """Decodes one frame from the agent."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        raw = bytes(message)
        if not raw:
            return Frame(data=b"")
        return Frame(data=raw[1:], stream=raw[0])
    try:
        obj = json.loads(message)
    except ValueError as err:
        raise ProtocolError("invalid_response", None, f"bad control frame {message!r}") from err
    if not isinstance(obj, dict):
        raise ProtocolError("invalid_response", None, f"bad control frame {message!r}")
    kind = obj.get("type")
    if kind == "exit":
        return Frame(exit=exit_status(obj))
    if kind == "dropped":
        dropped = obj.get("bytes")
        return Frame(dropped=dropped if isinstance(dropped, int) else 0)
    if kind == "error":
        code, detail = obj.get("code"), obj.get("detail")
        return Frame(
            error=error_for(
                code if isinstance(code, str) else "internal",
                None,
                detail if isinstance(detail, str) else "terminal control message failed",
            )
        )
    return Frame()


def closed_error(process_id: str) -> WarrenError:
    """The error for keystrokes or a resize sent after the terminal closed."""
    return error_for(
        "process_not_running",
        None,
        f"the terminal of {process_id} is closed (exited or disconnected)",
    )


def handshake_error(err: BaseException, url: str) -> WarrenError:
    """Maps a failed WebSocket connection to an SDK error (a problem answer
    to the handshake keeps its code)."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        body = getattr(response, "body", b"") or b""
        return error_from_response(status, body if isinstance(body, bytes) else b"")
    if isinstance(err, (TimeoutError, asyncio.TimeoutError)):
        return WarrenTimeoutError("timeout", None, f"WebSocket to {url}: handshake timed out")
    return NetworkError("network_error", None, f"WebSocket to {url}: {type(err).__name__}: {err}")
