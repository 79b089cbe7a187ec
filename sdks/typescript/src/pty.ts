// sandbox.pty: interactive terminals over the WebSocket attach. Output
// arrives as binary frames (first byte: 1 stdout, 2 stderr); keystrokes go
// out as binary frames, resizes and signals as JSON text frames.

import { utf8Encode } from './encoding.js';
import { ConnectionError, InvalidRequestError, type WarrenError, errorFromProblem } from './errors.js';
import type { ProcessResult, Signal } from './exec.js';
import type { ApiClient, CallOptions } from './http.js';
import { toProcessInfo, type WireProcess } from './types.js';
import { WS_OPEN, type WebSocketLike, openWebSocket } from './ws.js';

/** How a terminal session ended. */
export type PtyResult = Pick<ProcessResult, 'exitCode' | 'signal'>;

/** Callbacks of a terminal session. */
export interface PtyHandlers {
  /** Called with every piece of terminal output. */
  onData?: (data: Uint8Array) => void;
  /** Called when the sandbox rejects a control message (a resize after exit, say). */
  onError?: (error: WarrenError) => void;
}

/** Options of `pty.create`. */
export interface PtyCreateOptions extends PtyHandlers, CallOptions {
  /** Width in columns (default 80). */
  cols?: number;
  /** Height in rows (default 24). */
  rows?: number;
  /** What to run: a shell command or an argv (default: an interactive login bash). */
  cmd?: string | readonly string[];
  /** Working directory. */
  cwd?: string;
  /** Run as this user of the sandbox (a name such as `user`, or a uid); default: root. */
  user?: string;
  /** Environment, merged over the sandbox's (`TERM` is `xterm-256color`). */
  env?: Record<string, string>;
  /** Kill the session after this long; no limit by default. */
  timeoutMs?: number;
}

/** How long `close()` waits after SIGHUP before it sends SIGKILL. */
const CLOSE_GRACE_MS = 3_000;

/** An interactive terminal in a sandbox. */
export class PtyHandle implements AsyncIterable<Uint8Array> {
  /** `proc_…`: reattach with `sandbox.pty.connect(id)`. */
  readonly id: string;
  /** Process id of the terminal's program inside the sandbox. */
  readonly pid: number;

  #result: PtyResult | undefined;
  readonly #done: Promise<PtyResult>;
  #resolve!: (result: PtyResult) => void;
  #reject!: (err: unknown) => void;
  readonly #listeners = new Set<(data: Uint8Array | null) => void>();
  #disconnected = false;

  /** @internal Use `sandbox.pty.create` or `sandbox.pty.connect`. */
  constructor(
    id: string,
    pid: number,
    private readonly socket: WebSocketLike,
    private readonly handlers: PtyHandlers,
  ) {
    this.id = id;
    this.pid = pid;
    this.#done = new Promise<PtyResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#done.catch(() => undefined);
    socket.onmessage = (event) => this.#message(event.data);
    socket.onclose = () => this.#closed();
    socket.onerror = () => undefined; // A close event always follows.
  }

  #message(data: unknown): void {
    if (typeof data === 'string') {
      const control = JSON.parse(data) as { type: string; exit_code?: number | null; signal?: number | null; code?: string; detail?: string };
      if (control.type === 'exit') {
        this.#result = { exitCode: control.exit_code ?? null, signal: control.signal ?? null };
      } else if (control.type === 'error') {
        this.handlers.onError?.(errorFromProblem({ code: control.code ?? 'internal', detail: control.detail ?? '' }));
      }
      return;
    }
    const frame = new Uint8Array(data as ArrayBuffer);
    const bytes = frame.subarray(1);
    if (bytes.length === 0) return;
    this.handlers.onData?.(bytes);
    for (const listener of this.#listeners) listener(bytes);
  }

  #closed(): void {
    for (const listener of this.#listeners) listener(null);
    if (this.#result) this.#resolve(this.#result);
    else {
      const why = this.#disconnected ? 'disconnect() was called' : 'the connection closed';
      this.#reject(new ConnectionError({ code: 'connection_error', detail: `terminal ${this.id} ended before its exit: ${why}` }));
    }
  }

  #control(message: Record<string, unknown>): void {
    if (this.socket.readyState !== WS_OPEN) {
      throw new ConnectionError({ code: 'connection_error', detail: `terminal ${this.id} is no longer connected` });
    }
    this.socket.send(JSON.stringify(message));
  }

