"""``sandbox.agent``: coding-agent sessions (Claude Code, Codex, opencode and
the built-in mock) in a sandbox (asyncio)."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, AsyncIterator, Callable, List, Mapping, Optional, Sequence

from .._config import sandbox_path, seg
from .._http import AsyncSseStream, AsyncTransport
from .._sessions import (
    Answer,
    events_params,
    message_body,
    respond_route,
    session_path,
    start_body,
)
from .._sync.agent import POLL_INTERVAL
from .._wire import RECONNECTS
from ..errors import NetworkError, WarrenError, WarrenTimeoutError
from ..models import AgentEvent, AgentInfo, InstallProgress, SessionInfo, as_object, get_list
from .exec import MaybeAwaitable, call_back

AsyncEventCallback = Callable[[AgentEvent], MaybeAwaitable[None]]
"""Receives each event of a session (plain or ``async`` function)."""
AsyncProgressCallback = Callable[[InstallProgress], MaybeAwaitable[None]]
"""Receives each step of an installation (plain or ``async`` function)."""
ScrollbackCallback = Callable[[], MaybeAwaitable[None]]
"""Called once the replayed events were delivered (plain or ``async`` function)."""


def _retrieve(task: asyncio.Task[None]) -> None:
    """Marks a task's exception as retrieved."""
    if not task.cancelled():
        task.exception()


class AsyncAgentSession:
    """A coding-agent session (see :class:`warren.AgentSession`):
    ``async for event in session.events()``, or ``on_event`` delivered by a
    background task; ``await session.wait()`` until it ends."""

    def __init__(
        self,
        transport: AsyncTransport,
        sandbox_id: str,
        info: SessionInfo,
        *,
        on_event: Optional[AsyncEventCallback] = None,
        on_scrollback_end: Optional[ScrollbackCallback] = None,
        after: int = 0,
    ) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id
        self.info = info
        """The session as last fetched (``refresh()`` updates it)."""
        self._streams: List[AsyncSseStream] = []
        self._stopped = False
        self._task: Optional[asyncio.Task[None]] = None
        if on_event is not None or on_scrollback_end is not None:
            self._task = asyncio.ensure_future(
                self._pump(on_event, on_scrollback_end, after, info.last_sequence)
            )
            # wait() re-raises what the task raised; nobody waiting is no error.
            self._task.add_done_callback(_retrieve)

    @property
    def id(self) -> str:
        """``ses_…``."""
        return self.info.session_id

    @property
    def session_id(self) -> str:
        """``ses_…`` (same as ``id``)."""
        return self.info.session_id

    def __repr__(self) -> str:
        return (
            f"AsyncAgentSession(id={self.id!r}, agent={self.info.agent!r}, "
            f"state={self.info.state!r})"
        )

    def _path(self, rest: str = "") -> str:
        return session_path(self._sandbox_id, self.id, rest)

    async def _follow(self, after: int, include_raw: bool) -> AsyncIterator[AgentEvent]:
        """Events after ``after`` until the session has ended, reopening a
        broken stream after the last sequence delivered."""
        cursor = after
        failures = 0
        ended = False
        while not self._stopped:
            clean = False
            try:
                stream = await self._transport.events(
                    "GET", self._path("/events"), params=events_params(cursor, include_raw)
                )
                self._streams.append(stream)
                try:
                    async for sse in stream:
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
                    await stream.close()
                    self._streams.remove(stream)
                if ended:
                    return
                if clean and await self._over(cursor):
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
            await asyncio.sleep(min(2.0, 0.1 * 2**failures))

    async def _over(self, cursor: int) -> bool:
        """Whether the session has ended with no event after ``cursor``."""
        try:
            info = await self.refresh()
        except WarrenError:
            return False
        return info.ended and info.last_sequence <= cursor

    def events(self, *, after: int = 0, include_raw: bool = False) -> AsyncIterator[AgentEvent]:
        """The events after ``after`` (default: all), replayed then live,
        until the session has ended. Each call opens its own stream."""
        return self._follow(after, include_raw)

    def __aiter__(self) -> AsyncIterator[AgentEvent]:
        """Same as ``events()``."""
        return self.events()

    async def _pump(
        self,
        on_event: Optional[AsyncEventCallback],
        on_scrollback_end: Optional[ScrollbackCallback],
        after: int,
        scrollback_end: int,
    ) -> None:
        scrollback = on_scrollback_end

        async def reached(sequence: int) -> None:
            nonlocal scrollback
            if scrollback is not None and sequence >= scrollback_end:
                callback, scrollback = scrollback, None
                result = callback()
                if inspect.isawaitable(result):
                    await result

        await reached(after)
        async for event in self._follow(after, False):
            if on_event is not None:
                await call_back(on_event, event)
            await reached(event.sequence)

    async def wait(self, timeout: Optional[float] = None) -> SessionInfo:
        """Waits until the session has ended (and, with ``on_event``, every
        event was delivered); returns the ended session. Raises
        :class:`WarrenTimeoutError` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                raise WarrenTimeoutError(
                    "timeout", None, f"session {self.id} still running"
                ) from None
        elif deadline is None:
            async for _ in self._follow(self.info.last_sequence, False):
                pass
        else:
            while not (await self.refresh()).ended:
                if time.monotonic() > deadline:
                    raise WarrenTimeoutError("timeout", None, f"session {self.id} still running")
                await asyncio.sleep(POLL_INTERVAL)
        return await self.refresh()

    async def refresh(self) -> SessionInfo:
        """Fetches the session's current state."""
        obj = await self._transport.json("GET", self._path())
        self.info = SessionInfo.from_json(as_object(obj, "session"))
        return self.info

    async def send_prompt(
        self, text: str, *, env: Optional[Mapping[str, str]] = None
    ) -> SessionInfo:
        """Sends a follow-up prompt; it runs after the current turn."""
        obj = await self._transport.json(
            "POST", self._path("/messages"), json_body=message_body(text, env)
        )
        self.info = SessionInfo.from_json(as_object(obj, "session"))
        return self.info

    async def interrupt(self) -> None:
        """Stops the current turn; the session takes the next prompt."""
        await self._transport.request("POST", self._path("/interrupt"))

    async def respond(self, request_id: str, answer: Answer) -> None:
        """Answers a permission (``perm_…``: ``"once"``, ``"always"``,
        ``"reject"``) or a question (``q_…``: a list of answers, or ``"reject"``)."""
        route, body = respond_route(request_id, answer)
        await self._transport.request("POST", self._path(route), json_body=body)

    async def kill(self) -> SessionInfo:
        """Kills the agent and ends the session (reason ``killed``)."""
        obj = await self._transport.json("DELETE", self._path())
        self.info = SessionInfo.from_json(as_object(obj, "session"))
        return self.info

    async def transcript(self) -> bytes:
        """The agent's native session file, gzip-compressed."""
        return (await self._transport.request("GET", self._path("/transcript"))).content

    async def close(self) -> None:
        """Stops following the session; the session goes on."""
        self._stopped = True
        for stream in list(self._streams):
            await stream.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()


