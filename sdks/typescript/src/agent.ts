// sandbox.agent: coding-agent sessions (Claude Code, Codex, opencode and the
// built-in mock) running in a sandbox. A session is one event stream,
// followed over server-sent events from a sequence number: replayed, then
// live, and resumed after the last sequence seen when the connection drops.

import { ConnectionError, TimeoutError, UnavailableError, WarrenError } from './errors.js';
import type { ApiClient, CallOptions, OpenStream } from './http.js';
import { type SseEvent, readSse } from './sse.js';
import { toDate } from './types.js';

/** A coding agent Warren drives. */
export type AgentKind = 'claude' | 'codex' | 'opencode' | 'mock' | (string & {});

/** Lifecycle state of a session. `waiting`: a permission or question awaits an answer. */
export type SessionState = 'starting' | 'running' | 'idle' | 'waiting' | 'ended';

/**
 * What the agent may do without asking: `default` asks for edits and
 * commands, `acceptEdits` allows edits, `plan` changes nothing, `bypass`
 * allows everything.
 */
export type PermissionMode = 'default' | 'acceptEdits' | 'plan' | 'bypass';

/** An answer to a permission request. */
export type PermissionDecision = 'once' | 'always' | 'reject';

/** The types of session events; new ones may be added at any time. */
export type AgentEventType =
  | 'session.started'
  | 'session.ended'
  | 'item.started'
  | 'item.delta'
  | 'item.completed'
  | 'permission.requested'
  | 'permission.resolved'
  | 'question.requested'
  | 'question.resolved'
  | 'usage'
  | 'error'
  | 'agent.unparsed'
  | (string & {});

/** What Warren's driver of an agent supports. */
export interface AgentCapabilities {
  streamingDeltas: boolean;
  toolCalls: boolean;
  permissions: boolean;
  questions: boolean;
  reasoning: boolean;
  usage: boolean;
  resume: boolean;
  transcript: boolean;
  interrupt: boolean;
  mcpServers: boolean;
}

/** An agent and whether it is installed in the sandbox. */
export interface AgentInfo {
  agent: AgentKind;
  installed: boolean;
  /** The installed version, if known. */
  version: string | null;
  capabilities: AgentCapabilities;
}

/** A session as the sandbox describes it. */
export interface SessionInfo {
  /** `ses_…`. */
  id: string;
  agent: AgentKind;
  state: SessionState;
  model: string | null;
  /** The agent's own id of the conversation (pass it as `resume`). */
  nativeSessionId: string | null;
  /** Working directory of the agent. */
  cwd: string;
  permissionMode: PermissionMode;
  createdAt: Date;
  endedAt: Date | null;
  /** Sequence of the newest event. */
  lastSequence: number;
}

/**
 * One event of a session. `data` is the event's payload exactly as the API
 * defines it (snake_case keys; see the `…Data` types), `raw` the agent's
 * native payload when asked for with `includeRaw`.
 */
export interface AgentEvent {
  /** 1, 2, 3, … with no gaps within a session. */
  sequence: number;
  time: Date;
  sessionId: string;
  type: AgentEventType;
  /** `agent` (from the agent's output) or `daemon` (from Warren). */
  source: 'agent' | 'daemon';
  data: Record<string, any>;
  raw?: unknown;
}

/** One part of an item's content. */
export type ItemContent =
  | { type: 'text'; text: string }
  | { type: 'tool_call'; call_id: string; tool: string; input: unknown }
  | { type: 'tool_result'; call_id: string; output: unknown; is_error: boolean }
  | { type: string; [key: string]: unknown };

/** A message, reasoning, tool call, tool result or status of a session. */
export interface Item {
  item_id: string;
  kind: 'message' | 'reasoning' | 'tool_call' | 'tool_result' | 'status' | (string & {});
  role?: 'user' | 'assistant' | 'tool' | (string & {});
  status: string;
  content: ItemContent[];
}

