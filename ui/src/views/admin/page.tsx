// The admin page (admin key only): tenants and keys, templates, metrics
// and warm pools, as sections at /admin/<section>.

import type { ViewProps } from '../../routes';
import { linkProps } from '../../router';
import { MetricsView } from './metrics';
import { PoolsView } from './pools';
import { TemplatesView } from './templates';
import { TenantsView } from './tenants';
import './admin.css';

const SECTIONS = [
  { id: 'tenants', label: 'Tenants & keys' },
  { id: 'templates', label: 'Templates' },
  { id: 'metrics', label: 'Metrics & pools' },
];

export function AdminPage({ session, params }: ViewProps) {
  const section = SECTIONS.find((s) => s.id === params.section) ?? SECTIONS[0];
  const api = session.api;
  return (
    <section class="page admin">
      <div class="page-head">
        <h1>Admin</h1>
      </div>
      <nav class="tabs" aria-label="Admin">
        {SECTIONS.map((s) => (
          <a key={s.id} class={s === section ? 'active' : ''} aria-current={s === section ? 'page' : undefined} {...linkProps(`/admin/${s.id}`)}>
            {s.label}
          </a>
        ))}
      </nav>
      {section.id === 'tenants' && <TenantsView api={api} />}
      {section.id === 'templates' && <TemplatesView api={api} />}
      {section.id === 'metrics' && (
        <>
          <MetricsView api={api} />
          <PoolsView api={api} />
        </>
      )}
    </section>
  );
}
