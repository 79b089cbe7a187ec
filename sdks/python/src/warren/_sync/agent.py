"""``sandbox.agent``: coding-agent sessions (Claude Code, Codex, opencode and
the built-in mock) in a sandbox (sync)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence

from .._config import sandbox_path, seg
from .._http import SseStream, SyncTransport
from .._sessions import (
    Answer,
    events_params,
    message_body,
    respond_route,
    session_path,
    start_body,
)
from .._wire import RECONNECTS
from ..errors import NetworkError, WarrenError, WarrenTimeoutError
from ..models import AgentEvent, AgentInfo, InstallProgress, SessionInfo, as_object, get_list

EventCallback = Callable[[AgentEvent], None]
"""Receives each event of a session, in order, exactly once."""
ProgressCallback = Callable[[InstallProgress], None]
"""Receives each step of an installation."""
POLL_INTERVAL = 0.2
"""Seconds between looks at a session that ``wait(timeout=...)`` waits for."""


class AgentSession:
    """A coding-agent session, started with ``agent.start`` or found with
    ``agent.attach``.

    Iterate ``events()`` for its events (replayed, then live, until it
    ends), or give ``on_event`` to have a background thread deliver them.
    ``respond()`` answers permission requests and questions,
    ``send_prompt()`` starts another turn, ``wait()`` blocks until the
    session ends, ``kill()`` ends it.
    """

    def __init__(
        self,
        transport: SyncTransport,
        sandbox_id: str,
        info: SessionInfo,
        *,
        on_event: Optional[EventCallback] = None,
        on_scrollback_end: Optional[Callable[[], None]] = None,
        after: int = 0,
    ) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id
        self.info = info
        """The session as last fetched (``refresh()`` updates it)."""
        self._streams: List[SseStream] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._pump_error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        if on_event is not None or on_scrollback_end is not None:
            self._thread = threading.Thread(
                target=self._pump,
                args=(on_event, on_scrollback_end, after, info.last_sequence),
                name=f"warren-{info.session_id}",
                daemon=True,
            )
            self._thread.start()

    @property
    def id(self) -> str:
        """``ses_…``."""
        return self.info.session_id

    @property
    def session_id(self) -> str:
        """``ses_…`` (same as ``id``)."""
        return self.info.session_id

    def __repr__(self) -> str:
        return f"AgentSession(id={self.id!r}, agent={self.info.agent!r}, state={self.info.state!r})"

    def _path(self, rest: str = "") -> str:
        return session_path(self._sandbox_id, self.id, rest)

    def _follow(self, after: int, include_raw: bool) -> Iterator[AgentEvent]:
        """Events after ``after`` until the session has ended, reopening a
        broken stream after the last sequence delivered."""
        cursor = after
        failures = 0
        ended = False
        while not self._stopped:
            clean = False
            try:
                stream = self._transport.events(
                    "GET", self._path("/events"), params=events_params(cursor, include_raw)
                )
                with self._lock:
                    self._streams.append(stream)
                try:
                    for sse in stream:
                        if not sse.data:
                            continue
                        event = AgentEvent.from_json(sse.json())
                        if event.sequence <= cursor:
                            continue
                        cursor = event.sequence
                        failures = 0
                        if event.type == "session.ended":
                            ended = True
                        yield event
                    clean = True
                finally:
                    stream.close()
                    with self._lock:
                        self._streams.remove(stream)
                # The server ends the stream once the session has ended and
                # every event was sent; any other end is a dropped connection.
                if ended:
                    return
                if clean and self._over(cursor):
                    return
                error: WarrenError = NetworkError(
                    "network_error", None, f"event stream of {self.id} ended early"
                )
            except (NetworkError, WarrenTimeoutError) as err:
                error = err
            if self._stopped:
                return
            failures += 1
            if failures > RECONNECTS:
                raise error
            time.sleep(min(2.0, 0.1 * 2**failures))

    def _over(self, cursor: int) -> bool:
        """Whether the session has ended with no event after ``cursor``."""
        try:
            info = self.refresh()
        except WarrenError:
            return False
        return info.ended and info.last_sequence <= cursor

    def events(self, *, after: int = 0, include_raw: bool = False) -> Iterator[AgentEvent]:
        """The events after ``after`` (default: all), replayed then live,
        until the session has ended. Each call opens its own stream."""
        return self._follow(after, include_raw)

    def __iter__(self) -> Iterator[AgentEvent]:
        """Same as ``events()``."""
        return self.events()

    def _pump(
        self,
        on_event: Optional[EventCallback],
        on_scrollback_end: Optional[Callable[[], None]],
        after: int,
        scrollback_end: int,
    ) -> None:
        scrollback = on_scrollback_end

        def reached(sequence: int) -> None:
            nonlocal scrollback
            if scrollback is not None and sequence >= scrollback_end:
                callback, scrollback = scrollback, None
                callback()

        try:
            reached(after)
            for event in self._follow(after, False):
                if on_event is not None:
                    on_event(event)
                reached(event.sequence)
        except BaseException as err:  # noqa: BLE001 - handed to wait()
            if not self._stopped:
                self._pump_error = err

    def wait(self, timeout: Optional[float] = None) -> SessionInfo:
        """Blocks until the session has ended (and, with ``on_event``, every
        event was delivered); returns the ended session. Raises
        :class:`WarrenTimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise WarrenTimeoutError("timeout", None, f"session {self.id} still running")
            if self._pump_error is not None:
                raise self._pump_error
        elif deadline is None:
            for _ in self._follow(self.info.last_sequence, False):
                pass
        else:
            while not self.refresh().ended:
                if time.monotonic() > deadline:
                    raise WarrenTimeoutError("timeout", None, f"session {self.id} still running")
                time.sleep(POLL_INTERVAL)
        return self.refresh()

    def refresh(self) -> SessionInfo:
        """Fetches the session's current state."""
        self.info = SessionInfo.from_json(
            as_object(self._transport.json("GET", self._path()), "session")
        )
        return self.info

    def send_prompt(self, text: str, *, env: Optional[Mapping[str, str]] = None) -> SessionInfo:
        """Sends a follow-up prompt; it runs after the current turn.
        (:class:`SessionEndedError` once the session has ended.)"""
        obj = self._transport.json(
            "POST", self._path("/messages"), json_body=message_body(text, env)
        )
        self.info = SessionInfo.from_json(as_object(obj, "session"))
        return self.info

    def interrupt(self) -> None:
        """Stops the current turn; the session takes the next prompt."""
        self._transport.request("POST", self._path("/interrupt"))

    def respond(self, request_id: str, answer: Answer) -> None:
        """Answers a pending request by its id: a permission (``perm_…``)
        with ``"once"``, ``"always"`` or ``"reject"``; a question (``q_…``)
        with a list of answers, or ``"reject"``."""
        route, body = respond_route(request_id, answer)
        self._transport.request("POST", self._path(route), json_body=body)

    def kill(self) -> SessionInfo:
        """Kills the agent and ends the session (reason ``killed``); its
        events and transcript stay readable."""
        obj = self._transport.json("DELETE", self._path())
        self.info = SessionInfo.from_json(as_object(obj, "session"))
        return self.info

    def transcript(self) -> bytes:
        """The agent's native session file, gzip-compressed (upload it with
        ``agent.upload_transcript`` and pass the id as ``resume``)."""
        return self._transport.request("GET", self._path("/transcript")).content

    def close(self) -> None:
        """Stops following the session (the callbacks, iterators); the
        session goes on. Attach again with ``agent.attach``."""
        self._stopped = True
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()


class Agent:
    """Coding-agent sessions in one sandbox: ``start``, ``attach``, ``list``,
    ``get``; the ``agents`` there, ``install``, ``upload_transcript``."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    def agents(self) -> List[AgentInfo]:
        """The agents Warren knows, whether each is installed here and what
        each supports."""
        obj = as_object(
            self._transport.json("GET", sandbox_path(self._sandbox_id, "/agents")), "agents"
        )
        return [AgentInfo.from_json(as_object(i, "agent")) for i in get_list(obj, "items")]

    def install(self, agent: str, *, on_progress: Optional[ProgressCallback] = None) -> AgentInfo:
        """Installs an agent in the sandbox (from npm: the sandbox needs npm
        and network access) and returns it; raises :class:`WarrenError`
        ``install_failed`` when that fails."""
        stream = self._transport.events(
            "POST", sandbox_path(self._sandbox_id, f"/agents/{seg(agent)}/install")
        )
        try:
            for sse in stream:
                if sse.event != "install" or not sse.data:
                    continue
                progress = InstallProgress.from_json(sse.json())
                if on_progress is not None:
                    on_progress(progress)
                if progress.phase == "error":
                    raise WarrenError(
                        "install_failed", None, progress.message or f"installing {agent} failed"
                    )
                if progress.phase == "done":
                    if progress.agent is not None:
                        return progress.agent
                    return next(a for a in self.agents() if a.agent == agent)
        finally:
            stream.close()
        raise NetworkError("network_error", None, f"the installation of {agent} ended early")

    def start(
        self,
        agent: str,
        prompt: Optional[str] = None,
        *,
        model: Optional[str] = None,
        system_prompt: Optional[str] = None,
        allowed_tools: Optional[Sequence[str]] = None,
        permission_mode: Optional[str] = None,
        max_turns: Optional[int] = None,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        mcp_servers: Optional[Mapping[str, Any]] = None,
        resume: Optional[str] = None,
        request_timeout: Optional[int] = None,
        on_event: Optional[EventCallback] = None,
    ) -> AgentSession:
        """Starts a session of ``agent`` (``claude``, ``codex``, ``opencode``
        or ``mock``), with ``prompt`` as its first turn if given.

        Args:
            permission_mode: ``default`` (ask), ``accept_edits``, ``plan`` or ``bypass``.
            allowed_tools: Tools allowed without asking.
            cwd: Working directory (default: the template's workdir).
            env: Environment of the agent (API keys, say); never logged or returned.
            mcp_servers: MCP servers by name, in the agent's format.
            resume: A native session id (``native_session_id``, or from
                ``upload_transcript``) to continue.
            request_timeout: Seconds a permission or question waits for an
                answer before it counts as rejected.
            on_event: Called on a background thread with every event, from the first.
        """
        body = start_body(
            agent,
            prompt=prompt,
            model=model,
            system_prompt=system_prompt,
            allowed_tools=allowed_tools,
            permission_mode=permission_mode,
            max_turns=max_turns,
            cwd=cwd,
            env=env,
            mcp_servers=mcp_servers,
            resume=resume,
            request_timeout=request_timeout,
        )
        obj = self._transport.json(
            "POST", sandbox_path(self._sandbox_id, "/sessions"), json_body=body
        )
        info = SessionInfo.from_json(as_object(obj, "session"))
        return AgentSession(self._transport, self._sandbox_id, info, on_event=on_event)

    def attach(
        self,
        session_id: str,
        *,
        after: int = 0,
        on_event: Optional[EventCallback] = None,
        on_scrollback_end: Optional[Callable[[], None]] = None,
    ) -> AgentSession:
        """A handle on a session started earlier. With ``on_event``, its
        events after ``after`` (default: all) are delivered on a background
        thread; ``on_scrollback_end`` is called once the events that existed
        at attach time were."""
        return AgentSession(
            self._transport,
            self._sandbox_id,
            self.get(session_id),
            on_event=on_event,
            on_scrollback_end=on_scrollback_end,
            after=after,
        )

    def list(self) -> List[SessionInfo]:
        """The sessions on the sandbox's disk, oldest first."""
        obj = as_object(
            self._transport.json("GET", sandbox_path(self._sandbox_id, "/sessions")), "sessions"
        )
        return [SessionInfo.from_json(as_object(i, "session")) for i in get_list(obj, "items")]

    def get(self, session_id: str) -> SessionInfo:
        """One session (:class:`SessionNotFoundError` when there is none)."""
        obj = self._transport.json("GET", session_path(self._sandbox_id, session_id))
        return SessionInfo.from_json(as_object(obj, "session"))

    def upload_transcript(self, agent: str, data: bytes, *, cwd: Optional[str] = None) -> str:
        """Stores a gzip transcript (from ``session.transcript()``, possibly
        of another sandbox); returns the native session id to ``resume``."""
        params = [("agent", agent)]
        if cwd is not None:
            params.append(("cwd", cwd))
        obj = as_object(
            self._transport.json(
                "POST",
                sandbox_path(self._sandbox_id, "/transcripts"),
                params=params,
                content=bytes(data),
                headers={"Content-Type": "application/gzip"},
            ),
            "transcript",
        )
        value = obj.get("native_session_id")
        if not isinstance(value, str):
            raise WarrenError("invalid_response", 201, "no native_session_id in the answer")
        return value
