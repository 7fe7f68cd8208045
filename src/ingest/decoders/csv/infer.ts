// CSV column types and the time column. Inference reads every row (the first pass): a column is
// int (int8) when every value is an integer, float (float8) when every value is a number (NaN and
// ±Inf included), bool when every value is true/false, an instant (timestamptz) when every value
// is ISO 8601, and text (a tag, as Arrow strings are) otherwise. Empty fields and NA, N/A, #N/A,
// null, NULL, None, nil are NULL and do not count. Columns the stream has keep the stream's type.
// The time column: ISO 8601 instants (a zone on every value, or ?tz=), or epoch numbers in a
// column with a time name, their unit from ?time_unit=, the name (time_ms) or their magnitude.
import type { ColumnData, ColumnType, StreamColumn, Validity } from '../../../domain/types.ts';
import { AppError } from '../../../errors/index.ts';
import type { DecodedSchema } from '../decoder.ts';
import { DEFAULT_TIME_WINDOW, type EpochUnit, type TimeWindow, type UnitChoice, chooseEpochUnit, describeWindow, isTimeLikeName } from '../epoch-units.ts';
import type { Layout } from './layout.ts';
import { type RecordBlock, fieldText } from './records.ts';
import { Kind, classify, epochToMicros, isNullField, parseBoolField, parseFloatField, parseIntField, parseIso } from './values.ts';
import { type WallToUtc, zoneReader } from './timezone.ts';

export interface InferredColumn {
  name: string;
  /** The stored type; null for a column with no values (skipped). */
  type: ColumnType | null;
  /** What the file holds, for messages and the ingest record: "int", "float", "ISO 8601" … */
  sourceType: string;
  kinds: number;
  numMin: number;
  numMax: number;
  /** First line whose instant has no zone, with its text. */
  naive: { line: number; value: string } | null;
  unit: UnitChoice | null;
}

export interface Inferred {
  columns: InferredColumn[];
  rows: number;
  timeCandidates: DecodedSchema['timeCandidates'];
  warnings: string[];
  window: TimeWindow;
}

const bit = (k: Kind): number => 1 << k;
const NUMERIC = bit(Kind.Int) | bit(Kind.Float);
const INSTANT = bit(Kind.Iso) | bit(Kind.IsoNaive);

function typeOf(kinds: number): { type: ColumnType | null; source: string } {
  if (kinds === 0) return { type: null, source: 'empty' };
  if (kinds === bit(Kind.Int)) return { type: 'int8', source: 'int' };
  if ((kinds & ~NUMERIC) === 0) return { type: 'float8', source: 'float' };
  if (kinds === bit(Kind.Bool)) return { type: 'bool', source: 'bool' };
  if ((kinds & ~INSTANT) === 0) return { type: 'timestamptz', source: kinds & bit(Kind.IsoNaive) ? 'ISO 8601 without zone' : 'ISO 8601' };
  return { type: 'text', source: 'text' };
}

function headerNames(block: RecordBlock): string[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < block.ncols; i++) {
    let name = fieldText(block, i).trim();
    if (name === '') name = `column_${i + 1}`;
    if (seen.has(name)) {
      throw new AppError(422, 'malformed_csv', `line ${block.lines[0]}: the header names column ${JSON.stringify(name)} twice`, { detail: { line: block.lines[0] } });
    }
    seen.add(name);
    names.push(name);
  }
  return names;
}

interface InferOptions {
  timeUnit: EpochUnit | null;
  requestedTime: string | undefined;
  streamTime: string | null;
  tz: string | null;
  window: TimeWindow | undefined;
}