/** `data` of `item.started` and `item.completed`. */
export interface ItemData {
  item: Item;
}
/** `data` of `item.delta`. */
export interface ItemDeltaData {
  item_id: string;
  delta: string;
}
/** `data` of `permission.requested`. */
export interface PermissionRequestedData {
  permission_id: string;
  tool: string;
  input: unknown;
}
/** `data` of `permission.resolved`. */
export interface PermissionResolvedData {
  permission_id: string;
  decision: PermissionDecision;
  reason: string;
}
/** `data` of `question.requested`. */
export interface QuestionRequestedData {
  question_id: string;
  prompt: string;
  options: string[];
}
/** `data` of `question.resolved`. */
export interface QuestionResolvedData {
  question_id: string;
  answers?: string[];
  rejected?: boolean;
  reason: string;
}
/** `data` of `usage`. */
export interface UsageData {
  input_tokens: number;
  output_tokens: number;
  cost_usd?: number;
}
/** `data` of `session.ended`. */
export interface SessionEndedData {
  reason: 'completed' | 'error' | 'killed' | (string & {});
  exit_code?: number;
  message?: string;
}

/** How a session ended: `done` resolves with it. */
export interface SessionEnd {
  /** The session as it was once ended. */
  session: SessionInfo;
  reason: SessionEndedData['reason'];
  /** The agent's exit code, when it exited by itself. */
  exitCode: number | null;
  message: string | null;
}

/** Callbacks of a followed session. */
export interface SessionHandlers {
  /** Every event, in order, exactly once (also across reconnects). */
  onEvent?: (event: AgentEvent) => void | Promise<void>;
}

/** Options of `agent.start`. */
export interface AgentStartOptions extends SessionHandlers, CallOptions {
  /** The agent: `claude`, `codex`, `opencode` or `mock`. */
  agent: AgentKind;
  /** The first prompt; without one the session waits for `sendPrompt`. */
  prompt?: string;
  model?: string;
  systemPrompt?: string;
  /** Tools allowed without asking (`Bash(git:*)`-style patterns where the agent has them). */
  allowedTools?: string[];
  /** Default `default`. */
  permissionMode?: PermissionMode;
  maxTurns?: number;
  /** Working directory (default: the template's workdir). */
  cwd?: string;
  /** Environment of the agent (API keys, say), over the sandbox's. Never logged or returned. */
  env?: Record<string, string>;
  /** MCP servers, by name, in the agent's configuration format. */
  mcpServers?: Record<string, unknown>;
  /** A native session id (from `nativeSessionId` or `uploadTranscript`) to continue. */
  resume?: string;
  /** How long a permission or question waits for an answer before it counts as rejected. */
  requestTimeoutSecs?: number;
}

/** Options of `agent.attach`. */
export interface AgentAttachOptions extends SessionHandlers, CallOptions {
  /** Deliver the events after this sequence (default 0: all of them). */
  after?: number;
  /**
   * Called once, when the events that existed at attach time (up to the
   * session's `lastSequence` then) were delivered; live events follow.
   */
  onScrollbackEnd?: () => void;
}

/** Options of `session.events()`. */
export interface EventsOptions {
  /** Events after this sequence (default 0: all of them). */
  after?: number;
  /** Add each event's native payload as `raw`. */
  includeRaw?: boolean;
  /** Stops the iteration. */
  signal?: AbortSignal;
}

/** Options of `agent.install`. */
export interface InstallOptions extends CallOptions {
  /** Each line of progress (`phase` `started`, `output`, `done` or `error`). */
  onProgress?: (progress: InstallProgress) => void;
}

/** One step of an installation. */
export interface InstallProgress {
  phase: 'started' | 'output' | 'done' | 'error' | (string & {});
  message?: string;
  /** On `done`: the agent as installed. */
  agent?: AgentInfo;
}

/** @internal Wire shape of a session. */
interface WireSession {
  id: string;
  agent: string;
  state: SessionState;
  model: string | null;
  native_session_id: string | null;
  cwd: string;
  permission_mode: string;
  created_at: string;
  ended_at: string | null;
  last_sequence: number;
}

