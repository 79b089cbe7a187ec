"""Wire helpers of coding-agent sessions shared by the sync and async clients:
request bodies, paths and the query of a (re)connection to an event stream."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._config import sandbox_path, seg

PERMISSION_MODES = ("default", "accept_edits", "plan", "bypass")
"""The permission modes a session accepts."""

PermissionAnswer = str
"""``once``, ``always`` or ``reject``."""
Answer = Union[str, Sequence[str]]
"""What ``respond`` takes: a permission decision, or a question's answers
(or ``"reject"``)."""


def session_path(sandbox_id: str, session_id: str, rest: str = "") -> str:
    """``/v1/sandboxes/{id}/sessions/{session}`` followed by ``rest``."""
    return sandbox_path(sandbox_id, f"/sessions/{seg(session_id)}{rest}")


def start_body(
    agent: str,
    *,
    prompt: Optional[str],
    model: Optional[str],
    system_prompt: Optional[str],
    allowed_tools: Optional[Sequence[str]],
    permission_mode: Optional[str],
    max_turns: Optional[int],
    cwd: Optional[str],
    env: Optional[Mapping[str, str]],
    mcp_servers: Optional[Mapping[str, Any]],
    resume: Optional[str],
    request_timeout: Optional[int],
) -> Dict[str, Any]:
    """The body of ``POST /v1/sessions``."""
    if permission_mode is not None and permission_mode not in PERMISSION_MODES:
        raise ValueError(f"permission_mode must be one of {', '.join(PERMISSION_MODES)}")
    body: Dict[str, Any] = {"agent": agent}
    fields: Dict[str, Any] = {
        "prompt": prompt,
        "model": model,
        "system_prompt": system_prompt,
        "allowed_tools": list(allowed_tools) if allowed_tools is not None else None,
        "permission_mode": permission_mode,
        "max_turns": max_turns,
        "cwd": cwd,
        "env": dict(env) if env is not None else None,
        "mcp_servers": dict(mcp_servers) if mcp_servers is not None else None,
        "resume": resume,
        "request_timeout_secs": request_timeout,
    }
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def message_body(text: str, env: Optional[Mapping[str, str]]) -> Dict[str, Any]:
    """The body of ``POST /v1/sessions/{id}/messages``."""
    body: Dict[str, Any] = {"text": text}
    if env is not None:
        body["env"] = dict(env)
    return body


def respond_route(request_id: str, answer: Answer) -> Tuple[str, Dict[str, Any]]:
    """The route (under the session) and body answering a permission
    (``perm_…``) or a question (``q_…``)."""
    if request_id.startswith("perm_"):
        if answer not in ("once", "always", "reject"):
            raise ValueError("answer a permission with 'once', 'always' or 'reject'")
        return f"/permissions/{seg(request_id)}", {"decision": answer}
    if request_id.startswith("q_"):
        if answer == "reject":
            return f"/questions/{seg(request_id)}", {"reject": True}
        if isinstance(answer, str):
            raise ValueError("answer a question with a list of answers, or 'reject'")
        return f"/questions/{seg(request_id)}", {"answers": list(answer)}
    raise ValueError(f"{request_id!r} is neither a permission (perm_…) nor a question (q_…)")


def events_params(after: int, include_raw: bool) -> List[Tuple[str, str]]:
    """Query of a (re)connection to a session's event stream."""
    params = [("follow", "true"), ("after", str(after))]
    if include_raw:
        params.append(("include_raw", "true"))
    return params
