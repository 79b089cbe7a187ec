// sandbox.files against a real server: round trips of text and bytes,
// listing, stat, moves, edits with their conflict code, tar transfers in
// both directions (entries, raw archives, local directories) and watch.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, symlinkSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Sandbox,
  ConflictError,
  EditConflictError,
  InvalidRequestError,
  NotFoundError,
  WarrenError,
  packTar,
} from '@warren-sh/sdk';
import { setup, eventually } from './harness.mjs';

const env = await setup();

describe('files', { skip: env.skip }, () => {
  let sbx;
  let local;
  before(async () => {
    sbx = await Sandbox.create(env.opts);
    local = mkdtempSync(join(tmpdir(), 'warren-sdk-files-'));
  });
  after(async () => {
    await sbx?.kill();
    if (local) rmSync(local, { recursive: true, force: true });
  });

  it('writes and reads text, creating parents', async () => {
    const info = await sbx.files.write('/work/deep/dir/hello.txt', 'héllo wörld\n');
    assert.equal(info.path, '/work/deep/dir/hello.txt');
    assert.equal(info.bytes, 14);
    assert.equal(await sbx.files.read('/work/deep/dir/hello.txt'), 'héllo wörld\n');
    const seen = await sbx.exec.run('cat /work/deep/dir/hello.txt');
    assert.equal(seen.stdout, 'héllo wörld\n');
  });

  it('round-trips every byte value, with ranges, blobs and streams', async () => {
    const bytes = new Uint8Array(256 * 4).map((_, i) => i % 256);
    await sbx.files.write('/tmp/bin.dat', bytes);
    assert.deepEqual(await sbx.files.readBytes('/tmp/bin.dat'), bytes);
    assert.deepEqual(await sbx.files.read('/tmp/bin.dat', { format: 'bytes', offset: 10, length: 5 }), bytes.slice(10, 15));
    assert.deepEqual(await sbx.files.readBytes('/tmp/bin.dat', { offset: 1020 }), bytes.slice(1020));
    const blob = await sbx.files.read('/tmp/bin.dat', { format: 'blob' });
    assert.equal(blob.size, bytes.length);
    const stream = await sbx.files.read('/tmp/bin.dat', { format: 'stream' });
    const parts = [];
    for await (const part of stream) parts.push(...part);
    assert.deepEqual(new Uint8Array(parts), bytes);
    await sbx.files.write('/tmp/from-blob.dat', new Blob([bytes.slice(0, 3)]));
    assert.deepEqual(await sbx.files.readBytes('/tmp/from-blob.dat'), bytes.slice(0, 3));
  });

  it('writes several files and sets modes', async () => {
    const infos = await sbx.files.write([
      { path: '/tmp/multi/a.sh', data: '#!/bin/sh\necho a\n', mode: 0o755 },
      { path: '/tmp/multi/b.txt', data: 'b', mode: '600' },
    ]);
    assert.deepEqual(infos.map((i) => i.path), ['/tmp/multi/a.sh', '/tmp/multi/b.txt']);
    assert.equal((await sbx.exec.run('/tmp/multi/a.sh')).stdout, 'a\n');
    assert.equal((await sbx.files.stat('/tmp/multi/b.txt')).mode & 0o777, 0o600);
  });

  it('lists, stats and checks existence', async () => {
    await sbx.files.makeDir('/tmp/listing/sub');
    await sbx.files.write('/tmp/listing/file.txt', '12345');
    await sbx.exec.run('ln -s file.txt /tmp/listing/link');
    const entries = await sbx.files.list('/tmp/listing');
    assert.deepEqual(entries.map((e) => [e.name, e.type]), [
      ['file.txt', 'file'],
      ['link', 'symlink'],
      ['sub', 'dir'],
    ]);
    const file = entries[0];
    assert.equal(file.path, '/tmp/listing/file.txt');
    assert.equal(file.size, 5);
    assert.equal(file.isDir, false);
    assert.ok(file.modifiedAt instanceof Date && !isNaN(file.modifiedAt));
    const stat = await sbx.files.stat('/tmp/listing/file.txt');
    assert.deepEqual([stat.exists, stat.isFile, stat.isDir, stat.size], [true, true, false, 5]);
    const missing = await sbx.files.stat('/tmp/listing/nope');
    assert.deepEqual([missing.exists, missing.modifiedAt], [false, null]);
    assert.equal(await sbx.files.exists('/tmp/listing/sub'), true);
    assert.equal(await sbx.files.exists('/tmp/listing/nope'), false);
  });

  it('moves and removes, with conflict codes', async () => {
    await sbx.files.write('/tmp/mv/a.txt', 'A');
    await sbx.files.write('/tmp/mv/b.txt', 'B');
    await assert.rejects(sbx.files.move('/tmp/mv/a.txt', '/tmp/mv/b.txt'), (err) => {
      assert.ok(err instanceof ConflictError);
      assert.equal(err.code, 'already_exists');
      return true;
    });
    await sbx.files.move('/tmp/mv/a.txt', '/tmp/mv/b.txt', { overwrite: true });
    assert.equal(await sbx.files.read('/tmp/mv/b.txt'), 'A');
    await sbx.files.move('/tmp/mv/b.txt', '/tmp/mv/new/place/c.txt');
    assert.equal(await sbx.files.exists('/tmp/mv/b.txt'), false);
    await assert.rejects(sbx.files.remove('/tmp/mv'), (err) => err instanceof ConflictError && err.code === 'directory_not_empty');
    await sbx.files.remove('/tmp/mv', { recursive: true });
    assert.equal(await sbx.files.exists('/tmp/mv'), false);
  });

  it('edits text once, and reports edit_conflict otherwise', async () => {
    await sbx.files.write('/tmp/edit.py', 'x = 1\ny = 1\nprint(x)\n');
    const info = await sbx.files.edit('/tmp/edit.py', 'print(x)', 'print(x + y)');
    assert.equal(info.bytes, 'x = 1\ny = 1\nprint(x + y)\n'.length);
    assert.equal((await sbx.exec.run('python3 /tmp/edit.py')).stdout, '2\n');
    for (const old of ['= 1', 'absent']) {
      await assert.rejects(sbx.files.edit('/tmp/edit.py', old, 'z'), (err) => {
        assert.ok(err instanceof EditConflictError);
        assert.ok(err instanceof ConflictError && err instanceof WarrenError);
        assert.equal(err.code, 'edit_conflict');
        assert.equal(err.status, 409);
        assert.ok(err.detail.length > 0);
        return true;
      });
    }
  });

  it('reports missing files and directories with their codes', async () => {
    await assert.rejects(sbx.files.read('/no/such/file'), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'file_not_found');
      assert.equal(err.status, 404);
      return true;
    });
    await assert.rejects(sbx.files.read('/tmp'), (err) => err instanceof InvalidRequestError && err.code === 'is_a_directory');
    await assert.rejects(sbx.files.list('/no/such/dir'), (err) => err instanceof NotFoundError);
  });

  it('uploads entries and a tar, and downloads entries and a tar', async () => {
    const up = await sbx.files.upload('/srv/app', [
      { path: 'src', type: 'dir' },
      { path: 'src/main.py', data: 'print("hi")\n' },
      { path: 'run.sh', data: '#!/bin/sh\npython3 src/main.py\n', mode: 0o755 },
      { path: 'link', type: 'symlink', linkTarget: 'run.sh' },
      { path: `deep/${'n'.repeat(120)}/file.txt`, data: 'long name' },
    ]);
    assert.equal(up.path, '/srv/app');
    assert.equal((await sbx.exec.run('./run.sh', { cwd: '/srv/app' })).stdout, 'hi\n');
    assert.equal((await sbx.exec.run('readlink /srv/app/link')).stdout, 'run.sh\n');
    assert.equal(await sbx.files.read(`/srv/app/deep/${'n'.repeat(120)}/file.txt`), 'long name');

    const entries = await sbx.files.download('/srv/app');
    const byPath = Object.fromEntries(entries.map((e) => [e.path, e]));
    assert.equal(new TextDecoder().decode(byPath['src/main.py'].data), 'print("hi")\n');
    assert.equal(byPath['src'].type, 'dir');
    assert.equal(byPath['run.sh'].mode, 0o755);
    assert.equal(byPath['link'].type, 'symlink');
    assert.equal(byPath['link'].linkTarget, 'run.sh');
    assert.ok(byPath[`deep/${'n'.repeat(120)}/file.txt`]);

    const single = await sbx.files.download('/srv/app/src/main.py');
    assert.deepEqual(single.map((e) => e.path), ['main.py']);

    const tar = await sbx.files.download('/srv/app/src', { format: 'tar' });
    assert.ok(tar instanceof Uint8Array && tar.length % 512 === 0);
    await sbx.files.upload('/srv/copy', { tar });
    assert.equal(await sbx.files.read('/srv/copy/main.py'), 'print("hi")\n');
    await sbx.files.upload('/srv/raw', { tar: packTar([{ path: 'x.txt', data: 'x' }]) });
    assert.equal(await sbx.files.read('/srv/raw/x.txt'), 'x');
  });

  it('uploads a local directory and downloads to one', async () => {
    const src = join(local, 'project');
    mkdirSync(join(src, 'lib'), { recursive: true });
    writeFileSync(join(src, 'README'), 'readme\n');
    writeFileSync(join(src, 'lib', 'code.bin'), new Uint8Array([0, 1, 2, 255]));
    writeFileSync(join(src, 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
    symlinkSync('README', join(src, 'README.link'));
    await sbx.files.upload('/home/project', src);
    assert.equal((await sbx.exec.run('/home/project/tool')).stdout, 'tool\n');
    assert.deepEqual(await sbx.files.readBytes('/home/project/lib/code.bin'), new Uint8Array([0, 1, 2, 255]));
    await sbx.files.upload('/home/single', join(src, 'README'));
    assert.equal(await sbx.files.read('/home/single/README'), 'readme\n');

    const dest = join(local, 'back');
    const written = await sbx.files.download('/home/project', { to: dest });
    assert.ok(written.length >= 4);
    assert.equal(readFileSync(join(dest, 'README'), 'utf8'), 'readme\n');
    assert.deepEqual(new Uint8Array(readFileSync(join(dest, 'lib', 'code.bin'))), new Uint8Array([0, 1, 2, 255]));
    assert.equal(statSync(join(dest, 'tool')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(dest, 'README.link')), 'README');
  });

  it('watches a directory for changes', async () => {
    await sbx.files.makeDir('/tmp/watched');
    const seen = [];
    const watch = await sbx.files.watch('/tmp/watched', { recursive: true, onEvent: (e) => seen.push(e) });
    await sbx.files.write('/tmp/watched/new.txt', 'x');
    await sbx.files.makeDir('/tmp/watched/sub');
    await sbx.files.write('/tmp/watched/sub/inner.txt', 'y');
    await sbx.files.remove('/tmp/watched/new.txt');
    await eventually(
      () =>
        seen.some((e) => e.path.endsWith('/new.txt') && e.type === 'create') &&
        seen.some((e) => e.path.endsWith('/sub/inner.txt')) &&
        seen.some((e) => e.path.endsWith('/new.txt') && e.type === 'delete'),
      10_000,
      `create, nested and delete events (seen ${JSON.stringify(seen)})`,
    );
    assert.ok(seen.some((e) => e.path.endsWith('/sub') && e.isDir));
    watch.stop();
    await watch.done;
  });

  it('iterates watch events', async () => {
    await sbx.files.makeDir('/tmp/iter');
    const watch = await sbx.files.watch('/tmp/iter');
    await sbx.files.write('/tmp/iter/a.txt', 'a');
    for await (const event of watch) {
      if (event.path.endsWith('/a.txt')) {
        assert.equal(event.isDir, false);
        break;
      }
    }
    watch.stop();
    await watch.done;
  });
});