/** The first pass: the header, then every row, to infer each column's type. */
export async function inferColumns(blocks: AsyncGenerator<RecordBlock>, layout: Layout, known: ReadonlyMap<string, StreamColumn>,
  opts: InferOptions): Promise<Inferred> {
  let names: string[] | null = null;
  let stats: InferredColumn[] = [];
  let rows = 0;
  let classifyIdx: number[] = [];
  const comma = layout.decimalComma;
  for await (const block of blocks) {
    let from = 0;
    if (!names) {
      names = headerNames(block);
      stats = names.map((name) => ({ name, type: null, sourceType: '', kinds: 0, numMin: Infinity, numMax: -Infinity, naive: null, unit: null }));
      classifyIdx = names.map((n, i) => (known.has(n) && n !== opts.streamTime ? -1 : i)).filter((i) => i >= 0);
      from = 1;
    }
    const n = block.ncols;
    for (const c of classifyIdx) {
      const st = stats[c];
      if (st.kinds & bit(Kind.Text)) continue; // text whatever follows
      const timeLike = isTimeLikeName(st.name) || st.name === opts.requestedTime || st.name === opts.streamTime;
      let kinds = st.kinds;
      for (let r = from; r < block.rows; r++) {
        const k = r * n + c;
        const kind = classify(block.buf, block.starts[k], block.ends[k], comma);
        kinds |= 1 << kind;
        if (kind === Kind.IsoNaive && st.naive === null) st.naive = { line: block.lines[r], value: fieldText(block, k) };
        if (timeLike && (kind === Kind.Int || kind === Kind.Float)) {
          const v = parseFloatField(block.buf, block.starts[k], block.ends[k], comma) as number;
          if (v < st.numMin) st.numMin = v;
          if (v > st.numMax) st.numMax = v;
        }
      }
      st.kinds = kinds & ~bit(Kind.Null);
    }
    rows += block.rows - from;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!names) throw new AppError(400, 'empty_body', 'the CSV has no header line');
  const window = opts.window ?? DEFAULT_TIME_WINDOW;
  const warnings: string[] = [];
  const timeCandidates: DecodedSchema['timeCandidates'] = [];
  for (const st of stats) {
    const k = known.get(st.name);
    if (k && st.name !== opts.streamTime) {
      st.type = k.type;
      st.sourceType = `${k.type} (the stream's type)`;
      continue;
    }
    const t = typeOf(st.kinds);
    st.type = t.type;
    st.sourceType = t.source;
    if (t.type === null) warnings.push(`column ${JSON.stringify(st.name)} has no values; it was skipped`);
    if (t.type === 'timestamptz') {
      timeCandidates.push({ name: st.name, type: t.source, timezone: st.naive && !opts.tz ? null : (opts.tz ?? 'UTC') });
      if (st.naive && !opts.tz && st.name !== opts.requestedTime && st.name !== opts.streamTime && !isTimeLikeName(st.name)) {
        st.type = 'text';
        st.sourceType = 'ISO 8601 without zone (stored as text; give ?tz= to store instants)';
      }
    } else if ((st.kinds & ~NUMERIC) === 0 && st.kinds !== 0) {
      const asTime = isTimeLikeName(st.name) || st.name === opts.requestedTime || st.name === opts.streamTime;
      if (!asTime) continue;
      st.unit = chooseEpochUnit(st.name, { min: st.numMin, max: st.numMax }, opts.timeUnit, window);
      if (st.unit) timeCandidates.push({ name: st.name, type: `epoch ${st.unit.unit} (${st.sourceType})`, timezone: 'UTC' });
      else if (st.name === opts.requestedTime || st.name === opts.streamTime) {
        throw new AppError(422, 'invalid_timestamp',
          `time column ${JSON.stringify(st.name)} holds numbers from ${st.numMin} to ${st.numMax}, which are not Unix-epoch instants between ${describeWindow(window)} in s, ms, µs or ns; pass the unit with ?time_unit=`,
          { detail: { column: st.name, min: st.numMin, max: st.numMax } });
      }
    }
  }
  return { columns: stats, rows, timeCandidates, warnings, window };
}

export interface TimePlan {
  index: number;
  iso: boolean;
  unit: EpochUnit | null;
  zone: WallToUtc | null;
  describe: Record<string, unknown>;
}

/** How the chosen time column is read; refuses instants without a zone when ?tz= is absent. */
export function planTime(col: InferredColumn, index: number, tz: string | null): TimePlan {
  if (col.type === 'timestamptz' || (col.kinds & INSTANT) !== 0 && (col.kinds & ~INSTANT) === 0) {
    if (col.naive && !tz) {
      throw new AppError(422, 'invalid_timestamp',
        `time column ${JSON.stringify(col.name)} has instants without a zone (line ${col.naive.line}: ${JSON.stringify(col.naive.value)}); write them with Z or an offset, or give the zone with ?tz= (e.g. ?tz=Europe/Berlin or ?tz=%2B01:00)`,
        { detail: { column: col.name, line: col.naive.line, value: col.naive.value } });
    }
    return { index, iso: true, unit: null, zone: col.naive && tz ? zoneReader(tz) : null,
      describe: { column: col.name, format: 'ISO 8601', ...(col.naive && tz ? { tz } : {}) } };
  }
  if (!col.unit) throw new AppError(422, 'no_time_column', `column ${JSON.stringify(col.name)} is not a time column`);
  return { index, iso: false, unit: col.unit.unit, zone: null, describe: { column: col.name, format: 'epoch', ...col.unit } };
}

