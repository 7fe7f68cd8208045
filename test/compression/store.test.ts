// Segment storage: format 3 keeps a segment's encoded columns as page-sized rows of
// strata_data.segment_parts (no TOAST); segments written before (columns in segments.data) still
// load; deleting segments deletes their parts; a missing part is an error, never a NULL column.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from '../helpers/db.ts';
import type { EncodedSegment } from '../../src/compression/segment.ts';
import {
  PART_BYTES, SEGMENTS, SEGMENT_PARTS, deleteChunkSegments, deleteIngestSegments, findSegments, joinColumns, loadSegments, splitColumns,
} from '../../src/compression/store.ts';
import { reserveSegmentIds, segmentCopyRows, writeSegmentRows } from '../../src/compression/segment-copy.ts';
import type { PoolClient } from '../../src/db/pool.ts';
import { rng } from '../helpers/rollups.ts';

const STREAM = 7;

/** Writes segments the way a conversion does: ids from the sequence, rows by COPY, parts by INSERT. */
async function insertSegments(tx: PoolClient, streamId: number, chunkId: number, segs: readonly EncodedSegment[]): Promise<void> {
  await writeSegmentRows(tx, segmentCopyRows(streamId, chunkId, segs, await reserveSegmentIds(tx, segs.length)), 1 << 20);
}
let db: TestDb;

beforeAll(async () => { db = await createTestDb(); });
afterAll(async () => { await db.drop(); });

function segment(ingestId: string, sizes: (number | null)[], seed: number, t0: bigint): EncodedSegment {
  const r = rng(seed);
  return {
    ingestId, tags: { sample: `s${seed}` }, rowCount: 10, timeMin: t0, timeMax: t0 + 9n,
    timeData: Uint8Array.from([1, 2, 3]), orderData: Uint8Array.from([4, 5]),
    columns: sizes.map((_, i) => `c${i}`),
    data: sizes.map((n) => (n === null ? null : Uint8Array.from({ length: n }, () => Math.floor(r() * 256)))),
    stats: {},
  };
}

describe('segment parts', () => {
  it('joins and splits a segment\'s columns, empty and NULL ones included; a corrupt string is an error', () => {
    const cols = [Uint8Array.from([1, 2]), null, new Uint8Array(0), Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)];
    expect(splitColumns(joinColumns(cols)).map((c) => (c === null ? null : Array.from(c)))).toEqual(cols.map((c) => (c === null ? null : Array.from(c))));
    expect(splitColumns(joinColumns([]))).toEqual([]);
    const joined = joinColumns(cols);
    expect(() => splitColumns(joined.subarray(0, joined.length - 1))).toThrow(/cannot decode/);
    expect(() => splitColumns(Uint8Array.from([...joined, 0]))).toThrow(/cannot decode/);
  });

  it('stores columns as page-sized parts and loads them back byte for byte, beside segments of the older layout', async () => {
    const big = segment('101', [30_000, null, 5000, 1], 1, 1_000_000n);
    const small = segment('102', [10, 0, null], 2, 2_000_000n);
    const client = await db.pool.connect();
    try { await insertSegments(client, STREAM, 1, [big, small]); } finally { client.release(); }
    // A segment as format 2 wrote it: its columns in segments.data, no parts.
    await db.pool.query(
      `INSERT INTO ${SEGMENTS} (stream_id, chunk_id, ingest_id, tags, row_count, time_min, time_max, time_data, order_data, columns, data, stats)
       VALUES ($1, 1, 103, '{"sample":"old"}', 10, to_timestamp(3), to_timestamp(3.000009), '\\x010203', '\\x0405', '{c0,c1}', ARRAY['\\xaabb'::bytea, NULL], '{}')`, [STREAM]);
    const { rows } = await db.pool.query<{ n: number; max: number; total: string }>(
      `SELECT count(*)::int AS n, max(octet_length(bytes)) AS max, sum(octet_length(bytes))::text AS total FROM ${SEGMENT_PARTS} WHERE stream_id = $1`, [STREAM]);
    expect(rows[0].max).toBe(PART_BYTES);
    expect(rows[0].n).toBe(Math.ceil(joinColumns(big.data).length / PART_BYTES) + 1);
    // No TOAST: parts are stored plain, their TOAST table stays empty.
    const toast = await db.pool.query<{ size: string; storage: string }>(
      `SELECT pg_relation_size(c.reltoastrelid)::text AS size, a.attstorage::text AS storage FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'bytes'
        WHERE c.oid = '${SEGMENT_PARTS}'::regclass`);
    expect(toast.rows[0]).toEqual({ size: '0', storage: 'p' });

    const refs = await findSegments(db.pool, { streamId: STREAM, from: null, to: null });
    const loaded = await loadSegments(db.pool, STREAM, refs);
    expect(loaded.map((s) => s.ingestId)).toEqual(['101', '102', '103']);
    const bytes = (d: (Uint8Array | null)[]): (number[] | null)[] => d.map((c) => (c === null ? null : Array.from(c)));
    expect(bytes(loaded[0].data)).toEqual(bytes(big.data));
    expect(bytes(loaded[1].data)).toEqual(bytes(small.data));
    expect(bytes(loaded[2].data)).toEqual([[0xaa, 0xbb], null]);
    expect(loaded.map((s) => Array.from(s.timeData))).toEqual([[1, 2, 3], [1, 2, 3], [1, 2, 3]]);
    expect(loaded[2].columns).toEqual(['c0', 'c1']);
  });

  it('refuses a segment with a part missing, and drops parts with their segments', async () => {
    const refs = await findSegments(db.pool, { streamId: STREAM, from: null, to: null });
    await db.pool.query(`DELETE FROM ${SEGMENT_PARTS} WHERE stream_id = $1 AND segment_id = $2 AND part = 1`, [STREAM, refs[0].id]);
    await expect(loadSegments(db.pool, STREAM, refs.slice(0, 1))).rejects.toThrow(/parts/);
    await deleteIngestSegments(db.pool, STREAM, '101');
    const left = async (): Promise<number> => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SEGMENT_PARTS} WHERE stream_id = $1`, [STREAM])).rows[0].n;
    expect(await left()).toBe(1);
    await deleteChunkSegments(db.pool, STREAM, 1);
    expect(await left()).toBe(0);
  });
});
