// A process's output, replayed then followed live (SSE over fetch).

import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../../../api';
import { ErrorBox } from '../../../components/ui';

/** Most characters kept on screen; older output scrolls away. */
const MAX_CHARS = 200_000;

interface Chunk {
  stream: 'stdout' | 'stderr';
  data: string;
  encoding: 'utf8' | 'base64';
}

const decode = (chunk: Chunk) =>
  chunk.encoding === 'base64' ? new TextDecoder().decode(Uint8Array.from(atob(chunk.data), (c) => c.charCodeAt(0))) : chunk.data;

export function Logs({ api, sandbox, process }: { api: Api; sandbox: string; process: string }) {
  const [text, setText] = useState('');
  const [ended, setEnded] = useState<string>();
  const [error, setError] = useState<Error>();
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const abort = new AbortController();
    setText('');
    setEnded(undefined);
    (async () => {
      const events = await api.sse(`/v1/sandboxes/${sandbox}/processes/${process}/logs`, { follow: true }, abort.signal);
      for await (const event of events) {
        if (event.event === 'output') {
          const chunk = JSON.parse(event.data) as Chunk;
          setText((old) => (old + decode(chunk)).slice(-MAX_CHARS));
        } else if (event.event === 'dropped') {
          setText((old) => `${old}\n[output dropped: the reader was too slow]\n`);
        } else if (event.event === 'exit') {
          const exit = JSON.parse(event.data) as { exit_code?: number | null; signal?: number | null };
          setEnded(exit.signal ? `killed by signal ${exit.signal}` : `exited with ${exit.exit_code}`);
        }
      }
    })().catch((err: Error) => !abort.signal.aborted && setError(err));
    return () => abort.abort();
  }, [api, sandbox, process]);

  useEffect(() => {
    const el = box.current;
    if (el && el.scrollHeight - el.scrollTop - el.clientHeight < 80) el.scrollTop = el.scrollHeight;
  }, [text]);

  return (
    <div class="logs">
      <ErrorBox error={error} />
      <pre ref={box} class="log-output" aria-live="polite" aria-label="Output">
        {text || <span class="muted">(no output yet)</span>}
      </pre>
      {ended && <p class="muted">The process {ended}.</p>}
    </div>
  );
}
