"""Checkpoints, restore in place, wipe, fork, patches, export and import
(sync). Skipped while the server does not serve these routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Server
from helpers import unless_missing_route

from warren import (
    Checkpoint,
    CheckpointNotFoundError,
    Checkpoints,
    InvalidRequestError,
    PatchFailedError,
    Sandbox,
)


def _checkpoint(sandbox: Sandbox, name: str) -> Checkpoint:
    return unless_missing_route(lambda: sandbox.checkpoints.create(name), "checkpoints")


def test_checkpoint_restore_and_delete(sandbox: Sandbox) -> None:
    sandbox.files.write("/root/state.txt", "v1")
    first = _checkpoint(sandbox, "first")
    assert first.checkpoint_id.startswith("ckpt_")
    assert (first.name, first.sandbox_id, first.auto) == ("first", sandbox.sandbox_id, False)
    sandbox.files.write("/root/state.txt", "v2")
    sandbox.files.write("/root/later.txt", "later")
    second = sandbox.checkpoints.create("second")
    assert [c.checkpoint_id for c in sandbox.checkpoints.list()] == [
        first.checkpoint_id,
        second.checkpoint_id,
    ]
    assert sandbox.checkpoints.get(first.checkpoint_id) == first

    info = sandbox.checkpoints.restore(first)
    assert (info.sandbox_id, info.state) == (sandbox.sandbox_id, "running")
    assert sandbox.info == info
    assert sandbox.files.read("/root/state.txt") == "v1"
    assert not sandbox.files.exists("/root/later.txt")
    assert len(sandbox.checkpoints.list()) == 2  # later checkpoints are kept

    sandbox.checkpoints.restore(second)
    assert sandbox.files.read("/root/later.txt") == "later"
    sandbox.checkpoints.restore(first, discard_later=True)
    assert [c.checkpoint_id for c in sandbox.checkpoints.list()] == [first.checkpoint_id]
    with pytest.raises(CheckpointNotFoundError) as info_err:
        sandbox.checkpoints.get(second)
    assert (info_err.value.code, info_err.value.status) == ("checkpoint_not_found", 404)

    sandbox.checkpoints.delete(first)
    assert sandbox.checkpoints.list() == []


def test_wipe_resets_to_the_template(sandbox: Sandbox) -> None:
    sandbox.files.write("/root/junk.txt", "junk")
    kept = _checkpoint(sandbox, "before-wipe")
    info = unless_missing_route(sandbox.wipe, "wipe")
    assert info.state == "running"
    assert not sandbox.files.exists("/root/junk.txt")
    assert "Debian" in sandbox.exec.run("cat /etc/os-release").stdout
    assert [c.checkpoint_id for c in sandbox.checkpoints.list()] == [kept.checkpoint_id]


def test_fork_and_create_from_checkpoint(sandbox: Sandbox) -> None:
    sandbox.files.write("/root/origin.txt", "origin")
    forks = unless_missing_route(lambda: sandbox.fork(2, name="two-forks"), "fork")
    try:
        assert len(forks) == 2
        assert len({f.sandbox_id for f in forks} | {sandbox.sandbox_id}) == 3
        forks[0].files.write("/root/origin.txt", "changed in fork 0")
        assert forks[1].files.read("/root/origin.txt") == "origin"
        assert sandbox.files.read("/root/origin.txt") == "origin"
    finally:
        for fork in forks:
            with fork:
                pass
    assert "two-forks" in [c.name for c in sandbox.checkpoints.list()]
    checkpoint = sandbox.checkpoints.create("seed")
    with Sandbox.create_from_checkpoint(checkpoint, labels={"from": "checkpoint"}) as copy:
        assert copy.files.read("/root/origin.txt") == "origin"
        assert copy.sandbox_id != sandbox.sandbox_id
        assert copy.info.labels == {"from": "checkpoint"}
        assert copy.info.from_checkpoint == checkpoint.checkpoint_id


def test_patches_run_in_order_and_a_failing_one_fails(sandbox: Sandbox) -> None:
    checkpoint = _checkpoint(sandbox, "patched")
    first = unless_missing_route(
        lambda: sandbox.checkpoints.add_patch(
            checkpoint, "#!/bin/sh\necho one > /root/patched.txt\n", name="one"
        ),
        "patches",
    )
    second = sandbox.checkpoints.add_patch(checkpoint, "echo two >> /root/patched.txt", timeout=30)
    assert first.patch_id.startswith("pat_") and first.name == "one"
    assert second.timeout_ms == 30_000
    patches = sandbox.checkpoints.list_patches(checkpoint)
    assert [p.patch_id for p in patches] == [first.patch_id, second.patch_id]
    with Sandbox.create_from_checkpoint(checkpoint) as copy:
        assert copy.files.read("/root/patched.txt") == "one\ntwo\n"

    failing = sandbox.checkpoints.add_patch(checkpoint, "echo broken >&2; exit 3")
    with pytest.raises(PatchFailedError) as failed:
        Sandbox.create_from_checkpoint(checkpoint)
    assert (failed.value.code, failed.value.status) == ("patch_failed", 422)
    assert "broken" in failed.value.detail
    sandbox.checkpoints.delete_patch(checkpoint, failing.patch_id)
    with Sandbox.create_from_checkpoint(checkpoint) as copy:
        assert copy.files.read("/root/patched.txt") == "one\ntwo\n"


def test_export_and_import(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.files.write("/root/travels.txt", "across servers")
    checkpoint = _checkpoint(sandbox, "to-export")
    exported = unless_missing_route(
        lambda: sandbox.checkpoints.export(checkpoint, tmp_path / "ckpt.export"), "export"
    )
    assert exported.stat().st_size > 0
    imported = Checkpoints.import_file(exported)
    assert imported.checkpoint_id != checkpoint.checkpoint_id
    with Sandbox.create_from_checkpoint(imported) as copy:
        assert copy.files.read("/root/travels.txt") == "across servers"


def test_auto_checkpoint_after_each_run(base_ready: Server) -> None:
    try:
        sbx = Sandbox.create(auto_checkpoint=True, auto_checkpoint_keep=2)
    except InvalidRequestError as err:
        if "checkpoint" not in err.detail:
            raise
        pytest.skip(f"the server does not take checkpoints yet ({err.detail})")
    with sbx:
        result = sbx.exec.run("echo one > /root/f")
        assert result.checkpoint is not None and result.checkpoint.startswith("ckpt_")
        taken = sbx.checkpoints.get(result.checkpoint)
        assert taken.auto and taken.command == "echo one > /root/f" and taken.exit_code == 0
        assert taken.name.startswith("cmd_")
        sbx.exec.run("rm -rf /root/f /etc")
        sbx.checkpoints.restore(result.checkpoint)
        assert sbx.files.read("/root/f") == "one\n"
        assert sbx.files.exists("/etc/os-release")
        assert sbx.info.auto_checkpoint and sbx.info.auto_checkpoint_keep == 2
        for i in range(3):
            sbx.exec.run(f"echo {i}")
        kept = [c for c in sbx.checkpoints.list() if c.auto]
        assert [c.command for c in kept] == ["echo 1", "echo 2"]


def test_diff_lists_changed_paths_and_unified_diffs(sandbox: Sandbox) -> None:
    sandbox.files.write("/srv/py/t.txt", "a\nb\n")
    sandbox.files.write("/srv/py/gone.txt", "x")
    first = _checkpoint(sandbox, "before")
    sandbox.files.write("/srv/py/t.txt", "a\nB\n")
    sandbox.files.remove("/srv/py/gone.txt")
    second = sandbox.checkpoints.create("after")

    diff = sandbox.checkpoints.diff(first, second)
    assert not diff.truncated
    assert [
        (i.change, i.kind, i.size, i.path) for i in diff.items if i.path.startswith("/srv/py/")
    ] == [
        ("deleted", "file", 1, "/srv/py/gone.txt"),
        ("modified", "file", 4, "/srv/py/t.txt"),
    ]
    sandbox.files.write("/srv/py/live.txt", "now\n")
    live = sandbox.checkpoints.diff(second)
    assert [(i.change, i.path) for i in live.items if i.path.startswith("/srv/py/")] == [
        ("added", "/srv/py/live.txt")
    ]
    file = sandbox.checkpoints.diff_file(first, "/srv/py/t.txt", to=second)
    assert (file.change, file.binary, file.truncated) == ("modified", False, False)
    assert file.unified == "--- a/srv/py/t.txt\n+++ b/srv/py/t.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n"
    with pytest.raises(InvalidRequestError):
        sandbox.checkpoints.diff_file(first, "relative.txt")
    with pytest.raises(CheckpointNotFoundError):
        sandbox.checkpoints.diff("ckpt_missing")
