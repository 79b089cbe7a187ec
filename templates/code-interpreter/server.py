"""Warren's code-interpreter server: E2B's code-interpreter API on port 49999.

Routes (the API both `@e2b/code-interpreter` and `e2b-code-interpreter`
call; see README.md):

    GET    /health                 200 "OK"
    POST   /execute                NDJSON stream of the execution's output
    GET    /contexts               [{id, language, cwd}, ...]
    POST   /contexts               {language?, cwd?} -> {id, language, cwd}
    POST   /contexts/{id}/restart  204
    DELETE /contexts/{id}          204

HTTP/1.1 is spoken by hand over asyncio streams (the standard library has
no asyncio HTTP server, and nothing here is worth a dependency the user's
own `pip install` could break). An `/execute` answer is chunked and ends
the connection; while it streams, the server watches the connection, and a
client that goes away interrupts the kernel (that is how E2B's clients time
an execution out).

Run: `python3 server.py [--host 0.0.0.0] [--port 49999]`.
"""

import argparse
import asyncio
import json
import signal
import sys

from contexts import ContextError, Contexts

MAX_HEADER = 64 << 10
MAX_BODY = 32 << 20
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
           404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           500: "Internal Server Error"}


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    def __init__(self, method, path, version, headers, body):
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.body = body

    @property
    def keep_alive(self):
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"

    def json(self):
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as e:
            raise HttpError(400, f"the body is not JSON: {e}") from None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise HttpError(400, "the body must be a JSON object")
        return value


async def read_request(reader):
    """One request, or None at a clean end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise HttpError(400, "incomplete request") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise HttpError(400, "bad request line") from None
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, "bad header line")
        headers[name.strip().lower()] = value.strip()
    path = target.split("?", 1)[0]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY:
            raise HttpError(413, f"the body is over {MAX_BODY} bytes")
        body = await reader.readexactly(length) if length else b""
    return Request(method.upper(), path, version, headers, body)


async def _read_chunked(reader):
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HttpError(400, "bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise HttpError(413, f"the body is over {MAX_BODY} bytes")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _head(status, headers):
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def respond(writer, status, body=None, keep_alive=True, content_type="application/json"):
    if body is None:
        data = b""
    elif isinstance(body, (bytes, str)):
        data = body.encode() if isinstance(body, str) else body
    else:
        data = json.dumps(body).encode()
    headers = [("Content-Length", str(len(data)))]
    if data:
        headers.append(("Content-Type", content_type))
    if not keep_alive:
        headers.append(("Connection", "close"))
    writer.write(_head(status, headers) + data)
    await writer.drain()


async def respond_error(writer, status, message, keep_alive=True):
    await respond(writer, status, {"error": message, "message": message}, keep_alive)


class Server:
    def __init__(self, contexts):
        self.contexts = contexts

    async def handle(self, reader, writer):
        try:
            while True:
                try:
                    req = await read_request(reader)
                except HttpError as e:
                    await respond_error(writer, e.status, e.message, keep_alive=False)
                    return
                if req is None:
                    return
                keep = await self.route(req, reader, writer)
                if not (keep and req.keep_alive):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def route(self, req, reader, writer):
        """Serves one request; False when the connection must end."""
        parts = [p for p in req.path.split("/") if p]
        try:
            if parts == ["health"] and req.method in ("GET", "HEAD"):
                await respond(writer, 200, "OK", content_type="text/plain")
            elif parts == ["execute"] and req.method == "POST":
                await self.execute(req, reader, writer)
                return False
            elif parts == ["contexts"] and req.method == "GET":
                await respond(writer, 200, self.contexts.list())
            elif parts == ["contexts"] and req.method == "POST":
                body = req.json()
                ctx = await self.contexts.create(body.get("language"), body.get("cwd"))
                await respond(writer, 200, ctx.describe())
            elif len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart" \
                    and req.method == "POST":
                await self.contexts.get(parts[1]).restart()
                await respond(writer, 204)
            elif len(parts) == 2 and parts[0] == "contexts" and req.method == "DELETE":
                await self.contexts.remove(parts[1])
                await respond(writer, 204)
            elif parts and parts[0] in ("health", "execute", "contexts"):
                await respond_error(writer, 405, f"{req.method} is not allowed on {req.path}")
            else:
                await respond_error(writer, 404, f"no route {req.path}")
        except (HttpError, ContextError) as e:
            await respond_error(writer, e.status, e.message)
        return True

    async def execute(self, req, reader, writer):
        body = req.json()
        code = body.get("code")
        if not isinstance(code, str):
            raise HttpError(400, "`code` must be a string")
        context_id = body.get("context_id")
        language = body.get("language")
        env_vars = body.get("env_vars") or {}
        if not isinstance(env_vars, dict):
            raise HttpError(400, "`env_vars` must be an object")
        if context_id and language:
            raise HttpError(400, "give `context_id` or `language`, not both")
        ctx = self.contexts.get(context_id) if context_id else \
            await self.contexts.default(language)

        writer.write(_head(200, [("Content-Type", "application/x-ndjson"),
                                 ("Transfer-Encoding", "chunked"),
                                 ("Cache-Control", "no-cache"),
                                 ("Connection", "close")]))
        await writer.drain()

        async def send(line):
            data = json.dumps(line).encode() + b"\n"
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            # One line at a time: a slow client slows the relay down
            # instead of making the server buffer the output.
            await writer.drain()

        async def relay():
            try:
                async for line in ctx.execute(code, env_vars):
                    await send(line)
            except ContextError as e:
                await send({"type": "error", "name": "KernelError", "value": e.message,
                            "traceback": e.message})
                await send({"type": "end_of_execution"})
            writer.write(b"0\r\n\r\n")
            await writer.drain()

        async def gone():
            # The client sends nothing more on this connection: any read
            # that returns means it went away (or misbehaves).
            await reader.read(1)

        run = asyncio.ensure_future(relay())
        watch = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({run, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not run.done():
                run.cancel()  # interrupts the kernel (Context.execute)
            watch.cancel()
            try:
                await run
            except (asyncio.CancelledError, ConnectionError):
                pass


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=49999)
    parser.add_argument("--no-default-context", action="store_true",
                        help="do not start the default Python kernel at startup")
    args = parser.parse_args()

    contexts = Contexts()
    server = Server(contexts)
    listener = await asyncio.start_server(server.handle, args.host, args.port,
                                          limit=MAX_HEADER)
    print(f"code-interpreter listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    if not args.no_default_context:
        # Started now so that the first execution does not wait for it.
        asyncio.ensure_future(contexts.default("python"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with listener:
        await stop.wait()
    await contexts.close()


if __name__ == "__main__":
    asyncio.run(main())
