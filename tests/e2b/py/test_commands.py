"""sandbox.commands and sandbox.pty through the `e2b` Python SDK."""

import threading
import time

import pytest
from e2b import CommandExitException, PtySize, TimeoutException

from conftest import eventually


def test_foreground(sbx):
    r = sbx.commands.run("echo out; echo err >&2")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "out\n", "err\n")


def test_exit_code_raises(sbx):
    with pytest.raises(CommandExitException) as e:
        sbx.commands.run("echo partial; exit 3")
    assert e.value.exit_code == 3
    assert e.value.stdout == "partial\n"


def test_env_cwd_default_user(sbx):
    r = sbx.commands.run('echo "$A"; pwd; whoami; echo "$HOME"', envs={"A": "one"}, cwd="/tmp")
    assert r.stdout == "one\n/tmp\nuser\n/home/user\n"


def test_user_root(sbx):
    assert sbx.commands.run("whoami", user="root").stdout == "root\n"
    assert sbx.commands.run("whoami", user="user").stdout == "user\n"


def test_streaming_callbacks(sbx):
    out, err = [], []
    r = sbx.commands.run(
        "echo one; sleep 1; echo two >&2; echo three",
        on_stdout=out.append,
        on_stderr=err.append,
    )
    assert "".join(out) == "one\nthree\n"
    assert "".join(err) == "two\n"
    assert r.stdout == "one\nthree\n"


def test_background_and_list(sbx):
    h = sbx.commands.run("sleep 1; echo done", background=True)
    assert h.pid in [p.pid for p in sbx.commands.list()]
    r = h.wait()
    assert r.stdout == "done\n"


def test_stdin(sbx):
    h = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.send_stdin(h.pid, "first\n")
    h.send_stdin("second\n")
    sbx.commands.close_stdin(h.pid)
    assert h.wait().stdout == "first\nsecond\n"


def test_kill(sbx):
    h = sbx.commands.run("sleep 600", background=True)
    assert h.kill() is True
    with pytest.raises(CommandExitException):
        h.wait()
    h2 = sbx.commands.run("sleep 600", background=True)
    assert sbx.commands.kill(h2.pid) is True
    eventually(lambda: h2.pid not in [p.pid for p in sbx.commands.list()], 10, "the process to go")
    assert sbx.commands.kill(h2.pid) is False


def test_connect_to_a_running_command(sbx):
    h = sbx.commands.run("sleep 1; echo later", background=True)
    again = sbx.commands.connect(h.pid)
    assert again.wait().stdout == "later\n"


def test_timeout(sbx):
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        sbx.commands.run("sleep 30", timeout=2)
    assert time.monotonic() - started < 15


def test_pty_input_resize_kill(sbx):
    screen = []
    h = sbx.pty.create(PtySize(rows=24, cols=80))
    t = threading.Thread(target=lambda: _drain(h, screen), daemon=True)
    t.start()
    text = lambda: b"".join(screen).decode(errors="replace")  # noqa: E731
    sbx.pty.send_stdin(h.pid, b'echo "tty:$(tty | cut -c1-8) user:$(whoami)"; stty size\n')
    eventually(lambda: "tty:/dev/pts" in text(), 15, "the shell to answer")
    assert "user:user" in text()
    eventually(lambda: "24 80" in text(), 10, "stty size 24 80")
    sbx.pty.resize(h.pid, PtySize(rows=40, cols=120))
    sbx.pty.send_stdin(h.pid, b"stty size\n")
    eventually(lambda: "40 120" in text(), 10, "stty size 40 120")
    assert sbx.pty.kill(h.pid) is True
    t.join(15)
    assert not t.is_alive()


def _drain(handle, screen):
    try:
        handle.wait(on_pty=screen.append)
    except Exception:
        pass
