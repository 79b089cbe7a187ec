"""``sandbox.previews``: URLs that reach a port inside the sandbox (sync)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._config import sandbox_path
from .._http import SyncTransport
from ..models import Preview, as_object, get_list


def preview_body(port: int, auth: Optional[str], domain: Optional[str]) -> Dict[str, Any]:
    """The body of ``POST /v1/sandboxes/{id}/previews``."""
    body: Dict[str, Any] = {"port": port}
    if auth is not None:
        body["auth"] = auth
    if domain is not None:
        body["domain"] = domain
    return body


class Previews:
    """Preview URLs of one sandbox: a port inside it, reachable through the
    server by host name (``{port}-{id}.{domain}``) or by path."""

    def __init__(self, transport: SyncTransport, sandbox_id: str) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id

    def create(
        self, port: int, *, auth: Optional[str] = None, domain: Optional[str] = None
    ) -> Preview:
        """Exposes ``port``. ``auth`` is ``"token"`` (the default: callers
        need :attr:`Preview.token`) or ``"public"``; ``domain`` overrides the
        server's preview domain."""
        obj = self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/previews"),
            json_body=preview_body(port, auth, domain),
        )
        return Preview.from_json(as_object(obj, "preview"))

    def list(self) -> List[Preview]:
        """The sandbox's previews, in port order."""
        obj = as_object(
            self._transport.json("GET", sandbox_path(self._sandbox_id, "/previews")), "previews"
        )
        return [Preview.from_json(as_object(i, "preview")) for i in get_list(obj, "items")]

    def get(self, port: int) -> Preview:
        """The preview of ``port`` (:class:`NotFoundError` ``preview_not_found``)."""
        obj = self._transport.json("GET", sandbox_path(self._sandbox_id, f"/previews/{int(port)}"))
        return Preview.from_json(as_object(obj, "preview"))

    def delete(self, port: int) -> None:
        """Stops exposing ``port``."""
        self._transport.request("DELETE", sandbox_path(self._sandbox_id, f"/previews/{int(port)}"))
