// What an upload wrote, per tag set, whatever layout its text columns arrive in (dictionary,
// Utf8, Utf8View inline and out of line, decoded strings), with nulls and several tags.
import { describe, expect, it } from 'vitest';
import { TagSetRanges, levelRanges } from '../../src/rollups/invalidate.ts';
import type { ColumnBatch, ColumnData, ColumnValues, StreamColumn } from '../../src/domain/types.ts';

const enc = new TextEncoder();
const col = (name: string, role: 'tag' | 'field'): StreamColumn => ({ name, columnName: name, role, type: role === 'tag' ? 'text' : 'float8', unit: null, description: null });
const site = col('site', 'tag');
const probe = col('probe', 'tag');
const value = col('v', 'field');

function utf8(values: (string | null)[]): ColumnValues {
  const parts = values.map((v) => enc.encode(v ?? ''));
  const offsets = new Int32Array(values.length + 1);
  parts.forEach((p, i) => { offsets[i + 1] = offsets[i] + p.length; });
  const data = new Uint8Array(offsets[values.length]);
  parts.forEach((p, i) => data.set(p, offsets[i]));
  return { kind: 'utf8', offsets, data };
}

function utf8view(values: (string | null)[]): ColumnValues {
  const views = new Uint8Array(values.length * 16);
  const dv = new DataView(views.buffer);
  const long: number[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  values.forEach((v, i) => {
    const b = enc.encode(v ?? '');
    dv.setInt32(i * 16, b.length, true);
    if (b.length <= 12) views.set(b, i * 16 + 4);
    else {
      views.set(b.subarray(0, 4), i * 16 + 4);
      dv.setInt32(i * 16 + 8, 0, true);
      dv.setInt32(i * 16 + 12, offset, true);
      chunks.push(b);
      offset += b.length;
      long.push(i);
    }
  });
  const buffer = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) { buffer.set(c, at); at += c.length; }
  return { kind: 'utf8view', views, buffers: [buffer] };
}

function validity(values: (string | null)[]): ColumnData['validity'] {
  if (!values.includes(null)) return null;
  const bitmap = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => { if (v !== null) bitmap[i >> 3] |= 1 << (i & 7); });
  return { bitmap, offset: 0 };
}

function batch(times: number[], tags: [StreamColumn, ColumnValues, (string | null)[]][]): ColumnBatch {
  const time = BigInt64Array.from(times.map((t) => BigInt(t)));
  return {
    length: times.length, time, minTime: time.reduce((a, b) => (a < b ? a : b)), maxTime: time.reduce((a, b) => (a > b ? a : b)),
    columns: tags.map(([column, values, raw]) => ({ column, values, validity: validity(raw) })),
  };
}

const summary = (r: TagSetRanges): Record<string, [number, number][]> =>
  Object.fromEntries(r.spans().map((s) => [JSON.stringify(s.values), s.spans.map((x) => [x.start, x.end] as [number, number])]));

describe('tag sets of an upload', () => {
  const names = ['alpha', 'a-much-longer-site-name', 'alpha', null, 'beta', 'a-much-longer-site-name'];
  const times = [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 500_000_000];
  const expected = {
    '["alpha"]': [[0, 2_000_000]], '["a-much-longer-site-name"]': [[1_000_000, 1_000_000], [500_000_000, 500_000_000]],
    '[null]': [[3_000_000, 3_000_000]], '["beta"]': [[4_000_000, 4_000_000]],
  };
  const stream = { columns: [site, value] } as never;

  it.each([
    ['utf8', utf8(names)],
    ['utf8view', utf8view(names)],
    ['strings', { kind: 'strings', values: names } as ColumnValues],
    ['dictionary', { kind: 'dictionary', entries: ['alpha', 'a-much-longer-site-name', 'beta'].map((s) => enc.encode(s)), indices: Int32Array.from([0, 1, 0, 0, 2, 1]) } as ColumnValues],
  ])('%s: one range per run of nearby rows, per value, nulls as their own tag set', (_kind, values) => {
    const r = new TagSetRanges(stream);
    r.add(batch(times, [[site, values, names]]));
    expect(summary(r)).toEqual(expected);
  });

  it('combines several tags, and a tag the upload lacks is null', () => {
    const r = new TagSetRanges({ columns: [site, probe, col('room', 'tag'), value] } as never);
    const s = ['x', 'x', 'y', 'y'];
    const p = ['1', '2', '1', '1'];
    r.add(batch([0, 10, 20, 30], [[site, utf8view(s), s], [probe, utf8(p), p]]));
    expect(summary(r)).toEqual({ '["x","1",null]': [[0, 0]], '["x","2",null]': [[10, 10]], '["y","1",null]': [[20, 30]] });
  });
});

describe('level ranges', () => {
  const level = { name: '1h', intervalUs: 3_600_000_000n, tableName: 'x', chunkUs: 1n, watermarkUs: 10n * 3_600_000_000n };
  it('are the buckets touched below the watermark, merged where they touch, cut at the watermark', () => {
    const h = 3_600_000_000n;
    expect(levelRanges(level, [{ start: 5n, end: 10n }, { start: h + 1n, end: h + 2n }, { start: 3n * h, end: 3n * h }, { start: 9n * h + 5n, end: 12n * h }]))
      .toEqual([{ start: 0n, end: 2n * h }, { start: 3n * h, end: 4n * h }, { start: 9n * h, end: 10n * h }]);
    expect(levelRanges({ ...level, watermarkUs: null }, [{ start: 0n, end: 1n }])).toEqual([]);
  });
});

describe('a stream without tags', () => {
  it('has one tag set, the empty one', () => {
    const r = new TagSetRanges({ columns: [value] } as never);
    r.add(batch([0, 10, 20], []));
    expect(summary(r)).toEqual({ '[]': [[0, 20]] });
  });
});
