// The "Sessions" tab of a sandbox's page: its coding-agent sessions, one
// session's conversation, and a button that starts one with the built-in
// mock agent.

import { useState } from 'preact/hooks';
import type { SandboxTabProps } from '../../routes';
import { Button, ErrorBox, Loading, StateBadge, formatTime } from '../../components/ui';
import { useAction, useLoad } from '../../hooks';
import { ConversationView } from './conversation';
import './sessions.css';
import type { AgentSession } from './model';

/** The mock's first prompt: it answers, then asks to write a file. */
const MOCK_PROMPT = 'Hello from the Warren console';

export function SessionsTab({ session, sandbox }: SandboxTabProps) {
  const api = session.api;
  const base = `/v1/sandboxes/${sandbox.id}/sessions`;
  const list = useLoad((signal) => api.get<{ items: AgentSession[] }>(base, undefined, signal), [base]);
  const [selected, setSelected] = useState<string>();
  const [prompt, setPrompt] = useState(MOCK_PROMPT);
  const [run, busy, error] = useAction();
  const items = list.data?.items ?? [];
  // The newest session is shown until another is picked.
  const current = items.find((s) => s.id === selected) ?? (selected === undefined ? items[items.length - 1] : undefined);

  const start = () =>
    run(async () => {
      const created = await api.post<AgentSession>(base, { agent: 'mock', prompt: prompt.trim() || MOCK_PROMPT });
      list.reload();
      setSelected(created.id);
    });

  return (
    <div class="sessions">
      <aside class="sessions-side card">
        <div class="toolbar">
          <h2>Agent sessions</h2>
        </div>
        <form
          class="sessions-start"
          onSubmit={(e) => {
            e.preventDefault();
            void start();
          }}
        >
          <label class="field">
            <span class="field-label">First prompt</span>
            <input value={prompt} maxLength={10_000} onInput={(e) => setPrompt(e.currentTarget.value)} />
            <span class="field-hint">The mock asks before it writes a file; “question” in the prompt makes it ask a question too.</span>
          </label>
          <Button kind="primary" type="submit" busy={busy}>
            Start a mock session
          </Button>
        </form>
        <ErrorBox error={error} />
        <ErrorBox error={list.error} />
        <Loading loading={list.loading && !list.data} label="Loading sessions…" />
        {list.data && items.length === 0 && <p class="empty">No sessions yet.</p>}
        <ul class="sessions-list">
          {items
            .slice()
            .reverse()
            .slice(0, 200)
            .map((s) => (
              <li key={s.id}>
                <button
                  type="button"
                  class={`sessions-item ${s.id === current?.id ? 'active' : ''}`}
                  aria-current={s.id === current?.id ? 'true' : undefined}
                  onClick={() => setSelected(s.id)}
                >
                  <span class="mono">{s.id}</span>
                  <StateBadge state={s.state} />
                  <span class="muted">
                    {s.agent} · {formatTime(s.created_at)}
                  </span>
                </button>
              </li>
            ))}
        </ul>
      </aside>
      <div class="sessions-main">
        {current ? (
          <ConversationView key={current.id} api={api} sandboxId={sandbox.id} initial={current} onChanged={list.reload} />
        ) : (
          <p class="empty">Pick a session, or start one with the mock agent.</p>
        )}
      </div>
    </div>
  );
}
