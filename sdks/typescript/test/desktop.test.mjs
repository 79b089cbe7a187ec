// sandbox.desktop and sandbox.desktop.browser against a real server and a
// real `desktop` sandbox: a local page that records the last key and mouse
// button is driven by leftClick, write and press and read back through
// browser.text(); screenshots are PNGs of the screen's size; windows list
// with `truncated`, `launch` runs as a user, a recording with `maxSeconds`
// ends by itself; Playwright
// (playwright-core) connects over CDP with cdpUrl(); stream.getUrl sends
// the contract's body and gets a URL for this sandbox.
//
// The `desktop` template lives in the shared test pool: this file runs
// through `cargo nextest run -p warren --test sdk_desktop`, which starts a
// server with it and passes WARREN_DESKTOP_URL / WARREN_DESKTOP_API_KEY.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Sandbox, WarrenError, ConflictError, InvalidRequestError } from '@warren-sh/sdk';
import { eventually } from './harness.mjs';

const url = process.env.WARREN_DESKTOP_URL;
const apiKey = process.env.WARREN_DESKTOP_API_KEY;
const skip = url ? false : 'no desktop server: run `cargo nextest run -p warren --test sdk_desktop`';
const opts = { apiUrl: url, apiKey };

const PAGE = `<title>ready</title>
<body style="margin:0;height:100vh">
<p id="c">none</p><p id="k">none</p><p id="t">typed:</p>
<script>
addEventListener('mousedown', (e) => { c.textContent = 'down:' + e.button; });
addEventListener('contextmenu', (e) => e.preventDefault());
addEventListener('keydown', (e) => {
  k.textContent = 'key:' + e.key;
  if (e.key.length === 1) t.textContent += e.key;
});
</script>`;

/** Width and height from a PNG's IHDR. */
function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

