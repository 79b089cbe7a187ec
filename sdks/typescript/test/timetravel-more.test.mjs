// Wipe, patches, automatic checkpoint retention, export and import, and
// auto_wake, and building a template, against a real server.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, Checkpoints, InvalidRequestError, PatchFailedError, Templates } from '@warren-sh/sdk';
import { setup } from './harness.mjs';

const env = await setup();

describe('wipe, patches, retention, export and auto wake', { skip: env.skip }, () => {
  const created = [];
  const make = async (opts = {}) => {
    const sbx = await Sandbox.create({ ...env.opts, ...opts });
    created.push(sbx);
    return sbx;
  };
  const dir = mkdtempSync(join(tmpdir(), 'warren-ts-export-'));
  let sbx;
  before(async () => {
    sbx = await make();
  });
  after(async () => {
    await Promise.all(created.map((s) => s.kill()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('wipe resets the disk to the template', async () => {
    await sbx.files.write('/root/wiped.txt', 'gone soon');
    const info = await sbx.wipe();
    assert.equal(info.sandboxId, sbx.sandboxId);
    assert.equal(info.state, 'running');
    assert.equal(await sbx.files.exists('/root/wiped.txt'), false);
  });

  it('runs patches in sandboxes made from a checkpoint; a failing one throws PatchFailedError', async () => {
    await sbx.files.write('/root/base.txt', 'base');
    const ckpt = await sbx.checkpoints.create({ name: 'patched' });
    const patch = await sbx.checkpoints.addPatch(ckpt.id, 'echo patched > /root/patch.txt', { name: 'mark' });
    assert.match(patch.id, /^pat_/);
    assert.equal(patch.checkpointId, ckpt.id);
    assert.equal(patch.name, 'mark');
    assert.deepEqual((await sbx.checkpoints.listPatches(ckpt.id)).map((p) => p.id), [patch.id]);

    const child = await Sandbox.createFromCheckpoint(ckpt.id, env.opts);
    created.push(child);
    assert.equal((await child.getInfo()).fromCheckpoint, ckpt.id);
    assert.equal(await child.files.read('/root/patch.txt'), 'patched\n');
    assert.equal(await child.files.read('/root/base.txt'), 'base');

    await sbx.checkpoints.deletePatch(ckpt.id, patch.id);
    await sbx.checkpoints.addPatch(ckpt.id, 'echo broken-step-output; exit 3');
    await assert.rejects(Sandbox.createFromCheckpoint(ckpt.id, env.opts), (err) => {
      assert.ok(err instanceof PatchFailedError, `got ${err}`);
      assert.equal(err.code, 'patch_failed');
      assert.equal(err.status, 422);
      assert.match(err.detail, /broken-step-output/);
      return true;
    });
  });

  it('keeps only autoCheckpointKeep automatic checkpoints', async () => {
    const auto = await make({ autoCheckpoint: true, autoCheckpointKeep: 2 });
    const info = await auto.getInfo();
    assert.equal(info.autoCheckpoint, true);
    assert.equal(info.autoCheckpointKeep, 2);
    const ids = [];
    for (const n of [1, 2, 3]) {
      const result = await auto.exec.run(`echo ${n} > /root/n.txt`);
      assert.equal(result.checkpointError, undefined);
      assert.match(result.checkpoint, /^ckpt_/);
      ids.push(result.checkpoint);
    }
    const kept = (await auto.checkpoints.list()).filter((c) => c.auto);
    assert.deepEqual(kept.map((c) => c.id).sort(), ids.slice(1).sort());
    assert.ok(kept.every((c) => c.template === 'base' && !c.imported));
  });

  it('exports a checkpoint and imports it back', async () => {
    await sbx.files.write('/root/exported.txt', 'travels');
    const ckpt = await sbx.checkpoints.create({ name: 'export-me' });
    assert.equal(ckpt.auto, false);
    const file = join(dir, 'ckpt.warren');
    await sbx.checkpoints.exportToFile(ckpt.id, file);
    assert.ok(statSync(file).size > 0);

    const imported = await Checkpoints.importFile(file, env.opts);
    assert.notEqual(imported.id, ckpt.id);
    assert.equal(imported.imported, true);
    const child = await Sandbox.createFromCheckpoint(imported.id, env.opts);
    created.push(child);
    assert.equal(await child.files.read('/root/exported.txt'), 'travels');

    const fromBytes = await Checkpoints.import(await sbx.checkpoints.exportBytes(ckpt.id), env.opts);
    assert.equal(fromBytes.imported, true);
  });

  it('autoWake wakes a hibernated sandbox on exec', async () => {
    const sleepy = await make({ autoWake: true });
    assert.equal((await sleepy.getInfo()).autoWake, true);
    await sleepy.files.write('/root/dream.txt', 'remembered');
    assert.equal((await sleepy.hibernate()).state, 'hibernated');
    assert.equal((await sleepy.exec.run('cat /root/dream.txt')).stdout, 'remembered');
    assert.equal((await sleepy.getInfo()).state, 'running');
  });

  it('builds a template from a spec.toml and refuses a failing one', async () => {
    const name = `ts-built-${Date.now()}`;
    const spec = 'base = "base"\nrun = ["echo built > /built.txt"]\nenv = { MODE = "ts" }\n';
    const template = await Templates.build(name, spec, env.opts);
    let built;
    try {
      assert.equal(template.name, name);
      assert.equal(template.env.MODE, 'ts');
      built = await Sandbox.create({ ...env.opts, template: name });
      assert.equal(await built.files.read('/built.txt'), 'built\n');
      await assert.rejects(
        Templates.build(`${name}-bad`, 'run = ["echo failing-step; exit 4"]\n', env.opts),
        (err) => err instanceof InvalidRequestError && /failing-step/.test(err.detail),
      );
    } finally {
      await built?.kill();
      await Templates.delete(name, env.opts);
    }
  });
});
