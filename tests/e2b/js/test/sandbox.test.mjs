// The control plane through the `e2b` SDK: create, list, connect, info,
// set timeout, pause and resume, kill, and getHost(port).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Sandbox } from 'e2b';
import { create, eventually, getViaHost } from './helpers.mjs';

test('create with metadata and env vars; the env vars reach commands', async () => {
  const run = randomBytes(4).toString('hex');
  const sbx = await create({ metadata: { suite: 'e2b-js', run }, envs: { GREETING: 'hello from create' } });
  assert.match(sbx.sandboxId, /^[a-z0-9]+$/, 'the E2B id is the Warren id without sbx_');
  const info = await sbx.getInfo();
  assert.equal(info.sandboxId, sbx.sandboxId);
  assert.equal(info.templateId, 'base');
  assert.equal(info.state, 'running');
  assert.deepEqual({ suite: info.metadata.suite, run: info.metadata.run }, { suite: 'e2b-js', run });
  assert.ok(info.endAt > info.startedAt, 'endAt after startedAt');
  const r = await sbx.commands.run('echo "$GREETING"');
  assert.equal(r.stdout.trim(), 'hello from create');
  assert.equal(await sbx.isRunning(), true);
});

test('list filters by metadata and pages with limit', async () => {
  const run = randomBytes(4).toString('hex');
  const a = await create({ metadata: { suite: 'e2b-js-list', run } });
  const b = await create({ metadata: { suite: 'e2b-js-list', run } });
  await create({ metadata: { suite: 'e2b-js-list', run: 'other' } });

  const found = [];
  const paginator = Sandbox.list({ query: { metadata: { run } }, limit: 1 });
  let pages = 0;
  while (paginator.hasNext) {
    const items = await paginator.nextItems();
    pages += 1;
    found.push(...items);
    if (pages > 10) break;
  }
  assert.deepEqual(found.map((s) => s.sandboxId).sort(), [a.sandboxId, b.sandboxId].sort());
  assert.ok(pages >= 2, `limit 1 gives one sandbox a page (${pages} pages)`);
  for (const s of found) {
    assert.equal(s.metadata.run, run);
    assert.equal(s.state, 'running');
    assert.equal(s.templateId, 'base');
  }
  const running = await Sandbox.list({ query: { metadata: { run }, state: ['running'] } }).nextItems();
  assert.equal(running.length, 2);
});

test('connect by id reaches the same sandbox', async () => {
  const sbx = await create();
  await sbx.files.write('/tmp/marker', 'same sandbox');
  const again = await Sandbox.connect(sbx.sandboxId);
  assert.equal(again.sandboxId, sbx.sandboxId);
  assert.equal(await again.files.read('/tmp/marker'), 'same sandbox');
});

test('setTimeout moves endAt', async () => {
  const sbx = await create({ timeoutMs: 60_000 });
  const before = await sbx.getInfo();
  await sbx.setTimeout(600_000);
  const after = await sbx.getInfo();
  const secs = (after.endAt.getTime() - Date.now()) / 1000;
  assert.ok(secs > 500 && secs <= 605, `endAt about 600 s away (${secs} s)`);
  assert.ok(after.endAt > before.endAt);
});

test('a sandbox past its timeout is gone', async () => {
  const sbx = await create({ timeoutMs: 5_000 });
  await eventually(async () => !(await sbx.isRunning().catch(() => false)), 60_000, 'the sandbox to stop');
  // Without auto-pause, E2B's timeout is a time to live: the sandbox is killed.
  await eventually(
    () => Sandbox.getInfo(sbx.sandboxId).then(() => false, (e) => e.name === 'SandboxNotFoundError' || e.name === 'NotFoundError'),
    60_000,
    'getInfo to raise NotFoundError',
  );
});

test("with lifecycle onTimeout 'pause', the timeout pauses the sandbox; connect resumes it", async () => {
  const sbx = await create({ timeoutMs: 5_000, lifecycle: { onTimeout: 'pause' } });
  await sbx.files.write('/home/user/auto.txt', 'kept across auto-pause');
  await eventually(async () => (await Sandbox.getInfo(sbx.sandboxId)).state === 'paused', 60_000, 'the sandbox to pause');
  const resumed = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 60_000 });
  assert.equal((await resumed.getInfo()).state, 'running');
  assert.equal(await resumed.files.read('/home/user/auto.txt'), 'kept across auto-pause');
});

test('betaPause then connect resumes; the disk is kept, processes are not', async () => {
  const sbx = await create();
  await sbx.files.write('/home/user/kept.txt', 'kept across pause');
  assert.equal(await sbx.betaPause(), true);
  const paused = await sbx.getInfo();
  assert.equal(paused.state, 'paused');
  const listed = await Sandbox.list({ query: { state: ['paused'] } }).nextItems();
  assert.ok(listed.some((s) => s.sandboxId === sbx.sandboxId));
  const resumed = await Sandbox.connect(sbx.sandboxId);
  assert.equal((await resumed.getInfo()).state, 'running');
  assert.equal(await resumed.files.read('/home/user/kept.txt'), 'kept across pause');
  const r = await resumed.commands.run('echo alive');
  assert.equal(r.stdout, 'alive\n');
});

test('pause twice: the second answers false', async () => {
  const sbx = await create();
  assert.equal(await sbx.pause(), true);
  assert.equal(await sbx.pause(), false);
  await Sandbox.connect(sbx.sandboxId);
});

test('kill: the instance and the static form; killed sandboxes are not running', async () => {
  const a = await Sandbox.create();
  assert.equal(await a.kill(), true);
  assert.equal(await a.isRunning(), false, 'isRunning answers false for a killed sandbox');
  const b = await Sandbox.create();
  assert.equal(await Sandbox.kill(b.sandboxId), true);
  assert.equal(await Sandbox.kill(b.sandboxId), false, 'killing a killed sandbox answers false');
});

test('getHost(port) reaches a server in the sandbox', async () => {
  const sbx = await create();
  await sbx.files.write('/tmp/www/index.html', 'served from the sandbox\n');
  await sbx.commands.run('cd /tmp/www && python3 -m http.server 8000', { background: true });
  const host = sbx.getHost(8000);
  assert.equal(host.split('.')[0], `8000-${sbx.sandboxId}`);
  const res = await eventually(async () => {
    const r = await getViaHost(host, '/index.html');
    return r.status === 200 ? r : undefined;
  }, 30_000, `GET http://${host}/index.html to answer 200`);
  assert.equal(res.body, 'served from the sandbox\n');
});

test("another tenant's key sees nothing of this tenant's sandboxes", async () => {
  const sbx = await create({ metadata: { owner: 'first' } });
  const apiKey = process.env.WARREN_E2B_OTHER_API_KEY;
  assert.ok(apiKey, 'run.sh sets WARREN_E2B_OTHER_API_KEY');
  await assert.rejects(Sandbox.connect(sbx.sandboxId, { apiKey }), (e) => e.name === 'SandboxNotFoundError' || e.name === 'NotFoundError');
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { apiKey }), (e) => e.name === 'SandboxNotFoundError' || e.name === 'NotFoundError');
  assert.equal(await Sandbox.kill(sbx.sandboxId, { apiKey }), false);
  const theirs = await Sandbox.list({ apiKey }).nextItems();
  assert.ok(!theirs.some((s) => s.sandboxId === sbx.sandboxId));
  assert.equal(await sbx.isRunning(), true, 'still running after the other key tried to kill it');
});
