// sandbox.exec: one-shot commands (`run`), background processes (`start`,
// `attach`) with live output over server-sent events, and their control
// (stdin, signals, terminal size).

import { base64Decode, base64Encode, utf8Decode, utf8Encode } from './encoding.js';
import { ConflictError, ConnectionError, NotFoundError, TimeoutError, UnavailableError } from './errors.js';
import type { ApiClient, CallOptions, OpenStream } from './http.js';
import { readSse } from './sse.js';
import {
  type CommandResult,
  type ProcessInfo,
  type WireProcess,
  type WireRunResponse,
  listItems,
  toCommandResult,
  toProcessInfo,
  type WireList,
} from './types.js';

/** A signal by name (`SIGTERM` or `TERM`) or number. */
export type Signal = 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2' | (string & {}) | number;

/** What every way of running a command accepts. */
export interface ProcessOptions extends CallOptions {
  /** Working directory (default: the template's workdir). */
  cwd?: string;
  /**
   * Run as this user of the sandbox: a name from its `/etc/passwd` (`base`
   * has `user`, uid 1000, with passwordless sudo) or a numeric uid. The
   * process gets that user's uid, groups, `HOME`, `USER` and `LOGNAME`.
   * Default: root.
   */
  user?: string;
  /** Environment, merged over the sandbox's. */
  env?: Record<string, string>;
  /** Same as `env` (the E2B spelling); both may be given, `env` wins. */
  envs?: Record<string, string>;
  /** Text written to stdin at start (`run` then closes stdin). */
  stdin?: string;
  /** Kill the process group after this long. `run` defaults to 60 s; `start` has no limit. */
  timeoutMs?: number;
}

/** Options of `exec.run`. */
export interface RunOptions extends ProcessOptions {
  /** Keep at most this many bytes of each stream (default 1 MiB). */
  maxOutputBytes?: number;
}

/** Callbacks for the output of a background process. */
export interface OutputHandlers {
  /** Called with each piece of stdout (or terminal output), decoded as UTF-8. */
  onStdout?: (data: string) => void;
  /** Called with each piece of stderr, decoded as UTF-8. */
  onStderr?: (data: string) => void;
  /** Called once when the process has exited and all its output was delivered. */
  onExit?: (result: ProcessResult) => void;
}

/** Options of `exec.start`. */
export interface StartOptions extends ProcessOptions, OutputHandlers {
  /** Run on a pseudo-terminal (stdout and stderr become one stream). */
  tty?: boolean;
  /** Terminal width (tty only, default 80). */
  cols?: number;
  /** Terminal height (tty only, default 24). */
  rows?: number;
}

/** How a background process ended, with all its output. */
export interface ProcessResult {
  /** Exit status, or `null` when a signal ended the process. */
  exitCode: number | null;
  /** Number of the signal that ended it, if any. */
  signal: number | null;
  stdout: string;
  stderr: string;
}

/** One piece of output, as the async iterator of a handle yields it. */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  /** Byte offset of the chunk in the process's output (one counter over both streams). */
  cursor: number;
  /** The raw bytes. */
  data: Uint8Array;
  /** The bytes decoded as UTF-8. */
  text: string;
}

interface WireChunk {
  stream: 'stdout' | 'stderr';
  cursor: number;
  data: string;
  encoding: 'utf8' | 'base64';
}

interface WireExit {
  exit_code: number | null;
  signal: number | null;
  cursor: number;
}

/** Reconnects of an output stream in a row before giving up. */
const MAX_RECONNECTS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function toChunk(wire: WireChunk): OutputChunk {
  const data = wire.encoding === 'base64' ? base64Decode(wire.data) : utf8Encode(wire.data);
  const text = wire.encoding === 'base64' ? utf8Decode(data) : wire.data;
  return { stream: wire.stream, cursor: wire.cursor, data, text };
}

function isRetryable(err: unknown): boolean {
  return err instanceof ConnectionError || err instanceof UnavailableError || err instanceof TimeoutError;
}

