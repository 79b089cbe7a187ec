// One session's conversation, rendered as it streams: the events are read
// with fetch streaming (replay after the last sequence seen, then live) and
// folded by model.ts. Tool calls and results are folded (click to expand),
// permission and question requests are buttons that answer them.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../../api';
import { Button, ErrorBox, Loading, StateBadge } from '../../components/ui';
import { useAction } from '../../hooks';
import { Conversation, type AgentSession, type Entry, type SessionEvent } from './model';

/** Characters shown of a long entry before "Show more". */
const SHOWN = 2_000;

/** Text cut to SHOWN characters until "Show more" is pressed. */
function LongText({ text, truncated, class: cls = '' }: { text: string; truncated?: boolean; class?: string }) {
  const [all, setAll] = useState(false);
  const long = text.length > SHOWN;
  return (
    <div class={`session-text ${cls}`}>
      {all || !long ? text : `${text.slice(0, SHOWN)}…`}
      {long && (
        <button type="button" class="btn btn-plain show-more" onClick={() => setAll(!all)}>
          {all ? 'Show less' : `Show more (${text.length.toLocaleString()} characters)`}
        </button>
      )}
      {truncated && all && <span class="muted"> [cut: too long]</span>}
    </div>
  );
}

function Folded({ summary, children, error = false }: { summary: string; children: ComponentChildren; error?: boolean }) {
  return (
    <details class={`session-fold ${error ? 'is-error' : ''}`}>
      <summary>{summary}</summary>
      {children}
    </details>
  );
}

function EntryView({ entry, answer, busy }: { entry: Entry; answer: (path: string, body: unknown) => void; busy: boolean }) {
  switch (entry.kind) {
    case 'message':
      return (
        <div class={`session-msg role-${entry.role === 'user' ? 'user' : 'assistant'}`} data-role={entry.role}>
          <span class="session-who">{entry.role === 'user' ? 'You' : 'Agent'}</span>
          <LongText text={entry.text} truncated={entry.truncated} />
          {!entry.done && <span class="muted session-typing">…</span>}
        </div>
      );
    case 'reasoning':
      return (
        <Folded summary="Reasoning">
          <LongText text={entry.text} truncated={entry.truncated} class="muted" />
        </Folded>
      );
    case 'tool_call':
      return (
        <Folded summary={`Tool call: ${entry.tool}`}>
          <LongText text={entry.input} truncated={entry.truncated} class="mono" />
        </Folded>
      );
    case 'tool_result':
      return (
        <Folded summary={entry.isError ? 'Tool result (error)' : 'Tool result'} error={entry.isError}>
          <LongText text={entry.output} truncated={entry.truncated} class="mono" />
        </Folded>
      );
    case 'status':
      return <p class="session-status muted">— {entry.text} —</p>;
    case 'usage':
      return <p class="session-status muted">Tokens: {entry.text}</p>;
    case 'permission': {
      const pid = entry.id.slice('perm-'.length);
      return (
        <div class="session-request card" role="group" aria-label={`Permission request for ${entry.tool}`}>
          <p>
            The agent asks to use <strong class="mono">{entry.tool}</strong>
          </p>
          <LongText text={entry.input} truncated={entry.truncated} class="mono" />
          {entry.resolved ? (
            <p class="muted">Answered: {entry.resolved}</p>
          ) : (
            <div class="actions">
              <Button kind="primary" busy={busy} onClick={() => answer(`permissions/${pid}`, { decision: 'once' })}>
                Allow once
              </Button>
              <Button busy={busy} onClick={() => answer(`permissions/${pid}`, { decision: 'always' })}>
                Always allow {entry.tool}
              </Button>
              <Button kind="danger" busy={busy} onClick={() => answer(`permissions/${pid}`, { decision: 'reject' })}>
                Reject
              </Button>
            </div>
          )}
        </div>
      );
    }
    case 'question': {
      const qid = entry.id.slice('q-'.length);
      return (
        <div class="session-request card" role="group" aria-label="Question from the agent">
          <LongText text={entry.prompt} />
          {entry.resolved ? (
            <p class="muted">Answered: {entry.resolved}</p>
          ) : (
            <div class="actions">
              {entry.options.map((option) => (
                <Button key={option} kind="primary" busy={busy} onClick={() => answer(`questions/${qid}`, { answers: [option] })}>
                  {option}
                </Button>
              ))}
              <Button kind="danger" busy={busy} onClick={() => answer(`questions/${qid}`, { reject: true })}>
                Decline
              </Button>
            </div>
          )}
        </div>
      );
    }
    case 'error':
      return (
        <div class="error session-error">
          <LongText text={entry.text} truncated={entry.truncated} />
        </div>
      );
    case 'ended':
      return <LongText text={entry.text} truncated={entry.truncated} class="session-status muted" />;
    case 'unparsed':
      return (
        <Folded summary="Unparsed agent output">
          <LongText text={entry.text} truncated={entry.truncated} class="mono" />
        </Folded>
      );
  }
}

