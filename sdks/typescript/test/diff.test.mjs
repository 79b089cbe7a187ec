// Checkpoint diffs against a real server: the paths changed between two
// checkpoints and up to the live disk, and one file's unified diff.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, NotFoundError } from '@warren-sh/sdk';
import { setup } from './harness.mjs';

const env = await setup();

describe('checkpoint diffs', { skip: env.skip }, () => {
  let sbx;
  before(async () => {
    sbx = await Sandbox.create(env.opts);
  });
  after(async () => {
    await sbx?.kill();
  });

  it('lists changed paths and gives a text file unified diff', async () => {
    await sbx.files.write('/srv/ts/t.txt', 'a\nb\n');
    await sbx.files.write('/srv/ts/gone.txt', 'x');
    const a = await sbx.checkpoints.create();
    await sbx.files.write('/srv/ts/t.txt', 'a\nB\n');
    await sbx.files.remove('/srv/ts/gone.txt');
    const b = await sbx.checkpoints.create();

    const diff = await sbx.checkpoints.diff(a.id, { to: b.id });
    assert.equal(diff.truncated, false);
    const mine = diff.items.filter((i) => i.path.startsWith('/srv/ts/'));
    assert.deepEqual(mine, [
      { path: '/srv/ts/gone.txt', change: 'deleted', size: 1, kind: 'file' },
      { path: '/srv/ts/t.txt', change: 'modified', size: 4, kind: 'file' },
    ]);

    await sbx.files.write('/srv/ts/live.txt', 'now\n');
    const live = await sbx.checkpoints.diff(b.id);
    assert.deepEqual(
      live.items.filter((i) => i.path.startsWith('/srv/ts/')).map((i) => [i.change, i.path]),
      [['added', '/srv/ts/live.txt']],
    );

    const file = await sbx.checkpoints.diffFile(a.id, '/srv/ts/t.txt', { to: b.id });
    assert.equal(file.change, 'modified');
    assert.equal(file.binary, false);
    assert.equal(file.unified, '--- a/srv/ts/t.txt\n+++ b/srv/ts/t.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n');

    await assert.rejects(sbx.checkpoints.diff('ckpt_missing'), NotFoundError);
  });
});
