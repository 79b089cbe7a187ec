// Bundles the console into dist/: dist/assets/app-<hash>.{js,css} and an
// unhashed dist/index.html naming them. `npm run build` type-checks first.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(root, 'src', 'main.tsx')],
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'linked',
  outdir: join(dist, 'assets'),
  entryNames: 'app-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`esbuild produced no JS or CSS: ${outputs.join(', ')}`);

const html = readFileSync(join(root, 'src', 'index.html'), 'utf8')
  .replace('%CSS%', `/ui/assets/${css}`)
  .replace('%JS%', `/ui/assets/${js}`);
writeFileSync(join(dist, 'index.html'), html);
console.log(`ui/dist: index.html, assets/${js}, assets/${css}`);
