"""Network policy and preview URLs (sync and async) against a real server.
Skipped while the server does not support them."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import Server
from helpers import SLOW, async_unless_missing_route, unless_missing_route

from warren import AsyncSandbox, InvalidRequestError, NotFoundError, Preview, Sandbox


def _get_when_up(url: str, headers: dict) -> httpx.Response:  # type: ignore[type-arg]
    deadline = time.monotonic() + SLOW
    while True:
        response = httpx.get(url, headers=headers, timeout=10)
        if response.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_network_policy_on_create_and_update(base_ready: Server) -> None:
    # Private ranges are closed to tenants unless the admin opens them.
    with pytest.raises(InvalidRequestError, match="private range"):
        Sandbox.create(egress="deny", egress_allow=["10.1.2.0/24"])
    sbx = Sandbox.create(egress="deny", egress_allow=["198.51.100.0/24", "*.example.org"])
    with sbx:
        assert (sbx.info.egress, sbx.info.egress_allow) == (
            "deny",
            ["198.51.100.0/24", "*.example.org"],
        )
        opened = sbx.update(egress="allow")
        assert (opened.egress, opened.egress_allow) == ("allow", [])
        assert sbx.get_info().egress == "allow"
        closed = sbx.update(egress_allow=["192.0.2.1"])
        assert (closed.egress, closed.egress_allow) == ("deny", ["192.0.2.1"])
        with pytest.raises(InvalidRequestError):
            sbx.update(egress="sideways")


def test_preview_of_a_port(base_ready: Server, sandbox: Sandbox) -> None:
    server = sandbox.exec.start(["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"])
    sandbox.files.write("/root/hello.txt", "served")
    preview: Preview = unless_missing_route(lambda: sandbox.previews.create(8000), "previews")
    try:
        assert (preview.port, preview.auth, preview.sandbox_id) == (
            8000,
            "token",
            sandbox.sandbox_id,
        )
        assert preview.preview_id.startswith("prv_") and preview.token
        url = preview.path_url
        ok = _get_when_up(url + "hello.txt", {"X-Warren-Preview-Token": preview.token})
        assert (ok.status_code, ok.text) == (200, "served")
        assert httpx.get(url + "hello.txt", timeout=10).status_code in (401, 403)

        assert [p.port for p in sandbox.previews.list()] == [8000]
        assert sandbox.previews.get(8000).preview_id == preview.preview_id
        sandbox.previews.delete(8000)
        with pytest.raises(NotFoundError) as gone:
            sandbox.previews.get(8000)
        assert gone.value.code == "preview_not_found"

        public = sandbox.previews.create(8000, auth="public")
        assert public.token is None
        opened = _get_when_up(public.path_url + "hello.txt", {})
        assert (opened.status_code, opened.text) == (200, "served")
    finally:
        server.kill()


async def test_async_previews(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        preview = await async_unless_missing_route(
            lambda: sbx.previews.create(9000, auth="public"), "previews"
        )
        assert [p.port for p in await sbx.previews.list()] == [preview.port]
        assert (await sbx.previews.get(9000)).url == preview.url
        await sbx.previews.delete(9000)
        assert await sbx.previews.list() == []
