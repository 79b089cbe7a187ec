// sandbox.desktop: a sandbox's virtual display (the `desktop` template),
// driven by mouse, keyboard, windows, applications, screenshots and
// recordings, in the shape of @e2b/desktop where it fits; `desktop.browser`
// is its Chromium and `desktop.stream` its live view.

import { Browser, call } from './browser.js';
import type { ApiClient, CallOptions } from './http.js';

/** A mouse button. */
export type MouseButton = 'left' | 'right' | 'middle';

/** Options of `desktop.start`. */
export interface DesktopStartOptions extends CallOptions {
  /** Screen width in pixels (default 1280). */
  width?: number;
  /** Screen height in pixels (default 800). */
  height?: number;
  /** Dots per inch (default 96). */
  dpi?: number;
}

/** One process of the desktop (the X server, the window manager). */
export interface DesktopProcess {
  name: string;
  processId: string;
  pid: number;
  running: boolean;
}

/** Whether the desktop runs, and its processes' health. */
export interface DesktopStatus {
  running: boolean;
  /** The X display (`:0`), while running. */
  display?: string;
  width?: number;
  height?: number;
  dpi?: number;
  processes: DesktopProcess[];
}

/** Options of `desktop.screenshot` and `screenshotRegion`. */
export interface ScreenshotOptions extends CallOptions {
  /** `png` (default) or `jpeg`. */
  format?: 'png' | 'jpeg';
  /** JPEG quality, 1 to 100 (default 80). */
  quality?: number;
  /** Scale factor, above 0 and at most 1 (default 1). */
  scale?: number;
  /** Draw the mouse pointer (default false). */
  cursor?: boolean;
}

/** A rectangle of the screen for `screenshotRegion`. */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** One top-level window. */
export interface Window {
  /** The X window id. */
  id: number;
  title: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Whether it has the input focus. */
  focused: boolean;
}

/** The top-level windows, and whether the list was cut short. */
export interface WindowList {
  items: Window[];
  /** More windows than the agent lists (1000) are open. */
  truncated: boolean;
}

/** Options of `launch` and `open`. */
export interface LaunchOptions extends CallOptions {
  /** The sandbox user to run it as (default the agent's own). */
  user?: string;
}

/** Options of `startRecording`. */
export interface RecordingOptions extends CallOptions {
  /** Frames per second, 1 to 30 (default 10). */
  framerate?: number;
  /** Seconds after which the recording ends by itself, as `done` (default and at most 3600). */
  maxSeconds?: number;
}

/** The process `launch` or `open` started. */
export interface Launched {
  /** Its managed process (`proc_…`). */
  processId: string;
  pid: number;
}

/** A recording of the screen (MP4). */
export interface Recording {
  /** `rec_…`. */
  id: string;
  status: 'recording' | 'done' | 'failed';
  sizeBytes: number;
  modifiedAt: Date;
}

/** Options of `desktop.stream.getUrl`. */
export interface StreamUrlOptions extends CallOptions {
  /** A view that sends no input to the display (default false). */
  viewOnly?: boolean;
  /** How long the URL works, 1 to 86400 seconds (default 3600). */
  ttlSeconds?: number;
}

/** A shareable URL of the live view. */
export interface StreamUrl {
  /** The page showing the desktop; its token is in the fragment. */
  url: string;
  /** The token alone (scoped to this sandbox's stream). */
  token: string;
  viewOnly: boolean;
  expiresAt: Date;
}

interface WireStatus {
  running: boolean;
  display?: string;
  width?: number;
  height?: number;
  dpi?: number;
  processes: { name: string; process_id: string; pid: number; running: boolean }[];
}

interface WireRecording {
  id: string;
  status: 'recording' | 'done' | 'failed';
  size_bytes: number;
  modified_at: string;
}

const toStatus = (w: WireStatus): DesktopStatus => ({
  running: w.running,
  display: w.display,
  width: w.width,
  height: w.height,
  dpi: w.dpi,
  processes: w.processes.map((p) => ({ name: p.name, processId: p.process_id, pid: p.pid, running: p.running })),
});

const toRecording = (w: WireRecording): Recording => ({
  id: w.id,
  status: w.status,
  sizeBytes: w.size_bytes,
  modifiedAt: new Date(w.modified_at),
});

const toLaunched = (w: { process_id: string; pid: number }): Launched => ({ processId: w.process_id, pid: w.pid });

