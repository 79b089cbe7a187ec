"""``sandbox.checkpoints``: snapshots of a sandbox's disk, restore in place,
patches, and moving checkpoints between servers (sync)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from .. import _archive
from .._config import CREATE_TIMEOUT, ConnectionConfig, sandbox_path, seg
from .._http import SyncTransport
from .._wire import to_ms
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

CheckpointRef = Union[str, Checkpoint]
"""A checkpoint, or its id (``ckpt_…``)."""
StrPath = Union[str, "os.PathLike[str]"]

EXPORT_TYPE = "application/vnd.warren.checkpoint"
"""Media type of a checkpoint export stream."""
TRANSFER_TIMEOUT = 3600.0
"""Seconds an export or import may take (a whole disk)."""


def checkpoint_id(ref: CheckpointRef) -> str:
    """The id of a checkpoint reference."""
    return ref.checkpoint_id if isinstance(ref, Checkpoint) else ref


def checkpoint_path(ref: CheckpointRef, rest: str = "") -> str:
    """``/v1/checkpoints/{id}`` followed by ``rest``."""
    return f"/v1/checkpoints/{seg(checkpoint_id(ref))}{rest}"


def restore_body(ref: CheckpointRef, discard_later: bool) -> Dict[str, Any]:
    """The body of ``POST /restore``."""
    body: Dict[str, Any] = {"checkpoint_id": checkpoint_id(ref)}
    if discard_later:
        body["discard_later"] = True
    return body


def patch_body(script: str, name: Optional[str], timeout: Optional[float]) -> Dict[str, Any]:
    """The body of ``POST /v1/checkpoints/{id}/patches``."""
    body: Dict[str, Any] = {"script": script}
    if name is not None:
        body["name"] = name
    timeout_ms = to_ms(timeout)
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    return body


class Checkpoints:
    """Checkpoints of one sandbox: read-only snapshots of its disk."""

    def __init__(
        self,
        transport: SyncTransport,
        sandbox_id: str,
        on_changed: Callable[[SandboxInfo], None],
    ) -> None:
        self._transport = transport
        self._sandbox_id = sandbox_id
        self._on_changed = on_changed

    def create(self, name: Optional[str] = None) -> Checkpoint:
        """Takes a checkpoint (the sandbox's processes are frozen meanwhile).
        Without ``name`` the server names it ``manual_<unix ms>``."""
        obj = self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/checkpoints"),
            json_body={"name": name} if name is not None else {},
            timeout=CREATE_TIMEOUT,
        )
        return Checkpoint.from_json(as_object(obj, "checkpoint"))

    def list(self) -> List[Checkpoint]:
        """The sandbox's checkpoints, oldest first (every page)."""
        found: List[Checkpoint] = []
        cursor: Optional[str] = None
        while True:
            params = [("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
            page = as_object(
                self._transport.json(
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

    def get(self, checkpoint: CheckpointRef) -> Checkpoint:
        """One checkpoint by id (:class:`CheckpointNotFoundError` when there is none)."""
        obj = self._transport.json("GET", checkpoint_path(checkpoint))
        return Checkpoint.from_json(as_object(obj, "checkpoint"))

    def restore(self, checkpoint: CheckpointRef, *, discard_later: bool = False) -> SandboxInfo:
        """Rewinds the sandbox's disk to a checkpoint, in place: the sandbox
        keeps its id, env and metadata; its processes are ended and its agent
        starts again. Later checkpoints are kept (history branches) unless
        ``discard_later``."""
        obj = self._transport.json(
            "POST",
            sandbox_path(self._sandbox_id, "/restore"),
            json_body=restore_body(checkpoint, discard_later),
            timeout=CREATE_TIMEOUT,
        )
        info = SandboxInfo.from_json(as_object(obj, "sandbox"))
        self._on_changed(info)
        return info

    def delete(self, checkpoint: CheckpointRef) -> None:
        """Deletes a checkpoint (sandboxes forked from it keep working)."""
        self._transport.request("DELETE", checkpoint_path(checkpoint))

    def diff(self, checkpoint: CheckpointRef, to: Optional[CheckpointRef] = None) -> CheckpointDiff:
        """The paths added, modified and deleted since ``checkpoint``, up to
        checkpoint ``to`` or (without it) the sandbox's live disk, sorted by
        path."""
        params = [("to", checkpoint_id(to))] if to is not None else None
        obj = self._transport.json("GET", checkpoint_path(checkpoint, "/diff"), params=params)
        return CheckpointDiff.from_json(as_object(obj, "checkpoint diff"))

    def diff_file(
        self, checkpoint: CheckpointRef, path: str, to: Optional[CheckpointRef] = None
    ) -> FileDiff:
        """The unified diff of the text file at ``path`` (absolute, as the
        sandbox sees it) since ``checkpoint``, up to ``to`` or the live disk."""
        params = [("path", path)] + ([("to", checkpoint_id(to))] if to is not None else [])
        obj = self._transport.json("GET", checkpoint_path(checkpoint, "/diff/file"), params=params)
        return FileDiff.from_json(as_object(obj, "file diff"))

    def add_patch(
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
        obj = self._transport.json(
            "POST",
            checkpoint_path(checkpoint, "/patches"),
            json_body=patch_body(script, name, timeout),
        )
        return Patch.from_json(as_object(obj, "patch"))

    def list_patches(self, checkpoint: CheckpointRef) -> List[Patch]:
        """A checkpoint's patches, in the order they run."""
        obj = as_object(
            self._transport.json("GET", checkpoint_path(checkpoint, "/patches")), "patch list"
        )
        return [Patch.from_json(as_object(i, "patch")) for i in get_list(obj, "items")]

    def delete_patch(self, checkpoint: CheckpointRef, patch_id: str) -> None:
        """Removes a patch from a checkpoint."""
        self._transport.request("DELETE", checkpoint_path(checkpoint, f"/patches/{seg(patch_id)}"))

    def export(
        self, checkpoint: CheckpointRef, dest: StrPath, *, format: Optional[str] = None
    ) -> Path:
        """Streams a checkpoint into the local file ``dest``, to import it on
        another server. ``format`` is ``btrfs-send`` or ``tar-gzip`` (default:
        the server's storage driver's)."""
        local = Path(dest)
        params = [("format", format)] if format is not None else None
        response = self._transport.open_stream(
            "GET",
            checkpoint_path(checkpoint, "/export"),
            params=params,
            read_timeout=TRANSFER_TIMEOUT,
        )
        try:
            with open(local, "wb") as out:
                for piece in response.iter_bytes(_archive.CHUNK):
                    out.write(piece)
        finally:
            response.close()
        return local

    @staticmethod
    def import_file(
        src: StrPath,
        *,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        request_timeout: Optional[float] = None,
    ) -> Checkpoint:
        """Makes a checkpoint on a server from a file written by
        :meth:`export`; it belongs to the key's tenant and can seed
        ``Sandbox.create_from_checkpoint``."""
        transport = SyncTransport(ConnectionConfig.resolve(api_url, api_key, request_timeout))
        try:
            with open(src, "rb") as f:
                obj = transport.json(
                    "POST",
                    "/v1/checkpoints/import",
                    content=_archive.chunks(f),
                    headers={
                        "Content-Type": EXPORT_TYPE,
                        "Content-Length": str(os.fstat(f.fileno()).st_size),
                    },
                    timeout=TRANSFER_TIMEOUT,
                )
            return Checkpoint.from_json(as_object(obj, "checkpoint"))
        finally:
            transport.close()
