// `npm run bench pending`: what the partial aggregates for pending rows (src/rollups/pending.ts)
// cost an upload, per row, against encoding the same rows for the binary COPY (which every upload
// does anyway), measured in the same run. The rows are the lab-logger's of `npm run bench
// arrow-ingest` — a 20-value sample tag, 10 float64 channels, an int32 counter, a boolean flag —
// in record batches of 65,536 rows, readings 1 ms apart, tag values taking turns row by row (the
// hardest order for grouping); with no nulls (each field summed group by group) and with 5 %
// nulls (row by row). Median of BENCH_RUNS (7) passes over 60 batches each.
import type { ColumnBatch, StreamColumn } from '../../src/domain/types.ts';
import { encodeRows } from '../../src/copy/encoder.ts';
import { PartialAggregates } from '../../src/rollups/pending.ts';
import { tagSetCodes } from '../../src/rollups/tag-sets.ts';
import { median } from './lib.ts';

const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 7));
const N = 65_536;
const BATCHES = 60;

const col = (name: string, role: 'tag' | 'field', type: StreamColumn['type']): StreamColumn =>
  ({ name, columnName: name, role, type, unit: null, description: null });
const columns = [col('sample', 'tag', 'text'), ...Array.from({ length: 10 }, (_, k) => col(`ch${k}`, 'field', 'float8')),
  col('counter', 'field', 'int4'), col('flag', 'field', 'bool')];

function labBatch(nulls: boolean): ColumnBatch {
  const enc = new TextEncoder();
  const names = Array.from({ length: 20 }, (_, k) => enc.encode(`sample-${String(k).padStart(2, '0')}`));
  const offsets = new Int32Array(N + 1);
  const data = new Uint8Array(N * 9);
  for (let i = 0; i < N; i++) {
    const b = names[i % 20];
    data.set(b, offsets[i]);
    offsets[i + 1] = offsets[i] + b.length;
  }
  const time = new BigInt64Array(N);
  for (let i = 0; i < N; i++) time[i] = 1_709_251_200_000_000n + BigInt(i) * 1000n;
  let seed = 7;
  const random = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
  const validity = (): { bitmap: Uint8Array; offset: number } | null => {
    if (!nulls) return null;
    const bitmap = new Uint8Array(N / 8).fill(0xff);
    for (let i = 0; i < N; i++) if (random() < 0.05) bitmap[i >> 3] &= ~(1 << (i & 7));
    return { bitmap, offset: 0 };
  };
  return {
    length: N, time, minTime: time[0], maxTime: time[N - 1],
    columns: [
      { column: columns[0], values: { kind: 'utf8', offsets, data }, validity: null },
      ...Array.from({ length: 10 }, (_, k) => ({ column: columns[1 + k], values: { kind: 'number' as const, values: Float64Array.from({ length: N }, () => random() * 100) }, validity: validity() })),
      { column: columns[11], values: { kind: 'number', values: Int32Array.from({ length: N }, (_, i) => i) }, validity: validity() },
      { column: columns[12], values: { kind: 'bits', bitmap: Uint8Array.from({ length: N / 8 }, () => Math.floor(random() * 256)), offset: 0 }, validity: validity() },
    ],
  };
}

/** ns per row of `work` over BATCHES batches, median of RUNS (after one warm-up pass). */
function nsPerRow(work: () => void): { median: number; all: number[] } {
  const all: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    const t = performance.now();
    work();
    if (r > 0) all.push(((performance.now() - t) * 1e6) / (BATCHES * N));
  }
  return { median: median(all), all };
}

const stream = { columns };
const fmt1 = (x: number): string => x.toFixed(1);
console.log(`${BATCHES} batches of ${N.toLocaleString('en')} rows, 13 columns; ns per row, median of ${RUNS} (all runs in brackets)`);
for (const nulls of [false, true]) {
  const batch = labBatch(nulls);
  const copy = nsPerRow(() => { for (let b = 0; b < BATCHES; b++) encodeRows(batch, 1n, 0, N); });
  const pending = nsPerRow(() => { const acc = new PartialAggregates(stream, 60_000_000n); for (let b = 0; b < BATCHES; b++) acc.add(batch); });
  const codes = nsPerRow(() => { for (let b = 0; b < BATCHES; b++) tagSetCodes(stream, batch); });
  console.log(`${nulls ? '5 % nulls' : 'no nulls '}: COPY encoding ${fmt1(copy.median)} [${copy.all.map(fmt1).join(', ')}]; ` +
    `partial aggregates ${fmt1(pending.median)} [${pending.all.map(fmt1).join(', ')}] = ${(pending.median / copy.median).toFixed(2)}× the COPY encoding ` +
    `(of which tag codes ${fmt1(codes.median)})`);
}
