// Sign-in with an API key (tenant or admin). The key is kept in
// sessionStorage for this tab only.

import { useState } from 'preact/hooks';
import { signIn, type Session } from '../session';
import { Button, ErrorBox, Field } from '../components/ui';
import { useAction } from '../hooks';

export function Login({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [key, setKey] = useState('');
  const [run, busy, error] = useAction();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => onSignedIn(await signIn(key)));
  };
  return (
    <main class="login">
      <form class="card" onSubmit={submit}>
        <h1>Warren</h1>
        <p>Sign in with an API key: a tenant key shows its sandboxes, the admin key shows everything.</p>
        <Field label="API key" hint="Kept for this browser tab only.">
          <input
            name="key"
            type="password"
            autocomplete="off"
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </Field>
        <ErrorBox error={error} />
        <Button type="submit" kind="primary" busy={busy}>
          Sign in
        </Button>
      </form>
    </main>
  );
}
