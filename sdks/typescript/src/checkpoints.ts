// sandbox.checkpoints: snapshots of a sandbox's disk, restoring one in place,
// what changed since one (diffs), the patches that run in sandboxes made from
// one, and moving checkpoints between servers (export and import).

import { type ConnectionOptions, resolveConfig } from './config.js';
import { ApiClient, type CallOptions } from './http.js';
import { fileStream, writeStreamToFile } from './localfs.js';
import {
  type CheckpointDiff,
  type CheckpointInfo,
  type FileDiff,
  type Patch,
  type WireCheckpoint,
  type WireList,
  type WirePatch,
  listItems,
  toCheckpointInfo,
  toPatch,
} from './types.js';

/** Media type of a checkpoint export stream. */
const EXPORT_TYPE = 'application/vnd.warren.checkpoint';
/** Default timeout of an export or import: disks can be large. */
const TRANSFER_TIMEOUT_MS = 3600_000;

/** Options of `checkpoints.addPatch`. */
export interface PatchOptions extends CallOptions {
  /** A name, to tell patches apart. */
  name?: string;
  /** How long the script may run in each sandbox, in milliseconds (server default applies). */
  timeoutMs?: number;
}

/** Options of `checkpoints.export`. */
export interface ExportOptions extends CallOptions {
  /** `btrfs-send` or `tar-gzip` (default: the server's storage driver's own). */
  format?: string;
}

/** What `Checkpoints.import` takes: an export, whole or streamed. */
export type ImportData = Uint8Array | Blob | ReadableStream<Uint8Array>;

const checkpointPath = (id: string, rest = '') => `/v1/checkpoints/${encodeURIComponent(id)}${rest}`;

/** Options of `checkpoints.diff` and `checkpoints.diffFile`. */
export interface DiffOptions extends CallOptions {
  /** The newer checkpoint (default: the sandbox's live disk). */
  to?: string;
}

/** Options of `checkpoints.restore`. */
export interface RestoreOptions extends CallOptions {
  /** Delete the checkpoints taken after this one (default: keep them, history branches). */
  discardLater?: boolean;
}

