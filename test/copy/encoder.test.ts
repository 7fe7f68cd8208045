// Golden bytes for binary COPY: each type, with null, NaN, ±Infinity and extreme timestamps, pinned
// to the bytes PostgreSQL's binary format defines; then the same values round-tripped through a
// real COPY to prove PostgreSQL reads them as intended.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRows, encodeRowsByColumn } from '../../src/copy/encoder.ts';
import { rowEncoderFor } from '../../src/copy/row-encoder.ts';
import { copyHeader, copyTrailer } from '../../src/copy/binary-format.ts';
import { CopyStream } from '../../src/copy/copy-stream.ts';
import type { ColumnBatch, ColumnData, ColumnType, ColumnValues, StreamColumn } from '../../src/domain/types.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

function col(type: ColumnType, values: ColumnValues, nulls: number[] = [], length = 1): ColumnData {
  const column: StreamColumn = { name: type, columnName: `c_${type}`, role: 'field', type, unit: null, description: null };
  if (nulls.length === 0) return { column, values, validity: null };
  const bitmap = new Uint8Array(Math.ceil(length / 8)).fill(0xff);
  for (const i of nulls) bitmap[i >> 3] &= ~(1 << (i & 7));
  return { column, values, validity: { bitmap, offset: 0 } };
}

