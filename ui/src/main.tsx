// Entry point: theme, styles, then the app.

import { render } from 'preact';
import { App } from './app';
import { applyTheme, currentTheme } from './theme';
import '@xterm/xterm/css/xterm.css';
import './styles.css';

applyTheme(currentTheme());
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(currentTheme()));
render(<App />, document.getElementById('app')!);
