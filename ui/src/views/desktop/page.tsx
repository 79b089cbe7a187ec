// `/ui/desktop/{id}`: the full-window live view a shareable URL opens
// (`POST /v1/sandboxes/{id}/desktop/stream/url`). No sign-in: the token in
// the URL's fragment (`#token=…`, which never reaches a server) opens this
// sandbox's stream only. It is dropped from the address bar at once and
// kept in this tab's sessionStorage, so a reload still works.

import { useCallback, useState } from 'preact/hooks';
import { DesktopViewer } from './viewer';

const storageKey = (id: string) => `warren.desktop.${id}`;

/** The token of this page: from the fragment (then removed), else kept. */
function takeToken(id: string): string | null {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (token) {
    sessionStorage.setItem(storageKey(id), token);
    history.replaceState(history.state, '', location.pathname + location.search);
    return token;
  }
  return sessionStorage.getItem(storageKey(id));
}

/** Whether a token says it can only watch (its signed payload's third field). */
function tokenViewOnly(token: string): boolean {
  try {
    const payload = atob(token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/'));
    return payload.split('|')[2] === '1';
  } catch {
    return false;
  }
}

/** The page of sandbox `id`. */
export function DesktopPage({ id }: { id: string }) {
  const [token] = useState(() => takeToken(id));
  const forced = token ? tokenViewOnly(token) : true;
  const [viewOnly, setViewOnly] = useState(forced);
  const open = useCallback(
    (watch: boolean) => {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const query = watch ? '?view_only=true' : '';
      return new WebSocket(`${scheme}//${location.host}/v1/sandboxes/${encodeURIComponent(id)}/desktop/stream${query}`, [
        'binary',
        `warren.token.${token}`,
      ]);
    },
    [id, token],
  );
  if (!token) {
    return (
      <p class="empty">
        This link has no live-view token. Make one with <code>warren desktop view {id}</code>.
      </p>
    );
  }
  return (
    <div class="desktop-page">
      <header class="desktop-top">
        <span class="brand">Warren</span>
        <span class="desktop-id">{id}</span>
        <span class="spacer" />
        <label class="desktop-toggle" title={forced ? 'This link can only watch' : undefined}>
          <input type="checkbox" checked={viewOnly} disabled={forced} onChange={(e) => setViewOnly(e.currentTarget.checked)} />
          View only
        </label>
      </header>
      <DesktopViewer open={open} viewOnly={viewOnly} full />
    </div>
  );
}
