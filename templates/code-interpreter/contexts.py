"""Execution contexts: one Jupyter kernel each, driven with jupyter_client.

A context is a kernel of one language with a working directory. Executions
in one context run one at a time (a lock), in the order they arrive; the
kernel's state (variables, imports) persists across them until the context
is restarted or deleted.

`Context.execute` yields output lines as dicts in E2B's NDJSON shapes
(`stdout`, `stderr`, `result`, `error`, `number_of_executions`,
`end_of_execution`). If the consumer stops (the HTTP client went away), the
generator's cleanup interrupts the kernel and waits for it to go idle, so
the context is usable again.
"""

import asyncio
import os
import pwd
import queue
import tempfile
import time
import uuid
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

HERE = Path(__file__).resolve().parent
CHARTS = HERE / "charts.py"
CHART_MIME = "application/vnd.warren.chart+json"

#: Language names clients send → kernel spec name (under `kernels/`).
LANGUAGES = {
    "python": "python3",
    "python3": "python3",
    "javascript": "deno",
    "js": "deno",
    "typescript": "deno",
    "ts": "deno",
    "bash": "bash",
    "sh": "bash",
}
#: What a context reports as its language, per kernel spec.
CANONICAL = {"python3": "python", "deno": "javascript", "bash": "bash"}

#: Jupyter mime type → field of E2B's result object.
MIME_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    CHART_MIME: "chart",
}

#: A stream message longer than this is relayed in pieces of this size.
STREAM_PIECE = 1 << 20
#: A result bigger than this (all its formats together) is dropped, with a
#: line on stderr saying so: the server holds one message at a time, and
#: this bounds it.
MAX_RESULT = 64 << 20
KERNEL_READY_TIMEOUT = 60
SOCKETS = Path(tempfile.mkdtemp(prefix="code-interpreter-"))
IDLE_AFTER_INTERRUPT = 30
#: How long a kernel that reports idle too early must stay quiet after it.
LATE_OUTPUT_QUIET = 0.2


class ContextError(Exception):
    """A context operation failed; `status` is the HTTP status to answer."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def default_cwd():
    """`/home/user` when the sandbox has it, else the server's home."""
    try:
        home = pwd.getpwnam("user").pw_dir
        if os.path.isdir(home):
            return home
    except KeyError:
        pass
    home = os.environ.get("HOME", "/")
    return home if os.path.isdir(home) else "/"


def kernel_name(language):
    """The kernel spec for a client's language name, or ContextError 400."""
    name = LANGUAGES.get((language or "python").strip().lower())
    if name is None:
        raise ContextError(400, f"language {language!r} is not supported "
                           f"(supported: {', '.join(sorted(LANGUAGES))})")
    return name


def _now_ns():
    return time.time_ns()


def _env_snippet(spec, env):
    """Code that sets `env` in the kernel and code that puts it back."""
    import json

    if not env:
        return None, None
    data = json.dumps({str(k): str(v) for k, v in env.items()})
    if spec == "python3":
        return (
            "import os as __w_os, json as __w_json\n"
            f"__w_env_saved = {{k: __w_os.environ.get(k) for k in __w_json.loads({data!r})}}\n"
            f"__w_os.environ.update(__w_json.loads({data!r}))\n",
            "for __w_k, __w_v in __w_env_saved.items():\n"
            "    if __w_v is None: __w_os.environ.pop(__w_k, None)\n"
            "    else: __w_os.environ[__w_k] = __w_v\n"
            "del __w_os, __w_json, __w_env_saved\n"
            "try:\n    del __w_k, __w_v\nexcept NameError:\n    pass\n",
        )
    if spec == "bash":
        names = [k for k in env if k.isidentifier()]
        save = "".join(
            f"__w_saved_{k}=${{{k}+x}}; __w_val_{k}=\"${{{k}}}\"\n" for k in names
        )
        sets = "".join(f"export {k}={_sh_quote(str(env[k]))}\n" for k in names)
        restore = "".join(
            f"if [ -n \"$__w_saved_{k}\" ]; then export {k}=\"$__w_val_{k}\"; "
            f"else unset {k}; fi; unset __w_saved_{k} __w_val_{k}\n"
            for k in names
        )
        return save + sets, restore
    if spec == "deno":
        return (
            f"globalThis.__wEnv = Object.fromEntries(Object.keys({data}).map(k => [k, Deno.env.get(k)]));"
            f"for (const [k, v] of Object.entries({data})) Deno.env.set(k, v);",
            "for (const [k, v] of Object.entries(globalThis.__wEnv)) "
            "{ if (v === undefined) Deno.env.delete(k); else Deno.env.set(k, v); }"
            "delete globalThis.__wEnv;",
        )
    return None, None


