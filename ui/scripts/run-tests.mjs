// `npm test`: one real `warren server` for the whole run (the SDK's test
// harness, reused), then every test file under test/ with node's test
// runner, one at a time. The server is stopped and its state removed
// afterwards, whatever happened.

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, warmUp } from '../../sdks/typescript/test/harness.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Every test file, or those named on the command line.
const files = process.argv.length > 2
  ? process.argv.slice(2)
  : readdirSync(join(root, 'test'))
      .filter((f) => f.endsWith('.test.mjs'))
      .sort()
      .map((f) => join('test', f));

const env = { ...process.env };
let server;
if (!env.WARREN_TEST_URL) {
  server = await startServer({ name: 'warren-ui-test' });
  console.log(`# warren server at ${server.url} (log: ${server.logPath})`);
  const stopAndExit = async (code) => {
    await server.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => stopAndExit(130));
  process.once('SIGTERM', () => stopAndExit(143));
  try {
    await warmUp(server.url, server.apiKey);
  } catch (err) {
    await server.stop();
    throw err;
  }
  env.WARREN_TEST_URL = server.url;
  env.WARREN_TEST_API_KEY = server.apiKey;
}

const code = await new Promise((resolveCode) => {
  const runner = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  runner.on('exit', (status, signal) => resolveCode(status ?? (signal ? 1 : 0)));
});
await server?.stop();
process.exit(code);
