// sandbox.pty against a real server: a shell on a terminal over the
// WebSocket attach, typed input, resizes, reattaching and ending sessions.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, InvalidRequestError, NotFoundError, PtyHandle } from '@warren-sh/sdk';
import { setup, eventually } from './harness.mjs';

const env = await setup();

/** Collects a terminal's output as text. */
function screen() {
  const decoder = new TextDecoder();
  const out = { text: '', onData: (data) => (out.text += decoder.decode(data, { stream: true })) };
  return out;
}

describe('pty', { skip: env.skip }, () => {
  let sbx;
  before(async () => {
    sbx = await Sandbox.create(env.opts);
  });
  after(async () => {
    await sbx?.kill();
  });

  it('echoes typed commands through the terminal', async () => {
    const term = screen();
    const pty = await sbx.pty.create({ cols: 80, rows: 24, onData: term.onData });
    assert.ok(pty instanceof PtyHandle);
    assert.match(pty.id, /^proc_/);
    pty.send('echo hello-$((6*7))\n');
    await eventually(() => term.text.includes('hello-42'), 15_000, `hello-42 on the screen (got ${JSON.stringify(term.text)})`);
    assert.ok(term.text.includes('echo hello-$((6*7))'), 'the terminal echoes what is typed');
    pty.send('exit 3\n');
    assert.deepEqual(await pty.wait(), { exitCode: 3, signal: null });
  });

  it('starts at the asked size and resizes', async () => {
    const term = screen();
    const pty = await sbx.pty.create({ cols: 100, rows: 30, onData: term.onData });
    pty.send('stty size\n');
    await eventually(() => term.text.includes('30 100'), 15_000, `30 100 (got ${JSON.stringify(term.text)})`);
    pty.resize({ cols: 132, rows: 43 });
    pty.send('stty size\n');
    await eventually(() => term.text.includes('43 132'), 15_000, `43 132 after resize (got ${JSON.stringify(term.text)})`);
    const result = await pty.close();
    assert.ok(result.signal !== null || result.exitCode !== null, 'close() ends the session');
  });

  it('runs a given command and iterates its output', async () => {
    const pty = await sbx.pty.create({ cmd: ['/bin/sh', '-c', 'read x; echo "got:$x"'], cols: 40, rows: 10 });
    pty.send(new TextEncoder().encode('abc\r'));
    let text = '';
    for await (const data of pty) {
      text += new TextDecoder().decode(data);
      if (text.includes('got:abc')) break;
    }
    assert.match(text, /got:abc/);
    assert.equal((await pty.wait()).exitCode, 0);
  });

  it('disconnects and reconnects, replaying the output', async () => {
    const first = screen();
    const pty = await sbx.pty.create({ onData: first.onData });
    pty.send('echo before-$((1+1))\n');
    await eventually(() => first.text.includes('before-2'), 15_000, 'output before disconnecting');
    pty.disconnect();
    await assert.rejects(pty.wait());
    const second = screen();
    const again = await sbx.pty.connect(pty.id, { onData: second.onData });
    await eventually(() => second.text.includes('before-2'), 15_000, 'replayed output');
    again.send('echo after-$((2+2))\n');
    await eventually(() => second.text.includes('after-4'), 15_000, 'output after reconnecting');
    again.kill('SIGKILL');
    assert.deepEqual(await again.wait(), { exitCode: null, signal: 9 });
  });

  it('uses a WebSocket class given in the options', async () => {
    const { WebSocket } = await import('ws');
    let opened = 0;
    class Counting extends WebSocket {
      constructor(url) {
        super(url);
        opened++;
      }
    }
    const same = await Sandbox.connect(sbx.sandboxId, { ...env.opts, WebSocket: Counting });
    const term = screen();
    const pty = await same.pty.create({ cmd: 'echo via-$((3*3))', onData: term.onData });
    assert.equal((await pty.wait()).exitCode, 0);
    assert.match(term.text, /via-9/);
    assert.equal(opened, 1);
  });

  it('delivers the exit of every short command (100 in a row)', async () => {
    // A short command's output, exit frame and close can reach the client in
    // the same segment as the handshake's answer; none of it may be lost.
    for (let i = 0; i < 100; i++) {
      const term = screen();
      const pty = await sbx.pty.create({ cmd: `echo short-${i}; exit ${i % 7}`, onData: term.onData });
      const result = await pty.wait();
      assert.deepEqual(result, { exitCode: i % 7, signal: null }, `command ${i}`);
      assert.match(term.text, new RegExp(`short-${i}`), `output of command ${i}`);
    }
  });

  it('refuses to connect to unknown or non-terminal processes', async () => {
    await assert.rejects(sbx.pty.connect('proc_doesnotexist0000000'), (err) => err instanceof NotFoundError && err.code === 'process_not_found');
    const plain = await sbx.exec.start('sleep 30');
    await assert.rejects(sbx.pty.connect(plain.id), InvalidRequestError);
    await plain.kill();
  });
});
