"""The synchronous :class:`Sandbox`."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Type, TypeVar

from .._config import CREATE_TIMEOUT, ConnectionConfig, sandbox_path
from .._events import SandboxEvents
from .._http import SyncTransport
from .._wire import ResourcesLike, create_body, list_params, network_body
from ..errors import NotFoundError
from ..models import SandboxInfo, as_object, get_list, get_opt_str
from .agent import Agent
from .checkpoints import CheckpointRef, Checkpoints, checkpoint_id
from .desktop import Desktop
from .exec import Exec
from .files import Files
from .previews import Previews
from .pty import Pty

S = TypeVar("S", bound="Sandbox")


def sandbox_items(obj: Any) -> List[Mapping[str, Any]]:
    """The sandbox objects of a ``{items}`` answer."""
    return [as_object(item, "sandbox") for item in get_list(as_object(obj, "sandboxes"), "items")]


class Sandbox:
    """A Warren sandbox: an isolated Linux machine.

    Make one with :meth:`create` (or :meth:`connect` to an existing one)::

        with Sandbox.create() as sbx:
            print(sbx.exec.run("uname -a").stdout)

    Leaving the ``with`` block destroys it. ``api_url``/``api_key`` default to
    ``WARREN_URL``/``WARREN_API_KEY``.
    """

    def __init__(self, info: SandboxInfo, transport: SyncTransport) -> None:
        self._transport = transport
        self.info = info
        """The sandbox as last fetched (``get_info()`` refreshes it)."""
        self.exec = Exec(transport, info.sandbox_id)
        """Commands and background processes."""
        self.files = Files(transport, info.sandbox_id)
        """The file system."""
        self.pty = Pty(transport, info.sandbox_id)
        """Interactive terminals."""
        self.checkpoints = Checkpoints(transport, info.sandbox_id, self._set_info)
        """Snapshots of the disk; restore in place."""
        self.previews = Previews(transport, info.sandbox_id)
        """URLs that reach ports inside the sandbox."""
        self.agent = Agent(transport, info.sandbox_id)
        """Coding-agent sessions (Claude Code, Codex, opencode, the mock)."""
        self.desktop = Desktop(transport, info.sandbox_id)
        """The desktop (the ``desktop`` template): screen, input, windows, browser."""

    @property
    def sandbox_id(self) -> str:
        """``sbx_…``."""
        return self.info.sandbox_id

    def __repr__(self) -> str:
        return f"Sandbox(sandbox_id={self.sandbox_id!r}, state={self.info.state!r})"

    @classmethod
    def create(
        cls: Type[S],
        template: Optional[str] = None,
        *,
        timeout: Optional[int] = None,
        ttl: Optional[int] = None,
        envs: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        labels: Optional[Mapping[str, str]] = None,
        resources: Optional[ResourcesLike] = None,
        egress: Optional[str] = None,
        egress_allow: Optional[Sequence[str]] = None,
        auto_checkpoint: Optional[bool] = None,
        auto_checkpoint_keep: Optional[int] = None,
        auto_wake: Optional[bool] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> S:
        """Creates a sandbox and returns once it runs commands.

        Args:
            template: Template name (server default: ``base``).
            timeout: Idle timeout in seconds: with no API activity for this
                long the sandbox is stopped (0: never).
            ttl: Lifetime in seconds, after which it is destroyed.
            envs: Default environment of every process.
            metadata: Free-form pairs, filterable in :meth:`list`.
            labels: Labels, filterable in :meth:`list`.
            resources: ``Resources(cpus=, memory_mb=, pids=)`` or a dict.
            egress: Outbound network: ``"allow"`` or ``"deny"``.
            egress_allow: Destinations admitted under ``egress="deny"`` (IPv4
                addresses and CIDRs, host names, ``*.domain``); giving it
                alone implies ``"deny"``.
            auto_checkpoint: Take a checkpoint after every ``exec.run``.
            auto_checkpoint_keep: How many automatic checkpoints to keep (default 100).
            auto_wake: Let any call to the hibernated sandbox wake it (default: 409).
            api_url: Server URL (default ``WARREN_URL``).
            api_key: API key (default ``WARREN_API_KEY``).
            request_timeout: Seconds an ordinary request may take.
        """
        body = create_body(
            template=template,
            timeout=timeout,
            ttl=ttl,
            envs=envs,
            metadata=metadata,
            labels=labels,
            resources=resources,
            egress=egress,
            egress_allow=egress_allow,
            auto_checkpoint=auto_checkpoint,
            auto_checkpoint_keep=auto_checkpoint_keep,
            auto_wake=auto_wake,
        )
        return cls._create(body, ConnectionConfig.resolve(api_url, api_key, request_timeout))

    @classmethod
    def create_from_checkpoint(
        cls: Type[S],
        checkpoint: CheckpointRef,
        *,
        timeout: Optional[int] = None,
        ttl: Optional[int] = None,
        envs: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        labels: Optional[Mapping[str, str]] = None,
        resources: Optional[ResourcesLike] = None,
        egress: Optional[str] = None,
        egress_allow: Optional[Sequence[str]] = None,
        auto_checkpoint: Optional[bool] = None,
        auto_checkpoint_keep: Optional[int] = None,
        auto_wake: Optional[bool] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> S:
        """Creates an independent sandbox whose disk starts as a checkpoint's
        (the other arguments are those of :meth:`create`)."""
        body = create_body(
            template=None,
            timeout=timeout,
            ttl=ttl,
            envs=envs,
            metadata=metadata,
            labels=labels,
            resources=resources,
            egress=egress,
            egress_allow=egress_allow,
            auto_checkpoint=auto_checkpoint,
            auto_checkpoint_keep=auto_checkpoint_keep,
            auto_wake=auto_wake,
            from_checkpoint=checkpoint_id(checkpoint),
        )
        return cls._create(body, ConnectionConfig.resolve(api_url, api_key, request_timeout))

    @classmethod
    def _create(cls: Type[S], body: Mapping[str, Any], config: ConnectionConfig) -> S:
        transport = SyncTransport(config)
        try:
            obj = transport.json(
                "POST",
                "/v1/sandboxes",
                json_body=body,
                timeout=max(CREATE_TIMEOUT, config.request_timeout),
            )
            return cls(SandboxInfo.from_json(as_object(obj, "sandbox")), transport)
        except BaseException:
            transport.close()
            raise

    @classmethod
    def connect(
        cls: Type[S],
        sandbox_id: str,
        *,
        resume: bool = True,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> S:
        """Connects to an existing sandbox (:class:`SandboxNotFoundError` when
        there is none). With ``resume`` (the default) a hibernated sandbox is
        woken and a stopped one started."""
        transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            obj = transport.json("GET", sandbox_path(sandbox_id))
            sandbox = cls(SandboxInfo.from_json(as_object(obj, "sandbox")), transport)
            if resume and sandbox.info.state == "hibernated":
                sandbox.wake()
            elif resume and sandbox.info.state == "stopped":
                sandbox.start()
            return sandbox
        except BaseException:
            transport.close()
            raise

    @classmethod
    def list(
        cls,
        *,
        state: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        tenant: Optional[str] = None,
        page_size: Optional[int] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> Iterator[SandboxInfo]:
        """Sandboxes visible to the key, oldest first, fetched page by page
        as the iterator advances. Filters: ``state``, ``labels`` and
        ``metadata`` (every pair must match), ``tenant`` (admin key only)."""
        params = list_params(
            state=state, labels=labels, metadata=metadata, tenant=tenant, limit=page_size
        )
        transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            cursor: Optional[str] = None
            while True:
                page_params = params + ([("cursor", cursor)] if cursor else [])
                page = as_object(transport.json("GET", "/v1/sandboxes", params=page_params), "page")
                for item in sandbox_items(page):
                    yield SandboxInfo.from_json(item)
                cursor = get_opt_str(page, "next_cursor")
                if not cursor:
                    return
        finally:
            transport.close()

    @classmethod
    def events(
        cls,
        *,
        sandbox_ids: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> SandboxEvents:
        """Follows the state changes of the sandboxes the key may see (all,
        with their tenant, for the admin key; only ``sandbox_ids`` if given).
        Returns once subscribed: subscribe, then :meth:`list`, then apply
        the events, and nothing is missed::

            with Sandbox.events() as events:
                for event in events:
                    ...
        """
        transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        return SandboxEvents.open(transport, sandbox_ids)

    def _lifecycle(
        self, method: str, rest: str, body: Optional[Mapping[str, Any]] = None
    ) -> SandboxInfo:
        obj = self._transport.json(
            method, sandbox_path(self.sandbox_id, rest), json_body=body, timeout=CREATE_TIMEOUT
        )
        self.info = SandboxInfo.from_json(as_object(obj, "sandbox"))
        return self.info

    def _set_info(self, info: SandboxInfo) -> None:
        self.info = info

    def get_info(self) -> SandboxInfo:
        """Fetches the sandbox's current description."""
        obj = self._transport.json("GET", sandbox_path(self.sandbox_id))
        self.info = SandboxInfo.from_json(as_object(obj, "sandbox"))
        return self.info

    def is_running(self) -> bool:
        """Whether the sandbox is in state ``running``."""
        return self.get_info().state == "running"

    def update(
        self,
        *,
        metadata: Optional[Mapping[str, str]] = None,
        labels: Optional[Mapping[str, str]] = None,
        timeout: Optional[int] = None,
        egress: Optional[str] = None,
        egress_allow: Optional[Sequence[str]] = None,
    ) -> SandboxInfo:
        """Replaces the metadata, the labels, the idle timeout (seconds) or
        the network policy (applied at once, without a restart; giving
        either network argument replaces the whole policy)."""
        body: Dict[str, Any] = {}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if labels is not None:
            body["labels"] = dict(labels)
        if timeout is not None:
            body["timeout_secs"] = int(timeout)
        network = network_body(egress, egress_allow)
        if network is not None:
            body["network"] = network
        return self._lifecycle("PATCH", "", body)

    def set_timeout(self, timeout: int) -> SandboxInfo:
        """Sets the idle timeout in seconds (0: never stop for idleness)."""
        return self.update(timeout=timeout)

    def extend(self, seconds: int) -> SandboxInfo:
        """Pushes the end of the sandbox's lifetime back by ``seconds`` and
        restarts its idle clock."""
        return self._lifecycle("POST", "/extend", {"seconds": int(seconds)})

    def hibernate(self) -> SandboxInfo:
        """Puts the sandbox to sleep: no compute, its disk kept."""
        return self._lifecycle("POST", "/hibernate")

    def wake(self) -> SandboxInfo:
        """Wakes a hibernated sandbox."""
        return self._lifecycle("POST", "/wake")

    def stop(self) -> SandboxInfo:
        """Stops every process, keeping the disk."""
        return self._lifecycle("POST", "/stop")

    def start(self) -> SandboxInfo:
        """Starts a stopped sandbox again."""
        return self._lifecycle("POST", "/start")

    def wipe(self) -> SandboxInfo:
        """Resets the sandbox's disk to its template (no checkpoint is taken;
        existing ones are kept); processes are ended as by a restore."""
        return self._lifecycle("POST", "/wipe")

    def fork(self, n: int = 1, *, name: Optional[str] = None) -> List[Sandbox]:
        """Checkpoints the sandbox once (``name`` names that checkpoint) and
        returns ``n`` new, independent, running sandboxes made from it."""
        obj = self._transport.json(
            "POST",
            sandbox_path(self.sandbox_id, "/fork"),
            json_body={"count": n, **({"name": name} if name is not None else {})},
            timeout=CREATE_TIMEOUT,
        )
        return [
            Sandbox(SandboxInfo.from_json(item), SyncTransport(self._transport.config))
            for item in sandbox_items(obj)
        ]

    def kill(self) -> bool:
        """Destroys the sandbox (processes, disk, record). Returns ``False``
        when it was already gone; every later call raises
        :class:`SandboxNotFoundError`."""
        try:
            self._transport.request("DELETE", sandbox_path(self.sandbox_id), timeout=CREATE_TIMEOUT)
        except NotFoundError:
            return False
        return True

    def close(self) -> None:
        """Closes the HTTP connections (the sandbox keeps running)."""
        self._transport.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.kill()
        finally:
            self.close()
