// Decoded values as the text PostgreSQL prints for them (float8out / float4out with shortest
// round-trip digits, int8 in full, booleans as t/f, times as µs since the epoch), so that a row
// read from a segment renders exactly like the same row read from a table.
import type { ColumnBatch, ColumnData } from '../domain/types.ts';

/** PostgreSQL's shortest-digits float output: fixed notation for decimal exponents in [−4, limit). */
function pgFloat(x: number, digits: string, exp: number, limit: number): string {
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (exp >= -4 && exp < limit) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}`;
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

function special(x: number): string | null {
  if (x !== x) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  return null;
}

function parts(exponential: string): { digits: string; exp: number } {
  const [m, e] = exponential.replace(/^-/, '').split('e');
  return { digits: m.replace('.', ''), exp: Number(e) };
}

/**
 * Whether the decimal digits·10^(exp−len+1) lie exactly half-way between x and a neighbour.
 * PostgreSQL's Ryu then takes a longer representation where JavaScript accepts the bound.
 */
function onBound(x: number, digits: string, exp: number): boolean {
  const f = new Float64Array([Math.abs(x)]);
  const bits = new BigUint64Array(f.buffer)[0];
  const bexp = Number(bits >> 52n);
  const frac = bits & ((1n << 52n) - 1n);
  const m = bexp === 0 ? frac : frac | (1n << 52n);
  const e = (bexp === 0 ? 1 : bexp) - 1075;
  const k = exp - (digits.length - 1);
  const d = BigInt(digits);
  const lhs = d * (k >= 0 ? 10n ** BigInt(k) : 1n) * (e - 1 < 0 ? 2n ** BigInt(1 - e) : 1n);
  const scale = (e - 1 >= 0 ? 2n ** BigInt(e - 1) : 1n) * (k < 0 ? 10n ** BigInt(-k) : 1n);
  const lowerGapHalved = frac === 0n && bexp > 1;
  return lhs === (2n * m + 1n) * scale || (lowerGapHalved ? lhs * 2n === (4n * m - 1n) * scale : lhs === (2n * m - 1n) * scale);
}

export function float8Text(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e-4 && a < 1e15) {
    // Both print fixed notation here; with at most 15 significant digits (16 characters with the
    // point, 17 with a sign) the digits cannot sit on a rounding bound, and JavaScript's are PostgreSQL's.
    const js = String(x);
    if (js.length <= (x < 0 ? 17 : 16)) return js;
  }
  const s = special(x);
  if (s !== null) return s;
  let { digits, exp } = parts(x.toExponential());
  for (let p = digits.length + 1; p <= 17 && onBound(x, digits, exp); p++) {
    const t = x.toExponential(p - 1);
    if (Number(t) !== x) continue;
    ({ digits, exp } = parts(t));
    digits = digits.replace(/0+$/, '') || '0';
  }
  return pgFloat(x, digits, exp, 15);
}

/** |D·10^k − x| on a scale common to every D at the same k (x: the exact value of a double). */
function distance(x: number, d: bigint, k: number): bigint {
  const f = new Float64Array([Math.abs(x)]);
  const bits = new BigUint64Array(f.buffer)[0];
  const bexp = Number(bits >> 52n);
  const frac = bits & ((1n << 52n) - 1n);
  const m = bexp === 0 ? frac : frac | (1n << 52n);
  const e = (bexp === 0 ? 1 : bexp) - 1075;
  const c = d * 10n ** BigInt(Math.max(k, 0)) * 2n ** BigInt(Math.max(-e, 0));
  const v = m * 2n ** BigInt(Math.max(e, 0)) * 10n ** BigInt(Math.max(-k, 0));
  return c > v ? c - v : v - c;
}

/** float4out: the shortest digits that read back as the same float4, the nearest of them, ties to an even last digit. */
export function float4Text(x: number): string {
  const s = special(x);
  if (s !== null) return s;
  const f = new Float32Array([Math.abs(x)]);
  const u = new Uint32Array(f.buffer);
  const at = u[0];
  u[0] = at + 1;
  const above = f[0];
  u[0] = at - 1;
  const below = at === 0 ? 0 : f[0];
  const half = [(Math.abs(x) + above) / 2, (Math.abs(x) + below) / 2];
  for (let p = 1; p <= 9; p++) {
    const { digits, exp } = parts(x.toExponential(p - 1));
    const k = exp - (p - 1);
    const base = BigInt(digits);
    let best: bigint | null = null;
    let bestDist = 0n;
    for (const d of [base - 1n, base, base + 1n]) {
      if (d.toString().length !== p) continue;
      if (Math.fround(Number(`${x < 0 ? '-' : ''}${d}e${k}`)) !== x) continue;
      // On the half-way point to a neighbour: PostgreSQL takes a longer representation.
      if (distance(half[0], d, k) === 0n || distance(half[1], d, k) === 0n) continue;
      const dist = distance(x, d, k);
      if (best === null || dist < bestDist || (dist === bestDist && d % 2n === 0n)) { best = d; bestDist = dist; }
    }
    if (best !== null) return pgFloat(x, best.toString().replace(/0+$/, '') || '0', exp, 6);
  }
  return float8Text(x);
}

const dec = new TextDecoder();
const bit = (map: Uint8Array, i: number): boolean => ((map[i >> 3] >> (i & 7)) & 1) === 1;

/** A function giving the text of row i of a column (null for NULL). */
export function cellReader(c: ColumnData): (i: number) => string | null {
  const v = c.values;
  const valid = c.validity;
  const text = ((): ((i: number) => string | null) => {
    switch (v.kind) {
      case 'number':
        if (c.column.type === 'float8') return (i) => float8Text(v.values[i]);
        if (c.column.type === 'float4') return (i) => float4Text(v.values[i]);
        return (i) => String(v.values[i]);
      case 'bigint': return (i) => v.values[i].toString();
      case 'bits': return (i) => (bit(v.bitmap, v.offset + i) ? 't' : 'f');
      case 'strings': return (i) => v.values[i];
      case 'dictionary': {
        const entries = v.entries.map((e) => (e === null ? null : dec.decode(e)));
        return (i) => entries[Number(v.indices[i])];
      }
      default: throw new Error(`cannot render ${v.kind} values`);
    }
  })();
  if (!valid) return text;
  return (i) => (bit(valid.bitmap, valid.offset + i) ? text(i) : null);
}

/** Row i of a batch as cells: [time µs, ...columns]. */
export function rowCells(batch: ColumnBatch, readers: readonly ((i: number) => string | null)[], i: number): (string | null)[] {
  const row: (string | null)[] = [batch.time[i].toString()];
  for (const r of readers) row.push(r(i));
  return row;
}
