// Sandbox.events() against a real server: a tenant's stream sees its own
// sandbox's changes in order, the admin's sees them with the tenant, the
// filter keeps one sandbox, an AbortSignal ends the iteration by throwing
// its reason, and close() ends it quietly.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Admin, Sandbox, SandboxEvents } from '@warren-sh/sdk';
import { setup } from './harness.mjs';

const env = await setup();

/** States of a create: `creating` first unless the warm pool served it (then `running` at once). */
const created = (states) => (states[0] === 'creating' ? states.slice(1) : states);

/** The states of `id` from `events`, until `last`. */
async function statesUntil(events, id, last) {
  const states = [];
  for await (const event of events) {
    assert.equal(event.type, 'sandbox');
    if (event.sandboxId !== id) continue;
    assert.ok(event.time instanceof Date && !Number.isNaN(event.time.getTime()));
    states.push(event);
    if (event.state === last) break;
  }
  return states;
}

describe('events', { skip: env.skip }, () => {
  let tenantOpts;
  let tenantId;
  before(async () => {
    const admin = new Admin(env.opts);
    const tenant = await admin.createTenant({ name: `sdk-ts-ev-${randomBytes(4).toString('hex')}` });
    tenantId = tenant.id;
    tenantOpts = { apiUrl: env.url, apiKey: (await admin.createKey(tenant.id)).key };
  });

  it('follows a sandbox from create to destroyed, for its tenant and the admin', async () => {
    const mine = await Sandbox.events(tenantOpts);
    const all = await Sandbox.events(env.opts);
    assert.ok(mine instanceof SandboxEvents);
    const sbx = await Sandbox.create(tenantOpts);
    const only = await Sandbox.events({ ...tenantOpts, sandboxIds: [sbx.sandboxId] });
    await sbx.stop();
    assert.equal(await sbx.kill(), true);

    const states = await statesUntil(mine, sbx.sandboxId, 'destroyed');
    assert.deepEqual(created(states.map((e) => e.state)), ['running', 'stopped', 'destroyed']);
    assert.ok(states.every((e) => e.tenantId === undefined), 'a tenant is not shown owners');
    const seen = await statesUntil(all, sbx.sandboxId, 'destroyed');
    assert.deepEqual(
      seen.map((e) => e.state),
      states.map((e) => e.state),
    );
    assert.ok(seen.every((e) => e.tenantId === tenantId));
    const filtered = await statesUntil(only, sbx.sandboxId, 'destroyed');
    assert.deepEqual(filtered.map((e) => e.state), ['stopped', 'destroyed']);
    for (const stream of [mine, all, only]) stream.close();
  });

  it('ends on an AbortSignal (throwing its reason) and on close()', async () => {
    const stop = new AbortController();
    const events = await Sandbox.events({ ...tenantOpts, signal: stop.signal });
    const reason = new Error('enough');
    setTimeout(() => stop.abort(reason), 200);
    await assert.rejects(
      (async () => {
        for await (const _ of events) {
          // Nothing happens to this tenant's sandboxes meanwhile.
        }
      })(),
      (err) => err === reason,
    );
    const closing = await Sandbox.events(tenantOpts);
    setTimeout(() => closing.close(), 200);
    const got = [];
    for await (const event of closing) got.push(event);
    assert.deepEqual(got, []);
  });
});
