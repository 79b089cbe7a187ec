// The shell: sign-in, then a nav and the routed view.

import { useEffect, useState } from 'preact/hooks';
import { routes, type RouteDef } from './routes';
import { linkProps, match, navigate, usePath } from './router';
import { signIn, signOut, storedKey, type Session } from './session';
import { applyTheme, currentTheme, type Theme } from './theme';
import { Login } from './views/login';
import { Loading } from './components/ui';

function resolve(path: string, session: Session): [RouteDef, Record<string, string>] | null {
  for (const route of routes) {
    if (route.admin && !session.admin) continue;
    const params = match(route.path, path);
    if (params) return [route, params];
  }
  return null;
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(currentTheme());
  const next: Theme = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="btn btn-plain theme-toggle"
      aria-label={`Switch to the ${next} theme`}
      onClick={() => {
        applyTheme(next, true);
        setTheme(next);
      }}
    >
      {theme === 'dark' ? '☀' : '☾'}
    </button>
  );
}

function Nav({ session, path, onSignOut }: { session: Session; path: string; onSignOut: () => void }) {
  const entries = routes.filter((r) => r.nav && (!r.admin || session.admin));
  return (
    <header class="topbar">
      <a class="brand" {...linkProps('/')}>
        Warren
      </a>
      <nav aria-label="Main">
        {entries.map((r) => {
          const active = r.path === '/' ? path === '/' || path.startsWith('/sandboxes') : path.startsWith(r.path);
          return (
            <a key={r.path} class={active ? 'active' : ''} aria-current={active ? 'page' : undefined} {...linkProps(r.path)}>
              {r.nav}
            </a>
          );
        })}
      </nav>
      <span class="spacer" />
      <span class="who" title="The kind of key you signed in with">
        {session.admin ? 'admin' : 'tenant'}
      </span>
      <ThemeToggle />
      <button type="button" class="btn btn-plain" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}

/** The console. */
export function App() {
  const path = usePath();
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(storedKey() !== null);

  useEffect(() => {
    const key = storedKey();
    if (!key) return;
    signIn(key)
      .then(setSession, () => signOut())
      .finally(() => setRestoring(false));
  }, []);

  if (restoring) return <Loading loading label="Signing in…" />;
  if (!session) return <Login onSignedIn={setSession} />;

  const resolved = resolve(path, session);
  const onSignOut = () => {
    signOut();
    setSession(null);
    navigate('/', true);
  };
  return (
    <div class="shell">
      <Nav session={session} path={path} onSignOut={onSignOut} />
      <main id="main">
        {resolved ? (
          (() => {
            const [route, params] = resolved;
            const View = route.view;
            return <View key={route.path} session={session} params={params} />;
          })()
        ) : (
          <p class="empty">
            No such page. <a {...linkProps('/')}>Back to the sandboxes</a>
          </p>
        )}
      </main>
    </div>
  );
}
