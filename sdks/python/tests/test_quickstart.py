"""Runs every Python example of docs/quickstart-python.md against the test
server, so the quickstart never rots: each ``python`` block runs as its own
script, and when a ``text`` block follows it, the script must print exactly
those lines. A block preceded by ``<!-- needs: checkpoints -->`` (or
``previews``) is skipped while the server does not serve those routes."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest
from conftest import REPO_DIR, Server

from warren import NotFoundError, Sandbox

QUICKSTART = REPO_DIR / "docs" / "quickstart-python.md"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
EXAMPLE_TIMEOUT = 300


@dataclass
class Example:
    """One runnable example of the quickstart."""

    line: int
    code: str
    expected: Optional[List[str]]
    needs: Optional[str]


def examples() -> List[Example]:
    """The ``python`` blocks of the quickstart, with their expected output."""
    text = QUICKSTART.read_text()
    blocks = list(BLOCK.finditer(text))
    found = []
    for i, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        expected = None
        if i + 1 < len(blocks) and blocks[i + 1].group(1) == "text":
            between = text[block.end() : blocks[i + 1].start()]
            if between.strip() == "":
                expected = blocks[i + 1].group(2).splitlines()
        before = text[: block.start()].rstrip().splitlines()
        marker = re.match(r"<!-- needs: (\w+) -->", before[-1]) if before else None
        found.append(
            Example(
                line=text[: block.start()].count("\n") + 1,
                code=block.group(2),
                expected=expected,
                needs=marker.group(1) if marker else None,
            )
        )
    return found


def _served(feature: str) -> bool:
    """Whether the server serves a feature's routes (a generic ``not_found``
    says it does not)."""
    with Sandbox.create() as sbx:
        probe = sbx.checkpoints.list if feature == "checkpoints" else sbx.previews.list
        try:
            probe()
        except NotFoundError as err:
            if err.code == "not_found":
                return False
            raise
    return True


def test_the_quickstart_has_examples() -> None:
    found = examples()
    assert len(found) >= 8
    assert all(e.expected for e in found), "every example shows its output"


@pytest.mark.parametrize("example", examples(), ids=lambda e: f"line{e.line}")
def test_quickstart_example(example: Example, base_ready: Server, tmp_path: Path) -> None:
    if example.needs is not None and not _served(example.needs):
        pytest.skip(f"the server does not serve {example.needs} yet")
    script = tmp_path / "example.py"
    script.write_text(example.code)
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=base_ready.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"example at line {example.line} failed:\n{proc.stderr}"
    if example.expected is not None:
        assert proc.stdout.splitlines() == example.expected, proc.stderr
