// The server-wide parts of the API: templates (anyone lists them, the admin
// key deletes them) and, with the admin key, tenants and their API keys.

import { type ConnectionOptions, resolveConfig } from './config.js';
import { ApiClient, type CallOptions } from './http.js';
import { fileStream } from './localfs.js';
import { toDate } from './types.js';

/** Default timeout of a template build or import: apt steps and big images take minutes. */
const TEMPLATE_TIMEOUT_MS = 3600_000;

interface WireTemplate {
  name: string;
  workdir: string;
  env: Record<string, string>;
  created_at: string | null;
}

function toTemplateInfo(w: WireTemplate): TemplateInfo {
  return { name: w.name, workdir: w.workdir, env: w.env ?? {}, createdAt: toDate(w.created_at) };
}

/** A template sandboxes are created from. */
export interface TemplateInfo {
  /** Name, as given to `Sandbox.create({ template })`. */
  name: string;
  /** Working directory of processes in sandboxes made from it. */
  workdir: string;
  /** Default environment of sandboxes made from it. */
  env: Record<string, string>;
  /** When it was built, if known. */
  createdAt: Date | null;
}

/** A tenant: the owner of API keys and of the sandboxes they create. */
export interface Tenant {
  /** `ten_…`. */
  id: string;
  name: string;
  /** Most sandboxes it may have creating or running at once; `null`: no limit. */
  maxSandboxes: number | null;
  /** Most sandboxes it may have at all, stopped ones included; `null`: no limit. */
  maxTotalSandboxes: number | null;
  /** Most memory (MiB) over its sandboxes holding compute; `null`: no limit. */
  maxMemoryMb: number | null;
  /** Most CPUs over its sandboxes holding compute; `null`: no limit. */
  maxCpus: number | null;
  /** Most disk (MiB, the sum of its sandboxes' `diskMb`); `null`: no limit. */
  maxDiskMb: number | null;
  createdAt: Date;
}

/** A new tenant: its name and quotas (each optional; absent means no limit). */
export interface NewTenant {
  name: string;
  maxSandboxes?: number;
  maxTotalSandboxes?: number;
  maxMemoryMb?: number;
  maxCpus?: number;
  maxDiskMb?: number;
}

/**
 * The form of a new key's secret: `warren` (`wsk_…`, the default) or `e2b`
 * (`e2b_` and 64 hex digits, which E2B's SDKs accept as `E2B_API_KEY`; a
 * Warren key all the same).
 */
export type KeyFormat = 'warren' | 'e2b';

/** Options of `Admin.createKey`. */
export interface CreateKeyOptions extends CallOptions {
  /** The secret's form (default `warren`). */
  format?: KeyFormat;
}

/** A new API key: the only time the secret is shown. */
export interface ApiKeyCreated {
  /** `key_…`, used to revoke it. */
  id: string;
  /** The secret, for `apiKey`. */
  key: string;
  tenantId: string;
  createdAt: Date;
}

/** An API key as listed, without its secret. */
export interface ApiKeyInfo {
  /** `key_…`. */
  id: string;
  tenantId: string;
  /** The first characters of the key, to tell keys apart. */
  prefix: string;
  createdAt: Date;
}

interface WireTenant {
  id: string;
  name: string;
  max_sandboxes: number | null;
  max_total_sandboxes?: number | null;
  max_memory_mb?: number | null;
  max_cpus?: number | null;
  max_disk_mb?: number | null;
  created_at: string;
}

function toTenant(w: WireTenant): Tenant {
  return {
    id: w.id,
    name: w.name,
    maxSandboxes: w.max_sandboxes ?? null,
    maxTotalSandboxes: w.max_total_sandboxes ?? null,
    maxMemoryMb: w.max_memory_mb ?? null,
    maxCpus: w.max_cpus ?? null,
    maxDiskMb: w.max_disk_mb ?? null,
    createdAt: toDate(w.created_at),
  };
}