export interface ColumnPlan {
  index: number;
  name: string;
  target: StreamColumn;
  nulls: number;
  nans: number;
}

const TWO32 = 4294967296;

function setMicros(dst: Int32Array, i: number, us: number): void {
  const hi = Math.floor(us / TWO32);
  dst[2 * i] = (us - hi * TWO32) | 0;
  dst[2 * i + 1] = hi;
}

function badValue(block: RecordBlock, r: number, k: number, column: string, what: string): AppError {
  const value = fieldText(block, k);
  return new AppError(422, 'invalid_value',
    `line ${block.lines[r]}, column ${JSON.stringify(column)}: ${JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value)} is not ${what}; nothing was stored`,
    { detail: { line: block.lines[r], column, value: value.slice(0, 200) } });
}

function newValidity(n: number): Uint8Array {
  return new Uint8Array((n + 7) >> 3).fill(0xff);
}

const utf8 = new TextEncoder();

/** The second pass, one block: rows [from, rows) into a batch. */
export function decodeBlock(block: RecordBlock, from: number, time: TimePlan, plans: ColumnPlan[], comma: boolean):
  { length: number; time: BigInt64Array; minTime: bigint; maxTime: bigint; columns: ColumnData[]; subMicro: number } {
  const n = block.rows - from;
  const w = block.ncols;
  const b = block.buf;
  const out = new BigInt64Array(n);
  const halves = new Int32Array(out.buffer);
  let subMicro = 0;
  let min = Infinity;
  let max = -Infinity;
  let minI = 0;
  let maxI = 0;
  const tname = 'the time column';
  for (let r = from; r < block.rows; r++) {
    const k = r * w + time.index;
    const s = block.starts[k];
    const e = block.ends[k];
    let us: number;
    if (s === e || isNullField(b, s, e)) throw badValue(block, r, k, tname, 'a time: every row needs one');
    if (time.iso) {
      const t = parseIso(b, s, e);
      if (!t) throw badValue(block, r, k, tname, 'an ISO 8601 instant');
      if (!t.zoned && !time.zone) throw badValue(block, r, k, tname, 'an instant with a zone (give ?tz=)');
      us = !t.zoned && time.zone ? time.zone(t.us) : t.us;
      if (t.subMicro) subMicro++;
    } else {
      const t = epochToMicros(b, s, e, time.unit as EpochUnit);
      if (!t) throw badValue(block, r, k, tname, `an epoch number in ${time.unit}`);
      us = t.us;
      if (t.subMicro) subMicro++;
    }
    if (!Number.isSafeInteger(us)) throw badValue(block, r, k, tname, 'an instant Strata can store');
    setMicros(halves, r - from, us);
    if (us < min) { min = us; minI = r - from; }
    if (us > max) { max = us; maxI = r - from; }
  }
  const columns: ColumnData[] = [];
  for (const p of plans) columns.push(decodeColumn(block, from, p, comma));
  return { length: n, time: out, minTime: out[minI], maxTime: out[maxI], columns, subMicro };
}

