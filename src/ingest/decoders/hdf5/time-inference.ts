// Times whose file does not say their unit or epoch (h5py users' `f["time"] = timestamps`,
// PyTables tables, `time_ms` columns): decided once every time value has been seen (the worker
// scans the time source before reading anything else). In order:
//   1. a start instant in an attribute (start, start_time, t0) of the dataset, its group or the
//      root, and values that start near 0 (no epoch unit fits their first value): time relative to
//      that start, in the declared unit, the unit the name carries, or seconds;
//   2. a unit from the units attribute, the mapping, ?time_unit= or the name (time_ns, t_ms …):
//      Unix-epoch times in that unit;
//   3. otherwise the unit is inferred from the magnitude (epoch-units.ts): the coarsest of s, ms,
//      µs, ns in which every value lies in the plausible window (STRATA_TIME_WINDOW); none → 422.
import { AppError } from '../../../errors/index.ts';
import { formatMicros } from '../../../domain/time.ts';
import {
  DEFAULT_TIME_WINDOW, type TimeWindow, type ValueRange, describeWindow, fittingUnits, looksRelative, unitFromName,
} from '../epoch-units.ts';
import type { Inspector } from './inspect.ts';
import { type PendingTime, type TimeEncoding, type TimeUnit, parseEpoch } from './time.ts';

const START_ATTRIBUTES = ['start', 'start_time', 't0'];

function parents(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  const out: string[] = [];
  for (let i = parts.length - 1; i >= 0; i--) out.push(`/${parts.slice(0, i).join('/')}`);
  return out;
}

/** The first start instant found on the dataset, then its groups up to the root. */
export function findStart(ins: Inspector, path: string): PendingTime['start'] {
  for (const p of [path, ...parents(path)]) {
    for (const name of START_ATTRIBUTES) {
      const text = ins.stringAttr(p, name);
      if (text === null) continue;
      const epochUs = parseEpoch(text);
      if (epochUs !== null) return { text, epochUs, attribute: `${p}@${name}` };
    }
  }
  return null;
}

function show(v: number | bigint): string {
  return typeof v === 'bigint' ? v.toString() : String(v);
}

/**
 * Decides a pending time encoding from the range of its values (null: no rows). Mutates `enc`:
 * sets unit, epoch and `inferred`, and clears `pending`.
 */
export function resolvePending(enc: TimeEncoding, range: ValueRange | null, window: TimeWindow = DEFAULT_TIME_WINDOW, what: string): void {
  const p = enc.pending;
  if (!p) return;
  const named = unitFromName(p.name);
  const fixed: { unit: TimeUnit; from: 'units' | 'mapping' | 'request' | 'name' } | null = p.unit && p.unitFrom
    ? { unit: p.unit, from: p.unitFrom } : named ? { unit: named, from: 'name' } : null;
  if (p.start && (range === null || looksRelative(range, window))) {
    enc.unit = fixed?.unit ?? 's';
    enc.epochUs = p.start.epochUs;
    enc.inferred = { unit_from: fixed?.from ?? 'assumed', epoch_from: 'start', start_attribute: p.start.attribute };
  } else if (fixed) {
    enc.unit = fixed.unit;
    enc.epochUs = 0n;
    enc.inferred = { unit_from: fixed.from, epoch_from: 'unix' };
  } else if (range === null) {
    enc.unit = 's';
    enc.epochUs = 0n;
    enc.inferred = { unit_from: 'assumed', epoch_from: 'unix' };
  } else {
    const fits = fittingUnits(range, window);
    if (fits.length === 0) {
      const relative = looksRelative(range, window)
        ? '; for times relative to a start, add a start attribute (start, start_time or t0: ISO 8601 with offset) to the dataset, its group or the root'
        : '';
      throw new AppError(422, 'time_unit_unknown',
        `${what} declares no unit, and its values (${show(range.min)} … ${show(range.max)}) are not Unix-epoch times in s, ms, µs or ns between ${describeWindow(window)}; `
        + `give the unit with ?time_unit=s|ms|us|ns (or a mapping's time.unit and time.epoch)${relative}`,
        { detail: { time: what, min: show(range.min), max: show(range.max), window: describeWindow(window) } });
    }
    enc.unit = fits[0];
    enc.epochUs = 0n;
    enc.inferred = {
      unit_from: 'magnitude', epoch_from: 'unix', values: { min: show(range.min), max: show(range.max) }, window: describeWindow(window),
      ...(fits.length > 1 ? { also_fits: fits.slice(1) } : {}),
    };
  }
  delete enc.pending;
}

/** A warning for the ingest record when the unit was not declared by the file or the request. */
export function inferenceWarning(enc: TimeEncoding, what: string): string | null {
  const i = enc.inferred;
  if (!i) return null;
  const unit = enc.unit === 'us' ? 'µs' : enc.unit;
  if (i.epoch_from === 'start') {
    return `${what} has no "since" units: read as ${unit} after ${formatMicros(enc.epochUs)} (${i.start_attribute})${i.unit_from === 'assumed' ? ', seconds assumed as it declares no unit' : ''}`;
  }
  if (i.unit_from === 'magnitude') {
    return `${what} declares no unit: read as Unix-epoch ${unit}, inferred from its values ${i.values?.min} … ${i.values?.max}${i.also_fits ? ` (also plausible as ${i.also_fits.join(', ')}; give ?time_unit= to choose)` : ''}`;
  }
  if (i.unit_from === 'name') return `${what} declares no unit: read as Unix-epoch ${unit}, as its name says`;
  return null;
}
