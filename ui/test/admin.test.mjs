// The admin and agent-session screens in a real browser against a real
// server: tenants and keys (a new key shown once, its tenant sees only its
// own sandboxes, revoke), a template built from a spec with its log, the
// metrics charts, and a mock agent session streamed into the page whose
// permission request is answered by a click.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, launchBrowser, screenshot, signedIn, startServer } from './admin-harness.mjs';

describe('admin and agent sessions', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the admin creates a tenant and a key, sees the key once, and the key sees only its tenant', async () => {
    // Another tenant with a sandbox the new tenant must never see.
    const other = await server.api('POST', '/v1/admin/tenants', { name: 'other-co' });
    assert.equal(other.status, 201);
    const otherKey = await server.api('POST', `/v1/admin/tenants/${other.body.id}/keys`);
    const hidden = await server.api('POST', '/v1/sandboxes', {}, otherKey.body.key);
    assert.equal(hidden.status, 201, JSON.stringify(hidden.body));

    const page = await signedIn(browser, server.url, ADMIN_KEY);
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByLabel('Tenant name').fill('acme');
    await page.getByLabel('Max sandboxes').fill('2');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('button', { name: 'Create a key for acme' }).click();
    const shown = page.getByLabel('The new key');
    await shown.waitFor();
    const key = await shown.inputValue();
    assert.match(key, /^\S{20,}$/);
    await page.getByText('it is shown only once').waitFor();
    await screenshot(page, 'admin-tenants');
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal((await page.content()).includes(key), false, 'the key is shown once only');

    const tenants = await server.api('GET', '/v1/admin/tenants');
    const acme = tenants.body.items.find((t) => t.name === 'acme');
    assert.equal(acme.max_sandboxes, 2);
    const mine = await server.api('POST', '/v1/sandboxes', {}, key);
    assert.equal(mine.status, 201, JSON.stringify(mine.body));

    const tenantPage = await signedIn(browser, server.url, key);
    await tenantPage.getByText(mine.body.id).first().waitFor();
    assert.equal(await tenantPage.getByText(hidden.body.id).count(), 0, "another tenant's sandbox is listed");
    assert.equal(await tenantPage.getByRole('link', { name: 'Admin' }).count(), 0);
    await tenantPage.goto(`${server.url}/ui/admin`);
    await tenantPage.getByText('No such page').waitFor();
    await tenantPage.goto(`${server.url}/ui/sandboxes/${hidden.body.id}`);
    await tenantPage.getByRole('alert').waitFor();
    assert.match(await tenantPage.getByRole('alert').innerText(), /sbx_|not found|no sandbox/i);
    await tenantPage.close();

    // Revoked in the console, the key stops working.
    page.on('dialog', (dialog) => dialog.accept());
    const [keyInfo] = (await server.api('GET', `/v1/admin/tenants/${acme.id}/keys`)).body.items;
    await page.getByRole('button', { name: `Revoke ${keyInfo.id}` }).click();
    await page.getByText('No keys.').waitFor();
    assert.equal((await server.api('GET', '/v1/sandboxes', undefined, key)).status, 401);
    await page.close();
  });

  test('a template built from a spec shows its log, then it can be deleted', async () => {
    const page = await signedIn(browser, server.url, ADMIN_KEY);
    page.on('dialog', (dialog) => dialog.accept());
    await page.goto(`${server.url}/ui/admin/templates`);
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
    const templates = await server.api('GET', '/v1/templates');
    assert.equal(templates.body.items.some((t) => t.name === 'uitest'), false);
    await page.close();
  });

  test('a mock session streams into the page and its permission request is answered by a click', async () => {
    const sandbox = await server.api('POST', '/v1/sandboxes', {});
    assert.equal(sandbox.status, 201, JSON.stringify(sandbox.body));
    const id = sandbox.body.id;
    const page = await signedIn(browser, server.url, ADMIN_KEY);
    await page.goto(`${server.url}/ui/sandboxes/${id}/sessions`);
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
    const [session] = (await server.api('GET', `/v1/sandboxes/${id}/sessions`)).body.items;
    const file = await fetch(`${server.url}/v1/sandboxes/${id}/files?path=${encodeURIComponent(`${session.cwd}/mock-turn-1.txt`)}`, {
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
    await page.close();
  });

  test('the metrics charts draw sandboxes by state and the create latency', async () => {
    // A command run through the server feeds the exec latency.
    const sandbox = await server.api('POST', '/v1/sandboxes', {});
    const run = await server.api('POST', `/v1/sandboxes/${sandbox.body.id}/processes/run`, { cmd: 'true' });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    const page = await signedIn(browser, server.url, ADMIN_KEY);
    await page.goto(`${server.url}/ui/admin/metrics`);
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
});
