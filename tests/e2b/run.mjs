// The E2B conformance run: one real `warren server` (the TypeScript SDK's
// test harness starts and stops it), the `code-interpreter` template built
// (cached in the state directory across runs), a tenant with a key in E2B's
// form, then the official E2B SDKs' suites: js/ (node's test runner) and
// py/ (pytest), each told where Warren is only through E2B's own
// environment variables. The server is stopped whatever happened.
//
// Environment: WARREN_BIN (default target/debug/warren), WARREN_E2B_STATE
// (the state directory kept across runs), WARREN_E2B_PY_VENV (the venv with
// the Python SDKs), WARREN_E2B_ONLY=js|py (one suite only). Extra arguments
// go to both runners (a test name pattern, say).

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { serverSkipReason, startServer, warmUp, warrenBinary } from '../../sdks/typescript/test/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const stateDir = process.env.WARREN_E2B_STATE ?? '/var/cache/warren-test/e2b-state';
const venv = process.env.WARREN_E2B_PY_VENV ?? '/var/cache/warren-test/e2b-py-venv';
const only = process.env.WARREN_E2B_ONLY;
const extra = process.argv.slice(2);

const tailOf = (path, n = 60) => readFileSync(path, 'utf8').split('\n').slice(-n).join('\n');
// Where the whole server log is kept when something failed.
const keptLog = process.env.WARREN_E2B_FAILED_LOG ?? '/var/cache/warren-test/e2b-failed-server.log';
const keepLog = (from) => {
  copyFileSync(from, keptLog);
  return `the whole log: ${keptLog}`;
};

function run(cmd, args, opts) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { stdio: 'inherit', ...opts });
    child.on('exit', (status, signal) => done(status ?? (signal ? 1 : 0)));
  });
}

