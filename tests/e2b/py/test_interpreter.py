"""e2b-code-interpreter: run_code with state, errors, charts, contexts."""

import base64

import pytest
from e2b_code_interpreter import Sandbox

from conftest import eventually


def test_run_code_right_after_create():
    """The server is ready when create returns, as on E2B."""
    s = Sandbox.create()
    try:
        assert s.run_code("6 * 7").text == "42"
    finally:
        s.kill()


@pytest.fixture(scope="module")
def ci():
    # The package's default template. The test above holds create to E2B's
    # promise of a ready server; these give it time to listen.
    s = Sandbox.create(timeout=600)
    eventually(lambda: s.run_code("0").text == "0", 60, "the code interpreter to answer")
    yield s
    try:
        s.kill()
    except Exception:
        pass


def test_state_across_calls(ci):
    assert ci.run_code("x = 41\nx + 1").text == "42"
    assert ci.run_code("x * 2").text == "82"


def test_logs_and_callbacks(ci):
    out = []
    e = ci.run_code('print("hello")', on_stdout=lambda m: out.append(m.line))
    assert e.logs.stdout == ["hello\n"]
    assert [o for o in out] == ["hello\n"]


def test_error_with_traceback(ci):
    e = ci.run_code("def f():\n    return 1 / 0\nf()")
    assert e.error is not None
    assert e.error.name == "ZeroDivisionError"
    assert "division by zero" in e.error.value
    assert "ZeroDivisionError" in e.error.traceback
    assert ci.run_code("x").text == "41"


def test_matplotlib_png(ci):
    e = ci.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()")
    assert e.error is None, e.error
    pngs = [r.png for r in e.results if r.png]
    assert pngs, [r.formats() for r in e.results]
    raw = base64.b64decode(pngs[0])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"


def test_contexts(ci):
    ctx = ci.create_code_context(cwd="/tmp")
    ci.run_code('y = "ctx"', context=ctx)
    assert ci.run_code("y", context=ctx).text == "'ctx'"
    assert ci.run_code("y").error.name == "NameError"
    assert ctx.id in [c.id for c in ci.list_code_contexts()]
    ci.remove_code_context(ctx)
    assert ctx.id not in [c.id for c in ci.list_code_contexts()]
