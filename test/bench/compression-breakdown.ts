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
  let encodeMs = 0;
  for (const rows of groups.values()) {
    for (let s = 0; s < rows.length; s += SEGMENT_ROWS) {
      const idx = rows.slice(s, s + SEGMENT_ROWS);
      const n = idx.length;
      segments++;
      const cols: (() => number)[] = [];
      // The inputs first, then the encoding alone timed.
      const times = BigInt64Array.from(idx, (i) => time[i]);
      const places = BigInt64Array.from(idx, (i) => BigInt(i));
      cols.push(() => { const w = new ByteWriter(); encodeBigInts(w, times); add('time', w.length); return 0; });
      cols.push(() => { const w = new ByteWriter(); encodeBigInts(w, places); add('order', w.length); return 0; });
      for (let c = 0; c < 10; c++) {
        const d = col(`ch${c}`).data as Float64Array;
        const p = c < 5 ? 1e3 : 1e4;
        const v = Float64Array.from(idx, (i) => (mode === 'realistic' ? Math.round(d[i] * p) / p : d[i]));
        cols.push(() => { add(`ch${c}`, encodeColumn('float8', { kind: 'number', values: v }, null, n).length); return 0; });
      }
      const ctr = col('counter').data as Int32Array;
      const counter = Int32Array.from(idx, (i) => ctr[i]);
      cols.push(() => { add('counter', encodeColumn('int4', { kind: 'number', values: counter }, null, n).length); return 0; });
      const fl = col('flag').data as Uint8Array;
      const bm = new Uint8Array(Math.ceil(n / 8));
      idx.forEach((i, k) => { if (fl[i]) bm[k >> 3] |= 1 << (k & 7); });
      cols.push(() => { add('flag', encodeColumn('bool', { kind: 'bits', bitmap: bm, offset: 0 }, null, n).length); return 0; });
      const t0 = performance.now();
      for (const f of cols) f();
      encodeMs += performance.now() - t0;
    }
  }
  let total = 0;
  const out: string[] = [];
  for (const [k, b] of bytes) { total += b; out.push(`${k} ${(b / N).toFixed(3)}`); }
  console.log(`${mode}: ${segments} segments, ${(N / segments).toFixed(0)} rows each; encoded B/row ${(total / N).toFixed(3)}: ${out.join(', ')}`);
  console.log(`  encoding alone: ${Math.round(N / (encodeMs / 1000)).toLocaleString('en-US')} rows/s (all 14 columns, one core)`);
}
