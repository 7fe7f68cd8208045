// Where the bytes of compressed segments go, per column, on the W2 lab-logger rows (realistic: 3–4
// decimals, and random doubles), cut into segments as the compression job cuts them (one sample,
// one day, at most SEGMENT_ROWS). In-process: no PostgreSQL; per-segment storage overheads
// (tuple, TOAST, indexes, stats) are measured by the compression bench. `npx tsx test/bench/compression-breakdown.ts`
// @ts-expect-error the shared generator has no types
import { genW2 } from '/work/shared/bench/lib/data.mjs';
import { SEGMENT_ROWS } from '../../src/compression/segment.ts';
import { encodeColumn } from '../../src/compression/codecs/columns.ts';
import { ByteWriter } from '../../src/compression/codecs/bytes.ts';
import { encodeBigInts } from '../../src/compression/codecs/ints.ts';

const N = Number(process.env.BENCH_ROWS ?? 1_000_000);
const DAY = 86_400_000_000n;
interface Col { name: string; type: string; data: unknown }
const t = genW2(N) as { columns: Col[] };
const col = (name: string): Col => t.columns.find((c) => c.name === name) as Col;
const time = col('time').data as BigInt64Array;
const sample = (col('sample').data as { indices: Uint8Array }).indices;
for (const mode of ['realistic', 'random']) {
  const bytes = new Map<string, number>();
  const add = (k: string, b: number): void => { bytes.set(k, (bytes.get(k) ?? 0) + b); };
  // Segments: runs of one sample within one day, up to SEGMENT_ROWS (as the chunk's rows, grouped).
  const groups = new Map<string, number[]>();
  for (let i = 0; i < N; i++) {
    const key = `${time[i] / DAY}:${sample[i]}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(i);
  }
  let segments = 0;
  for (const rows of groups.values()) {
    for (let s = 0; s < rows.length; s += SEGMENT_ROWS) {
      const idx = rows.slice(s, s + SEGMENT_ROWS);
      const n = idx.length;
      segments++;
      const tw = new ByteWriter(); encodeBigInts(tw, BigInt64Array.from(idx, (i) => time[i])); add('time', tw.finish().length);
      const ow = new ByteWriter(); encodeBigInts(ow, BigInt64Array.from(idx, (i) => BigInt(i))); add('order', ow.finish().length);
      for (let c = 0; c < 10; c++) {
        const d = col(`ch${c}`).data as Float64Array;
        const p = c < 5 ? 1e3 : 1e4;
        const v = Float64Array.from(idx, (i) => (mode === 'realistic' ? Math.round(d[i] * p) / p : d[i]));
        add(`ch${c}`, encodeColumn('float8', { kind: 'number', values: v }, null, n).length);
      }
      const ctr = col('counter').data as Int32Array;
      add('counter', encodeColumn('int4', { kind: 'number', values: Int32Array.from(idx, (i) => ctr[i]) }, null, n).length);
      const fl = col('flag').data as Uint8Array;
      const bm = new Uint8Array(Math.ceil(n / 8));
      idx.forEach((i, k) => { if (fl[i]) bm[k >> 3] |= 1 << (k & 7); });
      add('flag', encodeColumn('bool', { kind: 'bits', bitmap: bm, offset: 0 }, null, n).length);
    }
  }
  let total = 0;
  const out: string[] = [];
  for (const [k, b] of bytes) { total += b; out.push(`${k} ${(b / N).toFixed(3)}`); }
  console.log(`${mode}: ${segments} segments, ${(N / segments).toFixed(0)} rows each; encoded B/row ${(total / N).toFixed(3)}: ${out.join(', ')}`);
}
