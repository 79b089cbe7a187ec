"""``sandbox.exec``: run commands and manage background processes (sync)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

from .._config import sandbox_path, seg
from .._http import SseStream, SyncTransport
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
from ..errors import (
    CommandExitError,
    NetworkError,
    WarrenError,
    WarrenTimeoutError,
)
from ..models import ExecResult, ExitStatus, ProcessInfo, ProcessOutput, as_object, get_list

OutputCallback = Callable[[str], None]
"""Receives decoded text of one stream as it arrives."""
ExitCallback = Callable[[ExitStatus], None]
"""Receives the exit status once the process has ended."""

RUN_MARGIN = 30.0
"""Seconds the HTTP request of ``run`` may outlast the command's own timeout."""
DEFAULT_RUN_TIMEOUT = 60.0
"""The agent's default command timeout, in seconds."""
WAIT_SLICE = 30.0
"""Longest single ``?wait=true`` request, in seconds."""


class ProcessHandle:
    """A process started with ``exec.start`` (or found with ``exec.attach``).

    Iterate over it for its output (``for out in handle: print(out.text)``),
    ``wait()`` for its result, ``kill()``, ``send_stdin()``, ``close_stdin()``.
    With callbacks, a background thread delivers output as it comes.
    """

    def __init__(
        self,
        transport: SyncTransport,
        sandbox_id: str,
        info: ProcessInfo,
        *,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        on_exit: Optional[ExitCallback] = None,
    ) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id
        self.info = info
        """The process as it was when the handle was made (``refresh()`` updates it)."""
        self._status: Optional[ExitStatus] = None
        self._collector: Optional[OutputCollector] = None
        self._pump_error: Optional[BaseException] = None
        self._stream: Optional[SseStream] = None
        self._stopped = False
        self._thread: Optional[threading.Thread] = None
        if on_stdout or on_stderr or on_exit:
            self._collector = OutputCollector()
            self._thread = threading.Thread(
                target=self._pump,
                args=(on_stdout, on_stderr, on_exit),
                name=f"warren-{info.process_id}",
                daemon=True,
            )
            self._thread.start()

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

    def _follow(self, collector: OutputCollector) -> Iterator[FollowItem]:
        """Output from ``collector.cursor`` until exit, reopening a broken
        stream where it stopped."""
        failures = 0
        while not self._stopped:
            try:
                stream = self._transport.events(
                    "GET", self._path("/logs"), params=follow_params(collector)
                )
                self._stream = stream
                try:
                    for event in stream:
                        item = follow_item(event, collector)
                        if item is None:
                            continue
                        yield item
                        if item.exit is not None:
                            self._status = item.exit
                            return
                finally:
                    stream.close()
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
            time.sleep(min(2.0, 0.1 * 2**failures))

    def __iter__(self) -> Iterator[ProcessOutput]:
        """Output chunks from the first one kept, until the process exits."""
        for item in self._follow(OutputCollector()):
            if item.output is not None:
                yield item.output

    def _pump(
        self,
        on_stdout: Optional[OutputCallback],
        on_stderr: Optional[OutputCallback],
        on_exit: Optional[ExitCallback],
    ) -> None:
        assert self._collector is not None
        try:
            for item in self._follow(self._collector):
                out = item.output
                if out is not None and item.text:
                    callback = on_stderr if out.stream == "stderr" else on_stdout
                    if callback is not None:
                        callback(item.text)
                if item.exit is not None and on_exit is not None:
                    on_exit(item.exit)
        except BaseException as err:  # noqa: BLE001 - handed to wait()
            if not self._stopped:
                self._pump_error = err

    def refresh(self) -> ProcessInfo:
        """Fetches the process's current state."""
        self.info = ProcessInfo.from_json(self._transport.json("GET", self._path()))
        return self.info

    def _wait_exit(self, deadline: Optional[float]) -> ProcessInfo:
        while True:
            left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
            if left <= 0:
                raise WarrenTimeoutError(
                    "timeout", None, f"process {self.process_id} still running"
                )
            obj = self._transport.json(
                "GET",
                self._path(),
                params=[("wait", "true"), ("timeout_ms", str(to_ms(left)))],
                timeout=left + RUN_MARGIN,
            )
            self.info = ProcessInfo.from_json(obj)
            if not self.info.running:
                return self.info

    def wait(self, timeout: Optional[float] = None) -> ExecResult:
        """Blocks until the process exits (raises :class:`WarrenTimeoutError`
        after ``timeout`` seconds) and returns its output and exit status.
        With callbacks, returns once every callback has run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        info = self._wait_exit(deadline)
        status = ExitStatus(info.exit_code, info.signal)
        if self._thread is not None and self._collector is not None:
            left = None if deadline is None else max(1.0, deadline - time.monotonic())
            self._thread.join(left)
            if self._thread.is_alive():
                raise WarrenTimeoutError(
                    "timeout", None, f"output of {self.process_id} still streaming"
                )
            if self._pump_error is not None:
                raise self._pump_error
            collector = self._collector
        else:
            collector = OutputCollector()
            while logs_into(
                collector,
                as_object(
                    self._transport.json(
                        "GET", self._path("/logs"), params=[("cursor", str(collector.cursor))]
                    ),
                    "logs",
                ),
            ):
                pass
        self._status = status
        return collector.result(status, info)

    def kill(self, signal: Signal = "SIGKILL") -> bool:
        """Signals the process's whole group (default ``SIGKILL``). Returns
        ``False`` when it had already exited."""
        try:
            self._transport.request("POST", self._path("/signal"), json_body={"signal": signal})
        except WarrenError as err:
            if err.code in ("process_not_running", "conflict"):
                return False
            raise
        return True

    def send_stdin(self, data: Union[str, bytes]) -> None:
        """Writes text or bytes to the process's stdin."""
        self._transport.request("POST", self._path("/stdin"), json_body=stdin_body(data))

    def close_stdin(self) -> None:
        """Closes the process's stdin (on a terminal: sends Ctrl-D)."""
        self._transport.request("POST", self._path("/stdin"), json_body=stdin_body("", eof=True))

    def resize(self, cols: int, rows: int) -> None:
        """Resizes the terminal of a ``tty`` process."""
        self._transport.request(
            "POST", self._path("/resize"), json_body={"cols": cols, "rows": rows}
        )

    def remove(self, *, force: bool = False) -> None:
        """Forgets the process and its output; a running one needs ``force``
        (which kills its group first), else :class:`ConflictError`."""
        self._transport.request(
            "DELETE", self._path(), params=[("force", "true" if force else "false")]
        )

    def disconnect(self) -> None:
        """Stops delivering output to the callbacks; the process keeps running."""
        self._stopped = True
        if self._stream is not None:
            self._stream.close()


