"""A real ``warren server`` for the whole test session.

The server is the binary from ``WARREN_BIN`` (default
``../../target/debug/warren`` from ``sdks/python``), started on a free
port with a fresh state directory and a random admin key. Tests reach it
through ``WARREN_URL``/``WARREN_API_KEY``, exactly as users do. Afterwards
every sandbox is destroyed, the server is stopped by its pid, and what it
left in the state directory (mounts, loop devices) and its cgroups are
removed.

Tests are skipped only when the binary has no ``server`` subcommand.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import httpx
import pytest

from warren import Sandbox, WarrenError

SDK_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = SDK_DIR.parents[1]
HEALTH_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


@dataclass
class Server:
    """A running test server."""

    url: str
    admin_key: str
    state_dir: Path
    log: Path

    def env(self) -> Dict[str, str]:
        """The environment a client process needs to reach the server."""
        return {**os.environ, "WARREN_URL": self.url, "WARREN_API_KEY": self.admin_key}


def warren_binary() -> Path:
    """The binary under test."""
    configured = os.environ.get("WARREN_BIN")
    return Path(configured) if configured else REPO_DIR / "target" / "debug" / "warren"


def _has_server_subcommand(binary: Path) -> bool:
    proc = subprocess.run(
        [str(binary), "server", "--help"], capture_output=True, timeout=60, check=False
    )
    return proc.returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mounts_under(root: Path) -> List[str]:
    """Mount points at or below ``root``, deepest first."""
    prefix = str(root)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _loop_devices_under(root: Path) -> List[str]:
    """Loop devices whose backing file is inside ``root``."""
    devices = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            target = backing.read_text().strip()
        except OSError:
            continue
        if target.startswith(str(root) + "/"):
            devices.append("/dev/" + backing.parts[3])
    return devices


def _remove_state(state_dir: Path, cgroup_parent: str) -> None:
    for point in _mounts_under(state_dir):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    for device in _loop_devices_under(state_dir):
        subprocess.run(["losetup", "-d", device], check=False, capture_output=True)
    for base in Path("/sys/fs/cgroup").glob(f"*/{cgroup_parent}"):
        for sub in sorted(base.rglob("*"), key=lambda p: len(str(p)), reverse=True):
            if sub.is_dir():
                try:
                    sub.rmdir()
                except OSError:
                    pass
        try:
            base.rmdir()
        except OSError:
            pass
    shutil.rmtree(state_dir, ignore_errors=True)


def _destroy_all(server: Server) -> None:
    """Deletes every sandbox (sandboxes outlive the server otherwise)."""
    try:
        for info in list(Sandbox.list(api_url=server.url, api_key=server.admin_key)):
            with Sandbox.connect(
                info.sandbox_id, resume=False, api_url=server.url, api_key=server.admin_key
            ):
                pass  # leaving the block destroys it
    except Exception as err:  # noqa: BLE001 - cleanup goes on; the log says why
        print(f"warren test server cleanup: {err}")


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Starts ``warren server`` once for the session and points
    ``WARREN_URL``/``WARREN_API_KEY`` at it."""
    binary = warren_binary()
    if not binary.exists():
        pytest.fail(
            f"{binary} does not exist: build it with `cargo build -p warren` (or set WARREN_BIN)"
        )
    if not _has_server_subcommand(binary):
        pytest.skip(f"{binary} has no `server` subcommand yet: the control plane is not built")
    state_dir = Path(tempfile.mkdtemp(prefix="warren-py-sdk-"))
    # mkdtemp makes it 0700, which the sandboxes' unprivileged ids cannot
    # traverse to their root file systems.
    state_dir.chmod(0o755)
    cgroup_parent = f"warren-pysdk-{uuid.uuid4().hex[:8]}"
    admin_key = "wak_" + secrets.token_hex(16)
    url = f"http://127.0.0.1:{_free_port()}"
    log = Path(tempfile.mkstemp(prefix="warren-py-sdk-server-", suffix=".log")[1])
    env = {**os.environ, "WARREN_ADMIN_KEY": admin_key}
    env.pop("WARREN_URL", None)
    env.pop("WARREN_API_KEY", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                "server",
                "--listen",
                url[len("http://") :],
                "--state-dir",
                str(state_dir),
                "--cgroup-parent",
                cgroup_parent,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    srv = Server(url=url, admin_key=admin_key, state_dir=state_dir, log=log)
    saved = {k: os.environ.get(k) for k in ("WARREN_URL", "WARREN_API_KEY")}
    try:
        _wait_healthy(proc, url, log)
        os.environ["WARREN_URL"] = url
        os.environ["WARREN_API_KEY"] = admin_key
        yield srv
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if proc.poll() is None:
            _destroy_all(srv)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _remove_state(state_dir, cgroup_parent)
        if request.session.testsfailed:
            print(f"\n--- warren server log (tail) ---\n{log.read_text(errors='replace')[-6000:]}")
        log.unlink(missing_ok=True)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"warren server exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"warren server did not become healthy:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def base_ready(server: Server) -> Server:
    """The server with its ``base`` template built (the first sandbox takes
    minutes: debootstrap), so later tests time only their own work."""
    try:
        with Sandbox.create(timeout=600) as sbx:
            assert sbx.exec.run("true").exit_code == 0
    except WarrenError as err:
        tail = server.log.read_text(errors="replace")[-6000:]
        pytest.fail(f"the first sandbox could not be created: {err}\n--- server log ---\n{tail}")
    return server


@pytest.fixture
def sandbox(base_ready: Server) -> Iterator[Sandbox]:
    """A fresh sandbox, destroyed after the test."""
    with Sandbox.create(timeout=600) as sbx:
        yield sbx


@pytest.fixture(scope="module")
def shared_sandbox(base_ready: Server) -> Iterator[Sandbox]:
    """One sandbox for a module's read-mostly tests."""
    with Sandbox.create(timeout=1800, envs={"SANDBOX_WIDE": "yes"}) as sbx:
        yield sbx
