"""Bad input raises the Python SDK's usual exceptions."""

import os

import pytest
from e2b import (
    AuthenticationException,
    NotFoundException,
    Sandbox,
    SandboxException,
    TimeoutException,
)

UNKNOWN = "aaaaaaaaaaaaaaaaaaaa"  # well formed, never issued


def test_unknown_sandbox():
    with pytest.raises(NotFoundException):
        Sandbox.connect(UNKNOWN)
    with pytest.raises(NotFoundException):
        Sandbox.get_info(UNKNOWN)
    with pytest.raises(NotFoundException):
        Sandbox.set_timeout(UNKNOWN, 60)
    assert Sandbox.kill(UNKNOWN) is False


def test_killed_sandbox():
    s = Sandbox.create()
    s.kill()
    with pytest.raises(NotFoundException):
        Sandbox.connect(s.sandbox_id)
    with pytest.raises(SandboxException):
        s.commands.run("true")


def test_bad_key():
    with pytest.raises(AuthenticationException):
        Sandbox.create(api_key="e2b_" + "ab" * 32)


def test_unknown_template():
    with pytest.raises(SandboxException):
        Sandbox.create(template="no-such-template-here")


def test_command_timeout(new):
    s = new()
    with pytest.raises(TimeoutException):
        s.commands.run("sleep 20", timeout=1)


def test_another_tenant_sees_nothing(new):
    s = new()
    other = os.environ["WARREN_E2B_OTHER_API_KEY"]
    with pytest.raises(NotFoundException):
        Sandbox.connect(s.sandbox_id, api_key=other)
    assert Sandbox.kill(s.sandbox_id, api_key=other) is False
    assert s.sandbox_id not in [x.sandbox_id for x in Sandbox.list(api_key=other).next_items()]
    assert s.is_running()


def test_killed_sandbox_is_not_running():
    s = Sandbox.create()
    s.kill()
    assert s.is_running() is False
