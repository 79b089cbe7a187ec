// Snapshots (Warren checkpoints), fork (Warren fork) and metrics through the
// `e2b` SDK. Warren keeps the disk, not the memory: a sandbox made from a
// snapshot or a fork has the files, and its processes start afresh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox } from 'e2b';
import { create, track } from './helpers.mjs';

test('createSnapshot, then Sandbox.create from it has the files', async () => {
  const sbx = await create();
  await sbx.files.write('/home/user/snap.txt', 'in the snapshot');
  const snap = await sbx.createSnapshot();
  assert.ok(snap.snapshotId, JSON.stringify(snap));
  assert.equal(await sbx.isRunning(), true, 'the source runs on after the snapshot');
  const listed = [];
  const paginator = Sandbox.listSnapshots({ sandboxId: sbx.sandboxId });
  while (paginator.hasNext) listed.push(...(await paginator.nextItems()));
  assert.ok(listed.some((s) => s.snapshotId === snap.snapshotId), JSON.stringify(listed));
  const fromSnap = track(await Sandbox.create(snap.snapshotId));
  assert.notEqual(fromSnap.sandboxId, sbx.sandboxId);
  assert.equal(await fromSnap.files.read('/home/user/snap.txt'), 'in the snapshot');
  assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), true);
});

test('fork gives running copies with the same files', async () => {
  const sbx = await create();
  await sbx.files.write('/home/user/forked.txt', 'before the fork');
  const forks = await sbx.fork({ count: 2 });
  assert.equal(forks.length, 2);
  for (const f of forks) {
    assert.ok(f instanceof Sandbox, `a fork failed: ${f}`);
    track(f);
    assert.notEqual(f.sandboxId, sbx.sandboxId);
    assert.equal(await f.files.read('/home/user/forked.txt'), 'before the fork');
  }
  await forks[0].files.write('/home/user/forked.txt', 'changed in a fork');
  assert.equal(await sbx.files.read('/home/user/forked.txt'), 'before the fork');
  assert.equal(await forks[1].files.read('/home/user/forked.txt'), 'before the fork');
});

test('getMetrics answers with CPU and memory figures', async () => {
  const sbx = await create();
  await sbx.commands.run('true');
  const metrics = await sbx.getMetrics();
  assert.ok(Array.isArray(metrics) && metrics.length > 0, JSON.stringify(metrics));
  const m = metrics.at(-1);
  assert.ok(m.timestamp instanceof Date);
  assert.ok(m.cpuCount > 0, JSON.stringify(m));
  assert.ok(m.memTotal > 0 && m.memUsed > 0 && m.memUsed <= m.memTotal, JSON.stringify(m));
});
