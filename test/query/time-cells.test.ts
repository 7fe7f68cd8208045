// Times in query answers (JSON and CSV) are formatted from µs without BigInt where a Number holds
// them exactly: the text must be formatMicros' to the digit — next to midnight, before 1970, at
// the ends of the exact range and beyond it.
import { describe, expect, it } from 'vitest';
import { formatMicros } from '../../src/domain/time.ts';
import { formatterFor } from '../../src/query/result-formats.ts';

const DAY = 86_400_000_000;

function csvTimes(cells: string[]): string[] {
  const f = formatterFor('csv');
  f.begin([{ name: 'time', type: 'time' }], {});
  return new TextDecoder().decode(f.page(cells.map((c) => [c]))).split('\n').slice(0, cells.length);
}

describe('time cells', () => {
  it('format as formatMicros does, at the edges', () => {
    const cells = ['0', '1', '-1', '999', '1000', '-999', '-1000', '-1001', String(DAY - 1), String(DAY), String(-DAY), String(-DAY - 1),
      '1710029220000000', '1710028799999999', '8999999999999999', '-8999999999999999', '9000000000000000', '9007199254740993',
      '-62135596800000000', '253402300799999999', '8640000000000000000'];
    expect(csvTimes(cells)).toEqual(cells.map((c) => formatMicros(BigInt(c))));
  });

  it('format as formatMicros does, for random times and times next to midnight', () => {
    let seed = 7;
    const rnd = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31; };
    const cells: string[] = [];
    for (let i = 0; i < 20_000; i++) cells.push(String(Math.floor((rnd() - 0.5) * 1.8e16)));
    for (let i = 0; i < 20_000; i++) cells.push(String(Math.floor((rnd() - 0.5) * 2e5) * DAY + Math.floor((rnd() - 0.5) * 4)));
    expect(csvTimes(cells)).toEqual(cells.map((c) => formatMicros(BigInt(c))));
  });

  it('JSON quotes them', () => {
    const f = formatterFor('json');
    f.begin([{ name: 'time', type: 'time' }], {});
    expect(new TextDecoder().decode(f.page([['1710029220000001']]))).toBe('\n["2024-03-10T00:07:00.000001Z"]');
  });
});
