"""HTTP transports over httpx: one sync, one async, both mapping every failure
to a :class:`~warren.errors.WarrenError` (problem responses by their code,
connection failures to :class:`NetworkError`, client-side timeouts to
:class:`WarrenTimeoutError`)."""

from __future__ import annotations

import contextlib
import json
from typing import Any, AsyncIterator, Iterator, List, Mapping, Optional, Tuple, Union

import httpx

from ._config import ConnectionConfig
from ._wire import SseEvent, SseParser
from .errors import NetworkError, ProtocolError, WarrenTimeoutError, error_from_response

Query = Optional[List[Tuple[str, str]]]
Body = Union[bytes, Iterator[bytes], AsyncIterator[bytes], None]

STREAM_READ_TIMEOUT = 90.0
"""Longest silence on an event stream before it counts as broken (the server
sends a keep-alive every 15 s)."""

CONNECT_TIMEOUT = 15.0


def _timeout(read: float) -> httpx.Timeout:
    return httpx.Timeout(read, connect=min(CONNECT_TIMEOUT, read))


@contextlib.contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Turns httpx exceptions raised inside into SDK exceptions."""
    try:
        yield
    except httpx.TimeoutException as err:
        raise WarrenTimeoutError(
            "timeout", None, f"{what}: timed out ({type(err).__name__})"
        ) from err
    except httpx.TransportError as err:
        raise NetworkError("network_error", None, f"{what}: {type(err).__name__}: {err}") from err


def parse_json(response: httpx.Response) -> Any:
    """The response body as JSON, or a :class:`ProtocolError`."""
    try:
        return json.loads(response.content)
    except ValueError as err:
        raise ProtocolError(
            "invalid_response",
            response.status_code,
            f"{response.request.method} {response.request.url.path}: body is not JSON",
        ) from err


def _query(params: Query) -> Optional[httpx.QueryParams]:
    return httpx.QueryParams(tuple(params)) if params else None


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRIES = 2
"""Extra attempts of an idempotent request whose connection broke: a pooled
keep-alive connection the server closed just as it was reused."""


def _retryable(err: NetworkError, method: str, content: Body, attempt: int) -> bool:
    broken = isinstance(
        err.__cause__, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
    )
    replayable = content is None or isinstance(content, bytes)
    return broken and replayable and method in IDEMPOTENT and attempt <= RETRIES


def _describe(method: str, path: str) -> str:
    return f"{method} {path}"


class SyncTransport:
    """Blocking HTTP to one Warren server."""

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self._client = httpx.Client(
            base_url=config.api_url,
            headers=config.headers(),
            timeout=_timeout(config.request_timeout),
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Query = None,
        content: Body = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> httpx.Response:
        """Sends a request; raises the mapped error for a 4xx/5xx answer."""
        attempt = 0
        while True:
            try:
                with mapped_errors(_describe(method, path)):
                    response = self._client.request(
                        method,
                        path,
                        json=json_body,
                        params=_query(params),
                        content=content,
                        headers=headers,
                        timeout=_timeout(timeout)
                        if timeout is not None
                        else httpx.USE_CLIENT_DEFAULT,
                    )
                break
            except NetworkError as err:
                attempt += 1
                if not _retryable(err, method, content, attempt):
                    raise
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.content, response.reason_phrase
            )
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Sends a request and parses its JSON answer."""
        return parse_json(self.request(method, path, **kwargs))

    def open_stream(
        self,
        method: str,
        path: str,
        *,
        params: Query = None,
        headers: Optional[Mapping[str, str]] = None,
        read_timeout: Optional[float] = STREAM_READ_TIMEOUT,
    ) -> httpx.Response:
        """Sends a request whose answer is read incrementally; the caller
        closes the response."""
        request = self._client.build_request(
            method,
            path,
            params=_query(params),
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT),
        )
        with mapped_errors(_describe(method, path)):
            response = self._client.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    body = response.read()
                finally:
                    response.close()
                raise error_from_response(response.status_code, body, response.reason_phrase)
        return response

    def events(self, method: str, path: str, *, params: Query = None) -> SseStream:
        """Opens a ``text/event-stream`` route."""
        response = self.open_stream(
            method, path, params=params, headers={"Accept": "text/event-stream"}
        )
        return SseStream(response, _describe(method, path))

    def close(self) -> None:
        """Closes the connection pool."""
        self._client.close()


class SseStream:
    """Events of an open server-sent-events response (sync)."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        self.response = response
        self._what = what

    def __iter__(self) -> Iterator[SseEvent]:
        parser = SseParser()
        with mapped_errors(self._what):
            for line in self.response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    def close(self) -> None:
        """Closes the response (stops the stream)."""
        self.response.close()


class AsyncTransport:
    """Non-blocking HTTP to one Warren server."""

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config
        self._client = httpx.AsyncClient(
            base_url=config.api_url,
            headers=config.headers(),
            timeout=_timeout(config.request_timeout),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Query = None,
        content: Body = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> httpx.Response:
        """Sends a request; raises the mapped error for a 4xx/5xx answer."""
        attempt = 0
        while True:
            try:
                with mapped_errors(_describe(method, path)):
                    response = await self._client.request(
                        method,
                        path,
                        json=json_body,
                        params=_query(params),
                        content=content,
                        headers=headers,
                        timeout=_timeout(timeout)
                        if timeout is not None
                        else httpx.USE_CLIENT_DEFAULT,
                    )
                break
            except NetworkError as err:
                attempt += 1
                if not _retryable(err, method, content, attempt):
                    raise
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code, response.content, response.reason_phrase
            )
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Sends a request and parses its JSON answer."""
        return parse_json(await self.request(method, path, **kwargs))

    async def open_stream(
        self,
        method: str,
        path: str,
        *,
        params: Query = None,
        headers: Optional[Mapping[str, str]] = None,
        read_timeout: Optional[float] = STREAM_READ_TIMEOUT,
    ) -> httpx.Response:
        """Sends a request whose answer is read incrementally; the caller
        closes the response."""
        request = self._client.build_request(
            method,
            path,
            params=_query(params),
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT),
        )
        with mapped_errors(_describe(method, path)):
            response = await self._client.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
                raise error_from_response(response.status_code, body, response.reason_phrase)
        return response

    async def events(self, method: str, path: str, *, params: Query = None) -> AsyncSseStream:
        """Opens a ``text/event-stream`` route."""
        response = await self.open_stream(
            method, path, params=params, headers={"Accept": "text/event-stream"}
        )
        return AsyncSseStream(response, _describe(method, path))

    async def close(self) -> None:
        """Closes the connection pool."""
        await self._client.aclose()


class AsyncSseStream:
    """Events of an open server-sent-events response (async)."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        self.response = response
        self._what = what

    async def __aiter__(self) -> AsyncIterator[SseEvent]:
        parser = SseParser()
        with mapped_errors(self._what):
            async for line in self.response.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    async def close(self) -> None:
        """Closes the response (stops the stream)."""
        await self.response.aclose()
