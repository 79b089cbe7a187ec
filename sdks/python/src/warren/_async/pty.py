"""``sandbox.pty``: interactive terminals over the attach WebSocket (asyncio)."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Callable, List, Mapping, Optional, Union

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from .. import _ws
from .._config import sandbox_path, seg
from .._http import AsyncTransport
from .._wire import Command, Signal
from ..errors import WarrenError, WarrenTimeoutError
from ..models import ExitStatus, ProcessInfo, as_object
from .exec import AsyncProcessHandle, MaybeAwaitable, call_back

AsyncDataCallback = Callable[[bytes], MaybeAwaitable[None]]
"""Receives terminal output bytes as they arrive (plain or ``async`` function)."""


class AsyncPtyHandle:
    """An interactive terminal (see :class:`warren.PtyHandle`): ``await
    send()``, ``resize()``, ``wait()``, ``close()``; output to ``on_data`` or
    ``async for`` over the handle."""

    def __init__(
        self,
        process: AsyncProcessHandle,
        socket: ClientConnection,
        on_data: Optional[AsyncDataCallback],
    ) -> None:
        self._process = process
        self._socket = socket
        self._on_data = on_data
        self._queue: asyncio.Queue[Optional[bytes]] = asyncio.Queue()
        self._status: Optional[ExitStatus] = None
        self.dropped_bytes = 0
        """Output lost because the terminal produced it faster than it was read."""
        self.errors: List[WarrenError] = []
        """Errors the agent reported for control messages (a bad resize, ...)."""
        self._reader = asyncio.ensure_future(self._read())

    @property
    def process_id(self) -> str:
        """``proc_…`` of the terminal's process (for ``pty.connect``)."""
        return self._process.process_id

    @property
    def pid(self) -> int:
        """The shell's pid in the sandbox."""
        return self._process.pid

    @property
    def exit_code(self) -> Optional[int]:
        """The exit code, once the process has exited."""
        return self._status.exit_code if self._status else None

    async def _read(self) -> None:
        try:
            async for message in self._socket:
                frame = _ws.decode_frame(message)
                if frame.data:
                    if self._on_data is not None:
                        await call_back(self._on_data, frame.data)
                    else:
                        self._queue.put_nowait(frame.data)
                elif frame.exit is not None:
                    self._status = frame.exit
                    break
                elif frame.error is not None:
                    self.errors.append(frame.error)
                self.dropped_bytes += frame.dropped
        except ConnectionClosed:
            pass
        finally:
            # Done either way: closing now makes later sends fail at once.
            await self._socket.close()
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Output bytes until the terminal's process exits (only without ``on_data``)."""
        while True:
            data = await self._queue.get()
            if data is None:
                self._queue.put_nowait(None)
                return
            yield data

    async def send(self, data: Union[str, bytes]) -> None:
        """Sends keystrokes (text is UTF-8 encoded)."""
        try:
            await self._socket.send(_ws.data_bytes(data))
        except ConnectionClosed as err:
            raise _ws.closed_error(self.process_id) from err

    async def resize(self, cols: int, rows: int) -> None:
        """Resizes the terminal; its foreground process gets SIGWINCH."""
        try:
            await self._socket.send(_ws.resize_message(cols, rows))
        except ConnectionClosed as err:
            raise _ws.closed_error(self.process_id) from err

    async def kill(self, signal: Signal = "SIGKILL") -> bool:
        """Signals the terminal's process group; ``False`` if it had exited."""
        return await self._process.kill(signal)

    async def wait(self, timeout: Optional[float] = None) -> ExitStatus:
        """Waits until the terminal's process exits and returns how it ended
        (:class:`WarrenTimeoutError` after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except asyncio.TimeoutError:
            raise WarrenTimeoutError(
                "timeout", None, f"terminal {self.process_id} still running"
            ) from None
        if self._status is None:
            # The socket closed without an exit message: ask over HTTP.
            info = await self._process._wait_exit(deadline)
            self._status = ExitStatus(info.exit_code, info.signal)
        return self._status

    async def disconnect(self) -> None:
        """Closes the WebSocket; the terminal's process keeps running."""
        await self._socket.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), 10)
        except asyncio.TimeoutError:
            self._reader.cancel()

    async def close(self) -> None:
        """Hangs up: SIGHUP to the terminal's process group, then closes the WebSocket."""
        try:
            await self.kill("SIGHUP")
        finally:
            await self.disconnect()

    async def __aenter__(self) -> AsyncPtyHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncPty:
    """Terminals in one sandbox."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    async def create(
        self,
        *,
        cols: int = 80,
        rows: int = 24,
        on_data: Optional[AsyncDataCallback] = None,
        cmd: Optional[Command] = None,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        user: Optional[str] = None,
    ) -> AsyncPtyHandle:
        """Starts a terminal running ``cmd`` (default: a login bash) and attaches to it
        (as ``user``, a name or a uid of the sandbox, when given)."""
        obj = await self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/processes"),
            json_body=_ws.shell_body(cmd, cols, rows, cwd, env, user),
        )
        return await self._attach(ProcessInfo.from_json(as_object(obj, "process")), on_data)

    async def connect(
        self, process_id: str, *, on_data: Optional[AsyncDataCallback] = None
    ) -> AsyncPtyHandle:
        """Attaches to a terminal started earlier; output is replayed from the
        oldest byte kept."""
        obj = await self._transport.json(
            "GET", sandbox_path(self._sandbox_id, f"/processes/{seg(process_id)}")
        )
        return await self._attach(ProcessInfo.from_json(as_object(obj, "process")), on_data)

    async def _attach(
        self, info: ProcessInfo, on_data: Optional[AsyncDataCallback]
    ) -> AsyncPtyHandle:
        config = self._transport.config
        url = _ws.attach_url(config, self._sandbox_id, info.process_id)
        try:
            socket = await connect(
                url,
                additional_headers=_ws.auth_headers(config),
                open_timeout=_ws.OPEN_TIMEOUT,
                compression=None,
                max_size=None,
            )
        except (OSError, WebSocketException, asyncio.TimeoutError) as err:
            raise _ws.handshake_error(err, url) from err
        process = AsyncProcessHandle(self._transport, self._sandbox_id, info)
        return AsyncPtyHandle(process, socket, on_data)
