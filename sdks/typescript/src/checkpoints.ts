// sandbox.checkpoints: snapshots of a sandbox's disk, and restoring one in place.

import type { ApiClient, CallOptions } from './http.js';
import { type CheckpointInfo, type WireCheckpoint, type WireList, listItems, toCheckpointInfo } from './types.js';

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
}
