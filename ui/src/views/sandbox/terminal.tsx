// A terminal: xterm.js over the agent's process WebSocket. The shell is a
// managed process with a PTY; its id is kept for the tab, so coming back
// (or a dropped connection) reattaches and replays the scrollback from the
// agent's output ring.

import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebglAddon } from '@xterm/addon-webgl';
import type { SandboxTabProps } from '../../routes';
import type { ProcessInfo } from '../../types';
import { ApiError, type Api } from '../../api';
import { Button, ErrorBox } from '../../components/ui';

const STDOUT = 1;
const STDERR = 2;
const RECONNECT_MS = 1500;

type Status = 'starting' | 'connected' | 'reconnecting' | 'exited';

const storageKey = (sandbox: string) => `warren.pty.${sandbox}`;

/** The shell kept for this tab, if it still runs; else a new one. */
async function shell(api: Api, sandbox: string, cols: number, rows: number): Promise<string> {
  const kept = sessionStorage.getItem(storageKey(sandbox));
  if (kept) {
    try {
      const info = await api.get<ProcessInfo>(`/v1/sandboxes/${sandbox}/processes/${kept}`);
      if (info.state === 'running') return kept;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }
  const info = await api.post<ProcessInfo>(`/v1/sandboxes/${sandbox}/processes`, {
    argv: ['/bin/bash', '-l'],
    tty: true,
    cols,
    rows,
    env: { TERM: 'xterm-256color' },
  });
  sessionStorage.setItem(storageKey(sandbox), info.id);
  return info.id;
}

function newTerminal(): Terminal {
  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, Menlo, Consolas, monospace',
    fontSize: 14,
    scrollback: 5000,
    // Rows mirrored in the DOM for screen readers (and the browser tests).
    screenReaderMode: true,
  });
  // Before open(): xterm then never creates its DOM renderer, whose inline
  // <style> elements the console's CSP (style-src 'self') would refuse.
  term.loadAddon(new WebglAddon());
  return term;
}

export function TerminalTab({ session, sandbox }: SandboxTabProps) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>('starting');
  const [error, setError] = useState<Error>();
  const [round, setRound] = useState(0);

  useEffect(() => {
    const term = newTerminal();
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current!);
    fit.fit();
    term.focus();

    let socket: WebSocket | null = null;
    let cursor = 0;
    let closed = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const encoder = new TextEncoder();

    const send = (data: string | Uint8Array) => {
      if (socket?.readyState === WebSocket.OPEN) socket.send(data);
    };
    const resize = () => send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));

    const attach = (id: string) => {
      const ws = session.api.websocket(`/v1/sandboxes/${sandbox.id}/processes/${id}/ws`, { cursor });
      socket = ws;
      ws.onopen = () => {
        setStatus('connected');
        setError(undefined);
        resize();
      };
      ws.onmessage = (msg) => {
        if (typeof msg.data === 'string') {
          const control = JSON.parse(msg.data) as { type: string; cursor?: number; detail?: string };
          if (control.type === 'exit') {
            closed = true;
            sessionStorage.removeItem(storageKey(sandbox.id));
            setStatus('exited');
            term.write('\r\n[the shell exited]\r\n');
          } else if (control.type === 'dropped' && control.cursor !== undefined) {
            cursor = control.cursor;
          } else if (control.type === 'error') {
            setError(new Error(control.detail ?? 'terminal error'));
          }
          return;
        }
        const bytes = new Uint8Array(msg.data as ArrayBuffer);
        cursor += bytes.length - 1;
        if (bytes[0] === STDOUT || bytes[0] === STDERR) term.write(bytes.subarray(1));
      };
      ws.onclose = () => {
        if (closed) return;
        setStatus('reconnecting');
        timer = setTimeout(() => attach(id), RECONNECT_MS);
      };
    };

    const inputs = [
      term.onData((data) => send(encoder.encode(data))),
      term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0)))),
      term.onResize(resize),
    ];
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box.current!);

    shell(session.api, sandbox.id, term.cols, term.rows).then(
      (id) => !closed && attach(id),
      (err: Error) => setError(err),
    );

    return () => {
      closed = true;
      clearTimeout(timer);
      observer.disconnect();
      inputs.forEach((d) => d.dispose());
      socket?.close();
      term.dispose();
    };
  }, [session.api, sandbox.id, round]);

  return (
    <div class="tab-body">
      <div class="toolbar">
        <span class={`badge term-${status}`} role="status">
          {status}
        </span>
        {status === 'exited' && (
          <Button kind="primary" onClick={() => setRound(round + 1)}>
            New shell
          </Button>
        )}
      </div>
      <ErrorBox error={error} />
      <div class="terminal-box" ref={box} aria-label="Terminal" />
    </div>
  );
}
