// sandbox.files: read, write and manage files in a sandbox, move trees in
// and out as tar archives, and watch directories for changes.

import { toBytes } from './encoding.js';
import type { ApiClient, CallOptions } from './http.js';
import { readLocal, writeLocal } from './localfs.js';
import { readSse } from './sse.js';
import { type TarEntry, type UploadEntry, packTar, unpackTar } from './tar.js';
import { toDate } from './types.js';

/** Data `files.write` accepts. */
export type WriteData = string | Uint8Array | ArrayBuffer | Blob;

/** Options of `files.read`. */
export interface ReadOptions extends CallOptions {
  /** `text` (default, UTF-8), `bytes`, `blob` or `stream`. */
  format?: 'text' | 'bytes' | 'blob' | 'stream';
  /** First byte to read (a `Range` request). */
  offset?: number;
  /** Most bytes to read from `offset`. */
  length?: number;
}

/** Options of `files.write`. */
export interface WriteOptions extends CallOptions {
  /** Permission bits, e.g. `0o755` or `'755'`. Default: an existing file keeps its mode. */
  mode?: number | string;
}

/** One file for the batch form of `files.write`. */
export interface WriteEntry {
  path: string;
  data: WriteData;
  mode?: number | string;
}

/** What a write-like call did. */
export interface WriteInfo {
  /** The path acted on. */
  path: string;
  /** Bytes written (write, upload), or the new size (edit). */
  bytes: number;
}

/** One directory entry. */
export interface EntryInfo {
  name: string;
  /** Full path, as the caller named the directory. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  isDir: boolean;
  isSymlink: boolean;
  size: number;
  /** Permission bits, e.g. `0o644`. */
  mode: number;
  modifiedAt: Date;
}

/** What `files.stat` tells about a path (it never throws for a missing one). */
export interface FileStat {
  exists: boolean;
  isFile: boolean;
  isDir: boolean;
  size: number;
  mode: number;
  modifiedAt: Date | null;
}

/** A change in a watched directory. */
export interface FilesystemEvent {
  /** `overflow`: events were lost (rescan the directory). */
  type: 'create' | 'modify' | 'delete' | 'rename' | 'overflow';
  path: string;
  /** Old path of a rename, when known. */
  from?: string;
  isDir: boolean;
}

/** Options of `files.watch`. */
export interface WatchOptions extends CallOptions {
  /** Watch subdirectories too, including ones created later. */
  recursive?: boolean;
  /** Receive events here; without it, iterate the handle. */
  onEvent?: (event: FilesystemEvent) => void;
  /** Called once when the watch ends: `error` is set if it broke. */
  onExit?: (error?: unknown) => void;
}

/** What `files.upload` sends: entries, a tar archive, or (Node) a local file or directory. */
export type UploadSource = readonly UploadEntry[] | { tar: Uint8Array | ArrayBuffer | Blob } | string;

/** A running watch: iterate it, or stop it. */
export class WatchHandle implements AsyncIterable<FilesystemEvent> {
  readonly #queue: FilesystemEvent[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;
  readonly #close: () => void;
  /** Resolves when the watch ends (stopped, or the directory went away); rejects if it broke. */
  readonly done: Promise<void>;

  /** @internal Use `sandbox.files.watch`. */
  constructor(
    events: AsyncGenerator<FilesystemEvent>,
    close: () => void,
    private readonly opts: WatchOptions,
  ) {
    this.#close = close;
    this.done = this.#pump(events);
    this.done.catch(() => undefined);
  }

  async #pump(events: AsyncGenerator<FilesystemEvent>): Promise<void> {
    try {
      for await (const event of events) {
        if (this.opts.onEvent) this.opts.onEvent(event);
        else this.#queue.push(event);
        this.#wake?.();
      }
      this.opts.onExit?.();
    } catch (err) {
      if (this.#ended) {
        this.opts.onExit?.();
        return;
      }
      this.#error = err;
      this.opts.onExit?.(err);
      throw err;
    } finally {
      this.#ended = true;
      this.#wake?.();
      this.#close();
    }
  }

  /** Ends the watch. */
  stop(): void {
    this.#ended = true;
    this.#close();
    this.#wake?.();
  }

  /** The events, as they come (only when no `onEvent` was given). */
  async *[Symbol.asyncIterator](): AsyncIterator<FilesystemEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event) {
        yield event;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}

function modeString(mode: number | string | undefined): string | undefined {
  if (mode === undefined) return undefined;
  return typeof mode === 'number' ? mode.toString(8) : mode;
}

