"""The control plane through the `e2b` Python SDK."""

import secrets
import time

import pytest
from e2b import (
    AsyncSandbox,
    NotFoundException,
    Sandbox,
    SandboxQuery,
    SandboxState,
)

from conftest import eventually, get_via_host


def test_create_with_metadata_and_envs(new):
    run = secrets.token_hex(4)
    s = new(metadata={"suite": "e2b-py", "run": run}, envs={"GREETING": "hello from create"})
    info = s.get_info()
    assert info.sandbox_id == s.sandbox_id
    assert info.template_id == "base"
    assert info.state == SandboxState.RUNNING
    assert info.metadata.get("run") == run
    assert info.metadata.get("suite") == "e2b-py"
    assert info.end_at > info.started_at
    assert s.commands.run('echo "$GREETING"').stdout == "hello from create\n"
    assert s.is_running()


def test_list_with_metadata_filter_and_paging(new):
    run = secrets.token_hex(4)
    a = new(metadata={"run": run})
    b = new(metadata={"run": run})
    new(metadata={"run": "other-" + run})
    paginator = Sandbox.list(query=SandboxQuery(metadata={"run": run}), limit=1)
    found = []
    pages = 0
    while paginator.has_next and pages < 10:
        found.extend(paginator.next_items())
        pages += 1
    assert sorted(x.sandbox_id for x in found) == sorted([a.sandbox_id, b.sandbox_id])
    assert pages >= 2
    running = Sandbox.list(
        query=SandboxQuery(metadata={"run": run}, state=[SandboxState.RUNNING])
    ).next_items()
    assert len(running) == 2


def test_connect(new):
    s = new()
    s.files.write("/tmp/marker", "same sandbox")
    again = Sandbox.connect(s.sandbox_id)
    assert again.sandbox_id == s.sandbox_id
    assert again.files.read("/tmp/marker") == "same sandbox"


def test_set_timeout(new):
    s = new(timeout=60)
    s.set_timeout(600)
    info = s.get_info()
    left = info.end_at.timestamp() - time.time()
    assert 500 < left <= 605


def test_pause_and_resume_keep_the_disk(new):
    s = new()
    s.files.write("/home/user/kept.txt", "kept across pause")
    assert s.beta_pause() in (True, None)
    assert Sandbox.get_info(s.sandbox_id).state == SandboxState.PAUSED
    paused = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()
    assert s.sandbox_id in [x.sandbox_id for x in paused]
    resumed = Sandbox.connect(s.sandbox_id)
    assert resumed.get_info().state == SandboxState.RUNNING
    assert resumed.files.read("/home/user/kept.txt") == "kept across pause"
    assert resumed.commands.run("echo alive").stdout == "alive\n"


def test_kill():
    s = Sandbox.create()
    assert s.kill() is True
    assert Sandbox.kill(s.sandbox_id) is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(s.sandbox_id)


def test_get_host_reaches_a_server(new):
    s = new()
    s.files.write("/tmp/www/index.html", "served from the sandbox\n")
    s.commands.run("cd /tmp/www && python3 -m http.server 8000", background=True)
    host = s.get_host(8000)
    assert host.split(".")[0] == f"8000-{s.sandbox_id}"

    def ok():
        status, body = get_via_host(host, "/index.html")
        return body if status == 200 else None

    assert eventually(ok, 30, f"GET http://{host}/index.html") == "served from the sandbox\n"


@pytest.mark.parametrize("_", [None])
def test_async_sandbox(_):
    import asyncio

    async def flow():
        s = await AsyncSandbox.create(metadata={"suite": "e2b-py-async"})
        try:
            r = await s.commands.run("echo async; whoami")
            assert r.stdout == "async\nuser\n"
            await s.files.write("/tmp/a.txt", "async file")
            assert await s.files.read("/tmp/a.txt") == "async file"
            assert (await s.get_info()).metadata.get("suite") == "e2b-py-async"
        finally:
            await s.kill()

    asyncio.run(flow())


def test_snapshot_and_create_from_it(new, made):
    s = new()
    s.files.write("/home/user/snap.txt", "in the snapshot")
    snap = s.create_snapshot()
    assert snap.snapshot_id
    from_snap = Sandbox.create(template=snap.snapshot_id)
    made.append(from_snap)
    assert from_snap.sandbox_id != s.sandbox_id
    assert from_snap.files.read("/home/user/snap.txt") == "in the snapshot"
    assert Sandbox.delete_snapshot(snap.snapshot_id) is True


def test_fork(new, made):
    s = new()
    s.files.write("/home/user/forked.txt", "before the fork")
    forks = s.fork(count=2)
    assert len(forks) == 2
    for f in forks:
        assert isinstance(f, Sandbox), f
        made.append(f)
        assert f.files.read("/home/user/forked.txt") == "before the fork"
    forks[0].files.write("/home/user/forked.txt", "changed")
    assert forks[1].files.read("/home/user/forked.txt") == "before the fork"
    assert s.files.read("/home/user/forked.txt") == "before the fork"


def test_get_metrics_reports_cpu_and_memory(new):
    s = new()
    s.commands.run("true")
    metrics = s.get_metrics()
    assert metrics, "no metrics"
    m = metrics[-1]
    assert m.cpu_count > 0
    assert 0 < m.mem_used <= m.mem_total


def test_on_timeout_pause_pauses_and_connect_resumes(new):
    s = new(timeout=5, lifecycle={"on_timeout": "pause"})
    s.files.write("/home/user/auto.txt", "kept across auto-pause")

    def paused():
        return Sandbox.get_info(s.sandbox_id).state == SandboxState.PAUSED or None

    eventually(paused, 60, "the sandbox to pause at its timeout")
    resumed = Sandbox.connect(s.sandbox_id, timeout=60)
    assert resumed.get_info().state == SandboxState.RUNNING
    assert resumed.files.read("/home/user/auto.txt") == "kept across auto-pause"