/** The checkpoints of one sandbox: `sandbox.checkpoints`. */
export class Checkpoints {
  /** @internal Use `sandbox.checkpoints`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  private get base(): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}`;
  }

  /** Takes a checkpoint of the sandbox's disk (consistent: processes are frozen meanwhile). */
  async create(opts: CallOptions & { name?: string } = {}): Promise<CheckpointInfo> {
    const wire = await this.api.json<WireCheckpoint>('POST', `${this.base}/checkpoints`, {
      json: opts.name === undefined ? {} : { name: opts.name },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toCheckpointInfo(wire);
  }

  /** The sandbox's checkpoints, in creation order. */
  async list(opts: CallOptions = {}): Promise<CheckpointInfo[]> {
    const body = await this.api.json<WireList<WireCheckpoint>>('GET', `${this.base}/checkpoints`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return listItems(body).map(toCheckpointInfo);
  }

  /** One checkpoint. */
  async get(checkpointId: string, opts: CallOptions = {}): Promise<CheckpointInfo> {
    const wire = await this.api.json<WireCheckpoint>('GET', `/v1/checkpoints/${encodeURIComponent(checkpointId)}`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toCheckpointInfo(wire);
  }

  /**
   * Makes the sandbox's disk that of the checkpoint, in place: the sandbox
   * keeps its id; its processes are ended and its agent starts again.
   */
  async restore(checkpointId: string, opts: RestoreOptions = {}): Promise<void> {
    const json: Record<string, unknown> = { checkpoint_id: checkpointId };
    if (opts.discardLater !== undefined) json.discard_later = opts.discardLater;
    await this.api.json('POST', `${this.base}/restore`, {
      json,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /** Deletes a checkpoint (sandboxes forked from it keep working). */
  async delete(checkpointId: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('DELETE', `/v1/checkpoints/${encodeURIComponent(checkpointId)}`, {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * What changed since checkpoint `checkpointId`: paths added, modified and
   * deleted up to checkpoint `opts.to` or (without it) the live disk of the
   * checkpoint's sandbox, sorted by path.
   */
  async diff(checkpointId: string, opts: DiffOptions = {}): Promise<CheckpointDiff> {
    return this.api.json<CheckpointDiff>('GET', checkpointPath(checkpointId, '/diff'), {
      query: { to: opts.to },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * The unified diff of the text file at `path` (absolute, as the sandbox
   * sees it) since checkpoint `checkpointId`, up to `opts.to` or the live disk.
   */
  async diffFile(checkpointId: string, path: string, opts: DiffOptions = {}): Promise<FileDiff> {
    return this.api.json<FileDiff>('GET', checkpointPath(checkpointId, '/diff/file'), {
      query: { path, to: opts.to },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * Attaches a script to a checkpoint: it runs as root, after the ones
   * added before it, in every sandbox made from the checkpoint before that
   * sandbox is handed out. A failing one fails the creation or fork with
   * `PatchFailedError`.
   */
  async addPatch(checkpointId: string, script: string, opts: PatchOptions = {}): Promise<Patch> {
    const json: Record<string, unknown> = { script };
    if (opts.name !== undefined) json.name = opts.name;
    if (opts.timeoutMs !== undefined) json.timeout_ms = opts.timeoutMs;
    const wire = await this.api.json<WirePatch>('POST', checkpointPath(checkpointId, '/patches'), {
      json,
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return toPatch(wire);
  }

  /** A checkpoint's patches, in the order they run. */
  async listPatches(checkpointId: string, opts: CallOptions = {}): Promise<Patch[]> {
    const body = await this.api.json<WireList<WirePatch>>('GET', checkpointPath(checkpointId, '/patches'), {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return listItems(body).map(toPatch);
  }

  /** Removes a patch from a checkpoint. */
  async deletePatch(checkpointId: string, patchId: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('DELETE', checkpointPath(checkpointId, `/patches/${encodeURIComponent(patchId)}`), {
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * Streams a checkpoint out, to import it on another server: the stream
   * is the whole export (a header line, the metadata, then the disk). The
   * request timeout covers the answer's headers only.
   */
  async export(checkpointId: string, opts: ExportOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const { response, close } = await this.api.open('GET', checkpointPath(checkpointId, '/export'), {
      query: { format: opts.format },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    const body = response.body;
    if (!body) {
      close();
      return new ReadableStream({ start: (c) => c.close() });
    }
    return body;
  }

  /** A checkpoint's whole export, in memory (use `export` or `exportToFile` for large disks). */
  async exportBytes(checkpointId: string, opts: ExportOptions = {}): Promise<Uint8Array> {
    return this.api.bytes('GET', checkpointPath(checkpointId, '/export'), {
      query: { format: opts.format },
      timeoutMs: opts.requestTimeoutMs ?? TRANSFER_TIMEOUT_MS,
      signal: opts.signal,
    });
  }

  /** Streams a checkpoint's export into the local file `localPath` (Node only). */
  async exportToFile(checkpointId: string, localPath: string, opts: ExportOptions = {}): Promise<void> {
    await writeStreamToFile(await this.export(checkpointId, opts), localPath);
  }

  /**
   * Makes a checkpoint on a server from an export (bytes, a Blob or a
   * stream); it belongs to the key's tenant and can seed
   * `Sandbox.createFromCheckpoint`.
   */
  static async import(data: ImportData, opts: ConnectionOptions & CallOptions = {}): Promise<CheckpointInfo> {
    const api = new ApiClient(resolveConfig(opts));
    const wire = await api.json<WireCheckpoint>('POST', '/v1/checkpoints/import', {
      body: data,
      headers: { 'content-type': EXPORT_TYPE },
      timeoutMs: opts.requestTimeoutMs ?? TRANSFER_TIMEOUT_MS,
      signal: opts.signal,
    });
    return toCheckpointInfo(wire);
  }

  /** `Checkpoints.import` of the local file `localPath`, streamed (Node only). */
  static async importFile(localPath: string, opts: ConnectionOptions & CallOptions = {}): Promise<CheckpointInfo> {
    return Checkpoints.import(await fileStream(localPath), opts);
  }
}
