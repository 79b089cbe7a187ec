"""The asyncio :class:`AsyncSandbox` and its checkpoints."""

from __future__ import annotations

from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Generic,
    List,
    Mapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
)

from .._config import CREATE_TIMEOUT, ConnectionConfig, sandbox_path
from .._events import AsyncSandboxEvents
from .._http import AsyncTransport
from .._sync.checkpoints import CheckpointRef, checkpoint_id
from .._sync.sandbox import sandbox_items
from .._wire import ResourcesLike, create_body, list_params, network_body
from ..errors import NotFoundError
from ..models import SandboxInfo, as_object, get_opt_str
from .agent import AsyncAgent
from .checkpoints import AsyncCheckpoints
from .desktop import AsyncDesktop
from .exec import AsyncExec
from .files import AsyncFiles
from .previews import AsyncPreviews
from .pty import AsyncPty

A = TypeVar("A", bound="AsyncSandbox")


class SandboxPromise(Generic[A]):
    """What ``AsyncSandbox.create`` and ``connect`` return: await it for the
    sandbox, or use it directly in ``async with`` (the sandbox is killed on
    exit)::

        async with AsyncSandbox.create() as sbx: ...
        sbx = await AsyncSandbox.create()
    """

    def __init__(self, factory: Callable[[], Awaitable[A]]) -> None:
        self._factory = factory
        self._sandbox: Optional[A] = None

    def __await__(self) -> Generator[Any, None, A]:
        return self._factory().__await__()

    async def __aenter__(self) -> A:
        self._sandbox = await self._factory()
        return self._sandbox

    async def __aexit__(self, *exc: object) -> None:
        if self._sandbox is not None:
            await self._sandbox.__aexit__(*exc)


