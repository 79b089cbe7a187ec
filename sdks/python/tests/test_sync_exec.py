"""``sandbox.exec`` (sync) against a real server."""

from __future__ import annotations

import threading
from typing import List

import pytest
from helpers import SLOW, wait_until

from warren import (
    CommandExitError,
    ConflictError,
    ExitStatus,
    ProcessNotFoundError,
    Sandbox,
    WarrenTimeoutError,
)


def test_run_shows_debian(shared_sandbox: Sandbox) -> None:
    result = shared_sandbox.exec.run("cat /etc/os-release")
    assert result.exit_code == 0
    assert result.ok
    assert "Debian" in result.stdout
    assert result.stderr == ""
    assert result.signal is None
    assert not result.timed_out
    assert result.duration_ms >= 0


def test_run_exit_codes_are_results(shared_sandbox: Sandbox) -> None:
    assert shared_sandbox.exec.run("exit 3").exit_code == 3
    assert shared_sandbox.exec.run(["false"]).exit_code == 1
    failed = shared_sandbox.exec.run("echo oops >&2; exit 2")
    assert (failed.exit_code, failed.stderr, failed.ok) == (2, "oops\n", False)


def test_run_check_raises_with_the_result(shared_sandbox: Sandbox) -> None:
    with pytest.raises(CommandExitError) as info:
        shared_sandbox.exec.run("echo partial; exit 5", check=True)
    assert info.value.result.exit_code == 5
    assert info.value.result.stdout == "partial\n"
    assert info.value.code == "command_failed"
    assert shared_sandbox.exec.run("true", check=True).ok


def test_run_env_cwd_stdin_and_argv(shared_sandbox: Sandbox) -> None:
    result = shared_sandbox.exec.run('echo "$FOO"; pwd', env={"FOO": "bar baz"}, cwd="/tmp")
    assert result.stdout == "bar baz\n/tmp\n"
    assert shared_sandbox.exec.run("echo $SANDBOX_WIDE").stdout == "yes\n"
    assert shared_sandbox.exec.run("cat", stdin="from stdin").stdout == "from stdin"
    argv = shared_sandbox.exec.run(["printf", "%s|%s", "a b", "$HOME"])
    assert argv.stdout == "a b|$HOME"


def test_run_output_limit(shared_sandbox: Sandbox) -> None:
    result = shared_sandbox.exec.run(
        "head -c 100000 /dev/zero | tr '\\0' a; echo err >&2", max_output_bytes=1000
    )
    assert result.exit_code == 0
    assert result.stdout == "a" * 1000
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stderr == "err\n"


def test_run_timeout_kills_the_group(shared_sandbox: Sandbox) -> None:
    result = shared_sandbox.exec.run("sleep 30 & sleep 30", timeout=1)
    assert result.timed_out
    assert result.exit_code is None
    assert result.signal == 9
    assert result.duration_ms < 20_000


def test_start_with_callbacks(shared_sandbox: Sandbox) -> None:
    out: List[str] = []
    err: List[str] = []
    exits: List[ExitStatus] = []
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.1; done; exit 4"
    handle = shared_sandbox.exec.start(
        script, on_stdout=out.append, on_stderr=err.append, on_exit=exits.append
    )
    assert handle.process_id.startswith("proc_")
    assert handle.pid > 0
    result = handle.wait(timeout=SLOW)
    assert result.exit_code == 4
    assert result.stdout == "out1\nout2\nout3\n"
    assert result.stderr == "err1\nerr2\nerr3\n"
    assert "".join(out) == result.stdout
    assert "".join(err) == result.stderr
    assert exits == [ExitStatus(exit_code=4, signal=None)]
    assert handle.exit_code == 4


def test_start_iterates_over_output(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start(["sh", "-c", "echo one; echo two >&2; printf '\\377'"])
    chunks = list(handle)
    stdout = b"".join(c.data for c in chunks if c.stream == "stdout")
    stderr = b"".join(c.data for c in chunks if c.stream == "stderr")
    assert stdout == b"one\n\xff"
    assert stderr == b"two\n"
    assert [c.cursor for c in chunks] == sorted(c.cursor for c in chunks)
    assert handle.exit_code == 0


def test_start_kill_and_list(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start("sleep 300")
    listed = {p.process_id: p for p in shared_sandbox.exec.list()}
    assert listed[handle.process_id].running
    assert listed[handle.process_id].cmd == "sleep 300"
    assert handle.kill() is True
    result = handle.wait(timeout=SLOW)
    assert result.exit_code is None
    assert result.signal == 9
    assert handle.kill() is False
    assert handle.refresh().state == "exited"
    handle.remove()
    assert handle.process_id not in {p.process_id for p in shared_sandbox.exec.list()}
    running = shared_sandbox.exec.start("sleep 300")
    with pytest.raises(ConflictError):
        running.remove()
    running.remove(force=True)
    with pytest.raises(ProcessNotFoundError):
        running.refresh()


def test_kill_with_sigterm_ends_iteration(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start("echo started; exec sleep 300")
    seen: List[bytes] = []

    def consume() -> None:
        for chunk in handle:
            seen.append(chunk.data)

    reader = threading.Thread(target=consume)
    reader.start()
    wait_until(lambda: b"started\n" in b"".join(seen), "the first output")
    assert handle.kill("SIGTERM")
    reader.join(SLOW)
    assert not reader.is_alive()
    assert handle.wait(timeout=SLOW).signal == 15


def test_stdin_of_a_running_process(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start("cat; echo done")
    handle.send_stdin("text line\n")
    handle.send_stdin(b"\x00\x01bytes\n")
    handle.close_stdin()
    result = handle.wait(timeout=SLOW)
    assert result.exit_code == 0
    assert result.stdout == "text line\n\x00\x01bytes\ndone\n"


def test_attach_replays_output(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start("echo attached; sleep 0.3; echo later >&2")
    again = shared_sandbox.exec.attach(handle.process_id)
    assert again.pid == handle.pid
    result = again.wait(timeout=SLOW)
    assert (result.stdout, result.stderr, result.exit_code) == ("attached\n", "later\n", 0)
    with pytest.raises(ProcessNotFoundError) as info:
        shared_sandbox.exec.attach("proc_doesnotexist")
    assert info.value.code == "process_not_found"
    assert info.value.status == 404


def test_wait_timeout(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start("sleep 300")
    try:
        with pytest.raises(WarrenTimeoutError):
            handle.wait(timeout=0.5)
    finally:
        handle.kill()


def test_tty_process(shared_sandbox: Sandbox) -> None:
    handle = shared_sandbox.exec.start("stty size; tty", tty=True, cols=120, rows=40)
    result = handle.wait(timeout=SLOW)
    assert result.exit_code == 0
    assert "40 120" in result.stdout
    assert "/dev/pts/" in result.stdout
