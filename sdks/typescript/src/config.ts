// Where the server is and how to authenticate: explicit options first, then
// the WARREN_URL and WARREN_API_KEY environment variables (one convention for
// every Warren client), then defaults.

import type { WebSocketConstructor } from './ws.js';

/** Default server address when neither `apiUrl` nor `WARREN_URL` is set. */
export const DEFAULT_API_URL = 'http://127.0.0.1:7070';

/** Default limit on one HTTP request (headers and body), in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/** How to reach a Warren server; accepted by every static entry point. */
export interface ConnectionOptions {
  /** Server URL, e.g. `https://warren.example.com`. Default: `WARREN_URL`, else `http://127.0.0.1:7070`. */
  apiUrl?: string;
  /** API key (or the admin key). Default: `WARREN_API_KEY`. */
  apiKey?: string;
  /**
   * Limit on each HTTP request in milliseconds (0: none). Default 60 s;
   * sandbox creation defaults to 15 minutes, since the first sandbox of a
   * fresh server builds the base template.
   */
  requestTimeoutMs?: number;
  /** Extra headers sent with every HTTP request. */
  headers?: Record<string, string>;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
  /**
   * A WebSocket class to use instead of the global one (Node 22+ and
   * browsers) or the `ws` package (the fallback on older Node).
   */
  WebSocket?: WebSocketConstructor;
}

/** Connection options with the defaults applied. */
export interface ResolvedConfig {
  apiUrl: string;
  apiKey: string | undefined;
  requestTimeoutMs: number;
  headers: Record<string, string>;
  fetch: typeof fetch;
  WebSocket: WebSocketConstructor | undefined;
}

function envVar(name: string): string | undefined {
  const env = typeof process !== 'undefined' ? process.env : undefined;
  const value = env?.[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Applies environment variables and defaults to `opts`. */
export function resolveConfig(opts: ConnectionOptions = {}): ResolvedConfig {
  const apiUrl = (opts.apiUrl ?? envVar('WARREN_URL') ?? DEFAULT_API_URL).replace(/\/+$/, '');
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') {
    throw new TypeError('no fetch available: use Node 18+ or pass `fetch` in the options');
  }
  return {
    apiUrl,
    apiKey: opts.apiKey ?? envVar('WARREN_API_KEY'),
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    headers: { ...opts.headers },
    // Called unbound, browsers throw "Illegal invocation".
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    WebSocket: opts.WebSocket,
  };
}
