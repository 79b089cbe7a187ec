// The desktop's live view in Chromium: the shareable page
// (`/ui/desktop/{id}#token=…`, noVNC under the console's strict CSP) draws
// the sandbox's screen into a canvas and drops the token from the address
// bar; the sandbox page's Desktop tab shows it with the signed-in key.
//
// Needs a sandbox whose desktop can run: WARREN_TEST_DESKTOP names one (the
// Rust suite's `server_desktop_stream` runs this file that way, against its
// server with the `desktop` template); without it, the server's `desktop`
// template is used if it has one, else the test is skipped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, URL_, api, deleteSandbox, newPage, screenshot, signIn } from './browser.mjs';

/** A sandbox with its desktop started, and whether this file made it. */
async function desktopSandbox() {
  let id = process.env.WARREN_TEST_DESKTOP;
  let made = false;
  if (!id) {
    const templates = await api(ADMIN_KEY, 'GET', '/v1/templates');
    const list = Array.isArray(templates) ? templates : templates.items;
    if (!list.some((t) => t.name === 'desktop')) return null;
    id = (await api(ADMIN_KEY, 'POST', '/v1/sandboxes', { template: 'desktop', resources: { memory_mb: 2048 } })).id;
    made = true;
  }
  await api(ADMIN_KEY, 'POST', `/v1/sandboxes/${id}/desktop/start`, { width: 1024, height: 768 });
  // Something on the screen besides the black root window.
  await api(ADMIN_KEY, 'POST', `/v1/sandboxes/${id}/desktop/launch`, { app: 'xterm', args: ['-geometry', '80x24+40+40', '-bg', 'white'] });
  return { id, made };
}

/** Waits until the live view's canvas has drawn more than one colour. */
async function canvasDrawn(page) {
  await page.locator('.desktop-screen[data-status=connected]').waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    () => {
      const canvas = document.querySelector('.desktop-screen canvas');
      if (!canvas || canvas.width < 100) return false;
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      const first = data.slice(0, 3).join();
      for (let i = 0; i < data.length; i += 4 * 97) {
        if (`${data[i]},${data[i + 1]},${data[i + 2]}` !== first) return true;
      }
      return false;
    },
    null,
    { timeout: 30_000 },
  );
  return page.evaluate(() => {
    const canvas = document.querySelector('.desktop-screen canvas');
    return [canvas.width, canvas.height];
  });
}

test('the live view: shareable page and Desktop tab', async (t) => {
  const sandbox = await desktopSandbox();
  if (!sandbox) {
    t.skip('the server has no desktop template (set WARREN_TEST_DESKTOP, or run server_desktop_stream)');
    return;
  }
  try {
    const minted = await api(ADMIN_KEY, 'POST', `/v1/sandboxes/${sandbox.id}/desktop/stream/url`, { view_only: true, ttl_seconds: 600 });
    assert.ok(minted.url.startsWith(`${URL_}/ui/desktop/${sandbox.id}#token=`), minted.url);

    const page = await newPage();
    await page.goto(minted.url);
    assert.deepEqual(await canvasDrawn(page), [1024, 768]);
    assert.equal(new URL(page.url()).hash, '', 'the token is dropped from the address bar');
    assert.ok(await page.getByLabel('View only').isChecked());
    assert.ok(await page.getByLabel('View only').isDisabled(), 'a view-only link cannot be switched');
    await screenshot(page, 'desktop-live');
    assert.deepEqual(page.problems, [], 'no errors, no CSP refusals');

    // The Desktop tab of a signed-in user.
    const tab = await newPage();
    await signIn(tab, ADMIN_KEY);
    await tab.getByRole('heading', { name: 'Sandboxes' }).waitFor();
    await tab.goto(`${URL_}/ui/sandboxes/${sandbox.id}/desktop`);
    assert.deepEqual(await canvasDrawn(tab), [1024, 768]);
    await tab.getByText('Connected (interactive)').waitFor();
    await tab.getByLabel('View only').check();
    // The switch reconnects as a view-only viewer, which the server runs.
    for (let i = 0; ; i++) {
      const status = await api(ADMIN_KEY, 'GET', `/v1/sandboxes/${sandbox.id}/desktop/status`);
      if (status.processes.some((p) => p.name === 'vnc_view_only')) break;
      assert.ok(i < 100, `no view-only viewer: ${JSON.stringify(status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await tab.getByText('Watching (view only)').waitFor({ timeout: 30_000 });
    assert.deepEqual(tab.problems, [], 'no errors, no CSP refusals');
  } finally {
    if (sandbox.made) await deleteSandbox(sandbox.id);
  }
});
