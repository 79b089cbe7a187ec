"""``sandbox.files`` and ``sandbox.pty`` (sync) against a real server."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import List

import pytest
from helpers import SLOW, wait_until

from warren import ConflictError, EditConflictError, FsEvent, NotFoundError, Sandbox, WarrenError


def test_text_and_bytes_round_trip(shared_sandbox: Sandbox) -> None:
    files = shared_sandbox.files
    written = files.write("/tmp/rt/notes.txt", "héllo\nwörld\n")
    assert written.path == "/tmp/rt/notes.txt"
    assert written.bytes == len("héllo\nwörld\n".encode())
    assert files.read("/tmp/rt/notes.txt") == "héllo\nwörld\n"
    blob = bytes(range(256)) * 64
    files.write("/tmp/rt/blob.bin", blob)
    assert files.read_bytes("/tmp/rt/blob.bin") == blob
    assert files.read_bytes("/tmp/rt/blob.bin", offset=10, length=5) == blob[10:15]
    assert files.read_bytes("/tmp/rt/blob.bin", offset=len(blob) - 3) == blob[-3:]
    assert files.read_bytes("/tmp/rt/blob.bin", length=4) == blob[:4]
    with pytest.raises(WarrenError) as beyond:
        files.read_bytes("/tmp/rt/blob.bin", offset=len(blob) + 10)
    assert (beyond.value.code, beyond.value.status) == ("range_not_satisfiable", 416)
    files.write("/tmp/rt/streamed.bin", io.BytesIO(blob))
    assert files.read_bytes("/tmp/rt/streamed.bin") == blob
    digest = shared_sandbox.exec.run("md5sum < /tmp/rt/blob.bin").stdout.split()[0]
    assert digest == hashlib.md5(blob).hexdigest()


def test_list_stat_exists_and_modes(shared_sandbox: Sandbox) -> None:
    files = shared_sandbox.files
    files.write("/tmp/ls/b.sh", "#!/bin/sh\necho hi\n", mode=0o755)
    files.write("/tmp/ls/a.txt", "aaaa", mode=0o600)
    files.make_dir("/tmp/ls/sub/deeper")
    entries = files.list("/tmp/ls")
    assert [e.name for e in entries] == ["a.txt", "b.sh", "sub"]
    by_name = {e.name: e for e in entries}
    assert by_name["a.txt"].size == 4 and not by_name["a.txt"].is_dir
    assert by_name["a.txt"].mode & 0o777 == 0o600
    assert by_name["b.sh"].mode & 0o777 == 0o755
    assert by_name["sub"].is_dir
    assert by_name["a.txt"].path == "/tmp/ls/a.txt"
    assert by_name["a.txt"].modified_at is not None
    assert shared_sandbox.exec.run("/tmp/ls/b.sh").stdout == "hi\n"

    stat = files.stat("/tmp/ls/a.txt")
    assert (stat.exists, stat.is_file, stat.is_dir, stat.size) == (True, True, False, 4)
    missing = files.stat("/tmp/ls/none")
    assert not missing.exists and missing.modified_at is None
    assert files.exists("/tmp/ls/sub/deeper")
    assert not files.exists("/tmp/ls/none")


def test_move_remove_and_errors(shared_sandbox: Sandbox) -> None:
    files = shared_sandbox.files
    files.write("/tmp/mv/src.txt", "payload")
    files.write("/tmp/mv/taken.txt", "other")
    with pytest.raises(WarrenError) as info:
        files.move("/tmp/mv/src.txt", "/tmp/mv/taken.txt")
    assert (info.value.code, info.value.status) == ("already_exists", 409)
    files.move("/tmp/mv/src.txt", "/tmp/mv/taken.txt", overwrite=True)
    assert files.read("/tmp/mv/taken.txt") == "payload"
    assert not files.exists("/tmp/mv/src.txt")
    with pytest.raises(WarrenError) as info:
        files.remove("/tmp/mv")
    assert info.value.code == "directory_not_empty"
    files.remove("/tmp/mv", recursive=True)
    assert not files.exists("/tmp/mv")
    with pytest.raises(NotFoundError) as missing:
        files.read("/tmp/mv/taken.txt")
    assert (missing.value.code, missing.value.status) == ("file_not_found", 404)


def test_edit_and_its_conflict_code(shared_sandbox: Sandbox) -> None:
    files = shared_sandbox.files
    files.write("/tmp/edit.py", "x = 1\ny = 2\nx = 1\n")
    with pytest.raises(EditConflictError) as twice:
        files.edit("/tmp/edit.py", "x = 1", "x = 3")
    assert (twice.value.code, twice.value.status) == ("edit_conflict", 409)
    with pytest.raises(EditConflictError):
        files.edit("/tmp/edit.py", "z = 9", "z = 0")
    result = files.edit("/tmp/edit.py", "y = 2", "y = 20")
    assert result.bytes == len("x = 1\ny = 20\nx = 1\n")
    assert files.read("/tmp/edit.py") == "x = 1\ny = 20\nx = 1\n"


def test_upload_and_download(shared_sandbox: Sandbox, tmp_path: Path) -> None:
    src = tmp_path / "project"
    (src / "pkg").mkdir(parents=True)
    (src / "README").write_text("read me\n")
    (src / "pkg" / "data.bin").write_bytes(os.urandom(300_000))
    (src / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (src / "run.sh").chmod(0o755)
    os.symlink("README", src / "link")

    info = shared_sandbox.files.upload(src, "/work/project")
    assert info.path == "/work/project"
    assert [e.name for e in shared_sandbox.files.list("/work/project")] == [
        "README",
        "link",
        "pkg",
        "run.sh",
    ]
    assert shared_sandbox.exec.run("/work/project/run.sh").stdout == "ran\n"
    assert shared_sandbox.exec.run("readlink /work/project/link").stdout == "README\n"

    shared_sandbox.files.upload(src / "README", "/work/single")
    assert shared_sandbox.files.read("/work/single/README") == "read me\n"

    back = shared_sandbox.files.download("/work/project", tmp_path / "back")
    assert (back / "README").read_text() == "read me\n"
    assert (back / "pkg" / "data.bin").read_bytes() == (src / "pkg" / "data.bin").read_bytes()
    assert os.readlink(back / "link") == "README"
    assert os.access(back / "run.sh", os.X_OK)

    one = shared_sandbox.files.download("/work/project/README", tmp_path)
    assert one == tmp_path / "README"
    assert one.read_text() == "read me\n"
    renamed = shared_sandbox.files.download("/work/project/README", tmp_path / "new" / "copy.txt")
    assert renamed.read_text() == "read me\n"


def test_watch_reports_changes(shared_sandbox: Sandbox) -> None:
    files = shared_sandbox.files
    files.make_dir("/tmp/watched")
    with files.watch("/tmp/watched", recursive=True) as watch:
        files.write("/tmp/watched/new.txt", "1")
        files.make_dir("/tmp/watched/dir")
        events: List[FsEvent] = []
        for event in watch:
            events.append(event)
            if event.path == "/tmp/watched/dir":
                break
    assert FsEvent(kind="create", path="/tmp/watched/new.txt", is_dir=False) in events
    assert any(e.kind == "create" and e.is_dir for e in events)


def test_watch_with_callback(shared_sandbox: Sandbox) -> None:
    files = shared_sandbox.files
    files.make_dir("/tmp/watched-cb")
    seen: List[FsEvent] = []
    handle = files.watch("/tmp/watched-cb", on_event=seen.append)
    try:
        files.write("/tmp/watched-cb/a", "1")
        files.remove("/tmp/watched-cb/a")
        wait_until(lambda: any(e.kind == "delete" for e in seen), "a delete event")
    finally:
        handle.close()
    assert seen[0].kind == "create"
    assert handle.error is None


def test_pty_echo_resize_and_exit(shared_sandbox: Sandbox) -> None:
    output = bytearray()
    lock = threading.Lock()

    def on_data(data: bytes) -> None:
        with lock:
            output.extend(data)

    def seen(text: bytes) -> bool:
        with lock:
            return text in output

    terminal = shared_sandbox.pty.create(cols=80, rows=24, on_data=on_data)
    assert terminal.process_id.startswith("proc_")
    terminal.send("stty size; echo hello-$((6*7))\n")
    wait_until(lambda: seen(b"24 80") and seen(b"hello-42"), "the echo")
    terminal.resize(100, 30)
    terminal.send(b"stty size\n")
    wait_until(lambda: seen(b"30 100"), "the new size")
    terminal.send("exit 7\n")
    status = terminal.wait(timeout=SLOW)
    assert (status.exit_code, status.signal) == (7, None)
    assert terminal.exit_code == 7
    assert terminal.errors == []
    with pytest.raises(ConflictError) as closed:
        terminal.send("echo too late\n")
    assert closed.value.code == "process_not_running"


def test_pty_delivers_every_short_commands_exit_and_output(shared_sandbox: Sandbox) -> None:
    # A short command's output, exit frame and close can arrive together
    # with the handshake's answer; none of it may be lost (100 in a row).
    for i in range(100):
        output = bytearray()
        terminal = shared_sandbox.pty.create(
            cmd=f"echo short-{i}; exit {i % 7}", on_data=output.extend
        )
        status = terminal.wait(timeout=SLOW)
        assert (status.exit_code, status.signal) == (i % 7, None), f"command {i}"
        assert f"short-{i}".encode() in output, f"output of command {i}: {bytes(output)!r}"


def test_pty_iteration_reconnect_and_close(shared_sandbox: Sandbox) -> None:
    first = shared_sandbox.pty.create(cmd=["/bin/sh"], cols=50, rows=10)
    first.send("echo marker-one\n")
    first.disconnect()
    again = shared_sandbox.pty.connect(first.process_id)
    again.send("echo marker-two; exit\n")
    data = b"".join(again)
    assert b"marker-one" in data
    assert b"marker-two" in data
    assert again.wait(timeout=SLOW).exit_code == 0

    hung = shared_sandbox.pty.create(cmd="sleep 300")
    hung.close()
    info = shared_sandbox.exec.attach(hung.process_id).wait(timeout=SLOW)
    assert info.signal == 1  # SIGHUP
