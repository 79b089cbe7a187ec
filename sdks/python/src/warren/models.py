"""The values the SDK returns: plain, immutable dataclasses parsed from the
API's JSON (snake_case fields keep their wire names; ``id`` becomes
``sandbox_id``/``process_id``/``checkpoint_id``/``session_id`` where that
reads better).

Time fields are timezone-aware :class:`datetime.datetime` objects in UTC.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Literal, Optional

from ._json import JsonObject as JsonObject
from ._json import _bad
from ._json import as_object as as_object
from ._json import get_bool as get_bool
from ._json import get_float as get_float
from ._json import get_int as get_int
from ._json import get_list as get_list
from ._json import get_object as get_object
from ._json import get_opt_float as get_opt_float
from ._json import get_opt_int as get_opt_int
from ._json import get_opt_str as get_opt_str
from ._json import get_opt_time as get_opt_time
from ._json import get_str as get_str
from ._json import get_str_map as get_str_map
from ._json import get_time as get_time
from ._json import parse_time as parse_time
from .session_models import AgentCapabilities as AgentCapabilities
from .session_models import AgentEvent as AgentEvent
from .session_models import AgentInfo as AgentInfo
from .session_models import InstallProgress as InstallProgress
from .session_models import SessionInfo as SessionInfo

__all__ = [
    "Resources",
    "SandboxInfo",
    "ExecResult",
    "ExitStatus",
    "ProcessInfo",
    "ProcessOutput",
    "FileEntry",
    "FileStat",
    "WriteInfo",
    "FsEvent",
    "Checkpoint",
    "TemplateInfo",
    "Tenant",
    "ApiKey",
    "KeyFormat",
    "Patch",
    "DiffItem",
    "CheckpointDiff",
    "FileDiff",
    "Preview",
    "AgentCapabilities",
    "AgentInfo",
    "SessionInfo",
    "AgentEvent",
    "InstallProgress",
]


@dataclass(frozen=True)
class Resources:
    """CPU, memory, task and disk limits. When creating a sandbox, ``None``
    fields take the server's defaults; in :class:`SandboxInfo` every field is
    set but ``disk_mb``, which is ``None`` where the disk has no limit."""

    cpus: Optional[float] = None
    memory_mb: Optional[int] = None
    pids: Optional[int] = None
    disk_mb: Optional[int] = None
    """Most the disk may take beyond its template, MiB."""

    def to_json(self) -> Dict[str, Any]:
        """The request body form, without unset fields."""
        body: Dict[str, Any] = {}
        if self.cpus is not None:
            body["cpus"] = self.cpus
        if self.memory_mb is not None:
            body["memory_mb"] = self.memory_mb
        if self.pids is not None:
            body["pids"] = self.pids
        if self.disk_mb is not None:
            body["disk_mb"] = self.disk_mb
        return body

    @classmethod
    def from_json(cls, obj: JsonObject) -> Resources:
        """Parses the API's ``resources`` object."""
        return cls(
            cpus=get_float(obj, "cpus"),
            memory_mb=get_int(obj, "memory_mb"),
            pids=get_int(obj, "pids"),
            disk_mb=get_opt_int(obj, "disk_mb"),
        )


