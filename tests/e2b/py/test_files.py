"""sandbox.files through the `e2b` Python SDK."""

import hashlib
import io
import os

import pytest
from e2b import FileType, FilesystemEventType, InvalidArgumentException, NotFoundException
from e2b.sandbox.filesystem.filesystem import WriteEntry

from conftest import eventually


def test_text(sbx):
    info = sbx.files.write("/home/user/hello.txt", "hello, warren\n")
    assert info.path == "/home/user/hello.txt"
    assert sbx.files.read("/home/user/hello.txt") == "hello, warren\n"
    assert sbx.commands.run("stat -c %U /home/user/hello.txt").stdout == "user\n"


def test_bytes_and_streams(sbx):
    data = os.urandom(300_000)
    sbx.files.write("/tmp/bytes.bin", data)
    back = sbx.files.read("/tmp/bytes.bin", format="bytes")
    assert bytes(back) == data
    streamed = b"".join(sbx.files.read("/tmp/bytes.bin", format="stream"))
    assert streamed == data
    sbx.files.write("/tmp/from-io.bin", io.BytesIO(b"from a file object"))
    assert sbx.files.read("/tmp/from-io.bin") == "from a file object"
    md5 = sbx.commands.run("md5sum /tmp/bytes.bin | cut -d' ' -f1").stdout.strip()
    assert md5 == hashlib.md5(data).hexdigest()


def test_write_files(sbx):
    infos = sbx.files.write_files(
        [WriteEntry(path="/tmp/multi/a.txt", data="A"), WriteEntry(path="/tmp/multi/b.txt", data=b"B")]
    )
    assert len(infos) == 2
    assert sbx.files.read("/tmp/multi/b.txt") == "B"


def test_dirs_list_depth_exists_info(sbx):
    assert sbx.files.make_dir("/tmp/tree/a/b") is True
    assert sbx.files.make_dir("/tmp/tree/a/b") is False
    sbx.files.write("/tmp/tree/top.txt", "top")
    sbx.files.write("/tmp/tree/a/mid.txt", "mid")
    one = sbx.files.list("/tmp/tree")
    assert sorted(e.name for e in one) == ["a", "top.txt"]
    assert next(e for e in one if e.name == "a").type == FileType.DIR
    two = sbx.files.list("/tmp/tree", depth=2)
    assert sorted(e.path for e in two) == [
        "/tmp/tree/a",
        "/tmp/tree/a/b",
        "/tmp/tree/a/mid.txt",
        "/tmp/tree/top.txt",
    ]
    assert sbx.files.exists("/tmp/tree/top.txt")
    assert not sbx.files.exists("/tmp/tree/nope")
    info = sbx.files.get_info("/tmp/tree/top.txt")
    assert (info.type, info.size, info.name) == (FileType.FILE, 3, "top.txt")


def test_rename_remove(sbx):
    sbx.files.write("/tmp/mv/from.txt", "moving")
    moved = sbx.files.rename("/tmp/mv/from.txt", "/tmp/mv/to.txt")
    assert moved.path == "/tmp/mv/to.txt"
    assert sbx.files.read("/tmp/mv/to.txt") == "moving"
    sbx.files.remove("/tmp/mv")
    assert not sbx.files.exists("/tmp/mv")


def test_missing_and_invalid(sbx):
    with pytest.raises(NotFoundException):
        sbx.files.read("/tmp/does/not/exist")
    sbx.files.write("/tmp/a-file", "x")
    with pytest.raises(InvalidArgumentException):
        sbx.files.list("/tmp/a-file")


def test_watch_dir(sbx):
    sbx.files.make_dir("/tmp/watched")
    handle = sbx.files.watch_dir("/tmp/watched")
    try:
        sbx.files.write("/tmp/watched/new.txt", "x")
        sbx.commands.run("rm /tmp/watched/new.txt")
        seen = []

        def removed():
            seen.extend(handle.get_new_events())
            return any(e.type == FilesystemEventType.REMOVE for e in seen)

        eventually(removed, 10, "a remove event")
        assert any(e.name == "new.txt" and e.type == FilesystemEventType.CREATE for e in seen), seen
    finally:
        handle.stop()


def test_forty_writes_in_a_row(sbx):
    for i in range(40):
        sbx.files.write(f"/tmp/loop/f{i}.txt", f"file {i}")
    assert len(sbx.files.list("/tmp/loop")) == 40
    assert sbx.files.read("/tmp/loop/f39.txt") == "file 39"
