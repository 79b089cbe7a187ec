"""``Sandbox.events()`` and ``AsyncSandbox.events()`` against a real server:
a tenant's stream sees its own sandbox's state changes in order, the admin's
sees them with the tenant, ``sandbox_ids`` filters, and a tenant's 17th
stream is refused."""

from __future__ import annotations

import uuid
from typing import List, Union

import pytest
from conftest import Server

from warren import (
    Admin,
    AsyncSandbox,
    AsyncSandboxEvents,
    EventsLagged,
    RateLimitError,
    Sandbox,
    SandboxEvent,
    SandboxEvents,
)


def created(states: List[str]) -> List[str]:
    """States of a create: ``creating`` first unless the warm pool served it
    (then ``running`` at once)."""
    return states[1:] if states[:1] == ["creating"] else states


def states_until(events: SandboxEvents, sandbox_id: str, last: str) -> List[SandboxEvent]:
    """The events of ``sandbox_id`` until its state is ``last``."""
    seen: List[SandboxEvent] = []
    for event in events:
        assert isinstance(event, SandboxEvent), event
        if event.sandbox_id != sandbox_id:
            continue
        seen.append(event)
        if event.state == last:
            return seen
    raise AssertionError(f"the stream ended after {seen}")


def test_events_follow_a_sandbox_for_its_tenant_and_the_admin(base_ready: Server) -> None:
    with Admin() as admin:
        tenant = admin.create_tenant(f"events-{uuid.uuid4().hex[:8]}")
        key = admin.create_key(tenant.tenant_id).key
    with Sandbox.events(api_key=key) as mine, Sandbox.events() as everyone:
        sbx = Sandbox.create(api_key=key)
        with Sandbox.events(api_key=key, sandbox_ids=[sbx.sandbox_id]) as only:
            sbx.stop()
            assert sbx.kill()
            states = states_until(mine, sbx.sandbox_id, "destroyed")
            assert created([e.state for e in states]) == ["running", "stopped", "destroyed"]
            assert all(e.tenant_id is None for e in states)
            assert states[0].time <= states[-1].time
            seen = states_until(everyone, sbx.sandbox_id, "destroyed")
            assert [e.state for e in seen] == [e.state for e in states]
            assert {e.tenant_id for e in seen} == {tenant.tenant_id}
            filtered = states_until(only, sbx.sandbox_id, "destroyed")
            assert [e.state for e in filtered] == ["stopped", "destroyed"]

    # At most 16 streams per tenant.
    streams = [Sandbox.events(api_key=key) for _ in range(16)]
    try:
        with pytest.raises(RateLimitError) as refused:
            Sandbox.events(api_key=key)
        assert refused.value.code == "too_many_requests"
    finally:
        for stream in streams:
            stream.close()


async def test_async_events(base_ready: Server) -> None:
    async with await AsyncSandbox.events() as events:
        assert isinstance(events, AsyncSandboxEvents)
        sbx = await AsyncSandbox.create()
        assert await sbx.kill()
        seen: List[Union[SandboxEvent, EventsLagged]] = []
        async for event in events:
            assert isinstance(event, SandboxEvent), event
            if event.sandbox_id == sbx.sandbox_id:
                seen.append(event)
                if event.state == "destroyed":
                    break
        assert created([e.state for e in seen if isinstance(e, SandboxEvent)]) == [
            "running",
            "destroyed",
        ]
