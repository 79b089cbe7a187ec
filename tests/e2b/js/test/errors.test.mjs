// Bad input through the E2B routes raises the SDK's usual errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthenticationError,
  InvalidArgumentError,
  NotFoundError,
  Sandbox,
  SandboxError,
  TimeoutError,
} from 'e2b';
import { create } from './helpers.mjs';

const isA = (cls) => (e) => {
  assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.name}: ${e.message}`);
  return true;
};

test('an unknown sandbox: NotFoundError on connect, getInfo, setTimeout; kill answers false', async () => {
  const id = 'aaaaaaaaaaaaaaaaaaaa'; // well formed, never issued
  await assert.rejects(Sandbox.connect(id), isA(NotFoundError));
  await assert.rejects(Sandbox.getInfo(id), isA(NotFoundError));
  await assert.rejects(Sandbox.setTimeout(id, 60_000), isA(NotFoundError));
  assert.equal(await Sandbox.kill(id), false);
});

test('a killed sandbox: NotFoundError on connect; its commands fail', async () => {
  const sbx = await Sandbox.create();
  await sbx.kill();
  await assert.rejects(Sandbox.connect(sbx.sandboxId), isA(NotFoundError));
  await assert.rejects(sbx.commands.run('true'), (e) => {
    assert.ok(e instanceof SandboxError, `${e.name}: ${e.message}`);
    return true;
  });
});

test('a bad key: AuthenticationError', async () => {
  const wrong = `e2b_${'ab'.repeat(32)}`;
  await assert.rejects(Sandbox.create({ apiKey: wrong }), isA(AuthenticationError));
  await assert.rejects(Sandbox.list({ apiKey: wrong }).nextItems(), isA(AuthenticationError));
});

test('an unknown template: an error with status 4xx', async () => {
  await assert.rejects(Sandbox.create('no-such-template-here'), (e) => {
    assert.ok(e instanceof SandboxError, `${e.name}: ${e.message}`);
    assert.ok(e.statusCode >= 400 && e.statusCode < 500, `status ${e.statusCode}`);
    return true;
  });
});

test('invalid arguments in the sandbox: InvalidArgumentError', async () => {
  const sbx = await create();
  await sbx.files.write('/tmp/a-file', 'x');
  await assert.rejects(sbx.files.list('/tmp/a-file'), isA(InvalidArgumentError));
  await assert.rejects(sbx.files.makeDir('/tmp/a-file/sub'), isA(SandboxError));
});

test('a wrong envd access token is refused', async () => {
  const sbx = await create();
  // The same sandbox with another access token (the constructor Sandbox.connect
  // uses, given a wrong token): the sandbox plane refuses it.
  const other = new Sandbox({
    sandboxId: sbx.sandboxId,
    envdAccessToken: 'not-the-token',
    envdVersion: '0.6.4',
  });
  await assert.rejects(other.commands.run('true'), isA(AuthenticationError));
});

test('a request past its requestTimeoutMs: TimeoutError', async () => {
  const sbx = await create();
  await assert.rejects(sbx.commands.run('sleep 20', { timeoutMs: 1_000 }), isA(TimeoutError));
});