  /** Sends keystrokes or any input (text as UTF-8). */
  send(data: string | Uint8Array): void {
    if (this.socket.readyState !== WS_OPEN) {
      throw new ConnectionError({ code: 'connection_error', detail: `terminal ${this.id} is no longer connected` });
    }
    this.socket.send(typeof data === 'string' ? utf8Encode(data) : data);
  }

  /** Changes the terminal size (the program gets SIGWINCH). */
  resize(size: { cols: number; rows: number }): void {
    this.#control({ type: 'resize', cols: size.cols, rows: size.rows });
  }

  /** Sends a signal to the terminal's process group. */
  kill(signal: Signal = 'SIGKILL'): void {
    this.#control({ type: 'signal', signal });
  }

  /** Resolves when the terminal's program exits. */
  wait(): Promise<PtyResult> {
    return this.#done;
  }

  /**
   * Ends the session as closing a terminal window does: SIGHUP, then
   * SIGKILL if the program is still there after a grace period.
   */
  async close(): Promise<PtyResult> {
    if (this.#result || this.socket.readyState !== WS_OPEN) return this.#done;
    this.kill('SIGHUP');
    const timer = setTimeout(() => {
      if (this.socket.readyState === WS_OPEN) this.kill('SIGKILL');
    }, CLOSE_GRACE_MS);
    try {
      return await this.#done;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Leaves the terminal running and closes the connection; `wait()` then rejects. */
  disconnect(): void {
    this.#disconnected = true;
    this.socket.close(1000, 'client disconnected');
  }

  /** Terminal output from now on, until the session ends. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const queue: Array<Uint8Array | null> = [];
    let wake: (() => void) | undefined;
    const listener = (data: Uint8Array | null) => {
      queue.push(data);
      wake?.();
    };
    this.#listeners.add(listener);
    try {
      if (this.socket.readyState !== WS_OPEN) return;
      for (;;) {
        while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const data = queue.shift()!;
        if (data === null) return;
        yield data;
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }
}

/** Terminals in one sandbox: `sandbox.pty`. */
export class Pty {
  /** @internal Use `sandbox.pty`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  private get base(): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/processes`;
  }

  /** Starts a program (default: bash) on a new terminal and connects to it. */
  async create(opts: PtyCreateOptions = {}): Promise<PtyHandle> {
    const cmd = opts.cmd ?? ['/bin/bash', '-i', '-l'];
    const body: Record<string, unknown> = typeof cmd === 'string' ? { cmd } : { argv: [...cmd] };
    body.tty = true;
    body.cols = opts.cols ?? 80;
    body.rows = opts.rows ?? 24;
    if (opts.cwd !== undefined) body.cwd = opts.cwd;
    if (opts.user !== undefined) body.user = opts.user;
    if (opts.env !== undefined) body.env = opts.env;
    if (opts.timeoutMs !== undefined) body.timeout_ms = opts.timeoutMs;
    const wire = await this.api.json<WireProcess>('POST', this.base, {
      json: body,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return this.attach(wire.id, wire.pid, opts);
  }

  /** Connects to a terminal started earlier, replaying its output from the start as far as it is kept. */
  async connect(id: string, opts: PtyHandlers & CallOptions = {}): Promise<PtyHandle> {
    // An HTTP look-up first: a WebSocket handshake cannot say why it failed.
    const wire = await this.api.json<WireProcess>('GET', `${this.base}/${encodeURIComponent(id)}`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    const info = toProcessInfo(wire);
    if (!info.tty) {
      throw new InvalidRequestError({ code: 'invalid_request', detail: `${id} does not run on a terminal; use exec.attach` });
    }
    return this.attach(info.id, info.pid, opts);
  }

  private async attach(id: string, pid: number, handlers: PtyHandlers): Promise<PtyHandle> {
    const url = this.api.webSocketUrl(`${this.base}/${encodeURIComponent(id)}/ws`);
    const socket = await openWebSocket(url, this.api.config.WebSocket);
    return new PtyHandle(id, pid, socket, handlers);
  }
}

