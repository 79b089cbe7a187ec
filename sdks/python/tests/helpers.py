"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, TypeVar

import pytest

from warren import NotFoundError

T = TypeVar("T")

#: Generous bound for anything that should take well under a second.
SLOW = 30.0


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = SLOW) -> None:
    """Polls ``predicate`` until it holds; fails the test with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def async_wait_until(predicate: Callable[[], bool], what: str, timeout: float = SLOW) -> None:
    """``wait_until`` for coroutines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def unless_missing_route(call: Callable[[], T], feature: str) -> T:
    """Runs ``call``; skips the test when the server has no such route yet
    (a generic ``not_found``, as opposed to e.g. ``sandbox_not_found``)."""
    try:
        return call()
    except NotFoundError as err:
        if err.code == "not_found":
            pytest.skip(f"the server does not serve {feature} yet ({err.detail})")
        raise


async def async_unless_missing_route(call: Callable[[], Awaitable[T]], feature: str) -> T:
    """``unless_missing_route`` for coroutines."""
    try:
        return await call()
    except NotFoundError as err:
        if err.code == "not_found":
            pytest.skip(f"the server does not serve {feature} yet ({err.detail})")
        raise