interface WireEntry {
  name: string;
  path: string;
  size: number;
  is_dir: boolean;
  is_symlink?: boolean;
  mode: number;
  modified_at: string;
}

interface WireStat {
  exists: boolean;
  is_file: boolean;
  is_dir: boolean;
  size: number;
  mode: number;
  modified_at: string | null;
}

/** The file system of one sandbox: `sandbox.files`. */
export class Files {
  /** @internal Use `sandbox.files`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  private path(route = ''): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/files${route}`;
  }

  /** Reads a file as text (UTF-8), or as bytes, a Blob or a stream with `format`. */
  read(path: string, opts?: ReadOptions & { format?: 'text' }): Promise<string>;
  read(path: string, opts: ReadOptions & { format: 'bytes' }): Promise<Uint8Array>;
  read(path: string, opts: ReadOptions & { format: 'blob' }): Promise<Blob>;
  read(path: string, opts: ReadOptions & { format: 'stream' }): Promise<ReadableStream<Uint8Array>>;
  async read(path: string, opts: ReadOptions = {}): Promise<string | Uint8Array | Blob | ReadableStream<Uint8Array>> {
    const request = {
      query: { path },
      headers: rangeHeader(opts),
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    };
    switch (opts.format ?? 'text') {
      case 'bytes':
        return this.api.bytes('GET', this.path(), request);
      case 'blob':
        return this.api.blob('GET', this.path(), request);
      case 'stream': {
        const { response } = await this.api.open('GET', this.path(), request);
        return response.body!;
      }
      default:
        return new TextDecoder().decode(await this.api.bytes('GET', this.path(), request));
    }
  }

  /** Reads a file as bytes. */
  readBytes(path: string, opts: Omit<ReadOptions, 'format'> = {}): Promise<Uint8Array> {
    return this.read(path, { ...opts, format: 'bytes' });
  }

  /** Writes a file (parents are created); or, given an array, several files in turn. */
  write(path: string, data: WriteData, opts?: WriteOptions): Promise<WriteInfo>;
  write(files: readonly WriteEntry[], opts?: CallOptions): Promise<WriteInfo[]>;
  async write(
    pathOrFiles: string | readonly WriteEntry[],
    dataOrOpts?: WriteData | CallOptions,
    maybeOpts: WriteOptions = {},
  ): Promise<WriteInfo | WriteInfo[]> {
    if (typeof pathOrFiles !== 'string') {
      const opts = (dataOrOpts ?? {}) as CallOptions;
      const out: WriteInfo[] = [];
      for (const file of pathOrFiles) out.push(await this.write(file.path, file.data, { ...opts, mode: file.mode }));
      return out;
    }
    const body = await toBytes(dataOrOpts as WriteData);
    return this.api.json<WriteInfo>('PUT', this.path(), {
      query: { path: pathOrFiles, mode: modeString(maybeOpts.mode) },
      body,
      headers: { 'content-type': 'application/octet-stream' },
      timeoutMs: maybeOpts.requestTimeoutMs,
      signal: maybeOpts.signal,
    });
  }

