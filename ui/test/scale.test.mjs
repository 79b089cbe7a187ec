// A list of 1,000 sandboxes stays smooth: only the rows in view are in the
// DOM. The list's pages are answered by the test (1,000 real sandboxes are
// more than a CI machine should start for a rendering check); everything
// else is the real server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_KEY, newPage, signIn } from './browser.mjs';

function fakeSandbox(i) {
  const id = `sbx_scale${String(i).padStart(5, '0')}`;
  return {
    id,
    state: i % 3 === 0 ? 'stopped' : 'running',
    template: 'base',
    tenant_id: null,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 0) + i * 1000).toISOString(),
    expires_at: null,
    last_active_at: '2026-01-01T00:00:00Z',
    timeout_secs: 300,
    ttl_secs: null,
    metadata: {},
    labels: { shard: String(i % 10) },
    resources: { cpus: 1, memory_mb: 512, pids: 512, disk_mb: null },
    network: { egress: 'allow', allow: [] },
    auto_checkpoint: false,
    auto_checkpoint_keep: 100,
    auto_wake: false,
    from_checkpoint: null,
  };
}

test('1,000 sandboxes: every page fetched, few rows in the DOM, filters', async () => {
  const all = Array.from({ length: 1000 }, (_, i) => fakeSandbox(i));
  const page = await newPage();
  const pages = [];
  await page.route(/\/v1\/sandboxes\?/, (route) => {
    const url = new URL(route.request().url());
    const start = Number(url.searchParams.get('cursor') ?? 0);
    const limit = Number(url.searchParams.get('limit'));
    pages.push(start);
    const end = Math.min(all.length, start + limit);
    route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ items: all.slice(start, end), next_cursor: end < all.length ? String(end) : null }),
    });
  });
  await signIn(page, ADMIN_KEY);
  await page.getByText('1000 of 1000').waitFor({ timeout: 20_000 });
  assert.ok(pages.length >= 2, `pages fetched: ${pages}`);
  const rows = await page.locator('.virtual-row').count();
  assert.ok(rows > 5 && rows < 80, `${rows} rows in the DOM`);

  // The oldest is last; scrolling there renders it.
  const started = Date.now();
  await page.locator('.virtual').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.locator('[data-sandbox="sbx_scale00000"]').waitFor();
  assert.ok(Date.now() - started < 2000, `scrolling to the end took ${Date.now() - started} ms`);
  assert.ok((await page.locator('.virtual-row').count()) < 80);

  await page.selectOption('select[name=state]', 'stopped');
  await page.fill('input[name=labels]', 'shard=3');
  // i % 3 == 0 and i % 10 == 3: i = 3, 33, 63, ... (34 of them).
  await page.getByText('34 of 1000').waitFor();
  await page.context().close();
});