@dataclass(frozen=True)
class SandboxInfo:
    """A sandbox as the server describes it (``GET /v1/sandboxes/{id}``)."""

    sandbox_id: str
    """``sbx_…``."""
    state: str
    """``creating``, ``running``, ``stopped``, ``hibernated``, ``error`` or ``destroyed``."""
    template: str
    created_at: datetime
    expires_at: Optional[datetime]
    """When the sandbox is destroyed (its ttl); ``None`` when it has none."""
    last_active_at: Optional[datetime]
    timeout_secs: int
    """Idle timeout: stopped after this long without API activity (0: never)."""
    ttl_secs: Optional[int]
    metadata: Dict[str, str]
    labels: Dict[str, str]
    resources: Resources
    egress: str
    """Outbound network policy: ``allow`` or ``deny``."""
    egress_allow: List[str]
    """With ``egress == "deny"``: the destinations still admitted (IPv4
    addresses and CIDRs, host names, ``*.domain`` wildcards)."""
    auto_checkpoint: bool
    """Whether a checkpoint is taken after every ``exec.run``."""
    auto_checkpoint_keep: Optional[int]
    """How many automatic checkpoints are kept."""
    auto_wake: bool
    """Whether a call to a hibernated sandbox wakes it (else: 409)."""
    from_checkpoint: Optional[str]
    """The checkpoint its disk was made from, if any."""
    tenant_id: Optional[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)
    """The whole JSON object, including fields newer than this SDK."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> SandboxInfo:
        """Parses a sandbox object."""
        network = obj.get("network")
        network = network if isinstance(network, dict) else {}
        egress = network.get("egress")
        allow = network.get("allow")
        resources = obj.get("resources")
        return cls(
            sandbox_id=get_str(obj, "id"),
            state=get_str(obj, "state"),
            template=get_str(obj, "template"),
            created_at=get_time(obj, "created_at"),
            expires_at=get_opt_time(obj, "expires_at"),
            last_active_at=get_opt_time(obj, "last_active_at"),
            timeout_secs=get_int(obj, "timeout_secs", 0),
            ttl_secs=get_opt_int(obj, "ttl_secs"),
            metadata=get_str_map(obj, "metadata"),
            labels=get_str_map(obj, "labels"),
            resources=Resources.from_json(resources)
            if isinstance(resources, dict)
            else Resources(),
            egress=egress if isinstance(egress, str) else "deny",
            egress_allow=[a for a in allow if isinstance(a, str)]
            if isinstance(allow, list)
            else [],
            auto_checkpoint=get_bool(obj, "auto_checkpoint", False),
            auto_checkpoint_keep=get_opt_int(obj, "auto_checkpoint_keep"),
            auto_wake=get_bool(obj, "auto_wake", False),
            from_checkpoint=get_opt_str(obj, "from_checkpoint"),
            tenant_id=get_opt_str(obj, "tenant_id"),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class SandboxEvent:
    """A sandbox changed state (``Sandbox.events()``)."""

    sandbox_id: str
    """``sbx_…``."""
    state: str
    """Its new state; ``destroyed`` when it is gone."""
    time: datetime
    """When the change was committed."""
    tenant_id: Optional[str]
    """The owning tenant, on the admin key's stream only (``None`` there for
    the admin's own sandboxes)."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> SandboxEvent:
        """Parses the data of a ``sandbox`` event."""
        return cls(
            sandbox_id=get_str(obj, "sandbox_id"),
            state=get_str(obj, "state"),
            time=get_time(obj, "time"),
            tenant_id=get_opt_str(obj, "tenant_id"),
        )


@dataclass(frozen=True)
class EventsLagged:
    """The subscriber fell behind and ``missed`` changes were dropped: list
    the sandboxes again. The stream goes on."""

    missed: int

    @classmethod
    def from_json(cls, obj: JsonObject) -> EventsLagged:
        """Parses the data of a ``lagged`` event."""
        return cls(missed=get_int(obj, "missed", 0))


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: ``exit_code`` when it exited, ``signal`` when killed."""

    exit_code: Optional[int]
    signal: Optional[int]

    @property
    def ok(self) -> bool:
        """Whether it exited with code 0."""
        return self.exit_code == 0


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command: its output and how it ended. A non-zero exit
    is a result, not an error (pass ``check=True`` to ``exec.run`` to raise)."""

    stdout: str
    stderr: str
    exit_code: Optional[int]
    """Exit status, or ``None`` when the process was killed by a signal."""
    signal: Optional[int]
    """The signal number that ended the process, if any."""
    timed_out: bool
    """Whether ``timeout`` fired and the process group was killed (``exec.run`` only)."""
    duration_ms: int
    checkpoint: Optional[str] = None
    """Id of the checkpoint taken after the command (``auto_checkpoint`` sandboxes)."""
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """Whether the command exited with code 0."""
        return self.exit_code == 0

    @classmethod
    def from_json(cls, obj: JsonObject) -> ExecResult:
        """Parses a ``processes/run`` response."""
        return cls(
            stdout=get_str(obj, "stdout"),
            stderr=get_str(obj, "stderr"),
            exit_code=get_opt_int(obj, "exit_code"),
            signal=get_opt_int(obj, "signal"),
            timed_out=get_bool(obj, "timed_out", False),
            duration_ms=get_int(obj, "duration_ms", 0),
            checkpoint=get_opt_str(obj, "checkpoint"),
            stdout_truncated=get_bool(obj, "stdout_truncated", False),
            stderr_truncated=get_bool(obj, "stderr_truncated", False),
        )


