// The sandbox's preview URLs: a port served to the outside, public or
// behind a token.

import { useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../routes';
import type { Preview } from '../../types';
import { Button, ErrorBox, Loading } from '../../components/ui';
import { useAction, useLoad } from '../../hooks';

export function PreviewsTab({ session, sandbox }: SandboxTabProps) {
  const api = session.api;
  const base = `/v1/sandboxes/${sandbox.id}/previews`;
  const list = useLoad((signal) => api.get<{ items: Preview[] }>(base, undefined, signal), [sandbox.id]);
  const [port, setPort] = useState('8000');
  const [auth, setAuth] = useState('token');
  const [run, busy, error] = useAction();

  const create = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api.post(base, { port: Number(port), auth });
      list.reload();
    });
  };
  const remove = (p: Preview) =>
    run(async () => {
      await api.del(`${base}/${p.port}`);
      list.reload();
    });

  const items = list.data?.items ?? [];
  return (
    <div class="tab-body">
      <form class="inline" onSubmit={create}>
        <label>
          Port <input name="port" inputMode="numeric" size={6} value={port} onInput={(e) => setPort(e.currentTarget.value)} />
        </label>
        <label>
          Access{' '}
          <select name="auth" value={auth} onChange={(e) => setAuth(e.currentTarget.value)}>
            <option value="token">with its token</option>
            <option value="public">public</option>
          </select>
        </label>
        <Button type="submit" kind="primary" busy={busy}>
          Expose
        </Button>
      </form>
      <ErrorBox error={error ?? list.error} />
      <Loading loading={list.loading} label="Loading previews…" />
      {!list.loading && items.length === 0 && <p class="empty">No previews: expose a port a server listens on.</p>}
      <ul class="previews">
        {items.map((p) => (
          <li key={p.id} class="card">
            <div class="point-head">
              <strong>port {p.port}</strong>
              <span class="badge">{p.auth}</span>
              <span class="spacer" />
              <Button kind="danger" busy={busy} onClick={() => remove(p)}>
                Remove
              </Button>
            </div>
            {[p.url, p.path_url].map((url) => {
              const href = p.token ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(p.token)}` : url;
              return (
                <div key={url}>
                  <a href={href} target="_blank" rel="noreferrer noopener" class="mono">
                    {url}
                  </a>
                </div>
              );
            })}
            {p.token && <p class="muted">Token: <code>{p.token}</code> (the links carry it)</p>}
          </li>
        ))}
      </ul>
    </div>
  );
}