describe('desktop', { skip }, () => {
  let sbx;
  let desktop;

  before(async () => {
    sbx = await Sandbox.create({ ...opts, template: 'desktop', resources: { memoryMb: 2048 } });
    desktop = sbx.desktop;
  });

  after(async () => {
    await sbx?.kill();
  });

  it('answers desktop_not_running as a typed error before start', async () => {
    await assert.rejects(desktop.moveMouse(1, 1), (err) => {
      assert.ok(err instanceof ConflictError, String(err));
      assert.equal(err.code, 'desktop_not_running');
      return true;
    });
  });

  it('clicks, types and presses into a page and reads it back', async () => {
    const status = await desktop.start({ width: 1024, height: 768 });
    assert.equal(status.running, true);
    assert.deepEqual(await desktop.getScreenSize(), { width: 1024, height: 768 });
    await sbx.files.write('/tmp/page.html', PAGE);
    const browser = await desktop.browser.start({ url: 'file:///tmp/page.html' });
    assert.equal(browser.running, true);
    // The page's window, once its geometry held still for one poll.
    let last;
    const win = await eventually(
      async () => {
        const w = (await desktop.getWindows()).find((w) => w.title.startsWith('ready'));
        const still = w && last && JSON.stringify(w) === JSON.stringify(last);
        last = w;
        await new Promise((r) => setTimeout(r, 300));
        return still ? w : undefined;
      },
      30_000,
      'the page window',
    );
    const [cx, cy] = [win.x + Math.floor(win.width / 2), win.y + Math.floor(win.height / 2)];

    await desktop.rightClick(cx, cy);
    await eventually(async () => (await desktop.browser.text()).text?.includes('down:2'), 10_000, 'right click');
    await desktop.leftClick(cx, cy);
    assert.deepEqual(await desktop.getCursorPosition(), { x: cx, y: cy });
    await desktop.write('hi');
    await desktop.press(['shift', 'x']);
    await desktop.press('Return');
    const page = await eventually(
      async () => {
        const p = await desktop.browser.text();
        return p.text?.includes('key:Enter') ? p : undefined;
      },
      10_000,
      'the keys',
    );
    assert.equal(page.title, 'ready');
    assert.match(page.text, /down:0/);
    assert.match(page.text, /typed:hiX/);
  });

  it('takes screenshots of the screen and of the page', async () => {
    assert.deepEqual(pngSize(await desktop.screenshot()), [1024, 768]);
    assert.deepEqual(pngSize(await desktop.screenshot({ scale: 0.5 })), [512, 384]);
    assert.deepEqual(pngSize(await desktop.screenshotRegion({ x: 10, y: 20, width: 100, height: 50 })), [100, 50]);
    const jpeg = await desktop.screenshot({ format: 'jpeg', quality: 50 });
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
    const page = await desktop.browser.screenshot();
    assert.ok(pngSize(page)[0] > 0);
  });

  it('lists windows with truncated, launches as a user, records for maxSeconds', async () => {
    const list = await desktop.listWindows();
    assert.equal(list.truncated, false);
    assert.ok(list.items.some((w) => w.title.startsWith('ready')), JSON.stringify(list));
    const launched = await desktop.launch('sleep', ['60'], { user: 'nobody' });
    const ps = await sbx.exec.run(`ps -o user= -p ${launched.pid}; kill ${launched.pid}`);
    assert.equal(ps.stdout.trim(), 'nobody', ps.stderr);
    await assert.rejects(desktop.open('/tmp', { user: 'no-such-user' }), InvalidRequestError);
    const rec = await desktop.startRecording({ maxSeconds: 1 });
    const done = await eventually(
      async () => (await desktop.listRecordings()).find((r) => r.id === rec.id && r.status !== 'recording'),
      20_000,
      'the recording to end by itself',
    );
    assert.equal(done.status, 'done');
    assert.ok(done.sizeBytes > 0);
    await desktop.deleteRecording(rec.id);
  });

  it('snapshots, fills and navigates through the browser routes', async () => {
    await sbx.files.write('/tmp/form.html', '<title>form</title><input aria-label="name"><button onclick="document.title=\'sent\'">Send</button>');
    const page = await desktop.browser.navigate('file:///tmp/form.html');
    assert.equal(page.title, 'form');
    const snap = await desktop.browser.snapshot();
    const input = snap.elements.find((e) => e.role === 'textbox');
    const button = snap.elements.find((e) => e.role === 'button' && e.name === 'Send');
    assert.ok(input && button, JSON.stringify(snap.elements));
    await desktop.browser.fill(input.ref, 'warren');
    await desktop.browser.click(button.ref);
    await eventually(async () => (await desktop.browser.text()).title === 'sent', 10_000, 'the click');
    const after = await desktop.browser.snapshot();
    assert.equal(after.elements.find((e) => e.ref === input.ref)?.value, 'warren');
    // Typed on the display, characters outside its keymap too, none lost.
    await desktop.browser.click(input.ref);
    await desktop.write('aé日本z');
    await eventually(
      async () => (await desktop.browser.snapshot()).elements.find((e) => e.ref === input.ref)?.value === 'warrenaé日本z',
      10_000,
      'the typed text',
    );
    await assert.rejects(desktop.browser.click('no-such-ref'), (err) => err instanceof WarrenError && err.status < 500);
  });

  it('gives Playwright what connectOverCDP needs', async () => {
    const dir = process.env.WARREN_PLAYWRIGHT_DIR ?? '/var/cache/warren-test/playwright';
    const { chromium } = createRequire(join(dir, 'node_modules', 'x.js'))('playwright-core');
    const cdp = desktop.browser.cdpUrl();
    assert.match(cdp.url, /^ws:\/\/.*\/desktop\/browser\/cdp$/);
    assert.ok(!cdp.url.includes(apiKey), 'the key travels in a header, not the URL');
    const pw = await chromium.connectOverCDP(cdp.url, { headers: cdp.headers, timeout: 30_000 });
    try {
      const page = pw.contexts()[0].pages()[0];
      assert.equal(await page.title(), 'sent');
      assert.equal(await page.evaluate(() => 6 * 7), 42);
    } finally {
      await pw.close();
    }
  });

  it('gets a live-view URL with the contract body, and its token opens the stream', async () => {
    const sent = [];
    const recording = async (input, init) => {
      sent.push({ url: String(input), method: init.method, body: init.body });
      return fetch(input, init);
    };
    const viaRecorder = await Sandbox.connect(sbx.sandboxId, { ...opts, fetch: recording });
    const url = await viaRecorder.desktop.stream.getUrl({ viewOnly: true, ttlSeconds: 60 });
    const call = sent.find((s) => s.url.endsWith(`/v1/sandboxes/${sbx.sandboxId}/desktop/stream/url`));
    assert.ok(call, JSON.stringify(sent));
    assert.equal(call.method, 'POST');
    assert.deepEqual(JSON.parse(call.body), { view_only: true, ttl_seconds: 60 });
    assert.equal(url.viewOnly, true);
    assert.match(url.url, new RegExp(`/ui/desktop/${sbx.sandboxId}#token=`));
    assert.equal(url.url.split('#token=')[1], url.token);
    const left = url.expiresAt.getTime() - Date.now();
    assert.ok(left > 0 && left <= 61_000, `expires in ${left} ms`);
  });

  it('refuses bad coordinates with invalid_request and stops', async () => {
    await assert.rejects(desktop.leftClick(5000, 5000), InvalidRequestError);
    await desktop.browser.stop();
    assert.equal((await desktop.browser.status()).running, false);
    assert.equal((await desktop.stop()).running, false);
  });
});
