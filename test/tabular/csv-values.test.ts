// The CSV value parsers against the platform's own (Number, Date) over generated values, and the
// layout finder over instrument-style headers.
import { describe, expect, it } from 'vitest';
import { Kind, classify, epochToMicros, parseBoolField, parseFloatField, parseIntField, parseIso } from '../../src/ingest/decoders/csv/values.ts';
import { findLayout } from '../../src/ingest/decoders/csv/layout.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('numbers', () => {
  it('parses decimals exactly as Number() does (fast path and fallback)', () => {
    let seed = 7;
    const rnd = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
    const samples: string[] = ['0', '-0', '0.1', '1e-7', '-12.5e3', '123456789012345', '1234567890123456789', '3.141592653589793', '2.2250738585072014e-308', '.5', '5.', '+7'];
    for (let i = 0; i < 20_000; i++) {
      const v = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 30 - 15);
      samples.push(String(v), v.toFixed(Math.floor(rnd() * 10)), v.toExponential(Math.floor(rnd() * 16)));
    }
    for (const s of samples) expect(parseFloatField(b(s), 0, s.length, false), s).toBe(Number(s));
  });

  it('reads NaN, ±Inf, and decimal commas when asked to', () => {
    expect(parseFloatField(b('NaN'), 0, 3, false)).toBeNaN();
    expect(parseFloatField(b('-inf'), 0, 4, false)).toBe(-Infinity);
    expect(parseFloatField(b('1013,25'), 0, 7, true)).toBe(1013.25);
    expect(parseFloatField(b('1013,25'), 0, 7, false)).toBeUndefined();
    expect(parseFloatField(b('12.5.1'), 0, 6, false)).toBeUndefined();
  });

  it('integers: exact up to int8, bigint beyond 2^53, refused beyond int8', () => {
    expect(parseIntField(b('-42'), 0, 3)).toBe(-42);
    expect(parseIntField(b('9007199254740993'), 0, 16)).toBe(9007199254740993n);
    expect(parseIntField(b('9223372036854775808'), 0, 19)).toBeUndefined();
    expect(parseIntField(b('1.5'), 0, 3)).toBeUndefined();
  });

  it('classifies fields for inference', () => {
    const k = (s: string, comma = false): Kind => classify(b(s), 0, s.length, comma);
    expect([k(''), k('NA'), k('12'), k('1.5'), k('NaN'), k('true'), k('2024-03-01T00:00:00Z'), k('2024-03-01 10:00'), k('abc'), k('1,5', true)])
      .toEqual([Kind.Null, Kind.Null, Kind.Int, Kind.Float, Kind.Float, Kind.Bool, Kind.Iso, Kind.IsoNaive, Kind.Text, Kind.Float]);
  });
});

describe('ISO 8601', () => {
  it('agrees with Date.parse to the millisecond over many instants and offsets, and keeps µs', () => {
    for (let i = 0; i < 5000; i++) {
      const ms = Date.UTC(1700 + (i % 500), i % 12, 1 + (i % 28), i % 24, (i * 7) % 60, (i * 13) % 60, i % 1000);
      const off = ((i % 27) - 13) * 60 + (i % 2) * 30;
      const local = new Date(ms + off * 60_000).toISOString().slice(0, 23);
      const sign = off < 0 ? '-' : '+';
      const text = `${local}${String(i % 1000).padStart(3, '0')}${sign}${String(Math.floor(Math.abs(off) / 60)).padStart(2, '0')}:${String(Math.abs(off) % 60).padStart(2, '0')}`;
      const r = parseIso(b(text), 0, text.length);
      expect(r?.us, text).toBe(ms * 1000 + (i % 1000));
      expect(r?.zoned).toBe(true);
    }
  });

  it('refuses impossible dates and counts sub-microsecond digits', () => {
    expect(parseIso(b('2023-02-29T00:00:00Z'), 0, 20)).toBeNull();
    expect(parseIso(b('2024-13-01'), 0, 10)).toBeNull();
    const r = parseIso(b('2024-03-01T00:00:00.1234567Z'), 0, 28);
    expect(r).toMatchObject({ us: 1_709_251_200_123_456, subMicro: true });
    expect(parseIso(b('2024-03-01'), 0, 10)).toMatchObject({ us: 1_709_251_200_000_000, zoned: false });
  });
});

describe('epoch numbers', () => {
  it('are read from their digits, exactly, in every unit', () => {
    expect(epochToMicros(b('1709251200.123456'), 0, 17, 's')).toEqual({ us: 1_709_251_200_123_456, subMicro: false });
    expect(epochToMicros(b('1709251200123'), 0, 13, 'ms')).toEqual({ us: 1_709_251_200_123_000, subMicro: false });
    expect(epochToMicros(b('1709251200123456789'), 0, 19, 'ns')).toEqual({ us: 1_709_251_200_123_456, subMicro: true });
    expect(epochToMicros(b('-1.5'), 0, 4, 's')).toEqual({ us: -1_500_000, subMicro: false });
  });
});

describe('layout', () => {
  const layout = (s: string, opts = {}): ReturnType<typeof findLayout> => findLayout(Buffer.from(s), 0, true, opts);
  it('finds the header after a key,value preamble and reads the preamble', () => {
    const l = layout('Instrument,X-1\nSerial,42\n\ntime,a,b,c\n1,2,3,4\n5,6,7,8\n');
    expect(l).toMatchObject({ delimiter: 0x2c, headerLine: 4, preamble: { attributes: { Instrument: 'X-1', Serial: '42' } } });
  });
  it('prefers ; over , when decimal commas give both the same width', () => {
    expect(layout('t;a;b\n1;2,5;3,5\n2;4,5;5,5\n').delimiter).toBe(0x3b);
  });
  it('tabs', () => {
    expect(layout('# Lab: 3\ntime\tv\n1\t2\n').delimiter).toBe(0x09);
  });
});

describe('booleans from their bytes', () => {
  it('true/True/TRUE and false/False/FALSE, nothing else', () => {
    const yes = ['true', 'True', 'TRUE'];
    const no = ['false', 'False', 'FALSE'];
    const neither = ['tRue', 'TRue', 'truE', 'tru', 'truee', 'f', 'FALSe', 'fAlse', 'yes', '1', 'T', ''];
    for (const w of yes) expect(parseBoolField(b(w), 0, w.length), w).toBe(true);
    for (const w of no) expect(parseBoolField(b(w), 0, w.length), w).toBe(false);
    for (const w of neither) expect(parseBoolField(b(w), 0, w.length), w).toBeUndefined();
    for (const w of [...yes, ...no]) expect(classify(b(w), 0, w.length, false), w).toBe(Kind.Bool);
    for (const w of neither.filter((x) => x !== '' && x !== '1')) expect(classify(b(w), 0, w.length, false), w).toBe(Kind.Text);
  });
});
