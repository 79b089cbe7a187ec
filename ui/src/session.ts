// The signed-in key: kept in sessionStorage only (gone with the tab), never
// in a URL or in localStorage.

import { Api, ApiError } from './api';

const KEY = 'warren.key';

/** Who is signed in. */
export interface Session {
  api: Api;
  /** Whether the key is the admin key (it may call /v1/admin/...). */
  admin: boolean;
}

/** Checks a key against the server: rejects with the server's error when it is refused. */
export async function signIn(key: string): Promise<Session> {
  const api = new Api(key.trim());
  await api.get('/v1/sandboxes', { limit: 1 });
  let admin = false;
  try {
    await api.get('/v1/admin/tenants', { limit: 1 });
    admin = true;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
  }
  sessionStorage.setItem(KEY, api.key);
  return { api, admin };
}

/** The key kept for this tab, if any. */
export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

/** Forgets the key. */
export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