  /** The entries of a directory, sorted by name. */
  async list(path: string, opts: CallOptions = {}): Promise<EntryInfo[]> {
    const body = await this.api.json<{ items: WireEntry[] }>('GET', this.path('/list'), {
      query: { path },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return body.items.map((w) => ({
      name: w.name,
      path: w.path,
      type: w.is_symlink ? 'symlink' : w.is_dir ? 'dir' : 'file',
      isDir: w.is_dir,
      isSymlink: w.is_symlink ?? false,
      size: w.size,
      mode: w.mode,
      modifiedAt: toDate(w.modified_at),
    }));
  }

  /** What is at a path; `exists: false` when nothing is. */
  async stat(path: string, opts: CallOptions = {}): Promise<FileStat> {
    const w = await this.api.json<WireStat>('GET', this.path('/stat'), {
      query: { path },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    return {
      exists: w.exists,
      isFile: w.is_file,
      isDir: w.is_dir,
      size: w.size,
      mode: w.mode,
      modifiedAt: toDate(w.modified_at),
    };
  }

  /** Whether anything exists at a path. */
  async exists(path: string, opts: CallOptions = {}): Promise<boolean> {
    return (await this.stat(path, opts)).exists;
  }

  /** Creates a directory and its parents (`mkdir -p`). */
  async makeDir(path: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('POST', this.path('/mkdir'), {
      query: { path },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /** Removes a file, or a directory (a non-empty one only with `recursive`). */
  async remove(path: string, opts: CallOptions & { recursive?: boolean } = {}): Promise<void> {
    await this.api.json('DELETE', this.path(), {
      query: { path, recursive: opts.recursive || undefined },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /** Moves or renames; replaces an existing destination only with `overwrite`. */
  async move(from: string, to: string, opts: CallOptions & { overwrite?: boolean } = {}): Promise<void> {
    await this.api.json('POST', this.path('/move'), {
      json: { from, to, overwrite: opts.overwrite ?? false },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * Replaces `oldText` by `newText` in a file. Throws `EditConflictError`
   * (code `edit_conflict`) unless `oldText` occurs exactly once.
   */
  async edit(path: string, oldText: string, newText: string, opts: CallOptions = {}): Promise<WriteInfo> {
    return this.api.json<WriteInfo>('POST', this.path('/edit'), {
      json: { path, old_text: oldText, new_text: newText },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * Extracts files under the directory `path` (created if missing): entries,
   * a tar archive (`{tar}`), or in Node a local path (a file lands as
   * `path/<its name>`, a directory's contents under `path`).
   */
  async upload(path: string, source: UploadSource, opts: CallOptions = {}): Promise<WriteInfo> {
    let body: Uint8Array;
    if (typeof source === 'string') body = packTar(await readLocal(source));
    else if ('tar' in source) body = await toBytes(source.tar);
    else body = packTar(source as readonly UploadEntry[]);
    return this.api.json<WriteInfo>('POST', this.path('/upload'), {
      query: { path },
      body,
      headers: { 'content-type': 'application/x-tar' },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
  }

  /**
   * Downloads a file or directory as a tar archive: its entries (names
   * relative to the directory, or the file's own name), the raw archive
   * with `format: 'tar'`, or (Node) extracted under a local directory with
   * `to`, returning the local paths written.
   */
  download(path: string, opts?: CallOptions & { format?: 'entries' }): Promise<TarEntry[]>;
  download(path: string, opts: CallOptions & { format: 'tar' }): Promise<Uint8Array>;
  download(path: string, opts: CallOptions & { to: string }): Promise<string[]>;
  async download(
    path: string,
    opts: CallOptions & { format?: 'entries' | 'tar'; to?: string } = {},
  ): Promise<TarEntry[] | Uint8Array | string[]> {
    const tar = await this.api.bytes('GET', this.path('/download'), {
      query: { path },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    if (opts.format === 'tar') return tar;
    const entries = unpackTar(tar);
    return opts.to !== undefined ? writeLocal(entries, opts.to) : entries;
  }

  /**
   * Watches a directory. Resolves once the watch is armed: every change
   * after that is reported, to `onEvent` or through the handle's iterator.
   */
  async watch(path: string, opts: WatchOptions = {}): Promise<WatchHandle> {
    const stream = await this.api.open('GET', this.path('/watch'), {
      query: { path, recursive: opts.recursive || undefined },
      headers: { accept: 'text/event-stream' },
      timeoutMs: opts.requestTimeoutMs,
      signal: opts.signal,
    });
    const sse = readSse(stream.response.body!);
    try {
      // The first event says the watch is armed.
      const first = await sse.next();
      if (first.done || first.value.event !== 'ready') {
        throw new TypeError(`watch of ${path} did not start (got ${first.done ? 'end of stream' : first.value.event})`);
      }
    } catch (err) {
      stream.close();
      throw err;
    }
    async function* events(): AsyncGenerator<FilesystemEvent> {
      try {
        for await (const { event, data } of sse) {
          if (event === 'fs') {
            const w = JSON.parse(data) as { kind: FilesystemEvent['type']; path: string; from?: string; is_dir: boolean };
            const out: FilesystemEvent = { type: w.kind, path: w.path, isDir: w.is_dir };
            if (w.from !== undefined) out.from = w.from;
            yield out;
          } else if (event === 'overflow') {
            const w = JSON.parse(data) as { path: string };
            yield { type: 'overflow', path: w.path, isDir: true };
          }
        }
      } finally {
        stream.close();
      }
    }
    return new WatchHandle(events(), () => stream.close(), opts);
  }
}

function rangeHeader(opts: ReadOptions): Record<string, string> | undefined {
  if (opts.offset === undefined && opts.length === undefined) return undefined;
  const start = opts.offset ?? 0;
  if (opts.length !== undefined && opts.length <= 0) throw new RangeError('length must be positive');
  const end = opts.length !== undefined ? String(start + opts.length - 1) : '';
  return { range: `bytes=${start}-${end}` };
}