@dataclass(frozen=True)
class ProcessInfo:
    """A managed process in a sandbox."""

    process_id: str
    """``proc_…``: what ``exec.attach`` and the process routes take."""
    pid: int
    cmd: Optional[str]
    argv: Optional[List[str]]
    tty: bool
    state: str
    """``running`` or ``exited``."""
    exit_code: Optional[int]
    signal: Optional[int]
    started_at: datetime
    exited_at: Optional[datetime]
    output_cursor: int

    @property
    def running(self) -> bool:
        """Whether the process is still running."""
        return self.state == "running"

    @classmethod
    def from_json(cls, obj: JsonObject) -> ProcessInfo:
        """Parses a process object."""
        argv = obj.get("argv")
        if argv is not None and not (
            isinstance(argv, list) and all(isinstance(a, str) for a in argv)
        ):
            raise _bad("argv", "an array of strings", obj)
        return cls(
            process_id=get_str(obj, "id"),
            pid=get_int(obj, "pid"),
            cmd=get_opt_str(obj, "cmd"),
            argv=list(argv) if argv is not None else None,
            tty=get_bool(obj, "tty", False),
            state=get_str(obj, "state"),
            exit_code=get_opt_int(obj, "exit_code"),
            signal=get_opt_int(obj, "signal"),
            started_at=get_time(obj, "started_at"),
            exited_at=get_opt_time(obj, "exited_at"),
            output_cursor=get_int(obj, "output_cursor", 0),
        )


