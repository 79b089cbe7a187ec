// A sandbox's details, with extend and fork.

import { useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../routes';
import type { Sandbox } from '../../types';
import { navigate } from '../../router';
import { Button, ErrorBox, formatTime } from '../../components/ui';
import { useAction } from '../../hooks';

function Details({ sandbox }: { sandbox: Sandbox }) {
  const rows: [string, string][] = [
    ['Template', sandbox.template],
    ['Created', formatTime(sandbox.created_at)],
    ['Last active', formatTime(sandbox.last_active_at)],
    ['Expires', formatTime(sandbox.expires_at)],
    ['Idle timeout', `${sandbox.timeout_secs} s`],
    ['Resources', `${sandbox.resources.cpus} CPU, ${sandbox.resources.memory_mb} MiB, ${sandbox.resources.pids} tasks${sandbox.resources.disk_mb ? `, ${sandbox.resources.disk_mb} MiB disk` : ''}`],
    ['Network', sandbox.network.egress + (sandbox.network.allow.length ? ` (${sandbox.network.allow.join(', ')})` : '')],
    ['Auto-checkpoint', sandbox.auto_checkpoint ? `yes (keeps ${sandbox.auto_checkpoint_keep})` : 'no'],
    ['Auto-wake', sandbox.auto_wake ? 'yes' : 'no'],
    ['Labels', Object.entries(sandbox.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '—'],
  ];
  if (sandbox.tenant_id) rows.push(['Tenant', sandbox.tenant_id]);
  if (sandbox.from_checkpoint) rows.push(['From checkpoint', sandbox.from_checkpoint]);
  return (
    <dl class="details">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Overview({ session, sandbox, reload }: SandboxTabProps) {
  const [seconds, setSeconds] = useState('600');
  const [run, busy, error] = useAction();
  const extend = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await session.api.post(`/v1/sandboxes/${sandbox.id}/extend`, { seconds: Number(seconds) });
      reload();
    });
  };
  const fork = () =>
    run(async () => {
      const forked = await session.api.post<{ items: Sandbox[] }>(`/v1/sandboxes/${sandbox.id}/fork`, { count: 1 });
      navigate(`/sandboxes/${forked.items[0].id}`);
    });
  return (
    <div class="tab-body">
      <Details sandbox={sandbox} />
      <div class="toolbar">
        <form class="inline" onSubmit={extend}>
          <label>
            Extend by{' '}
            <input name="seconds" inputMode="numeric" size={6} value={seconds} onInput={(e) => setSeconds(e.currentTarget.value)} /> s
          </label>
          <Button type="submit" busy={busy}>
            Extend
          </Button>
        </form>
        <Button busy={busy} onClick={fork} disabled={sandbox.state !== 'running'}>
          Fork
        </Button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}
