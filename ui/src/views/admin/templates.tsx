// Templates: the list, delete, and a build from a spec.toml (pasted or
// uploaded) whose log streams in as it runs (`POST /v1/templates/{name}/build`
// with `Accept: text/event-stream`).

import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../../api';
import { Button, ErrorBox, Field, Loading, formatTime } from '../../components/ui';
import { useAction, useLoad } from '../../hooks';

interface Template {
  name: string;
  created_at: string;
  workdir?: string;
}

/** Lines of a build log kept (the oldest go first). */
const MAX_LINES = 2_000;
/** Largest spec accepted from a file. */
const MAX_SPEC = 1 << 20;

const EXAMPLE = `# A template: a base, apt packages, run steps, env, workdir.
base = "base"
run = ["echo hello from the build > /hello.txt"]
`;

/** The events of a server-sent events response, as they arrive. */
async function* events(res: Response): AsyncGenerator<{ event: string; data: string }> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
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
          if (data.length) yield { event, data: data.join('\n') };
          event = 'message';
          data = [];
        } else if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

function BuildForm({ api, onBuilt }: { api: Api; onBuilt: () => void }) {
  const [name, setName] = useState('');
  const [spec, setSpec] = useState(EXAMPLE);
  const [log, setLog] = useState<string[]>([]);
  const [result, setResult] = useState<string>();
  const [run, busy, error] = useAction();
  const pane = useRef<HTMLPreElement>(null);
  const abort = useRef<AbortController>();
  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    if (pane.current) pane.current.scrollTop = pane.current.scrollHeight;
  }, [log]);

  const build = (e: Event) => {
    e.preventDefault();
    setLog([]);
    setResult(undefined);
    abort.current = new AbortController();
    const signal = abort.current.signal;
    void run(async () => {
      const res = await api.fetch('POST', `/v1/templates/${encodeURIComponent(name.trim())}/build`, {
        body: spec,
        headers: { 'content-type': 'application/toml', accept: 'text/event-stream' },
        signal,
      });
      let lines: string[] = [];
      let frame = 0;
      const flush = () => {
        frame = 0;
        setLog(lines);
      };
      for await (const ev of events(res)) {
        const data = JSON.parse(ev.data) as { line?: string; name?: string; detail?: string };
        if (ev.event === 'log') {
          lines = [...lines, data.line ?? ''];
          if (lines.length > MAX_LINES) lines = lines.slice(lines.length - MAX_LINES);
          if (!frame) frame = requestAnimationFrame(flush);
        } else if (ev.event === 'done') {
          setLog(lines);
          setResult(`Built template ${data.name}.`);
          onBuilt();
        } else if (ev.event === 'error') {
          setLog(lines);
          throw new Error(data.detail ?? 'the build failed');
        }
      }
      cancelAnimationFrame(frame);
      setLog(lines);
    });
  };

  const upload = (file?: File) => {
    if (!file) return;
    if (file.size > MAX_SPEC) {
      setResult(`${file.name} is larger than 1 MiB.`);
      return;
    }
    void file.text().then((text) => {
      setSpec(text);
      if (!name.trim()) setName(file.name.replace(/\.toml$/, '').replace(/[^a-z0-9-]/gi, '-').toLowerCase());
    });
  };

  return (
    <form class="card admin-build" onSubmit={build} aria-label="Build a template">
      <h3>Build a template</h3>
      <div class="toolbar">
        <Field label="Template name">
          <input required maxLength={64} pattern="[a-z0-9][a-z0-9._\-]*" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Or load it from a file">
          <input type="file" accept=".toml,text/plain" onChange={(e) => upload(e.currentTarget.files?.[0])} />
        </Field>
      </div>
      <Field label="spec.toml">
        <textarea class="mono" rows={8} value={spec} maxLength={MAX_SPEC} onInput={(e) => setSpec(e.currentTarget.value)} />
      </Field>
      <div class="actions">
        <Button kind="primary" type="submit" busy={busy} disabled={!name.trim() || !spec.trim()}>
          Build
        </Button>
        {busy && (
          <Button onClick={() => abort.current?.abort()}>Stop watching</Button>
        )}
      </div>
      {(log.length > 0 || busy) && (
        <pre ref={pane} class="build-log mono" role="log" aria-label="Build log" aria-live="polite">
          {log.join('\n') || 'Waiting for the build…'}
        </pre>
      )}
      {result && <p class="build-result" role="status">{result}</p>}
      <ErrorBox error={error && error.name !== 'AbortError' ? error : undefined} />
    </form>
  );
}

/** The templates section of the admin page. */
export function TemplatesView({ api }: { api: Api }) {
  const list = useLoad((signal) => api.get<{ items: Template[] }>('/v1/templates', undefined, signal), []);
  const [run, busy, error] = useAction();
  return (
    <div class="admin-templates">
      <ErrorBox error={list.error ?? error} />
      <Loading loading={list.loading && !list.data} label="Loading templates…" />
      {list.data && (
        <table class="list card">
          <thead>
            <tr>
              <th>Template</th>
              <th class="hide-narrow">Workdir</th>
              <th class="hide-narrow">Built</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((t) => (
              <tr key={t.name}>
                <td class="mono">{t.name}</td>
                <td class="hide-narrow mono">{t.workdir}</td>
                <td class="hide-narrow">{formatTime(t.created_at)}</td>
                <td>
                  <Button
                    kind="danger"
                    busy={busy}
                    aria-label={`Delete template ${t.name}`}
                    onClick={() =>
                      confirm(`Delete template ${t.name}? Sandboxes made from it keep their disks.`) &&
                      run(async () => {
                        await api.del(`/v1/templates/${encodeURIComponent(t.name)}`);
                        list.reload();
                      })
                    }
                  >
                    Delete
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <BuildForm api={api} onBuilt={list.reload} />
    </div>
  );
}
