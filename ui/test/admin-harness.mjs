// A real `warren server` (WARREN_BIN, default target/debug/warren, which must
// embed this console build) in a state directory of its own, and Debian's
// Chromium driven by playwright-core. Everything is removed afterwards, even
// when a test fails: the server's sandboxes, the server, its mounts, its
// state directory.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The admin key of the test server. */
export const ADMIN_KEY = 'wadm_ui-test-admin-key-0123456789';

/** Where screenshots go when UI_SCREENSHOTS=1. */
export const SCREENSHOTS = join(root, 'docs', 'screenshots');

/** Starts a server; resolves to `{ url, api(method, path, body?, key?), stop() }`. */
export async function startServer() {
  const bin = process.env.WARREN_BIN ?? join(root, 'target', 'debug', 'warren');
  const state = mkdtempSync('/var/tmp/warren-ui-test-');
  const cgroupParent = `warren-ui-test-${process.pid}`;
  const child = spawn(
    bin,
    [
      'server',
      '--listen', '127.0.0.1:0',
      '--state-dir', state,
      '--cgroup-parent', cgroupParent,
      '--pool', 'base=0',
      '--no-network',
      '--debootstrap-cache', process.env.WARREN_DEBOOTSTRAP_CACHE ?? '/var/cache/warren/debootstrap',
    ],
    { env: { ...process.env, WARREN_ADMIN_KEY: ADMIN_KEY, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /warren server listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`warren server exited (${code}) before listening`)));
  });
  const api = async (method, path, body, key = ADMIN_KEY) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const stop = async () => {
    try {
      const list = await api('GET', '/v1/sandboxes?limit=1000');
      for (const s of list.body?.items ?? []) await api('DELETE', `/v1/sandboxes/${s.id}`);
    } catch {
      // The server is gone already: its sandboxes go with the mounts below.
    }
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
    unmountUnder(state);
    rmSync(state, { recursive: true, force: true });
    removeCgroups(cgroupParent);
  };
  return { url, api, stop };
}

/** Unmounts everything mounted under `dir`, deepest first. */
function unmountUnder(dir) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // Already gone.
    }
  }
}

/** Removes the (empty once its sandboxes are gone) cgroup parent from every hierarchy. */
function removeCgroups(parent) {
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const dir = join('/sys/fs/cgroup', hierarchy, parent);
    if (!existsSync(dir)) continue;
    try {
      execFileSync('find', [dir, '-depth', '-type', 'd', '-delete']);
    } catch {
      // A cgroup still busy stays; the server's next start reuses its name.
    }
  }
}

/** Debian's Chromium, headless. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
}

/** A page signed in at `url` with `key`. */
export async function signedIn(browser, url, key, viewport = { width: 1280, height: 800 }) {
  const page = await browser.newPage({ viewport });
  await page.goto(`${url}/ui/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return page;
}

/** Saves a screenshot under docs/screenshots/ when UI_SCREENSHOTS=1. */
export async function screenshot(page, name) {
  if (process.env.UI_SCREENSHOTS !== '1') return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}
