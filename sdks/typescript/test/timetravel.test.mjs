// Hibernate, stop, checkpoints, restore and fork against a real server.
// The checkpoint and fork routes come with the time-travel work: each test
// of them runs when the server answers its route, and is skipped (saying
// so) while the route does not exist yet.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, NotFoundError, WarrenError } from '@warren-sh/sdk';
import { setup } from './harness.mjs';

const env = await setup();

/** Whether `err` says the route itself does not exist (not a missing sandbox or checkpoint). */
function routeMissing(err) {
  return err instanceof WarrenError && (err.code === 'not_found' || err.code === 'method_not_allowed');
}

/** Runs `call`; returns a skip reason instead if the server lacks its route. */
async function unlessMissing(t, what, call) {
  try {
    return await call();
  } catch (err) {
    if (routeMissing(err)) {
      t.skip(`the server has no ${what} route yet (${err.code}: ${err.detail})`);
      return undefined;
    }
    throw err;
  }
}

describe('hibernate, stop and time travel', { skip: env.skip }, () => {
  const created = [];
  const make = async (opts = {}) => {
    const sbx = await Sandbox.create({ ...env.opts, ...opts });
    created.push(sbx);
    return sbx;
  };
  let sbx;
  before(async () => {
    sbx = await make();
  });
  after(async () => {
    await Promise.all(created.map((s) => s.kill()));
  });

  it('hibernates and wakes, keeping files', async (t) => {
    await sbx.files.write('/root/keep.txt', 'kept');
    const asleep = await unlessMissing(t, 'hibernate', () => sbx.hibernate());
    if (!asleep) return;
    assert.equal(asleep.state, 'hibernated');
    assert.equal((await sbx.getInfo()).state, 'hibernated');
    const awake = await sbx.wake();
    assert.equal(awake.state, 'running');
    assert.equal(await sbx.files.read('/root/keep.txt'), 'kept');
  });

  it('connect wakes a hibernated sandbox', async (t) => {
    if (!(await unlessMissing(t, 'hibernate', () => sbx.hibernate()))) return;
    const again = await Sandbox.connect(sbx.sandboxId, env.opts);
    assert.equal((await again.getInfo()).state, 'running');
    assert.equal((await again.exec.run('cat /root/keep.txt')).stdout, 'kept');
  });

  it('stops and starts, keeping the disk', async () => {
    await sbx.files.write('/root/stop.txt', 'disk');
    assert.equal((await sbx.stop()).state, 'stopped');
    assert.equal(await sbx.isRunning(), false);
    assert.equal((await sbx.start()).state, 'running');
    assert.equal(await sbx.files.read('/root/stop.txt'), 'disk');
  });

  it('checkpoints, restores in place, and deletes checkpoints', async (t) => {
    await sbx.files.write('/root/state.txt', 'v1');
    const ckpt = await unlessMissing(t, 'checkpoints', () => sbx.checkpoints.create({ name: 'v1' }));
    if (!ckpt) return;
    assert.match(ckpt.id, /^ckpt_/);
    assert.equal(ckpt.name, 'v1');
    assert.equal(ckpt.sandboxId, sbx.sandboxId);
    assert.ok(ckpt.createdAt instanceof Date);
    await sbx.files.write('/root/state.txt', 'v2');
    await sbx.files.write('/root/later.txt', 'after the checkpoint');
    const listed = await sbx.checkpoints.list();
    assert.ok(listed.some((c) => c.id === ckpt.id));
    assert.equal((await sbx.checkpoints.get(ckpt.id)).name, 'v1');

    await sbx.checkpoints.restore(ckpt.id);
    assert.equal((await sbx.getInfo()).sandboxId, sbx.sandboxId, 'same sandbox after restore');
    assert.equal(await sbx.files.read('/root/state.txt'), 'v1');
    assert.equal(await sbx.files.exists('/root/later.txt'), false);

    const child = await Sandbox.createFromCheckpoint(ckpt.id, env.opts);
    created.push(child);
    assert.notEqual(child.sandboxId, sbx.sandboxId);
    assert.equal(await child.files.read('/root/state.txt'), 'v1');

    await sbx.checkpoints.delete(ckpt.id);
    await assert.rejects(sbx.checkpoints.get(ckpt.id), (err) => err instanceof NotFoundError && err.code === 'checkpoint_not_found');
    assert.equal((await child.exec.run('cat /root/state.txt')).stdout, 'v1', 'a sandbox made from a deleted checkpoint keeps working');
  });

  it('forks into independent sandboxes', async (t) => {
    await sbx.files.write('/root/fork.txt', 'parent');
    const forks = await unlessMissing(t, 'fork', () => sbx.fork(2));
    if (!forks) return;
    created.push(...forks);
    assert.equal(forks.length, 2);
    assert.equal(new Set([sbx.sandboxId, ...forks.map((f) => f.sandboxId)]).size, 3);
    await forks[0].files.write('/root/fork.txt', 'child 0');
    assert.equal(await forks[1].files.read('/root/fork.txt'), 'parent');
    assert.equal(await sbx.files.read('/root/fork.txt'), 'parent');
  });

  it('returns a checkpoint id from every run with autoCheckpoint', async (t) => {
    let auto;
    try {
      auto = await make({ autoCheckpoint: true });
    } catch (err) {
      // A server without checkpoints refuses the option by name.
      if (err instanceof WarrenError && err.code === 'invalid_request' && err.detail.includes('auto_checkpoint')) {
        t.skip(`the server refuses autoCheckpoint: ${err.detail}`);
        return;
      }
      throw err;
    }
    assert.equal((await auto.getInfo()).autoCheckpoint, true);
    const result = await auto.exec.run('echo one > /root/one.txt');
    if (!result.checkpoint) {
      t.skip('the server accepts autoCheckpoint but returns no checkpoint from runs yet');
      return;
    }
    assert.match(result.checkpoint, /^ckpt_/);
    const checkpoints = await auto.checkpoints.list();
    const taken = checkpoints.find((c) => c.id === result.checkpoint);
    assert.ok(taken, 'the checkpoint is listed');
    assert.equal(taken.command, 'echo one > /root/one.txt');
  });
});