interface WireEvent {
  sequence: number;
  time: string;
  session_id: string;
  type: string;
  source: 'agent' | 'daemon';
  data: Record<string, unknown>;
  raw?: unknown;
}

interface WireAgentInfo {
  agent: string;
  installed: boolean;
  version: string | null;
  capabilities: Record<string, boolean>;
}

const MODE_TO_WIRE: Record<string, string> = {
  default: 'default',
  acceptEdits: 'accept_edits',
  accept_edits: 'accept_edits',
  plan: 'plan',
  bypass: 'bypass',
};
const MODE_FROM_WIRE: Record<string, PermissionMode> = {
  default: 'default',
  accept_edits: 'acceptEdits',
  plan: 'plan',
  bypass: 'bypass',
};

function toSessionInfo(w: WireSession): SessionInfo {
  return {
    id: w.id,
    agent: w.agent,
    state: w.state,
    model: w.model ?? null,
    nativeSessionId: w.native_session_id ?? null,
    cwd: w.cwd,
    permissionMode: MODE_FROM_WIRE[w.permission_mode] ?? (w.permission_mode as PermissionMode),
    createdAt: toDate(w.created_at),
    endedAt: toDate(w.ended_at),
    lastSequence: w.last_sequence,
  };
}

function toAgentEvent(w: WireEvent): AgentEvent {
  const event: AgentEvent = {
    sequence: w.sequence,
    time: toDate(w.time),
    sessionId: w.session_id,
    type: w.type,
    source: w.source,
    data: w.data ?? {},
  };
  if (w.raw !== undefined) event.raw = w.raw;
  return event;
}

function toAgentInfo(w: WireAgentInfo): AgentInfo {
  const c = w.capabilities ?? {};
  return {
    agent: w.agent,
    installed: w.installed,
    version: w.version ?? null,
    capabilities: {
      streamingDeltas: !!c.streaming_deltas,
      toolCalls: !!c.tool_calls,
      permissions: !!c.permissions,
      questions: !!c.questions,
      reasoning: !!c.reasoning,
      usage: !!c.usage,
      resume: !!c.resume,
      transcript: !!c.transcript,
      interrupt: !!c.interrupt,
      mcpServers: !!c.mcp_servers,
    },
  };
}

function startBody(opts: AgentStartOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { agent: opts.agent };
  const set = (key: string, value: unknown) => {
    if (value !== undefined) body[key] = value;
  };
  set('prompt', opts.prompt);
  set('model', opts.model);
  set('system_prompt', opts.systemPrompt);
  set('allowed_tools', opts.allowedTools);
  if (opts.permissionMode !== undefined) {
    body.permission_mode = MODE_TO_WIRE[opts.permissionMode] ?? opts.permissionMode;
  }
  set('max_turns', opts.maxTurns);
  set('cwd', opts.cwd);
  set('env', opts.env);
  set('mcp_servers', opts.mcpServers);
  set('resume', opts.resume);
  set('request_timeout_secs', opts.requestTimeoutSecs);
  return body;
}

/** Reconnects of an event stream in a row before giving up. */
const MAX_RECONNECTS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isRetryable(err: unknown): boolean {
  return err instanceof ConnectionError || err instanceof UnavailableError || err instanceof TimeoutError;
}

/**
 * The events of a session after `after`, replayed then live, until the
 * session has ended and every event was delivered. A broken connection is
 * reopened after the last sequence delivered, so nothing is missed or
 * repeated.
 */
