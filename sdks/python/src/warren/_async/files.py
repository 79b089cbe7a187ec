"""``sandbox.files``: the sandbox's file system (asyncio)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import IO, AsyncIterator, Callable, List, Optional, Union

from .. import _archive
from .._config import sandbox_path
from .._http import AsyncSseStream, AsyncTransport
from .._sync.files import TRANSFER_TIMEOUT, StrPath
from .._wire import SseEvent, mode_param, range_header
from ..errors import ProtocolError
from ..models import FileEntry, FileStat, FsEvent, WriteInfo, as_object, get_list
from .exec import MaybeAwaitable, call_back

AsyncFsCallback = Callable[[FsEvent], MaybeAwaitable[None]]


async def read_chunks(f: IO[bytes]) -> AsyncIterator[bytes]:
    """The rest of ``f`` in pieces, read off the event loop."""
    while True:
        piece = await asyncio.to_thread(f.read, _archive.CHUNK)
        if not piece:
            return
        yield piece


async def _watch_events(events: AsyncIterator[SseEvent], watched: str) -> AsyncIterator[FsEvent]:
    async for event in events:
        if event.event == "fs":
            yield FsEvent.from_json(event.json())
        elif event.event == "overflow":
            yield FsEvent(kind="overflow", path=watched, is_dir=True)


class AsyncWatchHandle:
    """A running ``files.watch``: ``async for`` over it for
    :class:`FsEvent` s (or pass ``on_event``), ``await close()`` to stop.
    Usable as an ``async with`` context manager."""

    def __init__(
        self,
        stream: AsyncSseStream,
        events: AsyncIterator[FsEvent],
        on_event: Optional[AsyncFsCallback],
    ) -> None:
        self._stream = stream
        self._events = events
        self._task: Optional[asyncio.Task[None]] = None
        self._closed = False
        self.error: Optional[BaseException] = None
        """What ended a callback watch early, if anything."""
        if on_event is not None:
            self._task = asyncio.ensure_future(self._pump(on_event))

    async def _pump(self, on_event: AsyncFsCallback) -> None:
        try:
            async for event in self._events:
                await call_back(on_event, event)
        except Exception as err:  # noqa: BLE001 - kept for the caller
            if not self._closed:
                self.error = err

    def __aiter__(self) -> AsyncIterator[FsEvent]:
        return self._events

    async def close(self) -> None:
        """Stops watching."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._stream.close()

    async def __aenter__(self) -> AsyncWatchHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncFiles:
    """Files of one sandbox (see :class:`warren.Files`)."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    def _path(self, rest: str) -> str:
        return sandbox_path(self._sandbox_id, rest)

    async def read_bytes(
        self, path: str, *, offset: Optional[int] = None, length: Optional[int] = None
    ) -> bytes:
        """The file's contents; with ``offset`` and/or ``length``, only those bytes."""
        response = await self._transport.request(
            "GET",
            self._path("/files"),
            params=[("path", path)],
            headers=range_header(offset, length),
            timeout=TRANSFER_TIMEOUT,
        )
        return response.content

    async def read(self, path: str, encoding: str = "utf-8") -> str:
        """The file's contents as text."""
        return (await self.read_bytes(path)).decode(encoding)

    async def write(
        self, path: str, data: Union[str, bytes, IO[bytes]], *, mode: Optional[int] = None
    ) -> WriteInfo:
        """Writes a file atomically, creating missing parents (``data``: text,
        bytes or a binary file object, streamed)."""
        content: Union[bytes, AsyncIterator[bytes]]
        if isinstance(data, str):
            content = data.encode("utf-8")
        elif isinstance(data, bytes):
            content = data
        else:
            content = read_chunks(data)
        params = [("path", path)]
        octal = mode_param(mode)
        if octal is not None:
            params.append(("mode", octal))
        obj = await self._transport.json(
            "PUT",
            self._path("/files"),
            params=params,
            content=content,
            headers={"Content-Type": "application/octet-stream"},
            timeout=TRANSFER_TIMEOUT,
        )
        return WriteInfo.from_json(as_object(obj, "write result"))

    async def list(self, path: str = ".") -> List[FileEntry]:
        """A directory's entries, sorted by name."""
        obj = as_object(
            await self._transport.json("GET", self._path("/files/list"), params=[("path", path)]),
            "file list",
        )
        return [
            FileEntry.from_json(as_object(item, "file entry")) for item in get_list(obj, "items")
        ]

    async def stat(self, path: str) -> FileStat:
        """What is at ``path`` (``exists`` is false when nothing is)."""
        obj = await self._transport.json("GET", self._path("/files/stat"), params=[("path", path)])
        return FileStat.from_json(as_object(obj, "stat"))

    async def exists(self, path: str) -> bool:
        """Whether anything exists at ``path``."""
        return (await self.stat(path)).exists

    async def make_dir(self, path: str) -> WriteInfo:
        """``mkdir -p``."""
        obj = await self._transport.json(
            "POST", self._path("/files/mkdir"), params=[("path", path)]
        )
        return WriteInfo.from_json(as_object(obj, "mkdir result"))

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        """Removes a file, link or directory (a non-empty one needs ``recursive``)."""
        await self._transport.request(
            "DELETE",
            self._path("/files"),
            params=[("path", path), ("recursive", "true" if recursive else "false")],
        )

    async def move(self, src: str, dst: str, *, overwrite: bool = False) -> WriteInfo:
        """Moves or renames; an existing ``dst`` needs ``overwrite``."""
        obj = await self._transport.json(
            "POST",
            self._path("/files/move"),
            json_body={"from": src, "to": dst, "overwrite": overwrite},
        )
        return WriteInfo.from_json(as_object(obj, "move result"))

    async def edit(self, path: str, old_text: str, new_text: str) -> WriteInfo:
        """Replaces the one occurrence of ``old_text`` (:class:`EditConflictError` otherwise)."""
        obj = await self._transport.json(
            "POST",
            self._path("/files/edit"),
            json_body={"path": path, "old_text": old_text, "new_text": new_text},
        )
        return WriteInfo.from_json(as_object(obj, "edit result"))

    async def upload(self, src: StrPath, dest: str) -> WriteInfo:
        """Copies a local file or directory into the sandbox directory ``dest``
        (see :meth:`warren.Files.upload`)."""
        with tempfile.TemporaryFile() as archive:
            await asyncio.to_thread(_archive.pack, Path(src), archive)
            size = archive.tell()
            archive.seek(0)
            obj = await self._transport.json(
                "POST",
                self._path("/files/upload"),
                params=[("path", dest)],
                content=read_chunks(archive),
                headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
                timeout=TRANSFER_TIMEOUT,
            )
        return WriteInfo.from_json(as_object(obj, "upload result"))

    async def download(self, src: str, dest: StrPath) -> Path:
        """Copies a sandbox file or directory to the local ``dest``, like
        ``cp -r`` (see :meth:`warren.Files.download`)."""
        local = Path(dest)
        is_dir = (await self.stat(src)).is_dir
        if not is_dir and local.is_dir():
            local = local / os.path.basename(src.rstrip("/"))
        with tempfile.TemporaryFile() as archive:
            response = await self._transport.open_stream(
                "GET",
                self._path("/files/download"),
                params=[("path", src)],
                read_timeout=TRANSFER_TIMEOUT,
            )
            try:
                async for piece in response.aiter_bytes(_archive.CHUNK):
                    await asyncio.to_thread(archive.write, piece)
            finally:
                await response.aclose()
            archive.seek(0)
            unpack = _archive.unpack_dir if is_dir else _archive.unpack_file
            await asyncio.to_thread(unpack, archive, local)
        return local

    async def watch(
        self, path: str, *, recursive: bool = False, on_event: Optional[AsyncFsCallback] = None
    ) -> AsyncWatchHandle:
        """Watches a directory; returns once the watch is armed (see
        :meth:`warren.Files.watch`)."""
        stream = await self._transport.events(
            "GET",
            self._path("/files/watch"),
            params=[("path", path), ("recursive", "true" if recursive else "false")],
        )
        events = stream.__aiter__()
        try:
            first = await events.__anext__()
        except StopAsyncIteration:
            await stream.close()
            raise ProtocolError(
                "invalid_response", None, "watch stream ended before it was ready"
            ) from None
        except BaseException:
            await stream.close()
            raise
        if first.event != "ready":
            await stream.close()
            raise ProtocolError(
                "invalid_response", None, f"watch began with {first.event!r}, not ready"
            )
        return AsyncWatchHandle(stream, _watch_events(events, path), on_event)
