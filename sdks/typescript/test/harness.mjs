// Test harness: a real `warren server` for the tests to talk to.
//
// scripts/run-tests.mjs starts one server for the whole run and passes it
// down as WARREN_TEST_URL / WARREN_TEST_API_KEY; a test file run on its own
// (node --test test/exec.test.mjs) starts its own. The server runs on a
// fresh temporary state directory with its own cgroup parent, and stopping
// it deletes every sandbox it still has, stops it by pid, unmounts what it
// mounted under the state directory and removes the directory.
//
// Tests are skipped only when the binary has no `server` subcommand.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, rmdirSync, readdirSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
/** The SDK's directory. */
export const SDK_ROOT = resolve(here, '..');

/** The warren binary under test. */
export function warrenBinary() {
  return resolve(process.env.WARREN_BIN ?? join(SDK_ROOT, '..', '..', 'target', 'debug', 'warren'));
}

/** Why server tests cannot run, or `undefined` when they can. */
export function serverSkipReason() {
  const bin = warrenBinary();
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: build it with \`cargo build -p warren\` or set WARREN_BIN`);
  }
  const help = spawnSync(bin, ['server', '--help'], { encoding: 'utf8' });
  if (help.status !== 0) {
    return `${bin} has no \`server\` subcommand yet (warren server --help exited ${help.status})`;
  }
  return undefined;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForHealth(url, child, logPath, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`warren server exited with ${child.exitCode}:\n${tail(logPath)}`);
    }
    try {
      const res = await fetch(`${url}/v1/health`);
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new Error(`warren server did not answer /v1/health within ${timeoutMs} ms:\n${tail(logPath)}`);
}

function tail(path, lines = 40) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir) {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p) => p && (p === dir || p.startsWith(dir + '/')))
    .map((p) => p.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Starts `warren server` on a free port and waits until it answers.
 * Returns `{url, apiKey, stop, logPath}`.
 *
 * Options: `stateDir`, a state directory kept across runs (its templates
 * too: stopping unmounts what the server mounted there but removes only
 * the temporary directory with the log), else a fresh one that stopping
 * removes; `name`, the prefix of the temporary directory and the cgroup
 * parent; `args`, more arguments to `warren server`.
 */
export async function startServer(options = {}) {
  const bin = warrenBinary();
  const name = options.name ?? 'warren-sdk-ts';
  const root = mkdtempSync(join(tmpdir(), `${name}-`));
  // mkdtemp makes it 0700; the sandboxes' mapped root must be able to
  // traverse it to reach their disks in the pool below.
  chmodSync(root, 0o755);
  const stateDir = options.stateDir ?? join(root, 'state');
  const logPath = join(root, 'server.log');
  const apiKey = `test-admin-${randomBytes(16).toString('hex')}`;
  const cgroupParent = `${name}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const help = spawnSync(bin, ['server', '--help'], { encoding: 'utf8' }).stdout;
  const args = ['server', '--listen', '127.0.0.1:0', '--state-dir', stateDir, ...(options.args ?? [])];
  // Two servers on one machine must not share a cgroup parent, or each
  // takes the other's sandboxes for orphans.
  if (help.includes('--cgroup-parent')) args.push('--cgroup-parent', cgroupParent);
  const log = openSync(logPath, 'a');
  const child = spawn(bin, args, {
    env: { ...process.env, WARREN_ADMIN_KEY: apiKey, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    stdio: ['ignore', 'pipe', log],
  });
  closeSync(log);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopServer({ child, url, apiKey, root, stateDir, cgroupParent, keepState: options.stateDir !== undefined });
  };

  let url;
  try {
    url = await new Promise((resolveUrl, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`warren server printed no address:\n${tail(logPath)}`)), 60_000);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const match = out.match(/listening on (http:\/\/\S+)/);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`warren server exited with ${code}:\n${tail(logPath)}`));
      });
    });
    // Keep draining stdout so the server never blocks on a full pipe.
    child.stdout.resume();
    await waitForHealth(url, child, logPath, 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, apiKey, stop, logPath };
}

async function deleteAllSandboxes(url, apiKey) {
  const headers = { authorization: `Bearer ${apiKey}` };
  for (let round = 0; round < 5; round++) {
    const res = await fetch(`${url}/v1/sandboxes?limit=1000`, { headers });
    if (!res.ok) return;
    const { items } = await res.json();
    if (items.length === 0) return;
    await Promise.all(items.map((s) => fetch(`${url}/v1/sandboxes/${s.id}`, { method: 'DELETE', headers })));
    await sleep(200);
  }
}

async function stopServer({ child, url, apiKey, root, stateDir, cgroupParent, keepState }) {
  if (url && child.exitCode === null) {
    // The server leaves sandboxes running when it stops: delete them first.
    await deleteAllSandboxes(url, apiKey).catch(() => undefined);
  }
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  for (const point of mountsUnder(stateDir)) {
    spawnSync('umount', [point]);
    if (mountsUnder(point).includes(point)) spawnSync('umount', ['-l', point]);
  }
  if (keepState) {
    if (mountsUnder(stateDir).length > 0) console.error(`${stateDir} is still mounted`);
    rmSync(root, { recursive: true, force: true });
  } else if (mountsUnder(stateDir).length === 0) rmSync(root, { recursive: true, force: true });
  else console.error(`leaving ${root}: still mounted`);
  // Empty cgroups the server made under its parent (rmdir only removes empty ones).
  for (const controller of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
    const dir = join('/sys/fs/cgroup', controller.name, cgroupParent);
    if (!existsSync(dir)) continue;
    const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
    for (const sub of children) {
      try {
        rmdirSync(join(dir, sub.name));
      } catch {
        // Still in use: leave it.
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      // Still in use: leave it.
    }
  }
}

/**
 * Creates and deletes one sandbox, so the base template is built (by
 * debootstrap, minutes on a fresh state directory) before tests time anything.
 */
export async function warmUp(url, apiKey) {
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  const res = await fetch(`${url}/v1/sandboxes`, {
    method: 'POST',
    headers,
    body: '{}',
    signal: AbortSignal.timeout(20 * 60_000),
  });
  if (res.status !== 201) throw new Error(`warm-up create answered ${res.status}: ${await res.text()}`);
  const { id } = await res.json();
  await fetch(`${url}/v1/sandboxes/${id}`, { method: 'DELETE', headers });
}

let shared;

/**
 * The server of this test file: `{skip}` with a reason when server tests
 * cannot run, else `{skip: false, url, apiKey, opts}` where `opts` are the
 * SDK's connection options for it.
 */
export async function setup() {
  shared ??= (async () => {
    if (process.env.WARREN_TEST_URL) {
      const url = process.env.WARREN_TEST_URL;
      const apiKey = process.env.WARREN_TEST_API_KEY;
      return { skip: false, url, apiKey, opts: { apiUrl: url, apiKey } };
    }
    const reason = serverSkipReason();
    if (reason) return { skip: reason };
    const server = await startServer();
    after(() => server.stop());
    await warmUp(server.url, server.apiKey);
    return { skip: false, url: server.url, apiKey: server.apiKey, opts: { apiUrl: server.url, apiKey: server.apiKey } };
  })();
  return shared;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually(check, timeoutMs = 10_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(50);
  }
  throw new Error(`${what} not met within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}
