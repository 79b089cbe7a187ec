// Tenants, keys and templates against a real server: a tenant's key sees
// only its sandboxes, admin routes refuse it, quotas and revocation give
// their typed errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Admin, AuthError, ConflictError, ForbiddenError, NotFoundError, RateLimitError, Sandbox, Templates } from '@warren-sh/sdk';
import { setup } from './harness.mjs';

const env = await setup();

describe('tenants, keys and templates', { skip: env.skip }, () => {
  const created = [];
  let admin;
  let tenant;
  let key;
  let tenantOpts;
  before(async () => {
    admin = new Admin(env.opts);
    tenant = await admin.createTenant({ name: `sdk-ts-${randomBytes(4).toString('hex')}`, maxSandboxes: 1 });
    key = await admin.createKey(tenant.id);
    tenantOpts = { apiUrl: env.url, apiKey: key.key };
  });
  after(async () => {
    await Promise.all(created.map((s) => Sandbox.kill(s.sandboxId, env.opts)));
  });

  it('creates tenants and keys, and lists them', async () => {
    assert.match(tenant.id, /^ten_/);
    assert.equal(tenant.maxSandboxes, 1);
    assert.ok(tenant.createdAt instanceof Date);
    assert.match(key.id, /^key_/);
    assert.equal(key.tenantId, tenant.id);
    assert.ok(key.key.length >= 32);
    assert.ok((await admin.listTenants()).some((t) => t.id === tenant.id));
    assert.equal((await admin.getTenant(tenant.id)).name, tenant.name);
    const keys = await admin.listKeys(tenant.id);
    assert.deepEqual(keys.map((k) => k.id), [key.id]);
    assert.ok(key.key.startsWith(keys[0].prefix));
    await assert.rejects(admin.createTenant({ name: tenant.name }), ConflictError);
    await assert.rejects(admin.getTenant('ten_doesnotexist00000000'), (err) => err instanceof NotFoundError && err.code === 'tenant_not_found');
  });

  it('creates tenants with every quota and enforces the disk one', async () => {
    const quotaed = await admin.createTenant({
      name: `sdk-ts-q-${randomBytes(4).toString('hex')}`,
      maxTotalSandboxes: 5,
      maxMemoryMb: 4096,
      maxCpus: 2.5,
      maxDiskMb: 3000,
    });
    assert.deepEqual(
      [quotaed.maxSandboxes, quotaed.maxTotalSandboxes, quotaed.maxMemoryMb, quotaed.maxCpus, quotaed.maxDiskMb],
      [null, 5, 4096, 2.5, 3000],
    );
    assert.equal((await admin.getTenant(quotaed.id)).maxDiskMb, 3000);
    const opts = { apiUrl: env.url, apiKey: (await admin.createKey(quotaed.id)).key };
    const sbx = await Sandbox.create({ ...opts, resources: { diskMb: 2000 } });
    created.push(sbx);
    assert.equal((await sbx.getInfo()).resources.diskMb, 2000);
    await assert.rejects(Sandbox.create({ ...opts, resources: { diskMb: 1001 } }), (err) => {
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.code, 'quota_exceeded');
      assert.match(err.message, /max_disk_mb/);
      return true;
    });
  });

  it("isolates a tenant's sandboxes and enforces its quota", async () => {
    const mine = await Sandbox.create({ ...tenantOpts, labels: { who: 'tenant' } });
    created.push(mine);
    assert.equal((await mine.getInfo()).tenantId, tenant.id);
    assert.equal((await mine.exec.run('echo tenant')).stdout, 'tenant\n');

    const theirs = await Sandbox.create({ ...env.opts, labels: { who: 'admin' } });
    created.push(theirs);
    await assert.rejects(Sandbox.connect(theirs.sandboxId, tenantOpts), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'sandbox_not_found', "another owner's sandbox looks like a missing one");
      return true;
    });
    const listed = await Sandbox.list(tenantOpts).all();
    assert.deepEqual(listed.map((s) => s.sandboxId), [mine.sandboxId]);
    const adminView = await Sandbox.list({ ...env.opts, tenant: tenant.id }).all();
    assert.deepEqual(adminView.map((s) => s.sandboxId), [mine.sandboxId]);

    await assert.rejects(Sandbox.create(tenantOpts), (err) => {
      assert.ok(err instanceof RateLimitError);
      assert.equal(err.code, 'quota_exceeded');
      assert.equal(err.status, 429);
      return true;
    });
  });

  it('refuses admin routes to tenant keys, and revoked keys', async () => {
    await assert.rejects(new Admin(tenantOpts).listTenants(), (err) => {
      assert.ok(err instanceof ForbiddenError);
      assert.equal(err.code, 'forbidden');
      assert.equal(err.status, 403);
      return true;
    });
    const spare = await admin.createKey(tenant.id);
    const spareOpts = { apiUrl: env.url, apiKey: spare.key };
    assert.ok(Array.isArray(await Sandbox.list(spareOpts).all()));
    await admin.revokeKey(spare.id);
    await assert.rejects(Sandbox.list(spareOpts).nextItems(), (err) => err instanceof AuthError && err.code === 'unauthorized');
  });

  it('lists templates', async () => {
    const templates = await Templates.list(env.opts);
    const base = templates.find((t) => t.name === 'base');
    assert.ok(base, `base among ${templates.map((t) => t.name)}`);
    assert.equal(typeof base.workdir, 'string');
    await assert.rejects(Templates.delete('base', tenantOpts), ForbiddenError);
    await assert.rejects(Templates.delete('no-such-template', env.opts), (err) => err.code === 'template_not_found');
  });
});
