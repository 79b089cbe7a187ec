// The SDK's tar code against GNU tar, the reference implementation: what
// packTar writes, tar extracts; what tar writes (GNU and POSIX formats),
// unpackTar reads. Plus the byte helpers against Node's Buffer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packTar, unpackTar } from '@warren-sh/sdk';
import { base64Decode, base64Encode } from '../dist/esm/encoding.js';

const longDir = 'd'.repeat(150);
const longLink = `../${'t'.repeat(120)}`;

function withTemp(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'warren-sdk-tar-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function tar(args, cwd, input) {
  const run = spawnSync('tar', args, { cwd, input });
  assert.equal(run.status, 0, run.stderr?.toString());
  return run.stdout;
}

test('GNU tar extracts what packTar writes, long names included', () =>
  withTemp((dir) => {
    const archive = packTar([
      { path: 'a', type: 'dir', mode: 0o750 },
      { path: 'a/hello.txt', data: 'héllo\n', mode: 0o600 },
      { path: 'bin.dat', data: new Uint8Array([0, 255, 10, 13]) },
      { path: `${longDir}/file.txt`, data: 'deep' },
      { path: 'link', type: 'symlink', linkTarget: 'a/hello.txt' },
      { path: 'longlink', type: 'symlink', linkTarget: longLink },
      { path: 'empty.txt', data: '' },
    ]);
    assert.equal(archive.length % 512, 0);
    writeFileSync(join(dir, 'x.tar'), archive);
    mkdirSync(join(dir, 'out'));
    tar(['-xf', '../x.tar'], join(dir, 'out'));
    const out = join(dir, 'out');
    assert.equal(readFileSync(join(out, 'a/hello.txt'), 'utf8'), 'héllo\n');
    assert.equal(statSync(join(out, 'a/hello.txt')).mode & 0o777, 0o600);
    assert.equal(statSync(join(out, 'a')).mode & 0o777, 0o750);
    assert.deepEqual([...readFileSync(join(out, 'bin.dat'))], [0, 255, 10, 13]);
    assert.equal(readFileSync(join(out, longDir, 'file.txt'), 'utf8'), 'deep');
    assert.equal(readlinkSync(join(out, 'link')), 'a/hello.txt');
    assert.equal(readlinkSync(join(out, 'longlink')), longLink);
    assert.equal(readFileSync(join(out, 'empty.txt'), 'utf8'), '');
  }));

for (const format of ['gnu', 'posix', 'ustar']) {
  test(`unpackTar reads GNU tar's ${format} format`, () =>
    withTemp((dir) => {
      const src = join(dir, 'src');
      // ustar holds names up to 255 bytes split over prefix and name.
      const deep = format === 'ustar' ? `${'p'.repeat(90)}/${'q'.repeat(90)}` : longDir;
      mkdirSync(join(src, deep), { recursive: true });
      writeFileSync(join(src, deep, 'f.txt'), 'in deep');
      writeFileSync(join(src, 'big.bin'), new Uint8Array(70_000).map((_, i) => (i * 7) % 256));
      symlinkSync('big.bin', join(src, 'ln'));
      const archive = tar(['--format', format, '-cf', '-', '.'], src);
      const entries = unpackTar(new Uint8Array(archive));
      const byPath = Object.fromEntries(entries.map((e) => [e.path, e]));
      assert.equal(new TextDecoder().decode(byPath[`${deep}/f.txt`].data), 'in deep');
      assert.equal(byPath[deep].type, 'dir');
      assert.deepEqual(byPath['big.bin'].data, new Uint8Array(readFileSync(join(src, 'big.bin'))));
      assert.equal(byPath['ln'].type, 'symlink');
      assert.equal(byPath['ln'].linkTarget, 'big.bin');
      assert.ok(byPath['big.bin'].modifiedAt instanceof Date);
    }));
}

test('packTar refuses paths that climb out', () => {
  assert.throws(() => packTar([{ path: '../evil', data: 'x' }]), TypeError);
  assert.throws(() => packTar([{ path: '', data: 'x' }]), TypeError);
});

test('unpackTar rejects a corrupted header', () => {
  const archive = packTar([{ path: 'a.txt', data: 'a' }]);
  archive[10] ^= 0xff;
  assert.throws(() => unpackTar(archive), /checksum/);
});

test('base64 helpers agree with Buffer', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) % 256);
    const expected = Buffer.from(bytes).toString('base64');
    assert.equal(base64Encode(bytes), expected);
    assert.deepEqual(base64Decode(expected), bytes);
  }
  assert.throws(() => base64Decode('ab$c'), TypeError);
});

test('extracting to a local directory never writes outside it', async () => {
  const { writeLocal } = await import('../dist/esm/localfs.js');
  const dir = mkdtempSync(join(tmpdir(), 'warren-sdk-extract-'));
  try {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const target = join(dir, 'target');
    const viaLink = unpackTar(
      packTar([
        { path: 'escape', type: 'symlink', linkTarget: outside },
        { path: 'escape/owned.txt', data: 'x' },
      ]),
    );
    await assert.rejects(writeLocal(viaLink, target), /escapes/);
    assert.equal(spawnSync('ls', [outside]).stdout.toString(), '', 'nothing was written through the link');
    const climbing = [{ path: '../climb.txt', type: 'file', mode: 0o644, data: new Uint8Array(1), modifiedAt: new Date() }];
    await assert.rejects(writeLocal(climbing, target), /escapes/);
    // A file entry replaces a symlink at its path rather than writing through it.
    const replaced = unpackTar(
      packTar([
        { path: 'f', type: 'symlink', linkTarget: join(outside, 'victim') },
        { path: 'f', data: 'mine' },
      ]),
    );
    await writeLocal(replaced, target);
    assert.equal(readFileSync(join(target, 'f'), 'utf8'), 'mine');
    assert.equal(spawnSync('ls', [outside]).stdout.toString(), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
