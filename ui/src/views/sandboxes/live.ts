// The live list of sandboxes: subscribe to GET /v1/events first, then list
// every page, then apply events (a `lagged` event or a broken stream lists
// again). Where the server has no event stream (404), it polls every 3 s.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, type Api } from '../../api';
import { followEvents, sleep } from '../../events';
import type { Sandbox, SandboxEvent } from '../../types';

const POLL_MS = 3000;

export interface LiveSandboxes {
  items: Map<string, Sandbox>;
  loading: boolean;
  error?: Error;
  /** `events` when state changes stream in, `polling` otherwise. */
  mode: 'events' | 'polling' | 'connecting';
  /** Puts a sandbox the caller just changed (or removes it: `null`). */
  put: (id: string, sandbox: Sandbox | null) => void;
}

/** Every sandbox the key may see, kept up to date. */
export function useLiveSandboxes(api: Api): LiveSandboxes {
  const [items, setItems] = useState<Map<string, Sandbox>>(new Map());
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<Error>();
  const [mode, setMode] = useState<LiveSandboxes['mode']>('connecting');

  const put = useCallback((id: string, sandbox: Sandbox | null) => {
    setItems((old) => {
      const next = new Map(old);
      if (sandbox) next.set(id, sandbox);
      else next.delete(id);
      return next;
    });
  }, []);

  useEffect(() => {
    const abort = new AbortController();
    const signal = abort.signal;

    const list = async () => {
      const all = await api.all<Sandbox>('/v1/sandboxes');
      if (signal.aborted) return;
      setItems(new Map(all.map((s) => [s.id, s])));
      setLoading(false);
      setError(undefined);
    };

    const apply = async (event: SandboxEvent) => {
      if (event.state === 'destroyed') return put(event.sandbox_id, null);
      let known = false;
      setItems((old) => {
        const current = old.get(event.sandbox_id);
        if (!current) return old;
        known = true;
        const next = new Map(old);
        next.set(event.sandbox_id, { ...current, state: event.state });
        return next;
      });
      if (!known) {
        try {
          put(event.sandbox_id, await api.get<Sandbox>(`/v1/sandboxes/${event.sandbox_id}`));
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) throw err;
        }
      }
    };

    const poll = async () => {
      setMode('polling');
      while (!signal.aborted) {
        try {
          await list();
        } catch (err) {
          if (!signal.aborted) setError(err as Error);
        }
        await sleep(POLL_MS, signal);
      }
    };

    const follow = async () => {
      const streamed = await followEvents(api, {}, signal, {
        onOpen: async () => {
          setMode('events');
          await list();
        },
        onEvent: async (event) => {
          if (event.event === 'lagged') await list();
          else if (event.event === 'sandbox') await apply(JSON.parse(event.data) as SandboxEvent);
        },
        onError: (err) => {
          setMode('connecting');
          setError(err);
          setLoading(false);
        },
      });
      if (!streamed) await poll();
    };

    void follow();
    return () => abort.abort();
  }, [api, put]);

  return { items, loading, error, mode, put };
}
