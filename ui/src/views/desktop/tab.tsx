// A sandbox's Desktop tab: its live view with the signed-in key, a
// view-only toggle, and a button to start the desktop when it is not
// running.

import { useCallback, useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../routes';
import { useAction, useLoad } from '../../hooks';
import { Button, ErrorBox, Loading } from '../../components/ui';
import { DesktopViewer } from './viewer';

interface DesktopStatus {
  running: boolean;
  width?: number;
  height?: number;
}

export function DesktopTab({ session, sandbox }: SandboxTabProps) {
  const [round, setRound] = useState(0);
  const base = `/v1/sandboxes/${sandbox.id}/desktop`;
  const status = useLoad((signal) => session.api.get<DesktopStatus>(`${base}/status`, undefined, signal), [sandbox.id, round]);
  const [run, busy, error] = useAction();
  const [viewOnly, setViewOnly] = useState(false);
  const open = useCallback(
    (watch: boolean) => session.api.websocket(`${base}/stream`, watch ? { view_only: true } : undefined),
    [session.api, base],
  );

  if (status.loading && !status.data) return <Loading loading />;
  if (status.error) return <ErrorBox error={status.error} />;
  if (!status.data?.running) {
    return (
      <div class="panel">
        <p>The desktop is not running.</p>
        <Button kind="primary" busy={busy} onClick={() => run(() => session.api.post(`${base}/start`, {}).then(() => setRound((r) => r + 1)))}>
          Start desktop
        </Button>
        <ErrorBox error={error} />
      </div>
    );
  }
  return (
    <div class="desktop-tab">
      <div class="toolbar">
        <label class="desktop-toggle">
          <input type="checkbox" checked={viewOnly} onChange={(e) => setViewOnly(e.currentTarget.checked)} />
          View only
        </label>
        <span class="muted">
          {status.data.width}×{status.data.height}
        </span>
      </div>
      <DesktopViewer open={open} viewOnly={viewOnly} />
    </div>
  );
}
