// sandbox.exec against a real server: one-shot runs, background processes
// with callbacks, iterators, stdin, signals, attach and list.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox, CommandHandle, ConnectionError, NotFoundError, TimeoutError } from '@warren-sh/sdk';
import { setup, eventually } from './harness.mjs';

const env = await setup();

describe('exec', { skip: env.skip }, () => {
  let sbx;
  before(async () => {
    sbx = await Sandbox.create({ ...env.opts, envs: { SANDBOX_WIDE: 'from-create' }, labels: { suite: 'exec' } });
  });
  after(async () => {
    await sbx?.kill();
  });

  it('runs a shell command in Debian', async () => {
    const result = await sbx.exec.run('cat /etc/os-release');
    assert.equal(result.exitCode, 0);
    assert.match(result.stdout, /Debian/);
    assert.equal(result.stderr, '');
    assert.equal(result.timedOut, false);
    assert.equal(typeof result.durationMs, 'number');
  });

  it('reports exit codes and signals as results, not errors', async () => {
    const failed = await sbx.exec.run('echo oops >&2; exit 7');
    assert.equal(failed.exitCode, 7);
    assert.equal(failed.stderr, 'oops\n');
    const killed = await sbx.exec.run('kill -9 $$');
    assert.equal(killed.exitCode, null);
    assert.equal(killed.signal, 9);
  });

  it('passes env (over the sandbox envs), cwd and stdin', async () => {
    const result = await sbx.exec.run('echo "$FOO $SANDBOX_WIDE"; pwd; cat', {
      env: { FOO: 'bar' },
      cwd: '/tmp',
      stdin: 'piped in',
    });
    assert.equal(result.stdout, 'bar from-create\n/tmp\npiped in');
    const e2b = await sbx.commands.run('echo $A$B', { envs: { A: '1', B: '2' }, env: { B: '3' } });
    assert.equal(e2b.stdout, '13\n');
  });

  it('execs an argv without a shell', async () => {
    const result = await sbx.exec.run(['printf', '%s|', 'a b', '$HOME']);
    assert.equal(result.stdout, 'a b|$HOME|');
  });

  it('kills a command at its timeout and truncates output', async () => {
    const slow = await sbx.exec.run('sleep 30', { timeoutMs: 300 });
    assert.equal(slow.timedOut, true);
    assert.ok(slow.durationMs < 10_000, `took ${slow.durationMs} ms`);
    const big = await sbx.exec.run('head -c 5000 /dev/zero | tr "\\000" a', { maxOutputBytes: 100 });
    assert.equal(big.stdout, 'a'.repeat(100));
    assert.equal(big.stdoutTruncated, true);
    assert.equal(big.stderrTruncated, false);
  });

  it('gives up waiting at requestTimeoutMs with a TimeoutError', async () => {
    await assert.rejects(sbx.exec.run('sleep 3', { requestTimeoutMs: 300 }), (err) => {
      assert.ok(err instanceof TimeoutError);
      assert.equal(err.code, 'timeout');
      return true;
    });
  });

  it('starts a background process and streams to callbacks', async () => {
    const out = [];
    const err = [];
    let exited;
    const handle = await sbx.exec.start('for i in 1 2 3; do echo line $i; sleep 0.1; done; echo done >&2; exit 4', {
      onStdout: (d) => out.push(d),
      onStderr: (d) => err.push(d),
      onExit: (r) => (exited = r),
    });
    assert.ok(handle instanceof CommandHandle);
    assert.match(handle.id, /^proc_/);
    assert.ok(handle.pid > 0);
    const result = await handle.wait();
    assert.equal(result.exitCode, 4);
    assert.equal(result.stdout, 'line 1\nline 2\nline 3\n');
    assert.equal(result.stderr, 'done\n');
    assert.equal(out.join(''), result.stdout);
    assert.equal(err.join(''), 'done\n');
    assert.deepEqual(exited, result);
    assert.equal(handle.exitCode, 4);
  });

  it('iterates output chunks in order with their streams', async () => {
    const handle = await sbx.exec.start(['sh', '-c', 'echo a; sleep 0.1; echo b >&2; sleep 0.1; printf "\\377\\376"']);
    const chunks = [];
    for await (const chunk of handle) chunks.push(chunk);
    const stdout = chunks.filter((c) => c.stream === 'stdout');
    assert.equal(stdout[0].text, 'a\n');
    assert.deepEqual([...stdout.at(-1).data], [0xff, 0xfe]);
    assert.equal(chunks.find((c) => c.stream === 'stderr').text, 'b\n');
    for (let i = 1; i < chunks.length; i++) {
      assert.equal(chunks[i].cursor, chunks[i - 1].cursor + chunks[i - 1].data.length);
    }
    assert.equal((await handle.wait()).exitCode, 0);
  });

  it('kills a process group with a signal', async () => {
    const handle = await sbx.exec.start('sleep 60 & sleep 60; echo never');
    assert.equal(await handle.kill(), true);
    const result = await handle.wait();
    assert.equal(result.exitCode, null);
    assert.equal(result.signal, 9);
    assert.equal(result.stdout, '');
    assert.equal(await handle.kill('SIGTERM'), false, 'an exited process is not signalled');
    const ps = await sbx.exec.run('ps -eo comm | grep -c "^sleep$" || true');
    assert.equal(ps.stdout.trim(), '0', 'the background sleep died with its group');
  });

  it('writes stdin and closes it', async () => {
    const handle = await sbx.exec.start('cat; echo end');
    await handle.sendStdin('hello ');
    await handle.sendStdin(new Uint8Array([0x77, 0x6f, 0x72, 0x6c, 0x64, 0x0a]));
    await handle.closeStdin();
    const result = await handle.wait();
    assert.equal(result.stdout, 'hello world\nend\n');
  });

  it('attaches by id or pid and lists processes', async () => {
    const handle = await sbx.exec.start('echo ready; read line; echo got $line');
    await eventually(() => handle.stdout.includes('ready'), 10_000, 'first output');
    const listed = await sbx.exec.list();
    const mine = listed.find((p) => p.id === handle.id);
    assert.ok(mine, 'the process is listed');
    assert.equal(mine.state, 'running');
    assert.equal(mine.pid, handle.pid);
    assert.equal(mine.cmd, 'echo ready; read line; echo got $line');
    assert.ok(mine.startedAt instanceof Date);
    const byId = await sbx.exec.attach(handle.id);
    const byPid = await sbx.exec.attach(handle.pid);
    assert.equal(byPid.id, handle.id);
    await sbx.exec.sendStdin(handle.pid, 'x\n');
    for (const h of [handle, byId, byPid]) {
      const result = await h.wait();
      assert.equal(result.stdout, 'ready\ngot x\n');
    }
    const info = await sbx.exec.get(handle.id);
    assert.equal(info.state, 'exited');
    assert.equal(info.exitCode, 0);
    assert.ok(info.exitedAt instanceof Date);
  });

  it('disconnects without killing, and reattaches', async () => {
    const handle = await sbx.exec.start('sleep 30');
    handle.disconnect();
    await assert.rejects(handle.wait(), ConnectionError);
    assert.equal((await sbx.exec.get(handle.id)).state, 'running');
    const again = await sbx.exec.attach(handle.id);
    assert.equal(await sbx.exec.kill(handle.id, 'SIGTERM'), true);
    assert.equal((await again.wait()).signal, 15);
  });

  it('runs on a terminal when asked', async () => {
    const handle = await sbx.exec.start('tty; stty size', { tty: true, cols: 90, rows: 33 });
    const result = await handle.wait();
    assert.match(result.stdout, /\/dev\/pts\/\d+\r?\n33 90/);
  });

  it('answers unknown processes with process_not_found', async () => {
    await assert.rejects(sbx.exec.attach('proc_doesnotexist0000000'), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.code, 'process_not_found');
      assert.equal(err.status, 404);
      return true;
    });
    await assert.rejects(sbx.exec.kill(999_999), (err) => err instanceof NotFoundError && err.code === 'process_not_found');
  });
});
