"""``sandbox.previews``: URLs that reach a port inside the sandbox (asyncio)."""

from __future__ import annotations

from typing import List, Optional

from .._config import sandbox_path
from .._http import AsyncTransport
from .._sync.previews import preview_body
from ..models import Preview, as_object, get_list


class AsyncPreviews:
    """Preview URLs of one sandbox (see :class:`warren.Previews`)."""

    def __init__(self, transport: AsyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    async def create(
        self, port: int, *, auth: Optional[str] = None, domain: Optional[str] = None
    ) -> Preview:
        """Exposes ``port``. ``auth`` is ``"token"`` (the default: callers
        need :attr:`Preview.token`) or ``"public"``; ``domain`` overrides the
        server's preview domain."""
        obj = await self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/previews"),
            json_body=preview_body(port, auth, domain),
        )
        return Preview.from_json(as_object(obj, "preview"))

    async def list(self) -> List[Preview]:
        """The sandbox's previews, in port order."""
        obj = as_object(
            await self._transport.json("GET", sandbox_path(self._sandbox_id, "/previews")),
            "previews",
        )
        return [Preview.from_json(as_object(i, "preview")) for i in get_list(obj, "items")]

    async def get(self, port: int) -> Preview:
        """The preview of ``port`` (:class:`NotFoundError` ``preview_not_found``)."""
        obj = await self._transport.json(
            "GET", sandbox_path(self._sandbox_id, f"/previews/{int(port)}")
        )
        return Preview.from_json(as_object(obj, "preview"))

    async def delete(self, port: int) -> None:
        """Stops exposing ``port``."""
        await self._transport.request(
            "DELETE", sandbox_path(self._sandbox_id, f"/previews/{int(port)}")
        )