class AsyncSandbox:
    """A Warren sandbox, for asyncio (the same surface as
    :class:`warren.Sandbox`, awaitable)::

        async with AsyncSandbox.create() as sbx:
            print((await sbx.exec.run("uname -a")).stdout)
    """

    def __init__(self, info: SandboxInfo, transport: AsyncTransport) -> None:
        self._transport = transport
        self.info = info
        """The sandbox as last fetched (``get_info()`` refreshes it)."""
        self.exec = AsyncExec(transport, info.sandbox_id)
        """Commands and background processes."""
        self.files = AsyncFiles(transport, info.sandbox_id)
        """The file system."""
        self.pty = AsyncPty(transport, info.sandbox_id)
        """Interactive terminals."""
        self.checkpoints = AsyncCheckpoints(transport, info.sandbox_id, self._set_info)
        """Snapshots of the disk; restore in place."""
        self.previews = AsyncPreviews(transport, info.sandbox_id)
        """URLs that reach ports inside the sandbox."""
        self.agent = AsyncAgent(transport, info.sandbox_id)
        """Coding-agent sessions (Claude Code, Codex, opencode, the mock)."""
        self.desktop = AsyncDesktop(transport, info.sandbox_id)
        """The desktop (the ``desktop`` template): screen, input, windows, browser."""

    @property
    def sandbox_id(self) -> str:
        """``sbx_…``."""
        return self.info.sandbox_id

    def __repr__(self) -> str:
        return f"AsyncSandbox(sandbox_id={self.sandbox_id!r}, state={self.info.state!r})"

    @classmethod
    def create(
        cls: Type[A],
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
    ) -> SandboxPromise[A]:
        """Creates a sandbox (arguments as :meth:`warren.Sandbox.create`)."""
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
        config = ConnectionConfig.resolve(api_url, api_key, request_timeout)
        return SandboxPromise(lambda: cls._create(body, config))

    @classmethod
    def create_from_checkpoint(
        cls: Type[A],
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
    ) -> SandboxPromise[A]:
        """Creates an independent sandbox whose disk starts as a checkpoint's."""
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
        config = ConnectionConfig.resolve(api_url, api_key, request_timeout)
        return SandboxPromise(lambda: cls._create(body, config))

    @classmethod
    async def _create(cls: Type[A], body: Mapping[str, Any], config: ConnectionConfig) -> A:
        transport = AsyncTransport(config)
        try:
            obj = await transport.json(
                "POST",
                "/v1/sandboxes",
                json_body=body,
                timeout=max(CREATE_TIMEOUT, config.request_timeout),
            )
            return cls(SandboxInfo.from_json(as_object(obj, "sandbox")), transport)
        except BaseException:
            await transport.close()
            raise

    @classmethod
    def connect(
        cls: Type[A],
        sandbox_id: str,
        *,
        resume: bool = True,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> SandboxPromise[A]:
        """Connects to an existing sandbox (see :meth:`warren.Sandbox.connect`)."""
        config = ConnectionConfig.resolve(api_url, api_key, request_timeout)
        return SandboxPromise(lambda: cls._connect(sandbox_id, resume, config))

    @classmethod
    async def _connect(cls: Type[A], sandbox_id: str, resume: bool, config: ConnectionConfig) -> A:
        transport = AsyncTransport(config)
        try:
            obj = await transport.json("GET", sandbox_path(sandbox_id))
            sandbox = cls(SandboxInfo.from_json(as_object(obj, "sandbox")), transport)
            if resume and sandbox.info.state == "hibernated":
                await sandbox.wake()
            elif resume and sandbox.info.state == "stopped":
                await sandbox.start()
            return sandbox
        except BaseException:
            await transport.close()
            raise

    @classmethod
    async def list(
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
    ) -> AsyncIterator[SandboxInfo]:
        """Sandboxes visible to the key, oldest first, page by page
        (``async for info in AsyncSandbox.list(...)``)."""
        params = list_params(
            state=state, labels=labels, metadata=metadata, tenant=tenant, limit=page_size
        )
        transport = AsyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            cursor: Optional[str] = None
            while True:
                page_params = params + ([("cursor", cursor)] if cursor else [])
                page = as_object(
                    await transport.json("GET", "/v1/sandboxes", params=page_params), "page"
                )
                for item in sandbox_items(page):
                    yield SandboxInfo.from_json(item)
                cursor = get_opt_str(page, "next_cursor")
                if not cursor:
                    return
        finally:
            await transport.close()

    @classmethod
    async def events(
        cls,
        *,
        sandbox_ids: Optional[Sequence[str]] = None,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> AsyncSandboxEvents:
        """Follows the state changes of the sandboxes the key may see (all,
        with their tenant, for the admin key; only ``sandbox_ids`` if given).
        Returns once subscribed: subscribe, then :meth:`list`, then apply
        the events, and nothing is missed::

            async with await AsyncSandbox.events() as events:
                async for event in events:
                    ...
        """
        transport = AsyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        return await AsyncSandboxEvents.open(transport, sandbox_ids)

    async def _lifecycle(
        self, method: str, rest: str, body: Optional[Mapping[str, Any]] = None
    ) -> SandboxInfo:
        obj = await self._transport.json(
            method, sandbox_path(self.sandbox_id, rest), json_body=body, timeout=CREATE_TIMEOUT
        )
        self.info = SandboxInfo.from_json(as_object(obj, "sandbox"))
        return self.info

    def _set_info(self, info: SandboxInfo) -> None:
        self.info = info

    async def get_info(self) -> SandboxInfo:
        """Fetches the sandbox's current description."""
        obj = await self._transport.json("GET", sandbox_path(self.sandbox_id))
        self.info = SandboxInfo.from_json(as_object(obj, "sandbox"))
        return self.info

    async def is_running(self) -> bool:
        """Whether the sandbox is in state ``running``."""
        return (await self.get_info()).state == "running"

    async def update(
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
        return await self._lifecycle("PATCH", "", body)

    async def set_timeout(self, timeout: int) -> SandboxInfo:
        """Sets the idle timeout in seconds (0: never stop for idleness)."""
        return await self.update(timeout=timeout)

    async def extend(self, seconds: int) -> SandboxInfo:
        """Pushes the end of the sandbox's lifetime back by ``seconds``."""
        return await self._lifecycle("POST", "/extend", {"seconds": int(seconds)})

    async def hibernate(self) -> SandboxInfo:
        """Puts the sandbox to sleep: no compute, its disk kept."""
        return await self._lifecycle("POST", "/hibernate")

    async def wake(self) -> SandboxInfo:
        """Wakes a hibernated sandbox."""
        return await self._lifecycle("POST", "/wake")

    async def stop(self) -> SandboxInfo:
        """Stops every process, keeping the disk."""
        return await self._lifecycle("POST", "/stop")

    async def start(self) -> SandboxInfo:
        """Starts a stopped sandbox again."""
        return await self._lifecycle("POST", "/start")

    async def wipe(self) -> SandboxInfo:
        """Resets the sandbox's disk to its template (no checkpoint is taken)."""
        return await self._lifecycle("POST", "/wipe")

    async def fork(self, n: int = 1, *, name: Optional[str] = None) -> List[AsyncSandbox]:
        """Checkpoints the sandbox once (``name`` names that checkpoint) and
        returns ``n`` new, independent, running sandboxes made from it."""
        obj = await self._transport.json(
            "POST",
            sandbox_path(self.sandbox_id, "/fork"),
            json_body={"count": n, **({"name": name} if name is not None else {})},
            timeout=CREATE_TIMEOUT,
        )
        return [
            AsyncSandbox(SandboxInfo.from_json(item), AsyncTransport(self._transport.config))
            for item in sandbox_items(obj)
        ]

    async def kill(self) -> bool:
        """Destroys the sandbox; ``False`` when it was already gone."""
        try:
            await self._transport.request(
                "DELETE", sandbox_path(self.sandbox_id), timeout=CREATE_TIMEOUT
            )
        except NotFoundError:
            return False
        return True

    async def close(self) -> None:
        """Closes the HTTP connections (the sandbox keeps running)."""
        await self._transport.close()

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.kill()
        finally:
            await self.close()