async function call(url, key, method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/**
 * The spec of `templates/{name}.toml` as the build API takes it. The API
 * reads no host paths, so a one-line `files = { "DEST" = "SRC", ... }` table
 * becomes a first `run` step that unpacks the same files (a gzipped tar,
 * base64 in the command); everything else is unchanged.
 */
function apiSpec(name) {
  const dir = join(repo, 'templates');
  const lines = readFileSync(join(dir, `${name}.toml`), 'utf8').split('\n');
  const at = lines.findIndex((l) => /^files\s*=/.test(l));
  if (at < 0) return lines.join('\n');
  const pairs = [...lines[at].matchAll(/"([^"]+)"\s*=\s*"([^"]+)"/g)].map((m) => [m[1], m[2]]);
  if (pairs.length === 0) throw new Error(`cannot read the files line of ${name}.toml: ${lines[at]}`);
  const steps = pairs.map(([dest, src]) => {
    // Byte for byte the same for the same files, so the layer cache holds.
    const tar = spawnSync(
      'sh',
      ['-c', 'tar -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rw,go+r -C "$1" . | gzip -n', 'sh', join(dir, src)],
      { maxBuffer: 64 << 20 },
    );
    if (tar.status !== 0) throw new Error(`tar of templates/${src} failed: ${tar.stderr}`);
    const b64 = tar.stdout.toString('base64');
    if (b64.length > 100_000) throw new Error(`templates/${src} is too big to inline (${b64.length} bytes)`);
    return `  "mkdir -p ${dest} && echo ${b64} | base64 -d | tar -xz -C ${dest}",`;
  });
  lines.splice(at, 1);
  const run = lines.findIndex((l) => /^run\s*=\s*\[\s*$/.test(l));
  if (run < 0) throw new Error(`${name}.toml has files but no multi-line run = [ ... ]`);
  lines.splice(run + 1, 0, ...steps);
  return lines.join('\n');
}

const reason = serverSkipReason();
if (reason) {
  console.error(`# cannot run the E2B suites: ${reason}`);
  process.exit(1);
}
mkdirSync(stateDir, { recursive: true });
const server = await startServer({ stateDir, name: 'warren-e2b' });
console.log(`# warren server at ${server.url} (state: ${stateDir}, log: ${server.logPath})`);
const stopAndExit = async (code) => {
  await server.stop();
  process.exit(code);
};
process.once('SIGINT', () => stopAndExit(130));
process.once('SIGTERM', () => stopAndExit(143));

let code = 1;
try {
  let started = Date.now();
  await warmUp(server.url, server.apiKey);
  console.log(`# base ready in ${Math.round((Date.now() - started) / 1000)} s`);

  // The code interpreter's template, through the CLI as a user builds it
  // (unchanged steps come from the layer cache in the kept state directory).
  started = Date.now();
  const specDir = mkdtempSync(join(tmpdir(), 'warren-e2b-spec-'));
  const specPath = join(specDir, 'code-interpreter.toml');
  writeFileSync(specPath, apiSpec('code-interpreter'));
  const built = await run(warrenBinary(), ['template', 'build', 'code-interpreter', '-f', specPath], {
    cwd: repo,
    env: { ...process.env, WARREN_URL: server.url, WARREN_API_KEY: server.apiKey },
  });
  rmSync(specDir, { recursive: true, force: true });
  if (built !== 0) throw new Error(`building the code-interpreter template exited ${built}`);
  console.log(`# code-interpreter ready in ${Math.round((Date.now() - started) / 1000)} s`);

  // A tenant of its own with its key in E2B's form, and another tenant's
  // key (its sandboxes must be invisible to the first).
  const e2bKey = async () => {
    const tenant = await call(server.url, server.apiKey, 'POST', '/v1/admin/tenants', {
      name: `e2b-conformance-${randomBytes(4).toString('hex')}`,
    });
    const { key } = await call(server.url, server.apiKey, 'POST', `/v1/admin/tenants/${tenant.id}/keys`, { format: 'e2b' });
    if (!/^e2b_[0-9a-f]{64}$/.test(key)) throw new Error(`the E2B-form key is not e2b_ and 64 hex digits: ${key}`);
    return key;
  };
  const key = await e2bKey();
  const otherKey = await e2bKey();

  const port = new URL(server.url).port;
  const env = {
    ...process.env,
    E2B_API_URL: server.url,
    E2B_SANDBOX_URL: server.url,
    E2B_API_KEY: key,
    // getHost(port) is `{port}-{id}.{E2B_DOMAIN}`: the server's preview
    // domain (`localhost`) with its port. The tests resolve it to 127.0.0.1.
    E2B_DOMAIN: `localhost:${port}`,
    WARREN_E2B_OTHER_API_KEY: otherKey,
  };
  delete env.E2B_DEBUG;
  delete env.E2B_ACCESS_TOKEN;

  const results = {};
  if (only !== 'py') {
    console.log('# == e2b (npm) and @e2b/code-interpreter: node --test');
    results.js = await run(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-timeout=300000', ...(extra.length ? ['--test-name-pattern', extra[0]] : []), 'test/'],
      { cwd: join(here, 'js'), env },
    );
  }
  if (only !== 'js') {
    console.log('# == e2b and e2b-code-interpreter (PyPI): pytest');
    results.py = await run(join(venv, 'bin', 'pytest'), ['-p', 'no:cacheprovider', '-v', ...(extra.length ? ['-k', extra[0]] : [])], {
      cwd: join(here, 'py'),
      env,
    });
  }
  console.log(`# results: ${JSON.stringify(results)}`);
  code = Object.values(results).every((c) => c === 0) ? 0 : 1;
  if (code !== 0) console.error(`# the server's log ends with (${keepLog(server.logPath)}):\n${tailOf(server.logPath)}`);
} catch (err) {
  console.error(`# ${err.stack ?? err}\n# the server's log ends with (${keepLog(server.logPath)}):\n${tailOf(server.logPath)}`);
  code = 1;
} finally {
  await server.stop();
}
process.exit(code);