function batch(times: bigint[], columns: ColumnData[]): ColumnBatch {
  const time = BigInt64Array.from(times);
  return { length: times.length, time, minTime: time.reduce((a, b) => (a < b ? a : b)), maxTime: time.reduce((a, b) => (a > b ? a : b)), columns };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const T2000 = 946_684_800_000_000n; // 2000-01-01T00:00:00Z in µs since 1970

/**
 * Encodes one row (time, one value, ingest_id 7) and returns just the value's bytes (length + data),
 * through both encoders: the code compiled per layout (where it serves the layout) and the general
 * column-by-column path, which must agree byte for byte.
 */
function valueBytes(c: ColumnData, row = 0, n = 1): string {
  const times = Array.from({ length: n }, () => T2000);
  const b = batch(times, [c]);
  const buf = encodeRows(b, 7n, row, row + 1);
  expect(hex(buf)).toBe(hex(encodeRowsByColumn(b, 7n, row, row + 1)));
  // int16 count (2) + time (4 + 8) … value … ingest_id (4 + 8)
  return hex(buf.subarray(14, buf.length - 12));
}

describe('binary COPY framing', () => {
  it('writes the PGCOPY signature, flags and extension length', () => {
    expect(hex(copyHeader())).toBe('5047434f50590aff0d0a00' + '00000000' + '00000000');
    expect(hex(copyTrailer())).toBe('ffff');
  });

  it('writes field count, time and ingest_id around every row', () => {
    const buf = encodeRows(batch([T2000 + 1n], []), 0x0102030405n, 0, 1);
    expect(hex(buf)).toBe('0002' + '00000008' + '0000000000000001' + '00000008' + '0000000102030405');
  });
});

describe('golden value bytes', () => {
  const cases: [string, ColumnData, string][] = [
    ['float8 1.5', col('float8', { kind: 'number', values: Float64Array.of(1.5) }), '00000008' + '3ff8000000000000'],
    ['float8 NaN', col('float8', { kind: 'number', values: Float64Array.of(NaN) }), '00000008' + '7ff8000000000000'],
    ['float8 +Inf', col('float8', { kind: 'number', values: Float64Array.of(Infinity) }), '00000008' + '7ff0000000000000'],
    ['float8 -Inf', col('float8', { kind: 'number', values: Float64Array.of(-Infinity) }), '00000008' + 'fff0000000000000'],
    ['float8 -0', col('float8', { kind: 'number', values: Float64Array.of(-0) }), '00000008' + '8000000000000000'],
    ['float8 null', col('float8', { kind: 'number', values: Float64Array.of(1) }, [0]), 'ffffffff'],
    ['float4 1.5', col('float4', { kind: 'number', values: Float32Array.of(1.5) }), '00000004' + '3fc00000'],
    ['float4 NaN', col('float4', { kind: 'number', values: Float32Array.of(NaN) }), '00000004' + '7fc00000'],
    ['float4 -Inf', col('float4', { kind: 'number', values: Float32Array.of(-Infinity) }), '00000004' + 'ff800000'],
    ['int2 -2', col('int2', { kind: 'number', values: Int16Array.of(-2) }), '00000002' + 'fffe'],
    ['int2 from uint8 255', col('int2', { kind: 'number', values: Uint8Array.of(255) }), '00000002' + '00ff'],
    ['int4 min', col('int4', { kind: 'number', values: Int32Array.of(-2147483648) }), '00000004' + '80000000'],
    ['int4 from uint16', col('int4', { kind: 'number', values: Uint16Array.of(65535) }), '00000004' + '0000ffff'],
    ['int8 max', col('int8', { kind: 'bigint', values: BigInt64Array.of(9223372036854775807n) }), '00000008' + '7fffffffffffffff'],
    ['int8 min', col('int8', { kind: 'bigint', values: BigInt64Array.of(-9223372036854775808n) }), '00000008' + '8000000000000000'],
    ['int8 -1', col('int8', { kind: 'bigint', values: BigInt64Array.of(-1n) }), '00000008' + 'ffffffffffffffff'],
    ['int8 from uint32', col('int8', { kind: 'number', values: Uint32Array.of(4294967295) }), '00000008' + '00000000ffffffff'],
    ['int8 from int32 -5', col('int8', { kind: 'number', values: Int32Array.of(-5) }), '00000008' + 'fffffffffffffffb'],
    ['int8 null', col('int8', { kind: 'bigint', values: BigInt64Array.of(1n) }, [0]), 'ffffffff'],
    ['bool true (bits)', col('bool', { kind: 'bits', bitmap: Uint8Array.of(0b10), offset: 1 }), '00000001' + '01'],
    ['bool false (bits)', col('bool', { kind: 'bits', bitmap: Uint8Array.of(0b01), offset: 1 }), '00000001' + '00'],
    ['bool true (number)', col('bool', { kind: 'number', values: Uint8Array.of(3) }), '00000001' + '01'],
    ['text utf8', col('text', { kind: 'utf8', offsets: Int32Array.of(0, 4), data: new TextEncoder().encode('réf') }), '00000004' + '72c3a966'],
    ['text empty', col('text', { kind: 'strings', values: [''] }), '00000000'],
    ['text null', col('text', { kind: 'strings', values: [null] }), 'ffffffff'],
    ['text dictionary', col('text', { kind: 'dictionary', entries: [new TextEncoder().encode('A'), new TextEncoder().encode('BC')], indices: Int32Array.of(1) }), '00000002' + '4243'],
    ['timestamptz PG epoch', col('timestamptz', { kind: 'bigint', values: BigInt64Array.of(T2000) }), '00000008' + '0000000000000000'],
    ['timestamptz Unix epoch', col('timestamptz', { kind: 'bigint', values: BigInt64Array.of(0n) }), '00000008' + 'fffc a2fe c4c8 2000'.replace(/ /g, '')],
    ['timestamptz 1µs before PG epoch', col('timestamptz', { kind: 'bigint', values: BigInt64Array.of(T2000 - 1n) }), '00000008' + 'ffffffffffffffff'],
  ];
  it.each(cases)('%s', (_name, c, expected) => {
    expect(valueBytes(c)).toBe(expected);
  });

  it('reads Utf8View values inline (≤ 12 bytes) and from variadic buffers', () => {
    const views = new Uint8Array(32);
    const dv = new DataView(views.buffer);
    dv.setInt32(0, 3, true); views.set([0x61, 0x62, 0x63], 4); // "abc" inline
    const long = new TextEncoder().encode('calibration-standard-B');
    dv.setInt32(16, long.length, true); views.set(long.subarray(0, 4), 20); dv.setInt32(24, 0, true); dv.setInt32(28, 5, true);
    const buffer = new Uint8Array(5 + long.length); buffer.set(long, 5);
    const c = col('text', { kind: 'utf8view', views, buffers: [buffer] }, [], 2);
    expect(valueBytes(c, 0, 2)).toBe('00000003616263');
    expect(valueBytes(c, 1, 2)).toBe(`000000${long.length.toString(16)}${hex(long)}`);
  });

  it('refuses uint64 values above the int8 range, naming the column and value', () => {
    const c = col('int8', { kind: 'bigint', values: BigInt64Array.of(-1n), unsigned: true });
    expect(() => valueBytes(c)).toThrow(/18446744073709551615.*int8 range/);
  });

  it('writes extreme timestamps exactly (4713 BC and year 294276 bounds)', () => {
    const min = -211_813_488_000_000_000n + T2000; // 4714-11-24 00:00:00 BC, PostgreSQL's lower bound
    const c = col('timestamptz', { kind: 'bigint', values: BigInt64Array.of(min) });
    const expected = BigInt.asUintN(64, min - T2000).toString(16).padStart(16, '0');
    expect(valueBytes(c)).toBe('00000008' + expected);
  });
});

describe('the encoder compiled per layout', () => {
  /** 1,000 rows of every layout it serves, a third of them null where the column has nulls. */
  function wideBatch(nulls: boolean): ColumnBatch {
    const n = 1000;
    const enc = new TextEncoder();
    const names = ['a', '', 'sample-07', 'réf-α', 'a-tag-value-longer-than-twelve-bytes'];
    const offsets = new Int32Array(n + 1);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < n; i++) { const b = enc.encode(names[i % names.length]); parts.push(b); offsets[i + 1] = offsets[i] + b.length; }
    const data = new Uint8Array(offsets[n]);
    parts.forEach((b, i) => data.set(b, offsets[i]));
    const views = new Uint8Array(16 * n);
    const vdv = new DataView(views.buffer);
    for (let i = 0; i < n; i++) {
      const b = parts[i];
      vdv.setInt32(i * 16, b.length, true);
      if (b.length <= 12) views.set(b, i * 16 + 4);
      else { views.set(b.subarray(0, 4), i * 16 + 4); vdv.setInt32(i * 16 + 8, 0, true); vdv.setInt32(i * 16 + 12, offsets[i], true); }
    }
    const nullAt = nulls ? Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 === 1) : [];
    const c = (type: ColumnType, values: ColumnValues, name: string): ColumnData => {
      const x = col(type, values, nullAt, n);
      return { ...x, column: { ...x.column, columnName: name }, validity: x.validity && { ...x.validity } };
    };
    const times = Array.from({ length: n }, (_, i) => T2000 + BigInt(i - 500) * 3_600_000_000n);
    return batch(times, [
      c('float8', { kind: 'number', values: Float64Array.from({ length: n }, (_, i) => [NaN, Infinity, -0, i / 7][i % 4]) }, 'f8'),
      c('float4', { kind: 'number', values: Float32Array.from({ length: n }, (_, i) => i / 3) }, 'f4'),
      c('int4', { kind: 'number', values: Int32Array.from({ length: n }, (_, i) => i * 1_000_003 - 7) }, 'i4'),
      c('int2', { kind: 'number', values: Int16Array.from({ length: n }, (_, i) => i - 500) }, 'i2'),
      c('int8', { kind: 'bigint', values: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 9_000_000_000_000_001n - 4n) }, 'i8'),
      c('timestamptz', { kind: 'bigint', values: BigInt64Array.from({ length: n }, (_, i) => T2000 - BigInt(i) * 123_456_789n) }, 'ts'),
      c('bool', { kind: 'bits', bitmap: Uint8Array.from({ length: n / 8 + 1 }, (_, i) => (i * 37) & 255), offset: 3 }, 'b'),
      c('text', { kind: 'utf8', offsets, data }, 's1'),
      c('text', { kind: 'utf8view', views, buffers: [data] }, 's2'),
      c('text', { kind: 'dictionary', entries: [...names.map((x) => enc.encode(x)), null], indices: Int8Array.from({ length: n }, (_, i) => i % 6) }, 's3'),
    ]);
  }

  it.each([false, true])('writes the bytes the column-by-column path writes (nulls: %s), for any slice of rows', (nulls) => {
    const b = wideBatch(nulls);
    expect(rowEncoderFor(b)).not.toBeNull();
    for (const [start, end] of [[0, 1000], [1, 2], [333, 777], [999, 1000]]) {
      expect(hex(encodeRows(b, 123_456_789_012n, start, end))).toBe(hex(encodeRowsByColumn(b, 123_456_789_012n, start, end)));
    }
  });

  it('leaves layouts it does not serve to the column-by-column path', () => {
    expect(rowEncoderFor(batch([T2000], [col('text', { kind: 'strings', values: ['x'] })]))).toBeNull();
    expect(rowEncoderFor(batch([T2000], [col('int8', { kind: 'bigint', values: BigInt64Array.of(1n), unsigned: true })]))).toBeNull();
  });
});

