"""Warren: self-hosted sandboxes for AI agents.

``Sandbox`` is the blocking client, ``AsyncSandbox`` the asyncio one; both
read ``WARREN_URL`` and ``WARREN_API_KEY`` unless given ``api_url`` and
``api_key``::

    from warren import Sandbox

    with Sandbox.create() as sbx:
        print(sbx.exec.run("cat /etc/os-release").stdout)
"""

from ._async.admin import AsyncAdmin, AsyncTemplates
from ._async.agent import AsyncAgent, AsyncAgentSession
from ._async.checkpoints import AsyncCheckpoints
from ._async.desktop import AsyncBrowser, AsyncDesktop, AsyncDesktopStream
from ._async.exec import AsyncExec, AsyncProcessHandle
from ._async.files import AsyncFiles, AsyncWatchHandle
from ._async.previews import AsyncPreviews
from ._async.pty import AsyncPty, AsyncPtyHandle
from ._async.sandbox import AsyncSandbox
from ._events import AsyncSandboxEvents, SandboxEvents
from ._sync.admin import Admin, Templates
from ._sync.agent import Agent, AgentSession
from ._sync.checkpoints import Checkpoints
from ._sync.desktop import Browser, Desktop, DesktopStream
from ._sync.exec import Exec, ProcessHandle
from ._sync.files import Files, WatchHandle
from ._sync.previews import Previews
from ._sync.pty import Pty, PtyHandle
from ._sync.sandbox import Sandbox
from ._version import __version__
from .desktop_models import (
    BrowserElement,
    BrowserPage,
    BrowserSnapshot,
    BrowserStatus,
    CdpEndpoint,
    DesktopProcess,
    DesktopStatus,
    Launched,
    Recording,
    StreamUrl,
    Window,
    WindowList,
)
from .errors import (
    AgentNotFoundError,
    AgentNotInstalledError,
    AuthenticationError,
    CheckpointNotFoundError,
    CommandExitError,
    ConflictError,
    EditConflictError,
    InvalidRequestError,
    InvalidTranscriptError,
    NetworkError,
    NotFoundError,
    PatchFailedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProcessNotFoundError,
    ProtocolError,
    RateLimitError,
    RequestNotFoundError,
    SandboxNotFoundError,
    ServerError,
    SessionEndedError,
    SessionNotFoundError,
    TemplateNotFoundError,
    UnavailableError,
    WarrenError,
    WarrenTimeoutError,
)
from .models import (
    AgentCapabilities,
    AgentEvent,
    AgentInfo,
    ApiKey,
    Checkpoint,
    CheckpointDiff,
    DiffItem,
    EventsLagged,
    ExecResult,
    ExitStatus,
    FileDiff,
    FileEntry,
    FileStat,
    FsEvent,
    InstallProgress,
    KeyFormat,
    Patch,
    Preview,
    ProcessInfo,
    ProcessOutput,
    Resources,
    SandboxEvent,
    SandboxInfo,
    SessionInfo,
    TemplateInfo,
    Tenant,
    WriteInfo,
)

__all__ = [
    "__version__",
    "Sandbox",
    "AsyncSandbox",
    "SandboxEvents",
    "AsyncSandboxEvents",
    "Exec",
    "AsyncExec",
    "ProcessHandle",
    "AsyncProcessHandle",
    "Files",
    "AsyncFiles",
    "WatchHandle",
    "AsyncWatchHandle",
    "Pty",
    "AsyncPty",
    "PtyHandle",
    "AsyncPtyHandle",
    "Checkpoints",
    "Admin",
    "AsyncAdmin",
    "Templates",
    "AsyncTemplates",
    "ApiKey",
    "KeyFormat",
    "Patch",
    "CheckpointDiff",
    "DiffItem",
    "FileDiff",
    "Preview",
    "Previews",
    "AsyncPreviews",
    "Desktop",
    "AsyncDesktop",
    "DesktopStream",
    "AsyncDesktopStream",
    "Browser",
    "AsyncBrowser",
    "BrowserElement",
    "BrowserPage",
    "BrowserSnapshot",
    "BrowserStatus",
    "CdpEndpoint",
    "DesktopProcess",
    "DesktopStatus",
    "Launched",
    "Recording",
    "StreamUrl",
    "Window",
    "WindowList",
    "TemplateInfo",
    "Tenant",
    "AsyncCheckpoints",
    "Agent",
    "AsyncAgent",
    "AgentSession",
    "AsyncAgentSession",
    "AgentCapabilities",
    "AgentEvent",
    "AgentInfo",
    "InstallProgress",
    "SessionInfo",
    "Checkpoint",
    "ExecResult",
    "EventsLagged",
    "ExitStatus",
    "FileEntry",
    "FileStat",
    "FsEvent",
    "ProcessInfo",
    "ProcessOutput",
    "Resources",
    "SandboxEvent",
    "SandboxInfo",
    "WriteInfo",
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
