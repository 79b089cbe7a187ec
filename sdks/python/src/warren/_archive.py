"""Tar packing and safe unpacking for ``files.upload`` and ``files.download``
(the agent speaks ``application/x-tar`` for both)."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path
from typing import IO, Iterator, List

from .errors import InvalidRequestError, ProtocolError

CHUNK = 1 << 20
"""Bytes per piece of a streamed upload."""


def pack(src: Path, out: IO[bytes]) -> None:
    """Writes a tar of ``src`` to ``out``: a directory's contents under
    relative names (symlinks kept as links), or a single file under its name."""
    if not src.exists() and not src.is_symlink():
        raise InvalidRequestError("invalid_request", None, f"{src} does not exist")
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if src.is_dir() and not src.is_symlink():
            for child in sorted(os.listdir(src)):
                tar.add(str(src / child), arcname=child)
        else:
            tar.add(str(src), arcname=src.name)


def chunks(f: IO[bytes]) -> Iterator[bytes]:
    """The rest of ``f`` in pieces of :data:`CHUNK` bytes."""
    while True:
        piece = f.read(CHUNK)
        if not piece:
            return
        yield piece


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _checked_members(tar: tarfile.TarFile, dest: Path) -> List[tarfile.TarInfo]:
    """The members, refusing any that would land outside ``dest``: absolute
    names, ``..``, paths through a symlink pointing away, hard links out."""
    root = os.path.realpath(dest)
    members = []
    for member in tar.getmembers():
        name = member.name
        parts = Path(name).parts
        if os.path.isabs(name) or ".." in parts:
            raise ProtocolError(
                "invalid_response", None, f"archive entry {name!r} escapes the target"
            )
        target = os.path.realpath(os.path.join(root, os.path.dirname(name)))
        if not _inside(root, target):
            raise ProtocolError(
                "invalid_response", None, f"archive entry {name!r} escapes the target"
            )
        if member.islnk():
            link = os.path.realpath(os.path.join(root, member.linkname))
            if not _inside(root, link):
                raise ProtocolError(
                    "invalid_response", None, f"hard link {name!r} points outside the target"
                )
        if member.isdev():
            continue
        members.append(member)
    return members


def unpack_dir(archive: IO[bytes], dest: Path) -> None:
    """Extracts a directory's tar under ``dest`` (created if missing)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=archive, mode="r:") as tar:
        members = _checked_members(tar, dest)
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(str(dest), members=members, filter="tar")
        else:  # Python < 3.9.17: the members were checked above
            tar.extractall(str(dest), members=members)


def unpack_file(archive: IO[bytes], dest: Path) -> None:
    """Writes the one regular file of a file's tar to ``dest`` (its mode
    kept), creating missing parent directories."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=archive, mode="r:") as tar:
        for member in tar:
            if member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    break
                with source, open(dest, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
                os.chmod(dest, member.mode & 0o7777)
                return
    raise ProtocolError("invalid_response", None, "the download holds no regular file")
