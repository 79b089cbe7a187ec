"""Shared fixtures of the E2B Python conformance suite.

The suite runs only through tests/e2b/run.sh, which starts a real Warren
server and sets E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY and E2B_DOMAIN.
Every sandbox a test makes is killed after it, whatever happened.
"""

import http.client
import os
import time
from typing import Callable, Iterator, List

import pytest
from e2b import Sandbox

for _name in ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN"):
    if not os.environ.get(_name):
        raise RuntimeError(f"{_name} is not set: run the suite through tests/e2b/run.sh")


@pytest.fixture
def made() -> Iterator[List[Sandbox]]:
    """Sandboxes to kill after the test."""
    sandboxes: List[Sandbox] = []
    yield sandboxes
    for s in sandboxes:
        try:
            s.kill()
        except Exception:
            pass


@pytest.fixture
def new(made: List[Sandbox]) -> Callable[..., Sandbox]:
    """`Sandbox.create(**kwargs)`, killed after the test."""

    def create(**kwargs) -> Sandbox:
        s = Sandbox.create(**kwargs)
        made.append(s)
        return s

    return create


@pytest.fixture(scope="module")
def sbx() -> Iterator[Sandbox]:
    """One base sandbox for a whole module."""
    s = Sandbox.create(timeout=600)
    yield s
    try:
        s.kill()
    except Exception:
        pass


def get_via_host(host: str, path: str = "/") -> "tuple[int, str]":
    """GET `http://{host}{path}` with the name resolved to 127.0.0.1 here
    (no DNS); the Host header is `host` as `get_host` gave it."""
    _, _, port = host.rpartition(":")
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        res = conn.getresponse()
        return res.status, res.read().decode()
    finally:
        conn.close()


def eventually(check: Callable[[], object], timeout: float = 15, what: str = "condition") -> object:
    """Polls `check` until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - kept for the message
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{what} not met within {timeout} s (last: {last!r})")
