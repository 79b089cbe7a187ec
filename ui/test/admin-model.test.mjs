// The pure parts of the admin and session views, without a browser: a
// session's events folded into a bounded conversation (hostile output is
// capped), and the Prometheus text the metrics charts read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Imports a TypeScript module of the console (bundled by esbuild). */
async function load(path) {
  const out = await build({ entryPoints: [join(src, path)], bundle: true, format: 'esm', write: false, logLevel: 'silent' });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
}

const { Conversation, MAX_ENTRIES, MAX_TEXT } = await load('views/sessions/model.ts');
const { parse, histogram, quantile } = await load('views/admin/prom.ts');

let seq = 0;
const ev = (type, data) => ({ sequence: ++seq, time: '', session_id: 'ses_1', type, source: 'agent', data });

test('a streamed message, a tool call, a permission and its answer fold into entries', () => {
  const c = new Conversation();
  c.apply(ev('item.started', { item: { item_id: 'm1', kind: 'message', role: 'assistant', content: [] } }));
  c.apply(ev('item.delta', { item_id: 'm1', delta: 'Hello ' }));
  c.apply(ev('item.delta', { item_id: 'm1', delta: '<b>world</b>' }));
  assert.equal(c.entries[0].text, 'Hello <b>world</b>');
  assert.equal(c.entries[0].done, false);
  c.apply(ev('item.completed', { item: { item_id: 'm1', kind: 'message', role: 'assistant', content: [{ type: 'text', text: 'Hello <b>world</b>' }] } }));
  assert.equal(c.entries[0].done, true);
  c.apply(ev('item.completed', { item: { item_id: 't1', kind: 'tool_call', content: [{ type: 'tool_call', tool: 'Write', input: { file_path: 'a' } }] } }));
  assert.equal(c.entries[1].tool, 'Write');
  c.apply(ev('permission.requested', { permission_id: 'perm_1', tool: 'Write', input: {} }));
  assert.equal(c.pending().length, 1);
  c.apply(ev('permission.resolved', { permission_id: 'perm_1', decision: 'once', reason: 'answered' }));
  assert.equal(c.pending().length, 0);
  assert.equal(c.entries[2].resolved, 'once (answered)');
  // A replayed event (after a reconnect) is not applied twice.
  const before = c.entries.length;
  c.apply({ ...ev('error', { message: 'x' }), sequence: 2 });
  assert.equal(c.entries.length, before);
  c.apply(ev('session.ended', { reason: 'completed', exit_code: 0 }));
  assert.equal(c.ended, true);
});

test('hostile output is bounded: entries kept and characters per entry', () => {
  const c = new Conversation();
  c.apply(ev('item.started', { item: { item_id: 'big', kind: 'message', role: 'assistant' } }));
  for (let i = 0; i < 30; i++) c.apply(ev('item.delta', { item_id: 'big', delta: 'x'.repeat(10_000) }));
  assert.equal(c.entries[0].text.length, MAX_TEXT);
  assert.equal(c.entries[0].truncated, true);
  for (let i = 0; i < MAX_ENTRIES + 50; i++) c.apply(ev('error', { message: `e${i}` }));
  assert.equal(c.entries.length, MAX_ENTRIES);
  assert.equal(c.dropped, 51);
  c.apply(ev('question.requested', { question_id: 'q1', prompt: 'p'.repeat(50_000), options: Array.from({ length: 100 }, (_, i) => `o${i}`) }));
  const q = c.entries[c.entries.length - 1];
  assert.equal(q.options.length, 20);
  assert.ok(q.prompt.length <= 5_000);
});

test('the metrics text gives sandbox counts and histogram quantiles', () => {
  const m = parse(`# HELP warren_sandboxes Sandboxes by state.
# TYPE warren_sandboxes gauge
warren_sandboxes{state="running"} 3
warren_sandboxes{state="stopped"} 1
warren_exec_duration_seconds_bucket{le="0.001"} 0
warren_exec_duration_seconds_bucket{le="0.01"} 50
warren_exec_duration_seconds_bucket{le="0.1"} 100
warren_exec_duration_seconds_bucket{le="+Inf"} 100
warren_exec_duration_seconds_sum 1.5
warren_exec_duration_seconds_count 100
`);
  assert.deepEqual(m.get('warren_sandboxes').map((s) => [s.labels.state, s.value]), [['running', 3], ['stopped', 1]]);
  const h = histogram(m, 'warren_exec_duration_seconds');
  assert.deepEqual(h.buckets.map((b) => b.count), [0, 50, 50, 0]);
  assert.equal(h.count, 100);
  assert.ok(Math.abs(quantile(h, 0.5) - 0.01) < 1e-9);
  assert.ok(Math.abs(quantile(h, 0.75) - 0.055) < 1e-9);
  assert.equal(histogram(m, 'missing'), undefined);
});
