// Sandbox lifecycle against a real server: create options, configuration
// from the environment, list filters and pages, connect, update, kill, and
// the typed errors with their codes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  Sandbox,
  SandboxPaginator,
  AuthError,
  ConnectionError,
  InvalidRequestError,
  NotFoundError,
  WarrenError,
} from '@warren-sh/sdk';
import { setup } from './harness.mjs';

const env = await setup();

describe('sandboxes', { skip: env.skip }, () => {
  const run = randomBytes(4).toString('hex');
  const created = [];
  const make = async (opts = {}) => {
    const sbx = await Sandbox.create({ ...env.opts, ...opts });
    created.push(sbx);
    return sbx;
  };
  after(async () => {
    await Promise.all(created.map((s) => s.kill()));
  });

  it('creates a sandbox with every option and describes it', async () => {
    const sbx = await make({
      template: 'base',
      timeoutMs: 120_500,
      ttlSecs: 3600,
      envs: { GREETING: 'hi' },
      metadata: { owner: 'sdk-test', run },
      labels: { run, role: 'full' },
      resources: { cpus: 0.5, memoryMb: 256, pids: 128, diskMb: 2048 },
      network: { egress: 'deny' },
    });
    assert.match(sbx.sandboxId, /^sbx_/);
    const info = await sbx.getInfo();
    assert.equal(info.sandboxId, sbx.sandboxId);
    assert.equal(info.state, 'running');
    assert.equal(info.template, 'base');
    assert.equal(info.timeoutSecs, 121, 'milliseconds round up to seconds');
    assert.equal(info.ttlSecs, 3600);
    assert.ok(info.expiresAt instanceof Date && info.expiresAt > info.createdAt);
    assert.deepEqual(info.metadata, { owner: 'sdk-test', run });
    assert.deepEqual(info.labels, { run, role: 'full' });
    assert.deepEqual(info.resources, { cpus: 0.5, memoryMb: 256, pids: 128, diskMb: 2048 });
    assert.deepEqual(info.network, { egress: 'deny', allow: [] });
    assert.equal(info.autoCheckpoint, false);
    assert.equal(info.tenantId, null, 'the admin key owns no tenant');
    assert.equal(await sbx.isRunning(), true);
    assert.equal((await sbx.exec.run('echo $GREETING')).stdout, 'hi\n');
  });

  it('takes the template as a first argument', async () => {
    const sbx = await make('base', { labels: { run, role: 'positional' } });
    assert.equal((await sbx.getInfo()).template, 'base');
  });

  it('reads WARREN_URL and WARREN_API_KEY when not given apiUrl and apiKey', async () => {
    const saved = { url: process.env.WARREN_URL, key: process.env.WARREN_API_KEY };
    process.env.WARREN_URL = env.url;
    process.env.WARREN_API_KEY = env.apiKey;
    try {
      const sbx = await Sandbox.create({ labels: { run, role: 'env' } });
      created.push(sbx);
      assert.equal((await sbx.exec.run('echo ok')).stdout, 'ok\n');
      process.env.WARREN_API_KEY = 'wrong-key';
      await assert.rejects(Sandbox.getInfo(sbx.sandboxId), AuthError);
      // Explicit options win over the environment.
      assert.equal((await Sandbox.getInfo(sbx.sandboxId, env.opts)).sandboxId, sbx.sandboxId);
    } finally {
      for (const [name, value] of [['WARREN_URL', saved.url], ['WARREN_API_KEY', saved.key]]) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('lists with label, metadata and state filters, page by page', async () => {
    const a = await make({ labels: { run, role: 'list', pick: 'a' }, metadata: { run, color: 'red' } });
    const b = await make({ labels: { run, role: 'list', pick: 'b' }, metadata: { run, color: 'blue' } });
    const ids = (items) => items.map((s) => s.sandboxId).sort();

    const both = await Sandbox.list({ ...env.opts, labels: { run, role: 'list' } }).all();
    assert.deepEqual(ids(both), [a.sandboxId, b.sandboxId].sort());
    const onlyA = await Sandbox.list({ ...env.opts, labels: { run, pick: 'a' } }).all();
    assert.deepEqual(ids(onlyA), [a.sandboxId]);
    const blue = await Sandbox.list({ ...env.opts, metadata: { run, color: 'blue' } }).all();
    assert.deepEqual(ids(blue), [b.sandboxId]);
    const running = await Sandbox.list({ ...env.opts, state: 'running', labels: { run } }).all();
    assert.ok(running.length >= 2 && running.every((s) => s.state === 'running'));
    const stopped = await Sandbox.list({ ...env.opts, state: 'stopped', labels: { run } }).all();
    assert.deepEqual(stopped, []);

    const pages = Sandbox.list({ ...env.opts, labels: { run }, limit: 1 });
    assert.ok(pages instanceof SandboxPaginator);
    const seen = [];
    for await (const page of pages) {
      assert.ok(page.length <= 1);
      seen.push(...page);
    }
    assert.equal(pages.hasNext, false);
    assert.ok(seen.length >= 2);
    assert.equal(new Set(seen.map((s) => s.sandboxId)).size, seen.length, 'pages do not repeat');

    const manual = Sandbox.list({ ...env.opts, labels: { run }, limit: 1 });
    const first = await manual.nextItems();
    assert.equal(first.length, 1);
    assert.equal(manual.hasNext, true);
    const resumed = await Sandbox.list({ ...env.opts, labels: { run }, limit: 1, cursor: manual.nextCursor }).nextItems();
    assert.notEqual(resumed[0].sandboxId, first[0].sandboxId);
  });

  it('connects to an existing sandbox by id', async () => {
    const sbx = await make({ labels: { run, role: 'connect' } });
    await sbx.files.write('/tmp/marker', 'still here');
    const again = await Sandbox.connect(sbx.sandboxId, env.opts);
    assert.equal(again.sandboxId, sbx.sandboxId);
    assert.equal(await again.files.read('/tmp/marker'), 'still here');
  });

  it('updates metadata, labels and timeouts, and extends the lifetime', async () => {
    const sbx = await make({ labels: { run, role: 'update' }, ttlSecs: 600 });
    const before = await sbx.getInfo();
    const updated = await sbx.update({ metadata: { stage: 'two' }, labels: { run, role: 'updated' } });
    assert.deepEqual(updated.metadata, { stage: 'two' });
    assert.deepEqual(updated.labels, { run, role: 'updated' });
    assert.equal((await sbx.setTimeout(90_000)).timeoutSecs, 90);
    const extended = await sbx.extend(60_000);
    assert.ok(extended.expiresAt.getTime() >= before.expiresAt.getTime() + 59_000, 'expires_at moved by a minute');
  });

  it('kills a sandbox, after which every call throws NotFoundError', async () => {
    const sbx = await make({ labels: { run, role: 'kill' } });
    assert.equal(await sbx.kill(), true);
    const isGone = (err) => {
      assert.ok(err instanceof NotFoundError, `${err}`);
      assert.ok(err instanceof WarrenError);
      assert.equal(err.code, 'sandbox_not_found');
      assert.equal(err.status, 404);
      assert.match(err.detail, new RegExp(sbx.sandboxId));
      return true;
    };
    await assert.rejects(sbx.getInfo(), isGone);
    await assert.rejects(sbx.exec.run('true'), isGone);
    await assert.rejects(sbx.files.read('/etc/hostname'), isGone);
    await assert.rejects(sbx.exec.start('true'), isGone);
    await assert.rejects(Sandbox.connect(sbx.sandboxId, env.opts), isGone);
    assert.equal(await sbx.isRunning(), false);
    assert.equal(await sbx.kill(), false);
    assert.equal(await Sandbox.kill(sbx.sandboxId, env.opts), false);
  });

  it('turns problems into typed errors carrying their codes', async () => {
    await assert.rejects(Sandbox.create({ ...env.opts, apiKey: 'not-a-key' }), (err) => {
      assert.ok(err instanceof AuthError);
      assert.equal(err.code, 'unauthorized');
      assert.equal(err.status, 401);
      return true;
    });
    await assert.rejects(Sandbox.create({ ...env.opts, template: 'no-such-template' }), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'template_not_found');
      return true;
    });
    await assert.rejects(Sandbox.create({ ...env.opts, timeoutSecs: -1 }), (err) => {
      assert.ok(err instanceof InvalidRequestError);
      assert.equal(err.code, 'invalid_request');
      assert.equal(err.status, 400);
      return true;
    });
    await assert.rejects(Sandbox.getInfo('sbx_doesnotexist00000000', env.opts), (err) => err.code === 'sandbox_not_found');
    await assert.rejects(Sandbox.list({ ...env.opts, limit: 0 }).nextItems(), InvalidRequestError);
    await assert.rejects(Sandbox.create({ apiUrl: 'http://127.0.0.1:1', apiKey: 'k' }), (err) => {
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.code, 'connection_error');
      assert.equal(err.status, undefined);
      return true;
    });
    await assert.rejects(Sandbox.create({ ...env.opts, timeoutSecs: 1, timeoutMs: 1000 }), TypeError);
  });
});
