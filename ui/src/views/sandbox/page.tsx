// One sandbox: its header and actions, and its tabs (registered in routes.ts).

import type { SandboxTab, ViewProps } from '../../routes';
import type { Sandbox } from '../../types';
import { linkProps, navigate } from '../../router';
import { ErrorBox, Loading, StateBadge } from '../../components/ui';
import { useLoad } from '../../hooks';
import { SandboxActions } from '../sandboxes/actions';

export function SandboxPage({ session, params, tabs }: ViewProps & { tabs: SandboxTab[] }) {
  const { id } = params;
  const loaded = useLoad((signal) => session.api.get<Sandbox>(`/v1/sandboxes/${id}`, undefined, signal), [id]);
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
