"""Server-wide routes (sync): templates, and with the admin key, tenants and
their API keys."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._config import ConnectionConfig, seg
from .._http import SyncTransport
from ..models import ApiKey, KeyFormat, TemplateInfo, Tenant, as_object, get_list, get_opt_str


class Templates:
    """Templates on the server."""

    @staticmethod
    def list(
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> List[TemplateInfo]:
        """Every template on the server, by name."""
        transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            obj = as_object(transport.json("GET", "/v1/templates"), "template list")
            return [
                TemplateInfo.from_json(as_object(i, "template")) for i in get_list(obj, "items")
            ]
        finally:
            transport.close()

    @staticmethod
    def delete(
        name: str,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> None:
        """Deletes a template (admin key); sandboxes made from it keep their disks."""
        transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            transport.request("DELETE", f"/v1/templates/{seg(name)}")
        finally:
            transport.close()


class Admin:
    """Tenants and their API keys, with the admin key (``api_key`` or
    ``WARREN_API_KEY``); other keys get :class:`PermissionDeniedError`.
    Close it, or use it as a context manager."""

    def __init__(
        self,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> None:
        self._transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))

    def create_tenant(
        self,
        name: str,
        *,
        max_sandboxes: Optional[int] = None,
        max_total_sandboxes: Optional[int] = None,
        max_memory_mb: Optional[int] = None,
        max_cpus: Optional[float] = None,
        max_disk_mb: Optional[int] = None,
    ) -> Tenant:
        """Creates a tenant with the quotas given (``None``: no limit): sandboxes
        creating or running at once, sandboxes at all, memory (MiB) and CPUs
        over those holding compute, and disk (MiB, the sum of ``disk_mb``).
        Going over one raises :class:`~warren.RateLimitError` (code
        ``quota_exceeded``)."""
        body: Dict[str, Any] = {"name": name}
        quotas = {
            "max_sandboxes": max_sandboxes,
            "max_total_sandboxes": max_total_sandboxes,
            "max_memory_mb": max_memory_mb,
            "max_cpus": max_cpus,
            "max_disk_mb": max_disk_mb,
        }
        body.update({k: v for k, v in quotas.items() if v is not None})
        return Tenant.from_json(
            as_object(self._transport.json("POST", "/v1/admin/tenants", json_body=body), "tenant")
        )

    def list_tenants(self) -> List[Tenant]:
        """Every tenant, in creation order (all pages)."""
        found: List[Tenant] = []
        cursor: Optional[str] = None
        while True:
            params = [("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
            page = as_object(
                self._transport.json("GET", "/v1/admin/tenants", params=params), "tenant list"
            )
            found.extend(Tenant.from_json(as_object(i, "tenant")) for i in get_list(page, "items"))
            cursor = get_opt_str(page, "next_cursor")
            if not cursor:
                return found

    def get_tenant(self, tenant_id: str) -> Tenant:
        """One tenant (:class:`NotFoundError` ``tenant_not_found`` when there is none)."""
        obj = self._transport.json("GET", f"/v1/admin/tenants/{seg(tenant_id)}")
        return Tenant.from_json(as_object(obj, "tenant"))

    def create_key(self, tenant_id: str, *, format: Optional[KeyFormat] = None) -> ApiKey:
        """Issues an API key for a tenant; its secret (``key``) is only in this answer.
        ``format="e2b"`` makes one in E2B's form, for ``E2B_API_KEY``."""
        body = None if format is None else {"format": format}
        obj = self._transport.json(
            "POST", f"/v1/admin/tenants/{seg(tenant_id)}/keys", json_body=body
        )
        return ApiKey.from_json(as_object(obj, "key"))

    def list_keys(self, tenant_id: str) -> List[ApiKey]:
        """A tenant's keys, without their secrets."""
        obj = as_object(
            self._transport.json("GET", f"/v1/admin/tenants/{seg(tenant_id)}/keys"), "key list"
        )
        return [ApiKey.from_json(as_object(i, "key")) for i in get_list(obj, "items")]

    def revoke_key(self, key_id: str) -> None:
        """Revokes an API key at once."""
        self._transport.request("DELETE", f"/v1/admin/keys/{seg(key_id)}")

    def close(self) -> None:
        """Closes the HTTP connections."""
        self._transport.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
