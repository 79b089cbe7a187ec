// A server-sent events reader over a fetch body: enough of the spec for
// Warren's streams (event, data, id; comments are keep-alives).

/** One server-sent event. */
export interface SseEvent {
  /** The `event:` name (`message` when absent). */
  event: string;
  /** The `data:` lines, joined with newlines. */
  data: string;
  /** The `id:` field, if any. */
  id?: string;
}

/** Yields the events of an SSE body until it ends; cancels the body when the consumer stops early. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        // A lone `\r` at the end may be half of a `\r\n` still to come.
        if (buffer[newline] === '\r' && newline === buffer.length - 1 && !done) break;
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (data.length > 0 || event) {
            const out: SseEvent = { event: event || 'message', data: data.join('\n') };
            if (id !== undefined) out.id = id;
            yield out;
          }
          event = '';
          data = [];
          id = undefined;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
