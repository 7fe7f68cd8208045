// Tuples written value by value (pending rows of rollups use them): golden bytes for numeric, the
// one type with a layout of its own, then every type through a real COPY, read back as text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TupleWriter } from '../../src/copy/tuple-writer.ts';
import { CopyStream } from '../../src/copy/copy-stream.ts';
import { createTestDb, type TestDb } from '../helpers/db.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('TupleWriter', () => {
  it('writes numeric as base-10,000 digits with weight and sign, trailing zero digits left out', () => {
    const bytes = (x: bigint): string => hex(new TupleWriter().numeric(x).bytes());
    // length 8, ndigits 0, weight 0, sign +, dscale 0
    expect(bytes(0n)).toBe('00000008' + '0000' + '0000' + '0000' + '0000');
    // 123456789 = 1 | 2345 | 6789: weight 2
    expect(bytes(123_456_789n)).toBe('0000000e' + '0003' + '0002' + '0000' + '0000' + '0001' + '0929' + '1a85');
    // -100000000 = 1 | 0000 | 0000: one digit kept, weight 2, sign −
    expect(bytes(-100_000_000n)).toBe('0000000a' + '0001' + '0002' + '4000' + '0000' + '0001');
  });

  it('writes int8 from a number as from the same bigint', () => {
    for (const x of [0, 1, -1, 4294967295, 4294967296, -4294967297, 2 ** 53 - 1, -(2 ** 53) + 1, 1_709_251_200_000_000]) {
      expect(hex(new TupleWriter().int8(x).bytes()), String(x)).toBe(hex(new TupleWriter().int8(BigInt(x)).bytes()));
    }
  });

  describe('through COPY', () => {
    let db: TestDb;
    beforeAll(async () => { db = await createTestDb(); });
    afterAll(async () => { await db.drop(); });

    it('stores what PostgreSQL reads back as the same values', async () => {
      const numerics = [0n, 1n, -1n, 9_999n, 10_000n, 10_001n, 100_000_000n, 2n ** 63n - 1n, -(2n ** 63n),
        -123_456_789_012_345_678_901_234_567_890n, 10n ** 40n];
      const w = new TupleWriter(64);
      for (const [i, x] of numerics.entries()) {
        w.row(6).int8(i).numeric(x).float8([NaN, Infinity, -Infinity, -0, 0.1][i % 5]).text(['é', '', 'ünï ✓', 'a', 'tag'][i % 5])
          .bool(i % 2 === 0);
        if (i === 0) w.null(); else w.timestamptz(BigInt(i) * 1_000_001n);
      }
      const client = await db.pool.connect();
      try {
        await client.query('CREATE TABLE tw (i int8, n numeric, f float8, t text, b bool, ts timestamptz)');
        await client.query("SET TIME ZONE 'UTC'");
        const copy = new CopyStream(client, 'tw', ['i', 'n', 'f', 't', 'b', 'ts'], 1 << 20);
        await copy.write(w.bytes());
        expect(await copy.finish()).toBe(numerics.length);
        const { rows } = await client.query<{ i: string; n: string; f: string; t: string; b: boolean; ts: string | null }>(
          'SELECT i::text, n::text, f::text, t, b, ts::text FROM tw ORDER BY tw.i');
        expect(rows.map((r) => r.n)).toEqual(numerics.map(String));
        expect(rows.slice(0, 5).map((r) => r.f)).toEqual(['NaN', 'Infinity', '-Infinity', '-0', '0.1']);
        expect(rows.slice(0, 5).map((r) => r.t)).toEqual(['é', '', 'ünï ✓', 'a', 'tag']);
        expect(rows.slice(0, 2).map((r) => r.b)).toEqual([true, false]);
        expect(rows[0].ts).toBeNull();
        expect(rows[1].ts).toBe('1970-01-01 00:00:01.000001+00');
      } finally {
        client.release();
      }
    });
  });
});
