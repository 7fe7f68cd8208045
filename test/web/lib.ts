// The console's browser tests: a Strata app on a test database listening on an ephemeral port,
// and Debian's chromium driven by playwright-core (one browser per test file, a context per test).
// Every context records each request URL the page makes, so a test can check that the page never
// asks another host.
import type { AddressInfo } from 'node:net';
import { inflateSync } from 'node:zlib';
import { serve } from '@hono/node-server';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestApp, type TestApp } from '../helpers/app.ts';

export { launchChromium } from './browser.ts';

export interface ConsoleServer {
  t: TestApp;
  origin: string;
  close(): Promise<void>;
}

export async function startConsoleServer(): Promise<ConsoleServer> {
  const t = await createTestApp();
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    t, origin: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => { (server as { closeAllConnections?: () => void }).closeAllConnections?.(); server.close(() => resolve()); });
      await t.close();
    },
  };
}

export interface Session {
  context: BrowserContext;
  page: Page;
  /** Every URL the page requested. */
  urls: string[];
}

export async function newSession(browser: Browser, origin: string, viewport = { width: 1280, height: 800 }): Promise<Session> {
  const context = await browser.newContext({ viewport, acceptDownloads: true, baseURL: origin });
  const urls: string[] = [];
  await context.route('**/*', (route) => {
    urls.push(route.request().url());
    return route.continue();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => { urls.push(`pageerror:${e.message}`); });
  return { context, page, urls };
}

export async function signIn(page: Page, key: string): Promise<void> {
  await page.goto('/');
  await page.getByLabel('API key').fill(key);
  await page.keyboard.press('Enter');
  await page.locator('#who strong').waitFor();
}

/** Decodes a PNG (8-bit RGB or RGBA, not interlaced: what chromium's screenshots are). */
export function decodePng(buf: Buffer): { width: number; height: number; pixel(x: number, y: number): [number, number, number] } {
  let p = 8;
  let width = 0;
  let height = 0;
  let channels = 4;
  const idat: Buffer[] = [];
  while (p < buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString('latin1', p + 4, p + 8);
    const data = buf.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('unsupported PNG');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      if (!channels) throw new Error(`unsupported PNG colour type ${data[9]}`);
    } else if (type === 'IDAT') idat.push(data);
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const pp = a + b - c;
        const pa = Math.abs(pp - a);
        const pb = Math.abs(pp - b);
        const pc = Math.abs(pp - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = (v + pred) & 0xff;
    }
  }
  return { width, height, pixel: (x, y) => { const i = y * stride + x * channels; return [out[i], out[i + 1], out[i + 2]]; } };
}
