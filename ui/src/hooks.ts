// Shared hooks: data loading with a delayed spinner, and async actions.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** What a load is at. */
export interface Loaded<T> {
  data?: T;
  error?: Error;
  loading: boolean;
  reload: () => void;
}

/** Loads `load()` now and whenever `deps` change; `reload` loads again. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(abort.signal).then(
      (data) => !abort.signal.aborted && setState({ data, loading: false }),
      (error: Error) => !abort.signal.aborted && setState((s) => ({ ...s, error, loading: false })),
    );
    return () => abort.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...state, reload };
}

/** True once `active` has stayed true for `ms` (spinners only for slow things). */
export function useDelayed(active: boolean, ms = 100): boolean {
  const [shown, setShown] = useState(false);
  useEffect(() => {
    if (!active) {
      setShown(false);
      return;
    }
    const timer = setTimeout(() => setShown(true), ms);
    return () => clearTimeout(timer);
  }, [active, ms]);
  return shown;
}

/** Runs async actions one at a time: `[run, busy, error]`. */
export function useAction(): [(action: () => Promise<unknown>) => Promise<void>, boolean, Error | undefined] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (err) {
      if (mounted.current) setError(err as Error);
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  return [run, busy, error];
}
