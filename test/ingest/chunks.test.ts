// Chunks are created before rows need them — also in the middle of an upload, and when several
// uploads need the same new chunk at once — and an absurd time range is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { ARROW_STREAM } from '../helpers/fixtures.ts';
import { DAY_US, T0, arrowStream, loggerFrame, times } from '../helpers/polars.ts';
import { storedRowCount, rowsOfIngest } from '../helpers/stored.ts';

let t: TestApp;
beforeAll(async () => { t = await createTestApp(); });
afterAll(async () => { await t.close(); });

const post = (stream: string, body: Buffer, headers: Record<string, string> = {}): Promise<Response> =>
  t.request(`/v1/streams/${stream}/ingest`, { method: 'POST', headers: { 'content-type': ARROW_STREAM, ...headers }, body });

async function chunkState(stream: string): Promise<{ registry: string[]; attached: string[] }> {
  const reg = await t.db.pool.query<{ table_name: string }>(
    `SELECT c.table_name FROM strata.chunks c JOIN strata.streams s ON s.id = c.stream_id WHERE s.name = $1 AND c.state = 'active' ORDER BY 1`, [stream]);
  const att = await t.db.pool.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      JOIN strata.streams s ON s.table_name = p.relname WHERE s.name = $1 ORDER BY 1`, [stream]);
  return { registry: reg.rows.map((r) => r.table_name), attached: att.rows.map((r) => r.relname) };
}

describe('chunks', () => {
  it('creates the chunks a later batch of the same upload needs, mid-upload', async () => {
    const frames = [0, 1, 2, 3].map((d) => loggerFrame({ time: times(T0 + BigInt(d) * DAY_US, 500, 60_000_000n) }));
    const res = await post('span', arrowStream(frames));
    expect(res.status, await res.clone().text()).toBe(201);
    const body = await res.json() as { ingest: { rows: number; chunks: string[] } };
    expect(body.ingest.rows).toBe(2000);
    expect(await storedRowCount(t.db, 'span')).toBe(2000);
    const state = await chunkState('span');
    expect(state.registry).toHaveLength(4);
    expect(state.attached).toEqual(state.registry);
    expect(body.ingest.chunks).toEqual(state.registry);
  });

  it('stores 8 simultaneous uploads into one stream exactly once, several needing the same new chunk', async () => {
    const bodies = Array.from({ length: 8 }, (_, k) => {
      const day = BigInt(k % 3); // three uploads share each new day
      return arrowStream([loggerFrame({ time: times(T0 + 30n * DAY_US + day * DAY_US + BigInt(k) * 1000n, 1000, 50_000_000n), sample: Array(1000).fill(`dev-${k}`) })]);
    });
    const results = await Promise.all(bodies.map(async (b) => {
      const r = await post('concurrent', b);
      return { status: r.status, body: await r.json() as { ingest: { id: string } } };
    }));
    expect(results.map((r) => r.status), JSON.stringify(results)).toEqual(Array(8).fill(201));
    const ids = results.map((r) => r.body.ingest.id);
    expect(new Set(ids).size).toBe(8);
    expect(await storedRowCount(t.db, 'concurrent')).toBe(8000);
    for (const id of ids) expect(await rowsOfIngest(t.db, id)).toBe(1000);
    const state = await chunkState('concurrent');
    expect(state.registry).toHaveLength(3);
    expect(state.attached).toEqual(state.registry);
  });

  it('refuses a batch that would need more new chunks than allowed, naming the time range', async () => {
    const time = BigInt64Array.of(0n, T0); // an instrument whose clock fell back to 1970 for one row
    const res = await post('absurd', arrowStream([loggerFrame({ time })]));
    expect(res.status).toBe(422);
    const p = await res.json() as { code: string; detail: string; ingest_id: string };
    expect(p.code).toBe('too_many_chunks');
    expect(p.detail).toContain('1970-01-01T00:00:00.000000Z');
    expect(p.detail).toContain('2024-03-01T00:00:00.000000Z');
    const rec = await (await t.request(`/v1/ingests/${p.ingest_id}`)).json() as { status: string; error: { code: string } };
    expect(rec.status).toBe('rejected');
    expect(rec.error.code).toBe('too_many_chunks');
    expect(await storedRowCount(t.db, 'absurd')).toBe(0);
  });
});
