// The Sandbox class: create, find and manage sandboxes, and reach into one
// through exec, files, pty, checkpoints and agent sessions.

import { Agent } from './agent.js';
import { Checkpoints } from './checkpoints.js';
import { Desktop } from './desktop.js';
import { type ConnectionOptions, resolveConfig } from './config.js';
import { NotFoundError } from './errors.js';
import { type SandboxEvents, type SandboxEventsOptions, openEvents } from './events.js';
import { Exec } from './exec.js';
import { Files } from './files.js';
import { ApiClient, type CallOptions, type Query } from './http.js';
import { Pty } from './pty.js';
import {
  type NetworkPolicy,
  type SandboxInfo,
  type SandboxResources,
  type SandboxState,
  type WireSandbox,
  toSandboxInfo,
} from './types.js';

/** How long creating a sandbox may take by default: the first one on a fresh server builds the base template. */
export const CREATE_TIMEOUT_MS = 15 * 60_000;

/** Options of `Sandbox.create`: every field is optional. */
export interface SandboxOptions extends ConnectionOptions {
  /** Template name (default `base`: Debian bookworm). */
  template?: string;
  /**
   * Idle timeout in seconds: with no API activity for this long the sandbox
   * is stopped (server default 300; 0 disables it).
   */
  timeoutSecs?: number;
  /** The idle timeout in milliseconds (rounded up to seconds); give this or `timeoutSecs`. */
  timeoutMs?: number;
  /** Lifetime in seconds: destroyed this long after creation (plus extensions). Default: until killed. */
  ttlSecs?: number;
  /** The lifetime in milliseconds (rounded up to seconds); give this or `ttlSecs`. */
  ttlMs?: number;
  /** Default environment of every process in the sandbox. */
  envs?: Record<string, string>;
  /** Free-form key/value pairs, filterable in `Sandbox.list`. */
  metadata?: Record<string, string>;
  /** Labels, filterable in `Sandbox.list`. */
  labels?: Record<string, string>;
  /** CPU, memory and process limits (absent fields take the server's defaults). */
  resources?: Partial<SandboxResources>;
  /** Outbound network policy (default: egress denied). */
  network?: Partial<NetworkPolicy>;
  /** Take a checkpoint after every `exec.run` (its id comes back as `checkpoint`). */
  autoCheckpoint?: boolean;
  /** How many automatic checkpoints to keep, newest first (1 to 10000; server default 100). */
  autoCheckpointKeep?: number;
  /**
   * While hibernated, a call that needs the sandbox (exec, files, …) wakes
   * it first instead of failing with 409; the idle timeout hibernates it
   * instead of stopping it.
   */
  autoWake?: boolean;
  /** Start from this checkpoint's disk instead of the template's (its patches run first). */
  fromCheckpoint?: string;
  /** Cancels the creation request. */
  signal?: AbortSignal;
}

/** Filters and paging of `Sandbox.list`. */
export interface SandboxListOptions extends ConnectionOptions {
  /** Only sandboxes in this state. */
  state?: SandboxState;
  /** Only sandboxes with all these labels. */
  labels?: Record<string, string>;
  /** Only sandboxes with all these metadata values. */
  metadata?: Record<string, string>;
  /** Only this tenant's sandboxes (admin key). */
  tenant?: string;
  /** Sandboxes per page, 1 to 1000 (server default 100). */
  limit?: number;
  /** Start after this cursor (`nextCursor` of an earlier page). */
  cursor?: string;
  /** Cancels the page requests. */
  signal?: AbortSignal;
}

/** Options of `sandbox.update`. */
export interface SandboxUpdate extends CallOptions {
  /** New metadata (replaces all of it). */
  metadata?: Record<string, string>;
  /** New labels (replace all of them). */
  labels?: Record<string, string>;
  /** New idle timeout in seconds (0 disables it). */
  timeoutSecs?: number;
  /** New idle timeout in milliseconds (rounded up to seconds). */
  timeoutMs?: number;
}

function seconds(secs: number | undefined, ms: number | undefined, what: string): number | undefined {
  if (secs !== undefined && ms !== undefined) throw new TypeError(`give ${what}Secs or ${what}Ms, not both`);
  return secs ?? (ms === undefined ? undefined : Math.ceil(ms / 1000));
}

function createBody(opts: SandboxOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const set = (key: string, value: unknown) => {
    if (value !== undefined) body[key] = value;
  };
  set('template', opts.template);
  set('timeout_secs', seconds(opts.timeoutSecs, opts.timeoutMs, 'timeout'));
  set('ttl_secs', seconds(opts.ttlSecs, opts.ttlMs, 'ttl'));
  set('envs', opts.envs);
  set('metadata', opts.metadata);
  set('labels', opts.labels);
  if (opts.resources) {
    const r: Record<string, number> = {};
    if (opts.resources.cpus !== undefined) r.cpus = opts.resources.cpus;
    if (opts.resources.memoryMb !== undefined) r.memory_mb = opts.resources.memoryMb;
    if (opts.resources.pids !== undefined) r.pids = opts.resources.pids;
    if (opts.resources.diskMb !== undefined && opts.resources.diskMb !== null) r.disk_mb = opts.resources.diskMb;
    body.resources = r;
  }
  set('network', opts.network);
  set('auto_checkpoint', opts.autoCheckpoint);
  set('auto_checkpoint_keep', opts.autoCheckpointKeep);
  set('auto_wake', opts.autoWake);
  set('from_checkpoint', opts.fromCheckpoint);
  return body;
}

