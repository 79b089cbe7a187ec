// A coding-agent session's events folded into what the conversation view
// shows. An agent's output is attacker-controlled: everything here is
// bounded (entries kept, characters per entry) and rendered as text only.

/** A session object (`GET …/sessions/{id}`). */
export interface AgentSession {
  id: string;
  agent: string;
  state: 'starting' | 'running' | 'waiting' | 'idle' | 'ended';
  cwd: string;
  permission_mode: string;
  model?: string | null;
  created_at: string;
  ended_at?: string | null;
  last_sequence: number;
}

/** One event of a session's stream. */
export interface SessionEvent {
  sequence: number;
  time: string;
  session_id: string;
  type: string;
  source: string;
  data: Record<string, unknown>;
}

/** Most entries kept; older ones are dropped (and counted). */
export const MAX_ENTRIES = 1000;
/** Most characters kept per entry. */
export const MAX_TEXT = 100_000;

/** One thing shown in the conversation. */
export type Entry =
  | { kind: 'message'; id: string; role: string; text: string; done: boolean; truncated: boolean }
  | { kind: 'reasoning'; id: string; text: string; done: boolean; truncated: boolean }
  | { kind: 'tool_call'; id: string; tool: string; input: string; truncated: boolean }
  | { kind: 'tool_result'; id: string; output: string; isError: boolean; truncated: boolean }
  | { kind: 'status'; id: string; text: string }
  | { kind: 'permission'; id: string; tool: string; input: string; truncated: boolean; resolved?: string }
  | { kind: 'question'; id: string; prompt: string; options: string[]; resolved?: string }
  | { kind: 'usage'; id: string; text: string }
  | { kind: 'error'; id: string; text: string; truncated: boolean }
  | { kind: 'ended'; id: string; text: string; truncated: boolean }
  | { kind: 'unparsed'; id: string; text: string; truncated: boolean };

/** A value cut to `max` characters, and whether it was cut. */
export function bounded(text: string, max = MAX_TEXT): [string, boolean] {
  return text.length > max ? [text.slice(0, max), true] : [text, false];
}

/** Any JSON value as display text (strings as they are). */
export function show(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, null, 2) ?? '';
  } catch {
    return String(value);
  }
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

interface Part {
  type?: string;
  text?: string;
  tool?: string;
  input?: unknown;
  output?: unknown;
  is_error?: boolean;
}

interface Item {
  item_id?: string;
  kind?: string;
  role?: string;
  status?: string;
  content?: Part[];
}

function partsText(item: Item): string {
  return (Array.isArray(item.content) ? item.content : [])
    .map((p) => (p && p.type === 'text' ? str(p.text) : ''))
    .join('');
}

/** The folded conversation; `apply` mutates it, `version` counts changes. */
export class Conversation {
  entries: Entry[] = [];
  /** Entries dropped from the front to stay under MAX_ENTRIES. */
  dropped = 0;
  /** The sequence of the last event applied (to resume the stream after it). */
  lastSequence = 0;
  ended = false;
  private index = new Map<string, Entry>();

  private push(entry: Entry): void {
    this.entries.push(entry);
    this.index.set(entry.id, entry);
    if (this.entries.length > MAX_ENTRIES) {
      const gone = this.entries.splice(0, this.entries.length - MAX_ENTRIES);
      this.dropped += gone.length;
      for (const e of gone) if (this.index.get(e.id) === e) this.index.delete(e.id);
    }
  }

  /** Pending permission and question requests. */
  pending(): Entry[] {
    return this.entries.filter((e) => (e.kind === 'permission' || e.kind === 'question') && !e.resolved);
  }

