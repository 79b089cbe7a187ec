// sandbox.files through the `e2b` SDK: read and write as text, bytes and
// streams; list with depth; exists, getInfo, makeDir, rename, remove, watchDir.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FileType, FilesystemEventType, NotFoundError } from 'e2b';
import { create, eventually } from './helpers.mjs';

let sbx;
before(async () => {
  sbx = await create();
});

test('write and read text; relative paths are under the home directory', async () => {
  const info = await sbx.files.write('/home/user/hello.txt', 'hello, warren\n');
  assert.equal(info.path, '/home/user/hello.txt');
  assert.equal(info.name, 'hello.txt');
  assert.equal(await sbx.files.read('/home/user/hello.txt'), 'hello, warren\n');
  await sbx.files.write('relative.txt', 'rel');
  assert.equal(await sbx.files.read('/home/user/relative.txt'), 'rel');
  const owner = await sbx.commands.run('stat -c %U /home/user/hello.txt');
  assert.equal(owner.stdout, 'user\n', 'files are written as the default user');
});

test('write and read bytes, a blob and a stream', async () => {
  const bytes = randomBytes(200_000);
  await sbx.files.write('/tmp/bytes.bin', bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const back = await sbx.files.read('/tmp/bytes.bin', { format: 'bytes' });
  assert.ok(back instanceof Uint8Array);
  assert.ok(Buffer.from(back).equals(bytes));
  const blob = await sbx.files.read('/tmp/bytes.bin', { format: 'blob' });
  assert.equal(blob.size, bytes.length);

  const stream = await sbx.files.read('/tmp/bytes.bin', { format: 'stream' });
  const chunks = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  assert.ok(Buffer.concat(chunks).equals(bytes));

  const src = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('streamed '));
      c.enqueue(new TextEncoder().encode('in'));
      c.close();
    },
  });
  await sbx.files.write('/tmp/streamed.txt', src);
  assert.equal(await sbx.files.read('/tmp/streamed.txt'), 'streamed in');
  const md5 = await sbx.commands.run('md5sum /tmp/bytes.bin | cut -d" " -f1');
  assert.equal(md5.stdout.trim(), (await import('node:crypto')).createHash('md5').update(bytes).digest('hex'));
});

test('forty writes in a row all succeed', async () => {
  // One write after another over the same connections, as a loop over
  // files in a user's script does.
  for (let i = 0; i < 40; i++) {
    await sbx.files.write(`/tmp/loop/f${i}.txt`, `file ${i}`);
  }
  const listed = await sbx.files.list('/tmp/loop');
  assert.equal(listed.length, 40);
  assert.equal(await sbx.files.read('/tmp/loop/f39.txt'), 'file 39');
});

test('write several files at once', async () => {
  const infos = await sbx.files.write([
    { path: '/tmp/multi/a.txt', data: 'A' },
    { path: '/tmp/multi/b.txt', data: 'B' },
  ]);
  assert.equal(infos.length, 2);
  assert.equal(await sbx.files.read('/tmp/multi/a.txt'), 'A');
  assert.equal(await sbx.files.read('/tmp/multi/b.txt'), 'B');
});

test('makeDir, list with depth, exists, getInfo', async () => {
  assert.equal(await sbx.files.makeDir('/tmp/tree/a/b'), true);
  assert.equal(await sbx.files.makeDir('/tmp/tree/a/b'), false, 'an existing directory answers false');
  await sbx.files.write('/tmp/tree/top.txt', 'top');
  await sbx.files.write('/tmp/tree/a/mid.txt', 'mid');
  await sbx.files.write('/tmp/tree/a/b/deep.txt', 'deep');

  const one = await sbx.files.list('/tmp/tree');
  assert.deepEqual(one.map((e) => e.name).sort(), ['a', 'top.txt']);
  const dir = one.find((e) => e.name === 'a');
  assert.equal(dir.type, FileType.DIR);
  assert.equal(dir.path, '/tmp/tree/a');
  const two = await sbx.files.list('/tmp/tree', { depth: 2 });
  assert.deepEqual(two.map((e) => e.path).sort(), ['/tmp/tree/a', '/tmp/tree/a/b', '/tmp/tree/a/mid.txt', '/tmp/tree/top.txt']);
  const three = await sbx.files.list('/tmp/tree', { depth: 3 });
  assert.ok(three.some((e) => e.path === '/tmp/tree/a/b/deep.txt'));

  assert.equal(await sbx.files.exists('/tmp/tree/top.txt'), true);
  assert.equal(await sbx.files.exists('/tmp/tree/nope'), false);
  const info = await sbx.files.getInfo('/tmp/tree/top.txt');
  assert.equal(info.type, FileType.FILE);
  assert.equal(info.size, 3);
  assert.equal(info.name, 'top.txt');
  assert.ok(info.modifiedTime instanceof Date);
  assert.match(info.permissions, /^-rw/);
});

test('rename and remove', async () => {
  await sbx.files.write('/tmp/mv/from.txt', 'moving');
  const moved = await sbx.files.rename('/tmp/mv/from.txt', '/tmp/mv/to.txt');
  assert.equal(moved.path, '/tmp/mv/to.txt');
  assert.equal(await sbx.files.exists('/tmp/mv/from.txt'), false);
  assert.equal(await sbx.files.read('/tmp/mv/to.txt'), 'moving');
  await sbx.files.remove('/tmp/mv/to.txt');
  assert.equal(await sbx.files.exists('/tmp/mv/to.txt'), false);
  await sbx.files.remove('/tmp/mv');
  assert.equal(await sbx.files.exists('/tmp/mv'), false);
});

test('reading a missing file raises NotFoundError', async () => {
  await assert.rejects(sbx.files.read('/tmp/does/not/exist'), (e) => {
    assert.ok(e instanceof NotFoundError, `${e.name}: ${e.message}`);
    return true;
  });
  await assert.rejects(sbx.files.getInfo('/tmp/does/not/exist'), (e) => e instanceof NotFoundError);
});

test('watchDir reports creates, writes and removes', async () => {
  await sbx.files.makeDir('/tmp/watched');
  const events = [];
  const handle = await sbx.files.watchDir('/tmp/watched', (e) => events.push(e));
  try {
    await sbx.files.write('/tmp/watched/new.txt', 'x');
    await sbx.commands.run('echo more >> /tmp/watched/new.txt && rm /tmp/watched/new.txt');
    await eventually(() => events.some((e) => e.type === FilesystemEventType.REMOVE), 10_000, 'a remove event');
    assert.ok(events.some((e) => e.name === 'new.txt' && e.type === FilesystemEventType.CREATE), JSON.stringify(events));
    assert.ok(events.some((e) => e.name === 'new.txt' && e.type === FilesystemEventType.WRITE), JSON.stringify(events));
  } finally {
    await handle.stop();
  }
});

test('watchDir recursive sees a nested file', async () => {
  await sbx.files.makeDir('/tmp/watched-r/sub');
  const events = [];
  const handle = await sbx.files.watchDir('/tmp/watched-r', (e) => events.push(e), { recursive: true });
  try {
    await sbx.files.write('/tmp/watched-r/sub/nested.txt', 'x');
    await eventually(() => events.some((e) => e.name === 'sub/nested.txt'), 10_000, 'an event for sub/nested.txt');
  } finally {
    await handle.stop();
  }
});
