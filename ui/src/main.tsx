// Entry point: theme, styles, then the app.

import { render } from 'preact';
import { App } from './app';
import { DesktopPage } from './views/desktop/page';
import { applyTheme, currentTheme } from './theme';
import '@xterm/xterm/css/xterm.css';
import './styles.css';

applyTheme(currentTheme());
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(currentTheme()));
// A shareable live view (`/ui/desktop/{id}#token=…`) stands alone: no
// sign-in, no nav.
const desktop = /^\/ui\/desktop\/([^/]+)\/?$/.exec(location.pathname);
render(desktop ? <DesktopPage id={decodeURIComponent(desktop[1])} /> : <App />, document.getElementById('app')!);
