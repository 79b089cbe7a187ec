// The one place HTTP happens: URL building, auth, timeouts, cancellation and
// turning failures into typed errors.

import type { ResolvedConfig } from './config.js';
import { ConnectionError, TimeoutError, WarrenError, errorFromResponse } from './errors.js';

/** Query parameters; arrays repeat the key, `undefined` and `null` are left out. */
export type Query = Record<string, string | number | boolean | undefined | null | readonly (string | number)[]>;

/** Options of one request. */
export interface RequestOptions {
  query?: Query;
  /** A JSON body (sent with `Content-Type: application/json`). */
  json?: unknown;
  /** A raw body. */
  body?: BodyInit | Uint8Array;
  headers?: Record<string, string>;
  /** Overrides the client's request timeout (0: none). */
  timeoutMs?: number;
  /** Cancels the request. */
  signal?: AbortSignal;
}

/** Per-call options that every SDK method accepts. */
export interface CallOptions {
  /** Overrides the request timeout for this call, in milliseconds (0: none). */
  requestTimeoutMs?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** An open streaming response; `close()` ends it early. */
export interface OpenStream {
  response: Response;
  close(): void;
}

/** A timeout and a caller's signal, folded into one AbortController. */
class Deadline {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onAbort = () => this.controller.abort(this.signal?.reason);

  constructor(
    readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    if (signal?.aborted) this.controller.abort(signal.reason);
    else signal?.addEventListener('abort', this.onAbort, { once: true });
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.controller.abort();
      }, timeoutMs);
    }
  }

  /** Stops the timer (the signal still aborts). */
  stopTimer(): void {
    clearTimeout(this.timer);
  }

  /** Stops the timer and forgets the caller's signal. */
  dispose(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  /** The error to throw for `err`, raised while the request ran. */
  translate(err: unknown, what: string): unknown {
    if (err instanceof WarrenError) return err;
    if (this.timedOut) {
      return new TimeoutError({ code: 'timeout', detail: `${what}: no answer within ${this.timeoutMs} ms`, cause: err });
    }
    if (this.signal?.aborted) return this.signal.reason ?? err;
    const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const reason = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    return new ConnectionError({ code: 'connection_error', detail: `${what}: ${reason}`, cause: err });
  }
}

/** Builds `?a=1&b=x&b=y` (repeating array keys). */
export function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) params.append(key, String(item));
    else params.append(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** A thin HTTP client bound to one server and key. */
export class ApiClient {
  constructor(readonly config: ResolvedConfig) {}

  /** Absolute URL of an API path. */
  url(path: string, query?: Query): string {
    return `${this.config.apiUrl}${path}${queryString(query)}`;
  }

  /** `ws://` or `wss://` URL of an API path, with the key as `access_token`. */
  webSocketUrl(path: string, query?: Query): string {
    const url = this.url(path, { ...query, access_token: this.config.apiKey });
    return url.replace(/^http/, 'ws');
  }

  /** Sends a request and parses its JSON answer (`undefined` for 204). */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return this.call(method, path, opts, async (response) => {
      if (response.status === 204) return undefined as T;
      const text = await response.text();
      return (text ? JSON.parse(text) : undefined) as T;
    });
  }

  /** Sends a request and returns its body as bytes. */
  async bytes(method: string, path: string, opts: RequestOptions = {}): Promise<Uint8Array> {
    return this.call(method, path, opts, async (response) => new Uint8Array(await response.arrayBuffer()));
  }

  /** Sends a request and returns its body as a Blob. */
  async blob(method: string, path: string, opts: RequestOptions = {}): Promise<Blob> {
    return this.call(method, path, opts, (response) => response.blob());
  }

  /**
   * Sends a request whose answer is a stream: the timeout covers the
   * headers only; the caller reads `response.body` and calls `close()`.
   */
  async open(method: string, path: string, opts: RequestOptions = {}): Promise<OpenStream> {
    const deadline = new Deadline(opts.timeoutMs ?? this.config.requestTimeoutMs, opts.signal);
    let response: Response;
    try {
      response = await this.fetch(method, path, opts, deadline.controller.signal);
    } catch (err) {
      deadline.dispose();
      throw deadline.translate(err, `${method} ${path}`);
    }
    deadline.stopTimer();
    if (!response.ok) {
      deadline.dispose();
      throw await errorFromResponse(response);
    }
    return {
      response,
      close: () => {
        deadline.dispose();
        deadline.controller.abort();
      },
    };
  }

  private async call<T>(
    method: string,
    path: string,
    opts: RequestOptions,
    read: (response: Response) => Promise<T>,
  ): Promise<T> {
    const deadline = new Deadline(opts.timeoutMs ?? this.config.requestTimeoutMs, opts.signal);
    try {
      const response = await this.fetch(method, path, opts, deadline.controller.signal);
      if (!response.ok) throw await errorFromResponse(response);
      return await read(response);
    } catch (err) {
      throw deadline.translate(err, `${method} ${path}`);
    } finally {
      deadline.dispose();
    }
  }

  private fetch(method: string, path: string, opts: RequestOptions, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { ...this.config.headers, ...opts.headers };
    if (this.config.apiKey) headers.authorization = `Bearer ${this.config.apiKey}`;
    let body = opts.body as BodyInit | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    const init: RequestInit & { duplex?: 'half' } = { method, headers, body: body ?? null, signal };
    // fetch sends a stream body only when told it is half duplex.
    if (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream) init.duplex = 'half';
    return this.config.fetch(this.url(path, opts.query), init);
  }
}
