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

/** Opens a socket and resolves once it is open, with binary messages as ArrayBuffers. */
export async function openWebSocket(url: string, preferred?: WebSocketConstructor): Promise<WebSocketLike> {
  const Ctor = await webSocketClass(preferred);
  const socket = new Ctor(url);
  socket.binaryType = 'arraybuffer';
  const safeUrl = url.replace(/access_token=[^&]*/, 'access_token=***');
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = (event) => {
      const message = (event as { message?: string } | undefined)?.message;
      reject(
        new ConnectionError({
          code: 'connection_error',
          detail: `WebSocket ${safeUrl} failed to open${message ? `: ${message}` : ''}`,
        }),
      );
    };
    socket.onclose = (event) =>
      reject(
        new ConnectionError({
          code: 'connection_error',
          detail: `WebSocket ${safeUrl} closed before opening (code ${event.code})`,
        }),
      );
  });
  socket.onopen = null;
  socket.onerror = null;
  socket.onclose = null;
  return socket;
}