class AsyncAgent:
    """Coding-agent sessions in one sandbox (see :class:`warren.Agent`)."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    async def agents(self) -> List[AgentInfo]:
        """The agents Warren knows, whether each is installed here and what
        each supports."""
        obj = as_object(
            await self._transport.json("GET", sandbox_path(self._sandbox_id, "/agents")),
            "agents",
        )
        return [AgentInfo.from_json(as_object(i, "agent")) for i in get_list(obj, "items")]

    async def install(
        self, agent: str, *, on_progress: Optional[AsyncProgressCallback] = None
    ) -> AgentInfo:
        """Installs an agent in the sandbox (from npm) and returns it; raises
        :class:`WarrenError` ``install_failed`` when that fails."""
        stream = await self._transport.events(
            "POST", sandbox_path(self._sandbox_id, f"/agents/{seg(agent)}/install")
        )
        try:
            async for sse in stream:
                if sse.event != "install" or not sse.data:
                    continue
                progress = InstallProgress.from_json(sse.json())
                if on_progress is not None:
                    await call_back(on_progress, progress)
                if progress.phase == "error":
                    raise WarrenError(
                        "install_failed", None, progress.message or f"installing {agent} failed"
                    )
                if progress.phase == "done":
                    if progress.agent is not None:
                        return progress.agent
                    return next(a for a in await self.agents() if a.agent == agent)
        finally:
            await stream.close()
        raise NetworkError("network_error", None, f"the installation of {agent} ended early")

    async def start(
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
        on_event: Optional[AsyncEventCallback] = None,
    ) -> AsyncAgentSession:
        """Starts a session (see :meth:`warren.Agent.start`); ``on_event``
        (plain or ``async``) runs on a background task."""
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
        obj = await self._transport.json(
            "POST", sandbox_path(self._sandbox_id, "/sessions"), json_body=body
        )
        info = SessionInfo.from_json(as_object(obj, "session"))
        return AsyncAgentSession(self._transport, self._sandbox_id, info, on_event=on_event)

    async def attach(
        self,
        session_id: str,
        *,
        after: int = 0,
        on_event: Optional[AsyncEventCallback] = None,
        on_scrollback_end: Optional[ScrollbackCallback] = None,
    ) -> AsyncAgentSession:
        """A handle on a session started earlier (see :meth:`warren.Agent.attach`)."""
        return AsyncAgentSession(
            self._transport,
            self._sandbox_id,
            await self.get(session_id),
            on_event=on_event,
            on_scrollback_end=on_scrollback_end,
            after=after,
        )

    async def list(self) -> List[SessionInfo]:
        """The sessions on the sandbox's disk, oldest first."""
        obj = as_object(
            await self._transport.json("GET", sandbox_path(self._sandbox_id, "/sessions")),
            "sessions",
        )
        return [SessionInfo.from_json(as_object(i, "session")) for i in get_list(obj, "items")]

    async def get(self, session_id: str) -> SessionInfo:
        """One session (:class:`SessionNotFoundError` when there is none)."""
        obj = await self._transport.json("GET", session_path(self._sandbox_id, session_id))
        return SessionInfo.from_json(as_object(obj, "session"))

    async def upload_transcript(self, agent: str, data: bytes, *, cwd: Optional[str] = None) -> str:
        """Stores a gzip transcript; returns the native session id to ``resume``."""
        params = [("agent", agent)]
        if cwd is not None:
            params.append(("cwd", cwd))
        obj = as_object(
            await self._transport.json(
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
