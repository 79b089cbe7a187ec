// A live view of a sandbox's desktop: noVNC's RFB client on a WebSocket to
// `/v1/sandboxes/{id}/desktop/stream` that the caller opens (with a key or
// a live-view token). View-only is asked of the server (`view_only=true`
// in the socket's query), which enforces it; noVNC's own `viewOnly` only
// stops it from sending input that would be ignored anyway.

import { useEffect, useRef, useState } from 'preact/hooks';
import RFB from '@novnc/novnc';

type Status = 'connecting' | 'connected' | 'disconnected';

/** Opens the stream's socket (view-only or not). */
export type OpenStream = (viewOnly: boolean) => WebSocket;

/** The desktop, scaled into its box; reconnects when `viewOnly` changes. */
export function DesktopViewer({ open, viewOnly, full = false }: { open: OpenStream; viewOnly: boolean; full?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>('connecting');
  const [detail, setDetail] = useState('');
  const [round, setRound] = useState(0);

  useEffect(() => {
    setStatus('connecting');
    const socket = open(viewOnly);
    socket.binaryType = 'arraybuffer';
    const rfb = new RFB(box.current!, socket);
    rfb.viewOnly = viewOnly;
    rfb.scaleViewport = true;
    rfb.background = 'transparent';
    rfb.addEventListener('connect', () => {
      setStatus('connected');
      setDetail('');
    });
    rfb.addEventListener('disconnect', (e) => {
      setStatus('disconnected');
      const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
      setDetail(clean ? 'The stream ended.' : 'The stream was refused or lost (is the desktop running, is the link still valid?).');
    });
    return () => rfb.disconnect();
  }, [open, viewOnly, round]);

  return (
    <div class={full ? 'desktop-view desktop-full' : 'desktop-view'}>
      <div class="desktop-bar" role="status">
        <span class={`desktop-dot desktop-${status}`} aria-hidden="true" />
        {status === 'connected' ? (viewOnly ? 'Watching (view only)' : 'Connected (interactive)') : status === 'connecting' ? 'Connecting…' : detail}
        {status === 'disconnected' && (
          <button type="button" class="btn btn-plain" onClick={() => setRound((r) => r + 1)}>
            Reconnect
          </button>
        )}
      </div>
      <div class="desktop-screen" ref={box} data-status={status} />
    </div>
  );
}
