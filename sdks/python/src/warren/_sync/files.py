"""``sandbox.files``: the sandbox's file system (sync)."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import IO, Callable, Iterator, List, Optional, Union

from .. import _archive
from .._config import sandbox_path
from .._http import SseStream, SyncTransport
from .._wire import SseEvent, mode_param, range_header
from ..errors import ProtocolError
from ..models import FileEntry, FileStat, FsEvent, WriteInfo, as_object, get_list

StrPath = Union[str, "os.PathLike[str]"]
FsCallback = Callable[[FsEvent], None]

TRANSFER_TIMEOUT = 600.0
"""Seconds a file transfer may take."""


class WatchHandle:
    """A running ``files.watch``: iterate for :class:`FsEvent` s (or pass
    ``on_event``), ``close()`` to stop. Usable as a context manager."""

    def __init__(
        self, stream: SseStream, events: Iterator[FsEvent], on_event: Optional[FsCallback]
    ) -> None:
        self._stream = stream
        self._events = events
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None
        """What ended a callback watch early, if anything."""
        if on_event is not None:
            self._thread = threading.Thread(target=self._pump, args=(on_event,), daemon=True)
            self._thread.start()

    def _pump(self, on_event: FsCallback) -> None:
        try:
            for event in self._events:
                on_event(event)
        except BaseException as err:  # noqa: BLE001 - kept for the caller
            if not self._closed:
                self.error = err

    def __iter__(self) -> Iterator[FsEvent]:
        return self._events

    def close(self) -> None:
        """Stops watching."""
        self._closed = True
        self._stream.close()

    def __enter__(self) -> WatchHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _watch_events(events: Iterator[SseEvent], watched: str) -> Iterator[FsEvent]:
    for event in events:
        if event.event == "fs":
            yield FsEvent.from_json(event.json())
        elif event.event == "overflow":
            yield FsEvent(kind="overflow", path=watched, is_dir=True)


class Files:
    """Files of one sandbox. Paths are absolute, or relative to the
    sandbox's working directory."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    def _path(self, rest: str) -> str:
        return sandbox_path(self._sandbox_id, rest)

    def read_bytes(
        self, path: str, *, offset: Optional[int] = None, length: Optional[int] = None
    ) -> bytes:
        """The file's contents (:class:`NotFoundError` ``file_not_found`` when
        missing); with ``offset`` and/or ``length``, only those bytes."""
        return self._transport.request(
            "GET",
            self._path("/files"),
            params=[("path", path)],
            headers=range_header(offset, length),
            timeout=TRANSFER_TIMEOUT,
        ).content

    def read(self, path: str, encoding: str = "utf-8") -> str:
        """The file's contents as text."""
        return self.read_bytes(path).decode(encoding)

    def write(
        self, path: str, data: Union[str, bytes, IO[bytes]], *, mode: Optional[int] = None
    ) -> WriteInfo:
        """Writes a file atomically, creating missing parents. ``data`` is
        text (UTF-8), bytes, or a binary file object (streamed). ``mode`` sets
        the permission bits (``0o755``); an existing file keeps its own."""
        content: Union[bytes, Iterator[bytes]]
        if isinstance(data, str):
            content = data.encode("utf-8")
        elif isinstance(data, bytes):
            content = data
        else:
            content = _archive.chunks(data)
        params = [("path", path)]
        octal = mode_param(mode)
        if octal is not None:
            params.append(("mode", octal))
        obj = self._transport.json(
            "PUT",
            self._path("/files"),
            params=params,
            content=content,
            headers={"Content-Type": "application/octet-stream"},
            timeout=TRANSFER_TIMEOUT,
        )
        return WriteInfo.from_json(as_object(obj, "write result"))

    def list(self, path: str = ".") -> List[FileEntry]:
        """A directory's entries, sorted by name."""
        obj = as_object(
            self._transport.json("GET", self._path("/files/list"), params=[("path", path)]),
            "file list",
        )
        return [
            FileEntry.from_json(as_object(item, "file entry")) for item in get_list(obj, "items")
        ]

    def stat(self, path: str) -> FileStat:
        """What is at ``path`` (``exists`` is false when nothing is)."""
        obj = self._transport.json("GET", self._path("/files/stat"), params=[("path", path)])
        return FileStat.from_json(as_object(obj, "stat"))

    def exists(self, path: str) -> bool:
        """Whether anything exists at ``path``."""
        return self.stat(path).exists

    def make_dir(self, path: str) -> WriteInfo:
        """``mkdir -p``: creates the directory and its parents."""
        obj = self._transport.json("POST", self._path("/files/mkdir"), params=[("path", path)])
        return WriteInfo.from_json(as_object(obj, "mkdir result"))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Removes a file, link or directory (a non-empty one needs ``recursive``)."""
        self._transport.request(
            "DELETE",
            self._path("/files"),
            params=[("path", path), ("recursive", "true" if recursive else "false")],
        )

    def move(self, src: str, dst: str, *, overwrite: bool = False) -> WriteInfo:
        """Moves or renames; an existing ``dst`` needs ``overwrite``."""
        obj = self._transport.json(
            "POST",
            self._path("/files/move"),
            json_body={"from": src, "to": dst, "overwrite": overwrite},
        )
        return WriteInfo.from_json(as_object(obj, "move result"))

    def edit(self, path: str, old_text: str, new_text: str) -> WriteInfo:
        """Replaces the one occurrence of ``old_text``; raises
        :class:`EditConflictError` when it occurs zero or several times."""
        obj = self._transport.json(
            "POST",
            self._path("/files/edit"),
            json_body={"path": path, "old_text": old_text, "new_text": new_text},
        )
        return WriteInfo.from_json(as_object(obj, "edit result"))

    def upload(self, src: StrPath, dest: str) -> WriteInfo:
        """Copies a local file or directory into the sandbox directory
        ``dest`` (created if missing): a file lands as ``dest/<name>``, a
        directory's contents under ``dest``."""
        with tempfile.TemporaryFile() as archive:
            _archive.pack(Path(src), archive)
            size = archive.tell()
            archive.seek(0)
            obj = self._transport.json(
                "POST",
                self._path("/files/upload"),
                params=[("path", dest)],
                content=_archive.chunks(archive),
                headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
                timeout=TRANSFER_TIMEOUT,
            )
        return WriteInfo.from_json(as_object(obj, "upload result"))

    def download(self, src: str, dest: StrPath) -> Path:
        """Copies a sandbox file or directory to the local ``dest``, like
        ``cp -r``: a directory's contents land under ``dest``; a file becomes
        ``dest`` (or ``dest/<name>`` when ``dest`` is a directory). Returns
        the local path written."""
        local = Path(dest)
        is_dir = self.stat(src).is_dir
        if not is_dir and local.is_dir():
            local = local / os.path.basename(src.rstrip("/"))
        with tempfile.TemporaryFile() as archive:
            response = self._transport.open_stream(
                "GET",
                self._path("/files/download"),
                params=[("path", src)],
                read_timeout=TRANSFER_TIMEOUT,
            )
            try:
                for piece in response.iter_bytes(_archive.CHUNK):
                    archive.write(piece)
            finally:
                response.close()
            archive.seek(0)
            if is_dir:
                _archive.unpack_dir(archive, local)
            else:
                _archive.unpack_file(archive, local)
        return local

    def watch(
        self, path: str, *, recursive: bool = False, on_event: Optional[FsCallback] = None
    ) -> WatchHandle:
        """Watches a directory; returns once the watch is armed, so every
        change made afterwards is reported. Iterate over the handle, or pass
        ``on_event`` to get events on a background thread."""
        stream = self._transport.events(
            "GET",
            self._path("/files/watch"),
            params=[("path", path), ("recursive", "true" if recursive else "false")],
        )
        events = iter(stream)
        try:
            first = next(events)
        except StopIteration:
            stream.close()
            raise ProtocolError(
                "invalid_response", None, "watch stream ended before it was ready"
            ) from None
        except BaseException:
            stream.close()
            raise
        if first.event != "ready":
            stream.close()
            raise ProtocolError(
                "invalid_response", None, f"watch began with {first.event!r}, not ready"
            )
        return WatchHandle(stream, _watch_events(events, path), on_event)
