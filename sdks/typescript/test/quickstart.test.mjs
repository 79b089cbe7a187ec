// docs/quickstart-typescript.md stays true: every ```ts block is
// type-checked against the built package and run against the real server
// with only WARREN_URL and WARREN_API_KEY set, as a reader would. A block
// tagged `requires=checkpoints` runs when the server has checkpoints.

import { describe, it, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Sandbox, WarrenError } from '@warren-sh/sdk';
import { SDK_ROOT, setup } from './harness.mjs';

const DOC = join(SDK_ROOT, '..', '..', 'docs', 'quickstart-typescript.md');
const ts = createRequire(import.meta.url)('typescript');

/** The ```ts blocks of the quickstart: `{line, code, requires}`. */
function codeBlocks() {
  const blocks = [];
  const lines = readFileSync(DOC, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```ts\b(.*)$/);
    if (!open) continue;
    const start = i + 1;
    while (i + 1 < lines.length && lines[i + 1] !== '```') i++;
    const requires = open[1].match(/requires=(\w+)/)?.[1];
    blocks.push({ line: start, code: lines.slice(start, i + 1).join('\n') + '\n', requires });
    i++;
  }
  return blocks;
}

const blocks = codeBlocks();
// Inside the package, so `import '@warren-sh/sdk'` resolves to it by name.
const workDir = join(SDK_ROOT, 'test', '.quickstart');

test('the quickstart has runnable examples', () => {
  assert.ok(blocks.length >= 8, `found ${blocks.length} ts blocks in ${DOC}`);
});

test('every example type-checks against the published types', () => {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const files = blocks.map((block, i) => {
    const file = join(workDir, `block${i}.ts`);
    // `export {}` makes each block a module, so top-level await is allowed.
    writeFileSync(file, `${block.code}export {};\n`);
    return file;
  });
  const options = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    typeRoots: [join(SDK_ROOT, 'node_modules', '@types')],
    skipLibCheck: true,
  };
  const program = ts.createProgram(files, options);
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName.replace(/.*block(\d+)\.ts$/, (_, n) => `block at line ${blocks[n].line}`)}` : '';
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return `${where}${pos ? ` (+${pos.line}:${pos.character})` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
  assert.deepEqual(diagnostics, []);
});

const env = await setup();

describe('quickstart examples run against a real server', { skip: env.skip }, () => {
  let checkpoints;
  before(async () => {
    mkdirSync(workDir, { recursive: true });
    // Probe: does this server have checkpoints yet?
    const sbx = await Sandbox.create(env.opts);
    try {
      await sbx.checkpoints.list();
      checkpoints = true;
    } catch (err) {
      if (!(err instanceof WarrenError && (err.code === 'not_found' || err.code === 'method_not_allowed'))) throw err;
      checkpoints = false;
    } finally {
      await sbx.kill();
    }
  });
  after(() => rmSync(workDir, { recursive: true, force: true }));

  for (const [i, block] of blocks.entries()) {
    it(`runs the example at line ${block.line}`, async (t) => {
      if (block.requires === 'checkpoints' && !checkpoints) {
        t.skip('the server has no checkpoint routes yet');
        return;
      }
      const js = ts.transpileModule(block.code, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      const file = join(workDir, `run${i}.mjs`);
      writeFileSync(file, js);
      const childEnv = { ...process.env, WARREN_URL: env.url, WARREN_API_KEY: env.apiKey };
      const { code, output } = await new Promise((resolve) => {
        const child = spawn(process.execPath, [file], { env: childEnv, cwd: workDir });
        let output = '';
        child.stdout.on('data', (d) => (output += d));
        child.stderr.on('data', (d) => (output += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
        child.on('exit', (status, signal) => {
          clearTimeout(timer);
          resolve({ code: status ?? signal, output });
        });
      });
      assert.equal(code, 0, `example at line ${block.line} failed:\n${output}`);
      t.diagnostic(output.trim().split('\n').slice(0, 5).join(' | '));
    });
  }
});