/** Templates on the server. */
export class Templates {
  /** Every template on the server, by name. */
  static async list(opts: ConnectionOptions & CallOptions = {}): Promise<TemplateInfo[]> {
    const api = new ApiClient(resolveConfig(opts));
    const body = await api.json<{ items: WireTemplate[] }>('GET', '/v1/templates', {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return body.items.map(toTemplateInfo);
  }

  /**
   * Builds (or rebuilds) a template from a spec.toml's text (admin key):
   * `base`, `apt`, `run`, `env`, `workdir`. Resolves when the build is done;
   * a failed step is an `InvalidRequestError` whose detail has its output.
   */
  static async build(name: string, specToml: string, opts: ConnectionOptions & CallOptions = {}): Promise<TemplateInfo> {
    const api = new ApiClient(resolveConfig(opts));
    const wire = await api.json<WireTemplate>('POST', `/v1/templates/${encodeURIComponent(name)}/build`, {
      body: specToml,
      headers: { 'content-type': 'application/toml' },
      timeoutMs: opts.requestTimeoutMs ?? TEMPLATE_TIMEOUT_MS,
      signal: opts.signal,
    });
    return toTemplateInfo(wire);
  }

  /**
   * Makes a template from an OCI image layout or `docker save` tarball
   * (bytes, a Blob or a stream; admin key).
   */
  static async import(
    name: string,
    image: Uint8Array | Blob | ReadableStream<Uint8Array>,
    opts: ConnectionOptions & CallOptions = {},
  ): Promise<TemplateInfo> {
    const api = new ApiClient(resolveConfig(opts));
    const wire = await api.json<WireTemplate>('POST', `/v1/templates/${encodeURIComponent(name)}/import`, {
      body: image,
      headers: { 'content-type': 'application/x-tar' },
      timeoutMs: opts.requestTimeoutMs ?? TEMPLATE_TIMEOUT_MS,
      signal: opts.signal,
    });
    return toTemplateInfo(wire);
  }

  /** `Templates.import` of the local image tarball `localPath`, streamed (Node only). */
  static async importFile(name: string, localPath: string, opts: ConnectionOptions & CallOptions = {}): Promise<TemplateInfo> {
    return Templates.import(name, await fileStream(localPath), opts);
  }

  /** Deletes a template (admin key); sandboxes made from it keep their disks. */
  static async delete(name: string, opts: ConnectionOptions & CallOptions = {}): Promise<void> {
    const api = new ApiClient(resolveConfig(opts));
    await api.json('DELETE', `/v1/templates/${encodeURIComponent(name)}`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }
}

/**
 * Tenants and API keys, with the admin key (`apiKey`, or `WARREN_API_KEY`).
 * Other keys get `ForbiddenError`.
 */
export class Admin {
  readonly #api: ApiClient;

  /** A client for the admin routes of the server `opts` (or the environment) names. */
  constructor(opts: ConnectionOptions = {}) {
    this.#api = new ApiClient(resolveConfig(opts));
  }

  /** Creates a tenant with the quotas given (see {@link NewTenant}); going over one answers `quota_exceeded`. */
  async createTenant(tenant: NewTenant, opts: CallOptions = {}): Promise<Tenant> {
    const json: Record<string, unknown> = { name: tenant.name };
    const quotas: [keyof NewTenant, string][] = [
      ['maxSandboxes', 'max_sandboxes'],
      ['maxTotalSandboxes', 'max_total_sandboxes'],
      ['maxMemoryMb', 'max_memory_mb'],
      ['maxCpus', 'max_cpus'],
      ['maxDiskMb', 'max_disk_mb'],
    ];
    for (const [key, wire] of quotas) {
      if (tenant[key] !== undefined) json[wire] = tenant[key];
    }
    const wire = await this.#api.json<WireTenant>('POST', '/v1/admin/tenants', {
      json,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toTenant(wire);
  }

  /** Every tenant, in creation order (all pages). */
  async listTenants(opts: CallOptions = {}): Promise<Tenant[]> {
    const out: Tenant[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#api.json<{ items: WireTenant[]; next_cursor: string | null }>('GET', '/v1/admin/tenants', {
        query: { cursor, limit: 1000 },
        timeoutMs: opts.requestTimeoutMs,
        signal: opts.signal,
      });
      out.push(...page.items.map(toTenant));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  /** One tenant. */
  async getTenant(tenantId: string, opts: CallOptions = {}): Promise<Tenant> {
    const wire = await this.#api.json<WireTenant>('GET', `/v1/admin/tenants/${encodeURIComponent(tenantId)}`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toTenant(wire);
  }

  /**
   * Issues an API key for a tenant; its secret is only in this answer.
   * `{ format: 'e2b' }` makes one E2B's SDKs take as `E2B_API_KEY`.
   */
  async createKey(tenantId: string, opts: CreateKeyOptions = {}): Promise<ApiKeyCreated> {
    const w = await this.#api.json<{ id: string; key: string; tenant_id: string; created_at: string }>(
      'POST',
      `/v1/admin/tenants/${encodeURIComponent(tenantId)}/keys`,
      {
        json: opts.format === undefined ? undefined : { format: opts.format },
        timeoutMs: opts.requestTimeoutMs,
        signal: opts.signal,
      },
    );
    return { id: w.id, key: w.key, tenantId: w.tenant_id, createdAt: toDate(w.created_at) };
  }

  /** A tenant's keys, without their secrets. */
  async listKeys(tenantId: string, opts: CallOptions = {}): Promise<ApiKeyInfo[]> {
    const body = await this.#api.json<{ items: Array<{ id: string; tenant_id: string; prefix: string; created_at: string }> }>(
      'GET',
      `/v1/admin/tenants/${encodeURIComponent(tenantId)}/keys`,
      { timeoutMs: opts.requestTimeoutMs, signal: opts.signal },
    );
    return body.items.map((w) => ({ id: w.id, tenantId: w.tenant_id, prefix: w.prefix, createdAt: toDate(w.created_at) }));
  }

  /** Revokes an API key at once. */
  async revokeKey(keyId: string, opts: CallOptions = {}): Promise<void> {
    await this.#api.json('DELETE', `/v1/admin/keys/${encodeURIComponent(keyId)}`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }
}