@dataclass(frozen=True)
class ProcessOutput:
    """One chunk of a process's output."""

    stream: str
    """``stdout`` or ``stderr`` (a terminal's output is ``stdout``)."""
    data: bytes
    cursor: int
    """Byte offset of the chunk's first byte (one counter over both streams)."""

    @property
    def text(self) -> str:
        """The bytes decoded as UTF-8 (invalid or split sequences replaced)."""
        return self.data.decode("utf-8", errors="replace")

    @classmethod
    def from_json(cls, obj: JsonObject) -> ProcessOutput:
        """Parses an output chunk (``utf8`` or ``base64`` data)."""
        data = get_str(obj, "data")
        raw = base64.b64decode(data) if obj.get("encoding") == "base64" else data.encode("utf-8")
        return cls(stream=get_str(obj, "stream"), data=raw, cursor=get_int(obj, "cursor", 0))


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory listing."""

    name: str
    path: str
    size: int
    is_dir: bool
    is_symlink: bool
    mode: int
    """Permission bits, e.g. ``0o644``."""
    modified_at: Optional[datetime]

    @classmethod
    def from_json(cls, obj: JsonObject) -> FileEntry:
        """Parses a ``files/list`` item."""
        return cls(
            name=get_str(obj, "name"),
            path=get_str(obj, "path"),
            size=get_int(obj, "size", 0),
            is_dir=get_bool(obj, "is_dir", False),
            is_symlink=get_bool(obj, "is_symlink", False),
            mode=get_int(obj, "mode", 0),
            modified_at=get_opt_time(obj, "modified_at"),
        )


@dataclass(frozen=True)
class FileStat:
    """What is at a path; ``exists`` is false for a missing path."""

    exists: bool
    is_file: bool
    is_dir: bool
    size: int
    mode: int
    modified_at: Optional[datetime]

    @classmethod
    def from_json(cls, obj: JsonObject) -> FileStat:
        """Parses a ``files/stat`` response."""
        return cls(
            exists=get_bool(obj, "exists"),
            is_file=get_bool(obj, "is_file", False),
            is_dir=get_bool(obj, "is_dir", False),
            size=get_int(obj, "size", 0),
            mode=get_int(obj, "mode", 0),
            modified_at=get_opt_time(obj, "modified_at"),
        )


@dataclass(frozen=True)
class WriteInfo:
    """The result of a file operation: the path acted on and the bytes written
    (for ``edit``: the new size)."""

    path: str
    bytes: int

    @classmethod
    def from_json(cls, obj: JsonObject) -> WriteInfo:
        """Parses a ``FileWritten`` response."""
        return cls(path=get_str(obj, "path"), bytes=get_int(obj, "bytes", 0))


@dataclass(frozen=True)
class FsEvent:
    """A change seen by ``files.watch``.

    ``kind`` is ``create``, ``modify``, ``delete`` or ``rename`` (then
    ``from_path`` is the old path when known), or ``overflow`` when the kernel
    dropped events and the directory should be rescanned (``path`` is then the
    watched directory)."""

    kind: str
    path: str
    is_dir: bool
    from_path: Optional[str] = None

    @classmethod
    def from_json(cls, obj: JsonObject) -> FsEvent:
        """Parses an ``fs`` event payload."""
        return cls(
            kind=get_str(obj, "kind"),
            path=get_str(obj, "path"),
            is_dir=get_bool(obj, "is_dir", False),
            from_path=get_opt_str(obj, "from"),
        )


@dataclass(frozen=True)
class Checkpoint:
    """A read-only snapshot of a sandbox's disk."""

    checkpoint_id: str
    """``ckpt_…``."""
    name: str
    """Its name (``cmd_<unix ms>`` for automatic checkpoints)."""
    sandbox_id: str
    """The sandbox it was taken of (the checkpoint outlives it)."""
    created_at: datetime
    template: Optional[str]
    """The template the sandbox's disk was first made from."""
    command: Optional[str]
    """The command after which an ``auto_checkpoint`` sandbox took it."""
    exit_code: Optional[int]
    """That command's exit code."""
    auto: bool
    """Whether ``auto_checkpoint`` took it (retention deletes the oldest of those)."""
    tenant_id: Optional[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)
    """The whole JSON object, including fields newer than this SDK."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> Checkpoint:
        """Parses a checkpoint object."""
        return cls(
            checkpoint_id=get_str(obj, "id"),
            name=get_opt_str(obj, "name") or "",
            sandbox_id=get_str(obj, "sandbox_id"),
            created_at=get_time(obj, "created_at"),
            template=get_opt_str(obj, "template"),
            command=get_opt_str(obj, "command"),
            exit_code=get_opt_int(obj, "exit_code"),
            auto=get_bool(obj, "auto", False),
            tenant_id=get_opt_str(obj, "tenant_id"),
            raw=dict(obj),
        )


@dataclass(frozen=True)
class TemplateInfo:
    """A template sandboxes are created from."""

    name: str
    """As given to ``Sandbox.create(template=...)``."""
    workdir: str
    """Working directory of processes in sandboxes made from it."""
    env: Dict[str, str]
    """Default environment of sandboxes made from it."""
    created_at: Optional[datetime]

    @classmethod
    def from_json(cls, obj: JsonObject) -> TemplateInfo:
        """Parses a template object."""
        return cls(
            name=get_str(obj, "name"),
            workdir=get_str(obj, "workdir"),
            env=get_str_map(obj, "env"),
            created_at=get_opt_time(obj, "created_at"),
        )


@dataclass(frozen=True)
class Tenant:
    """A tenant: the owner of API keys and of the sandboxes they create."""

    tenant_id: str
    """``ten_…``."""
    name: str
    max_sandboxes: Optional[int]
    """Most sandboxes it may have creating or running at once (``None``: no limit)."""
    created_at: datetime
    max_total_sandboxes: Optional[int] = None
    """Most sandboxes it may have at all, stopped ones included."""
    max_memory_mb: Optional[int] = None
    """Most memory (MiB) over its sandboxes holding compute."""
    max_cpus: Optional[float] = None
    """Most CPUs over its sandboxes holding compute."""
    max_disk_mb: Optional[int] = None
    """Most disk (MiB): the sum of its sandboxes' ``disk_mb``."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> Tenant:
        """Parses a tenant object."""
        return cls(
            tenant_id=get_str(obj, "id"),
            name=get_str(obj, "name"),
            max_sandboxes=get_opt_int(obj, "max_sandboxes"),
            created_at=get_time(obj, "created_at"),
            max_total_sandboxes=get_opt_int(obj, "max_total_sandboxes"),
            max_memory_mb=get_opt_int(obj, "max_memory_mb"),
            max_cpus=get_opt_float(obj, "max_cpus"),
            max_disk_mb=get_opt_int(obj, "max_disk_mb"),
        )


KeyFormat = Literal["warren", "e2b"]
"""The form of a new API key's secret: ``warren`` (``wsk_…``) or ``e2b``
(``e2b_`` and 64 hex digits, which E2B's SDKs take as ``E2B_API_KEY``; a
Warren key all the same)."""


