// Tar archives in memory, for files.upload and files.download: GNU headers
// (long names as `././@LongLink` entries, as the agent writes them), and on
// reading also ustar prefixes, PAX `path`/`linkpath`/`size` records and
// base-256 numbers.

import { concatBytes, utf8Decode, utf8Encode } from './encoding.js';

/** Kind of an archive entry. */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'other';

/** One entry of an archive, as `files.download` returns it. */
export interface TarEntry {
  /** Path relative to the archive root, `/`-separated, without a trailing slash. */
  path: string;
  type: TarEntryType;
  /** Permission bits, e.g. `0o644`. */
  mode: number;
  /** Contents (empty for directories and links). */
  data: Uint8Array;
  /** Target of a symbolic link. */
  linkTarget?: string;
  modifiedAt: Date;
}

/** One entry to put in an archive, as `files.upload` takes it. */
export interface UploadEntry {
  /** Path relative to the upload directory, `/`-separated. */
  path: string;
  /** Contents of a file (text is written as UTF-8). */
  data?: string | Uint8Array;
  /** `file` (default), `dir` or `symlink`. */
  type?: Exclude<TarEntryType, 'other'>;
  /** Permission bits; default 0o644 for files, 0o755 for directories. */
  mode?: number;
  /** Target of a symbolic link. */
  linkTarget?: string;
  /** Modification time; default now. */
  modifiedAt?: Date;
}

const BLOCK = 512;

function writeString(header: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = utf8Encode(value);
  header.set(bytes.subarray(0, length), offset);
}

function writeOctal(header: Uint8Array, offset: number, length: number, value: number): void {
  const digits = Math.floor(value).toString(8);
  if (digits.length > length - 1) throw new RangeError(`tar field of ${length} bytes cannot hold ${value}`);
  writeString(header, offset, length - 1, digits.padStart(length - 1, '0'));
}

function header(name: string, typeflag: string, size: number, mode: number, mtime: number, link = ''): Uint8Array {
  const h = new Uint8Array(BLOCK);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, mode & 0o7777);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156);
  writeString(h, 156, 1, typeflag);
  writeString(h, 157, 100, link);
  // GNU magic: the agent's tar reader honours `././@LongLink` entries only after it.
  writeString(h, 257, 8, 'ustar  ');
  let sum = 0;
  for (const byte of h) sum += byte;
  writeString(h, 148, 7, sum.toString(8).padStart(6, '0') + '\0');
  return h;
}

function padded(data: Uint8Array): Uint8Array[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [data] : [data, new Uint8Array(BLOCK - rest)];
}

function longLink(typeflag: 'L' | 'K', value: string): Uint8Array[] {
  const data = utf8Encode(value + '\0');
  return [header('././@LongLink', typeflag, data.length, 0o644, 0), ...padded(data)];
}

function cleanPath(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) throw new TypeError(`tar entry path ${JSON.stringify(path)} is empty`);
  if (parts.includes('..')) throw new TypeError(`tar entry path ${JSON.stringify(path)} contains ..`);
  return parts.join('/');
}

/** Packs entries into a tar archive. */
export function packTar(entries: readonly UploadEntry[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const path = cleanPath(entry.path);
    const name = type === 'dir' ? `${path}/` : path;
    const data = type === 'file' ? (typeof entry.data === 'string' ? utf8Encode(entry.data) : (entry.data ?? new Uint8Array())) : new Uint8Array();
    const mode = entry.mode ?? (type === 'dir' ? 0o755 : 0o644);
    const mtime = Math.floor((entry.modifiedAt ?? new Date()).getTime() / 1000);
    const link = type === 'symlink' ? (entry.linkTarget ?? '') : '';
    if (type === 'symlink' && !link) throw new TypeError(`symlink ${path} needs a linkTarget`);
    if (utf8Encode(name).length > 100) blocks.push(...longLink('L', name));
    if (utf8Encode(link).length > 100) blocks.push(...longLink('K', link));
    const typeflag = type === 'dir' ? '5' : type === 'symlink' ? '2' : '0';
    blocks.push(header(name, typeflag, data.length, mode, mtime, link));
    if (data.length > 0) blocks.push(...padded(data));
  }
  blocks.push(new Uint8Array(BLOCK * 2));
  return concatBytes(blocks);
}

function readString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return utf8Decode(end < 0 ? field : field.subarray(0, end));
}

function readNumber(block: Uint8Array, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    // GNU base-256: big-endian, the top bit of the first byte is the flag.
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = readString(block, offset, length).trim();
  return text ? parseInt(text, 8) : 0;
}

function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = parseInt(utf8Decode(data.subarray(offset, space)), 10);
    if (!(length > 0)) break;
    const record = utf8Decode(data.subarray(space + 1, offset + length - 1));
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return out;
}

/** Reads every entry of a tar archive. */
export function unpackTar(archive: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let longLinkName: string | undefined;
  let pax: Record<string, string> = {};
  while (offset + BLOCK <= archive.length) {
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== readNumber(block, 148, 8)) throw new TypeError(`tar header at byte ${offset} has a bad checksum`);
    const typeflag = String.fromCharCode(block[156]!);
    const size = pax.size !== undefined ? Number(pax.size) : readNumber(block, 124, 12);
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length) throw new TypeError('tar archive is truncated');
    const data = archive.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'L') {
      longName = readString(data, 0, data.length);
      continue;
    }
    if (typeflag === 'K') {
      longLinkName = readString(data, 0, data.length);
      continue;
    }
    if (typeflag === 'x') {
      pax = parsePax(data);
      continue;
    }
    if (typeflag === 'g') continue;

    let name = readString(block, 0, 100);
    if (readString(block, 257, 6) === 'ustar') {
      // POSIX ustar: a prefix field holds the leading directories of long names.
      const prefix = readString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    name = pax.path ?? longName ?? name;
    const link = pax.linkpath ?? longLinkName ?? readString(block, 157, 100);
    const type: TarEntryType =
      typeflag === '0' || typeflag === '\0' || typeflag === '7'
        ? 'file'
        : typeflag === '5'
          ? 'dir'
          : typeflag === '2'
            ? 'symlink'
            : 'other';
    const path = name.replace(/^\.\//, '').replace(/\/+$/, '');
    const entry: TarEntry = {
      path,
      type,
      mode: readNumber(block, 100, 8) & 0o7777,
      data: type === 'file' ? data.slice() : new Uint8Array(),
      modifiedAt: new Date((pax.mtime !== undefined ? Number(pax.mtime) : readNumber(block, 136, 12)) * 1000),
    };
    if (type === 'symlink') entry.linkTarget = link;
    if (path !== '' && path !== '.') entries.push(entry);
    longName = undefined;
    longLinkName = undefined;
    pax = {};
  }
  return entries;
}
