"""``sandbox.pty``: interactive terminals over the attach WebSocket (sync)."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator, List, Mapping, Optional, Union

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from .. import _ws
from .._config import sandbox_path, seg
from .._http import SyncTransport
from .._wire import Command, Signal
from ..errors import WarrenError, WarrenTimeoutError
from ..models import ExitStatus, ProcessInfo, as_object
from .exec import ProcessHandle

DataCallback = Callable[[bytes], None]
"""Receives terminal output bytes as they arrive."""


class PtyHandle:
    """An interactive terminal: ``send`` keystrokes, ``resize``, ``wait`` for
    the shell to exit, ``close`` to hang up. Output goes to ``on_data`` (on a
    background thread) or, without it, to iteration over the handle."""

    def __init__(
        self,
        process: ProcessHandle,
        socket: ClientConnection,
        on_data: Optional[DataCallback],
    ) -> None:
        self._process = process
        self._socket = socket
        self._on_data = on_data
        self._queue: queue.Queue[Optional[bytes]] = queue.Queue()
        self._done = threading.Event()
        self._status: Optional[ExitStatus] = None
        self._reader_error: Optional[BaseException] = None
        self.dropped_bytes = 0
        """Output lost because the terminal produced it faster than it was read."""
        self.errors: List[WarrenError] = []
        """Errors the agent reported for control messages (a bad resize, ...)."""
        self._reader = threading.Thread(
            target=self._read, name=f"warren-pty-{process.process_id}", daemon=True
        )
        self._reader.start()

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

    def _read(self) -> None:
        try:
            for message in self._socket:
                frame = _ws.decode_frame(message)
                if frame.data:
                    if self._on_data is not None:
                        self._on_data(frame.data)
                    else:
                        self._queue.put(frame.data)
                elif frame.exit is not None:
                    self._status = frame.exit
                    break
                elif frame.error is not None:
                    self.errors.append(frame.error)
                self.dropped_bytes += frame.dropped
        except ConnectionClosed:
            pass
        except BaseException as err:  # noqa: BLE001 - raised again by wait()
            self._reader_error = err
        finally:
            # Done either way: closing now makes later sends fail at once.
            self._socket.close()
            self._queue.put(None)
            self._done.set()

    def __iter__(self) -> Iterator[bytes]:
        """Output bytes until the terminal's process exits (only without ``on_data``)."""
        while True:
            data = self._queue.get()
            if data is None:
                self._queue.put(None)
                return
            yield data

    def send(self, data: Union[str, bytes]) -> None:
        """Sends keystrokes (text is UTF-8 encoded), e.g. ``"ls\\n"``."""
        try:
            self._socket.send(_ws.data_bytes(data))
        except ConnectionClosed as err:
            raise _ws.closed_error(self.process_id) from err

    def resize(self, cols: int, rows: int) -> None:
        """Resizes the terminal; its foreground process gets SIGWINCH."""
        try:
            self._socket.send(_ws.resize_message(cols, rows))
        except ConnectionClosed as err:
            raise _ws.closed_error(self.process_id) from err

    def kill(self, signal: Signal = "SIGKILL") -> bool:
        """Signals the terminal's process group; ``False`` if it had exited."""
        return self._process.kill(signal)

    def wait(self, timeout: Optional[float] = None) -> ExitStatus:
        """Blocks until the terminal's process exits and returns how it ended
        (:class:`WarrenTimeoutError` after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._done.wait(timeout):
            raise WarrenTimeoutError("timeout", None, f"terminal {self.process_id} still running")
        if self._reader_error is not None:
            raise self._reader_error
        if self._status is None:
            # The socket closed without an exit message: ask over HTTP.
            info = self._process._wait_exit(deadline)
            self._status = ExitStatus(info.exit_code, info.signal)
        return self._status

    def disconnect(self) -> None:
        """Closes the WebSocket; the terminal's process keeps running (attach
        again with ``pty.connect``)."""
        self._socket.close()
        self._reader.join(10)

    def close(self) -> None:
        """Hangs up: sends SIGHUP to the terminal's process group and closes
        the WebSocket."""
        try:
            self.kill("SIGHUP")
        finally:
            self.disconnect()

    def __enter__(self) -> PtyHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pty:
    """Terminals in one sandbox."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    def create(
        self,
        *,
        cols: int = 80,
        rows: int = 24,
        on_data: Optional[DataCallback] = None,
        cmd: Optional[Command] = None,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        user: Optional[str] = None,
    ) -> PtyHandle:
        """Starts a terminal running ``cmd`` (default: a login bash) and
        attaches to it (as ``user``, a name or a uid of the sandbox, when
        given)."""
        obj = self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/processes"),
            json_body=_ws.shell_body(cmd, cols, rows, cwd, env, user),
        )
        info = ProcessInfo.from_json(as_object(obj, "process"))
        return self._attach(info, on_data)

    def connect(self, process_id: str, *, on_data: Optional[DataCallback] = None) -> PtyHandle:
        """Attaches to a terminal started earlier; output is replayed from
        the oldest byte kept."""
        obj = self._transport.json(
            "GET", sandbox_path(self._sandbox_id, f"/processes/{seg(process_id)}")
        )
        return self._attach(ProcessInfo.from_json(as_object(obj, "process")), on_data)

    def _attach(self, info: ProcessInfo, on_data: Optional[DataCallback]) -> PtyHandle:
        config = self._transport.config
        url = _ws.attach_url(config, self._sandbox_id, info.process_id)
        try:
            # Entering the context opens the connection with every websockets
            # release: older ones return the connection from connect(), newer
            # ones a connector whose __enter__ connects. The handle closes it.
            opened: Any = connect(
                url,
                additional_headers=_ws.auth_headers(config),
                open_timeout=_ws.OPEN_TIMEOUT,
                compression=None,
                max_size=None,
            ).__enter__()
            socket: ClientConnection = opened
        except (OSError, WebSocketException) as err:
            raise _ws.handshake_error(err, url) from err
        process = ProcessHandle(self._transport, self._sandbox_id, info)
        return PtyHandle(process, socket, on_data)
