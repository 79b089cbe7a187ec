"""Exceptions raised by the Warren SDK.

Every error the server reports is an RFC 7807 problem with a stable ``code``
(``sandbox_not_found``, ``edit_conflict``, ...). The SDK raises it as a
:class:`WarrenError` subclass chosen by that code (or, for codes it does not
know, by the HTTP status), so callers can catch broadly
(``except NotFoundError``) or match exactly (``err.code == "file_not_found"``).
Failures that never reached the server (connection refused, a client-side
timeout) are :class:`NetworkError` and :class:`WarrenTimeoutError`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Optional, Type

if TYPE_CHECKING:
    from .models import ExecResult

__all__ = [
    "WarrenError",
    "InvalidRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "SandboxNotFoundError",
    "ProcessNotFoundError",
    "CheckpointNotFoundError",
    "TemplateNotFoundError",
    "AgentNotFoundError",
    "SessionNotFoundError",
    "RequestNotFoundError",
    "ConflictError",
    "AgentNotInstalledError",
    "SessionEndedError",
    "InvalidTranscriptError",
    "EditConflictError",
    "PatchFailedError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "UnavailableError",
    "WarrenTimeoutError",
    "NetworkError",
    "ProtocolError",
    "CommandExitError",
]


class WarrenError(Exception):
    """Base of every exception the SDK raises.

    Attributes:
        code: The stable snake_case problem code (``sandbox_not_found``).
        status: The HTTP status, or ``None`` when no response was received.
        detail: What went wrong, for people.
        title: The problem's short title, when the server sent one.
    """

    code: str
    status: Optional[int]
    detail: str
    title: Optional[str]

    def __init__(
        self,
        code: str,
        status: Optional[int],
        detail: str,
        *,
        title: Optional[str] = None,
    ) -> None:
        super().__init__(code, status, detail)
        self.code = code
        self.status = status
        self.detail = detail
        self.title = title

    def __str__(self) -> str:
        where = f", HTTP {self.status}" if self.status is not None else ""
        return f"{self.detail} [{self.code}{where}]"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"detail={self.detail!r})"
        )


class InvalidRequestError(WarrenError):
    """The request was malformed or named something invalid (400)."""


class AuthenticationError(WarrenError):
    """No API key, or a wrong one (401 ``unauthorized``)."""


class PermissionDeniedError(WarrenError):
    """The key may not do this, or a path is not allowed (403)."""


class NotFoundError(WarrenError):
    """The thing asked for does not exist (404): a sandbox, file, process, ..."""


class SandboxNotFoundError(NotFoundError):
    """No such sandbox, or one that belongs to another tenant (``sandbox_not_found``)."""


class ProcessNotFoundError(NotFoundError):
    """No such managed process in the sandbox (``process_not_found``)."""


class CheckpointNotFoundError(NotFoundError):
    """No such checkpoint (``checkpoint_not_found``)."""


class TemplateNotFoundError(NotFoundError):
    """No such template (``template_not_found``)."""


class AgentNotFoundError(NotFoundError):
    """No such coding agent (``agent_not_found``)."""


class SessionNotFoundError(NotFoundError):
    """No such coding-agent session in the sandbox (``session_not_found``)."""


class RequestNotFoundError(NotFoundError):
    """No such pending permission request or question (``request_not_found``)."""


class ConflictError(WarrenError):
    """The request conflicts with the current state (409)."""


class AgentNotInstalledError(ConflictError):
    """The coding agent is not installed in the sandbox (``agent_not_installed``):
    ``agent.install`` it, or use the ``agents`` template."""


class SessionEndedError(ConflictError):
    """The session has ended (``session_ended``)."""


class InvalidTranscriptError(InvalidRequestError):
    """An uploaded transcript is not gzip, or not the agent's session
    format (``invalid_transcript``)."""


class EditConflictError(ConflictError):
    """``files.edit`` found its ``old_text`` zero or several times (``edit_conflict``)."""


class PatchFailedError(WarrenError):
    """A patch of the checkpoint a sandbox is made from failed; ``detail``
    has its exit code and output (422 ``patch_failed``)."""


class PayloadTooLargeError(WarrenError):
    """The body is over a limit (413)."""


class RateLimitError(WarrenError):
    """A limit or quota was reached; retry later (429)."""


class ServerError(WarrenError):
    """The server failed (5xx)."""


class UnavailableError(ServerError):
    """A dependency, such as the sandbox's agent, does not answer (503)."""


class WarrenTimeoutError(WarrenError):
    """The operation did not finish in time: a 504 ``timeout`` problem, or a
    client-side deadline (then ``status`` is ``None``)."""


class NetworkError(WarrenError):
    """The server could not be reached, or the connection broke (``status`` is ``None``)."""


class ProtocolError(WarrenError):
    """The server answered something the SDK cannot understand."""


class CommandExitError(WarrenError):
    """Raised by ``exec.run(..., check=True)`` when the command did not exit 0.

    Attributes:
        result: The full result, with ``stdout``, ``stderr`` and ``exit_code``.
    """

    result: ExecResult

    def __init__(self, result: ExecResult) -> None:
        how = (
            f"exit code {result.exit_code}"
            if result.exit_code is not None
            else f"signal {result.signal}"
        )
        super().__init__("command_failed", None, f"command ended with {how}")
        self.result = result


_BY_CODE: Dict[str, Type[WarrenError]] = {
    "sandbox_not_found": SandboxNotFoundError,
    "process_not_found": ProcessNotFoundError,
    "checkpoint_not_found": CheckpointNotFoundError,
    "template_not_found": TemplateNotFoundError,
    "agent_not_found": AgentNotFoundError,
    "session_not_found": SessionNotFoundError,
    "request_not_found": RequestNotFoundError,
    "agent_not_installed": AgentNotInstalledError,
    "session_ended": SessionEndedError,
    "invalid_transcript": InvalidTranscriptError,
    "edit_conflict": EditConflictError,
    "process_not_running": ConflictError,
    "patch_failed": PatchFailedError,
    "timeout": WarrenTimeoutError,
    "unavailable": UnavailableError,
    "too_many_requests": RateLimitError,
    "quota_exceeded": RateLimitError,
}

_BY_STATUS: Dict[int, Type[WarrenError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitError,
    503: UnavailableError,
    504: WarrenTimeoutError,
}


def error_for(
    code: str, status: Optional[int], detail: str, *, title: Optional[str] = None
) -> WarrenError:
    """The most specific exception for a problem code and status."""
    cls = _BY_CODE.get(code)
    if cls is None and status is not None:
        cls = _BY_STATUS.get(status)
        if cls is None and status >= 500:
            cls = ServerError
    return (cls or WarrenError)(code, status, detail, title=title)


def error_from_response(status: int, body: bytes, reason: str = "") -> WarrenError:
    """The exception for an error response: its problem body when it has one,
    else a code derived from the status."""
    problem: Any = None
    try:
        problem = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        problem = None
    if isinstance(problem, dict) and isinstance(problem.get("code"), str):
        detail = problem.get("detail")
        title = problem.get("title")
        return error_for(
            problem["code"],
            status,
            detail if isinstance(detail, str) else str(title or reason or status),
            title=title if isinstance(title, str) else None,
        )
    text = body.decode("utf-8", errors="replace").strip()[:500]
    return error_for(_fallback_code(status), status, text or reason or f"HTTP {status}")


def _fallback_code(status: int) -> str:
    return {
        400: "invalid_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        429: "too_many_requests",
        500: "internal",
        502: "unavailable",
        503: "unavailable",
        504: "timeout",
    }.get(status, f"http_{status}")
