// Retraction: the ingest's rows leave every chunk they were in (other ingests' rows stay), the
// modules that derive data from rows are told inside the same transaction, the record turns
// 'retracted' with reason, who and when, the act is audited, and the record and the original
// stay. All or nothing. Where a rollups module is present, its answers agree with the raw rows
// afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { DAY_US, T0 } from '../helpers/polars.ts';
import { rowsOfIngest, streamTableOf } from '../helpers/stored.ts';
import { committed, json, upload } from '../helpers/uploads.ts';
import { registerRetractionObserver } from '../../src/ingest/observers.ts';
import { rollupCoverage } from '../../src/rollups/coverage.ts';
import { formatMicros } from '../../src/domain/time.ts';

let t: TestApp;
let auditorKey: string;
let auditorId: number;
let failFor: string | null = null;

beforeAll(async () => {
  t = await createTestApp();
  auditorKey = await t.key('auditor');
  auditorId = ((await (await t.request('/v1/keys')).json()) as { keys: { id: number; role: string }[] }).keys.find((k) => k.role === 'auditor')?.id as number;
  await t.db.pool.query('CREATE TABLE public.retraction_seen (ingest_id bigint, time_min bigint, time_max bigint, rows_left bigint)');
  // Stands in for the rollups module: records what it is told, inside the retraction's transaction.
  registerRetractionObserver(async (tx, info) => {
    if (failFor === info.ingestId.toString()) throw new Error('observer failed');
    const left = await tx.query(`SELECT count(*)::bigint AS n FROM strata_data.${info.stream.tableName} WHERE ingest_id = $1`, [info.ingestId.toString()]);
    await tx.query('INSERT INTO public.retraction_seen VALUES ($1, $2, $3, $4)',
      [info.ingestId.toString(), info.timeMin?.toString(), info.timeMax?.toString(), left.rows[0].n]);
  });
});
afterAll(async () => { await t.close(); });

const retract = (id: string, body: unknown = { reason: 'sensor S-1 was miscalibrated (ticket 42)' }, key = auditorKey): Promise<Response> =>
  t.request(`/v1/ingests/${id}/retract`, json({ method: 'POST', body, key }));

