// sandbox.pty through the `e2b` SDK: create, sendInput, resize, kill.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, eventually } from './helpers.mjs';

const enc = new TextEncoder();

test('pty: a shell that echoes input, sees a resize, and is killed', async () => {
  const sbx = await create();
  const dec = new TextDecoder();
  let screen = '';
  const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => (screen += dec.decode(d, { stream: true })) });
  assert.ok(term.pid > 0);

  await sbx.pty.sendInput(term.pid, enc.encode('echo "tty:$(tty | cut -c1-8) user:$(whoami)"; stty size\n'));
  await eventually(() => screen.includes('tty:/dev/pts'), 15_000, 'the shell to answer');
  assert.match(screen, /user:user/);
  await eventually(() => /24 80/.test(screen), 10_000, 'stty size 24 80');

  await sbx.pty.resize(term.pid, { cols: 120, rows: 40 });
  await sbx.pty.sendInput(term.pid, enc.encode('stty size\n'));
  await eventually(() => /40 120/.test(screen), 10_000, 'stty size 40 120 after resize');

  assert.equal(await sbx.pty.kill(term.pid), true);
  await assert.rejects(term.wait());
  await eventually(async () => !(await sbx.commands.list()).some((p) => p.pid === term.pid), 10_000, 'the pty to go');
});

test('pty as root with envs and cwd; exit ends it', async () => {
  const sbx = await create();
  let screen = '';
  const dec = new TextDecoder();
  const term = await sbx.pty.create({
    cols: 80,
    rows: 24,
    user: 'root',
    cwd: '/tmp',
    envs: { PTY_VAR: 'pty-value' },
    onData: (d) => (screen += dec.decode(d, { stream: true })),
  });
  await sbx.pty.sendInput(term.pid, enc.encode('echo "$(whoami):$(pwd):$PTY_VAR"; exit 0\n'));
  const r = await term.wait();
  assert.equal(r.exitCode, 0);
  assert.match(screen, /root:\/tmp:pty-value/);
});
