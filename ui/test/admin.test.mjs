// The admin and agent-session screens in a real browser against a real
// server: tenants and keys (a new key shown once, its tenant sees only its
// own sandboxes, revoke), a template built from a spec with its log, the
// metrics charts, and a mock agent session streamed into the page whose
// permission request is answered by a click.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, URL_, api, deleteSandbox, newPage, screenshot, signIn } from './browser.mjs';

/** Sandboxes made here, deleted at the end whatever happened. */
const made = [];
test.after(async () => {
  for (const id of made) await deleteSandbox(id);
});

/** A unique name for this run (the server is shared by every test file). */
const unique = (name) => `${name}-${process.pid}-${Date.now() % 100000}`;

/** The status and JSON body of an API call (never throws on an error status). */
async function call(method, path, body, key = ADMIN_KEY) {
  const res = await fetch(`${URL_}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A sandbox made with `key`, deleted after the tests. */
async function sandbox(key = ADMIN_KEY) {
  const created = await api(key, 'POST', '/v1/sandboxes', {});
  made.push(created.id);
  return created;
}

/** A page signed in with `key`. */
async function signedIn(key) {
  const page = await newPage();
  await signIn(page, key);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  return page;
}

test('the admin creates a tenant and a key, sees the key once, and the key sees only its tenant', async () => {
  // Another tenant with a sandbox the new tenant must never see.
  const other = await api(ADMIN_KEY, 'POST', '/v1/admin/tenants', { name: unique('other') });
  const otherKey = await api(ADMIN_KEY, 'POST', `/v1/admin/tenants/${other.id}/keys`, {});
  const hidden = await sandbox(otherKey.key);
  const name = unique('acme');

  const page = await signedIn(ADMIN_KEY);
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByLabel('Tenant name').fill(name);
  await page.getByLabel('Max sandboxes').fill('2');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  await page.getByRole('button', { name: `Create a key for ${name}` }).click();
  const shown = page.getByLabel('The new key');
  await shown.waitFor();
  const key = await shown.inputValue();
  assert.match(key, /^\S{20,}$/);
  await page.getByText('it is shown only once').waitFor();
  await screenshot(page, 'admin-tenants');
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal((await page.content()).includes(key), false, 'the key is shown once only');

  const tenants = await api(ADMIN_KEY, 'GET', '/v1/admin/tenants?limit=1000');
  const acme = tenants.items.find((t) => t.name === name);
  assert.equal(acme.max_sandboxes, 2);
  const mine = await sandbox(key);

  const tenantPage = await signedIn(key);
  await tenantPage.getByText(mine.id).first().waitFor();
  assert.equal(await tenantPage.getByText(hidden.id).count(), 0, "another tenant's sandbox is listed");
  assert.equal(await tenantPage.getByRole('link', { name: 'Admin' }).count(), 0);
  await tenantPage.goto(`${URL_}/ui/admin`);
  await tenantPage.getByText('No such page').waitFor();
  await tenantPage.goto(`${URL_}/ui/sandboxes/${hidden.id}`);
  await tenantPage.getByRole('alert').waitFor();
  assert.match(await tenantPage.getByRole('alert').innerText(), /sbx_|not found|no sandbox/i);
  await tenantPage.close();

  // Revoked in the console, the key stops working.
  page.on('dialog', (dialog) => dialog.accept());
  const [keyInfo] = (await api(ADMIN_KEY, 'GET', `/v1/admin/tenants/${acme.id}/keys`)).items;
  await page.getByRole('button', { name: `Revoke ${keyInfo.id}` }).click();
  await page.getByText('No keys.').waitFor();
  assert.equal((await call('GET', '/v1/sandboxes', undefined, key)).status, 401);
  await page.close();
});

test('a template built from a spec shows its log, then it can be deleted', async () => {
  const page = await signedIn(ADMIN_KEY);
  page.on('dialog', (dialog) => dialog.accept());
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByRole('link', { name: 'Templates' }).click();
  await page.getByLabel('Template name').fill('uitest');
  const marker = `built-by-the-console-${process.pid}-${Date.now()}`;
  await page.getByLabel('spec.toml').fill(`run = ["echo ${marker}"]\n`);
  await page.getByRole('button', { name: 'Build', exact: true }).click();
  const log = page.getByRole('log', { name: 'Build log' });
  await log.getByText(marker).waitFor({ timeout: 120_000 });
  await page.getByText('Built template uitest.').waitFor({ timeout: 120_000 });
  assert.match(await log.innerText(), /step 1\/1: run echo/);
  await page.getByRole('cell', { name: 'uitest', exact: true }).waitFor();
  await screenshot(page, 'admin-templates');

  // A failing step: its output, then the problem's detail.
  await page.getByLabel('spec.toml').fill('run = ["echo about-to-fail; exit 3"]\n');
  await page.getByRole('button', { name: 'Build', exact: true }).click();
  await page.getByRole('alert').waitFor({ timeout: 120_000 });
  assert.match(await page.getByRole('alert').innerText(), /exit|status|3/);
  await log.getByText('about-to-fail').waitFor();

  await page.getByRole('button', { name: 'Delete template uitest' }).click();
  await page.getByRole('cell', { name: 'uitest', exact: true }).waitFor({ state: 'detached' });
  const templates = await api(ADMIN_KEY, 'GET', '/v1/templates');
  assert.equal(templates.items.some((t) => t.name === 'uitest'), false);
  await page.close();
});

test('a mock session streams into the page and its permission request is answered by a click', async () => {
  const { id } = await sandbox();
  const page = await signedIn(ADMIN_KEY);
  await page.goto(`${URL_}/ui/sandboxes/${id}/sessions`);
  await page.getByRole('button', { name: 'Start a mock session' }).click();
  const log = page.getByRole('log');
  await log.getByText('Turn 1. You said: Hello from the Warren console.').waitFor();
  const allow = page.getByRole('button', { name: 'Allow once' });
  await allow.waitFor();
  await screenshot(page, 'session-permission');
  await allow.click();
  await log.getByText('Answered: once (answered)').waitFor();
  await log.getByText('Done with turn 1.').waitFor();

  // The permission let the mock write its file.
  const [session] = (await api(ADMIN_KEY, 'GET', `/v1/sandboxes/${id}/sessions`)).items;
  const file = await fetch(`${URL_}/v1/sandboxes/${id}/files?path=${encodeURIComponent(`${session.cwd}/mock-turn-1.txt`)}`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  assert.equal(file.status, 200);
  assert.equal(await file.text(), 'Hello from the Warren console');

  // The agent's output is text, never HTML; a question is answered by a click.
  await page.getByLabel('Message').fill('<b id="injected">bold</b> then a question');
  await page.getByRole('button', { name: 'Send' }).click();
  await log.getByText('You said: <b id="injected">bold</b> then a question.').waitFor();
  assert.equal(await page.locator('#injected').count(), 0, 'agent output was rendered as HTML');
  await page.getByRole('button', { name: 'Reject' }).click();
  await page.getByRole('button', { name: 'yes', exact: true }).click();
  await log.getByText('You answered yes. Done with turn 2.').waitFor();

  // Tool calls are folded until clicked.
  const call = log.getByText('Tool call: Write').first();
  assert.equal(await log.getByText('"file_path": "mock-turn-1.txt"').first().isVisible(), false);
  await call.click();
  await log.getByText('"file_path": "mock-turn-1.txt"').first().waitFor();
  // The list follows the session's state.
  await page.locator('.sessions-item').getByText('idle').waitFor();
  await log.evaluate((el) => (el.scrollTop = el.scrollHeight));
  await screenshot(page, 'session-conversation');

  // A long item is cut until "Show more"; "Always allow" answers for the rest of the session.
  const long = `long ${'word '.repeat(1000)}end`;
  await page.getByLabel('Message').fill(long);
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByRole('button', { name: 'Always allow Write' }).click();
  await log.getByText('Done with turn 3.').waitFor();
  const more = log.getByRole('button', { name: /^Show more/ });
  assert.ok((await more.count()) >= 2, 'the long message and the long reply are cut');
  assert.equal(await log.getByText(/ end\.$/).count(), 0);
  await more.first().click();
  await log.getByRole('button', { name: 'Show less' }).first().waitFor();

  // On a phone, in the dark theme.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('button', { name: 'Switch to the dark theme' }).click();
  await page.getByRole('button', { name: 'Start a mock session' }).waitFor();
  await screenshot(page, 'session-phone-dark');
  await page.close();
});

test('a running turn is interrupted from the console', async () => {
  const { id } = await sandbox();
  const page = await signedIn(ADMIN_KEY);
  await page.goto(`${URL_}/ui/sandboxes/${id}/sessions`);
  await page.getByLabel('First prompt').fill('a slow answer please');
  await page.getByRole('button', { name: 'Start a mock session' }).click();
  const log = page.getByRole('log');
  await log.getByText(/Turn 1\. You said: a slow answer please\. and so on/).waitFor();
  await page.getByRole('button', { name: 'Interrupt' }).click();
  await log.getByText(/interrupted/).waitFor();
  assert.equal(await log.getByText('Done with turn 1.').count(), 0);
  await page.close();
});

test('the metrics charts draw sandboxes by state and the create latency', async () => {
  // A command run through the server feeds the exec latency.
  const { id } = await sandbox();
  const run = await api(ADMIN_KEY, 'POST', `/v1/sandboxes/${id}/processes/run`, { cmd: 'true' });
  assert.equal(run.exit_code, 0);
  const page = await signedIn(ADMIN_KEY);
  await page.goto(`${URL_}/ui/admin/metrics`);
  await page.getByRole('img', { name: 'Sandboxes by state over time' }).waitFor();
  // Two samples make a line.
  await page.waitForFunction(() => document.querySelectorAll('polyline')[1]?.getAttribute('points')?.includes(' '), null, { timeout: 15_000 });
  await page.getByRole('img', { name: /Create latency/ }).waitFor();
  await page.getByRole('img', { name: /Exec latency/ }).waitFor();
  for (const text of await page.getByText(/\d+ samples/).allInnerTexts()) assert.match(text, /^[1-9]\d* samples/);
  await page.getByRole('heading', { name: 'Warm pools' }).waitFor();
  await screenshot(page, 'admin-metrics');
  await page.close();
});
