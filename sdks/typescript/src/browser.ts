// sandbox.desktop.browser: the desktop's Chromium, driven by a few
// high-level routes (navigate, page text, accessibility snapshot, click and
// fill by ref, screenshot) and reachable over CDP through the server.

import type { ApiClient, CallOptions } from './http.js';

/** Options of `browser.start`. */
export interface BrowserStartOptions extends CallOptions {
  /** The first page (http, https, file or about; default `about:blank`). */
  url?: string;
  /** Run without a display (default false: on the desktop, which must be started). */
  headless?: boolean;
}

/** Whether the browser runs. */
export interface BrowserStatus {
  running: boolean;
  /** Whether it runs without a display. */
  headless?: boolean;
  /** Its managed process (`proc_…`). */
  processId?: string;
  /** Its DevTools port on the sandbox's loopback. */
  devtoolsPort?: number;
}

/** The page the browser shows. */
export interface BrowserPage {
  url: string;
  title: string;
  /** `document.body.innerText` (from `text()` only), at most 1 MiB. */
  text?: string;
  /** Whether `text` was cut at its limit. */
  truncated: boolean;
}

/** One element of the page's accessibility tree. */
export interface BrowserElement {
  /** Its ref for `click` and `fill`. */
  ref: string;
  role: string;
  name: string;
  value?: string;
}

/** The page's accessibility tree, flattened in document order. */
export interface BrowserSnapshot {
  url: string;
  elements: BrowserElement[];
  /** Whether elements were left out at the limit (2000). */
  truncated: boolean;
}

/** Options of `browser.navigate`. */
export interface NavigateOptions extends CallOptions {
  /** Answer after `load` (default) or `domcontentloaded`. */
  waitUntil?: 'load' | 'domcontentloaded';
}

/** Options of `browser.screenshot`. */
export interface BrowserScreenshotOptions extends CallOptions {
  /** `png` (default) or `jpeg`. */
  format?: 'png' | 'jpeg';
}

/** What a CDP client needs: `chromium.connectOverCDP(cdp.url, { headers: cdp.headers })`. */
export interface CdpEndpoint {
  /** `ws://` or `wss://` URL of the browser's DevTools endpoint through the server. */
  url: string;
  /** Headers carrying the API key (for Node clients such as Playwright). */
  headers: Record<string, string>;
  /** WebSocket subprotocols carrying the key instead (for browsers, which cannot set headers). */
  protocols: string[];
}

interface WireStatus {
  running: boolean;
  headless?: boolean;
  process_id?: string;
  devtools_port?: number;
}

const toStatus = (w: WireStatus): BrowserStatus => ({
  running: w.running,
  headless: w.headless,
  processId: w.process_id,
  devtoolsPort: w.devtools_port,
});

const toPage = (w: BrowserPage): BrowserPage => ({
  url: w.url,
  title: w.title,
  text: w.text,
  truncated: w.truncated ?? false,
});

/** base64url of UTF-8 text, without padding. */
function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The browser of a sandbox's desktop: `sandbox.desktop.browser`. */
export class Browser {
  /** @internal Use `sandbox.desktop.browser`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  private path(rest: string): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/desktop/browser/${rest}`;
  }

  /** Starts Chromium (a running one is left as it is). */
  async start(opts: BrowserStartOptions = {}): Promise<BrowserStatus> {
    const json = { url: opts.url, headless: opts.headless ?? false };
    return toStatus(await this.api.json<WireStatus>('POST', this.path('start'), { json, ...call(opts) }));
  }

  /** Stops it. */
  async stop(opts: CallOptions = {}): Promise<BrowserStatus> {
    return toStatus(await this.api.json<WireStatus>('POST', this.path('stop'), { json: {}, ...call(opts) }));
  }

  /** Whether it runs. */
  async status(opts: CallOptions = {}): Promise<BrowserStatus> {
    return toStatus(await this.api.json<WireStatus>('GET', this.path('status'), call(opts)));
  }

  /** Loads `url` in the first page and waits for it. */
  async navigate(url: string, opts: NavigateOptions = {}): Promise<BrowserPage> {
    const json = { url, wait_until: opts.waitUntil ?? 'load' };
    return toPage(await this.api.json<BrowserPage>('POST', this.path('navigate'), { json, ...call(opts) }));
  }

  /** The first page's URL, title and text. */
  async text(opts: CallOptions = {}): Promise<BrowserPage> {
    return toPage(await this.api.json<BrowserPage>('GET', this.path('text'), call(opts)));
  }

  /** The page's accessibility tree with a ref per element. */
  async snapshot(opts: CallOptions = {}): Promise<BrowserSnapshot> {
    return this.api.json<BrowserSnapshot>('GET', this.path('snapshot'), call(opts));
  }

  /** Clicks the element of `snapshot()` with this ref. */
  async click(ref: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('POST', this.path('click'), { json: { ref }, ...call(opts) });
  }

  /** Types `text` into the element with this ref, replacing its value. */
  async fill(ref: string, text: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('POST', this.path('fill'), { json: { ref, text }, ...call(opts) });
  }

  /** The page's viewport as PNG (default) or JPEG. */
  async screenshot(opts: BrowserScreenshotOptions = {}): Promise<Uint8Array> {
    return this.api.bytes('GET', this.path('screenshot'), { query: { format: opts.format }, ...call(opts) });
  }

  /**
   * The DevTools endpoint through the server, for
   * `chromium.connectOverCDP(url, { headers })` (Playwright) or
   * `puppeteer.connect({ browserWSEndpoint: url, headers })`.
   */
  cdpUrl(): CdpEndpoint {
    const url = this.api.url(this.path('cdp')).replace(/^http/, 'ws');
    const key = this.api.config.apiKey;
    return {
      url,
      headers: key ? { authorization: `Bearer ${key}` } : {},
      protocols: key ? ['warren.v1', `warren.key.${base64url(key)}`] : ['warren.v1'],
    };
  }
}

/** @internal The per-call options of a request. */
export function call(opts: CallOptions): { timeoutMs?: number; signal?: AbortSignal } {
  return { timeoutMs: opts.requestTimeoutMs, signal: opts.signal };
}
