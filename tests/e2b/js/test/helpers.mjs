// What every test file shares: the sandboxes it made (killed after the file
// whatever happened), and a way to reach `getHost(port)` without real DNS.

import { after } from 'node:test';
import http from 'node:http';
import { Sandbox } from 'e2b';

for (const name of ['E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_API_KEY', 'E2B_DOMAIN']) {
  if (!process.env[name]) throw new Error(`${name} is not set: run the suite through tests/e2b/run.sh`);
}

const made = [];
after(async () => {
  await Promise.all(made.map((s) => s.kill().catch(() => undefined)));
});

/** Kills `sandbox` after the file's tests. Returns it. */
export function track(sandbox) {
  made.push(sandbox);
  return sandbox;
}

/** `Sandbox.create(opts)` (base template), killed after the file's tests. */
export async function create(opts) {
  return track(await Sandbox.create(opts));
}

/**
 * GET `http://{host}{path}` where `host` is what `getHost(port)` gave
 * (`{port}-{id}.{domain}:{server port}`), with the name resolved to
 * 127.0.0.1 by a lookup of its own: the Host header is the real one.
 * Resolves to `{status, body}`.
 */
export function getViaHost(host, path = '/') {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `http://${host}${path}`,
      {
        lookup: (_name, opts, cb) =>
          opts && opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
        timeout: 30_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET http://${host}${path} timed out`)));
    req.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually(check, timeoutMs = 15_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`${what} not met within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}
