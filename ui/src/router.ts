// A small path router under /ui/: patterns like `/sandboxes/:id/:tab?`.

import { useEffect, useState } from 'preact/hooks';

/** The console's base path. */
export const BASE = '/ui';

/** The current path under BASE (`/sandboxes/sbx_1`). */
export function currentPath(): string {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '/';
  return path || '/';
}

/** Goes to `path` (under BASE) without reloading. */
export function navigate(path: string, replace = false): void {
  const url = `${BASE}${path}`;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** The current path, re-rendering on navigation. */
export function usePath(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const onPop = () => setPath(currentPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  return path;
}

/** The parameters of `path` matched against `pattern`, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/').filter(Boolean);
  const have = path.split('/').filter(Boolean);
  const params: Record<string, string> = {};
  for (let i = 0; i < Math.max(want.length, have.length); i++) {
    const part = want[i];
    if (part === undefined) return null;
    const optional = part.endsWith('?');
    const name = part.replace(/^:/, '').replace(/\?$/, '');
    if (have[i] === undefined) {
      if (optional) continue;
      return null;
    }
    if (part.startsWith(':')) params[name] = decodeURIComponent(have[i]);
    else if (part !== have[i]) return null;
  }
  return params;
}

/** Props of a link that navigates inside the console. */
export function linkProps(path: string): { href: string; onClick: (e: MouseEvent) => void } {
  return {
    href: `${BASE}${path}`,
    onClick: (e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(path);
    },
  };
}
