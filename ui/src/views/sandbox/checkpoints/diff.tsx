// What changed between two checkpoints (or one and the live disk): the
// paths, and a text file's unified diff on request.

import { useState } from 'preact/hooks';
import type { Api } from '../../../api';
import type { Diff, DiffItem, FileDiff } from '../../../types';
import { ErrorBox, Loading, formatSize } from '../../../components/ui';
import { useLoad } from '../../../hooks';

function Unified({ text }: { text: string }) {
  return (
    <pre class="unified" aria-label="Unified diff">
      {text.split('\n').map((line, i) => {
        const kind = line.startsWith('+++') || line.startsWith('---') ? 'head' : line.startsWith('@@') ? 'hunk' : line[0] === '+' ? 'add' : line[0] === '-' ? 'del' : '';
        return (
          <span key={i} class={`line ${kind}`}>
            {line}
            {'\n'}
          </span>
        );
      })}
    </pre>
  );
}

function FileChange({ api, from, to, item }: { api: Api; from: string; to?: string; item: DiffItem }) {
  const loaded = useLoad(
    (signal) => api.get<FileDiff>(`/v1/checkpoints/${from}/diff/file`, { path: item.path, to }, signal),
    [from, to, item.path],
  );
  return (
    <div class="file-diff">
      <ErrorBox error={loaded.error} />
      <Loading loading={loaded.loading} label="Loading the diff…" />
      {loaded.data &&
        (loaded.data.binary ? (
          <p class="muted">Binary file: no text diff.</p>
        ) : (
          <>
            <Unified text={loaded.data.unified} />
            {loaded.data.truncated && <p class="muted">The diff was cut short.</p>}
          </>
        ))}
    </div>
  );
}

/** The diff from checkpoint `from` to checkpoint `to` (or the live disk). */
export function DiffView({ api, from, to, label }: { api: Api; from: string; to?: string; label: string }) {
  const [open, setOpen] = useState<string>();
  const loaded = useLoad((signal) => api.get<Diff>(`/v1/checkpoints/${from}/diff`, { to }, signal), [from, to]);
  return (
    <section class="card diff" aria-label="Changes">
      <h2>{label}</h2>
      <ErrorBox error={loaded.error} />
      <Loading loading={loaded.loading} label="Comparing…" />
      {loaded.data && loaded.data.items.length === 0 && <p class="empty">No changes.</p>}
      {loaded.data && (
        <ul class="changes">
          {loaded.data.items.map((item) => (
            <li key={item.path}>
              <button
                type="button"
                class="change-row"
                aria-expanded={open === item.path}
                disabled={item.kind === 'dir'}
                onClick={() => setOpen(open === item.path ? undefined : item.path)}
              >
                <span class={`badge change-${item.change}`}>{item.change}</span>
                <span class="mono">{item.path}</span>
                <span class="muted">{item.kind && item.kind !== 'file' ? item.kind : item.size !== undefined ? formatSize(item.size) : ''}</span>
              </button>
              {open === item.path && <FileChange api={api} from={from} to={to} item={item} />}
            </li>
          ))}
        </ul>
      )}
      {loaded.data?.truncated && <p class="muted">More paths changed than are shown.</p>}
    </section>
  );
}
