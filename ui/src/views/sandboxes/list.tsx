// The sandboxes: a live, filterable, windowed list and the create form.

import { useMemo, useState } from 'preact/hooks';
import type { ViewProps } from '../../routes';
import { SANDBOX_STATES, type Sandbox } from '../../types';
import { linkProps, navigate } from '../../router';
import { Button, ErrorBox, Loading, StateBadge, formatTime } from '../../components/ui';
import { VirtualList } from '../../components/virtual';
import { useLiveSandboxes } from './live';
import { SandboxActions } from './actions';
import { CreateSandbox } from './create';

const ROW_HEIGHT = 52;

/** Whether `sandbox` has every `k=v` (or key `k`) of `filter` (space separated). */
function hasLabels(sandbox: Sandbox, filter: string): boolean {
  return filter
    .split(/[\s,]+/)
    .filter(Boolean)
    .every((term) => {
      const [k, v] = term.split('=', 2);
      return v === undefined ? k in sandbox.labels : sandbox.labels[k] === v;
    });
}

function Row({ sandbox, api, put, showTenant }: { sandbox: Sandbox; api: ViewProps['session']['api']; put: (id: string, s: Sandbox | null) => void; showTenant: boolean }) {
  return (
    <div class={showTenant ? 'sandbox-row with-tenant' : 'sandbox-row'} data-sandbox={sandbox.id}>
      <a class="mono" {...linkProps(`/sandboxes/${sandbox.id}`)}>
        {sandbox.id}
      </a>
      <StateBadge state={sandbox.state} />
      <span class="muted hide-narrow">{sandbox.template}</span>
      <span class="labels hide-narrow">
        {Object.entries(sandbox.labels).map(([k, v]) => (
          <span key={k} class="label">
            {k}={v}
          </span>
        ))}
      </span>
      {showTenant && <span class="muted mono hide-narrow">{sandbox.tenant_id ?? '—'}</span>}
      <span class="muted hide-narrow">{formatTime(sandbox.created_at)}</span>
      <SandboxActions api={api} sandbox={sandbox} onDone={(s) => put(sandbox.id, s)} compact />
    </div>
  );
}

export function SandboxList({ session }: ViewProps) {
  const live = useLiveSandboxes(session.api);
  const [state, setState] = useState('');
  const [labels, setLabels] = useState('');
  const [creating, setCreating] = useState(false);

  const shown = useMemo(() => {
    const all = [...live.items.values()].filter((s) => (!state || s.state === state) && hasLabels(s, labels));
    return all.sort((a, b) => b.created_at.localeCompare(a.created_at));
  }, [live.items, state, labels]);

  return (
    <section class="page">
      <div class="page-head">
        <h1>Sandboxes</h1>
        <span class={`live live-${live.mode}`} title="How this list stays up to date">
          {live.mode === 'events' ? 'live' : live.mode === 'polling' ? 'polling every 3 s' : 'connecting…'}
        </span>
        <span class="spacer" />
        <Button kind="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          {creating ? 'Close' : 'New sandbox'}
        </Button>
      </div>
      {creating && (
        <CreateSandbox
          api={session.api}
          onCreated={(s) => {
            live.put(s.id, s);
            navigate(`/sandboxes/${s.id}`);
          }}
        />
      )}
      <div class="filters" role="search">
        <label>
          State{' '}
          <select value={state} onChange={(e) => setState(e.currentTarget.value)} name="state">
            <option value="">any</option>
            {SANDBOX_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Labels{' '}
          <input name="labels" placeholder="team=ml env" value={labels} onInput={(e) => setLabels(e.currentTarget.value)} />
        </label>
        <span class="muted">
          {shown.length} of {live.items.size}
        </span>
      </div>
      <ErrorBox error={live.error} />
      <Loading loading={live.loading} label="Loading sandboxes…" />
      {!live.loading && shown.length === 0 ? (
        <p class="empty">{live.items.size === 0 ? 'No sandboxes yet: create one.' : 'No sandbox matches the filters.'}</p>
      ) : (
        <VirtualList
          label="Sandboxes"
          items={shown}
          rowHeight={ROW_HEIGHT}
          keyOf={(s) => s.id}
          render={(s) => <Row sandbox={s} api={session.api} put={live.put} showTenant={session.admin} />}
        />
      )}
    </section>
  );
}
