// Warm pools: per template, how many ready sandboxes the server keeps.

import { useState } from 'preact/hooks';
import type { Api } from '../../api';
import { Button, ErrorBox, Loading } from '../../components/ui';
import { useAction, useLoad } from '../../hooks';

interface Pool {
  template: string;
  size: number;
  ready: number;
}

function PoolRow({ api, pool, onSaved }: { api: Api; pool: Pool; onSaved: () => void }) {
  const [size, setSize] = useState(String(pool.size));
  const [run, busy, error] = useAction();
  return (
    <tr>
      <td class="mono">{pool.template}</td>
      <td>{pool.ready}</td>
      <td>
        <form
          class="toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              await api.call('PUT', `/v1/admin/pools/${encodeURIComponent(pool.template)}`, { json: { size: Number(size) } });
              onSaved();
            });
          }}
        >
          <input type="number" min={0} class="pool-size" aria-label={`Pool size of ${pool.template}`} value={size} onInput={(e) => setSize(e.currentTarget.value)} />
          <Button type="submit" busy={busy} disabled={size === String(pool.size) || size === ''}>
            Set
          </Button>
        </form>
        <ErrorBox error={error} />
      </td>
    </tr>
  );
}

/** The warm pools table. */
export function PoolsView({ api }: { api: Api }) {
  const pools = useLoad((signal) => api.get<{ items: Pool[] }>('/v1/admin/pools', undefined, signal), []);
  return (
    <div class="card">
      <h3>Warm pools</h3>
      <ErrorBox error={pools.error} />
      <Loading loading={pools.loading && !pools.data} label="Loading pools…" />
      {pools.data && (
        <table class="list">
          <thead>
            <tr>
              <th>Template</th>
              <th>Ready</th>
              <th>Size</th>
            </tr>
          </thead>
          <tbody>
            {pools.data.items.length === 0 && (
              <tr>
                <td colSpan={3} class="muted">
                  No pools.
                </td>
              </tr>
            )}
            {pools.data.items.map((p) => (
              <PoolRow key={`${p.template}-${p.size}`} api={api} pool={p} onSaved={pools.reload} />
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
