// Local files for files.upload(localPath) and files.download({to}): Node
// only. The node: modules are imported when first needed, so browser bundles
// never load them.

import type { Stats } from 'node:fs';

import type { TarEntry, UploadEntry } from './tar.js';

type Fs = typeof import('node:fs/promises');
type PathMod = typeof import('node:path');

async function nodeModules(): Promise<{ fs: Fs; path: PathMod }> {
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new TypeError('local paths need Node.js; in a browser, pass entries or a tar archive');
  }
  const [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  return { fs, path };
}

/**
 * Entries for a local file (one entry, its base name) or directory (its
 * contents, relative names; symlinks kept as symlinks), mirroring what the
 * agent's download produces.
 */
export async function readLocal(localPath: string): Promise<UploadEntry[]> {
  const { fs, path } = await nodeModules();
  const root = await fs.lstat(localPath);
  if (!root.isDirectory()) {
    return [await entryOf(fs, localPath, path.basename(localPath), root)];
  }
  const out: UploadEntry[] = [];
  const walk = async (dir: string, rel: string) => {
    const names = (await fs.readdir(dir)).sort();
    for (const name of names) {
      const full = path.join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const st = await fs.lstat(full);
      out.push(await entryOf(fs, full, relPath, st));
      if (st.isDirectory()) await walk(full, relPath);
    }
  };
  await walk(localPath, '');
  return out;
}

async function entryOf(
  fs: Fs,
  full: string,
  rel: string,
  st: Stats,
): Promise<UploadEntry> {
  const common = { path: rel, mode: st.mode & 0o7777, modifiedAt: st.mtime };
  if (st.isDirectory()) return { ...common, type: 'dir' };
  if (st.isSymbolicLink()) return { ...common, type: 'symlink', linkTarget: await fs.readlink(full) };
  if (st.isFile()) return { ...common, type: 'file', data: new Uint8Array(await fs.readFile(full)) };
  throw new TypeError(`${full} is neither a file, a directory nor a symlink`);
}

/** Writes downloaded entries under `localDir`; returns the paths written. */
export async function writeLocal(entries: readonly TarEntry[], localDir: string): Promise<string[]> {
  const { fs, path } = await nodeModules();
  const root = path.resolve(localDir);
  await fs.mkdir(root, { recursive: true });
  const written: string[] = [];
  const dirModes: Array<[string, number]> = [];
  const links = new Set<string>();
  for (const entry of entries) {
    const target = path.resolve(root, entry.path);
    // An archive must not write outside the directory it is extracted to,
    // neither directly nor through a symlink it created earlier.
    const escapes =
      (target !== root && !target.startsWith(root + path.sep)) ||
      [...links].some((link) => target.startsWith(link + path.sep));
    if (escapes) throw new TypeError(`archive entry ${JSON.stringify(entry.path)} escapes ${root}`);
    // Replace, never write through, a symlink already at the target.
    const existing = await fs.lstat(target).catch(() => undefined);
    if (existing?.isSymbolicLink()) await fs.rm(target);
    if (entry.type === 'dir') {
      await fs.mkdir(target, { recursive: true });
      dirModes.push([target, entry.mode]);
    } else if (entry.type === 'file') {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, entry.data, { mode: entry.mode });
      await fs.chmod(target, entry.mode);
    } else if (entry.type === 'symlink' && entry.linkTarget !== undefined) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.rm(target, { force: true });
      await fs.symlink(entry.linkTarget, target);
      links.add(target);
    } else {
      continue;
    }
    written.push(target);
  }
  // Directory modes last, so read-only directories could still be filled.
  for (const [dir, mode] of dirModes.reverse()) await fs.chmod(dir, mode);
  return written;
}

/** Writes a byte stream to the local file `localPath` (created or truncated). */
export async function writeStreamToFile(stream: ReadableStream<Uint8Array>, localPath: string): Promise<void> {
  const { fs } = await nodeModules();
  const file = await fs.open(localPath, 'w');
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await file.write(value);
    }
  } finally {
    reader.releaseLock();
    await file.close();
  }
}

/** The local file `localPath` as a byte stream, read a chunk at a time. */
export async function fileStream(localPath: string): Promise<ReadableStream<Uint8Array>> {
  const { fs } = await nodeModules();
  const file = await fs.open(localPath, 'r');
  const CHUNK = 1 << 20;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buf = new Uint8Array(CHUNK);
        const { bytesRead } = await file.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) {
          await file.close();
          controller.close();
        } else {
          controller.enqueue(buf.subarray(0, bytesRead));
        }
      } catch (err) {
        await file.close().catch(() => undefined);
        controller.error(err);
      }
    },
    async cancel() {
      await file.close();
    },
  });
}