function decodeColumn(block: RecordBlock, from: number, p: ColumnPlan, comma: boolean): ColumnData {
  const n = block.rows - from;
  const w = block.ncols;
  const b = block.buf;
  let validity: Uint8Array | null = null;
  const setNull = (i: number): void => {
    validity ??= newValidity(n);
    validity[i >> 3] &= ~(1 << (i & 7));
    p.nulls++;
  };
  const type = p.target.type;
  const name = p.name;
  const finish = (values: ColumnData['values']): ColumnData => ({ column: p.target, values, validity: validity ? { bitmap: validity, offset: 0 } as Validity : null });
  switch (type) {
    case 'float8': case 'float4': {
      const vals = type === 'float8' ? new Float64Array(n) : new Float32Array(n);
      for (let r = from; r < block.rows; r++) {
        const k = r * w + p.index;
        const s = block.starts[k]; const e = block.ends[k];
        if (isNullField(b, s, e)) { setNull(r - from); continue; }
        const v = parseFloatField(b, s, e, comma);
        if (v === undefined) throw badValue(block, r, k, name, 'a number');
        if (v !== v) p.nans++;
        vals[r - from] = v;
      }
      return finish({ kind: 'number', values: vals });
    }
    case 'int2': case 'int4': case 'int8': {
      const vals = new BigInt64Array(n);
      const halves = new Int32Array(vals.buffer);
      const limit = type === 'int2' ? 32767 : type === 'int4' ? 2147483647 : Infinity;
      for (let r = from; r < block.rows; r++) {
        const k = r * w + p.index;
        const s = block.starts[k]; const e = block.ends[k];
        if (isNullField(b, s, e)) { setNull(r - from); continue; }
        const v = parseIntField(b, s, e);
        if (v === undefined) throw badValue(block, r, k, name, `an integer (the column is ${type})`);
        if (typeof v === 'bigint') {
          if (limit !== Infinity) throw badValue(block, r, k, name, `in the range of ${type}`);
          vals[r - from] = v;
        } else {
          if (v > limit || v < -limit - 1) throw badValue(block, r, k, name, `in the range of ${type}`);
          setMicros(halves, r - from, v);
        }
      }
      if (type === 'int8') return finish({ kind: 'bigint', values: vals });
      const small = type === 'int2' ? new Int16Array(n) : new Int32Array(n);
      for (let i = 0; i < n; i++) small[i] = halves[2 * i];
      return finish({ kind: 'number', values: small });
    }
    case 'bool': {
      const bits = new Uint8Array((n + 7) >> 3);
      for (let r = from; r < block.rows; r++) {
        const k = r * w + p.index;
        const s = block.starts[k]; const e = block.ends[k];
        if (isNullField(b, s, e)) { setNull(r - from); continue; }
        const v = parseBoolField(b, s, e);
        if (v === undefined) throw badValue(block, r, k, name, 'true or false');
        if (v) bits[(r - from) >> 3] |= 1 << ((r - from) & 7);
      }
      return finish({ kind: 'bits', bitmap: bits, offset: 0 });
    }
    case 'timestamptz': {
      const vals = new BigInt64Array(n);
      const halves = new Int32Array(vals.buffer);
      for (let r = from; r < block.rows; r++) {
        const k = r * w + p.index;
        const s = block.starts[k]; const e = block.ends[k];
        if (isNullField(b, s, e)) { setNull(r - from); continue; }
        const t = parseIso(b, s, e);
        if (!t || !t.zoned || !Number.isSafeInteger(t.us)) throw badValue(block, r, k, name, 'an ISO 8601 instant with a zone');
        setMicros(halves, r - from, t.us);
      }
      return finish({ kind: 'bigint', values: vals });
    }
    case 'text': {
      const offsets = new Int32Array(n + 1);
      let bytes = 0;
      for (let r = from; r < block.rows; r++) {
        const k = r * w + p.index;
        bytes += block.ends[k] - block.starts[k];
      }
      const data = new Uint8Array(bytes);
      let at = 0;
      for (let r = from; r < block.rows; r++) {
        const k = r * w + p.index;
        const s = block.starts[k]; const e = block.ends[k];
        if (s === e) { setNull(r - from); offsets[r - from + 1] = at; continue; }
        if (block.escaped[k]) {
          const enc = utf8.encode(fieldText(block, k));
          data.set(enc, at);
          at += enc.length;
        } else if (e - s <= 64) {
          for (let i = s; i < e; i++) data[at++] = b[i]; // short tags: no Buffer view per field
        } else {
          data.set(b.subarray(s, e), at);
          at += e - s;
        }
        offsets[r - from + 1] = at;
      }
      return finish({ kind: 'utf8', offsets, data });
    }
    default:
      throw new AppError(422, 'schema_clash', `column ${JSON.stringify(name)} of the stream has type ${type}, which a CSV cannot fill`);
  }
}