def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def result_line(content, is_main):
    """A Jupyter `execute_result`/`display_data` → E2B's `result` line."""
    line = {"type": "result", "is_main_result": is_main}
    extra = {}
    for mime, value in content.get("data", {}).items():
        field = MIME_FIELDS.get(mime)
        if field is not None:
            line[field] = value
        elif mime.startswith("application/vnd.jupyter"):
            continue  # widget views: nothing a client can show
        else:
            extra[mime] = value
    if extra:
        line["extra"] = extra
    return line


class Context:
    """One kernel, its language and working directory."""

    def __init__(self, spec, cwd, ksm, is_default=False):
        self.id = str(uuid.uuid4())
        self.spec = spec
        self.language = CANONICAL[spec]
        self.cwd = cwd
        self.is_default = is_default
        self._ksm = ksm
        self._km = None
        self._kc = None
        self._lock = asyncio.Lock()

    def describe(self):
        """The JSON both clients read (`id`, `language`, `cwd`)."""
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    async def start(self):
        """Starts the kernel and waits until it answers."""
        if not os.path.isdir(self.cwd):
            raise ContextError(400, f"cwd {self.cwd!r} is not a directory")
        # IPC sockets (a path, absolute: the kernel runs in another cwd)
        # rather than TCP ports; Deno's kernel speaks TCP only, on loopback.
        where = {"transport": "tcp", "ip": "127.0.0.1"} if self.spec == "deno" else \
            {"transport": "ipc", "ip": str(SOCKETS / self.id)}
        self._km = AsyncKernelManager(kernel_name=self.spec, kernel_spec_manager=self._ksm,
                                      **where)
        env = dict(os.environ)
        env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        env["PWD"] = self.cwd
        try:
            await self._km.start_kernel(cwd=self.cwd, env=env)
            await self._connect()
        except Exception as e:
            await self.shutdown()
            raise ContextError(500, f"starting the {self.language} kernel failed: {e}") from e

    async def _connect(self):
        self._kc = self._km.client()
        self._kc.start_channels()
        await self._kc.wait_for_ready(timeout=KERNEL_READY_TIMEOUT)
        if self.spec == "python3":
            setup = (
                "def __warren_setup():\n"
                "    ns = {'__name__': '_warren_charts'}\n"
                f"    exec(compile(open({str(CHARTS)!r}).read(), {str(CHARTS)!r}, 'exec'), ns)\n"
                "    ns['register'](get_ipython())\n"
                "__warren_setup()\n"
                "del __warren_setup\n"
            )
            await self._silent(setup)

    async def restart(self):
        """Restarts the kernel: all state is lost, the id stays."""
        async with self._lock:
            await self._restart()

    async def _restart(self):
        if self._kc is not None:
            self._kc.stop_channels()
        try:
            await self._km.restart_kernel(now=True)
            await self._connect()
        except Exception as e:
            raise ContextError(500, f"restarting the kernel failed: {e}") from e

    async def shutdown(self):
        """Stops the kernel (for good)."""
        if self._kc is not None:
            self._kc.stop_channels()
            self._kc = None
        if self._km is not None:
            try:
                await self._km.shutdown_kernel(now=True)
            except Exception:
                pass
            self._km = None

    async def _silent(self, code):
        """Runs code with no output relayed and no history; waits for idle."""
        msg_id = self._send(code, silent=True)
        try:
            async for _ in self._iopub(msg_id):
                pass
        finally:
            await self._drain_shell(msg_id)

    def _send(self, code, silent=False):
        return self._kc.execute(code, silent=silent, store_history=not silent,
                                allow_stdin=False, stop_on_error=True)

    async def _iopub(self, msg_id):
        """The iopub messages of request `msg_id` until the kernel is idle.

        No cleanup here: a consumer that stops early cleans up itself (an
        async generator's own `finally` would run later, in another task).
        """
        while True:
            try:
                msg = await self._kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                if not await self._km.is_alive():
                    raise ContextError(
                        500, "the kernel died; the next execution starts a new one"
                    ) from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                if self.spec == "deno":
                    # Deno's kernel may say idle before it publishes the
                    # cell's output: take what follows until it is quiet.
                    async for late in self._late(msg_id):
                        yield late
                return
            yield msg

    async def _late(self, msg_id):
        while True:
            try:
                msg = await self._kc.get_iopub_msg(timeout=LATE_OUTPUT_QUIET)
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] != "status":
                yield msg

    async def _drain_shell(self, msg_id):
        """Consumes the execute_reply (so the shell queue does not grow)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                reply = await self._kc.get_shell_msg(timeout=0.5)
            except queue.Empty:
                return
            if reply["parent_header"].get("msg_id") == msg_id:
                return

    async def execute(self, code, env_vars=None):
        """Runs `code`; yields E2B output lines. See the module docs."""
        async with self._lock:
            if self._kc is None:
                raise ContextError(500, "the context's kernel is not running")
            if not await self._km.is_alive():
                # The last execution killed it (os._exit, out of memory):
                # a fresh kernel, as Jupyter's own restarter would do.
                await self._restart()
            before, after = _env_snippet(self.spec, env_vars)
            if before:
                await self._silent(before)
            msg_id = self._send(code)
            finished = False
            try:
                async for msg in self._iopub(msg_id):
                    for line in self._translate(msg):
                        yield line
                finished = True
            finally:
                # Also on cancellation or GeneratorExit: the client left, so
                # stop the code and leave the kernel idle for the next one.
                if not finished:
                    await self._interrupt(msg_id)
                await self._drain_shell(msg_id)
                if after:
                    await self._silent(after)
            yield {"type": "end_of_execution"}

    async def _interrupt(self, msg_id):
        """Interrupts request `msg_id` and waits until the kernel is idle."""
        try:
            if not await self._km.is_alive():
                return
            await self._km.interrupt_kernel()
            deadline = time.monotonic() + IDLE_AFTER_INTERRUPT
            while time.monotonic() < deadline:
                try:
                    msg = await self._kc.get_iopub_msg(timeout=1)
                except queue.Empty:
                    continue
                if (msg["parent_header"].get("msg_id") == msg_id
                        and msg["msg_type"] == "status"
                        and msg["content"]["execution_state"] == "idle"):
                    return
        except Exception:  # the kernel may be dead: nothing left to stop
            pass

    def _translate(self, msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text = content.get("text", "")
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            for i in range(0, len(text), STREAM_PIECE):
                yield {"type": name, "text": text[i:i + STREAM_PIECE], "timestamp": _now_ns()}
        elif kind in ("execute_result", "display_data"):
            size = sum(len(v) if isinstance(v, str) else 0 for v in content.get("data", {}).values())
            if size > MAX_RESULT:
                yield {"type": "stderr", "timestamp": _now_ns(),
                       "text": f"[a result of {size} bytes was dropped: the limit is {MAX_RESULT}]\n"}
                return
            yield result_line(content, kind == "execute_result")
        elif kind == "error":
            yield {
                "type": "error",
                "name": content.get("ename", ""),
                "value": content.get("evalue", ""),
                "traceback": "\n".join(content.get("traceback", [])),
            }
        elif kind == "execute_input":
            count = content.get("execution_count")
            if count is not None:
                yield {"type": "number_of_executions", "execution_count": count}


class Contexts:
    """All contexts of the server, and the default one per language."""

    def __init__(self, kernels_dir=HERE / "kernels"):
        self._ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)])
        self._all = {}
        self._defaults = {}
        self._starting = {}

    def list(self):
        return [c.describe() for c in self._all.values()]

    def get(self, context_id):
        try:
            return self._all[context_id]
        except KeyError:
            raise ContextError(404, f"context {context_id!r} not found") from None

    async def create(self, language=None, cwd=None, is_default=False):
        spec = kernel_name(language)
        ctx = Context(spec, cwd or default_cwd(), self._ksm, is_default=is_default)
        await ctx.start()
        self._all[ctx.id] = ctx
        return ctx

    async def default(self, language=None):
        """The default context of a language, started on first use."""
        spec = kernel_name(language)
        ctx = self._defaults.get(spec)
        if ctx is not None and ctx.id in self._all:
            return ctx
        # Concurrent first uses start one kernel, not several.
        task = self._starting.get(spec)
        if task is None:
            task = asyncio.ensure_future(self.create(CANONICAL[spec], is_default=True))
            self._starting[spec] = task
        try:
            ctx = await asyncio.shield(task)
        finally:
            self._starting.pop(spec, None)
        self._defaults[spec] = ctx
        return ctx

    async def remove(self, context_id):
        ctx = self.get(context_id)
        del self._all[context_id]
        await ctx.shutdown()

    async def close(self):
        for ctx in list(self._all.values()):
            await ctx.shutdown()
        self._all.clear()
