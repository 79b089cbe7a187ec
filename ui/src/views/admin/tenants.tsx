// Tenants and their API keys: create a tenant (with its sandbox quota),
// create a key (shown once, with a copy button), revoke a key.

import { useState } from 'preact/hooks';
import type { Api } from '../../api';
import { Button, ErrorBox, Field, Loading, formatTime } from '../../components/ui';
import { useAction, useLoad } from '../../hooks';

interface Tenant {
  id: string;
  name: string;
  max_sandboxes?: number | null;
  created_at: string;
}

interface KeyInfo {
  id: string;
  tenant_id: string;
  prefix: string;
  created_at: string;
}

interface KeyCreated {
  id: string;
  key: string;
  tenant_id: string;
}

/** A new key, shown once: it is never readable again. */
function NewKey({ created, onDismiss }: { created: KeyCreated; onDismiss: () => void }) {
  const [copied, setCopied] = useState<string>();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied('Copied.');
    } catch {
      setCopied('Copying is not allowed here: select the key and copy it.');
    }
  };
  return (
    <div class="card new-key" role="status">
      <p>
        <strong>New key {created.id}.</strong> Copy it now: it is shown only once.
      </p>
      <div class="toolbar">
        <input class="mono new-key-value" readOnly value={created.key} aria-label="The new key" onFocus={(e) => e.currentTarget.select()} />
        <Button kind="primary" onClick={copy}>
          Copy
        </Button>
        <Button onClick={onDismiss}>Done</Button>
      </div>
      {copied && <p class="muted">{copied}</p>}
    </div>
  );
}

function TenantKeys({ api, tenant }: { api: Api; tenant: Tenant }) {
  const keys = useLoad((signal) => api.get<{ items: KeyInfo[] }>(`/v1/admin/tenants/${tenant.id}/keys`, undefined, signal), [tenant.id]);
  const [created, setCreated] = useState<KeyCreated>();
  const [run, busy, error] = useAction();
  return (
    <div class="tenant-keys">
      {created && <NewKey created={created} onDismiss={() => setCreated(undefined)} />}
      <ErrorBox error={keys.error ?? error} />
      <Loading loading={keys.loading && !keys.data} label="Loading keys…" />
      {keys.data && (
        <table class="list">
          <thead>
            <tr>
              <th>Key</th>
              <th>Starts with</th>
              <th class="hide-narrow">Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.data.items.length === 0 && (
              <tr>
                <td colSpan={4} class="muted">
                  No keys.
                </td>
              </tr>
            )}
            {keys.data.items.map((k) => (
              <tr key={k.id}>
                <td class="mono">{k.id}</td>
                <td class="mono">{k.prefix}…</td>
                <td class="hide-narrow">{formatTime(k.created_at)}</td>
                <td>
                  <Button
                    kind="danger"
                    busy={busy}
                    aria-label={`Revoke ${k.id}`}
                    onClick={() =>
                      confirm(`Revoke ${k.id}? Clients using it stop working at once.`) &&
                      run(async () => {
                        await api.del(`/v1/admin/keys/${k.id}`);
                        keys.reload();
                      })
                    }
                  >
                    Revoke
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Button
        kind="primary"
        busy={busy}
        onClick={() =>
          run(async () => {
            setCreated(await api.post<KeyCreated>(`/v1/admin/tenants/${tenant.id}/keys`));
            keys.reload();
          })
        }
      >
        Create a key for {tenant.name}
      </Button>
    </div>
  );
}

/** The tenants section of the admin page. */
export function TenantsView({ api }: { api: Api }) {
  const tenants = useLoad((signal) => api.all<Tenant>('/v1/admin/tenants', {}, 500).then((t) => (signal.aborted ? [] : t)), []);
  const [name, setName] = useState('');
  const [max, setMax] = useState('');
  const [open, setOpen] = useState<string>();
  const [run, busy, error] = useAction();
  const create = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const body: { name: string; max_sandboxes?: number } = { name: name.trim() };
      if (max.trim()) body.max_sandboxes = Number(max);
      const tenant = await api.post<Tenant>('/v1/admin/tenants', body);
      setName('');
      setMax('');
      setOpen(tenant.id);
      tenants.reload();
    });
  };
  return (
    <div class="admin-tenants">
      <form class="card toolbar admin-form" onSubmit={create} aria-label="Create a tenant">
        <Field label="Tenant name">
          <input required maxLength={64} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Max sandboxes">
          <input type="number" min={0} inputMode="numeric" placeholder="no limit" value={max} onInput={(e) => setMax(e.currentTarget.value)} />
        </Field>
        <Button kind="primary" type="submit" busy={busy} disabled={!name.trim()}>
          Create tenant
        </Button>
      </form>
      <ErrorBox error={error ?? tenants.error} />
      <Loading loading={tenants.loading && !tenants.data} label="Loading tenants…" />
      {tenants.data && tenants.data.length === 0 && <p class="empty">No tenants yet.</p>}
      <ul class="tenant-list">
        {tenants.data?.map((t) => (
          <li key={t.id} class="card">
            <button
              type="button"
              class="tenant-head"
              aria-expanded={open === t.id}
              onClick={() => setOpen(open === t.id ? undefined : t.id)}
            >
              <strong>{t.name}</strong> <span class="mono muted">{t.id}</span>
              <span class="spacer" />
              <span class="muted">
                {t.max_sandboxes === null || t.max_sandboxes === undefined ? 'no limit' : `max ${t.max_sandboxes} sandboxes`}
              </span>
            </button>
            {open === t.id && <TenantKeys api={api} tenant={t} />}
          </li>
        ))}
      </ul>
    </div>
  );
}
