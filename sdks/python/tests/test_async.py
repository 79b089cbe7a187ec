"""The asyncio client (``AsyncSandbox``) against a real server."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import List

import pytest
from conftest import Server
from helpers import SLOW, async_unless_missing_route, async_wait_until

from warren import (
    AsyncSandbox,
    AuthenticationError,
    CommandExitError,
    ConflictError,
    EditConflictError,
    ExitStatus,
    FsEvent,
    NotFoundError,
    ProcessOutput,
    SandboxNotFoundError,
    WarrenTimeoutError,
)


async def test_create_run_and_context_manager(base_ready: Server) -> None:
    async with AsyncSandbox.create(envs={"MODE": "async"}, labels={"kind": "async"}) as sbx:
        sandbox_id = sbx.sandbox_id
        result = await sbx.exec.run("cat /etc/os-release")
        assert result.exit_code == 0 and "Debian" in result.stdout
        assert (await sbx.exec.run("exit 9")).exit_code == 9
        env = await sbx.exec.run(["sh", "-c", 'echo "$MODE $X"; pwd'], env={"X": "y"}, cwd="/tmp")
        assert env.stdout == "async y\n/tmp\n"
        with pytest.raises(CommandExitError):
            await sbx.exec.run("false", check=True)
        assert await sbx.is_running()
    with pytest.raises(SandboxNotFoundError):
        await AsyncSandbox.connect(sandbox_id)


async def test_await_create_connect_and_kill(base_ready: Server) -> None:
    sbx = await AsyncSandbox.create()
    try:
        other = await AsyncSandbox.connect(sbx.sandbox_id)
        assert (await other.exec.run("echo via-connect")).stdout == "via-connect\n"
        await other.close()
        assert await sbx.kill() is True
        with pytest.raises(SandboxNotFoundError) as info:
            await sbx.exec.run("true")
        assert info.value.status == 404
        assert await sbx.kill() is False
    finally:
        await sbx.close()


async def test_start_with_sync_and_async_callbacks(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        out: List[str] = []
        err: List[str] = []
        exits: List[ExitStatus] = []

        async def on_stderr(text: str) -> None:
            err.append(text)

        handle = await sbx.exec.start(
            "for i in 1 2; do echo o$i; echo e$i >&2; sleep 0.1; done; exit 6",
            on_stdout=out.append,
            on_stderr=on_stderr,
            on_exit=exits.append,
        )
        result = await handle.wait(timeout=SLOW)
        assert (result.exit_code, result.stdout, result.stderr) == (6, "o1\no2\n", "e1\ne2\n")
        assert "".join(out) == "o1\no2\n" and "".join(err) == "e1\ne2\n"
        assert exits == [ExitStatus(6, None)]


async def test_iterate_kill_stdin_attach_and_list(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        handle = await sbx.exec.start("echo first; echo second >&2")
        chunks: List[ProcessOutput] = [c async for c in handle]
        assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"first\n"
        assert b"".join(c.data for c in chunks if c.stream == "stderr") == b"second\n"
        assert handle.exit_code == 0

        sleeper = await sbx.exec.start("sleep 300")
        assert sleeper.process_id in {p.process_id for p in await sbx.exec.list() if p.running}
        with pytest.raises(WarrenTimeoutError):
            await sleeper.wait(timeout=0.5)
        assert await sleeper.kill()
        assert (await sleeper.wait(timeout=SLOW)).signal == 9
        assert await sleeper.kill() is False
        await sleeper.remove()
        assert sleeper.process_id not in {p.process_id for p in await sbx.exec.list()}

        cat = await sbx.exec.start("cat")
        await cat.send_stdin("abc")
        await cat.send_stdin(b"\xffdef")
        await cat.close_stdin()
        attached = await sbx.exec.attach(cat.process_id)
        done = await attached.wait(timeout=SLOW)
        assert done.exit_code == 0
        assert done.stdout == "abc\ufffddef"


async def test_files_round_trip(base_ready: Server, tmp_path: Path) -> None:
    async with AsyncSandbox.create() as sbx:
        files = sbx.files
        await files.write("/tmp/a/t.txt", "text ✓", mode=0o640)
        assert await files.read("/tmp/a/t.txt") == "text ✓"
        await files.write("/tmp/a/b.bin", b"\x00\xff" * 1000)
        assert await files.read_bytes("/tmp/a/b.bin") == b"\x00\xff" * 1000
        assert await files.read_bytes("/tmp/a/b.bin", offset=1, length=2) == b"\xff\x00"
        await files.write("/tmp/a/c.bin", io.BytesIO(b"streamed" * 100_000))
        assert await files.read_bytes("/tmp/a/c.bin") == b"streamed" * 100_000
        await files.remove("/tmp/a/c.bin")
        assert [e.name for e in await files.list("/tmp/a")] == ["b.bin", "t.txt"]
        stat = await files.stat("/tmp/a/t.txt")
        assert stat.is_file and stat.mode & 0o777 == 0o640
        assert await files.exists("/tmp/a") and not await files.exists("/tmp/zzz")
        await files.make_dir("/tmp/a/d")
        await files.move("/tmp/a/t.txt", "/tmp/a/d/t.txt")
        await files.edit("/tmp/a/d/t.txt", "text", "TEXT")
        assert await files.read("/tmp/a/d/t.txt") == "TEXT ✓"
        with pytest.raises(EditConflictError) as conflict:
            await files.edit("/tmp/a/d/t.txt", "absent", "x")
        assert conflict.value.code == "edit_conflict"
        await files.remove("/tmp/a", recursive=True)
        with pytest.raises(NotFoundError) as missing:
            await files.read("/tmp/a/d/t.txt")
        assert missing.value.code == "file_not_found"

        src = tmp_path / "src"
        (src / "x").mkdir(parents=True)
        (src / "x" / "big.bin").write_bytes(os.urandom(200_000))
        (src / "top.txt").write_text("top")
        await files.upload(src, "/work/in")
        assert (await sbx.exec.run("cat /work/in/top.txt")).stdout == "top"
        back = await files.download("/work/in", tmp_path / "out")
        assert (back / "x" / "big.bin").read_bytes() == (src / "x" / "big.bin").read_bytes()
        single = await files.download("/work/in/top.txt", tmp_path / "one.txt")
        assert single.read_text() == "top"


async def test_watch(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        await sbx.files.make_dir("/tmp/w")
        async with await sbx.files.watch("/tmp/w") as watch:
            await sbx.files.write("/tmp/w/file", "1")
            async for event in watch:
                assert event == FsEvent(kind="create", path="/tmp/w/file", is_dir=False)
                break
        seen: List[FsEvent] = []
        handle = await sbx.files.watch("/tmp/w", on_event=seen.append)
        await sbx.files.remove("/tmp/w/file")
        await async_wait_until(lambda: any(e.kind == "delete" for e in seen), "a delete event")
        await handle.close()


async def test_pty(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        output = bytearray()
        terminal = await sbx.pty.create(cols=80, rows=24, on_data=output.extend)
        await terminal.send("echo hi-$((40+2)); stty size\n")
        await async_wait_until(lambda: b"hi-42" in output and b"24 80" in output, "the echo")
        await terminal.resize(132, 43)
        await terminal.send("stty size\n")
        await async_wait_until(lambda: b"43 132" in output, "the new size")
        await terminal.send("exit 5\n")
        assert (await terminal.wait(timeout=SLOW)).exit_code == 5
        with pytest.raises(ConflictError):
            await terminal.resize(10, 10)

        shell = await sbx.pty.create(cmd=["/bin/sh"])
        await shell.send("echo iterated; exit\n")
        data = b"".join([chunk async for chunk in shell])
        assert b"iterated" in data
        assert (await shell.wait(timeout=SLOW)).exit_code == 0


async def test_pty_delivers_every_short_commands_exit(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        for i in range(100):
            output = bytearray()
            terminal = await sbx.pty.create(
                cmd=f"echo short-{i}; exit {i % 7}", on_data=output.extend
            )
            status = await terminal.wait(timeout=SLOW)
            assert (status.exit_code, status.signal) == (i % 7, None), f"command {i}"
            assert f"short-{i}".encode() in output, f"output of command {i}: {bytes(output)!r}"


async def test_list_and_errors(base_ready: Server) -> None:
    tag = uuid.uuid4().hex
    async with (
        AsyncSandbox.create(labels={"suite": tag}) as one,
        AsyncSandbox.create(labels={"suite": tag}) as two,
    ):
        found = [i.sandbox_id async for i in AsyncSandbox.list(labels={"suite": tag}, page_size=1)]
        assert found == [one.sandbox_id, two.sandbox_id]
    with pytest.raises(AuthenticationError):
        await AsyncSandbox.create(api_key="bad")


async def test_hibernate_wake_and_checkpoints(base_ready: Server) -> None:
    async with AsyncSandbox.create() as sbx:
        await sbx.files.write("/root/keep", "kept")
        assert (await sbx.hibernate()).state == "hibernated"
        assert (await sbx.wake()).state == "running"
        assert await sbx.files.read("/root/keep") == "kept"
        assert (await sbx.set_timeout(99)).timeout_secs == 99

        checkpoint = await async_unless_missing_route(
            lambda: sbx.checkpoints.create("async-1"), "checkpoints"
        )
        await sbx.files.write("/root/keep", "changed")
        await sbx.checkpoints.restore(checkpoint.checkpoint_id)
        assert await sbx.files.read("/root/keep") == "kept"
        assert [c.checkpoint_id for c in await sbx.checkpoints.list()] == [checkpoint.checkpoint_id]
        forks = await sbx.fork(1)
        try:
            assert await forks[0].files.read("/root/keep") == "kept"
        finally:
            for fork in forks:
                await fork.kill()
                await fork.close()
        async with AsyncSandbox.create_from_checkpoint(checkpoint) as copy:
            assert await copy.files.read("/root/keep") == "kept"
        await sbx.checkpoints.delete(checkpoint)
        with pytest.raises(NotFoundError):
            await sbx.checkpoints.get(checkpoint)
