// @e2b/code-interpreter: runCode with state across calls, errors with a
// traceback, streaming callbacks, a matplotlib chart as PNG, contexts.

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sandbox } from '@e2b/code-interpreter';
import { eventually, track } from './helpers.mjs';

test('runCode right after Sandbox.create() (the server is ready when create returns)', async () => {
  const fresh = track(await Sandbox.create());
  const exec = await fresh.runCode('6 * 7');
  assert.equal(exec.text, '42');
});

let sbx;
before(async () => {
  // The package's default template (code-interpreter-v1). The test above
  // holds create to E2B's promise of a ready server; the tests below give
  // the server time to listen, so they check the rest on their own.
  sbx = track(await Sandbox.create({ timeoutMs: 600_000 }));
  await eventually(() => sbx.runCode('0').then((e) => e.text === '0'), 60_000, 'the code interpreter to answer');
});

test('state is kept across runCode calls', async () => {
  const first = await sbx.runCode('x = 41\nx + 1');
  assert.equal(first.error, undefined);
  assert.equal(first.text, '42');
  const second = await sbx.runCode('x * 2');
  assert.equal(second.text, '82');
});

test('stdout and stderr, streamed and collected', async () => {
  const out = [];
  const err = [];
  const exec = await sbx.runCode('import sys\nprint("to stdout")\nprint("to stderr", file=sys.stderr)', {
    onStdout: (m) => out.push(m.line),
    onStderr: (m) => err.push(m.line),
  });
  assert.deepEqual(exec.logs.stdout, ['to stdout\n']);
  assert.deepEqual(exec.logs.stderr, ['to stderr\n']);
  assert.deepEqual(out, ['to stdout\n']);
  assert.deepEqual(err, ['to stderr\n']);
});

test('an exception: name, value and traceback', async () => {
  const exec = await sbx.runCode('def f():\n    return 1 / 0\nf()');
  assert.ok(exec.error, 'the execution has an error');
  assert.equal(exec.error.name, 'ZeroDivisionError');
  assert.match(exec.error.value, /division by zero/);
  assert.match(exec.error.traceback, /ZeroDivisionError/);
  assert.match(exec.error.traceback, /f\(\)/);
  const after = await sbx.runCode('x');
  assert.equal(after.text, '41', 'the kernel survives an error');
});

test('a matplotlib chart comes back as a PNG', async () => {
  const exec = await sbx.runCode(
    'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title("squares")\nplt.show()',
  );
  assert.equal(exec.error, undefined, JSON.stringify(exec.error));
  const png = exec.results.find((r) => r.png);
  assert.ok(png, `a PNG result among ${JSON.stringify(exec.results.map((r) => r.formats()))}`);
  const bytes = Buffer.from(png.png, 'base64');
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(bytes.length > 1000);
});

test('rich results: HTML of a DataFrame', async () => {
  const exec = await sbx.runCode('import pandas as pd\npd.DataFrame({"a": [1, 2], "b": [3, 4]})');
  assert.equal(exec.error, undefined, JSON.stringify(exec.error));
  const main = exec.results.find((r) => r.isMainResult);
  assert.ok(main);
  assert.match(main.html, /<table/);
  assert.match(main.text, /a\s+b/);
});

test('contexts keep their own state', async () => {
  const ctx = await sbx.createCodeContext({ cwd: '/tmp' });
  await sbx.runCode('y = "in context"', { context: ctx });
  const inCtx = await sbx.runCode('import os\n(y, os.getcwd())', { context: ctx });
  assert.equal(inCtx.text, "('in context', '/tmp')");
  const outside = await sbx.runCode('y');
  assert.equal(outside.error?.name, 'NameError');
  const listed = await sbx.listCodeContexts();
  assert.ok(listed.some((c) => c.id === ctx.id));
  await sbx.restartCodeContext(ctx);
  const restarted = await sbx.runCode('y', { context: ctx });
  assert.equal(restarted.error?.name, 'NameError', 'a restarted context has lost its state');
  await sbx.removeCodeContext(ctx);
  assert.ok(!(await sbx.listCodeContexts()).some((c) => c.id === ctx.id));
});

test('bash through runCode', async () => {
  const exec = await sbx.runCode('echo "from bash $((6 * 7))"', { language: 'bash' });
  assert.deepEqual(exec.logs.stdout.join(''), 'from bash 42\n');
});

test('the code interpreter sandbox is a full e2b sandbox too', async () => {
  const r = await sbx.commands.run('python3 -c "import matplotlib, pandas, numpy; print(\\"ok\\")"');
  assert.equal(r.stdout, 'ok\n');
  await sbx.files.write('/home/user/data.csv', 'a,b\n1,2\n3,4\n');
  const exec = await sbx.runCode('import pandas as pd\nint(pd.read_csv("/home/user/data.csv")["b"].sum())');
  assert.equal(exec.text, '6');
});
