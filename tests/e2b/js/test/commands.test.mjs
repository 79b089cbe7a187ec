// sandbox.commands through the `e2b` SDK: foreground, background, stdin,
// kill, env, cwd, user, timeout, streaming callbacks, list and connect.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandExitError, TimeoutError } from 'e2b';
import { create, eventually, sleep } from './helpers.mjs';

let sbx;
before(async () => {
  sbx = await create();
});

test('foreground: stdout, stderr and the exit code', async () => {
  const r = await sbx.commands.run('echo out; echo err >&2');
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
});

test('a non-zero exit raises CommandExitError with the output', async () => {
  await assert.rejects(sbx.commands.run('echo partial; exit 3'), (e) => {
    assert.ok(e instanceof CommandExitError, `${e.name}: ${e.message}`);
    assert.equal(e.exitCode, 3);
    assert.equal(e.stdout, 'partial\n');
    return true;
  });
});

test('env vars, cwd, and the default user', async () => {
  const r = await sbx.commands.run('echo "$A-$B"; pwd; whoami; echo "$HOME"', {
    envs: { A: 'one', B: 'two' },
    cwd: '/tmp',
  });
  assert.equal(r.stdout, 'one-two\n/tmp\nuser\n/home/user\n');
});

test('user: root and user', async () => {
  assert.equal((await sbx.commands.run('whoami', { user: 'root' })).stdout, 'root\n');
  assert.equal((await sbx.commands.run('whoami', { user: 'user' })).stdout, 'user\n');
  assert.equal((await sbx.commands.run('id -u', { user: 'root' })).stdout, '0\n');
  assert.equal((await sbx.commands.run('sudo -n whoami')).stdout, 'root\n', 'user has passwordless sudo');
});

test('streaming callbacks see the output as it comes', async () => {
  const out = [];
  const err = [];
  const started = Date.now();
  let firstAt;
  const r = await sbx.commands.run('echo one; sleep 1; echo two >&2; sleep 1; echo three', {
    onStdout: (d) => {
      firstAt ??= Date.now() - started;
      out.push(d);
    },
    onStderr: (d) => err.push(d),
  });
  assert.equal(out.join(''), 'one\nthree\n');
  assert.equal(err.join(''), 'two\n');
  assert.equal(r.stdout, 'one\nthree\n');
  assert.ok(firstAt < 1500, `the first line arrived before the command ended (${firstAt} ms)`);
});

test('background: handle, list, wait', async () => {
  const h = await sbx.commands.run('sleep 1; echo done', { background: true });
  assert.ok(h.pid > 0);
  const listed = await sbx.commands.list();
  assert.ok(listed.some((p) => p.pid === h.pid), 'the running command is listed');
  const r = await h.wait();
  assert.equal(r.stdout, 'done\n');
  assert.equal(r.exitCode, 0);
});

test('stdin: sendStdin and closeStdin', async () => {
  const h = await sbx.commands.run('cat', { background: true, stdin: true });
  await h.sendStdin('first line\n');
  await sbx.commands.sendStdin(h.pid, 'second line\n');
  await h.closeStdin();
  const r = await h.wait();
  assert.equal(r.stdout, 'first line\nsecond line\n');
});

test('kill: the handle and by pid', async () => {
  const a = await sbx.commands.run('sleep 600', { background: true });
  assert.equal(await a.kill(), true);
  await assert.rejects(a.wait(), (e) => e instanceof CommandExitError);
  const b = await sbx.commands.run('sleep 600', { background: true });
  assert.equal(await sbx.commands.kill(b.pid), true);
  await eventually(async () => !(await sbx.commands.list()).some((p) => p.pid === b.pid), 10_000, 'the process to go');
  assert.equal(await sbx.commands.kill(b.pid), false, 'killing a gone process answers false');
});

test('connect to a running command gets its later output', async () => {
  const h = await sbx.commands.run('sleep 1; echo later', { background: true });
  const seen = [];
  const again = await sbx.commands.connect(h.pid, { onStdout: (d) => seen.push(d) });
  const r = await again.wait();
  assert.equal(r.stdout, 'later\n');
  assert.equal(seen.join(''), 'later\n');
});

test('timeoutMs: a command past it raises TimeoutError', async () => {
  const started = Date.now();
  await assert.rejects(sbx.commands.run('sleep 30', { timeoutMs: 2_000 }), (e) => {
    assert.ok(e instanceof TimeoutError, `${e.name}: ${e.message}`);
    return true;
  });
  assert.ok(Date.now() - started < 15_000);
  await sleep(0);
});
