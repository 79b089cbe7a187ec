"""The server's stream of sandbox state changes (``GET /v1/events``), sync
and asyncio."""

from __future__ import annotations

from types import TracebackType
from typing import AsyncIterator, Iterator, Optional, Sequence, Type, Union

from ._http import AsyncSseStream, AsyncTransport, SseStream, SyncTransport
from ._wire import Params, SseEvent
from .models import EventsLagged, SandboxEvent

Event = Union[SandboxEvent, EventsLagged]
"""One item of an event stream."""

PATH = "/v1/events"


def events_params(sandbox_ids: Optional[Sequence[str]]) -> Params:
    """``sandbox_id=`` once per id."""
    return [("sandbox_id", sandbox_id) for sandbox_id in sandbox_ids or ()]


def to_event(sse: SseEvent) -> Optional[Event]:
    """The event of one SSE message; ``None`` for kinds this SDK does not know."""
    if sse.event == "sandbox":
        return SandboxEvent.from_json(sse.json())
    if sse.event == "lagged":
        return EventsLagged.from_json(sse.json())
    return None


class SandboxEvents:
    """An open stream of sandbox state changes: ``for event in events``.

    It ends when the server closes it (it is stopping) or on :meth:`close`;
    a broken connection raises. There is no resuming: open a new one and
    list again. Use it as a context manager to close it.
    """

    def __init__(self, transport: SyncTransport, stream: SseStream) -> None:
        self._transport = transport
        self._stream = stream

    @classmethod
    def open(cls, transport: SyncTransport, sandbox_ids: Optional[Sequence[str]]) -> SandboxEvents:
        """Subscribes; returns once the server has (the stream owns ``transport``)."""
        try:
            stream = transport.events("GET", PATH, params=events_params(sandbox_ids))
        except BaseException:
            transport.close()
            raise
        return cls(transport, stream)

    def __iter__(self) -> Iterator[Event]:
        try:
            for sse in self._stream:
                event = to_event(sse)
                if event is not None:
                    yield event
        finally:
            self.close()

    def close(self) -> None:
        """Closes the stream."""
        self._stream.close()
        self._transport.close()

    def __enter__(self) -> SandboxEvents:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncSandboxEvents:
    """An open stream of sandbox state changes: ``async for event in events``.

    It ends when the server closes it (it is stopping) or on :meth:`close`;
    a broken connection raises. There is no resuming: open a new one and
    list again. Use it as an async context manager to close it.
    """

    def __init__(self, transport: AsyncTransport, stream: AsyncSseStream) -> None:
        self._transport = transport
        self._stream = stream

    @classmethod
    async def open(
        cls, transport: AsyncTransport, sandbox_ids: Optional[Sequence[str]]
    ) -> AsyncSandboxEvents:
        """Subscribes; returns once the server has (the stream owns ``transport``)."""
        try:
            stream = await transport.events("GET", PATH, params=events_params(sandbox_ids))
        except BaseException:
            await transport.close()
            raise
        return cls(transport, stream)

    async def __aiter__(self) -> AsyncIterator[Event]:
        try:
            async for sse in self._stream:
                event = to_event(sse)
                if event is not None:
                    yield event
        finally:
            await self.close()

    async def close(self) -> None:
        """Closes the stream."""
        await self._stream.close()
        await self._transport.close()

    async def __aenter__(self) -> AsyncSandboxEvents:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()
