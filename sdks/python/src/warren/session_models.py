"""The values of coding-agent sessions: agents, sessions, their events and
installs (plain, immutable dataclasses, like :mod:`warren.models`, which
re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Optional

from ._json import (
    JsonObject,
    as_object,
    get_bool,
    get_int,
    get_object,
    get_opt_str,
    get_opt_time,
    get_str,
    get_time,
)

__all__ = [
    "AgentCapabilities",
    "AgentInfo",
    "SessionInfo",
    "AgentEvent",
    "InstallProgress",
]


@dataclass(frozen=True)
class AgentCapabilities:
    """What Warren's driver of a coding agent supports."""

    streaming_deltas: bool = False
    tool_calls: bool = False
    permissions: bool = False
    questions: bool = False
    reasoning: bool = False
    usage: bool = False
    resume: bool = False
    transcript: bool = False
    interrupt: bool = False
    mcp_servers: bool = False

    @classmethod
    def from_json(cls, obj: JsonObject) -> AgentCapabilities:
        """Parses a capabilities object (absent flags are ``False``)."""
        return cls(
            **{
                name: get_bool(obj, name, False)
                for name in (
                    "streaming_deltas",
                    "tool_calls",
                    "permissions",
                    "questions",
                    "reasoning",
                    "usage",
                    "resume",
                    "transcript",
                    "interrupt",
                    "mcp_servers",
                )
            }
        )


@dataclass(frozen=True)
class AgentInfo:
    """A coding agent Warren knows, and whether it is installed in the sandbox."""

    agent: str
    """``claude``, ``codex``, ``opencode`` or ``mock``."""
    installed: bool
    version: Optional[str]
    capabilities: AgentCapabilities

    @classmethod
    def from_json(cls, obj: JsonObject) -> AgentInfo:
        """Parses an agent object."""
        return cls(
            agent=get_str(obj, "agent"),
            installed=get_bool(obj, "installed"),
            version=get_opt_str(obj, "version"),
            capabilities=AgentCapabilities.from_json(get_object(obj, "capabilities")),
        )


@dataclass(frozen=True)
class SessionInfo:
    """A coding-agent session as the sandbox describes it."""

    session_id: str
    """``ses_…``."""
    agent: str
    state: str
    """``starting``, ``running``, ``idle``, ``waiting`` (a permission or
    question awaits an answer) or ``ended``."""
    model: Optional[str]
    native_session_id: Optional[str]
    """The agent's own id of the conversation (pass it as ``resume``)."""
    cwd: str
    permission_mode: str
    """``default``, ``accept_edits``, ``plan`` or ``bypass``."""
    created_at: datetime
    ended_at: Optional[datetime]
    last_sequence: int
    """Sequence of the newest event."""

    @property
    def ended(self) -> bool:
        """Whether the session has ended."""
        return self.state == "ended"

    @classmethod
    def from_json(cls, obj: JsonObject) -> SessionInfo:
        """Parses a session object."""
        return cls(
            session_id=get_str(obj, "id"),
            agent=get_str(obj, "agent"),
            state=get_str(obj, "state"),
            model=get_opt_str(obj, "model"),
            native_session_id=get_opt_str(obj, "native_session_id"),
            cwd=get_str(obj, "cwd"),
            permission_mode=get_str(obj, "permission_mode"),
            created_at=get_time(obj, "created_at"),
            ended_at=get_opt_time(obj, "ended_at"),
            last_sequence=get_int(obj, "last_sequence", 0),
        )


@dataclass(frozen=True)
class AgentEvent:
    """One event of a session: ``session.started``, ``item.delta``,
    ``permission.requested``, ``usage``, ``session.ended``, ... ``data`` is
    the payload as the API defines it; ``raw`` the agent's native payload,
    when asked for with ``include_raw``."""

    sequence: int
    """1, 2, 3, ... with no gaps within a session."""
    time: datetime
    session_id: str
    type: str
    source: str
    """``agent`` (from the agent's output) or ``daemon`` (from Warren)."""
    data: Dict[str, Any] = field(default_factory=dict)
    raw: Any = None

    @classmethod
    def from_json(cls, obj: JsonObject) -> AgentEvent:
        """Parses an event object."""
        return cls(
            sequence=get_int(obj, "sequence"),
            time=get_time(obj, "time"),
            session_id=get_str(obj, "session_id"),
            type=get_str(obj, "type"),
            source=get_str(obj, "source"),
            data=get_object(obj, "data"),
            raw=obj.get("raw"),
        )


@dataclass(frozen=True)
class InstallProgress:
    """One step of ``agent.install``: ``phase`` is ``started``, ``output``,
    ``done`` (with ``agent``) or ``error``."""

    phase: str
    message: Optional[str] = None
    agent: Optional[AgentInfo] = None

    @classmethod
    def from_json(cls, obj: JsonObject) -> InstallProgress:
        """Parses an install event."""
        agent = obj.get("agent")
        return cls(
            phase=get_str(obj, "phase"),
            message=get_opt_str(obj, "message"),
            agent=AgentInfo.from_json(as_object(agent, "agent")) if agent is not None else None,
        )
