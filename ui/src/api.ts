// A typed client of Warren's HTTP API over fetch. The key goes in the
// Authorization header (never in a URL); problem documents become ApiError
// with the problem's detail as message; server-sent events are read from a
// fetch stream (EventSource cannot send headers); WebSockets carry the key
// as a Sec-WebSocket-Protocol credential.

import type { Problem } from './types';

/** An error answer of the API, with the problem's detail as its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

type Query = Record<string, string | number | boolean | undefined | string[]>;

interface RequestOptions {
  query?: Query;
  /** A JSON body (serialized), or raw bytes. */
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

function queryString(query?: Query): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(name, v));
    else params.append(name, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** The readable error of a failed response. */
async function toError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const problem = JSON.parse(text) as Problem;
    const detail = problem.detail || problem.title || `${res.status} ${res.statusText}`;
    return new ApiError(res.status, problem.code ?? 'unknown', detail);
  } catch {
    return new ApiError(res.status, 'unknown', text.slice(0, 300) || `${res.status} ${res.statusText}`);
  }
}

/** base64url (no padding) of a string's UTF-8 bytes. */
export function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The client: one per key. */
export class Api {
  constructor(readonly key: string) {}

  /** The raw response of a request; throws ApiError unless it is 2xx. */
  async fetch(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}`, ...opts.headers };
    let body = opts.body;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    let res: Response;
    try {
      res = await fetch(`${path}${queryString(opts.query)}`, { method, headers, body, signal: opts.signal });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(0, 'network', `cannot reach the server: ${(err as Error).message}`);
    }
    if (!res.ok) throw await toError(res);
    return res;
  }

  /** A JSON request; `undefined` for an empty answer (204). */
  async call<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(method, path, opts);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.call<T>('GET', path, { query, signal });
  }

  post<T>(path: string, json?: unknown, query?: Query): Promise<T> {
    return this.call<T>('POST', path, { json: json ?? {}, query });
  }

  patch<T>(path: string, json: unknown): Promise<T> {
    return this.call<T>('PATCH', path, { json });
  }

  del<T = void>(path: string, query?: Query): Promise<T> {
    return this.call<T>('DELETE', path, { query });
  }

  /** Every page of a paginated list (`items`, `next_cursor`). */
  async all<T>(path: string, query: Query = {}, pageSize = 500): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.get<{ items: T[]; next_cursor?: string | null }>(path, {
        ...query,
        limit: pageSize,
        cursor,
      });
      items.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return items;
  }

  /**
   * Opens the server-sent events of `path`: resolves once the server has
   * answered (so events from then on are not missed), rejects with ApiError
   * when it refuses; the generator reads until the stream ends or `signal`
   * aborts.
   */
  async sse(path: string, query?: Query, signal?: AbortSignal): Promise<AsyncGenerator<SseEvent>> {
    const res = await this.fetch('GET', path, { query, signal, headers: { accept: 'text/event-stream' } });
    return readEvents(res);
  }

  /** A WebSocket to `path` (same origin), authenticated without a URL key. */
  websocket(path: string, query?: Query): WebSocket {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}${path}${queryString(query)}`, [
      'warren.v1',
      `warren.key.${base64url(this.key)}`,
    ]);
    socket.binaryType = 'arraybuffer';
    return socket;
  }
}

/** The events of an SSE response body. */
async function* readEvents(res: Response): AsyncGenerator<SseEvent> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event: SseEvent = { event: 'message', data: '' };
  let hasData = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (hasData) yield event;
          event = { event: 'message', data: '' };
          hasData = false;
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event.event = value;
          else if (field === 'id') event.id = value;
          else if (field === 'data') {
            event.data = hasData ? `${event.data}\n${value}` : value;
            hasData = true;
          }
        }
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
