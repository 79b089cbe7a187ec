// WebSockets the same way everywhere: the global WebSocket (browsers, Node
// 22+), else the `ws` package (older Node), loaded only when needed.

import { ConnectionError } from './errors.js';

/** The part of the WebSocket API the SDK uses (browsers, Node 22+ and `ws` all have it). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket class, such as the global one or `ws`'s default export. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `readyState` of an open socket. */
export const WS_OPEN = 1;

let fallback: Promise<WebSocketConstructor> | undefined;

async function loadWs(): Promise<WebSocketConstructor> {
  try {
    const mod = (await import('ws')) as unknown as {
      default?: WebSocketConstructor;
      WebSocket?: WebSocketConstructor;
    };
    const ctor = mod.WebSocket ?? mod.default;
    if (!ctor) throw new Error('the ws module has no WebSocket export');
    return ctor;
  } catch (err) {
    throw new ConnectionError({
      code: 'connection_error',
      detail: 'no WebSocket available: use Node 22+, a browser, or install the `ws` package',
      cause: err,
    });
  }
}

/** The WebSocket class to use: `preferred`, the global one, or `ws`. */
export function webSocketClass(preferred?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (preferred) return Promise.resolve(preferred);
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return Promise.resolve(global);
  fallback ??= loadWs();
  return fallback;
}

/**
 * A socket whose messages and close are never lost between its opening and
 * the moment its consumer sets `onmessage` and `onclose`.
 *
 * The server may send everything at once: a short command's output, its
 * exit frame and the close frame can arrive in the same TCP segment as the
 * handshake's answer, and `ws` then dispatches `open`, every `message` and
 * `close` in one go, before the code awaiting the open (a later microtask)
 * has set its handlers. So handlers are attached to the raw socket at once,
 * and what arrives before the consumer's are set is queued and handed over,
 * in order (messages first, then the close), when they are.
 */
class BufferedWebSocket implements WebSocketLike {
  readonly #raw: WebSocketLike;
  readonly #messages: Array<{ data: unknown }> = [];
  #close: { code: number; reason: string } | undefined;
  #onmessage: ((event: { data: unknown }) => void) | null = null;
  #onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** Resolves once the socket is open; rejects if it fails or closes first. */
  readonly opened: Promise<void>;

  constructor(raw: WebSocketLike, safeUrl: string) {
    this.#raw = raw;
    let isOpen = false;
    let settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
    this.opened = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    raw.onopen = (event) => {
      isOpen = true;
      settle?.resolve();
      this.onopen?.(event);
    };
    raw.onerror = (event) => {
      if (!isOpen) {
        const message = (event as { message?: string } | undefined)?.message;
        settle?.reject(
          new ConnectionError({
            code: 'connection_error',
            detail: `WebSocket ${safeUrl} failed to open${message ? `: ${message}` : ''}`,
          }),
        );
      }
      this.onerror?.(event);
    };
    raw.onmessage = (event) => {
      if (this.#onmessage && this.#messages.length === 0) this.#onmessage(event);
      else this.#messages.push(event);
    };
    raw.onclose = (event) => {
      if (!isOpen) {
        settle?.reject(
          new ConnectionError({
            code: 'connection_error',
            detail: `WebSocket ${safeUrl} closed before opening (code ${event.code})`,
          }),
        );
      }
      this.#close = { code: event.code, reason: event.reason };
      this.#flush();
    };
  }

  get binaryType(): string {
    return this.#raw.binaryType;
  }

  set binaryType(value: string) {
    this.#raw.binaryType = value;
  }

  get readyState(): number {
    return this.#raw.readyState;
  }

  get onmessage(): ((event: { data: unknown }) => void) | null {
    return this.#onmessage;
  }

  set onmessage(handler: ((event: { data: unknown }) => void) | null) {
    this.#onmessage = handler;
    this.#flush();
  }

  get onclose(): ((event: { code: number; reason: string }) => void) | null {
    return this.#onclose;
  }

  set onclose(handler: ((event: { code: number; reason: string }) => void) | null) {
    this.#onclose = handler;
    this.#flush();
  }

  send(data: string | ArrayBufferView | ArrayBuffer): void {
    this.#raw.send(data);
  }

  close(code?: number, reason?: string): void {
    this.#raw.close(code, reason);
  }

  /** Hands over what was queued: messages once there is a message handler, then the close. */
  #flush(): void {
    while (this.#onmessage && this.#messages.length > 0) this.#onmessage(this.#messages.shift()!);
    if (this.#close && this.#onclose && this.#messages.length === 0) {
      const close = this.#close;
      this.#close = undefined;
      this.#onclose(close);
    }
  }
}

/**
 * Opens a socket and resolves once it is open, with binary messages as
 * ArrayBuffers. Messages and the close that arrive before the caller sets
 * `onmessage`/`onclose` are kept for it (see `BufferedWebSocket`).
 */
export async function openWebSocket(url: string, preferred?: WebSocketConstructor): Promise<WebSocketLike> {
  const Ctor = await webSocketClass(preferred);
  const raw = new Ctor(url);
  raw.binaryType = 'arraybuffer';
  const socket = new BufferedWebSocket(raw, url.replace(/access_token=[^&]*/, 'access_token=***'));
  await socket.opened;
  return socket;
}
