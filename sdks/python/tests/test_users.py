"""Users and key formats against a real server: commands, background
processes and terminals as ``base``'s ``user`` (its uid, home and sudo), and
API keys in E2B's form (sync and async)."""

from __future__ import annotations

import re
import uuid

import pytest
from conftest import Server
from helpers import SLOW

from warren import Admin, AsyncAdmin, AsyncSandbox, InvalidRequestError, Sandbox


def test_run_start_and_pty_as_a_user(shared_sandbox: Sandbox) -> None:
    result = shared_sandbox.exec.run(
        "id -un; echo $HOME; sudo -n id -u", user="user", cwd="/home/user"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (0, "user\n/home/user\n0\n", "")
    assert shared_sandbox.exec.run("id -u").stdout == "0\n", "root by default"
    with pytest.raises(InvalidRequestError):
        shared_sandbox.exec.run("true", user="nobody-here")

    handle = shared_sandbox.exec.start(["id", "-u"], user="1000")
    assert handle.wait(timeout=SLOW).stdout == "1000\n"

    terminal = shared_sandbox.pty.create(
        cmd='echo "i am $(id -un) in $PWD"; exit 4', user="user", cwd="/home/user"
    )
    output = b"".join(terminal)
    assert terminal.wait(timeout=SLOW).exit_code == 4
    assert b"i am user in /home/user" in output, output


async def test_async_run_and_pty_as_a_user(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        result = await sbx.exec.run("whoami", user="user")
        assert result.stdout == "user\n"
        handle = await sbx.exec.start("id -g", user="user")
        assert (await handle.wait(timeout=SLOW)).stdout == "1000\n"
        terminal = await sbx.pty.create(cmd="id -un", user="user")
        output = b"".join([chunk async for chunk in terminal])
        assert (await terminal.wait(timeout=SLOW)).exit_code == 0
        assert b"user" in output, output


def test_keys_in_e2b_form(base_ready: Server) -> None:
    with Admin() as admin:
        tenant = admin.create_tenant(f"e2b-{uuid.uuid4().hex[:8]}")
        e2b = admin.create_key(tenant.tenant_id, format="e2b")
        assert e2b.key is not None and re.fullmatch(r"e2b_[0-9a-f]{64}", e2b.key), e2b
        warren = admin.create_key(tenant.tenant_id, format="warren")
        assert warren.key is not None and warren.key.startswith("wsk_")
        plain = admin.create_key(tenant.tenant_id)
        assert plain.key is not None and plain.key.startswith("wsk_")
        with Sandbox.create(api_key=e2b.key) as sbx:
            assert sbx.exec.run("echo ok").stdout == "ok\n"
            assert sbx.get_info().tenant_id == tenant.tenant_id
        with pytest.raises(InvalidRequestError):
            admin.create_key(tenant.tenant_id, format="nope")  # type: ignore[arg-type]


async def test_async_keys_in_e2b_form(base_ready: Server) -> None:
    async with AsyncAdmin() as admin:
        tenant = await admin.create_tenant(f"e2b-a-{uuid.uuid4().hex[:8]}")
        e2b = await admin.create_key(tenant.tenant_id, format="e2b")
        assert e2b.key is not None and re.fullmatch(r"e2b_[0-9a-f]{64}", e2b.key), e2b
