"""Pure helpers shared by the sync and async clients: request bodies, the
server-sent-events parser and output bookkeeping. Nothing here does I/O."""

from __future__ import annotations

import base64
import codecs
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import InvalidRequestError, ProtocolError
from .models import (
    ExecResult,
    ExitStatus,
    ProcessInfo,
    ProcessOutput,
    Resources,
    as_object,
    get_opt_int,
)

Command = Union[str, Sequence[str]]
"""A shell command line (run by ``/bin/sh -c``) or an argv list (exec'd directly)."""

Signal = Union[str, int]
"""A signal by name (``"SIGTERM"``, ``"TERM"``) or number."""

ResourcesLike = Union[Resources, Mapping[str, Any]]
"""Resources as a :class:`~warren.Resources` or a ``{cpus, memory_mb, pids}`` dict."""

Params = List[Tuple[str, str]]


def to_ms(seconds: Optional[float]) -> Optional[int]:
    """Seconds (the SDK's unit) to whole milliseconds (the API's)."""
    if seconds is None:
        return None
    if seconds < 0:
        raise InvalidRequestError("invalid_request", None, "a timeout cannot be negative")
    return max(1, round(seconds * 1000))


def command_body(
    cmd: Command,
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    stdin: Optional[str] = None,
    timeout: Optional[float] = None,
    user: Optional[str] = None,
) -> Dict[str, Any]:
    """The body of ``processes/run`` and ``processes``: ``cmd`` for a string,
    ``argv`` for a list."""
    body: Dict[str, Any] = {}
    if isinstance(cmd, str):
        body["cmd"] = cmd
    else:
        argv = list(cmd)
        if not argv or not all(isinstance(a, str) for a in argv):
            raise InvalidRequestError(
                "invalid_request", None, "argv must be a non-empty list of strings"
            )
        body["argv"] = argv
    if cwd is not None:
        body["cwd"] = cwd
    if user is not None:
        body["user"] = user
    if env is not None:
        body["env"] = dict(env)
    if stdin is not None:
        body["stdin"] = stdin
    timeout_ms = to_ms(timeout)
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    return body


def create_body(
    *,
    template: Optional[str],
    timeout: Optional[int],
    ttl: Optional[int],
    envs: Optional[Mapping[str, str]],
    metadata: Optional[Mapping[str, str]],
    labels: Optional[Mapping[str, str]],
    resources: Optional[ResourcesLike],
    egress: Optional[str],
    egress_allow: Optional[Sequence[str]],
    auto_checkpoint: Optional[bool],
    auto_checkpoint_keep: Optional[int] = None,
    auto_wake: Optional[bool] = None,
    from_checkpoint: Optional[str] = None,
) -> Dict[str, Any]:
    """The body of ``POST /v1/sandboxes``, without unset fields."""
    body: Dict[str, Any] = {}
    if template is not None:
        body["template"] = template
    if timeout is not None:
        body["timeout_secs"] = int(timeout)
    if ttl is not None:
        body["ttl_secs"] = int(ttl)
    if envs is not None:
        body["envs"] = dict(envs)
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if labels is not None:
        body["labels"] = dict(labels)
    if resources is not None:
        body["resources"] = (
            resources.to_json() if isinstance(resources, Resources) else dict(resources)
        )
    network = network_body(egress, egress_allow)
    if network is not None:
        body["network"] = network
    if auto_checkpoint is not None:
        body["auto_checkpoint"] = auto_checkpoint
    if auto_checkpoint_keep is not None:
        body["auto_checkpoint_keep"] = auto_checkpoint_keep
    if auto_wake is not None:
        body["auto_wake"] = auto_wake
    if from_checkpoint is not None:
        body["from_checkpoint"] = from_checkpoint
    return body


def network_body(
    egress: Optional[str], egress_allow: Optional[Sequence[str]]
) -> Optional[Dict[str, Any]]:
    """The ``network`` object of a create or update, or ``None`` for no change."""
    if egress is None and egress_allow is None:
        return None
    network: Dict[str, Any] = {}
    if egress is not None:
        network["egress"] = egress
    if egress_allow is not None:
        network["allow"] = list(egress_allow)
    return network


def list_params(
    *,
    state: Optional[str],
    labels: Optional[Mapping[str, str]],
    metadata: Optional[Mapping[str, str]],
    tenant: Optional[str],
    limit: Optional[int],
) -> Params:
    """Query parameters of ``GET /v1/sandboxes`` (``label=k=v`` repeated,
    ``metadata.k=v``)."""
    params: Params = []
    if state is not None:
        params.append(("state", state))
    for key, value in (labels or {}).items():
        params.append(("label", f"{key}={value}"))
    for key, value in (metadata or {}).items():
        params.append((f"metadata.{key}", value))
    if tenant is not None:
        params.append(("tenant", tenant))
    if limit is not None:
        params.append(("limit", str(limit)))
    return params


def stdin_body(data: Union[str, bytes], eof: bool = False) -> Dict[str, Any]:
    """The body of ``processes/{id}/stdin``: text as ``utf8``, bytes as ``base64``."""
    if isinstance(data, str):
        return {"data": data, "encoding": "utf8", "eof": eof}
    return {"data": base64.b64encode(data).decode("ascii"), "encoding": "base64", "eof": eof}


def range_header(offset: Optional[int], length: Optional[int]) -> Optional[Dict[str, str]]:
    """The ``Range`` header of a partial read, or ``None`` for the whole file."""
    if offset is None and length is None:
        return None
    start = offset or 0
    if start < 0 or (length is not None and length <= 0):
        raise InvalidRequestError("invalid_request", None, "offset must be >= 0 and length > 0")
    end = "" if length is None else str(start + length - 1)
    return {"Range": f"bytes={start}-{end}"}


