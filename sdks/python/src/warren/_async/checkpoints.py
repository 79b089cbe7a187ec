"""``sandbox.checkpoints``: snapshots of a sandbox's disk, restore in place,
patches, and moving checkpoints between servers (asyncio)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Callable, List, Optional

from .. import _archive
from .._config import CREATE_TIMEOUT, ConnectionConfig, sandbox_path, seg
from .._http import AsyncTransport
from .._sync.checkpoints import (
    EXPORT_TYPE,
    TRANSFER_TIMEOUT,
    CheckpointRef,
    StrPath,
    checkpoint_id,
    checkpoint_path,
    patch_body,
    restore_body,
)
from ..models import (
    Checkpoint,
    CheckpointDiff,
    FileDiff,
    Patch,
    SandboxInfo,
    as_object,
    get_list,
    get_opt_str,
)
from .files import read_chunks


class AsyncCheckpoints:
    """Checkpoints of one sandbox (see :class:`warren.Checkpoints`)."""

    def __init__(
        self,
        transport: AsyncTransport,
        sandbox_id: str,
        on_changed: Callable[[SandboxInfo], None],
    ) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id
        self._on_changed = on_changed

    async def create(self, name: Optional[str] = None) -> Checkpoint:
        """Takes a checkpoint (the sandbox's processes are frozen meanwhile).
        Without ``name`` the server names it ``manual_<unix ms>``."""
        obj = await self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/checkpoints"),
            json_body={"name": name} if name is not None else {},
            timeout=CREATE_TIMEOUT,
        )
        return Checkpoint.from_json(as_object(obj, "checkpoint"))

    async def list(self) -> List[Checkpoint]:
        """The sandbox's checkpoints, oldest first (every page)."""
        found: List[Checkpoint] = []
        cursor: Optional[str] = None
        while True:
            params = [("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
            page = as_object(
                await self._transport.json(
                    "GET", sandbox_path(self._sandbox_id, "/checkpoints"), params=params
                ),
                "checkpoint list",
            )
            found.extend(
                Checkpoint.from_json(as_object(i, "checkpoint")) for i in get_list(page, "items")
            )
            cursor = get_opt_str(page, "next_cursor")
            if not cursor:
                return found

    async def get(self, checkpoint: CheckpointRef) -> Checkpoint:
        """One checkpoint by id (:class:`CheckpointNotFoundError` when there is none)."""
        obj = await self._transport.json("GET", checkpoint_path(checkpoint))
        return Checkpoint.from_json(as_object(obj, "checkpoint"))

    async def restore(
        self, checkpoint: CheckpointRef, *, discard_later: bool = False
    ) -> SandboxInfo:
        """Rewinds the sandbox's disk to a checkpoint, in place: the sandbox
        keeps its id, env and metadata; its processes are ended and its agent
        starts again. Later checkpoints are kept (history branches) unless
        ``discard_later``."""
        obj = await self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/restore"),
            json_body=restore_body(checkpoint, discard_later),
            timeout=CREATE_TIMEOUT,
        )
        info = SandboxInfo.from_json(as_object(obj, "sandbox"))
        self._on_changed(info)
        return info

    async def delete(self, checkpoint: CheckpointRef) -> None:
        """Deletes a checkpoint (sandboxes forked from it keep working)."""
        await self._transport.request("DELETE", checkpoint_path(checkpoint))

    async def diff(
        self, checkpoint: CheckpointRef, to: Optional[CheckpointRef] = None
    ) -> CheckpointDiff:
        """The paths added, modified and deleted since ``checkpoint``, up to
        checkpoint ``to`` or (without it) the sandbox's live disk, sorted by
        path."""
        params = [("to", checkpoint_id(to))] if to is not None else None
        obj = await self._transport.json("GET", checkpoint_path(checkpoint, "/diff"), params=params)
        return CheckpointDiff.from_json(as_object(obj, "checkpoint diff"))

    async def diff_file(
        self, checkpoint: CheckpointRef, path: str, to: Optional[CheckpointRef] = None
    ) -> FileDiff:
        """The unified diff of the text file at ``path`` (absolute, as the
        sandbox sees it) since ``checkpoint``, up to ``to`` or the live disk."""
        params = [("path", path)] + ([("to", checkpoint_id(to))] if to is not None else [])
        obj = await self._transport.json(
            "GET", checkpoint_path(checkpoint, "/diff/file"), params=params
        )
        return FileDiff.from_json(as_object(obj, "file diff"))

    async def add_patch(
        self,
        checkpoint: CheckpointRef,
        script: str,
        *,
        name: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Patch:
        """Attaches a script to a checkpoint: it runs, after the ones added
        before it, as root in every sandbox made from the checkpoint before
        that sandbox is handed out. A failing one fails the fork
        (:class:`PatchFailedError`). ``timeout`` is in seconds."""
        obj = await self._transport.json(
            "POST",
            checkpoint_path(checkpoint, "/patches"),
            json_body=patch_body(script, name, timeout),
        )
        return Patch.from_json(as_object(obj, "patch"))

    async def list_patches(self, checkpoint: CheckpointRef) -> List[Patch]:
        """A checkpoint's patches, in the order they run."""
        obj = as_object(
            await self._transport.json("GET", checkpoint_path(checkpoint, "/patches")), "patch list"
        )
        return [Patch.from_json(as_object(i, "patch")) for i in get_list(obj, "items")]

    async def delete_patch(self, checkpoint: CheckpointRef, patch_id: str) -> None:
        """Removes a patch from a checkpoint."""
        await self._transport.request(
            "DELETE", checkpoint_path(checkpoint, f"/patches/{seg(patch_id)}")
        )

    async def export(
        self, checkpoint: CheckpointRef, dest: StrPath, *, format: Optional[str] = None
    ) -> Path:
        """Streams a checkpoint into the local file ``dest``, to import it on
        another server. ``format`` is ``btrfs-send`` or ``tar-gzip`` (default:
        the server's storage driver's)."""
        local = Path(dest)
        params = [("format", format)] if format is not None else None
        response = await self._transport.open_stream(
            "GET",
            checkpoint_path(checkpoint, "/export"),
            params=params,
            read_timeout=TRANSFER_TIMEOUT,
        )
        try:
            with open(local, "wb") as out:
                async for piece in response.aiter_bytes(_archive.CHUNK):
                    await asyncio.to_thread(out.write, piece)
        finally:
            await response.aclose()
        return local

    @staticmethod
    async def import_file(
        src: StrPath,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> Checkpoint:
        """Makes a checkpoint on a server from a file written by
        :meth:`export`; it belongs to the key's tenant and can seed
        ``Sandbox.create_from_checkpoint``."""
        transport = AsyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            with open(src, "rb") as f:
                obj = await transport.json(
                    "POST",
                    "/v1/checkpoints/import",
                    content=read_chunks(f),
                    headers={
                        "Content-Type": EXPORT_TYPE,
                        "Content-Length": str(os.fstat(f.fileno()).st_size),
                    },
                    timeout=TRANSFER_TIMEOUT,
                )
            return Checkpoint.from_json(as_object(obj, "checkpoint"))
        finally:
            await transport.close()
