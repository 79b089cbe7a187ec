// `scripts/bench.sh e2b`: the time from `Sandbox.create()` to the end of
// `commands.run('true')` through the official `e2b` SDK (npm, unchanged)
// against one `warren server`, next to the same flow through Warren's own
// TypeScript SDK (`Sandbox.create()` then `exec.run('true')`) in the same
// run and on the same server. Rounds alternate between the two; sandboxes
// are killed after each round, outside the timing. Prints p50 and p99 and
// the ratio of the medians.
//
// Environment: WARREN_BIN (default target/release/warren), BENCH_N rounds
// per SDK (default 50), BENCH_WARMUP (default 3), WARREN_BENCH_E2B_STATE
// (a state directory kept across runs, default /var/lib/warren-bench-e2b).

import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startServer, warmUp } from '../../sdks/typescript/test/harness.mjs';
import { Sandbox as E2BSandbox } from 'e2b';
import { Sandbox as WarrenSandbox } from '../../sdks/typescript/dist/esm/index.js';

const n = Number(process.env.BENCH_N ?? 50);
const warmup = Number(process.env.BENCH_WARMUP ?? 3);
const stateDir = process.env.WARREN_BENCH_E2B_STATE ?? '/var/lib/warren-bench-e2b';

function quantile(values, q) {
  const v = [...values].sort((a, b) => a - b);
  const rank = Math.min(Math.max(Math.ceil(q * v.length), 1), v.length);
  return v[rank - 1];
}
const ms = (x) => `${x.toFixed(3)} ms`;

mkdirSync(stateDir, { recursive: true });
const server = await startServer({ stateDir, name: 'warren-bench-e2b', args: ['--no-network'] });
const stop = async (code) => {
  await server.stop();
  process.exit(code);
};
process.once('SIGINT', () => stop(130));
process.once('SIGTERM', () => stop(143));

try {
  await warmUp(server.url, server.apiKey);
  const headers = { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json' };
  const tenant = await (
    await fetch(`${server.url}/v1/admin/tenants`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: `bench-e2b-${randomBytes(4).toString('hex')}` }),
    })
  ).json();
  const res = await fetch(`${server.url}/v1/admin/tenants/${tenant.id}/keys`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ format: 'e2b' }),
  });
  if (res.status !== 201) throw new Error(`making an E2B-form key answered ${res.status}: ${await res.text()}`);
  const { key } = await res.json();

  const e2bOpts = { apiKey: key, apiUrl: server.url, sandboxUrl: server.url, domain: `localhost:${new URL(server.url).port}` };
  const warrenOpts = { apiUrl: server.url, apiKey: key };

  const e2bRound = async () => {
    const t0 = performance.now();
    const sbx = await E2BSandbox.create(e2bOpts);
    const r = await sbx.commands.run('true');
    const t = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`e2b: true exited ${r.exitCode}`);
    await sbx.kill();
    return t;
  };
  const warrenRound = async () => {
    const t0 = performance.now();
    const sbx = await WarrenSandbox.create(warrenOpts);
    const r = await sbx.exec.run('true');
    const t = performance.now() - t0;
    if (r.exitCode !== 0) throw new Error(`warren: true exited ${r.exitCode}`);
    await sbx.kill();
    return t;
  };

  for (let i = 0; i < warmup; i++) {
    await e2bRound();
    await warrenRound();
  }
  const e2b = [];
  const warren = [];
  for (let i = 0; i < n; i++) {
    e2b.push(await e2bRound());
    warren.push(await warrenRound());
  }
  const ratio = quantile(e2b, 0.5) / quantile(warren, 0.5);
  console.log('| flow | e2b SDK 2.51.0 → Warren | Warren TypeScript SDK | ratio (p50) | n |');
  console.log('|---|---|---|---|---|');
  console.log(
    `| Sandbox.create() + run('true') | p50 ${ms(quantile(e2b, 0.5))} p99 ${ms(quantile(e2b, 0.99))} | p50 ${ms(quantile(warren, 0.5))} p99 ${ms(quantile(warren, 0.99))} | ${ratio.toFixed(2)}x | ${n} |`,
  );
} catch (err) {
  console.error(err);
  await stop(1);
}
await stop(0);
