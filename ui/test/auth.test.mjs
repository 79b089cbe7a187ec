// Keys in the console: a bad key is refused with the server's message, a
// tenant sees only its own sandboxes, the key never lands in a URL or in
// localStorage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, URL_, api, deleteSandbox, newPage, screenshot, signIn, tenant } from './browser.mjs';

test('a bad key shows the server error', async () => {
  const page = await newPage();
  await signIn(page, 'wk_not-a-real-key');
  const error = page.getByRole('alert');
  await error.waitFor();
  assert.equal(await error.innerText(), 'invalid API key');
  await screenshot(page, 'login-error');
  await page.context().close();
});

test('a tenant sees its own sandboxes only', async () => {
  const a = await tenant(`ui-a-${Date.now()}`);
  const b = await tenant(`ui-b-${Date.now()}`);
  const mine = await api(a.key, 'POST', '/v1/sandboxes', { labels: { owner: 'a' } });
  const theirs = await api(b.key, 'POST', '/v1/sandboxes', { labels: { owner: 'b' } });
  try {
    const page = await newPage();
    const urls = [];
    page.on('request', (req) => urls.push(req.url()));
    await signIn(page, a.key);
    await page.locator(`[data-sandbox="${mine.id}"]`).waitFor();
    assert.equal(await page.locator('.who').innerText(), 'tenant');
    assert.equal(await page.locator(`[data-sandbox="${theirs.id}"]`).count(), 0);

    // Even by its URL, the other tenant's sandbox does not exist.
    await page.goto(`${URL_}/ui/sandboxes/${theirs.id}`);
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /no sandbox|not found/i);

    // The key is in sessionStorage only, and in no URL the page asked for.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('warren.key')), a.key);
    assert.equal(await page.evaluate((key) => Object.values(localStorage).some((v) => v.includes(key)), a.key), false);
    assert.ok(urls.every((u) => !u.includes(encodeURIComponent(a.key)) && !u.includes(a.key)), urls.join('\n'));
    await page.context().close();
  } finally {
    await deleteSandbox(mine.id);
    await deleteSandbox(theirs.id);
  }
});

test('the phone-sized layout and the dark theme', async (t) => {
  const sandbox = await api(ADMIN_KEY, 'POST', '/v1/sandboxes', { labels: { team: 'mobile' } });
  t.after(() => deleteSandbox(sandbox.id));
  const page = await newPage({ width: 390, height: 844 }, { colorScheme: 'dark', isMobile: true, hasTouch: true });
  await signIn(page, ADMIN_KEY);
  await page.locator(`[data-sandbox="${sandbox.id}"]`).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  // Nothing wider than the screen.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1));
  await screenshot(page, 'phone-dark');
  // The toggle switches to light; keyboard focus reaches it.
  await page.getByRole('button', { name: /Switch to the light theme/ }).focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await page.context().close();
});
