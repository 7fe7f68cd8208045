import { describe, expect, it } from 'vitest';
import {
  chooseEpochUnit, describeWindow, fittingUnits, inferEpochUnit, isTimeLikeName, looksRelative, parseEpochUnit, parseTimeWindow, unitFromName,
} from '../../src/ingest/decoders/epoch-units.ts';

const at = (iso: string): number => Date.parse(iso);

describe('epoch units by magnitude', () => {
  it('takes the coarsest unit in which every value is plausible', () => {
    const s = at('2024-03-01T00:00:00Z') / 1000;
    expect(inferEpochUnit({ min: s, max: s + 3600.5 })).toBe('s');
    expect(inferEpochUnit({ min: s * 1e3, max: s * 1e3 + 1 })).toBe('ms');
    expect(inferEpochUnit({ min: s * 1e6, max: s * 1e6 })).toBe('us');
    expect(inferEpochUnit({ min: BigInt(s) * 1_000_000_000n, max: BigInt(s) * 1_000_000_000n + 999n })).toBe('ns');
    // 1.7e9 is also 1970-01-20 in milliseconds: reported, but seconds win.
    expect(fittingUnits({ min: s, max: s })).toEqual(['s', 'ms']);
  });

  it('finds no unit for values outside every window, or straddling two', () => {
    expect(inferEpochUnit({ min: 0, max: 10 })).toBeNull();
    expect(inferEpochUnit({ min: 1e20, max: 1e20 })).toBeNull();
    expect(inferEpochUnit({ min: -5, max: 1.7e9 })).toBeNull();
    expect(inferEpochUnit({ min: 1.7e9, max: 1.7e18 })).toBeNull();
    expect(inferEpochUnit({ min: NaN, max: 1.7e9 })).toBeNull();
  });

  it('honours a narrower window', () => {
    const w = parseTimeWindow('2000-01-01/2100-01-01');
    expect(w).not.toBeNull();
    expect(inferEpochUnit({ min: 1.7e9, max: 1.7e9 }, w!)).toBe('s');
    expect(inferEpochUnit({ min: 5e8, max: 5e8 }, w!)).toBeNull();
    expect(describeWindow(w!)).toBe('2000-01-01 … 2100-01-01');
    expect(parseTimeWindow('2100-01-01/2000-01-01')).toBeNull();
    expect(parseTimeWindow('yesterday')).toBeNull();
  });

  it('tells relative time (starting near 0) from epochs', () => {
    expect(looksRelative({ min: 0, max: 3600 })).toBe(true);
    expect(looksRelative({ min: 1.7e9, max: 1.7e9 + 10 })).toBe(false);
    expect(looksRelative({ min: -1, max: 10 })).toBe(false);
  });
});

describe('time names', () => {
  it('reads the unit a name carries', () => {
    const cases: [string, string | null][] = [
      ['time_ns', 'ns'], ['timestamp_ms', 'ms'], ['t_us', 'us'], ['epoch_s', 's'], ['time_sec', 's'], ['Time-ms', 'ms'],
      ['timeMs', 'ms'], ['epoch[ms]', 'ms'], ['time (s)', 's'], ['datetime_nanoseconds', 'ns'], ['TIME_US', 'us'],
      ['time', null], ['temp_s', null], ['t_x', null], ['times_ms', null],
    ];
    for (const [name, unit] of cases) expect([name, unitFromName(name)]).toEqual([name, unit]);
  });

  it('knows the bare time names in any case', () => {
    for (const n of ['time', 'Timestamp', 'T', 'EPOCH', 'DateTime', 'time_ns']) expect(isTimeLikeName(n)).toBe(true);
    for (const n of ['temperature', 'times', 'tt']) expect(isTimeLikeName(n)).toBe(false);
  });

  it('chooses request, then name, then magnitude', () => {
    expect(chooseEpochUnit('time_ms', { min: 1.7e9, max: 1.7e9 }, 'us')).toEqual({ unit: 'us', from: 'request' });
    expect(chooseEpochUnit('time_ms', { min: 1.7e9, max: 1.7e9 }, null)).toEqual({ unit: 'ms', from: 'name' });
    expect(chooseEpochUnit('time', { min: 1.7e12, max: 1.7e12 }, null)).toMatchObject({ unit: 'ms', from: 'magnitude', alsoFits: ['us'] });
    expect(chooseEpochUnit('time', { min: 1, max: 2 }, null)).toBeNull();
    expect(parseEpochUnit('µs')).toBe('us');
    expect(parseEpochUnit('fortnights')).toBeNull();
  });
});
