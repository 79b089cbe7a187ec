// Dual build: ES modules in dist/esm, CommonJS in dist/cjs, each with its
// .d.ts files and a package.json that tells Node which module system the
// directory uses (the root package.json says "module" for the sources).
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const [config, dir, type] of [
  ['tsconfig.esm.json', 'esm', 'module'],
  ['tsconfig.cjs.json', 'cjs', 'commonjs'],
]) {
  const run = spawnSync(process.execPath, [tsc, '-p', join(root, config)], {
    cwd: root,
    stdio: 'inherit',
  });
  if (run.status !== 0) {
    console.error(`tsc -p ${config} failed`);
    process.exit(run.status ?? 1);
  }
  writeFileSync(join(root, 'dist', dir, 'package.json'), JSON.stringify({ type }, null, 2) + '\n');
}
console.log('built dist/esm and dist/cjs');