/** The live view of a desktop: `sandbox.desktop.stream`. */
export class DesktopStream {
  /** @internal Use `sandbox.desktop.stream`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {}

  /** A URL of a page showing the desktop live, to open or share until it expires. */
  async getUrl(opts: StreamUrlOptions = {}): Promise<StreamUrl> {
    const json = { view_only: opts.viewOnly ?? false, ttl_seconds: opts.ttlSeconds ?? 3600 };
    const path = `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/desktop/stream/url`;
    const w = await this.api.json<{ url: string; token: string; view_only: boolean; expires_at: string }>('POST', path, {
      json,
      ...call(opts),
    });
    return { url: w.url, token: w.token, viewOnly: w.view_only, expiresAt: new Date(w.expires_at) };
  }
}

/** The desktop of a sandbox: `sandbox.desktop`. */
export class Desktop {
  /** The desktop's Chromium. */
  readonly browser: Browser;
  /** The live view. */
  readonly stream: DesktopStream;

  /** @internal Use `sandbox.desktop`. */
  constructor(
    private readonly api: ApiClient,
    private readonly sandboxId: string,
  ) {
    this.browser = new Browser(api, sandboxId);
    this.stream = new DesktopStream(api, sandboxId);
  }

  private path(rest: string): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/desktop/${rest}`;
  }

  private async post(rest: string, json: unknown, opts: CallOptions = {}): Promise<void> {
    await this.api.json('POST', this.path(rest), { json, ...call(opts) });
  }

  /** Starts the display and window manager (idempotent for the same size). */
  async start(opts: DesktopStartOptions = {}): Promise<DesktopStatus> {
    const json = { width: opts.width, height: opts.height, dpi: opts.dpi };
    return toStatus(await this.api.json<WireStatus>('POST', this.path('start'), { json, ...call(opts) }));
  }

  /** Stops the display (and what runs on it). */
  async stop(opts: CallOptions = {}): Promise<DesktopStatus> {
    return toStatus(await this.api.json<WireStatus>('POST', this.path('stop'), call(opts)));
  }

  /** Whether it runs, and its processes' health. */
  async status(opts: CallOptions = {}): Promise<DesktopStatus> {
    return toStatus(await this.api.json<WireStatus>('GET', this.path('status'), call(opts)));
  }

  /** The whole screen as PNG (default) or JPEG. */
  async screenshot(opts: ScreenshotOptions = {}): Promise<Uint8Array> {
    return this.api.bytes('GET', this.path('screenshot'), { query: imageQuery(opts), ...call(opts) });
  }

  /** A rectangle of the screen as PNG (default) or JPEG. */
  async screenshotRegion(region: Region, opts: ScreenshotOptions = {}): Promise<Uint8Array> {
    const query = { ...imageQuery(opts), x: region.x, y: region.y, width: region.width, height: region.height };
    return this.api.bytes('GET', this.path('screenshot/region'), { query, ...call(opts) });
  }

  /** Moves the pointer. */
  async moveMouse(x: number, y: number, opts: CallOptions = {}): Promise<void> {
    await this.post('mouse/move', { x, y }, opts);
  }

  /** Clicks the left button, at `x`, `y` if given, else where the pointer is. */
  async leftClick(x?: number, y?: number, opts: CallOptions = {}): Promise<void> {
    await this.click('left', 1, x, y, opts);
  }

  /** Clicks the right button. */
  async rightClick(x?: number, y?: number, opts: CallOptions = {}): Promise<void> {
    await this.click('right', 1, x, y, opts);
  }

  /** Clicks the middle button. */
  async middleClick(x?: number, y?: number, opts: CallOptions = {}): Promise<void> {
    await this.click('middle', 1, x, y, opts);
  }

  /** Double-clicks the left button. */
  async doubleClick(x?: number, y?: number, opts: CallOptions = {}): Promise<void> {
    await this.click('left', 2, x, y, opts);
  }

  private async click(button: MouseButton, count: number, x?: number, y?: number, opts: CallOptions = {}): Promise<void> {
    await this.post('mouse/click', { x, y, button, count }, opts);
  }

  /** Holds a button down where the pointer is. */
  async mousePress(button: MouseButton = 'left', opts: CallOptions = {}): Promise<void> {
    await this.post('mouse/down', { button }, opts);
  }

  /** Releases a button where the pointer is. */
  async mouseRelease(button: MouseButton = 'left', opts: CallOptions = {}): Promise<void> {
    await this.post('mouse/up', { button }, opts);
  }

  /** Presses the left button at `from`, moves, releases at `to`. */
  async drag(from: [number, number], to: [number, number], opts: CallOptions = {}): Promise<void> {
    await this.post('mouse/drag', { start_x: from[0], start_y: from[1], end_x: to[0], end_y: to[1] }, opts);
  }

  /** Turns the wheel where the pointer is, `amount` steps. */
  async scroll(direction: 'up' | 'down' = 'down', amount = 1, opts: CallOptions = {}): Promise<void> {
    await this.post('mouse/scroll', { dx: 0, dy: direction === 'up' ? -amount : amount }, opts);
  }

  /** Where the pointer is. */
  async getCursorPosition(opts: CallOptions = {}): Promise<{ x: number; y: number }> {
    return this.api.json('GET', this.path('mouse/position'), call(opts));
  }

  /** The screen's size in pixels. */
  async getScreenSize(opts: CallOptions = {}): Promise<{ width: number; height: number }> {
    const info = await this.api.json<{ width: number; height: number }>('GET', this.path('display/info'), call(opts));
    return { width: info.width, height: info.height };
  }

  /** Types text as key strokes. */
  async write(text: string, opts: CallOptions & { delayInMs?: number } = {}): Promise<void> {
    await this.post('keyboard/type', { text, delay_ms: opts.delayInMs }, opts);
  }

  /** Presses a key (`Return`, `ctrl+l`), or keys held together (`['ctrl', 'l']`). */
  async press(key: string | string[], opts: CallOptions = {}): Promise<void> {
    await this.post('keyboard/press', { key: Array.isArray(key) ? key.join('+') : key }, opts);
  }

  /** The clipboard's text. */
  async getClipboard(opts: CallOptions = {}): Promise<string> {
    return (await this.api.json<{ text: string }>('GET', this.path('clipboard'), call(opts))).text;
  }

  /** Puts text on the clipboard. */
  async setClipboard(text: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('PUT', this.path('clipboard'), { json: { text }, ...call(opts) });
  }

  /** The top-level windows, in stacking order. */
  async getWindows(opts: CallOptions = {}): Promise<Window[]> {
    return (await this.listWindows(opts)).items;
  }

  /** The top-level windows, with `truncated` when there were more than listed. */
  async listWindows(opts: CallOptions = {}): Promise<WindowList> {
    const list = await this.api.json<WindowList>('GET', this.path('windows'), call(opts));
    return { items: list.items, truncated: Boolean(list.truncated) };
  }

  /** Gives a window the input focus. */
  async focusWindow(id: number, opts: CallOptions = {}): Promise<void> {
    await this.post(`windows/${id}/focus`, {}, opts);
  }

  /** Moves a window. */
  async moveWindow(id: number, x: number, y: number, opts: CallOptions = {}): Promise<void> {
    await this.post(`windows/${id}/move`, { x, y }, opts);
  }

  /** Resizes a window. */
  async resizeWindow(id: number, width: number, height: number, opts: CallOptions = {}): Promise<void> {
    await this.post(`windows/${id}/resize`, { width, height }, opts);
  }

  /** Closes a window. */
  async closeWindow(id: number, opts: CallOptions = {}): Promise<void> {
    await this.post(`windows/${id}/close`, {}, opts);
  }

  /** Opens a URL or file with its default handler (URLs and HTML in Chromium), as `opts.user` when given. */
  async open(target: string, opts: LaunchOptions = {}): Promise<Launched> {
    const json = { target, user: opts.user };
    return toLaunched(await this.api.json('POST', this.path('open'), { json, ...call(opts) }));
  }

  /** Starts an application on the display (as `opts.user` when given). */
  async launch(app: string, args: string[] = [], opts: LaunchOptions = {}): Promise<Launched> {
    const json = { app, args, user: opts.user };
    return toLaunched(await this.api.json('POST', this.path('launch'), { json, ...call(opts) }));
  }

  /** Starts recording the screen (one recording at a time); it ends by itself after `maxSeconds`. */
  async startRecording(opts: RecordingOptions = {}): Promise<Recording> {
    const json = { framerate: opts.framerate, max_seconds: opts.maxSeconds };
    return toRecording(await this.api.json('POST', this.path('recording/start'), { json, ...call(opts) }));
  }

  /** Stops the recording and finishes its MP4. */
  async stopRecording(opts: CallOptions = {}): Promise<Recording> {
    return toRecording(await this.api.json('POST', this.path('recording/stop'), call(opts)));
  }

  /** The recordings kept, oldest first. */
  async listRecordings(opts: CallOptions = {}): Promise<Recording[]> {
    const list = await this.api.json<{ items: WireRecording[] }>('GET', this.path('recordings'), call(opts));
    return list.items.map(toRecording);
  }

  /** A recording's MP4. */
  async downloadRecording(id: string, opts: CallOptions = {}): Promise<Uint8Array> {
    return this.api.bytes('GET', this.path(`recordings/${encodeURIComponent(id)}`), call(opts));
  }

  /** Deletes a recording. */
  async deleteRecording(id: string, opts: CallOptions = {}): Promise<void> {
    await this.api.json('DELETE', this.path(`recordings/${encodeURIComponent(id)}`), call(opts));
  }
}

function imageQuery(opts: ScreenshotOptions) {
  return { format: opts.format, quality: opts.quality, scale: opts.scale, cursor: opts.cursor };
}
