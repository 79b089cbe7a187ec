// `npm test`: one real `warren server` for the whole run, then every test
// file under test/ with node's test runner, one file at a time (2 cores,
// real sandboxes). The server is stopped and its state removed afterwards,
// whatever happened.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SDK_ROOT, serverSkipReason, startServer, warmUp } from '../test/harness.mjs';

const files = readdirSync(join(SDK_ROOT, 'test'))
  .filter((f) => f.endsWith('.test.mjs'))
  .sort()
  .map((f) => join('test', f));

const tailOf = (path) => readFileSync(path, 'utf8').split('\n').slice(-40).join('\n');

const env = { ...process.env };
let server;
const reason = serverSkipReason();
if (reason) {
  console.log(`# server tests will be skipped: ${reason}`);
} else {
  server = await startServer();
  console.log(`# warren server at ${server.url} (log: ${server.logPath})`);
  const stopAndExit = async (code) => {
    await server.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => stopAndExit(130));
  process.once('SIGTERM', () => stopAndExit(143));
  try {
    const started = Date.now();
    await warmUp(server.url, server.apiKey);
    console.log(`# base template ready in ${Math.round((Date.now() - started) / 1000)} s`);
  } catch (err) {
    console.error(`# warm-up failed; the server's log ends with:\n${tailOf(server.logPath)}`);
    await server.stop();
    throw err;
  }
  env.WARREN_TEST_URL = server.url;
  env.WARREN_TEST_API_KEY = server.apiKey;
}

// One file at a time (each makes real sandboxes), and no test may hang
// forever; older Node versions lack these flags and run with their defaults.
const [major, minor] = process.versions.node.split('.').map(Number);
const flags = [];
if (major > 20 || (major === 20 && minor >= 10)) flags.push('--test-concurrency=1');
if (major > 20 || (major === 20 && minor >= 11)) flags.push('--test-timeout=300000');

const code = await new Promise((resolveCode) => {
  const runner = spawn(process.execPath, ['--test', ...flags, ...files], {
    cwd: SDK_ROOT,
    env,
    stdio: 'inherit',
  });
  runner.on('exit', (status, signal) => resolveCode(status ?? (signal ? 1 : 0)));
});
await server?.stop();
process.exit(code);
