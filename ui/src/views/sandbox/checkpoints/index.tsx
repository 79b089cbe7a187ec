// A sandbox's checkpoints as a timeline: take, restore, fork, delete; pick
// one point to compare it with the live disk, or two to compare them.

import { useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../../routes';
import type { Checkpoint, Sandbox } from '../../../types';
import { navigate } from '../../../router';
import { Button, ErrorBox, Loading, formatTime } from '../../../components/ui';
import { useAction, useLoad } from '../../../hooks';
import { DiffView } from './diff';

function Point({
  checkpoint,
  picked,
  onPick,
  onAction,
  busy,
}: {
  checkpoint: Checkpoint;
  picked: number;
  onPick: () => void;
  onAction: (what: 'restore' | 'fork' | 'delete') => void;
  busy: boolean;
}) {
  return (
    <li class={`point ${picked >= 0 ? 'picked' : ''}`} data-checkpoint={checkpoint.id}>
      <button type="button" class="dot" aria-pressed={picked >= 0} aria-label={`Compare ${checkpoint.name}`} onClick={onPick}>
        {picked >= 0 ? String.fromCharCode(65 + picked) : ''}
      </button>
      <div class="point-body">
        <div class="point-head">
          <strong>{checkpoint.name}</strong>
          {checkpoint.auto && <span class="badge">auto</span>}
          <span class="muted">{formatTime(checkpoint.created_at)}</span>
        </div>
        {checkpoint.command && (
          <div class="point-command">
            <code>$ {checkpoint.command}</code>{' '}
            <span class={`badge ${checkpoint.exit_code === 0 ? 'state-running' : 'state-error'}`}>exit {checkpoint.exit_code ?? '?'}</span>
          </div>
        )}
        <div class="actions compact">
          <Button busy={busy} onClick={() => onAction('restore')}>
            Restore
          </Button>
          <Button busy={busy} onClick={() => onAction('fork')}>
            Fork
          </Button>
          <Button kind="danger" busy={busy} onClick={() => onAction('delete')}>
            Delete
          </Button>
        </div>
      </div>
    </li>
  );
}

export function CheckpointsTab({ session, sandbox, reload }: SandboxTabProps) {
  const api = session.api;
  const list = useLoad(() => api.all<Checkpoint>(`/v1/sandboxes/${sandbox.id}/checkpoints`), [sandbox.id]);
  const [picked, setPicked] = useState<string[]>([]);
  const [name, setName] = useState('');
  const [run, busy, error] = useAction();
  const points = list.data ?? [];

  const pick = (id: string) =>
    setPicked((old) => (old.includes(id) ? old.filter((p) => p !== id) : [...old, id].slice(-2)));

  const take = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api.post(`/v1/sandboxes/${sandbox.id}/checkpoints`, name.trim() ? { name: name.trim() } : {});
      setName('');
      list.reload();
    });
  };

  const act = (checkpoint: Checkpoint, what: 'restore' | 'fork' | 'delete') =>
    run(async () => {
      if (what === 'restore') {
        if (!confirm(`Restore ${sandbox.id}'s disk to "${checkpoint.name}"? Changes since are lost unless checkpointed.`)) return;
        await api.post(`/v1/sandboxes/${sandbox.id}/restore`, { checkpoint_id: checkpoint.id });
        reload();
        list.reload();
      } else if (what === 'fork') {
        const forked = await api.post<Sandbox>('/v1/sandboxes', { from_checkpoint: checkpoint.id, template: sandbox.template });
        navigate(`/sandboxes/${forked.id}`);
      } else {
        if (!confirm(`Delete the checkpoint "${checkpoint.name}"?`)) return;
        await api.del(`/v1/checkpoints/${checkpoint.id}`);
        setPicked((old) => old.filter((p) => p !== checkpoint.id));
        list.reload();
      }
    });

  // Older point first, whatever the order they were picked in.
  const order = (id: string) => points.findIndex((p) => p.id === id);
  const [from, to] = [...picked].sort((a, b) => order(a) - order(b));
  const nameOf = (id?: string) => points.find((p) => p.id === id)?.name ?? id;

  return (
    <div class="tab-body checkpoints">
      <form class="inline" onSubmit={take}>
        <label>
          Name <input name="checkpoint-name" placeholder="optional" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <Button type="submit" kind="primary" busy={busy} disabled={sandbox.state !== 'running'}>
          Take a checkpoint
        </Button>
        <Button onClick={list.reload}>Refresh</Button>
      </form>
      <p class="muted">Pick one point to see what changed since on the live disk, or two to compare them.</p>
      <ErrorBox error={error ?? list.error} />
      <Loading loading={list.loading} label="Loading checkpoints…" />
      <div class="split">
        <ol class="timeline" aria-label="Checkpoints">
          {!list.loading && points.length === 0 && <li class="empty">No checkpoints yet.</li>}
          {points.map((c) => (
            <Point key={c.id} checkpoint={c} picked={picked.indexOf(c.id)} onPick={() => pick(c.id)} onAction={(w) => act(c, w)} busy={busy} />
          ))}
        </ol>
        <div>
          {from && (
            <DiffView
              key={`${from}-${to ?? 'live'}`}
              api={api}
              from={from}
              to={to}
              label={to ? `${nameOf(from)} → ${nameOf(to)}` : `${nameOf(from)} → live disk`}
            />
          )}
        </div>
      </div>
    </div>
  );
}