  /** Folds one event in; events at or before `lastSequence` are skipped. */
  apply(event: SessionEvent): void {
    if (event.sequence <= this.lastSequence) return;
    this.lastSequence = event.sequence;
    const data = event.data ?? {};
    const seqId = `seq-${event.sequence}`;
    switch (event.type) {
      case 'item.started':
      case 'item.completed':
        this.item((data.item ?? {}) as Item, event.type === 'item.completed', seqId);
        break;
      case 'item.delta': {
        const entry = this.index.get(`item-${str(data.item_id)}`);
        if (entry && (entry.kind === 'message' || entry.kind === 'reasoning') && !entry.truncated) {
          [entry.text, entry.truncated] = bounded(entry.text + str(data.delta));
        }
        break;
      }
      case 'permission.requested': {
        const [input, truncated] = bounded(show(data.input), 20_000);
        this.push({ kind: 'permission', id: `perm-${str(data.permission_id)}`, tool: str(data.tool), input, truncated });
        break;
      }
      case 'permission.resolved': {
        const entry = this.index.get(`perm-${str(data.permission_id)}`);
        if (entry && entry.kind === 'permission') entry.resolved = `${str(data.decision)} (${str(data.reason)})`;
        break;
      }
      case 'question.requested': {
        const options = Array.isArray(data.options) ? data.options.slice(0, 20).map((o) => bounded(show(o), 200)[0]) : [];
        this.push({ kind: 'question', id: `q-${str(data.question_id)}`, prompt: bounded(str(data.prompt), 5_000)[0], options });
        break;
      }
      case 'question.resolved': {
        const entry = this.index.get(`q-${str(data.question_id)}`);
        if (entry && entry.kind === 'question') {
          const answers = Array.isArray(data.answers) ? data.answers.map(show).join(', ') : 'rejected';
          entry.resolved = `${bounded(answers, 500)[0]} (${str(data.reason)})`;
        }
        break;
      }
      case 'usage': {
        const cost = typeof data.cost_usd === 'number' ? `, $${data.cost_usd.toFixed(4)}` : '';
        this.push({ kind: 'usage', id: seqId, text: `${show(data.input_tokens)} in, ${show(data.output_tokens)} out${cost}` });
        break;
      }
      case 'error': {
        const [text, truncated] = bounded(show(data.message ?? data), 20_000);
        this.push({ kind: 'error', id: seqId, text, truncated });
        break;
      }
      case 'session.ended': {
        this.ended = true;
        const code = data.exit_code === undefined || data.exit_code === null ? '' : `, exit code ${show(data.exit_code)}`;
        const message = data.message ? `\n${show(data.message)}` : '';
        const [text, truncated] = bounded(`Session ended: ${str(data.reason)}${code}${message}`, 20_000);
        this.push({ kind: 'ended', id: seqId, text, truncated });
        break;
      }
      case 'agent.unparsed': {
        const [text, truncated] = bounded(show(data.raw), 20_000);
        this.push({ kind: 'unparsed', id: seqId, text, truncated });
        break;
      }
      default:
        break;
    }
  }

  private item(item: Item, completed: boolean, seqId: string): void {
    const id = item.item_id ? `item-${item.item_id}` : seqId;
    const existing = this.index.get(id);
    const parts = Array.isArray(item.content) ? item.content : [];
    switch (item.kind) {
      case 'message':
      case 'reasoning': {
        const text = completed ? partsText(item) : '';
        if (existing && (existing.kind === 'message' || existing.kind === 'reasoning')) {
          if (completed) {
            [existing.text, existing.truncated] = bounded(text || existing.text);
            existing.done = true;
          }
          return;
        }
        const [t, truncated] = bounded(text);
        if (item.kind === 'message') {
          this.push({ kind: 'message', id, role: str(item.role) || 'assistant', text: t, done: completed, truncated });
        } else {
          this.push({ kind: 'reasoning', id, text: t, done: completed, truncated });
        }
        return;
      }
      case 'tool_call': {
        if (!completed && existing) return;
        const call = parts.find((p) => p && p.type === 'tool_call') ?? {};
        const [input, truncated] = bounded(show(call.input), 20_000);
        const entry: Entry = { kind: 'tool_call', id, tool: str(call.tool) || 'tool', input, truncated };
        this.replace(existing, entry);
        return;
      }
      case 'tool_result': {
        if (!completed && existing) return;
        const result = parts.find((p) => p && p.type === 'tool_result') ?? {};
        const [output, truncated] = bounded(show(result.output));
        const entry: Entry = { kind: 'tool_result', id, output, isError: result.is_error === true, truncated };
        this.replace(existing, entry);
        return;
      }
      case 'status':
        if (completed) this.replace(existing, { kind: 'status', id, text: bounded(partsText(item) || str(item.status), 500)[0] });
        return;
      default:
        return;
    }
  }

  private replace(existing: Entry | undefined, entry: Entry): void {
    if (existing) {
      const at = this.entries.indexOf(existing);
      if (at >= 0) {
        this.entries[at] = entry;
        this.index.set(entry.id, entry);
        return;
      }
    }
    this.push(entry);
  }
}