class Exec:
    """Commands in one sandbox: ``run`` to completion, ``start`` in the
    background, ``attach`` to a running one, ``list``."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    def run(
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
        """Runs a command to completion.

        ``cmd`` is a shell command line (``/bin/sh -c``) or an argv list.
        ``timeout`` (seconds, default 60) kills the whole process group and
        sets ``timed_out``. A non-zero exit is returned, not raised, unless
        ``check=True`` (then :class:`CommandExitError`).
        ``user`` runs it as a user of the sandbox: a name from its
        ``/etc/passwd`` (``base`` has ``user``, uid 1000, home ``/home/user``,
        passwordless sudo) or a numeric uid, with that user's uid, groups and
        ``HOME``; by default root.
        """
        body = command_body(cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout, user=user)
        if max_output_bytes is not None:
            body["max_output_bytes"] = max_output_bytes
        obj = self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/processes/run"),
            json_body=body,
            timeout=(timeout if timeout is not None else DEFAULT_RUN_TIMEOUT) + RUN_MARGIN,
        )
        result = ExecResult.from_json(as_object(obj, "run result"))
        if check and not result.ok:
            raise CommandExitError(result)
        return result

    def start(
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
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        on_exit: Optional[ExitCallback] = None,
    ) -> ProcessHandle:
        """Starts a command in the background and returns at once.

        The callbacks (if any) run on a background thread as output arrives;
        ``on_exit`` last. ``timeout`` (seconds) kills the process group after
        that long; by default it runs until it ends or is killed.
        ``user`` runs it as a user of the sandbox: a name from its
        ``/etc/passwd`` (``base`` has ``user``, uid 1000, home ``/home/user``,
        passwordless sudo) or a numeric uid, with that user's uid, groups and
        ``HOME``; by default root.
        """
        body: Dict[str, Any] = command_body(
            cmd, cwd=cwd, env=env, stdin=stdin, timeout=timeout, user=user
        )
        body["tty"] = tty
        if cols is not None:
            body["cols"] = cols
        if rows is not None:
            body["rows"] = rows
        obj = self._transport.json(
            "POST", sandbox_path(self._sandbox_id, "/processes"), json_body=body
        )
        info = ProcessInfo.from_json(as_object(obj, "process"))
        return ProcessHandle(
            self._transport,
            self._sandbox_id,
            info,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            on_exit=on_exit,
        )

    def attach(
        self,
        process_id: str,
        *,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        on_exit: Optional[ExitCallback] = None,
    ) -> ProcessHandle:
        """A handle on a process started earlier (by id, ``proc_…``); its
        output is replayed from the oldest byte kept."""
        obj = self._transport.json(
            "GET", sandbox_path(self._sandbox_id, f"/processes/{seg(process_id)}")
        )
        return ProcessHandle(
            self._transport,
            self._sandbox_id,
            ProcessInfo.from_json(as_object(obj, "process")),
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            on_exit=on_exit,
        )

    def list(self) -> List[ProcessInfo]:
        """The sandbox's managed processes, running and recently exited."""
        obj = as_object(
            self._transport.json("GET", sandbox_path(self._sandbox_id, "/processes")),
            "process list",
        )
        return [
            ProcessInfo.from_json(as_object(item, "process")) for item in get_list(obj, "items")
        ]

    def kill(self, process_id: str, signal: Signal = "SIGKILL") -> bool:
        """Signals a process by id; ``False`` when it had already exited
        (raises :class:`ProcessNotFoundError` for an unknown id)."""
        try:
            self._transport.request(
                "POST",
                sandbox_path(self._sandbox_id, f"/processes/{seg(process_id)}/signal"),
                json_body={"signal": signal},
            )
        except WarrenError as err:
            if err.code in ("process_not_running", "conflict"):
                return False
            raise
        return True
