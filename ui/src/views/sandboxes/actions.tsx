// Lifecycle actions of one sandbox, as buttons fitting its state.

import type { Api } from '../../api';
import type { Sandbox } from '../../types';
import { Button, ErrorBox } from '../../components/ui';
import { useAction } from '../../hooks';

interface Action {
  label: string;
  path: string;
  method?: 'POST' | 'DELETE';
  kind?: 'danger';
  confirm?: string;
}

/** The actions that make sense in `state`. */
export function actionsFor(sandbox: Sandbox): Action[] {
  const base = `/v1/sandboxes/${sandbox.id}`;
  const del: Action = { label: 'Delete', path: base, method: 'DELETE', kind: 'danger', confirm: `Delete ${sandbox.id} and its disk?` };
  switch (sandbox.state) {
    case 'running':
      return [
        { label: 'Stop', path: `${base}/stop` },
        { label: 'Hibernate', path: `${base}/hibernate` },
        del,
      ];
    case 'stopped':
    case 'error':
      return [{ label: 'Start', path: `${base}/start` }, del];
    case 'hibernated':
      return [{ label: 'Wake', path: `${base}/wake` }, del];
    default:
      return [del];
  }
}

/**
 * The action buttons; `onDone` gets the sandbox after the action (`null`
 * once deleted).
 */
export function SandboxActions({
  api,
  sandbox,
  onDone,
  compact = false,
}: {
  api: Api;
  sandbox: Sandbox;
  onDone: (sandbox: Sandbox | null) => void;
  compact?: boolean;
}) {
  const [run, busy, error] = useAction();
  const act = (action: Action) =>
    run(async () => {
      if (action.confirm && !confirm(action.confirm)) return;
      if (action.method === 'DELETE') {
        await api.del(action.path);
        onDone(null);
      } else {
        await api.post(action.path);
        onDone(await api.get<Sandbox>(`/v1/sandboxes/${sandbox.id}`));
      }
    });
  return (
    <div class={compact ? 'actions compact' : 'actions'}>
      {actionsFor(sandbox).map((action) => (
        <Button
          key={action.label}
          kind={action.kind ?? 'plain'}
          busy={busy}
          onClick={() => act(action)}
          aria-label={`${action.label} ${sandbox.id}`}
        >
          {action.label}
        </Button>
      ))}
      <ErrorBox error={error} />
    </div>
  );
}
