"""Coding-agent sessions (``sandbox.agent``) against a real server, driven
by the built-in mock agent: permissions, questions, follow-ups, kill,
attach, transcripts and the error codes; sync and async."""

from __future__ import annotations

import threading
from typing import Callable, List, Optional

import pytest
from conftest import Server
from helpers import SLOW, async_wait_until, wait_until

from warren import (
    AgentEvent,
    AgentNotFoundError,
    AgentNotInstalledError,
    AgentSession,
    AsyncSandbox,
    InvalidTranscriptError,
    RequestNotFoundError,
    Sandbox,
    SessionEndedError,
    SessionInfo,
    SessionNotFoundError,
)

ALL_TYPES = {
    "session.started",
    "item.started",
    "item.delta",
    "item.completed",
    "permission.requested",
    "permission.resolved",
    "question.requested",
    "question.resolved",
    "usage",
}


class Recorder:
    """Collects the events ``on_event`` receives (from another thread)."""

    def __init__(self) -> None:
        self.events: List[AgentEvent] = []
        self._lock = threading.Lock()

    def __call__(self, event: AgentEvent) -> None:
        with self._lock:
            self.events.append(event)

    def find(self, match: Callable[[AgentEvent], bool]) -> Optional[AgentEvent]:
        with self._lock:
            return next((e for e in self.events if match(e)), None)

    def wait_for(self, match: Callable[[AgentEvent], bool], what: str) -> AgentEvent:
        wait_until(lambda: self.find(match) is not None, what)
        found = self.find(match)
        assert found is not None
        return found

    async def async_wait_for(self, match: Callable[[AgentEvent], bool], what: str) -> AgentEvent:
        await async_wait_until(lambda: self.find(match) is not None, what)
        found = self.find(match)
        assert found is not None
        return found


def of_type(type_: str, after: int = 0) -> Callable[[AgentEvent], bool]:
    return lambda e: e.type == type_ and e.sequence > after


def contiguous(events: List[AgentEvent]) -> bool:
    return [e.sequence for e in events] == list(range(1, len(events) + 1))


def item_text(events: List[AgentEvent], item_id: str) -> str:
    for e in events:
        if e.type == "item.completed" and e.data["item"]["item_id"] == item_id:
            return "".join(c.get("text", "") for c in e.data["item"]["content"])
    raise AssertionError(f"no completed item {item_id}")


def test_mock_session_permission_question_follow_up_and_kill(sandbox: Sandbox) -> None:
    agents = {a.agent: a for a in sandbox.agent.agents()}
    assert set(agents) == {"claude", "codex", "opencode", "mock"}
    assert agents["mock"].installed and agents["mock"].capabilities.permissions
    assert not agents["claude"].installed

    rec = Recorder()
    prompt = "ask me a question"
    session = sandbox.agent.start(
        agent="mock", prompt=prompt, permission_mode="default", on_event=rec
    )
    assert isinstance(session, AgentSession)
    assert session.id.startswith("ses_") and session.info.agent == "mock"

    perm = rec.wait_for(of_type("permission.requested"), "permission.requested")
    assert perm.data["tool"] == "Write"
    assert session.refresh().state == "waiting"
    session.respond(perm.data["permission_id"], "once")
    question = rec.wait_for(of_type("question.requested"), "question.requested")
    assert question.data["options"] == ["yes", "no"]
    session.respond(question.data["question_id"], ["yes"])
    rec.wait_for(of_type("usage"), "usage")
    wait_until(lambda: session.refresh().state == "idle", "idle")

    assert sandbox.files.read(f"{session.info.cwd}/mock-turn-1.txt") == prompt
    assert ALL_TYPES <= {e.type for e in rec.events}
    assert contiguous(rec.events)
    assert "You answered yes" in item_text(rec.events, "itm_1_done")

    seen = len(rec.events)
    session.send_prompt("an error this time")
    perm2 = rec.wait_for(of_type("permission.requested", seen), "second permission")
    session.respond(perm2.data["permission_id"], "always")
    rec.wait_for(of_type("usage", seen), "second usage")
    assert rec.find(of_type("error", seen)) is not None
    assert item_text(rec.events, "itm_2_reply").startswith(
        "Turn 2. You said: an error this time. Earlier: ask me a question."
    )

    assert session.kill().state == "ended"
    final = session.wait(timeout=SLOW)
    assert isinstance(final, SessionInfo) and final.ended and final.ended_at is not None
    ended = rec.events[-1]
    assert ended.type == "session.ended" and ended.data["reason"] == "killed"
    assert contiguous(rec.events)
    with pytest.raises(SessionEndedError):
        session.send_prompt("too late")

    # The same events again through the iterator, and the transcript.
    assert [e.sequence for e in session.events()] == [e.sequence for e in rec.events]
    assert session.transcript()[:2] == b"\x1f\x8b"


