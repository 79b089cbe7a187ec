// Dark and light themes: the system's preference unless the user picked one
// (kept in localStorage: a preference, not a secret).

const KEY = 'warren.theme';

export type Theme = 'light' | 'dark';

/** The theme in effect. */
export function currentTheme(): Theme {
  const picked = localStorage.getItem(KEY);
  if (picked === 'light' || picked === 'dark') return picked;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Applies `theme` to the document (and remembers it when `remember`). */
export function applyTheme(theme: Theme, remember = false): void {
  document.documentElement.dataset.theme = theme;
  if (remember) localStorage.setItem(KEY, theme);
}