/**
 * Pages of `Sandbox.list`: `for await (const page of Sandbox.list())`, or
 * `nextItems()` one page at a time, or `all()`.
 */
export class SandboxPaginator implements AsyncIterable<SandboxInfo[]> {
  #cursor: string | undefined;
  #done = false;

  /** @internal Use `Sandbox.list`. */
  constructor(
    private readonly api: ApiClient,
    private readonly opts: SandboxListOptions,
  ) {
    this.#cursor = opts.cursor;
  }

  /** Whether another page may follow. */
  get hasNext(): boolean {
    return !this.#done;
  }

  /** Cursor of the next page (pass it as `cursor` later to resume). */
  get nextCursor(): string | undefined {
    return this.#cursor;
  }

  /** The next page (empty once there is none). */
  async nextItems(): Promise<SandboxInfo[]> {
    if (this.#done) return [];
    const query: Query = {
      state: this.opts.state,
      label: Object.entries(this.opts.labels ?? {}).map(([k, v]) => `${k}=${v}`),
      tenant: this.opts.tenant,
      limit: this.opts.limit,
      cursor: this.#cursor,
    };
    for (const [k, v] of Object.entries(this.opts.metadata ?? {})) query[`metadata.${k}`] = v;
    const body = await this.api.json<{ items: WireSandbox[]; next_cursor: string | null }>('GET', '/v1/sandboxes', {
      query,
      signal: this.opts.signal,
    });
    this.#cursor = body.next_cursor ?? undefined;
    this.#done = !body.next_cursor;
    return body.items.map(toSandboxInfo);
  }

  /** Every remaining sandbox, all pages fetched. */
  async all(): Promise<SandboxInfo[]> {
    const out: SandboxInfo[] = [];
    while (this.hasNext) out.push(...(await this.nextItems()));
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SandboxInfo[]> {
    while (this.hasNext) yield await this.nextItems();
  }
}

/** An isolated Linux machine on a Warren server. */
export class Sandbox {
  /** `sbx_…`. */
  readonly sandboxId: string;
  /** Commands and background processes. */
  readonly exec: Exec;
  /** The sandbox's files. */
  readonly files: Files;
  /** Interactive terminals. */
  readonly pty: Pty;
  /** Snapshots of the sandbox's disk. */
  readonly checkpoints: Checkpoints;
  /** Coding-agent sessions (Claude Code, Codex, opencode, the mock). */
  readonly agent: Agent;
  /** The desktop (the `desktop` template): screen, mouse, keyboard, windows and its browser. */
  readonly desktop: Desktop;
  readonly #api: ApiClient;

  /** @internal Use `Sandbox.create` or `Sandbox.connect`. */
  constructor(api: ApiClient, sandboxId: string) {
    this.#api = api;
    this.sandboxId = sandboxId;
    this.exec = new Exec(api, sandboxId);
    this.files = new Files(api, sandboxId);
    this.pty = new Pty(api, sandboxId);
    this.checkpoints = new Checkpoints(api, sandboxId);
    this.agent = new Agent(api, sandboxId);
    this.desktop = new Desktop(api, sandboxId);
  }

  /** `exec` under its E2B name. */
  get commands(): Exec {
    return this.exec;
  }

  private get path(): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}`;
  }

  /** Creates a sandbox; resolves when it runs commands. */
  static async create(opts?: SandboxOptions): Promise<Sandbox>;
  /** Creates a sandbox from a template; resolves when it runs commands. */
  static async create(template: string, opts?: SandboxOptions): Promise<Sandbox>;
  static async create(templateOrOpts?: string | SandboxOptions, maybeOpts: SandboxOptions = {}): Promise<Sandbox> {
    const opts = typeof templateOrOpts === 'string' ? { ...maybeOpts, template: templateOrOpts } : (templateOrOpts ?? {});
    const api = new ApiClient(resolveConfig(opts));
    const wire = await api.json<WireSandbox>('POST', '/v1/sandboxes', {
      json: createBody(opts),
      timeoutMs: opts.requestTimeoutMs ?? CREATE_TIMEOUT_MS,
      signal: opts.signal,
    });
    return new Sandbox(api, wire.id);
  }

  /** Creates a sandbox whose disk starts as a checkpoint's. */
  static createFromCheckpoint(checkpointId: string, opts: SandboxOptions = {}): Promise<Sandbox> {
    return Sandbox.create({ ...opts, fromCheckpoint: checkpointId });
  }

  /**
   * Connects to an existing sandbox. A hibernated one is woken and a
   * stopped one started, so the result runs commands.
   */
  static async connect(sandboxId: string, opts: ConnectionOptions & CallOptions = {}): Promise<Sandbox> {
    const sandbox = new Sandbox(new ApiClient(resolveConfig(opts)), sandboxId);
    const info = await sandbox.getInfo(opts);
    if (info.state === 'hibernated') await sandbox.wake(opts);
    else if (info.state === 'stopped') await sandbox.start(opts);
    return sandbox;
  }

  /** Lists the sandboxes the key may see, page by page. */
  static list(opts: SandboxListOptions = {}): SandboxPaginator {
    return new SandboxPaginator(new ApiClient(resolveConfig(opts)), opts);
  }

  /**
   * Follows the state changes of the sandboxes the key may see (all of
   * them, with their tenant, for the admin key). Resolves once subscribed:
   * subscribe, then `list`, then apply the events, and nothing is missed.
   */
  static events(opts: SandboxEventsOptions & ConnectionOptions = {}): Promise<SandboxEvents> {
    return openEvents(new ApiClient(resolveConfig(opts)), opts);
  }

  /** One sandbox's description. */
  static getInfo(sandboxId: string, opts: ConnectionOptions & CallOptions = {}): Promise<SandboxInfo> {
    return new Sandbox(new ApiClient(resolveConfig(opts)), sandboxId).getInfo(opts);
  }

  /** Destroys a sandbox; `false` if it did not exist. */
  static kill(sandboxId: string, opts: ConnectionOptions & CallOptions = {}): Promise<boolean> {
    return new Sandbox(new ApiClient(resolveConfig(opts)), sandboxId).kill(opts);
  }

  private async lifecycle(method: string, route: string, opts: CallOptions, json?: unknown): Promise<SandboxInfo> {
    const wire = await this.#api.json<WireSandbox>(method, `${this.path}${route}`, {
      json,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toSandboxInfo(wire);
  }

  /** The sandbox as the server describes it now. */
  getInfo(opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('GET', '', opts);
  }

  /** Whether the sandbox exists and runs. */
  async isRunning(opts: CallOptions = {}): Promise<boolean> {
    try {
      return (await this.getInfo(opts)).state === 'running';
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** Replaces metadata, labels or the idle timeout. */
  update(changes: SandboxUpdate): Promise<SandboxInfo> {
    const json: Record<string, unknown> = {};
    if (changes.metadata !== undefined) json.metadata = changes.metadata;
    if (changes.labels !== undefined) json.labels = changes.labels;
    const timeout = seconds(changes.timeoutSecs, changes.timeoutMs, 'timeout');
    if (timeout !== undefined) json.timeout_secs = timeout;
    return this.lifecycle('PATCH', '', changes, json);
  }

  /** Sets the idle timeout, in milliseconds like `setTimeout` (rounded up to seconds; 0 disables it). */
  setTimeout(timeoutMs: number, opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.update({ ...opts, timeoutMs });
  }

  /** Pushes the end of the sandbox's lifetime back by `durationMs` (rounded up to seconds) and restarts the idle clock. */
  extend(durationMs: number, opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('POST', '/extend', opts, { seconds: Math.ceil(durationMs / 1000) });
  }

  /** Hibernates: no compute until `wake` (files are kept). */
  hibernate(opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('POST', '/hibernate', opts);
  }

  /** Wakes a hibernated sandbox. */
  wake(opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('POST', '/wake', opts);
  }

  /** Stops every process; the disk is kept (`start` runs it again). */
  stop(opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('POST', '/stop', opts);
  }

  /** Starts a stopped sandbox again on its disk. */
  start(opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('POST', '/start', opts);
  }

  /**
   * Resets the disk to its template's, in place (no checkpoint is taken):
   * the sandbox keeps its id; its processes are ended and its agent starts again.
   */
  wipe(opts: CallOptions = {}): Promise<SandboxInfo> {
    return this.lifecycle('POST', '/wipe', { ...opts, requestTimeoutMs: opts.requestTimeoutMs ?? CREATE_TIMEOUT_MS });
  }

  /** Destroys the sandbox: its processes, disk and record. `false` if it was already gone. */
  async kill(opts: CallOptions = {}): Promise<boolean> {
    try {
      await this.#api.json('DELETE', this.path, { timeoutMs: opts.requestTimeoutMs, signal: opts.signal });
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** Checkpoints the sandbox once and makes `count` new, independent sandboxes from it. */
  async fork(count = 1, opts: CallOptions = {}): Promise<Sandbox[]> {
    const body = await this.#api.json<WireSandbox[] | { items?: WireSandbox[]; sandboxes?: WireSandbox[] }>(
      'POST',
      `${this.path}/fork`,
      { json: { count }, timeoutMs: opts.requestTimeoutMs ?? CREATE_TIMEOUT_MS, signal: opts.signal },
    );
    const items = Array.isArray(body) ? body : (body.items ?? body.sandboxes ?? []);
    return items.map((wire) => new Sandbox(this.#api, wire.id));
  }
}
