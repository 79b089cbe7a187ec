// Users and key formats against a real server: commands, background
// processes and terminals as `base`'s `user` (its uid, home and sudo), and
// API keys in E2B's form.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Admin, InvalidRequestError, Sandbox } from '@warren-sh/sdk';
import { setup, eventually } from './harness.mjs';

const env = await setup();

describe('users', { skip: env.skip }, () => {
  let sbx;
  before(async () => {
    sbx = await Sandbox.create(env.opts);
  });
  after(async () => {
    await sbx?.kill();
  });

  it('runs a command as a user, with its home and passwordless sudo', async () => {
    const result = await sbx.exec.run('id -un; echo $HOME; sudo -n id -u', { user: 'user', cwd: '/home/user' });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, 'user\n/home/user\n0\n');
    assert.equal(result.stderr, '');
    assert.equal((await sbx.commands.run('id -u')).stdout, '0\n', 'root by default');
    await assert.rejects(sbx.exec.run('true', { user: 'nobody-here' }), InvalidRequestError);
  });

  it('starts a background process as a user', async () => {
    const handle = await sbx.exec.start(['id', '-u'], { user: '1000' });
    const result = await handle.wait();
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, '1000\n');
  });

  it('opens a terminal as a user', async () => {
    const decoder = new TextDecoder();
    let text = '';
    const pty = await sbx.pty.create({
      cmd: 'echo "i am $(id -un) in $PWD"; exit 5',
      user: 'user',
      cwd: '/home/user',
      onData: (data) => (text += decoder.decode(data, { stream: true })),
    });
    assert.deepEqual(await pty.wait(), { exitCode: 5, signal: null });
    await eventually(() => text.includes('i am user in /home/user'), 5_000, `the greeting (got ${JSON.stringify(text)})`);
  });
});

describe('key formats', { skip: env.skip }, () => {
  it("makes keys in E2B's form that work as Warren keys", async () => {
    const admin = new Admin(env.opts);
    const tenant = await admin.createTenant({ name: `sdk-ts-e2b-${randomBytes(4).toString('hex')}` });
    const e2b = await admin.createKey(tenant.id, { format: 'e2b' });
    assert.match(e2b.key, /^e2b_[0-9a-f]{64}$/);
    assert.equal(e2b.tenantId, tenant.id);
    const warren = await admin.createKey(tenant.id, { format: 'warren' });
    assert.match(warren.key, /^wsk_/);
    assert.match((await admin.createKey(tenant.id)).key, /^wsk_/);
    const sbx = await Sandbox.create({ apiUrl: env.url, apiKey: e2b.key });
    try {
      assert.equal((await sbx.getInfo()).tenantId, tenant.id);
      assert.equal((await sbx.exec.run('echo ok')).stdout, 'ok\n');
    } finally {
      await sbx.kill();
    }
    await assert.rejects(admin.createKey(tenant.id, { format: 'nope' }), InvalidRequestError);
  });
});
