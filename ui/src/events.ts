// GET /v1/events, followed: reconnects after a broken stream, and says so
// when the server has no such route (then callers poll).

import { ApiError, type Api, type SseEvent } from './api';

/** Resolves after `ms`, or at once when `signal` aborts. */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

const RETRY_MS = 2000;

export interface Follow {
  /** Called each time the stream is open (and again after a reconnect): list now. */
  onOpen: () => Promise<void>;
  onEvent: (event: SseEvent) => Promise<void> | void;
  onError: (error: Error) => void;
}

/**
 * Follows the server's events until `signal` aborts. Resolves `false` when
 * the server has no event stream (a 404 `not_found` route), so the caller
 * polls instead.
 */
export async function followEvents(api: Api, query: Record<string, string>, signal: AbortSignal, follow: Follow): Promise<boolean> {
  while (!signal.aborted) {
    try {
      const events = await api.sse('/v1/events', query, signal);
      await follow.onOpen();
      for await (const event of events) await follow.onEvent(event);
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof ApiError && err.status === 404 && err.code === 'not_found') return false;
      follow.onError(err as Error);
    }
    await sleep(RETRY_MS, signal);
  }
  return true;
}