describe('round trip through PostgreSQL', () => {
  let db: TestDb;
  beforeAll(async () => { db = await createTestDb(); });
  afterAll(async () => { await db.drop(); });

  it('stores every type as PostgreSQL reads it', async () => {
    const client = await db.pool.connect();
    try {
      await client.query(`CREATE TEMP TABLE t ("time" timestamptz, f8 float8, f4 float4, i2 int2, i4 int4, i8 int8, b bool, s text, ts timestamptz, ingest_id int8)`);
      const mk = (type: ColumnType, name: string, values: ColumnValues, nulls: number[] = []): ColumnData => {
        const c = col(type, values, nulls, 5);
        return { ...c, column: { ...c.column, columnName: name } };
      };
      const times = [0n, T2000, -211_813_488_000_000_000n + T2000, 253_402_300_799_999_999n, 1_709_251_200_123_456n];
      const b = batch(times, [
        mk('float8', 'f8', { kind: 'number', values: Float64Array.of(NaN, Infinity, -Infinity, 1e308, 5e-324) }),
        mk('float4', 'f4', { kind: 'number', values: Float32Array.of(NaN, Infinity, -Infinity, 3.4e38, 1.5) }, [4]),
        mk('int2', 'i2', { kind: 'number', values: Int16Array.of(-32768, 32767, 0, 1, -1) }),
        mk('int4', 'i4', { kind: 'number', values: Int32Array.of(-2147483648, 2147483647, 0, 1, -1) }),
        mk('int8', 'i8', { kind: 'bigint', values: BigInt64Array.of(-9223372036854775808n, 9223372036854775807n, 0n, 9007199254740993n, -1n) }),
        mk('bool', 'b', { kind: 'bits', bitmap: Uint8Array.of(0b00101), offset: 0 }, [3]),
        mk('text', 's', { kind: 'strings', values: ['a', 'réf-α', '', null, 'x"; DROP TABLE t; --'] }),
        mk('timestamptz', 'ts', { kind: 'bigint', values: BigInt64Array.of(0n, 1n, -1n, T2000, 1_709_251_200_123_456n) }, [2]),
      ]);
      await client.query('BEGIN');
      const copy = new CopyStream(client, 't', ['"time"', 'f8', 'f4', 'i2', 'i4', 'i8', 'b', 's', 'ts', 'ingest_id'], 1 << 20);
      await copy.write(encodeRows(b, 42n, 0, 5));
      expect(await copy.finish()).toBe(5);
      await client.query('COMMIT');
      const { rows } = await client.query(`SELECT to_char("time" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US BC') AS t, f8::text, f4::text, i2, i4, i8::text, b, s,
        (extract(epoch FROM ts) * 1000000)::bigint::text AS ts_us, ingest_id::text FROM t ORDER BY "time"`);
      expect(rows.map((r) => r.t)).toEqual([
        '4714-11-24 00:00:00.000000 BC', '1970-01-01 00:00:00.000000 AD', '2000-01-01 00:00:00.000000 AD',
        '2024-03-01 00:00:00.123456 AD', '9999-12-31 23:59:59.999999 AD']);
      const byTime = new Map(rows.map((r) => [r.t, r]));
      const epoch = byTime.get('1970-01-01 00:00:00.000000 AD');
      expect(epoch).toMatchObject({ f8: 'NaN', f4: 'NaN', i2: -32768, i4: -2147483648, i8: '-9223372036854775808', b: true, s: 'a', ts_us: '0', ingest_id: '42' });
      expect(byTime.get('2000-01-01 00:00:00.000000 AD')).toMatchObject({ f8: 'Infinity', f4: 'Infinity', i8: '9223372036854775807', b: false, s: 'réf-α', ts_us: '1' });
      expect(byTime.get('4714-11-24 00:00:00.000000 BC')).toMatchObject({ f8: '-Infinity', f4: '-Infinity', s: '', ts_us: null });
      expect(byTime.get('9999-12-31 23:59:59.999999 AD')).toMatchObject({ f8: '1e+308', f4: '3.4e+38', i8: '9007199254740993', b: null, s: null });
      expect(byTime.get('2024-03-01 00:00:00.123456 AD')).toMatchObject({ f8: '5e-324', f4: null, s: 'x"; DROP TABLE t; --', ts_us: '1709251200123456' });
    } finally {
      client.release();
    }
  });

  it('reuses output buffers once the socket has sent them, and PostgreSQL stores every row intact', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('CREATE TEMP TABLE r ("time" timestamptz, v float8, s text, ingest_id int8)');
      const n = 200_000;
      const times: bigint[] = [];
      const v = new Float64Array(n);
      const s: string[] = [];
      for (let i = 0; i < n; i++) {
        times.push(T2000 + BigInt(i) * 1000n);
        v[i] = i * 0.5;
        s.push(`tag-${i % 97}`);
      }
      const named = (c: ColumnData, columnName: string): ColumnData => ({ ...c, column: { ...c.column, columnName } });
      const b = batch(times, [named(col('float8', { kind: 'number', values: v }), 'v'), named(col('text', { kind: 'strings', values: s }), 's')]);
      await client.query('BEGIN');
      // 16 KiB writes: about 350 of them, through a 64 KiB window, so buffers come back many times.
      const copy = new CopyStream(client, 'r', ['"time"', 'v', 's', 'ingest_id'], 64 << 10, 16 << 10);
      const seen = new Set<ArrayBufferLike>();
      let writes = 0;
      for (let at = 0; at < n; at += 400) {
        const buf = encodeRows(b, 9n, at, Math.min(n, at + 400), (bytes) => copy.allocate(bytes));
        seen.add(buf.buffer);
        writes++;
        await copy.write(buf);
        await new Promise((r) => setImmediate(r)); // as the row writer lets the event loop run
      }
      expect(await copy.finish()).toBe(n);
      await client.query('COMMIT');
      expect(seen.size).toBeLessThan(writes / 4);
      const { rows } = await client.query(`SELECT count(*)::int AS n, sum(v) AS sv, count(DISTINCT s)::int AS tags,
        sum(hashtext(s)::bigint)::text AS hs, min("time") = '2000-01-01T00:00:00Z' AS first_ok, bool_and(ingest_id = 9) AS ids
        FROM r`);
      const expected = await client.query(`SELECT sum(hashtext('tag-' || (i % 97))::bigint)::text AS hs FROM generate_series(0, ${n - 1}) AS i`);
      expect(rows[0]).toMatchObject({ n, sv: (n * (n - 1)) / 4, tags: 97, hs: expected.rows[0].hs, first_ok: true, ids: true });
      const step = await client.query(`SELECT count(*)::int AS bad FROM (
        SELECT v, extract(epoch FROM "time" - '2000-01-01T00:00:00Z') * 1000 AS ms FROM r) x WHERE v * 2 <> ms`);
      expect(step.rows[0].bad).toBe(0);
    } finally {
      client.release();
    }
  });
});
