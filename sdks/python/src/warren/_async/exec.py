"""``sandbox.exec``: run commands and manage background processes (asyncio)."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    TypeVar,
    Union,
)

from .._config import sandbox_path, seg
from .._http import AsyncSseStream, AsyncTransport
from .._sync.exec import DEFAULT_RUN_TIMEOUT, RUN_MARGIN, WAIT_SLICE
from .._wire import (
    RECONNECTS,
    Command,
    FollowItem,
    OutputCollector,
    Signal,
    command_body,
    follow_item,
    follow_params,
    logs_into,
    stdin_body,
    to_ms,
)
from ..errors import CommandExitError, NetworkError, WarrenError, WarrenTimeoutError
from ..models import ExecResult, ExitStatus, ProcessInfo, ProcessOutput, as_object, get_list

T = TypeVar("T")
MaybeAwaitable = Union[T, Awaitable[T]]
AsyncOutputCallback = Callable[[str], MaybeAwaitable[None]]
"""Receives decoded text of one stream as it arrives (plain or ``async`` function)."""
AsyncExitCallback = Callable[[ExitStatus], MaybeAwaitable[None]]
"""Receives the exit status once the process has ended (plain or ``async`` function)."""


async def call_back(callback: Callable[[T], MaybeAwaitable[None]], arg: T) -> None:
    """Calls a plain or async callback."""
    result = callback(arg)
    if inspect.isawaitable(result):
        await result


class AsyncProcessHandle:
    """A process started with ``exec.start`` (or found with ``exec.attach``).

    ``async for out in handle`` for its output, ``await handle.wait()`` for
    its result, ``kill()``, ``send_stdin()``, ``close_stdin()``. With
    callbacks, a background task delivers output as it comes.
    """

    def __init__(
        self,
        transport: AsyncTransport,
        sandbox_id: str,
        info: ProcessInfo,
        *,
        on_stdout: Optional[AsyncOutputCallback] = None,
        on_stderr: Optional[AsyncOutputCallback] = None,
        on_exit: Optional[AsyncExitCallback] = None,
    ) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id
        self.info = info
        """The process as it was when the handle was made (``refresh()`` updates it)."""
        self._status: Optional[ExitStatus] = None
        self._collector: Optional[OutputCollector] = None
        self._stream: Optional[AsyncSseStream] = None
        self._stopped = False
        self._task: Optional[asyncio.Task[None]] = None
        if on_stdout or on_stderr or on_exit:
            self._collector = OutputCollector()
            self._task = asyncio.ensure_future(self._pump(on_stdout, on_stderr, on_exit))

    @property
    def process_id(self) -> str:
        """``proc_…``."""
        return self.info.process_id

    @property
    def pid(self) -> int:
        """The process's pid in the sandbox."""
        return self.info.pid

    @property
    def exit_code(self) -> Optional[int]:
        """The exit code once known (after ``wait()`` or the end of iteration)."""
        return self._status.exit_code if self._status else None

    def _path(self, rest: str = "") -> str:
        return sandbox_path(self._sandbox_id, f"/processes/{seg(self.process_id)}{rest}")

    async def _follow(self, collector: OutputCollector) -> AsyncIterator[FollowItem]:
        """Output from ``collector.cursor`` until exit, reopening a broken
        stream where it stopped."""
        failures = 0
        while not self._stopped:
            try:
                stream = await self._transport.events(
                    "GET", self._path("/logs"), params=follow_params(collector)
                )
                self._stream = stream
                try:
                    async for event in stream:
                        item = follow_item(event, collector)
                        if item is None:
                            continue
                        yield item
                        if item.exit is not None:
                            self._status = item.exit
                            return
                finally:
                    await stream.close()
                error: WarrenError = NetworkError(
                    "network_error", None, f"output stream of {self.process_id} ended early"
                )
            except (NetworkError, WarrenTimeoutError) as err:
                error = err
            if self._stopped:
                return
            failures += 1
            if failures > RECONNECTS:
                raise error
            await asyncio.sleep(min(2.0, 0.1 * 2**failures))

    async def __aiter__(self) -> AsyncIterator[ProcessOutput]:
        """Output chunks from the first one kept, until the process exits."""
        async for item in self._follow(OutputCollector()):
            if item.output is not None:
                yield item.output

    async def _pump(
        self,
        on_stdout: Optional[AsyncOutputCallback],
        on_stderr: Optional[AsyncOutputCallback],
        on_exit: Optional[AsyncExitCallback],
    ) -> None:
        assert self._collector is not None
        async for item in self._follow(self._collector):
            out = item.output
            if out is not None and item.text:
                callback = on_stderr if out.stream == "stderr" else on_stdout
                if callback is not None:
                    await call_back(callback, item.text)
            if item.exit is not None and on_exit is not None:
                await call_back(on_exit, item.exit)

    async def refresh(self) -> ProcessInfo:
        """Fetches the process's current state."""
        self.info = ProcessInfo.from_json(await self._transport.json("GET", self._path()))
        return self.info

    async def _wait_exit(self, deadline: Optional[float]) -> ProcessInfo:
        while True:
            left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
            if left <= 0:
                raise WarrenTimeoutError(
                    "timeout", None, f"process {self.process_id} still running"
                )
            obj = await self._transport.json(
                "GET",
                self._path(),
                params=[("wait", "true"), ("timeout_ms", str(to_ms(left)))],
                timeout=left + RUN_MARGIN,
            )
            self.info = ProcessInfo.from_json(obj)
            if not self.info.running:
                return self.info

    async def wait(self, timeout: Optional[float] = None) -> ExecResult:
        """Waits until the process exits (raises :class:`WarrenTimeoutError`
        after ``timeout`` seconds) and returns its output and exit status.
        With callbacks, returns once every callback has run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        info = await self._wait_exit(deadline)
        status = ExitStatus(info.exit_code, info.signal)
        if self._task is not None and self._collector is not None:
            left = None if deadline is None else max(1.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(asyncio.shield(self._task), left)
            except asyncio.TimeoutError:
                raise WarrenTimeoutError(
                    "timeout", None, f"output of {self.process_id} still streaming"
                ) from None
            collector = self._collector
        else:
            collector = OutputCollector()
            while logs_into(
                collector,
                as_object(
                    await self._transport.json(
                        "GET", self._path("/logs"), params=[("cursor", str(collector.cursor))]
                    ),
                    "logs",
                ),
            ):
                pass
        self._status = status
        return collector.result(status, info)

    async def kill(self, signal: Signal = "SIGKILL") -> bool:
        """Signals the process's whole group (default ``SIGKILL``). Returns
        ``False`` when it had already exited."""
        try:
            await self._transport.request(
                "POST", self._path("/signal"), json_body={"signal": signal}
            )
        except WarrenError as err:
            if err.code in ("process_not_running", "conflict"):
                return False
            raise
        return True

    async def send_stdin(self, data: Union[str, bytes]) -> None:
        """Writes text or bytes to the process's stdin."""
        await self._transport.request("POST", self._path("/stdin"), json_body=stdin_body(data))

    async def close_stdin(self) -> None:
        """Closes the process's stdin (on a terminal: sends Ctrl-D)."""
        await self._transport.request(
            "POST", self._path("/stdin"), json_body=stdin_body("", eof=True)
        )

    async def resize(self, cols: int, rows: int) -> None:
        """Resizes the terminal of a ``tty`` process."""
        await self._transport.request(
            "POST", self._path("/resize"), json_body={"cols": cols, "rows": rows}
        )

    async def remove(self, *, force: bool = False) -> None:
        """Forgets the process and its output; a running one needs ``force``
        (which kills its group first), else :class:`ConflictError`."""
        await self._transport.request(
            "DELETE", self._path(), params=[("force", "true" if force else "false")]
        )

    async def disconnect(self) -> None:
        """Stops delivering output to the callbacks; the process keeps running."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, WarrenError):
                pass


class AsyncExec:
    """Commands in one sandbox: ``run`` to completion, ``start`` in the
    background, ``attach`` to a running one, ``list``."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    async def run(
        self,
        cmd: Command,
        *,
        cwd: Optional[str] = None,
        user: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
        max_output_bytes: Optional[int] = None,
        check: bool = False,
    ) -> ExecResult:
        """Runs a command to completion (see :meth:`warren.Exec.run`)."""
        body = command_body(cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout, user=user)
        if max_output_bytes is not None:
            body["max_output_bytes"] = max_output_bytes
        obj = await self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/processes/run"),
            json_body=body,
            timeout=(timeout if timeout is not None else DEFAULT_RUN_TIMEOUT) + RUN_MARGIN,
        )
        result = ExecResult.from_json(as_object(obj, "run result"))
        if check and not result.ok:
            raise CommandExitError(result)
        return result

    async def start(
        self,
        cmd: Command,
        *,
        cwd: Optional[str] = None,
        user: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
        tty: bool = False,
        cols: Optional[int] = None,
        rows: Optional[int] = None,
        on_stdout: Optional[AsyncOutputCallback] = None,
        on_stderr: Optional[AsyncOutputCallback] = None,
        on_exit: Optional[AsyncExitCallback] = None,
    ) -> AsyncProcessHandle:
        """Starts a command in the background (see :meth:`warren.Exec.start`);
        callbacks may be plain or ``async`` functions."""
        body: Dict[str, Any] = command_body(
            cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout, user=user
        )
        body["tty"] = tty
        if cols is not None:
            body["cols"] = cols
        if rows is not None:
            body["rows"] = rows
        obj = await self._transport.json(
            "POST", sandbox_path(self._sandbox_id, "/processes"), json_body=body
        )
        return AsyncProcessHandle(
            self._transport,
            self._sandbox_id,
            ProcessInfo.from_json(as_object(obj, "process")),
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            on_exit=on_exit,
        )

    async def attach(
        self,
        process_id: str,
        *,
        on_stdout: Optional[AsyncOutputCallback] = None,
        on_stderr: Optional[AsyncOutputCallback] = None,
        on_exit: Optional[AsyncExitCallback] = None,
    ) -> AsyncProcessHandle:
        """A handle on a process started earlier (by id, ``proc_…``)."""
        obj = await self._transport.json(
            "GET", sandbox_path(self._sandbox_id, f"/processes/{seg(process_id)}")
        )
        return AsyncProcessHandle(
            self._transport,
            self._sandbox_id,
            ProcessInfo.from_json(as_object(obj, "process")),
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            on_exit=on_exit,
        )

    async def list(self) -> List[ProcessInfo]:
        """The sandbox's managed processes, running and recently exited."""
        obj = as_object(
            await self._transport.json("GET", sandbox_path(self._sandbox_id, "/processes")),
            "process list",
        )
        return [
            ProcessInfo.from_json(as_object(item, "process")) for item in get_list(obj, "items")
        ]

    async def kill(self, process_id: str, signal: Signal = "SIGKILL") -> bool:
        """Signals a process by id; ``False`` when it had already exited."""
        try:
            await self._transport.request(
                "POST",
                sandbox_path(self._sandbox_id, f"/processes/{seg(process_id)}/signal"),
                json_body={"signal": signal},
            )
        except WarrenError as err:
            if err.code in ("process_not_running", "conflict"):
                return False
            raise
        return True