def test_reject_attach_and_transcript(sandbox: Sandbox) -> None:
    rec = Recorder()
    session = sandbox.agent.start(agent="mock", prompt="no writing", cwd="/tmp", on_event=rec)
    perm = rec.wait_for(of_type("permission.requested"), "permission.requested")
    session.respond(perm.data["permission_id"], "reject")
    rec.wait_for(of_type("usage"), "usage")
    assert not sandbox.files.exists("/tmp/mock-turn-1.txt")
    wait_until(lambda: session.refresh().state == "idle", "idle")
    session.close()

    # Attach from the start: the scrollback, then live events.
    existing = session.refresh().last_sequence
    again = Recorder()
    at_end: List[int] = []
    attached = sandbox.agent.attach(
        session.id,
        after=0,
        on_event=again,
        on_scrollback_end=lambda: at_end.append(len(again.events)),
    )
    wait_until(lambda: bool(at_end), "on_scrollback_end")
    assert at_end == [existing]
    attached.send_prompt("once more")
    perm2 = again.wait_for(of_type("permission.requested", existing), "live permission")
    attached.respond(perm2.data["permission_id"], "once")
    again.wait_for(of_type("usage", existing), "live usage")
    assert contiguous(again.events)
    assert any(s.session_id == session.id for s in sandbox.agent.list())

    # Its transcript resumes it in a new session.
    native = sandbox.agent.upload_transcript("mock", attached.transcript())
    attached.kill()
    assert attached.wait(timeout=SLOW).ended
    resumed = sandbox.agent.start(
        agent="mock", prompt="third", permission_mode="bypass", resume=native
    )
    texts = []
    for event in resumed.events():
        if event.type == "usage":
            break
        texts.append(event)
    assert "Earlier: no writing | once more." in item_text(texts, "itm_3_reply")
    resumed.kill()
    assert resumed.wait().ended


def test_error_codes(sandbox: Sandbox) -> None:
    with pytest.raises(AgentNotFoundError) as not_found:
        sandbox.agent.start(agent="nope", prompt="hi")
    assert not_found.value.code == "agent_not_found" and not_found.value.status == 404
    with pytest.raises(AgentNotInstalledError) as missing:
        sandbox.agent.start(agent="claude", prompt="hi")
    assert missing.value.code == "agent_not_installed" and missing.value.status == 409
    with pytest.raises(SessionNotFoundError):
        sandbox.agent.get("ses_nothere")
    session = sandbox.agent.start(agent="mock")
    with pytest.raises(RequestNotFoundError):
        session.respond("perm_nothing", "once")
    with pytest.raises(ValueError):
        session.respond("x_1", "once")
    with pytest.raises(InvalidTranscriptError):
        sandbox.agent.upload_transcript("mock", b"not gzip")
    session.kill()


async def test_async_mock_session(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        rec = Recorder()
        events_seen: List[AgentEvent] = []

        async def on_event(event: AgentEvent) -> None:
            rec(event)
            events_seen.append(event)

        session = await sbx.agent.start(
            agent="mock", prompt="a question, please", permission_mode="default", on_event=on_event
        )
        perm = await rec.async_wait_for(of_type("permission.requested"), "permission.requested")
        await session.respond(perm.data["permission_id"], "once")
        question = await rec.async_wait_for(of_type("question.requested"), "question")
        await session.respond(question.data["question_id"], "reject")
        await rec.async_wait_for(of_type("usage"), "usage")
        assert ALL_TYPES <= {e.type for e in rec.events}
        assert "No answer." in item_text(rec.events, "itm_1_done")
        assert await sbx.files.read(f"{session.info.cwd}/mock-turn-1.txt") == "a question, please"

        seen = len(rec.events)
        await session.send_prompt("and an error")
        perm2 = await rec.async_wait_for(of_type("permission.requested", seen), "permission 2")
        await session.respond(perm2.data["permission_id"], "reject")
        await rec.async_wait_for(of_type("usage", seen), "usage 2")
        assert rec.find(of_type("error", seen)) is not None
        assert "Earlier: a question, please." in item_text(rec.events, "itm_2_reply")

        # Attach with the scrollback, as an async iterator.
        attached = await sbx.agent.attach(session.id)
        replayed = []
        async for event in attached.events(after=seen):
            replayed.append(event.sequence)
            if event.type == "usage":
                break
        assert replayed[0] == seen + 1

        assert (await session.kill()).state == "ended"
        final = await session.wait(timeout=SLOW)
        assert final.ended
        assert rec.events[-1].type == "session.ended"
        assert rec.events[-1].data["reason"] == "killed"
        assert contiguous(events_seen)
        with pytest.raises(SessionEndedError):
            await session.send_prompt("too late")
        with pytest.raises(AgentNotFoundError):
            await sbx.agent.start(agent="nope")
        with pytest.raises(AgentNotInstalledError):
            await sbx.agent.start(agent="claude", prompt="hi")
        assert (await sbx.agent.agents())[0].agent
        assert (await session.transcript())[:2] == b"\x1f\x8b"