/** Streams `after` onwards into `conv`, reconnecting after drops, until the session ends or `signal` aborts. */
async function follow(api: Api, path: string, conv: Conversation, changed: () => void, onError: (e?: Error) => void, signal: AbortSignal) {
  let delay = 500;
  while (!signal.aborted && !conv.ended) {
    try {
      for await (const sse of await api.sse(`${path}/events`, { follow: true, after: conv.lastSequence }, signal)) {
        let event: SessionEvent;
        try {
          event = JSON.parse(sse.data) as SessionEvent;
        } catch {
          continue;
        }
        conv.apply(event);
        changed();
        onError(undefined);
        delay = 500;
      }
    } catch (err) {
      if (signal.aborted) return;
      onError(err as Error);
    }
    if (signal.aborted || conv.ended) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

/** The conversation of session `id` in sandbox `sandboxId`. */
export function ConversationView({ api, sandboxId, initial, onChanged }: { api: Api; sandboxId: string; initial: AgentSession; onChanged: () => void }) {
  const path = `/v1/sandboxes/${sandboxId}/sessions/${initial.id}`;
  const conv = useRef(new Conversation());
  const [, setVersion] = useState(0);
  const [session, setSession] = useState<AgentSession>(initial);
  const [streamError, setStreamError] = useState<Error>();
  const [connected, setConnected] = useState(false);
  const [text, setText] = useState('');
  const [run, busy, actionError] = useAction();
  const bottom = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    const abort = new AbortController();
    let frame = 0;
    let refresh: ReturnType<typeof setTimeout> | undefined;
    const changed = () => {
      setConnected(true);
      if (!frame) frame = requestAnimationFrame(() => {
        frame = 0;
        setVersion((v) => v + 1);
      });
      // The session's state follows its events: read it again shortly.
      clearTimeout(refresh);
      refresh = setTimeout(() => {
        api.get<AgentSession>(path, undefined, abort.signal).then((s) => {
          setSession(s);
          onChanged();
        }, () => undefined);
      }, 300);
    };
    void follow(api, path, conv.current, changed, setStreamError, abort.signal).then(() => {
      if (!abort.signal.aborted) {
        setConnected(true);
        api.get<AgentSession>(path, undefined, abort.signal).then((s) => {
          setSession(s);
          onChanged();
        }, () => undefined);
      }
    });
    return () => {
      abort.abort();
      cancelAnimationFrame(frame);
      clearTimeout(refresh);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path]);

  useEffect(() => {
    if (stick.current) bottom.current?.scrollIntoView({ block: 'nearest' });
  });

  const answer = (sub: string, body: unknown) => run(() => api.post(`${path}/${sub}`, body));
  const send = (e: Event) => {
    e.preventDefault();
    const message = text.trim();
    if (!message) return;
    void run(async () => {
      await api.call('POST', `${path}/messages`, { json: { text: message } });
      setText('');
    });
  };
  const c = conv.current;
  const ended = c.ended || session.state === 'ended';
  const state = ended ? 'ended' : c.pending().length ? 'waiting' : session.state;
  return (
    <section class="session-view" aria-label={`Session ${initial.id}`}>
      <div class="page-head">
        <h2 class="mono">{initial.id}</h2>
        <StateBadge state={state} />
        <span class="muted">
          {initial.agent}
          {session.model ? ` · ${session.model}` : ''} · {session.permission_mode}
        </span>
        <span class="spacer" />
        {!ended && (
          <div class="actions compact">
            <Button busy={busy} disabled={state !== 'running' && state !== 'waiting'} onClick={() => run(() => api.post(`${path}/interrupt`))}>
              Interrupt
            </Button>
            <Button kind="danger" busy={busy} onClick={() => confirm('End this session? Its agent is killed.') && run(() => api.del(path))}>
              End
            </Button>
          </div>
        )}
      </div>
      <div
        class="session-log"
        role="log"
        aria-live="polite"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {c.dropped > 0 && <p class="muted">{c.dropped} earlier items are not shown.</p>}
        <Loading loading={!connected && !streamError} label="Loading the conversation…" />
        {c.entries.map((entry) => (
          <EntryView key={entry.id} entry={entry} answer={answer} busy={busy} />
        ))}
        <div ref={bottom} />
      </div>
      {streamError && <ErrorBox error={new Error(`The event stream dropped (${streamError.message}); reconnecting…`)} />}
      <ErrorBox error={actionError} />
      {!ended && (
        <form class="session-send" onSubmit={send}>
          <label class="field">
            <span class="field-label">Message</span>
            <textarea
              rows={3}
              value={text}
              maxLength={100_000}
              placeholder="The next message to the agent (Ctrl+Enter sends)"
              onInput={(e) => setText(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e);
              }}
            />
          </label>
          <Button kind="primary" busy={busy} type="submit" disabled={!text.trim()}>
            Send
          </Button>
        </form>
      )}
    </section>
  );
}