@dataclass(frozen=True)
class ApiKey:
    """An API key. ``key`` (the secret) is only set in the answer of
    ``Admin.create_key``; listed keys show a ``prefix`` instead."""

    key_id: str
    """``key_…``, used to revoke it."""
    tenant_id: str
    created_at: datetime
    key: Optional[str] = field(default=None, repr=False)
    prefix: Optional[str] = None

    @classmethod
    def from_json(cls, obj: JsonObject) -> ApiKey:
        """Parses a created or listed key."""
        return cls(
            key_id=get_str(obj, "id"),
            tenant_id=get_str(obj, "tenant_id"),
            created_at=get_time(obj, "created_at"),
            key=get_opt_str(obj, "key"),
            prefix=get_opt_str(obj, "prefix"),
        )


@dataclass(frozen=True)
class DiffItem:
    """One path changed since a checkpoint."""

    path: str
    """Absolute, as the sandbox sees it (``/home/user/x.txt``)."""
    change: str
    """``added``, ``modified`` or ``deleted``."""
    size: int
    """Bytes of a file or of a symlink's target; 0 for a directory."""
    kind: str
    """``file``, ``dir``, ``symlink`` or ``other``."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> DiffItem:
        """Parses a diff item."""
        return cls(
            path=get_str(obj, "path"),
            change=get_str(obj, "change"),
            size=get_int(obj, "size", 0),
            kind=get_str(obj, "kind"),
        )


@dataclass(frozen=True)
class CheckpointDiff:
    """What changed since a checkpoint, sorted by path."""

    items: List[DiffItem]
    """An added or deleted directory brings its contents along."""
    truncated: bool
    """Whether the list is incomplete (more than 10,000 changes, or the
    server's time limit)."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> CheckpointDiff:
        """Parses a checkpoint diff."""
        return cls(
            items=[DiffItem.from_json(as_object(i, "diff item")) for i in get_list(obj, "items")],
            truncated=get_bool(obj, "truncated", False),
        )


@dataclass(frozen=True)
class FileDiff:
    """One file's unified diff since a checkpoint."""

    path: str
    change: str
    """``added``, ``modified``, ``deleted`` or ``unchanged``."""
    binary: bool
    """Whether either side is not text (``unified`` is then ``None``)."""
    unified: Optional[str]
    """``--- a/…``, ``+++ b/…`` and hunks with 3 lines of context."""
    truncated: bool
    """Whether either side is longer than the 1 MiB compared."""

    @classmethod
    def from_json(cls, obj: JsonObject) -> FileDiff:
        """Parses a file diff."""
        return cls(
            path=get_str(obj, "path"),
            change=get_str(obj, "change"),
            binary=get_bool(obj, "binary", False),
            unified=get_opt_str(obj, "unified"),
            truncated=get_bool(obj, "truncated", False),
        )


@dataclass(frozen=True)
class Patch:
    """A script run in every sandbox made from its checkpoint, before the
    sandbox is handed out."""

    patch_id: str
    """``pat_…``."""
    checkpoint_id: str
    name: Optional[str]
    script: str
    timeout_ms: int
    created_at: datetime

    @classmethod
    def from_json(cls, obj: JsonObject) -> Patch:
        """Parses a patch object."""
        return cls(
            patch_id=get_str(obj, "id"),
            checkpoint_id=get_str(obj, "checkpoint_id"),
            name=get_opt_str(obj, "name"),
            script=get_str(obj, "script"),
            timeout_ms=get_int(obj, "timeout_ms", 0),
            created_at=get_time(obj, "created_at"),
        )


@dataclass(frozen=True)
class Preview:
    """A sandbox port reachable through the server at ``url`` (by host
    name: needs wildcard DNS of ``domain``) or ``path_url`` (by path)."""

    preview_id: str
    """``prv_…``."""
    sandbox_id: str
    port: int
    auth: str
    """``public`` (anyone with the URL) or ``token``."""
    domain: str
    url: str
    path_url: str
    token: Optional[str] = field(default=None, repr=False)
    """For ``token`` previews: send it as the ``X-Warren-Preview-Token``
    header or ``?token=`` (which also sets a cookie)."""
    created_at: Optional[datetime] = None

    @classmethod
    def from_json(cls, obj: JsonObject) -> Preview:
        """Parses a preview object."""
        return cls(
            preview_id=get_str(obj, "id"),
            sandbox_id=get_str(obj, "sandbox_id"),
            port=get_int(obj, "port"),
            auth=get_str(obj, "auth"),
            domain=get_str(obj, "domain"),
            url=get_str(obj, "url"),
            path_url=get_str(obj, "path_url"),
            token=get_opt_str(obj, "token"),
            created_at=get_opt_time(obj, "created_at"),
        )
