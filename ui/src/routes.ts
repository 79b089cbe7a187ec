// The one place views register: console routes (with their nav entries)
// and the tabs of one sandbox's page. Add a view by importing it here and
// adding an entry; nothing else needs to change.

import type { ComponentType } from 'preact';
import type { Session } from './session';
import type { Sandbox } from './types';
import { SandboxList } from './views/sandboxes/list';
import { SandboxPage } from './views/sandbox/page';
import { Overview } from './views/sandbox/overview';
import { TerminalTab } from './views/sandbox/terminal';
import { FilesTab } from './views/sandbox/files';
import { CheckpointsTab } from './views/sandbox/checkpoints';
import { ProcessesTab } from './views/sandbox/processes';
import { PreviewsTab } from './views/sandbox/previews';
import { SessionsTab } from './views/sessions/tab';
import { DesktopTab } from './views/desktop/tab';
import { AdminPage } from './views/admin/page';

/** Props every routed view gets. */
export interface ViewProps {
  session: Session;
  /** The `:name` parts of the route's path. */
  params: Record<string, string>;
}

/** A page of the console. */
export interface RouteDef {
  /** Path under /ui, with `:param` and optional `:param?` parts. */
  path: string;
  view: ComponentType<ViewProps>;
  /** Its entry in the nav, if it has one. */
  nav?: string;
  /** Only for the admin key (hidden from the nav and refused otherwise). */
  admin?: boolean;
}

/** Props of one tab of a sandbox's page. */
export interface SandboxTabProps {
  session: Session;
  sandbox: Sandbox;
  /** Reloads the sandbox (after an action changed it). */
  reload: () => void;
}

/** A tab of a sandbox's page, at /sandboxes/:id/<id>. */
export interface SandboxTab {
  id: string;
  label: string;
  view: ComponentType<SandboxTabProps>;
  /** Whether the tab needs a running sandbox (its agent). */
  needsRunning?: boolean;
}

/** The tabs of a sandbox's page, in order; the first is the default. */
export const sandboxTabs: SandboxTab[] = [
  { id: 'overview', label: 'Overview', view: Overview },
  { id: 'terminal', label: 'Terminal', view: TerminalTab, needsRunning: true },
  { id: 'files', label: 'Files', view: FilesTab, needsRunning: true },
  { id: 'checkpoints', label: 'Checkpoints', view: CheckpointsTab },
  { id: 'processes', label: 'Processes', view: ProcessesTab, needsRunning: true },
  { id: 'sessions', label: 'Sessions', view: SessionsTab, needsRunning: true },
  { id: 'desktop', label: 'Desktop', view: DesktopTab, needsRunning: true },
  { id: 'previews', label: 'Previews', view: PreviewsTab },
];

/** Every page; the first match wins. */
export const routes: RouteDef[] = [
  { path: '/', view: SandboxList, nav: 'Sandboxes' },
  { path: '/sandboxes/:id/:tab?', view: (props) => SandboxPage({ ...props, tabs: sandboxTabs }) },
  { path: '/admin/:section?', view: AdminPage, nav: 'Admin', admin: true },
];
