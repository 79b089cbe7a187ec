// The server's stream of sandbox state changes (`GET /v1/events`).

import { ConnectionError } from './errors.js';
import type { ApiClient, OpenStream } from './http.js';
import { type SseEvent, readSse } from './sse.js';
import type { SandboxState } from './types.js';

/** One item of `Sandbox.events()`. */
export type SandboxEvent =
  | {
      /** A sandbox changed state. */
      type: 'sandbox';
      /** `sbx_…`. */
      sandboxId: string;
      /** Its new state; `destroyed` when it is gone. */
      state: SandboxState;
      /** When the change was committed. */
      time: Date;
      /** The owning tenant, on the admin key's stream only (absent for the admin's own sandboxes). */
      tenantId?: string;
    }
  | {
      /** The subscriber fell behind: `missed` changes were dropped. List the sandboxes again; the stream goes on. */
      type: 'lagged';
      /** How many changes were dropped. */
      missed: number;
    };

/** Options of `Sandbox.events()`. */
export interface SandboxEventsOptions {
  /** Only these sandboxes' changes (default: every sandbox the key may see). */
  sandboxIds?: string[];
  /** Ends the stream: the iteration throws the signal's reason. */
  signal?: AbortSignal;
}

interface WireEvent {
  sandbox_id: string;
  state: SandboxState;
  time: string;
  tenant_id?: string;
}

function toEvent({ event, data }: SseEvent): SandboxEvent | undefined {
  if (event === 'sandbox') {
    const wire = JSON.parse(data) as WireEvent;
    const out: SandboxEvent = { type: 'sandbox', sandboxId: wire.sandbox_id, state: wire.state, time: new Date(wire.time) };
    if (wire.tenant_id !== undefined) out.tenantId = wire.tenant_id;
    return out;
  }
  if (event === 'lagged') return { type: 'lagged', missed: (JSON.parse(data) as { missed: number }).missed };
  return undefined; // A kind this SDK does not know yet.
}

/**
 * An open stream of sandbox state changes: `for await (const event of
 * events)`. It ends when the server closes it (it is stopping) or on
 * `close()`; a broken connection throws. There is no resuming: open a new
 * one and list again.
 */
export class SandboxEvents implements AsyncIterable<SandboxEvent> {
  readonly #stream: OpenStream;
  readonly #signal: AbortSignal | undefined;
  #closed = false;

  /** @internal Use `Sandbox.events`. */
  constructor(stream: OpenStream, signal?: AbortSignal) {
    this.#stream = stream;
    this.#signal = signal;
  }

  /** Ends the stream; an iteration in progress ends too. */
  close(): void {
    this.#closed = true;
    this.#stream.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SandboxEvent> {
    const events = readSse(this.#stream.response.body!);
    try {
      for (;;) {
        let next: IteratorResult<SseEvent>;
        try {
          next = await events.next();
        } catch (err) {
          if (this.#signal?.aborted) throw this.#signal.reason ?? err;
          if (this.#closed) return;
          throw new ConnectionError({ code: 'connection_error', detail: 'the event stream broke', cause: err });
        }
        if (next.done) return;
        const event = toEvent(next.value);
        if (event) yield event;
      }
    } finally {
      this.close();
      await events.return(undefined).catch(() => undefined);
    }
  }
}

/** Subscribes; resolves once the server has, so a list made afterwards misses nothing. */
export async function openEvents(api: ApiClient, opts: SandboxEventsOptions): Promise<SandboxEvents> {
  const stream = await api.open('GET', '/v1/events', {
    query: { sandbox_id: opts.sandboxIds },
    headers: { accept: 'text/event-stream' },
    signal: opts.signal,
  });
  return new SandboxEvents(stream, opts.signal);
}
