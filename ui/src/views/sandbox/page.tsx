// One sandbox: its header and actions (its state kept current from the
// event stream), and its tabs (registered in routes.ts).

import { useEffect } from 'preact/hooks';
import type { Api } from '../../api';
import type { SandboxTab, ViewProps } from '../../routes';
import type { Sandbox } from '../../types';
import { linkProps, navigate } from '../../router';
import { ErrorBox, Loading, StateBadge } from '../../components/ui';
import { useLoad } from '../../hooks';
import { followEvents, sleep } from '../../events';

const POLL_MS = 5000;

/** Calls `changed` whenever sandbox `id` changes state (events, else polling). */
function useSandboxChanges(api: Api, id: string, changed: () => void) {
  useEffect(() => {
    const abort = new AbortController();
    const signal = abort.signal;
    void (async () => {
      const streamed = await followEvents(api, { sandbox_id: id }, signal, {
        onOpen: async () => changed(),
        onEvent: (event) => {
          if (event.event === 'sandbox' || event.event === 'lagged') changed();
        },
        onError: () => undefined,
      });
      while (!streamed && !signal.aborted) {
        await sleep(POLL_MS, signal);
        if (!signal.aborted) changed();
      }
    })();
    return () => abort.abort();
  }, [api, id]);
}
import { SandboxActions } from '../sandboxes/actions';

export function SandboxPage({ session, params, tabs }: ViewProps & { tabs: SandboxTab[] }) {
  const { id } = params;
  const loaded = useLoad((signal) => session.api.get<Sandbox>(`/v1/sandboxes/${id}`, undefined, signal), [id]);
  useSandboxChanges(session.api, id, loaded.reload);
  const tab = tabs.find((t) => t.id === params.tab) ?? tabs[0];
  const sandbox = loaded.data;
  const View = tab.view;
  return (
    <section class="page">
      <p class="crumbs">
        <a {...linkProps('/')}>Sandboxes</a> / <span class="mono">{id}</span>
      </p>
      <ErrorBox error={loaded.error} />
      <Loading loading={loaded.loading && !sandbox} label="Loading the sandbox…" />
      {sandbox && (
        <>
          <div class="page-head">
            <h1 class="mono">{sandbox.id}</h1>
            <StateBadge state={sandbox.state} />
            <span class="spacer" />
            <SandboxActions
              api={session.api}
              sandbox={sandbox}
              onDone={(s) => (s ? loaded.reload() : navigate('/'))}
            />
          </div>
          <nav class="tabs" aria-label="Sandbox">
            {tabs.map((t) => (
              <a key={t.id} class={t === tab ? 'active' : ''} aria-current={t === tab ? 'page' : undefined} {...linkProps(`/sandboxes/${id}/${t.id}`)}>
                {t.label}
              </a>
            ))}
          </nav>
          {tab.needsRunning && sandbox.state !== 'running' ? (
            <p class="empty">The sandbox is {sandbox.state}: start or wake it to use this tab.</p>
          ) : (
            <View key={`${tab.id}-${sandbox.id}`} session={session} sandbox={sandbox} reload={loaded.reload} />
          )}
        </>
      )}
    </section>
  );
}