async function* followEvents(
  api: ApiClient,
  path: string,
  after: number,
  signal: AbortSignal,
  includeRaw = false,
): AsyncGenerator<AgentEvent, void> {
  let cursor = after;
  let failures = 0;
  let ended = false;
  for (;;) {
    let stream: OpenStream | undefined;
    try {
      stream = await api.open('GET', `${path}/events`, {
        query: { follow: true, after: cursor, include_raw: includeRaw || undefined },
        headers: { accept: 'text/event-stream', 'last-event-id': String(cursor) },
        timeoutMs: 0,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      if (!isRetryable(err) || ++failures > MAX_RECONNECTS) throw err;
      await sleep(250 * 2 ** failures);
      continue;
    }
    const events = readSse(stream.response.body!);
    let clean = false;
    try {
      for (;;) {
        let next: IteratorResult<SseEvent>;
        try {
          next = await events.next();
        } catch (err) {
          if (signal.aborted) throw signal.reason ?? err;
          break; // The connection broke: reconnect after the cursor.
        }
        if (next.done) {
          clean = true;
          break;
        }
        if (!next.value.data) continue;
        const event = toAgentEvent(JSON.parse(next.value.data) as WireEvent);
        if (event.sequence <= cursor) continue;
        cursor = event.sequence;
        failures = 0;
        if (event.type === 'session.ended') ended = true;
        yield event;
      }
    } finally {
      stream.close();
      await events.return(undefined).catch(() => undefined);
    }
    if (signal.aborted) throw signal.reason;
    // The server ends the stream once the session has ended and every event
    // was sent; any other end is a dropped connection.
    if (clean && ended) return;
    if (clean) {
      // Attached after the end (`after` past `session.ended`), say.
      const state = await api
        .json<WireSession>('GET', path, { signal })
        .then((s) => (s.state === 'ended' && s.last_sequence <= cursor ? 'over' : 'live'))
        .catch(() => 'unknown');
      if (state === 'over') return;
    }
    if (++failures > MAX_RECONNECTS) {
      throw new ConnectionError({ code: 'connection_error', detail: `event stream of ${path} kept breaking` });
    }
    await sleep(250 * 2 ** failures);
  }
}

/** The API path of a session in a sandbox. */
function sessionPath(sandboxId: string, id: string): string {
  return `/v1/sandboxes/${encodeURIComponent(sandboxId)}/sessions/${encodeURIComponent(id)}`;
}

/**
 * A coding-agent session. Its events reach `onEvent` as they come (from the
 * start for `agent.start`, from `after` for `agent.attach`), and `done`
 * resolves when the session ends. Answer its permission requests and
 * questions with `respond`, send more prompts with `sendPrompt`.
 */
export class AgentSession {
  /** `ses_…`. */
  readonly sessionId: string;
  /** Resolves with how the session ended once it ended and every event was delivered. */
  readonly done: Promise<SessionEnd>;

  #info: SessionInfo;
  readonly #api: ApiClient;
  readonly #path: string;
  readonly #stop = new AbortController();

  /** @internal Use `sandbox.agent.start` or `sandbox.agent.attach`. */
  constructor(
    api: ApiClient,
    sandboxId: string,
    info: SessionInfo,
    handlers: SessionHandlers & { onScrollbackEnd?: () => void },
    after = 0,
  ) {
    this.#api = api;
    this.#info = info;
    this.sessionId = info.id;
    this.#path = sessionPath(sandboxId, info.id);
    this.done = this.#follow(handlers, after);
    // `done` is handed out as is; nobody awaiting it is not an error.
    this.done.catch(() => undefined);
  }

  /** The session as last fetched (by start, attach, `refresh`, `sendPrompt` or `kill`). */
  get info(): SessionInfo {
    return this.#info;
  }

  /** Same as `sessionId`. */
  get id(): string {
    return this.sessionId;
  }

  async #follow(handlers: SessionHandlers & { onScrollbackEnd?: () => void }, after: number): Promise<SessionEnd> {
    const scrollbackEnd = this.#info.lastSequence;
    let scrollbackDone = !handlers.onScrollbackEnd;
    const maybeScrollbackEnd = (sequence: number) => {
      if (!scrollbackDone && sequence >= scrollbackEnd) {
        scrollbackDone = true;
        handlers.onScrollbackEnd?.();
      }
    };
    // Nothing to replay: the scrollback is over before the first event.
    maybeScrollbackEnd(after);
    let ended: SessionEndedData | undefined;
    const events = followEvents(this.#api, this.#path, after, this.#stop.signal);
    try {
      for await (const event of events) {
        if (event.type === 'session.ended') ended = event.data as SessionEndedData;
        await handlers.onEvent?.(event);
        maybeScrollbackEnd(event.sequence);
      }
    } finally {
      await events.return(undefined).catch(() => undefined);
    }
    const session = await this.refresh().catch(() => ({ ...this.#info, state: 'ended' as const }));
    this.#info = session;
    return {
      session,
      reason: ended?.reason ?? 'completed',
      exitCode: ended?.exit_code ?? null,
      message: ended?.message ?? null,
    };
  }

  /** The session as the sandbox describes it now. */
  async refresh(opts: CallOptions = {}): Promise<SessionInfo> {
    const wire = await this.#api.json<WireSession>('GET', this.#path, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    this.#info = toSessionInfo(wire);
    return this.#info;
  }

  /** Sends a follow-up prompt; it runs after the current turn. */
  async sendPrompt(text: string, opts: CallOptions & { env?: Record<string, string> } = {}): Promise<SessionInfo> {
    const json: Record<string, unknown> = { text };
    if (opts.env !== undefined) json.env = opts.env;
    const wire = await this.#api.json<WireSession>('POST', `${this.#path}/messages`, {
      json,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    this.#info = toSessionInfo(wire);
    return this.#info;
  }

  /** Stops the current turn; the session stays and takes the next prompt. */
  async interrupt(opts: CallOptions = {}): Promise<void> {
    await this.#api.json('POST', `${this.#path}/interrupt`, { timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
  }

  /**
   * Answers a pending request by its id: a permission (`perm_…`) with
   * `once`, `always` or `reject`; a question (`q_…`) with its answers, or
   * `reject`.
   */
  async respond(
    requestId: string,
    answer: PermissionDecision | readonly string[],
    opts: CallOptions = {},
  ): Promise<void> {
    let route: string;
    let json: Record<string, unknown>;
    if (requestId.startsWith('perm_')) {
      if (typeof answer !== 'string') throw new TypeError('answer a permission with once, always or reject');
      route = `permissions/${encodeURIComponent(requestId)}`;
      json = { decision: answer };
    } else if (requestId.startsWith('q_')) {
      route = `questions/${encodeURIComponent(requestId)}`;
      if (answer === 'reject') json = { reject: true };
      else if (typeof answer === 'string') throw new TypeError('answer a question with a list of answers, or reject');
      else json = { answers: [...answer] };
    } else {
      throw new TypeError(`${requestId} is neither a permission (perm_…) nor a question (q_…)`);
    }
    await this.#api.json('POST', `${this.#path}/${route}`, { json, timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
  }

  /** Kills the agent and ends the session (reason `killed`); its events and transcript stay. */
  async kill(opts: CallOptions = {}): Promise<SessionInfo> {
    const wire = await this.#api.json<WireSession>('DELETE', this.#path, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    this.#info = toSessionInfo(wire);
    return this.#info;
  }

  /**
   * Stops following the session without touching it: no more `onEvent`
   * calls, and `done` rejects. Attach again with `sandbox.agent.attach`.
   */
  close(): void {
    this.#stop.abort(
      new ConnectionError({ code: 'connection_error', detail: `stopped following ${this.sessionId} by close()` }),
    );
  }

  /**
   * The session's events after `after` (default: all), replayed then live,
   * until the session ends. Each call opens its own stream.
   */
  async *events(opts: EventsOptions = {}): AsyncGenerator<AgentEvent, void> {
    const stop = new AbortController();
    const onStop = () => stop.abort(this.#stop.signal.reason);
    const onSignal = () => stop.abort(opts.signal?.reason);
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    opts.signal?.addEventListener('abort', onSignal, { once: true });
    try {
      yield* followEvents(this.#api, this.#path, opts.after ?? 0, stop.signal, opts.includeRaw);
    } finally {
      this.#stop.signal.removeEventListener('abort', onStop);
      opts.signal?.removeEventListener('abort', onSignal);
      stop.abort();
    }
  }

  /** `for await (const event of session)`: the same as `events()`. */
  [Symbol.asyncIterator](): AsyncIterator<AgentEvent> {
    return this.events();
  }

  /** The agent's native session file, gzip-compressed (upload it elsewhere with `uploadTranscript`). */
  transcript(opts: CallOptions = {}): Promise<Uint8Array> {
    return this.#api.bytes('GET', `${this.#path}/transcript`, { timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
  }
}

/** Coding-agent sessions in one sandbox: `sandbox.agent`. */
export class Agent {
  /** @internal Use `sandbox.agent`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  private path(rest: string): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}${rest}`;
  }

  /** The agents Warren knows, whether each is installed here, and what each supports. */
  async agents(opts: CallOptions = {}): Promise<AgentInfo[]> {
    const body = await this.api.json<{ items: WireAgentInfo[] }>('GET', this.path('/agents'), {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return body.items.map(toAgentInfo);
  }

  /**
   * Installs an agent in the sandbox (from npm; the sandbox needs `npm` and
   * network access). Resolves with the installed agent; rejects with code
   * `install_failed` when the installation fails.
   */
  async install(agent: AgentKind, opts: InstallOptions = {}): Promise<AgentInfo> {
    const stream = await this.api.open('POST', this.path(`/agents/${encodeURIComponent(agent)}/install`), {
      headers: { accept: 'text/event-stream' },
      timeoutMs: opts.requestTimeoutMs ?? 0,
      signal: opts.signal,
    });
    const events = readSse(stream.response.body!);
    try {
      for await (const { event, data } of events) {
        if (event !== 'install' || !data) continue;
        const wire = JSON.parse(data) as { phase: string; message?: string; agent?: WireAgentInfo };
        const progress: InstallProgress = { phase: wire.phase };
        if (wire.message !== undefined) progress.message = wire.message;
        if (wire.agent) progress.agent = toAgentInfo(wire.agent);
        opts.onProgress?.(progress);
        if (wire.phase === 'error') {
          throw new WarrenError({ code: 'install_failed', detail: wire.message ?? `installing ${agent} failed` });
        }
        if (wire.phase === 'done') {
          return progress.agent ?? (await this.agents(opts)).find((a) => a.agent === agent)!;
        }
      }
    } finally {
      stream.close();
    }
    throw new ConnectionError({ code: 'connection_error', detail: `the installation of ${agent} ended without a result` });
  }

  /** Starts a session; its events reach `onEvent` from the first one. */
  async start(opts: AgentStartOptions): Promise<AgentSession> {
    const wire = await this.api.json<WireSession>('POST', this.path('/sessions'), {
      json: startBody(opts),
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return new AgentSession(this.api, this.sandboxId, toSessionInfo(wire), opts);
  }

  /** Follows a session started earlier, replaying its events after `after` (default: all of them). */
  async attach(sessionId: string, opts: AgentAttachOptions = {}): Promise<AgentSession> {
    const info = await this.get(sessionId, opts);
    return new AgentSession(this.api, this.sandboxId, info, opts, opts.after ?? 0);
  }

  /** The sessions on the sandbox's disk, oldest first. */
  async list(opts: CallOptions = {}): Promise<SessionInfo[]> {
    const body = await this.api.json<{ items: WireSession[] }>('GET', this.path('/sessions'), {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return body.items.map(toSessionInfo);
  }

  /** One session. */
  async get(sessionId: string, opts: CallOptions = {}): Promise<SessionInfo> {
    const wire = await this.api.json<WireSession>('GET', sessionPath(this.sandboxId, sessionId), {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toSessionInfo(wire);
  }

  /**
   * Stores a gzip transcript (from `session.transcript()`, possibly of
   * another sandbox) and resolves with the native session id to pass as
   * `resume`.
   */
  async uploadTranscript(
    agent: AgentKind,
    transcript: Uint8Array,
    opts: CallOptions & { cwd?: string } = {},
  ): Promise<string> {
    const body = await this.api.json<{ native_session_id: string }>('POST', this.path('/transcripts'), {
      query: { agent, cwd: opts.cwd },
      body: transcript,
      headers: { 'content-type': 'application/gzip' },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return body.native_session_id;
  }
}
