"""The pure parts: SSE parsing, time parsing, output bookkeeping, error mapping."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from warren import (
    EditConflictError,
    NotFoundError,
    ProcessOutput,
    RateLimitError,
    SandboxNotFoundError,
    ServerError,
    WarrenError,
)
from warren._wire import OutputCollector, SseParser, command_body, list_params
from warren.errors import error_from_response
from warren.models import parse_time


def test_sse_parser_follows_the_whatwg_rules() -> None:
    parser = SseParser()
    lines = [
        ":keep-alive",
        "",
        "event: output",
        "id: 7",
        'data: {"a":',
        "data:1}",
        "",
        "data: x",
        "",
    ]
    events = [e for e in (parser.feed(line) for line in lines) if e is not None]
    assert [(e.event, e.data, e.id) for e in events] == [
        ("output", '{"a":\n1}', "7"),
        ("message", "x", "7"),
    ]


def test_parse_time_handles_z_offsets_and_nanoseconds() -> None:
    expected = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert parse_time("2026-01-02T03:04:05.123456789Z") == expected
    assert parse_time("2026-01-02T05:04:05.123456+02:00") == expected
    assert parse_time("2026-01-02T03:04:05Z").microsecond == 0
    with pytest.raises(WarrenError):
        parse_time("yesterday")


def test_collector_joins_split_characters_and_skips_replays() -> None:
    collector = OutputCollector()
    snowman = "☃".encode()
    assert collector.add(ProcessOutput("stdout", snowman[:1], 0)) == ""
    assert collector.add(ProcessOutput("stdout", snowman[1:], 1)) == "☃"
    assert collector.add(ProcessOutput("stdout", snowman, 0)) == ""  # replayed
    assert collector.add(ProcessOutput("stderr", b"e", 3)) == "e"
    assert (collector.text("stdout"), collector.text("stderr"), collector.cursor) == ("☃", "e", 4)


def test_bodies_and_params() -> None:
    assert command_body("ls -l", timeout=1.5) == {"cmd": "ls -l", "timeout_ms": 1500}
    assert command_body(["ls", "-l"], env={"A": "b"}) == {"argv": ["ls", "-l"], "env": {"A": "b"}}
    with pytest.raises(WarrenError):
        command_body([])
    assert list_params(
        state="running", labels={"a": "b=c"}, metadata={"k": "v"}, tenant=None, limit=5
    ) == [
        ("state", "running"),
        ("label", "a=b=c"),
        ("metadata.k", "v"),
        ("limit", "5"),
    ]


def _problem(code: str, status: int) -> bytes:
    return json.dumps(
        {"type": "t", "title": "T", "status": status, "detail": "d", "code": code}
    ).encode()


def test_errors_map_by_code_then_status() -> None:
    assert isinstance(
        error_from_response(404, _problem("sandbox_not_found", 404)), SandboxNotFoundError
    )
    assert isinstance(error_from_response(404, _problem("file_not_found", 404)), NotFoundError)
    assert isinstance(error_from_response(409, _problem("edit_conflict", 409)), EditConflictError)
    assert isinstance(error_from_response(429, _problem("quota_exceeded", 429)), RateLimitError)
    plain = error_from_response(502, b"<html>bad gateway</html>", "Bad Gateway")
    assert isinstance(plain, ServerError)
    assert (plain.code, plain.status) == ("unavailable", 502)
    unknown = error_from_response(418, b"", "teapot")
    assert (type(unknown), unknown.code, unknown.detail) == (WarrenError, "http_418", "teapot")


def test_public_names_all_exist() -> None:
    import warren

    assert [name for name in warren.__all__ if not hasattr(warren, name)] == []
