"""Templates, tenants and API keys (``Admin``, ``Templates`` and their async
twins) against a real server."""

from __future__ import annotations

import uuid

import pytest
from conftest import Server

from warren import (
    Admin,
    AsyncAdmin,
    AsyncTemplates,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    Resources,
    Sandbox,
    Templates,
)


def test_templates_list_base(base_ready: Server) -> None:
    templates = {t.name: t for t in Templates.list()}
    assert "base" in templates
    assert templates["base"].workdir.startswith("/")
    with pytest.raises(NotFoundError) as info:
        Templates.delete("no-such-template")
    assert info.value.code == "template_not_found"


def test_tenants_keys_and_revocation(base_ready: Server) -> None:
    name = f"team-{uuid.uuid4().hex[:8]}"
    with Admin() as admin:
        tenant = admin.create_tenant(name, max_sandboxes=1)
        assert tenant.tenant_id.startswith("ten_")
        assert (tenant.name, tenant.max_sandboxes) == (name, 1)
        assert admin.get_tenant(tenant.tenant_id) == tenant
        assert tenant in admin.list_tenants()
        with pytest.raises(ConflictError):
            admin.create_tenant(name)

        created = admin.create_key(tenant.tenant_id)
        assert created.key and created.key_id.startswith("key_")
        listed = admin.list_keys(tenant.tenant_id)
        assert [k.key_id for k in listed] == [created.key_id]
        assert (
            listed[0].key is None and listed[0].prefix and created.key.startswith(listed[0].prefix)
        )

        with Sandbox.create(api_key=created.key) as sbx:
            assert sbx.info.tenant_id == tenant.tenant_id
            with pytest.raises(RateLimitError) as quota:
                Sandbox.create(api_key=created.key)
            assert quota.value.status == 429
            with pytest.raises(PermissionDeniedError) as forbidden:
                Admin(api_key=created.key).list_tenants()
            assert (forbidden.value.code, forbidden.value.status) == ("forbidden", 403)

        admin.revoke_key(created.key_id)
        with pytest.raises(AuthenticationError):
            Sandbox.create(api_key=created.key)
        with pytest.raises(NotFoundError) as missing:
            admin.get_tenant("ten_doesnotexist")
        assert missing.value.code == "tenant_not_found"


async def test_async_admin_and_templates(base_ready: Server) -> None:
    assert "base" in {t.name for t in await AsyncTemplates.list()}
    async with AsyncAdmin() as admin:
        tenant = await admin.create_tenant(f"async-{uuid.uuid4().hex[:8]}")
        assert tenant.max_sandboxes is None
        key = await admin.create_key(tenant.tenant_id)
        assert [k.key_id for k in await admin.list_keys(tenant.tenant_id)] == [key.key_id]
        assert tenant in await admin.list_tenants()
        await admin.revoke_key(key.key_id)
        assert await admin.list_keys(tenant.tenant_id) == []


def test_tenant_quotas_and_disk_limits(base_ready: Server) -> None:
    with Admin() as admin:
        tenant = admin.create_tenant(
            f"quotas-{uuid.uuid4().hex[:8]}",
            max_total_sandboxes=5,
            max_memory_mb=4096,
            max_cpus=2.5,
            max_disk_mb=3000,
        )
        assert (
            tenant.max_total_sandboxes,
            tenant.max_memory_mb,
            tenant.max_cpus,
            tenant.max_disk_mb,
        ) == (5, 4096, 2.5, 3000)
        assert admin.get_tenant(tenant.tenant_id) == tenant
        key = admin.create_key(tenant.tenant_id).key
        with Sandbox.create(api_key=key, resources={"disk_mb": 2000}) as sbx:
            assert sbx.info.resources.disk_mb == 2000
            with pytest.raises(RateLimitError) as quota:
                Sandbox.create(api_key=key, resources=Resources(disk_mb=1001))
            assert quota.value.code == "quota_exceeded"
            assert "max_disk_mb" in str(quota.value)
