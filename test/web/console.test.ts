// The console end to end in chromium: sign-in, upload through the page, the chart (the series it
// received are the API's, and its canvas is drawn where the line must be), drag-zoom re-queries a
// narrower range, a point's trace names the ingest whose SHA-256 matches the file and whose
// original downloads with that hash, audit verification, key creation and revocation, a reader
// sees no write action (and the API refuses them), and no request ever goes to another host.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleServer, type Session, decodePng, launchChromium, newSession, signIn, startConsoleServer } from './lib.ts';

const FIXTURE = path.resolve('fixtures/arrow/logger_us.arrows');
const STREAM = 'lab1';
let srv: ConsoleServer;
let browser: Browser;
const sessions: Session[] = [];
let fixture: Buffer;
let fixtureSha: string;

beforeAll(async () => {
  [srv, browser, fixture] = await Promise.all([startConsoleServer(), launchChromium(), readFile(FIXTURE)]);
  fixtureSha = createHash('sha256').update(fixture).digest('hex');
});
afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

async function session(viewport?: { width: number; height: number }): Promise<Session> {
  const s = await newSession(browser, srv.origin, viewport);
  sessions.push(s);
  return s;
}

const api = (p: string, init: RequestInit & { key?: string } = {}): Promise<Response> => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${init.key ?? srv.t.adminKey}`);
  return fetch(`${srv.origin}${p}`, { ...init, headers });
};

async function uploadThroughPage(s: Session): Promise<void> {
  await s.page.goto('/#/upload');
  await s.page.getByLabel('Stream', { exact: true }).fill(STREAM);
  await s.page.getByLabel('Instrument (optional)').fill('logger-3');
  await s.page.getByLabel('Operator (optional)').fill('Åsa Chen');
  await s.page.locator('#upload-files').setInputFiles(FIXTURE);
}

describe('the console', () => {
  it('is served with strict security headers, and GET / is the page', async () => {
    const res = await fetch(`${srv.origin}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect((await fetch(`${srv.origin}/ui/uplot.esm.js`)).status).toBe(200);
    expect((await fetch(`${srv.origin}/ui/..%2Fpackage.json`)).status).toBe(404);
  });

  it('signs in, uploads a fixture through the upload page (twice: stored once), and lists its stream', async () => {
    const s = await session();
    await signIn(s.page, srv.t.adminKey);
    expect(await s.page.evaluate('document.cookie')).toBe('');
    expect(s.page.url()).not.toContain(srv.t.adminKey);
    await uploadThroughPage(s);
    const item = s.page.locator('ol.uploads li').first();
    await expect.poll(() => item.getAttribute('data-status'), { timeout: 30_000 }).toBe('201');
    await expect.poll(() => item.textContent(), { timeout: 20_000 }).toContain('Stored as ingest');
    expect(await item.textContent()).toContain('3,500');
    expect(await item.locator('progress').evaluate((p) => (p as unknown as { value: number }).value)).toBe(1);
    // The same file again, dropped on the page: the idempotency key (its SHA-256) makes it a duplicate.
    const dropped = await s.page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      const bytes = Uint8Array.from(atob(${JSON.stringify(fixture.toString('base64'))}), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], 'logger_us.arrows'));
      return dt;
    })()`);
    await s.page.locator('.drop').dispatchEvent('drop', { dataTransfer: dropped });
    const second = s.page.locator('ol.uploads li').nth(1);
    await expect.poll(() => second.getAttribute('data-status'), { timeout: 30_000 }).toBe('200');
    expect(await second.textContent()).toContain('Already stored');
    const list = await (await api(`/v1/ingests?stream=${STREAM}&status=committed`)).json() as { ingests: { sha256: string; idempotency_key: string }[] };
    expect(list.ingests).toHaveLength(1);
    expect(list.ingests[0].sha256).toBe(fixtureSha);
    expect(list.ingests[0].idempotency_key).toBe(`sha256:${fixtureSha}`);
    await s.page.locator('nav').getByRole('link', { name: 'Streams' }).click();
    const row = s.page.locator(`tr[data-stream="${STREAM}"]`);
    await row.waitFor();
    expect(await row.textContent()).toMatch(/temp_c/);
    expect(await row.textContent()).toContain('3,500');
  });

  it('draws the chart from the API\'s series, pixels where the line must be; a drag zooms with a narrower query', async () => {
    const s = await session();
    await signIn(s.page, srv.t.adminKey);
    const first = s.page.waitForResponse((r) => r.url().includes(`/v1/streams/${STREAM}/query`));
    await s.page.goto(`/#/chart?stream=${STREAM}&fields=temp_c&range=1h&tz=UTC`);
    const res = await first;
    const received = await res.json() as { columns: { name: string }[]; rows: unknown[][]; level: string; buckets: number };
    const url = new URL(res.url());
    expect(url.searchParams.get('resolution')).toBe('auto');
    expect(url.searchParams.get('agg')).toBe('min,max,avg');
    const maxPoints = Number(url.searchParams.get('max_points'));
    await s.page.locator('.plot[data-draws]').waitFor();
    const plotWidth = await s.page.locator('.plot').evaluate((el) => Math.round((el as unknown as { uplot: { bbox: { width: number } } }).uplot.bbox.width / (globalThis as unknown as { devicePixelRatio: number }).devicePixelRatio));
    expect(maxPoints).toBe(plotWidth);
    // The series the page received are what the API answers for that view.
    const direct = await (await api(`${url.pathname}${url.search}`)).json();
    expect(received).toEqual(direct);
    expect(received.rows.length).toBeGreaterThan(10);
    await expect.poll(() => s.page.locator('[data-level]').textContent(), { timeout: 20_000 }).toBe(received.level);

    // Pixels: at the positions of several averages, the screenshot is not blank.
    const plot = s.page.locator('.plot');
    const box = (await plot.boundingBox())!;
    const positions = await plot.evaluate((el) => {
      const u = (el as unknown as { uplot: { data: (number | null)[][]; valToPos(v: number, s: string): number; over: { getBoundingClientRect(): { left: number; top: number } }; series: { scale: string }[] } }).uplot;
      const o = u.over.getBoundingClientRect();
      const pts: [number, number][] = [];
      for (let i = 0; i < u.data[0].length; i += Math.max(1, Math.floor(u.data[0].length / 12))) {
        const v = u.data[1][i];
        if (v === null || v === undefined) continue;
        pts.push([o.left + u.valToPos(u.data[0][i]!, 'x'), o.top + u.valToPos(v, u.series[1].scale)]);
      }
      return { pts, blank: [o.left + 3, o.top + 3] as [number, number] };
    });
    expect(positions.pts.length).toBeGreaterThan(5);
    const png = decodePng(await s.page.screenshot());
    const inked = (x: number, y: number): boolean => {
      for (let dx = -2; dx <= 2; dx++) for (let dy = -2; dy <= 2; dy++) {
        const [r, , b] = png.pixel(Math.round(x) + dx, Math.round(y) + dy);
        if (b > r + 40 && b > 120) return true; // the first series' blue
      }
      return false;
    };
    for (const [x, y] of positions.pts) expect(inked(x, y), `line at ${x},${y}`).toBe(true);
    expect(box.width).toBeGreaterThan(600);

    // The view as CSV: the same query with format=csv.
    const csvDownload = s.page.waitForEvent('download');
    await s.page.getByRole('button', { name: 'Download CSV' }).click();
    const csv = await readFile((await (await csvDownload).path())!, 'utf8');
    expect(csv.split('\n')[0]).toBe('time,temp_c_min,temp_c_max,temp_c_avg');
    expect(csv.trim().split('\n')).toHaveLength(received.rows.length + 1);

    // Drag over the middle third: a new query with a narrower range inside the old one; the chart redraws.
    const draws = Number(await plot.getAttribute('data-draws'));
    const over = (await s.page.locator('.u-over').boundingBox())!;
    const zoomed = s.page.waitForRequest((r) => r.url().includes('/query?') && r.url() !== res.url());
    await s.page.mouse.move(over.x + over.width / 3, over.y + over.height / 2);
    await s.page.mouse.down();
    await s.page.mouse.move(over.x + over.width / 2, over.y + over.height / 2, { steps: 5 });
    await s.page.mouse.move(over.x + (2 * over.width) / 3, over.y + over.height / 2, { steps: 5 });
    await s.page.mouse.up();
    const z = new URL((await zoomed).url());
    const [f0, t0] = [Date.parse(url.searchParams.get('from')!), Date.parse(url.searchParams.get('to')!)];
    const [f1, t1] = [Date.parse(z.searchParams.get('from')!), Date.parse(z.searchParams.get('to')!)];
    expect(f1).toBeGreaterThan(f0);
    expect(t1).toBeLessThan(t0);
    expect((t1 - f1) / (t0 - f0)).toBeGreaterThan(0.25);
    expect((t1 - f1) / (t0 - f0)).toBeLessThan(0.45);
    expect(Number(z.searchParams.get('max_points'))).toBe(plotWidth);
    await expect.poll(async () => Number(await plot.getAttribute('data-draws')), { timeout: 20_000 }).toBeGreaterThan(draws);
    // The URL holds the view: a reload shows the zoomed range.
    expect(s.page.url()).toContain('range=custom');
    const again = s.page.waitForRequest((r) => r.url().includes('/query?'));
    await s.page.reload();
    const r2 = new URL((await again).url());
    expect(r2.searchParams.get('from')).toBe(z.searchParams.get('from'));
    expect(r2.searchParams.get('to')).toBe(z.searchParams.get('to'));
    // Double-click goes back to the range chosen before zooming (the preset).
    await s.page.locator('.plot').evaluate((el) => (el as unknown as { uplot: unknown }).uplot !== undefined);
    const back = s.page.waitForRequest((r) => r.url().includes('/query?') && !r.url().includes(encodeURIComponent(z.searchParams.get('from')!)));
    await s.page.locator('.u-over').dblclick();
    const b = new URL((await back).url());
    expect(Date.parse(b.searchParams.get('to')!) - Date.parse(b.searchParams.get('from')!)).toBe(t0 - f0);
    // From the keyboard: → pans later by a quarter of the view.
    await s.page.locator('.plot').focus();
    const panned = s.page.waitForRequest((r) => r.url().includes('/query?') && r.url() !== b.toString());
    await s.page.keyboard.press('ArrowRight');
    const p = new URL((await panned).url());
    expect(Date.parse(p.searchParams.get('from')!) - Date.parse(b.searchParams.get('from')!)).toBe((t0 - f0) / 4);
  });

  it('traces a clicked point to its ingest: the SHA-256 matches the posted file and the original downloads with it', async () => {
    const s = await session();
    await signIn(s.page, srv.t.adminKey);
    const loaded = s.page.waitForResponse((r) => r.url().includes('/query?'));
    await s.page.goto(`/#/chart?stream=${STREAM}&fields=temp_c&range=1h&tz=UTC`);
    await loaded;
    await s.page.locator('.plot[data-draws]').waitFor();
    const pos = await s.page.locator('.plot').evaluate((el) => {
      const u = (el as unknown as { uplot: { data: (number | null)[][]; valToPos(v: number, s: string): number; over: { getBoundingClientRect(): { left: number; top: number } }; series: { scale: string }[] } }).uplot;
      const o = u.over.getBoundingClientRect();
      const i = Math.floor(u.data[0].length / 2);
      return [o.left + u.valToPos(u.data[0][i]!, 'x'), o.top + u.valToPos(u.data[1][i]!, u.series[1].scale)];
    });
    const traced = s.page.waitForResponse((r) => r.url().includes('/provenance?'));
    await s.page.mouse.click(pos[0], pos[1]);
    const trace = await (await traced).json() as { ingests: { id: string; sha256: string }[]; range: { from: string; to: string } };
    expect(trace.ingests).toHaveLength(1);
    const card = s.page.locator(`.trace li[data-ingest="${trace.ingests[0].id}"]`);
    await card.waitFor();
    expect(await card.locator('code.sha').first().textContent()).toBe(fixtureSha);
    expect(await card.textContent()).toContain('logger_us.arrows');
    expect(await card.textContent()).toContain('logger-3');
    expect(await card.textContent()).toContain('Åsa Chen');
    await expect.poll(() => card.locator('details summary', { hasText: 'Audit entries' }).textContent(), { timeout: 20_000 }).toMatch(/Audit entries \([1-9]/);
    await s.page.screenshot({ path: 'docs/console.png' });
    const download = s.page.waitForEvent('download');
    await card.getByRole('button', { name: 'Download original' }).click();
    const file = await download;
    const got = createHash('sha256').update(await readFile((await file.path())!)).digest('hex');
    expect(got).toBe(fixtureSha);
    await expect.poll(() => card.locator('.hashcheck').textContent(), { timeout: 20_000 }).toContain('matches');
  });

  it('verifies the audit log from the page; creates a key (shown once) and revokes it', async () => {
    const s = await session();
    await signIn(s.page, srv.t.adminKey);
    await s.page.goto('/#/audit');
    await s.page.getByRole('button', { name: 'Verify the log' }).click();
    const ok = s.page.locator('[data-ok="true"]');
    await ok.waitFor();
    const v = await (await api('/v1/audit/verify')).json() as { entries: number; head: string };
    expect(await ok.textContent()).toContain(`${v.entries} entries`);
    expect(await s.page.locator('#audit-head').textContent()).toBe(v.head);

    await s.page.goto('/#/admin');
    await s.page.getByLabel('Name', { exact: true }).fill('console test reader');
    await s.page.getByLabel('Role', { exact: true }).selectOption('reader');
    await s.page.getByRole('button', { name: 'Create key' }).click();
    const secret = (await s.page.locator('#new-key-secret').textContent())!;
    expect(secret).toMatch(/^strata_/);
    const me = await (await api('/v1/whoami', { key: secret })).json() as { id: number; role: string };
    expect(me.role).toBe('reader');
    const row = s.page.locator(`tr[data-key="${me.id}"]`);
    s.page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => s.page.locator(`tr[data-key="${me.id}"]`).textContent(), { timeout: 20_000 }).toContain('revoked');
    expect((await api('/v1/whoami', { key: secret })).status).toBe(401);
  });

  it('offers a reader no write action, and the API refuses them', async () => {
    const reader = await srv.t.key('reader');
    const s = await session();
    await signIn(s.page, reader);
    expect(await s.page.locator('#who').textContent()).toContain('reader');
    const nav = (await s.page.locator('nav').textContent()) ?? '';
    expect(nav).toContain('Chart');
    for (const hidden of ['Upload', 'Ingests', 'Audit', 'Admin']) expect(nav).not.toContain(hidden);
    const writes = /^(Upload|Retract|Revoke|Run now|Place hold|Create key|Release|Save|Download original)$/;
    // Pages the role may not use show the first one it may (Streams).
    for (const [hash, ready] of [['#/streams', 'tr[data-stream]'], [`#/chart?stream=${STREAM}&fields=temp_c&range=1h`, '.plot[data-draws]'],
      ['#/upload', 'tr[data-stream]'], ['#/admin', 'tr[data-stream]'], ['#/ingests', 'tr[data-stream]']]) {
      await s.page.goto(`/${hash}`);
      await s.page.locator(ready).first().waitFor();
      const buttons = await s.page.locator('main button').allTextContents();
      expect(buttons.filter((b) => writes.test(b.trim())), hash).toEqual([]);
      expect(await s.page.locator('input[type=file]').count()).toBe(0);
    }
    const ingestId = ((await (await api(`/v1/ingests?stream=${STREAM}`)).json()) as { ingests: { id: string }[] }).ingests[0].id;
    const refused = [
      await api(`/v1/streams/${STREAM}/ingest`, { key: reader, method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: new Uint8Array(fixture) }),
      await api(`/v1/ingests/${ingestId}/retract`, { key: reader, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"x"}' }),
      await api('/v1/keys', { key: reader, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x","role":"admin"}' }),
      await api('/v1/jobs/rollups/run', { key: reader, method: 'POST' }),
      await api('/v1/holds', { key: reader, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"stream":"${STREAM}","reason":"x"}` }),
      await api(`/v1/streams/${STREAM}/provenance?time=2024-03-01T00:00:00Z`, { key: reader }),
    ];
    expect(refused.map((r) => r.status)).toEqual([403, 403, 403, 403, 403, 403]);
  });

  it('has labelled controls and fits a narrow window', async () => {
    const s = await session({ width: 420, height: 800 });
    await signIn(s.page, srv.t.adminKey);
    for (const [hash, ready] of [['#/streams', 'tr[data-stream]'], [`#/chart?stream=${STREAM}&fields=temp_c&range=1h`, '.plot[data-draws]'],
      ['#/ingests', 'tr[data-ingest]'], ['#/upload', '.drop'], ['#/audit', 'tbody tr'], ['#/admin', 'tr[data-key]']]) {
      await s.page.goto(`/${hash}`);
      await s.page.locator(ready).first().waitFor();
      await s.page.locator('main').getByText('Loading…').waitFor({ state: 'detached' });
      const unlabelled = await s.page.evaluate(`[...document.querySelectorAll('main input, main select, main textarea')]
        .filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.outerHTML.slice(0, 80))`);
      expect(unlabelled, hash).toEqual([]);
      const overflow = await s.page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number;
      expect(overflow, hash).toBeLessThanOrEqual(1);
    }
  });

  it('shows rejected uploads with their reasons, and lets an auditor retract an ingest with a reason and a confirmation', async () => {
    const other = await api('/v1/streams/lab2/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: new Uint8Array(fixture) });
    const id = ((await other.json()) as { ingest: { id: string } }).ingest.id;
    const bad = await api('/v1/streams/lab2/ingest', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'no,time\n1,2\n' });
    const badBody = await bad.json() as { code: string; ingest_id: string };
    const s = await session();
    await signIn(s.page, await srv.t.key('auditor'));
    await s.page.goto('/#/ingests?stream=lab2');
    const rejected = s.page.locator(`tr[data-ingest="${badBody.ingest_id}"]`);
    await rejected.waitFor();
    expect(await rejected.textContent()).toContain(badBody.code);
    expect(await rejected.getByRole('button', { name: 'Retract' }).count()).toBe(0);
    await s.page.locator(`tr[data-ingest="${id}"]`).getByRole('button', { name: 'Retract' }).click();
    const dialog = s.page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Retract' }).click(); // no reason: refused by the form
    expect(await dialog.isVisible()).toBe(true);
    await dialog.getByLabel(/Reason/).fill('sensor 3 miscalibrated');
    await dialog.getByRole('button', { name: 'Retract' }).click();
    await expect.poll(() => s.page.locator(`tr[data-ingest="${id}"]`).getAttribute('data-status'), { timeout: 20_000 }).toBe('retracted');
    const rec = await (await api(`/v1/ingests/${id}`)).json() as { status: string; retraction: { reason: string } };
    expect(rec).toMatchObject({ status: 'retracted', retraction: { reason: 'sensor 3 miscalibrated' } });
  });

  it('makes no request to any other host', () => {
    const all = sessions.flatMap((s) => s.urls);
    expect(all.length).toBeGreaterThan(20);
    const foreign = all.filter((u) => !u.startsWith(`${srv.origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
    expect(foreign).toEqual([]);
  });
});