/** The request body shared by `run` and `start`. */
function commandBody(cmd: string | readonly string[], opts: ProcessOptions): Record<string, unknown> {
  const body: Record<string, unknown> = typeof cmd === 'string' ? { cmd } : { argv: [...cmd] };
  if (opts.cwd !== undefined) body.cwd = opts.cwd;
  if (opts.user !== undefined) body.user = opts.user;
  if (opts.env !== undefined || opts.envs !== undefined) body.env = { ...opts.envs, ...opts.env };
  if (opts.stdin !== undefined) body.stdin = opts.stdin;
  if (opts.timeoutMs !== undefined) body.timeout_ms = opts.timeoutMs;
  return body;
}

/** The API path of a process. */
function processPath(sandboxId: string, id: string): string {
  return `/v1/sandboxes/${encodeURIComponent(sandboxId)}/processes/${encodeURIComponent(id)}`;
}

/** Follows a process's output as SSE from `cursor`, reconnecting after network failures. */
async function* followOutput(
  api: ApiClient,
  path: string,
  signal: AbortSignal,
  onDropped?: (bytes: number) => void,
): AsyncGenerator<OutputChunk, WireExit> {
  let cursor = 0;
  let failures = 0;
  for (;;) {
    let stream: OpenStream | undefined;
    try {
      stream = await api.open('GET', `${path}/logs`, {
        query: { follow: true, cursor },
        headers: { accept: 'text/event-stream' },
        timeoutMs: 0,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      if (!isRetryable(err) || ++failures > MAX_RECONNECTS) throw err;
      await sleep(250 * 2 ** failures);
      continue;
    }
    const events = readSse(stream.response.body!);
    try {
      for (;;) {
        let next: IteratorResult<{ event: string; data: string }>;
        try {
          next = await events.next();
        } catch (err) {
          if (signal.aborted) throw signal.reason ?? err;
          break; // The connection broke: reconnect from the cursor.
        }
        if (next.done) break;
        const { event, data } = next.value;
        if (event === 'output') {
          failures = 0;
          const chunk = toChunk(JSON.parse(data) as WireChunk);
          cursor = chunk.cursor + chunk.data.length;
          yield chunk;
        } else if (event === 'dropped') {
          const dropped = JSON.parse(data) as { bytes: number; cursor: number };
          cursor = dropped.cursor;
          onDropped?.(dropped.bytes);
        } else if (event === 'exit') {
          return JSON.parse(data) as WireExit;
        }
      }
    } finally {
      stream.close();
      await events.return(undefined).catch(() => undefined);
    }
    if (signal.aborted) throw signal.reason;
    if (++failures > MAX_RECONNECTS) {
      throw new ConnectionError({ code: 'connection_error', detail: `output stream of ${path} kept breaking` });
    }
    await sleep(250 * 2 ** failures);
  }
}

/**
 * A background process: its output arrives through the callbacks given to
 * `start`/`attach` and is collected for `wait()`; iterate the handle
 * (`for await (const chunk of handle)`) for the raw chunks.
 */
export class CommandHandle implements AsyncIterable<OutputChunk> {
  /** `proc_…`: the id the API uses (pass it to `exec.attach`). */
  readonly id: string;
  /** Process id inside the sandbox. */
  readonly pid: number;
  /** Whether it runs on a pseudo-terminal. */
  readonly tty: boolean;

  #stdout = '';
  #stderr = '';
  #result: ProcessResult | undefined;
  readonly #done: Promise<ProcessResult>;
  readonly #stop = new AbortController();
  readonly #path: string;

  /** @internal Use `sandbox.exec.start` or `sandbox.exec.attach`. */
  constructor(
    private readonly api: ApiClient,
    sandboxId: string,
    info: ProcessInfo,
    handlers: OutputHandlers,
  ) {
    this.id = info.id;
    this.pid = info.pid;
    this.tty = info.tty;
    this.#path = processPath(sandboxId, info.id);
    this.#done = this.#collect(handlers);
    // wait() hands out the same promise; nobody calling it is not an error.
    this.#done.catch(() => undefined);
  }

  /** Stdout received so far. */
  get stdout(): string {
    return this.#stdout;
  }

  /** Stderr received so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** The exit code once the process has exited (`null` if a signal ended it), else `undefined`. */
  get exitCode(): number | null | undefined {
    return this.#result?.exitCode;
  }

  async #collect(handlers: OutputHandlers): Promise<ProcessResult> {
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    const output = followOutput(this.api, this.#path, this.#stop.signal);
    let next: IteratorResult<OutputChunk, WireExit>;
    try {
      while (!(next = await output.next()).done) {
        const chunk = next.value;
        const text = decoders[chunk.stream].decode(chunk.data, { stream: true });
        if (!text) continue;
        if (chunk.stream === 'stdout') {
          this.#stdout += text;
          handlers.onStdout?.(text);
        } else {
          this.#stderr += text;
          handlers.onStderr?.(text);
        }
      }
    } finally {
      // Closes the stream when a callback threw.
      await output.return(undefined as never).catch(() => undefined);
    }
    this.#stdout += decoders.stdout.decode();
    this.#stderr += decoders.stderr.decode();
    this.#result = {
      exitCode: next.value.exit_code,
      signal: next.value.signal,
      stdout: this.#stdout,
      stderr: this.#stderr,
    };
    handlers.onExit?.(this.#result);
    return this.#result;
  }

  /**
   * Resolves when the process has exited and all its output was received.
   * Rejects if the sandbox or process disappears, the handle is
   * disconnected, or a callback throws.
   */
  wait(): Promise<ProcessResult> {
    return this.#done;
  }

  /**
   * Sends a signal (default SIGKILL) to the process's whole group. Resolves
   * `false` if it had already exited.
   */
  async kill(signal: Signal = 'SIGKILL', opts: CallOptions = {}): Promise<boolean> {
    return signalProcess(this.api, this.#path, signal, opts);
  }

  /** Writes to the process's stdin (text as UTF-8). */
  async sendStdin(data: string | Uint8Array, opts: CallOptions = {}): Promise<void> {
    await writeStdin(this.api, this.#path, data, false, opts);
  }

  /** Closes the process's stdin (on a terminal: sends end-of-file). */
  async closeStdin(opts: CallOptions = {}): Promise<void> {
    await writeStdin(this.api, this.#path, '', true, opts);
  }

  /** Resizes the terminal of a `tty` process. */
  async resize(size: { cols: number; rows: number }, opts: CallOptions = {}): Promise<void> {
    await this.api.json('POST', `${this.#path}/resize`, {
      json: { cols: size.cols, rows: size.rows },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /** The process as the sandbox reports it now. */
  async info(opts: CallOptions = {}): Promise<ProcessInfo> {
    const wire = await this.api.json<WireProcess>('GET', this.#path, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toProcessInfo(wire);
  }

  /**
   * Stops receiving output without touching the process; `wait()` then
   * rejects. Reattach with `sandbox.exec.attach(handle.id)`.
   */
  disconnect(): void {
    this.#stop.abort(
      new ConnectionError({ code: 'connection_error', detail: `disconnected from ${this.id} by disconnect()` }),
    );
  }

  /**
   * The output from the start (as far as the sandbox still holds it), then
   * live, until the process exits. Each loop opens its own stream.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<OutputChunk> {
    const stop = new AbortController();
    const onStop = () => stop.abort(this.#stop.signal.reason);
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    try {
      yield* followOutput(this.api, this.#path, stop.signal);
    } finally {
      this.#stop.signal.removeEventListener('abort', onStop);
      stop.abort();
    }
  }
}

async function signalProcess(api: ApiClient, path: string, signal: Signal, opts: CallOptions): Promise<boolean> {
  try {
    await api.json('POST', `${path}/signal`, { json: { signal }, timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
    return true;
  } catch (err) {
    if (err instanceof ConflictError && err.code === 'process_not_running') return false;
    throw err;
  }
}

async function writeStdin(
  api: ApiClient,
  path: string,
  data: string | Uint8Array,
  eof: boolean,
  opts: CallOptions,
): Promise<void> {
  const body =
    typeof data === 'string' ? { data, encoding: 'utf8', eof } : { data: base64Encode(data), encoding: 'base64', eof };
  await api.json('POST', `${path}/stdin`, { json: body, timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
}

/** Commands and processes in one sandbox: `sandbox.exec`. */
export class Exec {
  /** @internal Use `sandbox.exec`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  private get base(): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/processes`;
  }

  /**
   * Runs a command to completion. A string runs through `/bin/sh -c`; an
   * array is exec'd directly. A non-zero exit is a result, not an error.
   */
  async run(cmd: string | readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const body = commandBody(cmd, opts);
    if (opts.maxOutputBytes !== undefined) body.max_output_bytes = opts.maxOutputBytes;
    // The call lasts as long as the command: allow its timeout plus a margin.
    const configured = this.api.config.requestTimeoutMs;
    const timeoutMs =
      opts.requestTimeoutMs ?? (configured === 0 ? 0 : Math.max(configured, (opts.timeoutMs ?? 60_000) + 30_000));
    const wire = await this.api.json<WireRunResponse>('POST', `${this.base}/run`, {
      json: body,
      timeoutMs,
      signal: opts.signal,
    });
    return toCommandResult(wire);
  }

  /** Starts a background process and returns at once with a handle to it. */
  async start(cmd: string | readonly string[], opts: StartOptions = {}): Promise<CommandHandle> {
    const body = commandBody(cmd, opts);
    if (opts.tty) body.tty = true;
    if (opts.cols !== undefined) body.cols = opts.cols;
    if (opts.rows !== undefined) body.rows = opts.rows;
    const wire = await this.api.json<WireProcess>('POST', this.base, {
      json: body,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return new CommandHandle(this.api, this.sandboxId, toProcessInfo(wire), opts);
  }

  /**
   * A handle to a process started earlier (by id, or by pid), replaying its
   * output from the start as far as the sandbox still holds it.
   */
  async attach(process: string | number, opts: OutputHandlers & CallOptions = {}): Promise<CommandHandle> {
    const info = await this.get(process, opts);
    return new CommandHandle(this.api, this.sandboxId, info, opts);
  }

  /** The sandbox's background processes, running and recently exited, oldest first. */
  async list(opts: CallOptions = {}): Promise<ProcessInfo[]> {
    const body = await this.api.json<WireList<WireProcess>>('GET', this.base, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return listItems(body).map(toProcessInfo);
  }

  /** One background process, by id or pid. */
  async get(process: string | number, opts: CallOptions = {}): Promise<ProcessInfo> {
    const id = await this.resolve(process, opts);
    const wire = await this.api.json<WireProcess>('GET', processPath(this.sandboxId, id), {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toProcessInfo(wire);
  }

  /** Sends a signal (default SIGKILL) to a process's group; `false` if it had exited. */
  async kill(process: string | number, signal: Signal = 'SIGKILL', opts: CallOptions = {}): Promise<boolean> {
    const id = await this.resolve(process, opts);
    return signalProcess(this.api, processPath(this.sandboxId, id), signal, opts);
  }

  /** Writes to a process's stdin (text as UTF-8). */
  async sendStdin(process: string | number, data: string | Uint8Array, opts: CallOptions = {}): Promise<void> {
    const id = await this.resolve(process, opts);
    await writeStdin(this.api, processPath(this.sandboxId, id), data, false, opts);
  }

  /** The `proc_…` id of a process given by id or pid. */
  private async resolve(process: string | number, opts: CallOptions): Promise<string> {
    if (typeof process === 'string') return process;
    const matches = (await this.list(opts)).filter((p) => p.pid === process);
    // Pids are reused: prefer the running one, else the newest.
    const found = matches.find((p) => p.state === 'running') ?? matches[matches.length - 1];
    if (!found) {
      throw new NotFoundError({ code: 'process_not_found', status: 404, detail: `no managed process with pid ${process}` });
    }
    return found.id;
  }
}

