// Helpers of the browser tests: Debian's Chromium driven by playwright-core
// against the server scripts/run-tests.mjs started (WARREN_TEST_URL,
// WARREN_TEST_API_KEY), and plain API calls to set up and check.

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { chromium } from 'playwright-core';

export const URL_ = process.env.WARREN_TEST_URL;
export const ADMIN_KEY = process.env.WARREN_TEST_API_KEY;
if (!URL_ || !ADMIN_KEY) throw new Error('run the tests with `npm test` (scripts/run-tests.mjs starts the server)');

const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

let browser;

/** A new page (its own context: its own sessionStorage) of a shared headless Chromium. */
export async function newPage(viewport = { width: 1280, height: 800 }, options = {}) {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    // Root in CI has no user namespace sandbox; SwiftShader gives xterm.js WebGL.
    args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text());
  });
  page.problems = problems;
  return page;
}

after(async () => {
  await browser?.close();
});

/** Signs in on the console with `key`. */
export async function signIn(page, key) {
  await page.goto(`${URL_}/ui/`);
  await page.fill('input[name=key]', key);
  await page.click('button[type=submit]');
}

/** A JSON API call; throws on a non-2xx answer. */
export async function api(key, method, path, body) {
  const res = await fetch(`${URL_}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text) : undefined;
}

/** A tenant and one of its keys: `{tenant, key}`. */
export async function tenant(name) {
  const t = await api(ADMIN_KEY, 'POST', '/v1/admin/tenants', { name });
  const k = await api(ADMIN_KEY, 'POST', `/v1/admin/tenants/${t.id}/keys`, {});
  return { tenant: t.id, key: k.key };
}

/** Whether the server has a route (a 404 `not_found` means it has not). */
export async function hasRoute(path) {
  const res = await fetch(`${URL_}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  if (res.status !== 404) return true;
  const body = await res.json().catch(() => ({}));
  return body.code !== 'not_found';
}

/** Saves a screenshot under docs/screenshots when UI_SCREENSHOTS=1. */
export async function screenshot(page, name) {
  if (process.env.UI_SCREENSHOTS !== '1') return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Deletes `id` (cleanup; ignores a sandbox already gone). */
export async function deleteSandbox(id) {
  await fetch(`${URL_}/v1/sandboxes/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
}