def mode_param(mode: Optional[int]) -> Optional[str]:
    """Permission bits (``0o755``) as the octal string ``files?mode=`` takes."""
    return None if mode is None else format(mode, "o")


@dataclass
class SseEvent:
    """One server-sent event."""

    event: str
    data: str
    id: Optional[str]

    def json(self) -> Mapping[str, Any]:
        """The data parsed as a JSON object."""
        try:
            value = json.loads(self.data)
        except ValueError as err:
            raise ProtocolError(
                "invalid_response", None, f"bad JSON in SSE {self.event!r} event: {err}"
            ) from err
        return as_object(value, f"SSE {self.event!r} data")


class SseParser:
    """Turns the lines of a ``text/event-stream`` body into events
    (WHATWG rules: ``event``, ``data`` (joined by newlines), ``id``;
    ``:`` lines are keep-alive comments)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: List[str] = []
        self._id: Optional[str] = None

    def feed(self, line: str) -> Optional[SseEvent]:
        """Consumes one line (without its line break); returns an event when
        the line ends one."""
        if line == "":
            if not self._data and not self._event:
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


def exit_status(obj: Mapping[str, Any]) -> ExitStatus:
    """An ``exit`` event or message as an :class:`ExitStatus`."""
    return ExitStatus(exit_code=get_opt_int(obj, "exit_code"), signal=get_opt_int(obj, "signal"))


class OutputCollector:
    """Collects a process's output per stream, decoding UTF-8 incrementally so
    a character split across two chunks is delivered whole to callbacks."""

    def __init__(self) -> None:
        self.cursor = 0
        self.dropped_bytes = 0
        self._bytes: Dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._decoders = {
            name: codecs.getincrementaldecoder("utf-8")(errors="replace")
            for name in ("stdout", "stderr")
        }

    def add(self, chunk: ProcessOutput) -> str:
        """Records a chunk; returns its text (possibly empty when it ends
        inside a multi-byte character)."""
        if chunk.cursor + len(chunk.data) <= self.cursor:
            return ""  # already seen (a replay after a reconnect)
        data = chunk.data[max(0, self.cursor - chunk.cursor) :]
        self.cursor = chunk.cursor + len(chunk.data)
        stream = chunk.stream if chunk.stream in self._bytes else "stdout"
        self._bytes[stream] += data
        return self._decoders[stream].decode(data)

    def dropped(self, obj: Mapping[str, Any]) -> None:
        """Records a ``dropped`` event (output lost from the ring buffer)."""
        self.dropped_bytes += get_opt_int(obj, "bytes") or 0
        self.cursor = max(self.cursor, get_opt_int(obj, "cursor") or 0)

    def text(self, stream: str) -> str:
        """Everything collected on a stream, decoded."""
        return bytes(self._bytes[stream]).decode("utf-8", errors="replace")

    def result(self, status: ExitStatus, info: Optional[ProcessInfo]) -> ExecResult:
        """The collected output and the exit status as an :class:`ExecResult`."""
        return ExecResult(
            stdout=self.text("stdout"),
            stderr=self.text("stderr"),
            exit_code=status.exit_code,
            signal=status.signal,
            timed_out=False,
            duration_ms=duration_ms(info.started_at, info.exited_at) if info else 0,
        )


def duration_ms(start: datetime, end: Optional[datetime]) -> int:
    """Whole milliseconds from ``start`` to ``end`` (0 when not ended)."""
    if end is None:
        return 0
    return max(0, int((end - start).total_seconds() * 1000))


@dataclass
class FollowItem:
    """One step of following a process: new output (with its decoded text) or
    its exit."""

    output: Optional[ProcessOutput] = None
    text: str = ""
    exit: Optional[ExitStatus] = None


def follow_item(event: SseEvent, collector: OutputCollector) -> Optional[FollowItem]:
    """Applies one ``logs?follow=true`` event to ``collector``; returns what
    the caller should see (``None`` for bookkeeping-only events and replays)."""
    if event.event == "output":
        chunk = ProcessOutput.from_json(event.json())
        skip = max(0, collector.cursor - chunk.cursor)
        if skip >= len(chunk.data):
            return None
        text = collector.add(chunk)
        fresh = ProcessOutput(chunk.stream, chunk.data[skip:], chunk.cursor + skip)
        return FollowItem(output=fresh, text=text)
    if event.event == "dropped":
        collector.dropped(event.json())
        return None
    if event.event == "exit":
        return FollowItem(exit=exit_status(event.json()))
    return None


def follow_params(collector: OutputCollector) -> Params:
    """Query of a (re)connection to ``logs``: resume where the collector is."""
    return [("follow", "true"), ("cursor", str(collector.cursor))]


def logs_into(collector: OutputCollector, page: Mapping[str, Any]) -> bool:
    """Adds a ``logs`` JSON page to ``collector``; whether it held new output."""
    before = collector.cursor
    chunks = page.get("chunks")
    if not isinstance(chunks, list):
        raise ProtocolError("invalid_response", None, "logs response without chunks")
    for chunk in chunks:
        collector.add(ProcessOutput.from_json(as_object(chunk, "output chunk")))
    collector.dropped_bytes += get_opt_int(page, "dropped_bytes") or 0
    next_cursor = get_opt_int(page, "next_cursor")
    if next_cursor is not None:
        collector.cursor = max(collector.cursor, next_cursor)
    return collector.cursor > before


RECONNECTS = 5
"""How often a broken output stream is reopened (from its cursor) before the
error is raised."""
