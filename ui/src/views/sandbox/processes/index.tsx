// The sandbox's managed processes: start one, signal it, follow its output.

import { useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../../routes';
import type { ProcessInfo } from '../../../types';
import { Button, ErrorBox, Loading, formatTime } from '../../../components/ui';
import { useAction, useLoad } from '../../../hooks';
import { Logs } from './logs';

export function ProcessesTab({ session, sandbox }: SandboxTabProps) {
  const api = session.api;
  const base = `/v1/sandboxes/${sandbox.id}/processes`;
  const list = useLoad((signal) => api.get<{ items: ProcessInfo[] }>(base, { limit: 200 }, signal), [sandbox.id]);
  const [cmd, setCmd] = useState('');
  const [open, setOpen] = useState<string>();
  const [run, busy, error] = useAction();

  const start = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const info = await api.post<ProcessInfo>(base, { cmd });
      setCmd('');
      setOpen(info.id);
      list.reload();
    });
  };
  const signal = (id: string, name: string) =>
    run(async () => {
      await api.post(`${base}/${id}/signal`, { signal: name });
      list.reload();
    });

  const items = list.data?.items ?? [];
  return (
    <div class="tab-body">
      <form class="inline" onSubmit={start}>
        <label class="grow">
          Command <input name="cmd" required placeholder="python3 -m http.server 8000" value={cmd} onInput={(e) => setCmd(e.currentTarget.value)} />
        </label>
        <Button type="submit" kind="primary" busy={busy}>
          Start
        </Button>
        <Button onClick={list.reload}>Refresh</Button>
      </form>
      <ErrorBox error={error ?? list.error} />
      <Loading loading={list.loading} label="Loading processes…" />
      {!list.loading && items.length === 0 && <p class="empty">No managed processes.</p>}
      {items.length > 0 && (
        <table class="list">
          <thead>
            <tr>
              <th>Command</th>
              <th>State</th>
              <th class="hide-narrow">Started</th>
              <th>
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((p) => (
              <tr key={p.id}>
                <td class="mono">{p.cmd ?? p.argv?.join(' ')}</td>
                <td>
                  <span class={`badge ${p.state === 'running' ? 'state-running' : 'state-stopped'}`}>
                    {p.state === 'running' ? 'running' : p.signal ? `signal ${p.signal}` : `exit ${p.exit_code}`}
                  </span>
                </td>
                <td class="muted hide-narrow">{formatTime(p.started_at)}</td>
                <td class="actions compact">
                  <Button onClick={() => setOpen(open === p.id ? undefined : p.id)} aria-expanded={open === p.id}>
                    Logs
                  </Button>
                  {p.state === 'running' && (
                    <Button kind="danger" busy={busy} onClick={() => signal(p.id, 'TERM')}>
                      Stop
                    </Button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {open && (
        <section class="card">
          <h2 class="mono">{items.find((p) => p.id === open)?.cmd ?? open}</h2>
          <Logs key={open} api={api} sandbox={sandbox.id} process={open} />
        </section>
      )}
    </div>
  );
}