describe('retraction', () => {
  it('removes the ingest from every chunk, keeps the others, records who, when and why, and audits it', async () => {
    // X spans three daily chunks; Y shares its instants on another sample.
    const x = await committed(t, 'ret', { start: T0, n: 72, stepUs: 3_600_000_000n, sample: 'S-1' });
    const y = await committed(t, 'ret', { start: T0, n: 72, stepUs: 3_600_000_000n, sample: 'S-2' });
    expect(x.body.ingest.chunks).toHaveLength(3);

    const res = await retract(x.id);
    expect(res.status, await res.clone().text()).toBe(200);
    const rec = await res.json() as { status: string; retraction: { by: number; reason: string; rows: number; at: string; key: { role: string } }; audit: { action: string; actor_key_id: number; actor_role: string; details: Record<string, unknown> }[] };
    expect(rec.status).toBe('retracted');
    expect(rec.retraction).toMatchObject({ by: auditorId, reason: 'sensor S-1 was miscalibrated (ticket 42)', rows: 72, key: { role: 'auditor' } });
    expect(Date.now() - Date.parse(rec.retraction.at)).toBeLessThan(60_000);
    const entry = rec.audit.find((e) => e.action === 'ingest.retract');
    expect(entry).toMatchObject({ actor_key_id: auditorId, actor_role: 'auditor' });
    expect(entry?.details).toMatchObject({ rows_deleted: 72, rows_recorded: 72, rows_not_found: 0, reason: 'sensor S-1 was miscalibrated (ticket 42)', sha256: x.sha256 });
    expect(Object.values(entry?.details.chunks as Record<string, number>)).toEqual([24, 24, 24]);

    expect(await rowsOfIngest(t.db, x.id)).toBe(0);
    expect(await rowsOfIngest(t.db, y.id)).toBe(72);
    const q = await (await t.request('/v1/streams/ret/query')).json() as { rows: unknown[][] };
    expect(q.rows.length).toBe(72);
    expect(new Set(q.rows.map((r) => r[1]))).toEqual(new Set(['S-2']));

    // Told in the same transaction, after the rows were gone, with the ingest's time range.
    const seen = await t.db.pool.query('SELECT * FROM public.retraction_seen WHERE ingest_id = $1', [x.id]);
    expect(seen.rows).toEqual([{ ingest_id: x.id, time_min: T0.toString(), time_max: (T0 + 71n * 3_600_000_000n).toString(), rows_left: '0' }]);

    // The record and the original stay; tracing shows what was retracted there.
    const original = await t.request(`/v1/ingests/${x.id}/original`);
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(x.bytes)).toBe(true);
    const trace = await (await t.request(`/v1/streams/ret/provenance?time=${formatMicros(T0)}&tag.sample=S-1`)).json() as { ingests: unknown[]; retracted: { id: string; retraction: { reason: string } }[] };
    expect(trace.ingests).toEqual([]);
    expect(trace.retracted.map((r) => r.id)).toEqual([x.id]);
    const listed = await (await t.request('/v1/ingests?status=retracted')).json() as { ingests: { id: string }[] };
    expect(listed.ingests.map((i) => i.id)).toEqual([x.id]);
    expect(((await (await t.request('/v1/audit/verify')).json()) as { ok: boolean }).ok).toBe(true);
  });

  it('is all or nothing: when an observer fails, rows, record and audit log stay as they were', async () => {
    const z = await committed(t, 'ret', { start: T0 + 10n * DAY_US, n: 5 });
    const headBefore = await (await t.request('/v1/audit?action=ingest.retract')).json() as { entries: unknown[] };
    failFor = z.id;
    try {
      expect((await retract(z.id)).status).toBe(500);
    } finally {
      failFor = null;
    }
    expect(await rowsOfIngest(t.db, z.id)).toBe(5);
    const rec = await (await t.request(`/v1/ingests/${z.id}`)).json() as { status: string; retraction: unknown };
    expect(rec).toMatchObject({ status: 'committed', retraction: null });
    const headAfter = await (await t.request('/v1/audit?action=ingest.retract')).json() as { entries: unknown[] };
    expect(headAfter.entries.length).toBe(headBefore.entries.length);
    expect((await retract(z.id)).status).toBe(200);
  });

  it('refuses a second retraction, a rejected ingest, and a missing or blank reason', async () => {
    const w = await committed(t, 'ret', { start: T0 + 20n * DAY_US, n: 3 });
    expect((await retract(w.id)).status).toBe(200);
    const again = await retract(w.id);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { detail: string }).detail).toContain('already retracted');
    const rejected = await upload(t, 'ret', { headers: { 'content-type': 'text/csv' } });
    const rid = (rejected.body as unknown as { ingest_id: string }).ingest_id;
    expect((await retract(rid)).status).toBe(409);
    const v = await committed(t, 'ret', { start: T0 + 30n * DAY_US, n: 3 });
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(5000) }, { reason: 'ok', extra: 1 }, { reason: 7 }]) {
      const res = await retract(v.id, body);
      expect(res.status, JSON.stringify(body).slice(0, 50)).toBe(400);
    }
    expect((await t.request(`/v1/ingests/${v.id}/retract`, { method: 'POST', body: 'reason' })).status).toBe(415);
    expect(await rowsOfIngest(t.db, v.id)).toBe(3);
    expect((await retract('999999')).status).toBe(404);
  });

  it('lets the same file be ingested again once its first ingest is retracted', async () => {
    const first = await committed(t, 'ret', { start: T0 + 40n * DAY_US, n: 4 });
    const dup = await t.request('/v1/streams/ret/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: first.bytes });
    expect(dup.status).toBe(200);
    expect((await retract(first.id)).status).toBe(200);
    const again = await t.request('/v1/streams/ret/ingest', { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: first.bytes });
    expect(again.status).toBe(201);
    const id = ((await again.json()) as { ingest: { id: string } }).ingest.id;
    expect(id).not.toBe(first.id);
    expect(await rowsOfIngest(t.db, id)).toBe(4);
  });

  it.runIf(rollupCoverage() !== null)('leaves the rollups agreeing with the raw rows', async () => {
    const s = await committed(t, 'ret-rollup', { start: T0, n: 240, stepUs: 60_000_000n, sample: 'S-1' });
    await committed(t, 'ret-rollup', { start: T0 + 30n * 60_000_000n, n: 240, stepUs: 60_000_000n, sample: 'S-2' });
    const hourly = async (): Promise<Record<string, unknown>[]> => {
      const res = await t.request('/v1/streams/ret-rollup/query?resolution=1h&agg=count,sum&fields=value&from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z');
      expect(res.status, await res.clone().text()).toBe(200);
      const body = await res.json() as { columns: { name: string }[]; rows: unknown[][] };
      return body.rows.map((r) => Object.fromEntries(body.columns.map((c, i) => [c.name, r[i]])));
    };
    await hourly(); // let the rollups materialise what they will
    expect((await retract(s.id)).status).toBe(200);
    const { table, col } = await streamTableOf(t.db, 'ret-rollup');
    const { rows: raw } = await t.db.pool.query(`SELECT date_trunc('hour', "time") AS h, count(${col('value')})::int AS n, sum(${col('value')}) AS s FROM ${table} GROUP BY 1 ORDER BY 1`);
    const api = (await hourly()).filter((r) => Number(r.value_count) > 0);
    expect(api.map((r) => Number(r.value_count))).toEqual(raw.map((r) => r.n));
    api.forEach((r, i) => expect(Math.abs(Number(r.value_sum) - raw[i].s)).toBeLessThan(1e-9 * Math.max(1, Math.abs(raw[i].s))));
  });
});
